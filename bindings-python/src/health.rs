//! The core `health` module in Python: active health checks (durations in seconds).

use dockfleet as df;
use pyo3::prelude::*;

use crate::dto;
use crate::Seconds;

dto! {
    /// An active check: `kind` `tcp` or `http` (GET `path`, status within `min_status`..`max_status`),
    /// every `interval`, each within `timeout`; `rise` passes or `fall` failures in a row flip it.
    HealthCheck => df::HealthCheck {
        kind: String, path: String, min_status: u16, max_status: u16, interval: Seconds, timeout: Seconds, rise: u32, fall: u32,
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<HealthCheck>()?;
    Ok(())
}
