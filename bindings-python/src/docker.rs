//! The core `docker` module in Python: how to reach an engine (`HostConfig`, `TlsConfig`). The
//! `DockerHost` class itself is in `host.rs`, with the `Host` methods it exposes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dockfleet as df;
use pyo3::prelude::*;

use crate::dto;
use crate::Seconds;

dto! {
    /// Client certificate, key, and the CA that signed the engine's certificate (PEM files).
    TlsConfig => df::TlsConfig { ca: PathBuf, cert: PathBuf, key: PathBuf }
}

dto! {
    /// How to reach one engine. Timeouts in seconds. Plain TCP off loopback needs `insecure=True`.
    HostConfig => df::HostConfig {
        name: String, address: String, labels: BTreeMap<String, String>, tls: Option<TlsConfig>, insecure: bool,
        connect_timeout: Seconds, request_timeout: Seconds,
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<TlsConfig>()?;
    m.add_class::<HostConfig>()?;
    Ok(())
}
