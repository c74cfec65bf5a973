//! Service discovery: where every instance of every service is, and whether it is healthy.
//!
//! [`Discovery`] is the interface; [`EmbeddedDiscovery`] keeps the registry in this process (the
//! default). A registration may carry a TTL: it is then kept alive for as long as the client that made
//! it lives, and vanishes at most one TTL after that client is gone (dropped, or its process crashed),
//! so a dead registrant never leaves a stale entry behind. Without a TTL an entry stays until it is
//! deregistered. Lookups return passing instances unless asked otherwise, and [`Discovery::watch`]
//! streams a service's changes, starting with a snapshot.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::host::ResultStream;
use crate::Later;

/// One instance of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Instance {
    /// Service name.
    pub service: String,
    /// Instance ID, unique within the service.
    pub id: String,
    /// Address clients connect to: an IP address (IPv6 bare or in brackets) or a host name.
    pub address: String,
    /// Port clients connect to.
    pub port: u16,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// Free-form metadata (dockfleet's registrator sets `host`, `container`, `slot`).
    pub metadata: BTreeMap<String, String>,
    /// Time to live: the entry is kept alive while the client that registered it lives, and vanishes
    /// at most this long after (`None`: until deregistered).
    #[serde(with = "crate::serde_ms::option")]
    pub ttl: Option<Duration>,
    /// `passing` (default), `warning` or `critical`.
    pub health: String,
}

impl Default for Instance {
    fn default() -> Self {
        Instance {
            service: String::new(),
            id: String::new(),
            address: String::new(),
            port: 0,
            tags: Vec::new(),
            metadata: BTreeMap::new(),
            ttl: None,
            health: "passing".into(),
        }
    }
}

impl Instance {
    /// A passing instance of `service` at `address:port`.
    pub fn new(service: impl Into<String>, id: impl Into<String>, address: impl Into<String>, port: u16) -> Self {
        Instance { service: service.into(), id: id.into(), address: address.into(), port, ..Default::default() }
    }

    /// Checks it without touching the registry; the error names the field.
    pub fn validate(&self) -> Result<()> {
        check_name("service", &self.service)?;
        check_name("id", &self.id)?;
        if !is_address(&self.address) {
            return Err(Error::invalid(
                "address",
                format!("{:?} is not an IP address (IPv6 bare or in brackets) or a host name", self.address),
            ));
        }
        if self.port == 0 {
            return Err(Error::invalid("port", "must be 1-65535"));
        }
        if self.ttl.is_some_and(|t| t < Duration::from_millis(100)) {
            return Err(Error::invalid("ttl", "must be at least 100 ms"));
        }
        check_health("health", &self.health)
    }
}

impl Instance {
    /// Whether an entry read from a registry passes [`Instance::validate`]; one that does not (another
    /// writer put it there unchecked) is logged as left out of `what`.
    pub(crate) fn checked(&self, what: &dyn std::fmt::Display) -> bool {
        match self.validate() {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(service = %self.service, id = %self.id, "instance left out of {what}: {e}");
                false
            }
        }
    }

    /// Whether it gets traffic: passing, and carrying `tag` when one is asked for.
    pub(crate) fn serves(&self, tag: Option<&String>) -> bool {
        self.health == "passing" && tag.is_none_or(|t| self.tags.contains(t))
    }

    /// Its balancing weight: metadata `weight` when a positive number, else 1.
    pub(crate) fn weight(&self) -> u32 {
        self.metadata.get("weight").and_then(|w| w.parse().ok()).filter(|w| *w > 0).unwrap_or(1)
    }
}

/// Whether `a` is an IP address (IPv6 bare or in brackets, with or without `%zone`) or a host name
/// (labels of letters, digits, `-` and `_`, joined by dots). Nothing else: an address is written into
/// the nginx and HAProxy configurations that `render` makes (`server {address}:{port};`), where a `;`
/// or a line break would add directives of its own.
pub(crate) fn is_address(a: &str) -> bool {
    let bracketed = a.strip_prefix('[').and_then(|s| s.strip_suffix(']'));
    // An IPv6 address may name its interface (`fe80::1%eth0`).
    let ipv6 = |s: &str| match s.split_once('%') {
        Some((ip, zone)) => {
            ip.parse::<std::net::Ipv6Addr>().is_ok()
                && !zone.is_empty()
                && zone.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        }
        None => s.parse::<std::net::Ipv6Addr>().is_ok(),
    };
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    a.parse::<std::net::Ipv4Addr>().is_ok()
        || ipv6(a)
        || bracketed.is_some_and(ipv6)
        || (a.len() <= 253 && a.split('.').all(label))
}

