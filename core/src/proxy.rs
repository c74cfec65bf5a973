//! The built-in proxy: a TCP (L4) or HTTP/1.1 (L7) listener in front of services, fed live by discovery.
//!
//! [`Proxy::start`] binds a listener and follows every routed service with a [`Discovery::watch`]:
//! passing instances become endpoints at once, and an instance that is removed or stops passing
//! *drains* (requests and connections in flight on it finish; it gets no new ones). Each request or
//! connection goes to an endpoint chosen by a [`Balancer`] (any of its strategies, with passive
//! health).
//!
//! - **HTTP** (`protocol: "http"`): routes by Host (exact, or `*.suffix`) and longest path prefix;
//!   upstream keep-alive pools per endpoint; `X-Forwarded-For`, `X-Forwarded-Proto` and
//!   `X-Forwarded-Host`; hop-by-hop headers removed; optional cookie stickiness; WebSocket and other
//!   `Upgrade`s tunnelled. A failed connect is retried on another endpoint (`connect_attempts`); a
//!   request that never reached the upstream (a keep-alive connection closed under it) is resent; an
//!   idempotent request whose upstream reset before answering is retried once on another endpoint
//!   (bodies up to 64 KiB are kept for that). No endpoint: 503; every attempt failed: 502; no response
//!   head within `response_timeout`: 504.
//! - **TCP** (`protocol: "tcp"`): one route; each connection is spliced to an endpoint (consistent-hash
//!   key: the client IP). Connections to a removed endpoint are cut `drain_timeout` after its removal.
//! - [`Proxy::shutdown`] stops accepting, lets requests in flight finish (HTTP keep-alive connections
//!   are closed once idle) for up to the grace, then cuts what is left.
//! - [`Proxy::stats`]: per-endpoint requests, errors, in flight and a latency histogram.
//!
//! ```no_run
//! use std::sync::Arc;
//! use dockfleet::{Discovery, EmbeddedDiscovery, Instance, Proxy, ProxyOptions, Route};
//!
//! # async fn demo() -> dockfleet::Result<()> {
//! let discovery: Arc<dyn Discovery> = Arc::new(EmbeddedDiscovery::new());
//! discovery.register(&Instance::new("web", "web-1", "10.0.0.5", 8080)).await?;
//! let proxy = Proxy::start(
//!     discovery.clone(),
//!     ProxyOptions { listen: "127.0.0.1:8000".into(), routes: vec![Route::new("web")], ..Default::default() },
//! )
//! .await?;
//! proxy.wait_ready(std::time::Duration::from_secs(5)).await?;
//! // … serve; then:
//! proxy.shutdown(std::time::Duration::from_secs(10)).await;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::balancer::{hash, Balancer, BalancerOptions, Endpoint};
use crate::discovery::{check_name, Discovery, Instance};
use crate::error::{Error, Result};
use crate::http1::{forward_body, is_hop_by_hop, read_head, Conn, ForwardError, Framing, Head, HeadError};
use crate::Later;

/// Where requests for one service come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Route {
    /// The discovery service whose passing instances serve this route.
    pub service: String,
    /// Host header to match (`api.example.com`, or `*.example.com` for any subdomain); `None`: any.
    /// HTTP only.
    pub host: Option<String>,
    /// Path prefix to match (default `/`); the longest matching prefix wins. HTTP only. Starts with
    /// `/` and holds only letters, digits and `-._~/:@!+,=` (rendered configurations write it as is).
    pub path_prefix: String,
    /// Only instances carrying this tag.
    pub tag: Option<String>,
    /// Header whose value is the `consistent-hash` key (default: the client IP).
    pub hash_header: Option<String>,
}

impl Default for Route {
    fn default() -> Self {
        Route { service: String::new(), host: None, path_prefix: "/".into(), tag: None, hash_header: None }
    }
}

impl Route {
    /// A route sending everything to `service`.
    pub fn new(service: impl Into<String>) -> Self {
        Route { service: service.into(), ..Default::default() }
    }
}

