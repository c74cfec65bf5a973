//! The built-in proxy against real HTTP and TCP servers on loopback: routing, forwarding headers,
//! endpoints following discovery live with draining, retries, stickiness, keep-alive pools, upgrades,
//! graceful shutdown and the TCP mode. (The end-to-end test on the testbed's engines is in `e2e.rs`.)

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dockfleet::*;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A real HTTP/1.1 server on loopback that says who it is and what it saw.
struct Backend {
    port: u16,
    conns: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn backend(name: &'static str) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let conns = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (c, r) = (conns.clone(), requests.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            c.fetch_add(1, Ordering::SeqCst);
            let r = r.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                    let r = r.clone();
                    async move {
                        r.fetch_add(1, Ordering::SeqCst);
                        let h =
                            |n: &str| req.headers().get(n).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
                        let seen = format!(
                            "xff={} xfp={} xfh={} keepalive={} path={}",
                            h("x-forwarded-for"),
                            h("x-forwarded-proto"),
                            h("x-forwarded-host"),
                            h("keep-alive"),
                            req.uri()
                        );
                        if req.uri().path() == "/upgrade" {
                            let on = hyper::upgrade::on(&mut req);
                            tokio::spawn(async move {
                                let mut io = TokioIo::new(on.await.unwrap());
                                let mut buf = [0u8; 64];
                                while let Ok(n) = io.read(&mut buf).await {
                                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            });
                            let resp = Response::builder()
                                .status(101)
                                .header("connection", "upgrade")
                                .header("upgrade", "echo")
                                .body(Full::new(Bytes::new()))
                                .unwrap();
                            return Ok::<_, std::convert::Infallible>(resp);
                        }
                        if req.uri().path() == "/slow" {
                            tokio::time::sleep(Duration::from_millis(700)).await;
                        }
                        let method = req.method().to_string();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let text = format!("{name} {method} {} {seen}", String::from_utf8_lossy(&body));
                        Ok(Response::builder()
                            .header("x-backend", name)
                            .header("x-hop", "drop-me")
                            .header("connection", "x-hop")
                            .body(Full::new(Bytes::from(text)))
                            .unwrap())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Backend { port, conns, requests, task }
}

/// A server that reads a request and closes the connection without answering.
async fn resetting_backend() -> (u16, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            let h = h.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                if s.read(&mut buf).await.unwrap_or(0) > 0 {
                    h.fetch_add(1, Ordering::SeqCst);
                }
                drop(s);
            });
        }
    });
    (port, hits, task)
}

/// A port nothing listens on.
async fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

struct Reply {
    status: u16,
    headers: hyper::HeaderMap,
    body: String,
}

