//! The core `discovery` module in Node: a service registry (embedded; etcd to come) and its watches.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dockfleet as df;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::{call, object, stream_class, Conv, Number};

object! { in
    #[doc = "One instance of a service; `ttl` in milliseconds (kept alive while its registrant lives), `health`"]
    #[doc = "is `passing`, `warning` or `critical`."]
    Instance => df::Instance {
        service: String, id: String, address: String, port: Number<u16>, tags: Vec<String>,
        metadata: HashMap<String, String>, ttl: Option<Number<Duration>>, health: String,
    }
}

object! { in
    #[doc = "Which instances `lookup` returns (passing ones unless `includeUnhealthy`)."]
    LookupOptions => df::LookupOptions { include_unhealthy: bool, tag: Option<String> }
}

object! { out
    #[doc = "One change of a watched service: `snapshot` (all instances), `insert`, `update`, `health` or `remove`."]
    DiscoveryEvent => df::DiscoveryEvent { kind: String, service: String, instances: Vec<Instance> }
}

stream_class!(
    #[doc = "A service's changes: `for await (const e of discovery.watch('web'))`, starting with a snapshot."]
    DiscoveryStream, df::DiscoveryEvent => DiscoveryEvent
);

/// A service registry. `Discovery.embedded()` keeps it in this process.
#[napi]
pub struct Discovery {
    pub(crate) inner: Arc<dyn df::Discovery>,
}

impl Conv<Discovery> for Arc<dyn df::Discovery> {
    fn conv(self) -> Discovery {
        Discovery { inner: self }
    }
}

#[napi]
impl Discovery {
    /// A new in-process registry (TTL'd entries expire once their registrant is gone).
    #[napi(factory, writable = true, catch_unwind)]
    pub fn embedded() -> Self {
        Discovery { inner: Arc::new(df::EmbeddedDiscovery::new()) }
    }

    /// Connects to etcd: registrations are keys under leases, watches resume after reconnects.
    #[napi(writable = true, catch_unwind)]
    pub fn etcd<'env>(env: &'env Env, config: crate::etcd::EtcdConfig) -> Result<PromiseRaw<'env, Discovery>> {
        let config: df::EtcdConfig = config.conv();
        call(
            env,
            async move { df::EtcdDiscovery::connect(config).await.map(|d| Arc::new(d) as Arc<dyn df::Discovery>) },
        )
    }

    /// Backend name: `embedded`, `etcd`.
    #[napi(getter, catch_unwind)]
    pub fn backend(&self) -> String {
        self.inner.backend().to_string()
    }

    /// Registers an instance, or replaces the one with the same service and ID.
    #[napi(catch_unwind)]
    pub fn register<'env>(&self, env: &'env Env, instance: Instance) -> Result<PromiseRaw<'env, ()>> {
        let d = self.inner.clone();
        let i: df::Instance = instance.conv();
        call(env, async move { d.register(&i).await })
    }

    /// Removes an instance; resolves `false` when there was none.
    #[napi(catch_unwind)]
    pub fn deregister<'env>(&self, env: &'env Env, service: String, id: String) -> Result<PromiseRaw<'env, bool>> {
        let d = self.inner.clone();
        call(env, async move { d.deregister(&service, &id).await })
    }

    /// Sets an instance's health.
    #[napi(catch_unwind)]
    pub fn set_health<'env>(
        &self,
        env: &'env Env,
        service: String,
        id: String,
        health: String,
    ) -> Result<PromiseRaw<'env, ()>> {
        let d = self.inner.clone();
        call(env, async move { d.set_health(&service, &id, &health).await })
    }

    /// A service's instances (passing ones unless asked otherwise), sorted by ID.
    #[napi(catch_unwind)]
    pub fn lookup<'env>(
        &self,
        env: &'env Env,
        service: String,
        options: Option<LookupOptions>,
    ) -> Result<PromiseRaw<'env, Vec<Instance>>> {
        let d = self.inner.clone();
        let o: df::LookupOptions = options.conv().unwrap_or_default();
        call(env, async move { d.lookup(&service, &o).await })
    }

    /// Names of the services with at least one instance.
    #[napi(catch_unwind)]
    pub fn services<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Vec<String>>> {
        let d = self.inner.clone();
        call(env, async move { d.services().await })
    }

    /// A service's changes, starting with a snapshot.
    #[napi(catch_unwind)]
    pub fn watch(&self, service: String) -> DiscoveryStream {
        DiscoveryStream::new(self.inner.watch(&service))
    }

    /// Another registrant on the same registry, with its own lifetime for TTL'd registrations.
    #[napi(catch_unwind)]
    pub fn session(&self) -> Discovery {
        Discovery { inner: self.inner.session() }
    }
}
