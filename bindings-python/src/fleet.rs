//! The core `fleet` module in Python: `Fleet`, `ProbeOptions`, `HostStatus`.

use std::collections::BTreeMap;
use std::sync::RwLock;

use dockfleet as df;
use pyo3::prelude::*;

use crate::docker::HostConfig;
use crate::error::to_py;
use crate::host::DockerHost;
use crate::Seconds;
use crate::{dto, Conv};

dto! {
    /// Options of `Fleet.probe`; `timeout` in seconds per host.
    ProbeOptions => df::ProbeOptions { timeout: Seconds }
}

dto! {
    /// The outcome of probing one host.
    HostStatus => df::HostStatus {
        name: String, address: String, labels: BTreeMap<String, String>, reachable: bool, latency: Option<Seconds>,
        info: Option<crate::host::HostInfo>, error_code: Option<String>, error: Option<String>,
    }
}

/// A named set of hosts with labels, from an inventory file or built in code.
#[pyclass(module = "dockfleet", frozen)]
pub struct Fleet {
    inner: RwLock<df::Fleet>,
}

impl Fleet {
    /// Wraps a core fleet.
    pub(crate) fn from_core(fleet: df::Fleet) -> Self {
        Fleet { inner: RwLock::new(fleet) }
    }

    /// A copy of the fleet (hosts are shared) for work that outlives the call.
    pub(crate) fn snapshot(&self) -> df::Fleet {
        self.read().clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, df::Fleet> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, df::Fleet> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn format_of(format: &str) -> PyResult<df::InventoryFormat> {
    match format {
        "toml" => Ok(df::InventoryFormat::Toml),
        "yaml" | "yml" => Ok(df::InventoryFormat::Yaml),
        other => Err(to_py(df::Error::invalid("format", format!("{other:?} is not toml or yaml")))),
    }
}

#[pymethods]
impl Fleet {
    /// An empty fleet.
    #[new]
    fn new() -> Self {
        Fleet { inner: RwLock::new(df::Fleet::new()) }
    }

    /// Loads a `.toml`, `.yaml` or `.yml` inventory; hosts are validated, not contacted.
    #[staticmethod]
    fn from_file(path: std::path::PathBuf) -> PyResult<Self> {
        Ok(Fleet { inner: RwLock::new(crate::sync_call(|| df::Fleet::from_file(path))?) })
    }

    /// Parses inventory text (`format` is `toml` or `yaml`); relative TLS paths resolve against `base_dir`.
    #[staticmethod]
    #[pyo3(signature = (text, format, base_dir=None))]
    fn parse(text: &str, format: &str, base_dir: Option<std::path::PathBuf>) -> PyResult<Self> {
        let format = format_of(format)?;
        let f = crate::sync_call(|| df::Fleet::parse(text, format, base_dir.as_deref()))?;
        Ok(Fleet { inner: RwLock::new(f) })
    }

    /// Adds a host; `InvalidArgumentError` if the name is taken.
    fn add(&self, host: DockerHost) -> PyResult<()> {
        crate::sync_call(|| self.write().add(host.inner))
    }

    /// Builds a `DockerHost` from `config` and adds it.
    fn add_docker(&self, config: HostConfig) -> PyResult<DockerHost> {
        Ok(crate::sync_call(|| self.write().add_docker(config.conv()))?.conv())
    }

    /// Credentials for a registry, which hosts use when a service's `pull_policy` has them pull from it.
    fn set_registry_auth(&self, auth: crate::registry::RegistryAuth) -> PyResult<()> {
        crate::sync_call(|| self.write().set_registry_auth(auth.conv()))
    }

    /// Removes a host by name and returns it.
    fn remove(&self, name: &str) -> PyResult<DockerHost> {
        Ok(crate::sync_call(|| self.write().remove(name))?.conv())
    }

    fn hosts(&self) -> Vec<DockerHost> {
        self.read().hosts().iter().cloned().map(Conv::conv).collect()
    }

    fn names(&self) -> Vec<String> {
        self.read().names()
    }

    /// One host by name; `NotFoundError` if absent.
    fn host(&self, name: &str) -> PyResult<DockerHost> {
        Ok(crate::sync_call(|| self.read().host(name))?.conv())
    }

    /// Hosts whose labels match every `key=value` (or bare `key`) in `selector`.
    fn select(&self, selector: Vec<String>) -> PyResult<Vec<DockerHost>> {
        let sel: Vec<&str> = selector.iter().map(String::as_str).collect();
        Ok(crate::sync_call(|| Ok(self.read().select(&sel)))?.into_iter().map(Conv::conv).collect())
    }

    fn __len__(&self) -> usize {
        self.read().len()
    }

    /// Pings every host concurrently; one `HostStatus` per host, never an exception for a down host.
    #[pyo3(signature = (options=None))]
    async fn probe(&self, options: Option<ProbeOptions>) -> PyResult<Vec<HostStatus>> {
        let fleet = self.read().clone();
        let o: df::ProbeOptions = options.conv().unwrap_or_default();
        crate::call(async move { Ok(fleet.probe(&o).await) }).await
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ProbeOptions>()?;
    m.add_class::<HostStatus>()?;
    m.add_class::<Fleet>()?;
    Ok(())
}