type Client = hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn client() -> Client {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

async fn send(c: &Client, method: &str, url: String, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut b = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = c.request(b.body(Full::new(Bytes::from(body.to_string()))).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).to_string();
    Reply { status, headers, body }
}

async fn get(c: &Client, proxy: &Proxy, path: &str) -> Reply {
    send(c, "GET", format!("http://{}{path}", proxy.address()), &[], "").await
}

async fn register(d: &EmbeddedDiscovery, service: &str, id: &str, port: u16) {
    d.register(&Instance::new(service, id, "127.0.0.1", port)).await.unwrap();
}

async fn start(d: &EmbeddedDiscovery, options: ProxyOptions) -> Proxy {
    let proxy = Proxy::start(Arc::new(d.clone()), options).await.unwrap();
    proxy.wait_ready(Duration::from_secs(5)).await.unwrap();
    proxy
}

fn http(routes: Vec<Route>) -> ProxyOptions {
    ProxyOptions { routes, ..Default::default() }
}

fn who(r: &Reply) -> String {
    r.body.split(' ').next().unwrap().to_string()
}

fn stats_of(proxy: &Proxy, id: &str) -> ProxyEndpointStats {
    proxy.stats().into_iter().find(|s| s.endpoint.id == id).unwrap_or_else(|| panic!("no stats for {id}"))
}

/// Waits until `f` holds (up to 5 s).
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn routes_balance_and_forward_headers() {
    let (a, b, api) = (backend("a").await, backend("b").await, backend("api").await);
    let d = EmbeddedDiscovery::new();
    register(&d, "web", "a", a.port).await;
    register(&d, "web", "b", b.port).await;
    register(&d, "api", "api", api.port).await;
    let proxy = start(
        &d,
        http(vec![
            Route::new("web"),
            Route { path_prefix: "/api".into(), ..Route::new("api") },
            Route { host: Some("*.api.test".into()), ..Route::new("api") },
        ]),
    )
    .await;
    let c = client();

    // Round robin over the two web endpoints.
    let mut seen = BTreeMap::new();
    for _ in 0..10 {
        let r = get(&c, &proxy, "/index.html").await;
        assert_eq!(r.status, 200);
        *seen.entry(who(&r)).or_insert(0) += 1;
    }
    assert_eq!(seen, BTreeMap::from([("a".to_string(), 5), ("b".to_string(), 5)]));

    // Path prefixes match whole segments; the longest wins over `/`.
    assert_eq!(who(&get(&c, &proxy, "/api/users?x=1").await), "api");
    assert_eq!(who(&get(&c, &proxy, "/api").await), "api");
    assert_ne!(who(&get(&c, &proxy, "/apiary").await), "api");
    // Host routes (wildcard, case-insensitive, port ignored) come before any-host routes.
    let r = send(&c, "GET", format!("http://{}/x", proxy.address()), &[("host", "v1.API.test:8080")], "").await;
    assert_eq!(who(&r), "api");

    // Forwarding headers, the query kept, hop-by-hop headers dropped both ways.
    let r = send(
        &c,
        "GET",
        format!("http://{}/api/q?k=v", proxy.address()),
        &[("x-forwarded-for", "203.0.113.9"), ("keep-alive", "timeout=5"), ("host", "shop.test")],
        "",
    )
    .await;
    assert!(r.body.contains("xff=203.0.113.9, 127.0.0.1 "), "{}", r.body);
    assert!(r.body.contains("xfp=http "), "{}", r.body);
    assert!(r.body.contains("xfh=shop.test "), "{}", r.body);
    assert!(r.body.contains("keepalive= "), "{}", r.body);
    assert!(r.body.contains("path=/api/q?k=v"), "{}", r.body);
    assert_eq!(r.headers.get("x-backend").unwrap(), "api");
    assert!(r.headers.get("x-hop").is_none(), "a header named by Connection is hop-by-hop");

    // Bodies go through.
    let r = send(&c, "POST", format!("http://{}/", proxy.address()), &[], "hello body").await;
    assert!(r.body.contains("POST hello body"), "{}", r.body);

    // Counters.
    let s = stats_of(&proxy, "a");
    assert!(s.requests >= 5 && s.errors == 0 && s.in_flight == 0, "{s:?}");
    assert_eq!(s.latency_counts.len(), LATENCY_BOUNDS_MS.len() + 1);
    assert_eq!(s.latency_counts.iter().sum::<u64>(), s.requests);
    assert!(s.latency_p99_ms > 0.0);
    proxy.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn unrouted_and_unserved_requests_get_clear_statuses() {
    let d = EmbeddedDiscovery::new();
    let proxy =
        Proxy::start(Arc::new(d.clone()), http(vec![Route { host: Some("only.test".into()), ..Route::new("nobody") }]))
            .await
            .unwrap();
    let c = client();
    let r = get(&c, &proxy, "/").await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("no route"), "{}", r.body);
    let r = send(&c, "GET", format!("http://{}/", proxy.address()), &[("host", "only.test")], "").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("nobody"), "{}", r.body);
    let err = proxy.wait_ready(Duration::from_millis(100)).await.unwrap_err();
    assert_eq!(err.code(), "timeout");
}