/// How a [`Proxy`] listens, routes and retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProxyOptions {
    /// Address to listen on (default `127.0.0.1:0`: loopback, a free port; see [`Proxy::address`]).
    pub listen: String,
    /// `http` (default) or `tcp`.
    pub protocol: String,
    /// Routes (`tcp`: exactly one, without host or path).
    pub routes: Vec<Route>,
    /// Strategy and passive health of every route's balancer.
    pub balancer: BalancerOptions,
    /// Limit on connecting to an endpoint (default 2 s).
    #[serde(with = "crate::serde_ms")]
    pub connect_timeout: Duration,
    /// Endpoints tried when connecting fails (default 3).
    pub connect_attempts: u32,
    /// Limit on waiting for an upstream's response head (default 60 s; then 504). HTTP only.
    #[serde(with = "crate::serde_ms")]
    pub response_timeout: Duration,
    /// Retry an idempotent request once on another endpoint when the upstream resets before answering
    /// (default true). HTTP only.
    pub retry_idempotent: bool,
    /// Name of a cookie that pins a client to an endpoint (`None`: no stickiness). HTTP only.
    pub sticky_cookie: Option<String>,
    /// How long a client connection may sit idle before it is closed (default 60 s).
    #[serde(with = "crate::serde_ms")]
    pub idle_timeout: Duration,
    /// How long connections to a removed endpoint may go on (TCP; default 30 s).
    #[serde(with = "crate::serde_ms")]
    pub drain_timeout: Duration,
    /// Idle upstream connections kept per endpoint (default 64). HTTP only.
    pub max_idle_per_endpoint: u32,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            listen: "127.0.0.1:0".into(),
            protocol: "http".into(),
            routes: Vec::new(),
            balancer: BalancerOptions::default(),
            connect_timeout: Duration::from_secs(2),
            connect_attempts: 3,
            response_timeout: Duration::from_secs(60),
            retry_idempotent: true,
            sticky_cookie: None,
            idle_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(30),
            max_idle_per_endpoint: 64,
        }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl ProxyOptions {
    /// Checks the options without binding anything; the error names the field.
    pub fn validate(&self) -> Result<()> {
        self.listen.parse::<SocketAddr>().map_err(|e| Error::InvalidAddress {
            field: "listen".into(),
            address: self.listen.clone(),
            message: format!("{e} (expected ip:port)"),
        })?;
        let tcp = match self.protocol.as_str() {
            "http" => false,
            "tcp" => true,
            p => return Err(Error::invalid("protocol", format!("{p:?} is not http or tcp"))),
        };
        if self.routes.is_empty() {
            return Err(Error::invalid("routes", "at least one route is needed"));
        }
        if tcp && self.routes.len() > 1 {
            return Err(Error::invalid("routes", "a tcp proxy has exactly one route (one listener per service)"));
        }
        for (i, r) in self.routes.iter().enumerate() {
            let f = |name: &str| format!("routes[{i}].{name}");
            check_name(&f("service"), &r.service)?;
            if let Some(h) = &r.host {
                let bare = h.strip_prefix("*.").unwrap_or(h);
                if tcp {
                    return Err(Error::invalid(f("host"), "tcp routes cannot match a host"));
                }
                if bare.is_empty() || !bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
                    return Err(Error::invalid(f("host"), format!("{h:?} is not a host name or *.suffix")));
                }
            }
            if !r.path_prefix.starts_with('/') {
                return Err(Error::invalid(f("path_prefix"), format!("{:?} must start with /", r.path_prefix)));
            }
            // Rendered configurations write the prefix as is (`location /api {`, `acl … path_beg /api`),
            // where a `;`, a brace, a space or a line break would change the configuration itself.
            if !r.path_prefix.chars().all(|c| c.is_ascii_alphanumeric() || "-._~/:@!+,=".contains(c)) {
                return Err(Error::invalid(
                    f("path_prefix"),
                    format!("{:?} may hold only letters, digits and -._~/:@!+,=", r.path_prefix),
                ));
            }
            if tcp && r.path_prefix != "/" {
                return Err(Error::invalid(f("path_prefix"), "tcp routes cannot match a path"));
            }
            if let Some(h) = &r.hash_header {
                if !is_token(h) {
                    return Err(Error::invalid(f("hash_header"), format!("{h:?} is not a header name")));
                }
            }
            let duplicate = self.routes[..i].iter().any(|o| o.host == r.host && o.path_prefix == r.path_prefix);
            if duplicate {
                return Err(Error::invalid(f("path_prefix"), "another route has the same host and path prefix"));
            }
        }
        self.balancer.validate().map_err(|e| e.with_field_prefix("balancer"))?;
        if self.connect_timeout.is_zero() {
            return Err(Error::invalid("connect_timeout", "must be positive"));
        }
        if self.connect_attempts == 0 {
            return Err(Error::invalid("connect_attempts", "must be at least 1"));
        }
        if self.response_timeout.is_zero() {
            return Err(Error::invalid("response_timeout", "must be positive"));
        }
        if self.idle_timeout.is_zero() {
            return Err(Error::invalid("idle_timeout", "must be positive"));
        }
        if let Some(c) = &self.sticky_cookie {
            if tcp {
                return Err(Error::invalid("sticky_cookie", "tcp proxies cannot set cookies"));
            }
            if !is_token(c) {
                return Err(Error::invalid("sticky_cookie", format!("{c:?} is not a cookie name")));
            }
        }
        Ok(())
    }
}

/// Upper bounds (milliseconds) of the latency histogram buckets; a last bucket counts the rest.
pub const LATENCY_BOUNDS_MS: &[f64] =
    &[0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0];

/// One endpoint's counters in a [`Proxy`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProxyEndpointStats {
    /// Service routed to.
    pub service: String,
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Removed from discovery (or no longer passing) with work still in flight.
    pub draining: bool,
    /// Whether passive health has it ejected now.
    pub ejected: bool,
    /// Responses received (HTTP) or connections made (TCP).
    pub requests: u64,
    /// Failed connects, resets and timeouts.
    pub errors: u64,
    /// Requests (HTTP) or connections (TCP) in flight.
    pub in_flight: u64,
    /// Counts per bucket of [`LATENCY_BOUNDS_MS`] (one more, for slower ones) of the time to the
    /// response head (HTTP) or to connect (TCP).
    pub latency_counts: Vec<u64>,
    /// Median latency, milliseconds (a bucket bound; 0 without requests).
    pub latency_p50_ms: f64,
    /// 99th percentile latency, milliseconds (a bucket bound).
    pub latency_p99_ms: f64,
}

#[derive(Debug, Default)]
struct Histogram {
    counts: [AtomicU64; 17],
}

impl Histogram {
    fn record(&self, d: Duration) {
        let ms = d.as_secs_f64() * 1e3;
        let i = LATENCY_BOUNDS_MS.partition_point(|b| *b < ms);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
    }

    fn counts(&self) -> Vec<u64> {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }
}

fn quantile(counts: &[u64], q: f64) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let want = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, c) in counts.iter().enumerate() {
        seen += c;
        if seen >= want {
            return LATENCY_BOUNDS_MS.get(i).copied().unwrap_or(f64::MAX);
        }
    }
    f64::MAX
}

/// One endpoint: its idle upstream connections and counters.
struct Pool {
    endpoint: Endpoint,
    ip: Option<std::net::IpAddr>,
    cookie: String,
    idle: Mutex<Vec<Conn>>,
    removed: watch::Sender<bool>,
    in_flight: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    latency: Histogram,
}

impl Pool {
    fn new(endpoint: Endpoint) -> Self {
        Pool {
            cookie: format!("{:016x}", hash(endpoint.id.as_bytes())),
            ip: endpoint.address.trim_start_matches('[').trim_end_matches(']').parse().ok(),
            endpoint,
            idle: Mutex::new(Vec::new()),
            removed: watch::Sender::new(false),
            in_flight: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency: Histogram::default(),
        }
    }

    fn is_removed(&self) -> bool {
        *self.removed.borrow()
    }

    fn remove(&self) {
        self.removed.send_replace(true);
        self.idle.lock().expect("pool lock").clear();
    }

    async fn connect(&self, timeout: Duration) -> std::io::Result<TcpStream> {
        // An IP address needs no resolver (which would run on a blocking thread); names are resolved
        // at each connect, so DNS changes are followed.
        let connecting = async {
            match self.ip {
                Some(ip) => TcpStream::connect(SocketAddr::new(ip, self.endpoint.port)).await,
                None => TcpStream::connect((self.endpoint.address.as_str(), self.endpoint.port)).await,
            }
        };
        let stream = tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// An idle pooled connection that is still open (and whether it was pooled), or a new one.
    async fn checkout(&self, timeout: Duration, fresh: bool) -> std::io::Result<(Conn, bool)> {
        if !fresh {
            loop {
                let Some(c) = self.idle.lock().expect("pool lock").pop() else { break };
                if c.is_reusable() {
                    return Ok((c, true));
                }
            }
        }
        Ok((Conn::new(self.connect(timeout).await?), false))
    }

    fn checkin(&self, conn: Conn, max_idle: usize) {
        if self.is_removed() || !conn.buf.is_empty() {
            return;
        }
        let mut idle = self.idle.lock().expect("pool lock");
        if idle.len() < max_idle {
            idle.push(conn);
        }
    }
}

/// One routed service (and tag): its balancer and endpoints.
struct Upstream {
    service: String,
    tag: Option<String>,
    balancer: Balancer,
    pools: Mutex<HashMap<String, Arc<Pool>>>,
    draining: Mutex<Vec<Arc<Pool>>>,
    endpoints: watch::Sender<usize>,
}

impl Upstream {
    fn pool(&self, id: &str) -> Option<Arc<Pool>> {
        self.pools.lock().expect("upstream lock").get(id).cloned()
    }

