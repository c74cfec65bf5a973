//! The core `etcd` module in Python: the etcd discovery backend's configuration (timeouts in seconds);
//! `await Discovery.etcd(config)` connects.

use dockfleet as df;
use pyo3::prelude::*;

use crate::dto;
use crate::Seconds;

dto! {
    /// Where etcd is (`endpoints` like `http://127.0.0.1:2379`), the key `prefix`, and the timeouts.
    EtcdConfig => df::EtcdConfig { endpoints: Vec<String>, prefix: String, connect_timeout: Seconds, request_timeout: Seconds }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<EtcdConfig>()?;
    Ok(())
}