#[tokio::test]
async fn endpoints_follow_discovery_and_removed_ones_drain() {
    let (a, b) = (backend("a").await, backend("b").await);
    let d = EmbeddedDiscovery::new();
    register(&d, "web", "a", a.port).await;
    let proxy = start(&d, http(vec![Route::new("web")])).await;
    let c = client();
    assert_eq!(who(&get(&c, &proxy, "/").await), "a");

    // A new instance gets requests as soon as it is registered.
    register(&d, "web", "b", b.port).await;
    eventually("b is an endpoint", || proxy.stats().len() == 2).await;
    let mut names: Vec<String> = Vec::new();
    for _ in 0..4 {
        names.push(who(&get(&c, &proxy, "/").await));
    }
    assert!(names.contains(&"b".to_string()), "{names:?}");

    // A slow request is in flight on each endpoint when `a` is removed: both finish; then only b serves.
    let slow = |c: Client, addr: String| {
        tokio::spawn(async move { send(&c, "GET", format!("http://{addr}/slow"), &[], "").await })
    };
    let s1 = slow(c.clone(), proxy.address());
    let s2 = slow(c.clone(), proxy.address());
    eventually("two requests in flight", || proxy.stats().iter().map(|s| s.in_flight).sum::<u64>() == 2).await;
    d.deregister("web", "a").await.unwrap();
    eventually("a is draining", || proxy.stats().iter().any(|s| s.endpoint.id == "a" && s.draining)).await;
    let a_before = a.requests.load(Ordering::SeqCst);
    for _ in 0..6 {
        assert_eq!(who(&get(&c, &proxy, "/").await), "b");
    }
    assert_eq!(a.requests.load(Ordering::SeqCst), a_before, "a removed endpoint got a new request");
    let (r1, r2) = (s1.await.unwrap(), s2.await.unwrap());
    assert_eq!((r1.status, r2.status), (200, 200));
    let mut finished = vec![who(&r1), who(&r2)];
    finished.sort();
    assert_eq!(finished, ["a", "b"], "the request in flight on the removed endpoint finished there");

    // An instance that stops passing drains the same way; passing again brings it back.
    register(&d, "web", "a", a.port).await;
    d.set_health("web", "b", "critical").await.unwrap();
    eventually("only a", || proxy.stats().iter().filter(|s| !s.draining).count() == 1).await;
    for _ in 0..4 {
        assert_eq!(who(&get(&c, &proxy, "/").await), "a");
    }
    d.set_health("web", "b", "passing").await.unwrap();
    eventually("b back", || proxy.stats().iter().filter(|s| !s.draining).count() == 2).await;
    proxy.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn failed_connects_are_retried_elsewhere_and_eject_the_endpoint() {
    let live = backend("live").await;
    let d = EmbeddedDiscovery::new();
    register(&d, "web", "dead", dead_port().await).await;
    register(&d, "web", "live", live.port).await;
    let proxy = start(&d, http(vec![Route::new("web")])).await;
    let c = client();
    for _ in 0..12 {
        let r = get(&c, &proxy, "/").await;
        assert_eq!((r.status, who(&r)), (200, "live".to_string()), "{}", r.body);
    }
    let dead = stats_of(&proxy, "dead");
    assert!(dead.errors >= 3, "{dead:?}");
    assert!(dead.ejected, "three failures within the window eject it: {dead:?}");
    assert!(dead.errors < 12, "ejected endpoints are not tried: {dead:?}");

    // With nothing alive, the client gets a 502 that says why.
    d.deregister("web", "live").await.unwrap();
    eventually("one endpoint", || proxy.stats().iter().filter(|s| !s.draining).count() == 1).await;
    let r = get(&c, &proxy, "/").await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("connecting to 127.0.0.1"), "{}", r.body);
}

