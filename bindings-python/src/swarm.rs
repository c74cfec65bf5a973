//! The core `swarm` module in Python: `Swarm` (Docker Swarm mode as a service backend, and the swarm's
//! lifecycle), `SwarmOptions`, `SwarmNode`.

use std::collections::BTreeMap;

use dockfleet as df;
use pyo3::prelude::*;

use crate::fleet::Fleet;
use crate::Seconds;
use crate::{dto, Conv};

dto! {
    /// Options of a `Swarm`: `publish_mode` is `host` (default) or `ingress`; `poll_interval` and
    /// `timeout` in seconds; `port` is Swarm's cluster port (2377).
    SwarmOptions => df::SwarmOptions { publish_mode: String, poll_interval: Seconds, timeout: Seconds, port: u16 }
}

dto! {
    /// One node of a swarm; `host` is the fleet host it is (empty when not in the fleet).
    SwarmNode => df::SwarmNode {
        id: String, host: String, hostname: String, role: String, availability: String, state: String,
        address: String, leader: bool, reachability: String, labels: BTreeMap<String, String>,
        engine_version: String,
    }
}

/// A Docker Swarm formed by (some of) a fleet's engines: pass it wherever a `Fleet` deploys services
/// (`rollout`, `stack_up`, `scale`, …) to run them as Swarm services instead.
#[pyclass(module = "dockfleet", frozen)]
pub struct Swarm {
    pub(crate) inner: df::Swarm,
}

impl Conv<Swarm> for df::Swarm {
    fn conv(self) -> Swarm {
        Swarm { inner: self }
    }
}

#[pymethods]
impl Swarm {
    /// Initialises a swarm with the fleet host `manager` as its first manager (kept if it already is one).
    #[staticmethod]
    #[pyo3(signature = (fleet, manager, options=None))]
    async fn init(fleet: Py<Fleet>, manager: String, options: Option<SwarmOptions>) -> PyResult<Swarm> {
        let f = Python::attach(|py| fleet.borrow(py).snapshot());
        let o: df::SwarmOptions = options.conv().unwrap_or_default();
        crate::call(async move { df::Swarm::init(f, &manager, o).await }).await
    }

    /// The swarm some of whose managers are in `fleet`.
    #[staticmethod]
    #[pyo3(signature = (fleet, options=None))]
    async fn connect(fleet: Py<Fleet>, options: Option<SwarmOptions>) -> PyResult<Swarm> {
        let f = Python::attach(|py| fleet.borrow(py).snapshot());
        let o: df::SwarmOptions = options.conv().unwrap_or_default();
        crate::call(async move { df::Swarm::connect(f, o).await }).await
    }

    /// The fleet whose engines are the swarm's nodes.
    fn fleet(&self) -> Fleet {
        Fleet::from_core(self.inner.fleet().clone())
    }

    /// The options.
    fn options(&self) -> SwarmOptions {
        self.inner.options().clone().conv()
    }

    /// Joins the fleet host `host` as a `worker` or a `manager`, with its fleet labels as node labels.
    async fn join(&self, host: String, role: String) -> PyResult<SwarmNode> {
        let s = self.inner.clone();
        crate::call(async move { s.join(&host, &role).await }).await
    }

    /// Makes `host` leave the swarm (a manager only with `force`) and removes its node.
    #[pyo3(signature = (host, force=false))]
    async fn leave(&self, host: String, force: bool) -> PyResult<()> {
        let s = self.inner.clone();
        crate::call(async move { s.leave(&host, force).await }).await
    }

    /// Every fleet host leaves the swarm, workers first.
    async fn dissolve(&self) -> PyResult<()> {
        let s = self.inner.clone();
        crate::call(async move { s.dissolve().await }).await
    }

    /// The swarm's nodes.
    async fn nodes(&self) -> PyResult<Vec<SwarmNode>> {
        let s = self.inner.clone();
        crate::call(async move { s.nodes().await }).await
    }

    /// Replaces a node's labels (its `dockfleet.host` label is kept).
    async fn set_node_labels(&self, host: String, labels: BTreeMap<String, String>) -> PyResult<SwarmNode> {
        let s = self.inner.clone();
        crate::call(async move { s.set_node_labels(&host, labels).await }).await
    }

    /// Sets a node's availability: `active`, `pause` or `drain`.
    async fn set_availability(&self, host: String, availability: String) -> PyResult<SwarmNode> {
        let s = self.inner.clone();
        crate::call(async move { s.set_availability(&host, &availability).await }).await
    }

    /// Promotes a node to `manager` or demotes it to `worker`.
    async fn set_role(&self, host: String, role: String) -> PyResult<SwarmNode> {
        let s = self.inner.clone();
        crate::call(async move { s.set_role(&host, &role).await }).await
    }

    /// Creates a secret holding `data`; returns its ID.
    #[pyo3(signature = (name, data, labels=None))]
    async fn create_secret(
        &self,
        name: String,
        data: Vec<u8>,
        labels: Option<BTreeMap<String, String>>,
    ) -> PyResult<String> {
        let s = self.inner.clone();
        crate::call(async move { s.create_secret(&name, &data, labels.unwrap_or_default()).await }).await
    }

    /// Removes a secret by name or ID.
    async fn remove_secret(&self, name: String) -> PyResult<()> {
        let s = self.inner.clone();
        crate::call(async move { s.remove_secret(&name).await }).await
    }

    /// Creates a config holding `data`; returns its ID.
    #[pyo3(signature = (name, data, labels=None))]
    async fn create_config(
        &self,
        name: String,
        data: Vec<u8>,
        labels: Option<BTreeMap<String, String>>,
    ) -> PyResult<String> {
        let s = self.inner.clone();
        crate::call(async move { s.create_config(&name, &data, labels.unwrap_or_default()).await }).await
    }

    /// Removes a config by name or ID.
    async fn remove_config(&self, name: String) -> PyResult<()> {
        let s = self.inner.clone();
        crate::call(async move { s.remove_config(&name).await }).await
    }

    fn __repr__(&self) -> String {
        format!("Swarm(hosts={:?})", self.inner.fleet().names())
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SwarmOptions>()?;
    m.add_class::<SwarmNode>()?;
    m.add_class::<Swarm>()?;
    m.add("LABEL_NODE_HOST", df::LABEL_NODE_HOST)?;
    Ok(())
}