    /// Makes the passing instances the endpoints; the others drain. An entry another writer put in the
    /// registry unchecked (an address that is no IP address or host name, say) is left out, as
    /// `sync_config` leaves it out of a rendered configuration.
    fn update(&self, known: &BTreeMap<String, Instance>) {
        let endpoints: Vec<Endpoint> = known
            .values()
            .filter(|i| i.serves(self.tag.as_ref()))
            .filter(|i| i.checked(&"the proxy"))
            .map(|i| Endpoint { id: i.id.clone(), address: i.address.clone(), port: i.port, weight: i.weight() })
            .collect();
        let mut pools = self.pools.lock().expect("upstream lock");
        let mut gone: Vec<Arc<Pool>> = Vec::new();
        pools.retain(|id, p| {
            let keep = endpoints.iter().any(|e| &e.id == id && *e == p.endpoint);
            if !keep {
                gone.push(p.clone());
            }
            keep
        });
        for e in &endpoints {
            pools.entry(e.id.clone()).or_insert_with(|| Arc::new(Pool::new(e.clone())));
        }
        if let Err(e) = self.balancer.set_endpoints(endpoints) {
            tracing::warn!(service = %self.service, error = %e, "discovery returned unusable endpoints");
        }
        let count = pools.len();
        drop(pools);
        let mut draining = self.draining.lock().expect("upstream lock");
        draining.retain(|p| p.in_flight.load(Ordering::Relaxed) > 0);
        for p in gone {
            tracing::debug!(service = %self.service, endpoint = %p.endpoint.id, "endpoint removed; draining");
            p.remove();
            if p.in_flight.load(Ordering::Relaxed) > 0 {
                draining.push(p);
            }
        }
        drop(draining);
        self.endpoints.send_replace(count);
    }

    /// Chooses an endpoint: the sticky one when given and usable, else by the balancer.
    fn pick(&self, key: Option<&str>, sticky: Option<&str>, tried: &[String]) -> Option<Arc<Pool>> {
        let now = Instant::now();
        if let Some(cookie) = sticky {
            let id = self
                .pools
                .lock()
                .expect("upstream lock")
                .values()
                .find(|p| p.cookie == cookie && !tried.contains(&p.endpoint.id))
                .map(|p| p.endpoint.id.clone());
            if let Some(p) = id.and_then(|id| self.balancer.pick_id(&id, now)).and_then(|e| self.pool(&e.id)) {
                return Some(p);
            }
        }
        // An endpoint can be removed between the pick and the pool lookup: pick again then.
        let mut excluded: Vec<String> = tried.to_vec();
        loop {
            let e = self.balancer.pick_except(key, &excluded, now)?;
            if let Some(p) = self.pool(&e.id) {
                return Some(p);
            }
            self.balancer.release(&e.id, true, Duration::ZERO);
            excluded.push(e.id);
        }
    }

