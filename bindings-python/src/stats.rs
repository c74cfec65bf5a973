//! The core `stats` module in Python: a service's tasks sampled across the fleet, and the samples as
//! Prometheus text.

use dockfleet as df;
use pyo3::prelude::*;

use crate::host::Stats;
use crate::{dto, Conv};

dto! {
    /// One running task's resource use, with where it runs (`service_stats`).
    TaskStats => df::TaskStats { service: String, host: String, name: String, slot: u32, stats: Stats }
}

/// One resource sample of every running task of `service`, on a `Fleet` or a `Swarm`, taken on all
/// its hosts at once (about a second), ordered by slot and host.
#[pyfunction]
async fn service_stats(backend: crate::backend::Backend, service: String) -> PyResult<Vec<TaskStats>> {
    let b = backend.get();
    crate::call(async move { b.service_stats(&service).await }).await
}

/// The samples in Prometheus' text exposition format, one `dockfleet_task_*` family per figure.
#[pyfunction]
fn prometheus_text(samples: Vec<TaskStats>) -> PyResult<String> {
    crate::sync_call(|| Ok(df::prometheus_text(&samples.conv())))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<TaskStats>()?;
    m.add_function(wrap_pyfunction!(service_stats, m)?)?;
    m.add_function(wrap_pyfunction!(prometheus_text, m)?)?;
    Ok(())
}
