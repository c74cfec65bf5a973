//! The core `rollout` module in Python: rolling updates gated on health, and rollback.

use dockfleet as df;
use pyo3::prelude::*;

use crate::backend::Backend;
use crate::spec::ServiceSpec;
use crate::Seconds;
use crate::{dto, stream_class, Conv};

dto! {
    /// Options of `rollout` and `rollback`: `ready_timeout` in seconds; `force` replaces every task even
    /// if its spec is unchanged (a rolling restart).
    RolloutOptions => df::RolloutOptions { seed: u64, ready_timeout: Seconds, force: bool }
}

dto! {
    /// One step of a rollout: `kind` is `started`, `image`, `task-started`, `task-updated`, `task-failed`, then
    /// `completed` or `paused`; `done` of `total` for a progress bar; `phase` is `update` or `rollback`.
    RolloutEvent => df::RolloutEvent {
        kind: String, phase: String, service: String, host: String, slot: u32, id: Option<String>, done: u32,
        total: u32, failed: u32, message: String,
    }
}

stream_class!(
    /// Rollout progress: `async for e in rollout(fleet, spec)`; ends after `completed` or `paused`.
    RolloutStream, df::RolloutEvent => RolloutEvent
);

/// Creates the service or updates it to `spec` per its update config, gated on health, on a `Fleet`
/// or a `Swarm`; yields progress.
#[pyfunction]
#[pyo3(signature = (backend, spec, options=None))]
fn rollout(backend: Backend, spec: ServiceSpec, options: Option<RolloutOptions>) -> PyResult<RolloutStream> {
    let options: df::RolloutOptions = options.conv().unwrap_or_default();
    RolloutStream::open(|| backend.get().rollout(spec.conv(), options))
}

/// Rolls `service` back to the spec its tasks replaced, per its rollback config; yields progress.
#[pyfunction]
#[pyo3(signature = (backend, service, options=None))]
fn rollback(backend: Backend, service: String, options: Option<RolloutOptions>) -> PyResult<RolloutStream> {
    let options: df::RolloutOptions = options.conv().unwrap_or_default();
    RolloutStream::open(|| backend.get().rollback(&service, options))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RolloutOptions>()?;
    m.add_class::<RolloutEvent>()?;
    m.add_class::<RolloutStream>()?;
    m.add_function(wrap_pyfunction!(rollout, m)?)?;
    m.add_function(wrap_pyfunction!(rollback, m)?)?;
    Ok(())
}