/// Checks a service name or instance ID: 1-253 of `[A-Za-z0-9_.-:@]`, not `.` or `..`; the error names
/// `field`.
pub(crate) fn check_name(field: &str, value: &str) -> Result<()> {
    // (`.` and `..` are refused: a Swarm service's name is part of the path of the engine's URL.)
    let ok = !value.is_empty()
        && value.len() <= 253
        && value.chars().all(|c| c.is_ascii_alphanumeric() || "_.-:@".contains(c))
        && value != "."
        && value != "..";
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(field, format!("{value:?} must be 1-253 of [A-Za-z0-9_.-:@], not `.` or `..`")))
    }
}

fn check_health(field: &str, h: &str) -> Result<()> {
    if ["passing", "warning", "critical"].contains(&h) {
        Ok(())
    } else {
        Err(Error::invalid(field, format!("{h:?} is not passing, warning or critical")))
    }
}

/// Which instances [`Discovery::lookup`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LookupOptions {
    /// Also return instances that are not passing.
    pub include_unhealthy: bool,
    /// Only instances carrying this tag.
    pub tag: Option<String>,
}

/// One change of a watched service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryEvent {
    /// `snapshot` (every instance, healthy or not: the first event, and again whenever the watch had
    /// to catch up), `insert`, `update` (address, port, tags or metadata changed), `health` or `remove`.
    pub kind: String,
    /// Service watched.
    pub service: String,
    /// The instances concerned: all of them for `snapshot`, one otherwise.
    pub instances: Vec<Instance>,
}

impl DiscoveryEvent {
    /// Applies this change to a watcher's view of the service (instances by ID).
    pub(crate) fn apply_to(self, known: &mut BTreeMap<String, Instance>) {
        match self.kind.as_str() {
            "snapshot" => *known = self.instances.into_iter().map(|i| (i.id.clone(), i)).collect(),
            "remove" => self.instances.iter().for_each(|i| {
                known.remove(&i.id);
            }),
            _ => known.extend(self.instances.into_iter().map(|i| (i.id.clone(), i))),
        }
    }
}

/// A service registry. Implemented by [`EmbeddedDiscovery`]; shaped so that etcd and Consul backends
/// fit (keys under leases, sessions).
#[async_trait]
pub trait Discovery: Send + Sync + std::fmt::Debug {
    /// Backend name (`embedded`, `etcd`).
    fn backend(&self) -> &str;
    /// Registers an instance, or replaces the one with the same service and ID.
    async fn register(&self, instance: &Instance) -> Result<()>;
    /// Removes an instance; `false` when there was none.
    async fn deregister(&self, service: &str, id: &str) -> Result<bool>;
    /// Sets an instance's health (`not_found` when there is no such instance).
    async fn set_health(&self, service: &str, id: &str, health: &str) -> Result<()>;
    /// A service's instances, passing ones only unless asked otherwise, sorted by ID.
    async fn lookup(&self, service: &str, options: &LookupOptions) -> Result<Vec<Instance>>;
    /// Names of the services with at least one instance.
    async fn services(&self) -> Result<Vec<String>>;
    /// A service's changes, starting with a snapshot; ends only when dropped (or on a backend error).
    fn watch(&self, service: &str) -> ResultStream<DiscoveryEvent>;
    /// Another registrant on the same registry with its own lifetime: its TTL'd registrations vanish
    /// at most one TTL after it is dropped (embedded: a client; etcd: a lease of its own).
    fn session(&self) -> Arc<dyn Discovery>;
}

// ---------------------------------------------------------------------------------------------
// The embedded backend.

#[derive(Debug)]
struct Entry {
    instance: Instance,
    /// The client that registered it (for TTL'd entries: kept alive while it lives).
    owner: Weak<()>,
    expires: Option<Instant>,
}

