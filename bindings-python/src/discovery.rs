//! The core `discovery` module in Python: a service registry (embedded; etcd to come) and its watches.

use std::collections::BTreeMap;
use std::sync::Arc;

use dockfleet as df;
use pyo3::prelude::*;

use crate::Seconds;
use crate::{dto, stream_class, Conv};

dto! {
    /// One instance of a service; `ttl` in seconds (kept alive while its registrant lives), `health`
    /// is `passing`, `warning` or `critical`.
    Instance => df::Instance {
        service: String, id: String, address: String, port: u16, tags: Vec<String>,
        metadata: BTreeMap<String, String>, ttl: Option<Seconds>, health: String,
    }
}

dto! {
    /// Which instances `lookup` returns (passing ones unless `include_unhealthy`).
    LookupOptions => df::LookupOptions { include_unhealthy: bool, tag: Option<String> }
}

dto! {
    /// One change of a watched service: `snapshot` (all instances), `insert`, `update`, `health` or `remove`.
    DiscoveryEvent => df::DiscoveryEvent { kind: String, service: String, instances: Vec<Instance> }
}

stream_class!(
    /// A service's changes: `async for e in discovery.watch("web")`, starting with a snapshot.
    DiscoveryStream, df::DiscoveryEvent => DiscoveryEvent
);

/// A service registry. `Discovery.embedded()` keeps it in this process.
#[pyclass(module = "dockfleet", frozen, from_py_object)]
#[derive(Clone)]
pub struct Discovery {
    pub(crate) inner: Arc<dyn df::Discovery>,
}

impl Conv<Discovery> for Arc<dyn df::Discovery> {
    fn conv(self) -> Discovery {
        Discovery { inner: self }
    }
}

#[pymethods]
impl Discovery {
    /// A new in-process registry (TTL'd entries expire once their registrant is gone).
    #[staticmethod]
    fn embedded() -> PyResult<Discovery> {
        crate::sync_call(|| Ok(Discovery { inner: Arc::new(df::EmbeddedDiscovery::new()) }))
    }

    /// Connects to etcd: registrations are keys under leases, watches resume after reconnects.
    #[staticmethod]
    async fn etcd(config: crate::etcd::EtcdConfig) -> PyResult<Discovery> {
        let config: df::EtcdConfig = config.conv();
        crate::call(
            async move { df::EtcdDiscovery::connect(config).await.map(|d| Arc::new(d) as Arc<dyn df::Discovery>) },
        )
        .await
    }

    /// Backend name: `embedded`, `etcd`.
    #[getter]
    fn backend(&self) -> String {
        self.inner.backend().to_string()
    }

    fn __repr__(&self) -> String {
        format!("Discovery(backend={:?})", self.inner.backend())
    }

    /// Registers an instance, or replaces the one with the same service and ID.
    async fn register(&self, instance: Instance) -> PyResult<()> {
        let d = self.inner.clone();
        let i: df::Instance = instance.conv();
        crate::call(async move { d.register(&i).await }).await
    }

    /// Removes an instance; `False` when there was none.
    async fn deregister(&self, service: String, id: String) -> PyResult<bool> {
        let d = self.inner.clone();
        crate::call(async move { d.deregister(&service, &id).await }).await
    }

    /// Sets an instance's health.
    async fn set_health(&self, service: String, id: String, health: String) -> PyResult<()> {
        let d = self.inner.clone();
        crate::call(async move { d.set_health(&service, &id, &health).await }).await
    }

    /// A service's instances (passing ones unless asked otherwise), sorted by ID.
    #[pyo3(signature = (service, options=None))]
    async fn lookup(&self, service: String, options: Option<LookupOptions>) -> PyResult<Vec<Instance>> {
        let d = self.inner.clone();
        let o: df::LookupOptions = options.conv().unwrap_or_default();
        crate::call(async move { d.lookup(&service, &o).await }).await
    }

    /// Names of the services with at least one instance.
    async fn services(&self) -> PyResult<Vec<String>> {
        let d = self.inner.clone();
        crate::call(async move { d.services().await }).await
    }

    /// A service's changes, starting with a snapshot.
    fn watch(&self, service: String) -> PyResult<DiscoveryStream> {
        DiscoveryStream::open(|| self.inner.watch(&service))
    }

    /// Another registrant on the same registry, with its own lifetime for TTL'd registrations.
    fn session(&self) -> PyResult<Discovery> {
        Ok(crate::sync_call(|| Ok(self.inner.session()))?.conv())
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Instance>()?;
    m.add_class::<LookupOptions>()?;
    m.add_class::<DiscoveryEvent>()?;
    m.add_class::<DiscoveryStream>()?;
    m.add_class::<Discovery>()?;
    Ok(())
}
