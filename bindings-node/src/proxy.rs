//! The core `proxy` module in Node: the built-in HTTP/TCP proxy fed live by discovery.

use std::sync::Arc;
use std::time::Duration;

use dockfleet as df;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::balancer::{BalancerOptions, Endpoint};
use crate::discovery::Discovery;
use crate::{arg, call, object, Conv, Number};

object! { in
    #[doc = "Where requests for one service come from: `host` (`api.example.com` or `*.example.com`) and"]
    #[doc = "`pathPrefix` (HTTP), `tag` filter, `hashHeader` for `consistent-hash`."]
    Route => df::Route {
        service: String, host: Option<String>, path_prefix: String, tag: Option<String>, hash_header: Option<String>,
    }
}

object! { in
    #[doc = "How a `Proxy` listens (`listen`, `protocol` `http` or `tcp`), routes and retries; times in milliseconds."]
    ProxyOptions => df::ProxyOptions {
        listen: String, protocol: String, routes: Vec<Route>, balancer: BalancerOptions, connect_timeout: Number<Duration>,
        connect_attempts: Number<u32>, response_timeout: Number<Duration>, retry_idempotent: bool, sticky_cookie: Option<String>,
        idle_timeout: Number<Duration>, drain_timeout: Number<Duration>, max_idle_per_endpoint: Number<u32>,
    }
}

object! { out
    #[doc = "One endpoint's counters in a `Proxy`; `latencyCounts` per bucket of `LATENCY_BOUNDS_MS`."]
    ProxyEndpointStats => df::ProxyEndpointStats {
        service: String, endpoint: Endpoint, draining: bool, ejected: bool, requests: Number<u64>, errors: Number<u64>,
        in_flight: Number<u64>, latency_counts: Vec<Number<u64>>, latency_p50_ms: f64, latency_p99_ms: f64,
    }
}

/// A running proxy: `await Proxy.start(discovery, options)`; `await proxy.shutdown(graceMs)` stops it.
#[napi]
pub struct Proxy {
    inner: Arc<df::Proxy>,
}

impl Conv<Proxy> for df::Proxy {
    fn conv(self) -> Proxy {
        Proxy { inner: Arc::new(self) }
    }
}

#[napi]
impl Proxy {
    /// Validates the options, binds the listener and starts following the routed services.
    #[napi(writable = true, catch_unwind)]
    pub fn start<'env>(
        env: &'env Env,
        discovery: &Discovery,
        options: ProxyOptions,
    ) -> Result<PromiseRaw<'env, Proxy>> {
        let options: df::ProxyOptions = options.conv();
        let d = discovery.inner.clone();
        call(env, async move { df::Proxy::start(d, options).await })
    }

    /// The address it listens on (`ip:port`).
    #[napi(catch_unwind)]
    pub fn address(&self) -> String {
        self.inner.address()
    }

    /// The port it listens on.
    #[napi(catch_unwind)]
    pub fn port(&self) -> u32 {
        self.inner.port().into()
    }

    /// Waits until every routed service has an endpoint (rejects with code `timeout` otherwise); ms.
    #[napi(catch_unwind)]
    pub fn wait_ready<'env>(&self, env: &'env Env, timeout: Option<f64>) -> Result<PromiseRaw<'env, ()>> {
        let p = self.inner.clone();
        let timeout = timeout.map_or(Ok(Duration::from_secs(10)), |t| arg("timeout", t))?;
        call(env, async move { p.wait_ready(timeout).await })
    }

    /// Every endpoint's counters, by service, draining ones last.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> Vec<ProxyEndpointStats> {
        self.inner.stats().conv()
    }

    /// Stops accepting, lets work in flight finish for up to `grace` ms, then cuts the rest.
    #[napi(catch_unwind)]
    pub fn shutdown<'env>(&self, env: &'env Env, grace: Option<f64>) -> Result<PromiseRaw<'env, ()>> {
        let p = self.inner.clone();
        let grace = grace.map_or(Ok(Duration::from_secs(10)), |g| arg("grace", g))?;
        call(env, async move {
            p.shutdown(grace).await;
            Ok(())
        })
    }
}

/// The latency histogram's bucket bounds (exported as `LATENCY_BOUNDS_MS` by dockfleet.js).
#[napi(js_name = "_latencyBoundsMs", catch_unwind)]
pub fn latency_bounds_ms() -> Vec<f64> {
    df::LATENCY_BOUNDS_MS.to_vec()
}