#[derive(Debug)]
struct Store {
    entries: Mutex<BTreeMap<(String, String), Entry>>,
    changes: broadcast::Sender<DiscoveryEvent>,
    sweeper: std::sync::Once,
}

impl Store {
    fn notify(&self, kind: &str, instance: Instance) {
        let _ = self.changes.send(DiscoveryEvent {
            kind: kind.into(),
            service: instance.service.clone(),
            instances: vec![instance],
        });
    }

    /// Drops TTL'd entries whose owner is gone and whose time is up; refreshes the others.
    fn sweep(&self, now: Instant) {
        let mut gone = Vec::new();
        {
            let mut entries = self.entries.lock().expect("discovery lock");
            entries.retain(|_, e| {
                let Some(ttl) = e.instance.ttl else { return true };
                if e.owner.strong_count() > 0 {
                    e.expires = Some(now.later(ttl));
                    return true;
                }
                let keep = e.expires.is_some_and(|t| now < t);
                if !keep {
                    gone.push(e.instance.clone());
                }
                keep
            });
        }
        for i in gone {
            tracing::debug!(service = %i.service, id = %i.id, "registration expired");
            self.notify("remove", i);
        }
    }
}

/// How often the embedded registry looks for expired entries.
const SWEEP: Duration = Duration::from_millis(50);

/// The in-process registry. Each [`EmbeddedDiscovery::client`] is a separate registrant sharing the
/// same registry: its TTL'd registrations live as long as it (or a clone of it) does.
#[derive(Debug, Clone)]
pub struct EmbeddedDiscovery {
    store: Arc<Store>,
    /// This client's liveness token.
    alive: Arc<()>,
}

impl Default for EmbeddedDiscovery {
    fn default() -> Self {
        Self::new()
    }
}

impl EmbeddedDiscovery {
    /// A new, empty registry (and its first client). Needs no runtime: the task that expires TTL'd
    /// entries starts with the first of them.
    pub fn new() -> Self {
        let store = Arc::new(Store {
            entries: Mutex::new(BTreeMap::new()),
            changes: broadcast::channel(4096).0,
            sweeper: std::sync::Once::new(),
        });
        EmbeddedDiscovery { store, alive: Arc::new(()) }
    }

    /// Starts the expiry task (once per registry); it holds only a weak reference and ends with it.
    fn start_sweeper(&self) {
        self.store.sweeper.call_once(|| {
            let weak = Arc::downgrade(&self.store);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(SWEEP);
                loop {
                    tick.tick().await;
                    match weak.upgrade() {
                        Some(s) => s.sweep(Instant::now()),
                        None => break,
                    }
                }
            });
        });
    }

    /// Another registrant on the same registry, with its own lifetime for TTL'd registrations.
    pub fn client(&self) -> Self {
        EmbeddedDiscovery { store: self.store.clone(), alive: Arc::new(()) }
    }

    fn snapshot(&self, service: &str) -> Vec<Instance> {
        let entries = self.store.entries.lock().expect("discovery lock");
        entries
            .range((service.to_string(), String::new())..)
            .take_while(|((s, _), _)| s == service)
            .map(|(_, e)| e.instance.clone())
            .collect()
    }
}

#[async_trait]
impl Discovery for EmbeddedDiscovery {
    fn backend(&self) -> &str {
        "embedded"
    }

    async fn register(&self, instance: &Instance) -> Result<()> {
        instance.validate()?;
        if instance.ttl.is_some() {
            self.start_sweeper();
        }
        let key = (instance.service.clone(), instance.id.clone());
        let entry = Entry {
            instance: instance.clone(),
            owner: Arc::downgrade(&self.alive),
            expires: instance.ttl.map(|t| Instant::now().later(t)),
        };
        let previous = self.store.entries.lock().expect("discovery lock").insert(key, entry);
        if let Some(kind) = change_kind(previous.as_ref().map(|p| &p.instance), instance) {
            self.store.notify(kind, instance.clone());
        }
        Ok(())
    }