#[tokio::test]
async fn idempotent_requests_are_retried_once_after_a_reset() {
    let good = backend("good").await;
    let (bad_port, bad_hits, _bad) = resetting_backend().await;
    let d = EmbeddedDiscovery::new();
    register(&d, "web", "bad", bad_port).await;
    register(&d, "web", "good", good.port).await;
    let options = ProxyOptions {
        balancer: BalancerOptions { max_fails: 0, ..Default::default() },
        ..http(vec![Route::new("web")])
    };
    let proxy = start(&d, options).await;
    let c = client();
    for _ in 0..4 {
        let r = send(&c, "PUT", format!("http://{}/", proxy.address()), &[], "put-body").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.starts_with("good PUT put-body"), "the kept body was resent: {}", r.body);
    }
    assert!(bad_hits.load(Ordering::SeqCst) >= 2, "the resetting endpoint was tried");
    // A POST is not idempotent: when it lands on the resetting endpoint the client gets a 502.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(send(&c, "POST", format!("http://{}/", proxy.address()), &[], "x").await.status);
    }
    assert!(statuses.contains(&502) && statuses.contains(&200), "{statuses:?}");
    proxy.shutdown(Duration::from_secs(1)).await;

    // With retries off, GETs fail too.
    let options = ProxyOptions {
        retry_idempotent: false,
        balancer: BalancerOptions { max_fails: 0, ..Default::default() },
        ..http(vec![Route::new("web")])
    };
    let proxy = start(&d, options).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(&c, &proxy, "/").await.status);
    }
    assert!(statuses.contains(&502), "{statuses:?}");
}

#[tokio::test]
async fn a_sticky_cookie_pins_a_client_until_its_endpoint_goes() {
    let (a, b) = (backend("a").await, backend("b").await);
    let d = EmbeddedDiscovery::new();
    register(&d, "web", "a", a.port).await;
    register(&d, "web", "b", b.port).await;
    let proxy =
        start(&d, ProxyOptions { sticky_cookie: Some("df_sticky".into()), ..http(vec![Route::new("web")]) }).await;
    let c = client();
    let first = get(&c, &proxy, "/").await;
    let cookie = first.headers.get("set-cookie").expect("a cookie is set").to_str().unwrap().to_string();
    assert!(cookie.starts_with("df_sticky=") && cookie.contains("HttpOnly"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    let url = format!("http://{}/", proxy.address());
    for _ in 0..6 {
        let r = send(&c, "GET", url.clone(), &[("cookie", &format!("theme=dark; {pair}"))], "").await;
        assert_eq!(who(&r), who(&first));
        assert!(r.headers.get("set-cookie").is_none(), "no new cookie while it holds");
    }
    d.deregister("web", &who(&first)).await.unwrap();
    eventually("one endpoint", || proxy.stats().iter().filter(|s| !s.draining).count() == 1).await;
    let r = send(&c, "GET", url, &[("cookie", &pair)], "").await;
    assert_ne!(who(&r), who(&first));
    assert!(r.headers.get("set-cookie").is_some(), "a new pin is set");
}

#[tokio::test]
async fn upstream_connections_are_kept_alive_and_reused() {
    let a = backend("a").await;
    let d = EmbeddedDiscovery::new();
    register(&d, "web", "a", a.port).await;
    let proxy = start(&d, http(vec![Route::new("web")])).await;
    let c = client();
    for _ in 0..50 {
        assert_eq!(get(&c, &proxy, "/").await.status, 200);
    }
    assert_eq!(a.requests.load(Ordering::SeqCst), 50);
    assert_eq!(a.conns.load(Ordering::SeqCst), 1, "sequential requests share one upstream connection");
    // Concurrent requests open more connections, which are then kept (up to max_idle_per_endpoint).
    let jobs: Vec<_> = (0..8)
        .map(|_| {
            let (c, addr) = (c.clone(), proxy.address());
            tokio::spawn(async move { send(&c, "GET", format!("http://{addr}/slow"), &[], "").await.status })
        })
        .collect();
    for j in jobs {
        assert_eq!(j.await.unwrap(), 200);
    }
    let opened = a.conns.load(Ordering::SeqCst);
    assert!(opened > 1, "{opened}");
    for _ in 0..20 {
        get(&c, &proxy, "/").await;
    }
    assert_eq!(a.conns.load(Ordering::SeqCst), opened, "pooled connections were reused");
}

#[tokio::test]
async fn upgrades_are_tunnelled() {
    let a = backend("a").await;
    let d = EmbeddedDiscovery::new();
    register(&d, "web", "a", a.port).await;
    let proxy = start(&d, http(vec![Route::new("web")])).await;
    let mut s = TcpStream::connect(proxy.address()).await.unwrap();
    s.write_all(b"GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n").await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: echo"), "{head}");
    s.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    assert_eq!(stats_of(&proxy, "a").in_flight, 1, "the tunnel counts as in flight");
    drop(s);
    eventually("tunnel closed", || stats_of(&proxy, "a").in_flight == 0).await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_requests_in_flight() {
    let a = backend("a").await;
    let d = EmbeddedDiscovery::new();
    register(&d, "web", "a", a.port).await;
    let proxy = Arc::new(start(&d, http(vec![Route::new("web")])).await);
    let c = client();
    let addr = proxy.address();
    let slow = tokio::spawn({
        let c = c.clone();
        let addr = addr.clone();
        async move { send(&c, "GET", format!("http://{addr}/slow"), &[], "").await }
    });
    eventually("in flight", || stats_of(&proxy, "a").in_flight == 1).await;
    let started = std::time::Instant::now();
    proxy.shutdown(Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(3), "idle connections do not hold the shutdown");
    assert_eq!(slow.await.unwrap().status, 200, "the request in flight finished");
    assert!(TcpStream::connect(&addr).await.is_err(), "no longer accepting");

    // A short grace cuts what is still running.
    let proxy = start(&d, http(vec![Route::new("web")])).await;
    let addr = proxy.address();
    let slow = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        out
    });
    eventually("in flight", || stats_of(&proxy, "a").in_flight == 1).await;
    proxy.shutdown(Duration::from_millis(50)).await;
    assert!(slow.await.unwrap().is_empty(), "cut before the answer");
}

#[tokio::test]
async fn idle_clients_are_closed_after_the_idle_timeout() {
    let a = backend("a").await;
    let d = EmbeddedDiscovery::new();
    register(&d, "web", "a", a.port).await;
    let proxy =
        start(&d, ProxyOptions { idle_timeout: Duration::from_millis(300), ..http(vec![Route::new("web")]) }).await;
    // Silent from the start.
    let mut silent = TcpStream::connect(proxy.address()).await.unwrap();
    // Idle after one request on a keep-alive connection.
    let mut kept = TcpStream::connect(proxy.address()).await.unwrap();
    kept.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let started = std::time::Instant::now();
    for s in [&mut silent, &mut kept] {
        let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await.unwrap().unwrap_or(0);
        assert_eq!(n, 0, "closed by the proxy");
    }
    assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());
}

