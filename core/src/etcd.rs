//! The etcd v3 discovery backend (feature `etcd`).
//!
//! Each instance is one key, `PREFIX/services/SERVICE/ID`, holding the instance as JSON. A TTL'd
//! registration is put under a lease of this client's (one per TTL) that a background task keeps alive
//! while the client lives: when the client is dropped or its process dies, the lease runs out and etcd
//! deletes the keys, so a crashed registrant leaves nothing stale. Watches start from a snapshot read at
//! a revision and follow from the next one; after a reconnect they resume from the last revision seen,
//! so no change is missed or repeated (a compacted history starts again from a snapshot).

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{Client, ConnectOptions, DeleteOptions, EventType, GetOptions, PutOptions, WatchOptions};
use serde::{Deserialize, Serialize};

use crate::discovery::{change_kind, filter, Discovery, DiscoveryEvent, Instance, LookupOptions};
use crate::error::{Error, Result};
use crate::host::ResultStream;

/// Where the etcd cluster is and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EtcdConfig {
    /// Client endpoints, e.g. `http://127.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// Key prefix under which dockfleet keeps its registry (default `/dockfleet`).
    pub prefix: String,
    /// Limit for establishing a connection (default 3 s).
    #[serde(with = "crate::serde_ms")]
    pub connect_timeout: Duration,
    /// Limit for each request (default 5 s).
    #[serde(with = "crate::serde_ms")]
    pub request_timeout: Duration,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        EtcdConfig {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            prefix: "/dockfleet".into(),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(5),
        }
    }
}

impl EtcdConfig {
    /// Checks the configuration; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if self.endpoints.is_empty() {
            return Err(Error::invalid("endpoints", "at least one endpoint is needed"));
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            let rest = e.strip_prefix("http://").or_else(|| e.strip_prefix("https://")).unwrap_or(e);
            if rest.is_empty() || rest.contains(char::is_whitespace) || !rest.contains(':') {
                return Err(Error::InvalidAddress {
                    field: format!("endpoints[{i}]"),
                    address: e.clone(),
                    message: "expected [http://]HOST:PORT".into(),
                });
            }
        }
        if !self.prefix.starts_with('/') || self.prefix.ends_with('/') {
            return Err(Error::invalid("prefix", format!("{:?} must start with / and not end with one", self.prefix)));
        }
        if self.connect_timeout.is_zero() || self.request_timeout.is_zero() {
            return Err(Error::invalid("request_timeout", "timeouts must be positive"));
        }
        Ok(())
    }
}

/// The etcd registry. [`Discovery::session`] gives another registrant with leases of its own.
#[derive(Clone)]
pub struct EtcdDiscovery {
    client: Client,
    config: Arc<EtcdConfig>,
    /// This registrant's leases, by TTL in seconds.
    leases: Arc<tokio::sync::Mutex<BTreeMap<i64, i64>>>,
    /// Liveness token: the keep-alive tasks stop when the last clone of this registrant is dropped.
    alive: Arc<()>,
    /// Where the client connected: its channel is served by a task of that process's runtime, and its
    /// leases are kept alive there.
    origin: crate::embed::Origin,
}

impl std::fmt::Debug for EtcdDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdDiscovery")
            .field("endpoints", &self.config.endpoints)
            .field("prefix", &self.config.prefix)
            .finish()
    }
}

/// Maps an etcd client error: connection trouble is `engine_unreachable` (naming etcd), a deadline is
/// `timeout`, the rest `engine`.
fn map_err(config: &EtcdConfig, operation: &str, e: etcd_client::Error) -> Error {
    let host = format!("etcd {}", config.endpoints.join(","));
    let code = match &e {
        etcd_client::Error::GRpcStatus(s) => format!("{:?}", s.code()),
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => "Unavailable".into(),
        _ => String::new(),
    };
    match code.as_str() {
        "DeadlineExceeded" => Error::Timeout { host, operation: operation.into(), after: config.request_timeout },
        "Unavailable" | "Cancelled" | "Unknown" => {
            Error::EngineUnreachable { host, message: format!("{operation}: {e}"), source: Some(Box::new(e)) }
        }
        _ => Error::Engine { host, status: 500, message: format!("{operation}: {e}") },
    }
}