    async fn deregister(&self, service: &str, id: &str) -> Result<bool> {
        let removed = self.store.entries.lock().expect("discovery lock").remove(&(service.to_string(), id.to_string()));
        match removed {
            Some(e) => {
                self.store.notify("remove", e.instance);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn set_health(&self, service: &str, id: &str, health: &str) -> Result<()> {
        check_health("health", health)?;
        let changed = {
            let mut entries = self.store.entries.lock().expect("discovery lock");
            let e = entries.get_mut(&(service.to_string(), id.to_string())).ok_or_else(|| Error::NotFound {
                kind: "instance".into(),
                id: format!("{service}/{id}"),
                host: "discovery".into(),
                message: "no such instance".into(),
            })?;
            if e.instance.health == health {
                None
            } else {
                e.instance.health = health.to_string();
                Some(e.instance.clone())
            }
        };
        if let Some(i) = changed {
            self.store.notify("health", i);
        }
        Ok(())
    }

    async fn lookup(&self, service: &str, options: &LookupOptions) -> Result<Vec<Instance>> {
        Ok(filter(self.snapshot(service), options))
    }

    async fn services(&self) -> Result<Vec<String>> {
        let entries = self.store.entries.lock().expect("discovery lock");
        let mut names: Vec<String> = entries.keys().map(|(s, _)| s.clone()).collect();
        names.dedup();
        Ok(names)
    }

    fn session(&self) -> Arc<dyn Discovery> {
        Arc::new(self.client())
    }

    fn watch(&self, service: &str) -> ResultStream<DiscoveryEvent> {
        // Subscribe before the snapshot, so no change falls between them.
        let mut rx = self.store.changes.subscribe();
        let this = self.clone_weak();
        let service = service.to_string();
        Box::pin(async_stream::stream! {
            let Some(me) = this.upgrade() else { return };
            yield Ok(DiscoveryEvent { kind: "snapshot".into(), service: service.clone(), instances: me.snapshot(&service) });
            drop(me);
            loop {
                match rx.recv().await {
                    Ok(e) if e.service == service => yield Ok(e),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Fell behind: start again from the current state.
                        let Some(me) = this.upgrade() else { return };
                        yield Ok(DiscoveryEvent { kind: "snapshot".into(), service: service.clone(), instances: me.snapshot(&service) });
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        })
    }
}

/// A handle on the registry that does not keep the client alive (a watch must not extend TTLs).
struct WeakClient(Weak<Store>);

impl WeakClient {
    fn upgrade(&self) -> Option<EmbeddedDiscovery> {
        self.0.upgrade().map(|store| EmbeddedDiscovery { store, alive: Arc::new(()) })
    }
}

impl EmbeddedDiscovery {
    fn clone_weak(&self) -> WeakClient {
        WeakClient(Arc::downgrade(&self.store))
    }
}

/// What a registration changes: `insert`, `health` (only the health differs), `update`, or nothing.
pub(crate) fn change_kind(previous: Option<&Instance>, now: &Instance) -> Option<&'static str> {
    match previous {
        None => Some("insert"),
        Some(p) if p == now => None,
        Some(p) if Instance { health: now.health.clone(), ..p.clone() } == *now => Some("health"),
        Some(_) => Some("update"),
    }
}

/// Applies lookup options to a service's instances (sorted by ID).
pub(crate) fn filter(mut all: Vec<Instance>, options: &LookupOptions) -> Vec<Instance> {
    all.retain(|i| options.include_unhealthy || i.health == "passing");
    if let Some(tag) = &options.tag {
        all.retain(|i| i.tags.contains(tag));
    }
    all.sort_by(|a, b| a.id.cmp(&b.id));
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn web(id: &str, port: u16) -> Instance {
        Instance::new("web", id, "10.0.0.1", port)
    }

    #[test]
    fn addresses_are_ip_addresses_or_host_names() {
        for ok in [
            "10.0.0.1",
            "::1",
            "[::1]",
            "fe80::1%eth0",
            "[fe80::1%eth0]",
            "2606:2800:220:1:248:1893:25c8:1946",
            "web-1",
            "db_1.internal",
            "localhost",
        ] {
            assert!(is_address(ok), "{ok}");
        }
        for bad in [
            "",
            "10.0.0.1;",
            "a b",
            "host\nserver",
            "[10.0.0.1]",
            "-web",
            "web-",
            "a..b",
            "a/b",
            "{x}",
            "a:80",
            "fe80::1%",
            "::1%a;b",
            "10.0.0.1%eth0",
        ] {
            assert!(!is_address(bad), "{bad:?}");
            assert_eq!(Instance::new("web", "w", bad, 80).validate().unwrap_err().code(), "invalid_argument");
        }
    }

    #[tokio::test]
    async fn register_lookup_health_and_deregister() {
        let d = EmbeddedDiscovery::new();
        d.register(&web("a", 80)).await.unwrap();
        d.register(&Instance { tags: vec!["canary".into()], ..web("b", 81) }).await.unwrap();
        assert_eq!(d.lookup("web", &LookupOptions::default()).await.unwrap().len(), 2);
        d.set_health("web", "a", "critical").await.unwrap();
        let ids = |v: Vec<Instance>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
        assert_eq!(ids(d.lookup("web", &LookupOptions::default()).await.unwrap()), ["b"]);
        let all = LookupOptions { include_unhealthy: true, ..Default::default() };
        assert_eq!(ids(d.lookup("web", &all).await.unwrap()), ["a", "b"]);
        let canary = LookupOptions { tag: Some("canary".into()), ..Default::default() };
        assert_eq!(ids(d.lookup("web", &canary).await.unwrap()), ["b"]);
        assert_eq!(d.services().await.unwrap(), ["web"]);
        assert!(d.deregister("web", "a").await.unwrap());
        assert!(!d.deregister("web", "a").await.unwrap());
        assert_eq!(d.set_health("web", "a", "passing").await.unwrap_err().code(), "not_found");
        let e = d.register(&Instance { port: 0, ..web("c", 1) }).await.unwrap_err();
        assert!(e.to_string().contains("port"), "{e}");
        assert!(d.set_health("web", "b", "sick").await.unwrap_err().to_string().contains("health"));
    }

    #[tokio::test]
    async fn watch_starts_with_a_snapshot_then_streams_changes() {
        let d = EmbeddedDiscovery::new();
        d.register(&web("a", 80)).await.unwrap();
        d.register(&Instance::new("other", "x", "10.0.0.9", 1)).await.unwrap();
        let mut w = d.watch("web");
        let first = w.next().await.unwrap().unwrap();
        assert_eq!((first.kind.as_str(), first.instances.len()), ("snapshot", 1));
        d.register(&web("b", 81)).await.unwrap();
        d.register(&web("b", 81)).await.unwrap(); // unchanged: no event
        d.register(&web("b", 82)).await.unwrap();
        d.set_health("web", "b", "critical").await.unwrap();
        d.register(&Instance::new("other", "y", "10.0.0.9", 2)).await.unwrap();
        d.deregister("web", "a").await.unwrap();
        let mut kinds = Vec::new();
        for _ in 0..4 {
            let e = w.next().await.unwrap().unwrap();
            assert_eq!(e.service, "web");
            kinds.push(e.kind);
        }
        assert_eq!(kinds, ["insert", "update", "health", "remove"]);
    }

    #[tokio::test]
    async fn ttl_entries_live_with_their_client_and_expire_after_it() {
        let registry = EmbeddedDiscovery::new();
        let owner = registry.client();
        let ttl = Duration::from_millis(300);
        owner.register(&Instance { ttl: Some(ttl), ..web("a", 80) }).await.unwrap();
        registry.register(&web("permanent", 81)).await.unwrap();
        tokio::time::sleep(ttl * 3).await;
        assert_eq!(
            registry.lookup("web", &LookupOptions::default()).await.unwrap().len(),
            2,
            "kept alive by its owner"
        );
        let mut w = registry.watch("web");
        w.next().await.unwrap().unwrap();
        let dropped = Instant::now();
        drop(owner);
        let e = tokio::time::timeout(Duration::from_secs(2), w.next()).await.unwrap().unwrap().unwrap();
        assert_eq!((e.kind.as_str(), e.instances[0].id.as_str()), ("remove", "a"));
        let after = dropped.elapsed();
        assert!(after <= ttl + Duration::from_millis(150), "expired {after:?} after its owner went");
        let left = registry.lookup("web", &LookupOptions::default()).await.unwrap();
        assert_eq!(left.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["permanent"]);
    }
}
