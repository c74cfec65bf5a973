//! The core `balancer` module in Node: load-balancing strategies with passive health.

use std::sync::Arc;

use dockfleet as df;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::js_error;
use crate::{object, Conv};

object! { in
    #[doc = "One endpoint requests can go to; `weight` for `weighted` and `consistent-hash`."]
    Endpoint => df::Endpoint { id: String, address: String, port: u32, weight: u32 }
}

object! { in
    #[doc = "How a `Balancer` chooses (`strategy`) and when it ejects (`maxFails` within `failWindow`, for"]
    #[doc = "`ejection`; milliseconds)."]
    BalancerOptions => df::BalancerOptions {
        strategy: String, seed: i64, max_fails: u32, fail_window: f64, ejection: f64, virtual_nodes: u32,
    }
}

object! { out
    #[doc = "An endpoint's counters; `ewmaMs` is the latency EWMA of successful requests."]
    EndpointStats => df::EndpointStats {
        endpoint: Endpoint, requests: i64, failures: i64, in_flight: i64, ewma_ms: f64, ejected: bool,
        ejections: i64, ejections_refused: i64,
    }
}

/// Picks endpoints for requests: `pick()` then `release(id, ok, latencyMs)`.
#[napi]
pub struct Balancer {
    inner: Arc<df::Balancer>,
}

#[napi]
impl Balancer {
    #[napi(constructor)]
    pub fn new(env: Env, options: Option<BalancerOptions>) -> Result<Self> {
        let options: df::BalancerOptions = options.conv().unwrap_or_default();
        df::Balancer::new(options).map(|b| Balancer { inner: Arc::new(b) }).map_err(|e| js_error(&env, e))
    }

    /// The options it was made with.
    #[napi(getter)]
    pub fn options(&self) -> BalancerOptions {
        self.inner.options().clone().conv()
    }

    /// Replaces the endpoints; those that stay keep their counters.
    #[napi]
    pub fn set_endpoints(&self, env: Env, endpoints: Vec<Endpoint>) -> Result<()> {
        self.inner.set_endpoints(endpoints.conv()).map_err(|e| js_error(&env, e))
    }

    /// The endpoint for the next request (`key` for `consistent-hash`), or `null` when there is none.
    #[napi]
    pub fn pick(&self, key: Option<String>) -> Option<Endpoint> {
        self.inner.pick(key.as_deref()).conv()
    }

    /// Reports a picked request as done: `ok` or failed, and its latency in milliseconds.
    #[napi]
    pub fn release(&self, id: String, ok: bool, latency: Option<f64>) {
        self.inner.release(&id, ok, latency.unwrap_or(0.0).conv())
    }

    /// Every endpoint's counters.
    #[napi]
    pub fn stats(&self) -> Vec<EndpointStats> {
        self.inner.stats().conv()
    }
}