impl EtcdDiscovery {
    /// Connects to etcd (validated first); fails with `engine_unreachable` when no endpoint answers.
    pub async fn connect(config: EtcdConfig) -> Result<Self> {
        config.validate()?;
        let options = ConnectOptions::new()
            .with_connect_timeout(config.connect_timeout)
            .with_timeout(config.request_timeout)
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2));
        let mut client =
            Client::connect(&config.endpoints, Some(options)).await.map_err(|e| map_err(&config, "connect", e))?;
        // Connecting is lazy in tonic: one request proves the cluster answers.
        client.status().await.map_err(|e| map_err(&config, "connect", e))?;
        Ok(EtcdDiscovery {
            client,
            config: Arc::new(config),
            leases: Arc::new(tokio::sync::Mutex::new(BTreeMap::new())),
            alive: Arc::new(()),
            origin: crate::embed::Origin::here(),
        })
    }

    /// `Ok` in the process that connected; in a process forked from it, an `invalid_argument` error
    /// instead of a request that would wait forever for the parent's channel task.
    fn here(&self) -> Result<()> {
        if self.origin.is_here() {
            return Ok(());
        }
        Err(Error::invalid(
            "discovery",
            "it connected to etcd before this process was forked, and stays with the parent; connect again here",
        ))
    }

    fn err(&self, operation: &str) -> impl FnOnce(etcd_client::Error) -> Error + '_ {
        let op = operation.to_string();
        move |e| map_err(&self.config, &op, e)
    }

    fn key(&self, service: &str, id: &str) -> String {
        format!("{}/services/{service}/{id}", self.config.prefix)
    }

    fn service_prefix(&self, service: &str) -> String {
        format!("{}/services/{service}/", self.config.prefix)
    }

    /// This registrant's lease for `ttl`, granted (and kept alive while it lives) on first use.
    async fn lease(&self, ttl: Duration) -> Result<i64> {
        let secs = ttl.as_secs_f64().ceil().max(1.0) as i64;
        let mut leases = self.leases.lock().await;
        if let Some(id) = leases.get(&secs) {
            return Ok(*id);
        }
        let mut client = self.client.clone();
        let id = client.lease_grant(secs, None).await.map_err(self.err("grant lease"))?.id();
        let (mut keeper, mut stream) = client.lease_keep_alive(id).await.map_err(self.err("keep lease alive"))?;
        let alive: Weak<()> = Arc::downgrade(&self.alive);
        let leases_ref = Arc::downgrade(&self.leases);
        tokio::spawn(async move {
            let every = Duration::from_secs_f64(secs as f64 / 3.0);
            loop {
                tokio::time::sleep(every).await;
                if alive.strong_count() == 0 {
                    break; // the registrant is gone: let the lease run out
                }
                let ok =
                    keeper.keep_alive().await.is_ok() && matches!(stream.message().await, Ok(Some(r)) if r.ttl() > 0);
                if !ok {
                    // The lease is lost (etcd unreachable for longer than the TTL, or restarted without
                    // it): forget it, so the next registration grants a new one.
                    tracing::warn!(lease = id, "etcd lease lost; registrations under it are gone");
                    if let Some(l) = leases_ref.upgrade() {
                        l.lock().await.retain(|_, v| *v != id);
                    }
                    break;
                }
            }
        });
        leases.insert(secs, id);
        Ok(id)
    }

    async fn get_instance(&self, service: &str, id: &str) -> Result<Option<(Instance, i64)>> {
        let mut client = self.client.clone();
        let resp = client.get(self.key(service, id), None).await.map_err(self.err("get"))?;
        Ok(resp.kvs().first().and_then(|kv| serde_json::from_slice(kv.value()).ok().map(|i| (i, kv.lease()))))
    }

    async fn snapshot(&self, service: &str) -> Result<(Vec<Instance>, i64)> {
        let mut client = self.client.clone();
        let resp = client
            .get(self.service_prefix(service), Some(GetOptions::new().with_prefix()))
            .await
            .map_err(self.err("get"))?;
        let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
        let all = resp.kvs().iter().filter_map(|kv| serde_json::from_slice(kv.value()).ok()).collect();
        Ok((all, revision))
    }
}

#[async_trait]
impl Discovery for EtcdDiscovery {
    fn backend(&self) -> &str {
        "etcd"
    }

    async fn register(&self, instance: &Instance) -> Result<()> {
        self.here()?;
        instance.validate()?;
        let lease = match instance.ttl {
            Some(ttl) => Some(self.lease(ttl).await?),
            None => None,
        };
        // An identical entry stays as it is (two registrators must not make watchers see changes).
        if let Some((existing, existing_lease)) = self.get_instance(&instance.service, &instance.id).await? {
            if existing == *instance && (lease.is_none() || existing_lease != 0) {
                return Ok(());
            }
        }
        let json = serde_json::to_vec(instance).map_err(|e| Error::Internal(e.to_string()))?;
        let options = lease.map(|l| PutOptions::new().with_lease(l));
        let mut client = self.client.clone();
        client.put(self.key(&instance.service, &instance.id), json, options).await.map_err(self.err("put"))?;
        Ok(())
    }