    fn stats(&self) -> Vec<ProxyEndpointStats> {
        let balancer: HashMap<String, bool> =
            self.balancer.stats().into_iter().map(|s| (s.endpoint.id.clone(), s.ejected)).collect();
        let mut pools: Vec<(Arc<Pool>, bool)> =
            self.pools.lock().expect("upstream lock").values().map(|p| (p.clone(), false)).collect();
        pools.sort_by(|a, b| a.0.endpoint.id.cmp(&b.0.endpoint.id));
        pools.extend(self.draining.lock().expect("upstream lock").iter().map(|p| (p.clone(), true)));
        pools
            .into_iter()
            .map(|(p, draining)| {
                let counts = p.latency.counts();
                ProxyEndpointStats {
                    service: self.service.clone(),
                    endpoint: p.endpoint.clone(),
                    draining,
                    ejected: !draining && balancer.get(&p.endpoint.id).copied().unwrap_or(false),
                    requests: p.requests.load(Ordering::Relaxed),
                    errors: p.errors.load(Ordering::Relaxed),
                    in_flight: p.in_flight.load(Ordering::Relaxed),
                    latency_p50_ms: quantile(&counts, 0.5),
                    latency_p99_ms: quantile(&counts, 0.99),
                    latency_counts: counts,
                }
            })
            .collect()
    }
}

/// Follows a service in discovery for as long as the proxy lives, re-watching after errors.
async fn follow(discovery: Arc<dyn Discovery>, upstream: Arc<Upstream>) {
    loop {
        let mut watch = discovery.watch(&upstream.service);
        let mut known: BTreeMap<String, Instance> = BTreeMap::new();
        while let Some(item) = watch.next().await {
            match item {
                Ok(ev) => {
                    ev.apply_to(&mut known);
                    upstream.update(&known);
                }
                Err(e) => {
                    tracing::warn!(service = %upstream.service, error = %e, "discovery watch failed; watching again");
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Match order of routes: exact hosts, then wildcards, then any host; longer path prefixes first.
pub(crate) fn route_rank(host: Option<&str>, path_prefix: &str) -> (u8, std::cmp::Reverse<usize>) {
    let host_rank = match host {
        Some(h) if !h.starts_with("*.") => 0,
        Some(_) => 1,
        None => 2,
    };
    (host_rank, std::cmp::Reverse(path_prefix.len()))
}

struct RouteEntry {
    host: Option<String>,
    path_prefix: String,
    hash_header: Option<String>,
    upstream: Arc<Upstream>,
}

struct State {
    options: ProxyOptions,
    routes: Vec<RouteEntry>,
    upstreams: Vec<Arc<Upstream>>,
}

impl State {
    fn route(&self, host: &str, path: &str) -> Option<&RouteEntry> {
        let host_matches = |r: &RouteEntry| match &r.host {
            None => true,
            Some(h) => match h.strip_prefix("*.") {
                Some(suffix) => {
                    host.len() > suffix.len() + 1
                        && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                        && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                }
                None => h.eq_ignore_ascii_case(host),
            },
        };
        // Routes are sorted: exact hosts, then wildcards, then any host; longer prefixes first.
        self.routes.iter().find(|r| host_matches(r) && prefix_matches(&r.path_prefix, path))
    }
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    prefix == "/"
        || path == prefix
        || (path.starts_with(prefix) && (prefix.ends_with('/') || path.as_bytes().get(prefix.len()) == Some(&b'/')))
}

/// A running proxy. Dropping it stops it at once; [`Proxy::shutdown`] stops it gracefully.
pub struct Proxy {
    address: SocketAddr,
    state: Arc<State>,
    stop: watch::Sender<Option<Duration>>,
    closing: Arc<Closing>,
    server: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    feeds: Vec<tokio::task::AbortHandle>,
    /// Where it started: its tasks run on that process's runtime.
    origin: crate::embed::Origin,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("address", &self.address).field("protocol", &self.state.options.protocol).finish()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if self.forked() {
            return; // the proxy runs in the parent, and is not this process's to stop
        }
        self.closing.kill();
        for f in &self.feeds {
            f.abort();
        }
        if let Ok(mut s) = self.server.try_lock() {
            if let Some(h) = s.take() {
                h.abort();
            }
        }
    }
}

impl Proxy {
    /// Validates the options, binds the listener and starts following the routed services.
    /// Must be called within a tokio runtime; the proxy runs on it.
    pub async fn start(discovery: Arc<dyn Discovery>, options: ProxyOptions) -> Result<Proxy> {
        options.validate()?;
        let addr: SocketAddr = options.listen.parse().map_err(|_| Error::invalid("listen", "not ip:port"))?;
        let listener =
            TcpListener::bind(addr).await.map_err(|e| Error::Io { path: options.listen.clone(), source: e })?;
        let address = listener.local_addr().map_err(|e| Error::Io { path: options.listen.clone(), source: e })?;
        let mut upstreams: Vec<Arc<Upstream>> = Vec::new();
        let mut routes = Vec::new();
        for r in &options.routes {
            let upstream = match upstreams.iter().find(|u| u.service == r.service && u.tag == r.tag) {
                Some(u) => u.clone(),
                None => {
                    let u = Arc::new(Upstream {
                        service: r.service.clone(),
                        tag: r.tag.clone(),
                        balancer: Balancer::new(options.balancer.clone())?,
                        pools: Mutex::new(HashMap::new()),
                        draining: Mutex::new(Vec::new()),
                        endpoints: watch::Sender::new(0),
                    });
                    upstreams.push(u.clone());
                    u
                }
            };
            routes.push(RouteEntry {
                host: r.host.as_ref().map(|h| h.to_ascii_lowercase()),
                path_prefix: r.path_prefix.clone(),
                hash_header: r.hash_header.clone(),
                upstream,
            });
        }
        routes.sort_by_key(|r| route_rank(r.host.as_deref(), &r.path_prefix));
        let feeds =
            upstreams.iter().map(|u| tokio::spawn(follow(discovery.clone(), u.clone())).abort_handle()).collect();
        let state = Arc::new(State { options, routes, upstreams });
        let (stop, stop_rx) = watch::channel(None);
        let closing = Arc::new(Closing::default());
        let server = tokio::spawn(serve(listener, state.clone(), closing.clone(), stop_rx));
        tracing::info!(%address, protocol = %state.options.protocol, "proxy listening");
        let server = tokio::sync::Mutex::new(Some(server));
        Ok(Proxy { address, state, stop, closing, server, feeds, origin: crate::embed::Origin::here() })
    }

    /// Whether this is a process forked after the proxy started: the proxy runs in the parent.
    fn forked(&self) -> bool {
        !self.origin.is_here()
    }

    /// The address it listens on (`ip:port`; the port the system chose when `listen` asked for 0).
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Waits until every routed service has at least one endpoint (`timeout` error otherwise;
    /// `invalid_argument` in a process forked after the proxy started).
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        if self.forked() {
            return Err(Error::invalid("proxy", "it started before this process was forked, and runs in the parent"));
        }
        for u in &self.state.upstreams {
            let mut rx = u.endpoints.subscribe();
            let waited = tokio::time::timeout(timeout, rx.wait_for(|n| *n > 0)).await;
            if !matches!(waited, Ok(Ok(_))) {
                return Err(Error::Timeout {
                    host: "proxy".into(),
                    operation: format!("waiting for an endpoint of service {:?}", u.service),
                    after: timeout,
                });
            }
        }
        Ok(())
    }

    /// Every endpoint's counters, by service, draining ones last.
    pub fn stats(&self) -> Vec<ProxyEndpointStats> {
        self.state.upstreams.iter().flat_map(|u| u.stats()).collect()
    }

    /// Stops accepting, lets work in flight finish for up to `grace`, then cuts what is left.
    /// Returns when everything is closed; calling it again does nothing, and so does calling it in a
    /// process forked after the proxy started (the proxy runs in the parent).
    pub async fn shutdown(&self, grace: Duration) {
        if self.forked() {
            tracing::warn!(address = %self.address, "proxy shutdown in a forked child: the proxy runs in the parent");
            return;
        }
        let handle = self.server.lock().await.take();
        if let Some(h) = handle {
            self.stop.send_replace(Some(grace));
            let _ = h.await;
        }
        for f in &self.feeds {
            f.abort();
        }
        tracing::info!(address = %self.address, "proxy stopped");
    }
}

async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    closing: Arc<Closing>,
    mut stop: watch::Receiver<Option<Duration>>,
) {
    let tcp = state.options.protocol == "tcp";
    let ticker = tokio::spawn({
        let closing = closing.clone();
        let tick = idle_tick(state.options.idle_timeout);
        async move {
            // Ends with the proxy: `kill` is the last thing a shutdown or a drop does.
            while !closing.killed.load(Ordering::Acquire) {
                tokio::time::sleep(tick).await;
                closing.notify.notify_waiters();
            }
        }
    });
    let grace = loop {
        tokio::select! {
            biased;
            changed = stop.changed() => break if changed.is_ok() { stop.borrow().unwrap_or_default() } else { Duration::ZERO },
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Connections are detached tasks; `Live` counts them and `Closing` ends them.
                    let live = Live::new(&closing);
                    if tcp {
                        tokio::spawn(tcp_conn(state.clone(), stream, peer, live));
                    } else {
                        tokio::spawn(http_conn(state.clone(), stream, live));
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    };
    drop(listener);
    closing.set();
    if tokio::time::timeout(grace, closing.drained()).await.is_err() {
        tracing::info!(
            left = closing.live.load(Ordering::Relaxed),
            "shutdown grace over; closing the remaining connections"
        );
    }
    closing.kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), closing.drained()).await;
    ticker.abort();
}

// ---------------------------------------------------------------------------------------------
// TCP

async fn tcp_conn(state: Arc<State>, mut client: TcpStream, peer: SocketAddr, live: Live) {
    let _ = client.set_nodelay(true);
    let Some(route) = state.routes.first() else { return };
    let upstream = &route.upstream;
    let key = peer.ip().to_string();
    let mut tried = Vec::new();
    let (pool, mut server, connected) = loop {
        if tried.len() as u32 >= state.options.connect_attempts {
            return;
        }
        let Some(pool) = upstream.pick(Some(&key), None, &tried) else {
            tracing::debug!(service = %upstream.service, %peer, "no endpoint for a tcp connection");
            return;
        };
        let started = Instant::now();
        match pool.connect(state.options.connect_timeout).await {
            Ok(s) => break (pool, s, started.elapsed()),
            Err(e) => {
                tracing::debug!(endpoint = %pool.endpoint.id, error = %e, "connect failed; trying another endpoint");
                pool.errors.fetch_add(1, Ordering::Relaxed);
                upstream.balancer.release(&pool.endpoint.id, false, started.elapsed());
                tried.push(pool.endpoint.id.clone());
            }
        }
    };
    pool.requests.fetch_add(1, Ordering::Relaxed);
    pool.in_flight.fetch_add(1, Ordering::Relaxed);
    pool.latency.record(connected);
    let mut removed = pool.removed.subscribe();
    let drain = state.options.drain_timeout;
    tokio::select! {
        r = Box::pin(splice(&mut client, &mut server)) => {
            if let Err(e) = r {
                tracing::debug!(endpoint = %pool.endpoint.id, error = %e, "tcp connection ended with an error");
            }
        }
        _ = async { let _ = removed.wait_for(|r| *r).await; tokio::time::sleep(drain).await } => {
            tracing::debug!(endpoint = %pool.endpoint.id, "drain time over; closing a tcp connection");
        }
        _ = live.0.killed() => {}
    }
    pool.in_flight.fetch_sub(1, Ordering::Relaxed);
    upstream.balancer.release(&pool.endpoint.id, true, connected);
}

thread_local! {
    /// Scratch space for [`splice`]: bytes pass through it, so idle connections own no buffer.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 16 * 1024]);
}

/// One direction of a [`splice`].
#[derive(Default)]
struct Direction {
    /// Bytes read and not yet taken by the writer (empty, unallocated, while it keeps up).
    pending: Vec<u8>,
    /// The reader reached its end.
    done: bool,
    /// The writer's side was shut down after that.
    shut: bool,
}

impl Direction {
    /// Moves bytes from `from` to `to` as far as both allow now; `Ready(true)` when something moved.
    fn pump(
        &mut self,
        cx: &mut std::task::Context<'_>,
        from: &mut TcpStream,
        to: &mut TcpStream,
    ) -> std::io::Result<bool> {
        use std::task::Poll;
        use tokio::io::{AsyncRead, AsyncWrite};
        let mut moved = false;
        loop {
            if !self.pending.is_empty() {
                match Pin::new(&mut *to).poll_write(cx, &self.pending) {
                    Poll::Ready(Ok(n)) => {
                        self.pending.drain(..n);
                        moved = true;
                        if self.pending.is_empty() {
                            self.pending = Vec::new();
                        }
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Err(e),
                    Poll::Pending => return Ok(moved),
                }
            }
            if self.done {
                if !self.shut {
                    match Pin::new(&mut *to).poll_shutdown(cx) {
                        Poll::Ready(_) => {
                            self.shut = true;
                            moved = true;
                        }
                        Poll::Pending => return Ok(moved),
                    }
                }
                return Ok(moved);
            }
            // `poll_read` (unlike `try_read`) remembers a short read means "drained": no extra syscall.
            let got = SCRATCH.with(|scratch| -> std::io::Result<Option<usize>> {
                let mut scratch = scratch.borrow_mut();
                let mut buf = tokio::io::ReadBuf::new(&mut scratch);
                match Pin::new(&mut *from).poll_read(cx, &mut buf) {
                    Poll::Pending => return Ok(None),
                    Poll::Ready(Err(e)) => return Err(e),
                    Poll::Ready(Ok(())) => {}
                }
                let data = buf.filled();
                if data.is_empty() {
                    return Ok(Some(0));
                }
                let n = data.len();
                match Pin::new(&mut *to).poll_write(cx, data) {
                    Poll::Ready(Ok(m)) if m == n => {}
                    Poll::Ready(Ok(m)) => self.pending.extend_from_slice(&data[m..]),
                    Poll::Ready(Err(e)) => return Err(e),
                    Poll::Pending => self.pending.extend_from_slice(data),
                }
                Ok(Some(n))
            })?;
            match got {
                None => return Ok(moved),
                Some(0) => self.done = true,
                Some(_) => {}
            }
            moved = true;
        }
    }
}

/// Copies both ways until both sides have finished, passing half-closes on. Unlike
/// `copy_bidirectional`, a connection owns a buffer only while its peer is slower than its writer.
async fn splice(a: &mut TcpStream, b: &mut TcpStream) -> std::io::Result<()> {
    let (mut ab, mut ba) = (Direction::default(), Direction::default());
    std::future::poll_fn(|cx| loop {
        let moved = ab.pump(cx, a, b)? | ba.pump(cx, b, a)?;
        if ab.shut && ba.shut {
            return std::task::Poll::Ready(Ok(()));
        }
        if !moved {
            return std::task::Poll::Pending;
        }
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// The proxy's connections: how many live, and the signals that close them.
#[derive(Default)]
struct Closing {
    flag: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
    killed: std::sync::atomic::AtomicBool,
    kill: tokio::sync::Notify,
    live: std::sync::atomic::AtomicUsize,
    drained: tokio::sync::Notify,
}

impl Closing {
    fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Graceful: idle connections close now, busy ones after their request.
    fn set(&self) {
        self.flag.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// Hard: every connection closes now.
    fn kill(&self) {
        self.set();
        self.killed.store(true, Ordering::Release);
        self.kill.notify_waiters();
    }

    async fn killed(&self) {
        let notified = self.kill.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !self.killed.load(Ordering::Acquire) {
            notified.await;
        }
    }

    /// Waits until no connection is left.
    async fn drained(&self) {
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.live.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Counts a connection as live until dropped.
struct Live(Arc<Closing>);

impl Live {
    fn new(closing: &Arc<Closing>) -> Self {
        closing.live.fetch_add(1, Ordering::AcqRel);
        Live(closing.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.drained.notify_waiters();
        }
    }
}

/// How often idle connections look at their deadline: a quarter of the idle timeout, 50 ms to 5 s.
fn idle_tick(idle: Duration) -> Duration {
    (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5))
}

/// Waits until `stream` has bytes to read (`false`: idle timeout, end of stream, error or shutdown).
/// Polls the socket directly, holds no buffer and no timer of its own (the proxy's ticker wakes idle
/// connections to look at their deadline), so an idle connection costs a few hundred bytes.
///
/// A fresh connection is probed with a one-byte peek (`readable()` may report a fresh socket ready
/// before any byte). Between requests (`fresh` false) the socket's readiness is enough, and costs no
/// system call: the read that took the last request was short, which tells tokio the socket was
/// drained, so it turns readable again only when the next request arrives. (Were it readable with
/// nothing to read, the session would just wait in its read, buffer allocated.)
async fn await_bytes(stream: &TcpStream, fresh: bool, idle: Duration, closing: &Closing) -> bool {
    use std::future::Future;
    let deadline = Instant::now().later(idle);
    loop {
        let notified = closing.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if closing.is_set() || Instant::now() >= deadline {
            return false;
        }
        let ready = std::future::poll_fn(|cx| {
            if notified.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(None);
            }
            if !fresh {
                return stream.poll_read_ready(cx).map(|r| Some(r.is_ok()));
            }
            let mut probe = [0u8; 1];
            let mut buf = tokio::io::ReadBuf::new(&mut probe);
            stream.poll_peek(cx, &mut buf).map(|r| Some(matches!(r, Ok(n) if n > 0)))
        })
        .await;
        if let Some(ready) = ready {
            return ready;
        }
    }
}

async fn http_conn(state: Arc<State>, stream: TcpStream, live: Live) {
    let _ = stream.set_nodelay(true);
    // An idle connection is only this small future and its socket: the session, with its buffers
    // and request state, is allocated when bytes arrive.
    if await_bytes(&stream, true, state.options.idle_timeout, &live.0).await {
        Box::pin(async {
            let Ok(peer) = stream.peer_addr() else { return };
            tokio::select! {
                _ = http_session(state, stream, peer, &live.0) => {}
                _ = live.0.killed() => {}
            }
        })
        .await;
    }
}

async fn http_session(state: Arc<State>, stream: TcpStream, peer: SocketAddr, closing: &Closing) {
    let idle = state.options.idle_timeout;
    let mut client = Conn::new(stream);
    loop {
        let head = match read_head(&mut client, true, idle).await {
            Ok(h) => h,
            Err(HeadError::Closed | HeadError::Io(_)) => return,
            Err(HeadError::Bad(why)) => {
                let _ = write_error(&mut client.stream, 400, why, false).await;
                return;
            }
        };
        if !exchange(&state, &mut client, head, peer, closing).await || closing.is_set() {
            return;
        }
        if client.buf.is_empty() {
            // Between requests a keep-alive connection holds no buffer either.
            client.buf = bytes::BytesMut::new();
            if !await_bytes(&client.stream, false, idle, closing).await {
                return;
            }
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        404 => "Not Found",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

/// Writes a plain-text error response from the proxy itself.
async fn write_error(stream: &mut TcpStream, status: u16, message: &str, keep: bool) -> std::io::Result<()> {
    let body = format!("dockfleet proxy: {message}\n");
    let head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n{}\r\n",
        reason(status),
        body.len(),
        if keep { "" } else { "connection: close\r\n" }
    );
    stream.write_all(format!("{head}{body}").as_bytes()).await
}

/// `example.com:8080` → `example.com`, `[::1]:80` → `[::1]`.
fn host_without_port(h: &str) -> &str {
    match h.rsplit_once(':') {
        Some((name, port))
            if port.bytes().all(|b| b.is_ascii_digit()) && (!name.contains(':') || name.ends_with(']')) =>
        {
            name
        }
        _ => h,
    }
}

fn cookie_value<'a>(head: &'a Head, name: &str) -> Option<&'a [u8]> {
    head.iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
        .flat_map(|(_, v)| v.split(|b| *b == b';'))
        .filter_map(|kv| {
            let kv = kv.trim_ascii();
            let eq = kv.iter().position(|b| *b == b'=')?;
            Some((&kv[..eq], &kv[eq + 1..]))
        })
        .find(|(k, _)| *k == name.as_bytes())
        .map(|(_, v)| v)
}

/// Largest request body kept in memory so the request can be resent.
const RETRY_BODY_LIMIT: u64 = 64 * 1024;

fn is_idempotent(method: &[u8]) -> bool {
    matches!(method, b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE" | b"PUT" | b"DELETE")
}

/// Tokens a `Connection` header names: more hop-by-hop headers.
fn connection_tokens(head: &Head) -> Vec<&[u8]> {
    head.iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
        .flat_map(|(_, v)| v.split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
        .collect()
}

fn forwardable(name: &[u8], listed: &[&[u8]]) -> bool {
    !is_hop_by_hop(name) && !listed.iter().any(|t| t.eq_ignore_ascii_case(name))
}

fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The request as it goes upstream: hop-by-hop headers dropped, `X-Forwarded-*` added.
fn upstream_head(head: &Head, path: &[u8], host: &[u8], peer: &SocketAddr, framing: Framing, upgrade: bool) -> Vec<u8> {
    let listed = connection_tokens(head);
    let mut out = Vec::with_capacity(head.raw.len() + 160);
    out.extend_from_slice(head.method());
    out.push(b' ');
    out.extend_from_slice(path);
    out.extend_from_slice(if head.minor == 0 { b" HTTP/1.0\r\n" } else { b" HTTP/1.1\r\n" });
    let mut xff: Option<&[u8]> = None;
    let (mut has_host, mut has_xfh) = (false, false);
    for (n, v) in head.iter() {
        if n.eq_ignore_ascii_case(b"x-forwarded-for") {
            xff = Some(v);
            continue;
        }
        if n.eq_ignore_ascii_case(b"x-forwarded-proto")
            || (n.eq_ignore_ascii_case(b"expect") && v.eq_ignore_ascii_case(b"100-continue"))
            || !forwardable(n, &listed)
        {
            continue;
        }
        has_host |= n.eq_ignore_ascii_case(b"host");
        has_xfh |= n.eq_ignore_ascii_case(b"x-forwarded-host");
        push_header(&mut out, n, v);
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    if let Some(prev) = xff {
        out.extend_from_slice(prev);
        out.extend_from_slice(b", ");
    }
    {
        use std::io::Write;
        let _ = write!(out, "{}", peer.ip());
    }
    out.extend_from_slice(b"\r\nx-forwarded-proto: http\r\n");
    if !has_xfh && !host.is_empty() {
        push_header(&mut out, b"x-forwarded-host", host);
    }
    if !has_host {
        // HTTP/1.0 clients may omit it; upstreams need one.
        push_header(&mut out, b"host", if host.is_empty() { b"localhost" } else { host });
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if upgrade {
        out.extend_from_slice(b"connection: upgrade\r\n");
        if let Some(u) = head.get("upgrade") {
            push_header(&mut out, b"upgrade", u);
        }
    } else if head.minor == 0 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// How an attempt to send a request upstream failed.
enum Failure {
    /// Writing failed, or the connection closed without a byte of answer.
    Unanswered(String),
    /// No response head within the response timeout.
    Timeout,
    /// A malformed answer.
    Bad(String),
}

/// One request through the proxy, from its parsed head to the end of its response. Returns whether
/// the client connection can carry another request.
async fn exchange(state: &State, client: &mut Conn, head: Head, peer: SocketAddr, closing: &Closing) -> bool {
    let opts = &state.options;
    let framing = match head.request_framing() {
        Ok(f) => f,
        Err(why) => {
            let _ = write_error(&mut client.stream, 400, why, false).await;
            return false;
        }
    };
    let keep = head.keep_alive();
    // Absolute-form targets (`GET http://host/path`) carry the host themselves.
    let target = head.target();
    let (authority, path): (&[u8], &[u8]) = match target.iter().position(|b| *b == b':') {
        Some(i) if target[i..].starts_with(b"://") => {
            let rest = &target[i + 3..];
            let slash = rest.iter().position(|b| *b == b'/').unwrap_or(rest.len());
            (&rest[..slash], if slash < rest.len() { &rest[slash..] } else { b"/" })
        }
        _ => (head.get("host").unwrap_or_default(), target),
    };
    let host_header = std::str::from_utf8(authority).unwrap_or_default();
    let host = host_without_port(host_header);
    let path_only = std::str::from_utf8(path.split(|b| *b == b'?').next().unwrap_or_default()).unwrap_or("/");
    let Some(route) = state.route(host, path_only) else {
        let keep = keep && framing == Framing::Empty;
        let _ = write_error(&mut client.stream, 404, &format!("no route for {host}{path_only}"), keep).await;
        return keep;
    };
    let upstream = &route.upstream;
    let upgrade = head.has_token("connection", "upgrade") && head.get("upgrade").is_some();
    let sticky =
        opts.sticky_cookie.as_deref().and_then(|c| cookie_value(&head, c)).and_then(|v| std::str::from_utf8(v).ok());
    let ip;
    let key = match &route.hash_header {
        Some(h) => head.get(h.as_str()).and_then(|v| std::str::from_utf8(v).ok()),
        // Only consistent hashing reads the key: format the client address only then.
        None if opts.balancer.strategy == "consistent-hash" => {
            ip = peer.ip().to_string();
            Some(ip.as_str())
        }
        None => None,
    };
    let mut up_head = upstream_head(&head, path, authority, &peer, framing, upgrade);
    if framing != Framing::Empty && head.get("expect").is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue")) {
        // Answer the client's Expect ourselves: the body is read (or streamed) right away.
        if client.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err() {
            return false;
        }
    }
    // Bodies up to the retry limit are read first, so the request can be sent again.
    let body: Option<Bytes> = match framing {
        Framing::Empty => Some(Bytes::new()),
        Framing::Length(n) if n <= RETRY_BODY_LIMIT => {
            while (client.buf.len() as u64) < n {
                match client.fill(opts.idle_timeout).await {
                    Ok(0) | Err(_) => return false,
                    Ok(_) => {}
                }
            }
            Some(client.buf.split_to(n as usize).freeze())
        }
        _ => None,
    };
    let replayable = is_idempotent(head.method()) || head.get("idempotency-key").is_some();
    let mut reset_retry = opts.retry_idempotent && replayable && body.is_some() && !upgrade;
    let mut stale_retries = 0;
    let mut tried: Vec<String> = Vec::new();
    let mut connect_failures = 0u32;
    let mut fresh = false;
    let mut last_error: std::borrow::Cow<'static, str> = "no endpoint".into();
    // After an error response the connection stays usable only if the whole request was read.
    let keep_after_error = keep && body.is_some();
    loop {
        let Some(pool) = upstream.pick(key, sticky, &tried) else {
            let status = if tried.is_empty() { 503 } else { 502 };
            let msg = format!("service {:?}: {last_error}", upstream.service);
            let _ = write_error(&mut client.stream, status, &msg, keep_after_error).await;
            return keep_after_error;
        };
        let id = &pool.endpoint.id;
        let started = Instant::now();
        let (mut up, reused) = match pool.checkout(opts.connect_timeout, fresh).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(endpoint = %id, error = %e, "connect failed; trying another endpoint");
                pool.errors.fetch_add(1, Ordering::Relaxed);
                upstream.balancer.release(id, false, started.elapsed());
                last_error = format!("connecting to {}:{}: {e}", pool.endpoint.address, pool.endpoint.port).into();
                tried.push(id.clone());
                connect_failures += 1;
                if connect_failures >= opts.connect_attempts {
                    let msg = format!("service {:?}: {last_error}", upstream.service);
                    let _ = write_error(&mut client.stream, 502, &msg, keep_after_error).await;
                    return keep_after_error;
                }
                continue;
            }
        };
        fresh = false;
        pool.in_flight.fetch_add(1, Ordering::Relaxed);
        let outcome = send_and_read_head(opts, client, &mut up, &mut up_head, body.as_ref(), framing, head.minor).await;
        let response = match outcome {
            Ok(r) => r,
            Err(failure) => {
                pool.in_flight.fetch_sub(1, Ordering::Relaxed);
                let streamed = body.is_none();
                match failure {
                    // A pooled connection closed under us, nothing answered: send again on a new one.
                    Failure::Unanswered(_) if reused && !streamed && replayable && stale_retries < 2 => {
                        upstream.balancer.release(id, true, Duration::ZERO);
                        stale_retries += 1;
                        fresh = true;
                        tried.retain(|t| t != id);
                        continue;
                    }
                    Failure::Unanswered(why) | Failure::Bad(why) => {
                        pool.errors.fetch_add(1, Ordering::Relaxed);
                        upstream.balancer.release(id, false, started.elapsed());
                        last_error = format!("{}:{} failed: {why}", pool.endpoint.address, pool.endpoint.port).into();
                        if reset_retry {
                            tracing::debug!(endpoint = %id, %why, "upstream failed before answering; retrying once");
                            reset_retry = false;
                            tried.push(id.clone());
                            continue;
                        }
                        let keep = keep_after_error && !streamed;
                        let _ = write_error(&mut client.stream, 502, &last_error, keep).await;
                        return keep;
                    }
                    Failure::Timeout => {
                        pool.errors.fetch_add(1, Ordering::Relaxed);
                        upstream.balancer.release(id, false, started.elapsed());
                        let msg = format!(
                            "{}:{} did not answer within {:?}",
                            pool.endpoint.address, pool.endpoint.port, opts.response_timeout
                        );
                        let _ = write_error(&mut client.stream, 504, &msg, false).await;
                        return false;
                    }
                }
            }
        };
        let latency = started.elapsed();
        pool.latency.record(latency);
        pool.requests.fetch_add(1, Ordering::Relaxed);
        let set_cookie = opts.sticky_cookie.as_deref().filter(|_| sticky != Some(pool.cookie.as_str()));
        let (ok, client_keep) =
            respond(opts, client, up, &pool, &head, response, keep, upgrade, set_cookie, closing).await;
        pool.in_flight.fetch_sub(1, Ordering::Relaxed);
        if !ok {
            pool.errors.fetch_add(1, Ordering::Relaxed);
        }
        upstream.balancer.release(id, ok, latency);
        return client_keep;
    }
}

/// Writes the request upstream and reads the response head (forwarding interim 1xx to the client).
#[allow(clippy::too_many_arguments)]
async fn send_and_read_head(
    opts: &ProxyOptions,
    client: &mut Conn,
    up: &mut Conn,
    up_head: &mut Vec<u8>,
    body: Option<&Bytes>,
    framing: Framing,
    client_minor: u8,
) -> Result<Head, Failure> {
    let unanswered = |e: std::io::Error| Failure::Unanswered(e.to_string());
    match body {
        Some(b) if b.is_empty() => up.stream.write_all(up_head).await.map_err(unanswered)?,
        Some(b) => {
            let mut out = Vec::with_capacity(up_head.len() + b.len());
            out.extend_from_slice(up_head);
            out.extend_from_slice(b);
            up.stream.write_all(&out).await.map_err(unanswered)?;
        }
        None => {
            // Streamed once, never resent.
            let head = std::mem::take(up_head);
            match forward_body(head, client, &mut up.stream, framing, opts.idle_timeout).await {
                Ok(()) => {}
                Err(ForwardError::Write(e)) => return Err(unanswered(e)),
                Err(ForwardError::Read(e)) => return Err(Failure::Bad(format!("reading the request body: {e}"))),
                Err(ForwardError::Bad(why)) => return Err(Failure::Bad(why.into())),
            }
        }
    }
    loop {
        match read_head(up, false, opts.response_timeout).await {
            Ok(h) if (100..200).contains(&h.status) && h.status != 101 => {
                if client_minor == 1 && h.status != 100 {
                    client.stream.write_all(&h.raw).await.map_err(|e| Failure::Bad(e.to_string()))?;
                }
            }
            Ok(h) => return Ok(h),
            Err(HeadError::Closed) => return Err(Failure::Unanswered("closed without answering".into())),
            Err(HeadError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => return Err(Failure::Timeout),
            Err(HeadError::Io(e)) => return Err(unanswered(e)),
            Err(HeadError::Bad(why)) => return Err(Failure::Bad(why.into())),
        }
    }
}

/// Sends the response head and body to the client (or splices an upgraded connection). Returns
/// (the upstream answered in full, the client connection can carry another request).
#[allow(clippy::too_many_arguments)]
async fn respond(
    opts: &ProxyOptions,
    client: &mut Conn,
    mut up: Conn,
    pool: &Pool,
    request: &Head,
    response: Head,
    keep: bool,
    upgrade: bool,
    set_cookie: Option<&str>,
    closing: &Closing,
) -> (bool, bool) {
    let framing = match response.response_framing(request.method()) {
        Ok(f) => f,
        Err(why) => {
            let _ = write_error(&mut client.stream, 502, &format!("bad upstream response: {why}"), false).await;
            return (false, false);
        }
    };
    let switching = upgrade && response.status == 101;
    let client_keep = keep && framing != Framing::Close && !switching && !closing.is_set();
    let up_keep = response.keep_alive() && framing != Framing::Close && !switching;
    let listed = connection_tokens(&response);
    let mut out = Vec::with_capacity(response.raw.len() + 96);
    out.extend_from_slice(b"HTTP/1.1 ");
    let status = response.status.min(999);
    out.extend_from_slice(&[b'0' + (status / 100) as u8, b'0' + (status / 10 % 10) as u8, b'0' + (status % 10) as u8]);
    out.push(b' ');
    out.extend_from_slice(response.bytes(&response.first));
    out.extend_from_slice(b"\r\n");
    for (n, v) in response.iter() {
        if forwardable(n, &listed) {
            push_header(&mut out, n, v);
        }
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if let Some(name) = set_cookie {
        out.extend_from_slice(format!("set-cookie: {name}={}; Path=/; HttpOnly\r\n", pool.cookie).as_bytes());
    }
    if switching {
        out.extend_from_slice(b"connection: upgrade\r\n");
        if let Some(u) = response.get("upgrade") {
            push_header(&mut out, b"upgrade", u);
        }
    } else if !client_keep {
        out.extend_from_slice(b"connection: close\r\n");
    } else if request.minor == 0 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    match forward_body(out, &mut up, &mut client.stream, framing, opts.idle_timeout).await {
        Ok(()) => {}
        // The client went away: not the endpoint's fault, but neither connection is reusable.
        Err(ForwardError::Write(_)) => return (true, false),
        Err(ForwardError::Read(e)) => {
            tracing::debug!(endpoint = %pool.endpoint.id, error = %e, "upstream failed mid-response");
            return (false, false);
        }
        Err(ForwardError::Bad(why)) => {
            tracing::debug!(endpoint = %pool.endpoint.id, %why, "upstream sent a malformed body");
            return (false, false);
        }
    }
    if switching {
        // Bytes either side sent early go first, then the two connections are spliced.
        let early = client.buf.split();
        let late = up.buf.split();
        if up.stream.write_all(&early).await.is_ok() && client.stream.write_all(&late).await.is_ok() {
            if let Err(e) = splice(&mut client.stream, &mut up.stream).await {
                tracing::debug!(error = %e, "upgraded connection ended with an error");
            }
        }
        return (true, false);
    }
    if up_keep {
        pool.checkin(up, opts.max_idle_per_endpoint as usize);
    }
    (true, client_keep)
}
