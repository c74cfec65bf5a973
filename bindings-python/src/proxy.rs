//! The core `proxy` module in Python: the built-in HTTP/TCP proxy fed live by discovery.

use std::sync::Arc;

use dockfleet as df;
use pyo3::prelude::*;

use crate::balancer::{BalancerOptions, Endpoint};
use crate::discovery::Discovery;
use crate::Seconds;
use crate::{dto, Conv};

dto! {
    /// Where requests for one service come from: `host` (`api.example.com` or `*.example.com`) and
    /// `path_prefix` (HTTP), `tag` filter, `hash_header` for `consistent-hash`.
    Route => df::Route {
        service: String, host: Option<String>, path_prefix: String, tag: Option<String>, hash_header: Option<String>,
    }
}

dto! {
    /// How a `Proxy` listens (`listen`, `protocol` `http` or `tcp`), routes and retries; times in seconds.
    ProxyOptions => df::ProxyOptions {
        listen: String, protocol: String, routes: Vec<Route>, balancer: BalancerOptions, connect_timeout: Seconds,
        connect_attempts: u32, response_timeout: Seconds, retry_idempotent: bool, sticky_cookie: Option<String>,
        idle_timeout: Seconds, drain_timeout: Seconds, max_idle_per_endpoint: u32,
    }
}

dto! {
    /// One endpoint's counters in a `Proxy`; `latency_counts` per bucket of `LATENCY_BOUNDS_MS`.
    ProxyEndpointStats => df::ProxyEndpointStats {
        service: String, endpoint: Endpoint, draining: bool, ejected: bool, requests: u64, errors: u64,
        in_flight: u64, latency_counts: Vec<u64>, latency_p50_ms: f64, latency_p99_ms: f64,
    }
}

/// A running proxy: `await Proxy.start(discovery, options)`; `await proxy.shutdown(grace)` stops it.
#[pyclass(module = "dockfleet", frozen)]
pub struct Proxy {
    inner: Arc<df::Proxy>,
}

impl Conv<Proxy> for df::Proxy {
    fn conv(self) -> Proxy {
        Proxy { inner: Arc::new(self) }
    }
}

#[pymethods]
impl Proxy {
    /// Validates the options, binds the listener and starts following the routed services.
    #[staticmethod]
    async fn start(discovery: Discovery, options: ProxyOptions) -> PyResult<Proxy> {
        let options: df::ProxyOptions = options.conv();
        let d = discovery.inner.clone();
        crate::call(async move { df::Proxy::start(d, options).await }).await
    }

    /// The address it listens on (`ip:port`).
    fn address(&self) -> String {
        self.inner.address()
    }

    /// The port it listens on.
    fn port(&self) -> u16 {
        self.inner.port()
    }

    /// Waits until every routed service has an endpoint (`TimeoutError` otherwise); seconds.
    #[pyo3(signature = (timeout=10.0))]
    async fn wait_ready(&self, timeout: f64) -> PyResult<()> {
        let timeout = crate::seconds("timeout", timeout)?;
        let p = self.inner.clone();
        crate::call(async move { p.wait_ready(timeout).await }).await
    }

    /// Every endpoint's counters, by service, draining ones last.
    fn stats(&self) -> PyResult<Vec<ProxyEndpointStats>> {
        Ok(crate::sync_call(|| Ok(self.inner.stats()))?.conv())
    }

    /// Stops accepting, lets work in flight finish for up to `grace` seconds, then cuts the rest.
    #[pyo3(signature = (grace=10.0))]
    async fn shutdown(&self, grace: f64) -> PyResult<()> {
        let grace = crate::seconds("grace", grace)?;
        let p = self.inner.clone();
        crate::call(async move {
            p.shutdown(grace).await;
            Ok(())
        })
        .await
    }

    fn __repr__(&self) -> String {
        format!("Proxy(address={:?})", self.inner.address())
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Route>()?;
    m.add_class::<ProxyOptions>()?;
    m.add_class::<ProxyEndpointStats>()?;
    m.add_class::<Proxy>()?;
    m.add("LATENCY_BOUNDS_MS", df::LATENCY_BOUNDS_MS.to_vec())?;
    Ok(())
}