    async fn deregister(&self, service: &str, id: &str) -> Result<bool> {
        self.here()?;
        let mut client = self.client.clone();
        let resp = client.delete(self.key(service, id), None::<DeleteOptions>).await.map_err(self.err("delete"))?;
        Ok(resp.deleted() > 0)
    }

    async fn set_health(&self, service: &str, id: &str, health: &str) -> Result<()> {
        self.here()?;
        let Some((mut i, lease)) = self.get_instance(service, id).await? else {
            return Err(Error::NotFound {
                kind: "instance".into(),
                id: format!("{service}/{id}"),
                host: "etcd".into(),
                message: "no such instance".into(),
            });
        };
        if i.health == health {
            return Ok(());
        }
        i.health = health.to_string();
        i.validate()?;
        let json = serde_json::to_vec(&i).map_err(|e| Error::Internal(e.to_string()))?;
        let options = (lease != 0).then(|| PutOptions::new().with_lease(lease));
        let mut client = self.client.clone();
        client.put(self.key(service, id), json, options).await.map_err(self.err("put"))?;
        Ok(())
    }

    async fn lookup(&self, service: &str, options: &LookupOptions) -> Result<Vec<Instance>> {
        self.here()?;
        Ok(filter(self.snapshot(service).await?.0, options))
    }

    async fn services(&self) -> Result<Vec<String>> {
        self.here()?;
        let prefix = format!("{}/services/", self.config.prefix);
        let mut client = self.client.clone();
        let resp = client
            .get(prefix.clone(), Some(GetOptions::new().with_prefix().with_keys_only()))
            .await
            .map_err(self.err("get"))?;
        let mut names: Vec<String> = resp
            .kvs()
            .iter()
            .filter_map(|kv| {
                std::str::from_utf8(kv.key()).ok()?.strip_prefix(&prefix)?.split('/').next().map(String::from)
            })
            .collect();
        names.dedup();
        Ok(names)
    }

    fn watch(&self, service: &str) -> ResultStream<DiscoveryEvent> {
        let this = self.clone();
        let service = service.to_string();
        Box::pin(async_stream::try_stream! {
            this.here()?;
            let (all, revision) = this.snapshot(&service).await?;
            yield DiscoveryEvent { kind: "snapshot".into(), service: service.clone(), instances: all };
            let mut next = revision + 1;
            loop {
                let options = WatchOptions::new().with_prefix().with_prev_key().with_start_revision(next);
                let mut client = this.client.clone();
                let (_watcher, mut stream) = match client.watch(this.service_prefix(&service), Some(options)).await {
                    Ok(w) => w,
                    Err(e) => {
                        // etcd is away: say so once, then keep trying to resume where we were.
                        tracing::warn!(error = %e, "etcd watch: reconnecting");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                loop {
                    let resp = match stream.message().await {
                        Ok(Some(r)) => r,
                        Ok(None) | Err(_) => break, // disconnected: resume from `next`
                    };
                    if resp.compact_revision() > 0 {
                        // The history we needed is gone: start again from the present.
                        let (all, revision) = this.snapshot(&service).await?;
                        yield DiscoveryEvent { kind: "snapshot".into(), service: service.clone(), instances: all };
                        next = revision + 1;
                        break;
                    }
                    for ev in resp.events() {
                        let Some(kv) = ev.kv() else { continue };
                        next = next.max(kv.mod_revision() + 1);
                        let prev: Option<Instance> = ev.prev_kv().and_then(|p| serde_json::from_slice(p.value()).ok());
                        let (kind, instance) = match ev.event_type() {
                            EventType::Delete => match prev {
                                Some(p) => ("remove", p),
                                None => continue,
                            },
                            EventType::Put => {
                                let Ok(now) = serde_json::from_slice::<Instance>(kv.value()) else { continue };
                                match change_kind(prev.as_ref(), &now) {
                                    Some(kind) => (kind, now),
                                    None => continue,
                                }
                            }
                        };
                        yield DiscoveryEvent { kind: kind.into(), service: service.clone(), instances: vec![instance] };
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    }

    fn session(&self) -> Arc<dyn Discovery> {
        Arc::new(EtcdDiscovery {
            client: self.client.clone(),
            config: self.config.clone(),
            leases: Arc::new(tokio::sync::Mutex::new(BTreeMap::new())),
            alive: Arc::new(()),
            origin: self.origin,
        })
    }
}
