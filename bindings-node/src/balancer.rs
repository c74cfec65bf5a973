//! The core `balancer` module in Node: load-balancing strategies with passive health.

use std::sync::Arc;
use std::time::Duration;

use dockfleet as df;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::js_error;
use crate::{arg, object, Conv, Number};

object! { in
    #[doc = "One endpoint requests can go to; `weight` for `weighted` and `consistent-hash`."]
    Endpoint => df::Endpoint { id: String, address: String, port: Number<u16>, weight: Number<u32> }
}

object! { in
    #[doc = "How a `Balancer` chooses (`strategy`) and when it ejects (`maxFails` within `failWindow`, for"]
    #[doc = "`ejection`; milliseconds)."]
    BalancerOptions => df::BalancerOptions {
        strategy: String, seed: Number<u64>, max_fails: Number<u32>, fail_window: Number<Duration>, ejection: Number<Duration>, virtual_nodes: Number<u32>,
    }
}

object! { out
    #[doc = "An endpoint's counters; `ewmaMs` is the latency EWMA of successful requests."]
    EndpointStats => df::EndpointStats {
        endpoint: Endpoint, requests: Number<u64>, failures: Number<u64>, in_flight: Number<u64>, ewma_ms: f64, ejected: bool,
        ejections: Number<u64>, ejections_refused: Number<u64>,
    }
}

/// Picks endpoints for requests: `pick()` then `release(id, ok, latencyMs)`.
#[napi]
pub struct Balancer {
    inner: Arc<df::Balancer>,
}

#[napi]
impl Balancer {
    #[napi(constructor, catch_unwind)]
    pub fn new(env: Env, options: Option<BalancerOptions>) -> Result<Self> {
        let options: df::BalancerOptions = options.conv().unwrap_or_default();
        df::Balancer::new(options).map(|b| Balancer { inner: Arc::new(b) }).map_err(|e| js_error(&env, e))
    }

    /// The options it was made with.
    #[napi(getter, catch_unwind)]
    pub fn options(&self) -> BalancerOptions {
        self.inner.options().clone().conv()
    }

    /// Replaces the endpoints; those that stay keep their counters.
    #[napi(catch_unwind)]
    pub fn set_endpoints(&self, env: Env, endpoints: Vec<Endpoint>) -> Result<()> {
        self.inner.set_endpoints(endpoints.conv()).map_err(|e| js_error(&env, e))
    }

    /// The endpoint for the next request (`key` for `consistent-hash`), or `null` when there is none.
    #[napi(catch_unwind)]
    pub fn pick(&self, key: Option<String>) -> Option<Endpoint> {
        self.inner.pick(key.as_deref()).conv()
    }

    /// Reports a picked request as done: `ok` or failed, and its latency in milliseconds.
    #[napi(catch_unwind)]
    pub fn release(&self, id: String, ok: bool, latency: Option<f64>) -> Result<()> {
        let latency = latency.map_or(Ok(Duration::ZERO), |l| arg("latency", l))?;
        self.inner.release(&id, ok, latency);
        Ok(())
    }

    /// Every endpoint's counters.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> Vec<EndpointStats> {
        self.inner.stats().conv()
    }
}
