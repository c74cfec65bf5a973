//! The core `docker` module in Node: how to reach an engine (`HostConfig`, `TlsConfig`). The
//! `DockerHost` class is in `host.rs`, with the `Host` methods it exposes.

use std::collections::HashMap;
use std::time::Duration;

use dockfleet as df;

use crate::object;
use crate::Number;

object! { in
    #[doc = "Client certificate, key, and the CA that signed the engine's certificate (PEM file paths)."]
    TlsConfig => df::TlsConfig { ca: String, cert: String, key: String }
}

object! { in
    #[doc = "How to reach one engine. Timeouts in milliseconds. Plain TCP off loopback needs `insecure: true`."]
    HostConfig => df::HostConfig {
        name: String, address: String, labels: HashMap<String, String>, tls: Option<TlsConfig>, insecure: bool,
        connect_timeout: Number<Duration>, request_timeout: Number<Duration>,
    }
}
