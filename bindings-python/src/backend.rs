//! The core `backend` module in Python: where services run (a `Fleet` or a `Swarm`), and the two
//! operations only the backend trait has, `scale` and `service_status`. The others (`rollout`,
//! `rollback`, `remove_service`, `stack_up`, `stack_ps`, `stack_down`) take a backend too.

use std::sync::Arc;

use dockfleet as df;
use pyo3::prelude::*;

use crate::fleet::Fleet;
use crate::stack::ServiceStatus;
use crate::swarm::Swarm;

/// A `Fleet` or a `Swarm` argument.
#[derive(FromPyObject)]
pub(crate) enum Backend {
    Fleet(Py<Fleet>),
    Swarm(Py<Swarm>),
}

impl Backend {
    /// The core backend, for work that outlives the call.
    pub(crate) fn get(&self) -> Arc<dyn df::ServiceBackend> {
        match self {
            Backend::Fleet(f) => Python::attach(|py| Arc::new(f.borrow(py).snapshot())),
            Backend::Swarm(s) => Arc::new(s.get().inner.clone()),
        }
    }
}

/// Sets the replica count of a replicated service; returns its status once that many tasks run.
#[pyfunction]
async fn scale(backend: Backend, service: String, replicas: i128) -> PyResult<ServiceStatus> {
    let replicas = crate::count("replicas", replicas)?;
    let b = backend.get();
    crate::call(async move { b.scale(&service, replicas).await }).await
}

/// The service's desired and running task counts and its current tasks.
#[pyfunction]
async fn service_status(backend: Backend, service: String) -> PyResult<ServiceStatus> {
    let b = backend.get();
    crate::call(async move { b.service_status(&service).await }).await
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(scale, m)?)?;
    m.add_function(wrap_pyfunction!(service_status, m)?)?;
    Ok(())
}
