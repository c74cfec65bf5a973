//! The core `registrator` module in Python: keeps a registry in step with a fleet's containers.

use std::collections::BTreeMap;

use dockfleet as df;
use pyo3::prelude::*;

use crate::discovery::Discovery;
use crate::fleet::Fleet;
use crate::health::HealthCheck;
use crate::Seconds;
use crate::{dto, stream_class, Conv};

dto! {
    /// Options of `registrator`: `resync` and `ttl` in seconds; `on_unreachable` is `remove` or
    /// `expire`; `checks` by service name (`*` for the rest).
    RegistratorOptions => df::RegistratorOptions {
        resync: Seconds, ttl: Option<Seconds>, on_unreachable: String, checks: BTreeMap<String, HealthCheck>,
    }
}

dto! {
    /// Something the registrator did: `register`, `deregister`, `health`, `resync`, `unreachable` or `error`.
    RegistratorEvent => df::RegistratorEvent { kind: String, host: String, service: String, id: String, message: String }
}

stream_class!(
    /// What the registrator does: `async for e in registrator(fleet, discovery)`; closing it stops it.
    RegistratorStream, df::RegistratorEvent => RegistratorEvent
);

/// Registers the fleet's containers into `discovery` and keeps them in step until the stream is closed.
#[pyfunction]
#[pyo3(signature = (fleet, discovery, options=None))]
fn registrator(
    fleet: &Fleet,
    discovery: &Discovery,
    options: Option<RegistratorOptions>,
) -> PyResult<RegistratorStream> {
    let options: df::RegistratorOptions = options.conv().unwrap_or_default();
    RegistratorStream::open(|| df::registrator(fleet.snapshot(), discovery.inner.clone(), options))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RegistratorOptions>()?;
    m.add_class::<RegistratorEvent>()?;
    m.add_class::<RegistratorStream>()?;
    m.add_function(wrap_pyfunction!(registrator, m)?)?;
    Ok(())
}