/// A TCP server that answers each line with its name and the line.
async fn tcp_backend(name: &'static str) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = [0u8; 256];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let out = format!("{name}:{}", String::from_utf8_lossy(&buf[..n]));
                    if s.write_all(out.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, task)
}

async fn say(s: &mut TcpStream, what: &str) -> String {
    s.write_all(what.as_bytes()).await.unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).to_string()
}

#[tokio::test]
async fn tcp_mode_balances_connections_and_cuts_drained_ones() {
    let ((pa, _ta), (pb, _tb)) = (tcp_backend("a").await, tcp_backend("b").await);
    let d = EmbeddedDiscovery::new();
    register(&d, "echo", "a", pa).await;
    register(&d, "echo", "b", pb).await;
    register(&d, "echo", "dead", dead_port().await).await;
    let options = ProxyOptions {
        protocol: "tcp".into(),
        drain_timeout: Duration::from_millis(300),
        balancer: BalancerOptions { max_fails: 0, ..Default::default() },
        ..http(vec![Route::new("echo")])
    };
    let proxy = start(&d, options).await;
    let mut conns = Vec::new();
    let mut names = BTreeMap::new();
    for i in 0..6 {
        let mut s = TcpStream::connect(proxy.address()).await.unwrap();
        let reply = say(&mut s, &format!("hi{i}")).await;
        let (name, line) = reply.split_once(':').unwrap();
        assert_eq!(line, format!("hi{i}"));
        *names.entry(name.to_string()).or_insert(0) += 1;
        conns.push((name.to_string(), s));
    }
    assert_eq!(names.keys().collect::<Vec<_>>(), ["a", "b"], "the dead one was skipped");
    assert!(names.values().all(|n| *n >= 2), "{names:?}");
    assert!(stats_of(&proxy, "dead").errors >= 1);
    assert_eq!(stats_of(&proxy, "a").in_flight, names["a"]);

    // Removing `a`: its connections keep working for the drain time, then are closed; b's stay.
    d.deregister("echo", "a").await.unwrap();
    eventually("a draining", || stats_of(&proxy, "a").draining).await;
    for (name, s) in conns.iter_mut().filter(|(n, _)| n == "a") {
        assert_eq!(say(s, "still").await, format!("{name}:still"));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (name, s) in conns.iter_mut() {
        let mut buf = [0u8; 16];
        let _ = s.write_all(b"x").await;
        let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await.unwrap().unwrap_or(0);
        if name == "a" {
            assert_eq!(n, 0, "a drained connection is closed after drain_timeout");
        } else {
            assert!(n > 0, "b's connections are untouched");
        }
    }
    // Consistent hashing on the client IP sends every connection from here to the same endpoint.
    let options = ProxyOptions {
        protocol: "tcp".into(),
        balancer: BalancerOptions { strategy: "consistent-hash".into(), ..Default::default() },
        ..http(vec![Route::new("echo")])
    };
    register(&d, "echo", "a", pa).await;
    d.deregister("echo", "dead").await.unwrap();
    let proxy = start(&d, options).await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..5 {
        let mut s = TcpStream::connect(proxy.address()).await.unwrap();
        seen.insert(say(&mut s, "k").await);
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
}

#[tokio::test]
async fn bad_options_are_refused_with_the_field_path() {
    let d: Arc<dyn Discovery> = Arc::new(EmbeddedDiscovery::new());
    let cases: Vec<(ProxyOptions, &str)> = vec![
        (ProxyOptions { listen: "localhost".into(), ..http(vec![Route::new("web")]) }, "listen"),
        (ProxyOptions { protocol: "udp".into(), ..http(vec![Route::new("web")]) }, "protocol"),
        (http(vec![]), "routes"),
        (http(vec![Route::new("bad name")]), "routes[0].service"),
        (
            http(vec![Route::new("web"), Route { path_prefix: "api".into(), ..Route::new("api") }]),
            "routes[1].path_prefix",
        ),
        (http(vec![Route { host: Some("a b".into()), ..Route::new("web") }]), "routes[0].host"),
        (http(vec![Route::new("web"), Route::new("api")]), "routes[1].path_prefix"),
        (
            ProxyOptions {
                protocol: "tcp".into(),
                ..http(vec![Route { host: Some("a.test".into()), ..Route::new("w") }])
            },
            "routes[0].host",
        ),
        (ProxyOptions { protocol: "tcp".into(), ..http(vec![Route::new("a"), Route::new("b")]) }, "routes"),
        (
            ProxyOptions {
                balancer: BalancerOptions { strategy: "fastest".into(), ..Default::default() },
                ..http(vec![Route::new("web")])
            },
            "balancer.strategy",
        ),
        (ProxyOptions { sticky_cookie: Some("a;b".into()), ..http(vec![Route::new("web")]) }, "sticky_cookie"),
        (ProxyOptions { connect_attempts: 0, ..http(vec![Route::new("web")]) }, "connect_attempts"),
    ];
    for (options, field) in cases {
        let err = Proxy::start(d.clone(), options).await.unwrap_err();
        assert!(matches!(err.code(), "invalid_argument" | "invalid_address"), "{err}");
        assert!(
            err.to_string().contains(&format!("({field})")) || err.to_string().contains(&format!("invalid {field}:")),
            "{field}: {err}"
        );
    }
    // A port in use is an io error naming the address.
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let err =
        Proxy::start(d, ProxyOptions { listen: listen.clone(), ..http(vec![Route::new("web")]) }).await.unwrap_err();
    assert_eq!(err.code(), "io");
    assert!(err.to_string().contains(&listen), "{err}");
    let _: SocketAddr = listen.parse().unwrap();
}
