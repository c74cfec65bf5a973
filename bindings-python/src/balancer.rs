//! The core `balancer` module in Python: load-balancing strategies with passive health.

use std::sync::Arc;

use dockfleet as df;
use pyo3::prelude::*;

use crate::Seconds;
use crate::{dto, Conv};

dto! {
    /// One endpoint requests can go to; `weight` for `weighted` and `consistent-hash`.
    Endpoint => df::Endpoint { id: String, address: String, port: u16, weight: u32 }
}

dto! {
    /// How a `Balancer` chooses (`strategy`) and when it ejects (`max_fails` within `fail_window`, for
    /// `ejection`; seconds).
    BalancerOptions => df::BalancerOptions {
        strategy: String, seed: u64, max_fails: u32, fail_window: Seconds, ejection: Seconds, virtual_nodes: u32,
    }
}

dto! {
    /// An endpoint's counters; `ewma_ms` is the latency EWMA of successful requests.
    EndpointStats => df::EndpointStats {
        endpoint: Endpoint, requests: u64, failures: u64, in_flight: u64, ewma_ms: f64, ejected: bool,
        ejections: u64, ejections_refused: u64,
    }
}

/// Picks endpoints for requests: `pick()` then `release(id, ok, latency)`.
#[pyclass(module = "dockfleet", frozen)]
pub struct Balancer {
    inner: Arc<df::Balancer>,
}

#[pymethods]
impl Balancer {
    #[new]
    #[pyo3(signature = (options=None))]
    fn new(options: Option<BalancerOptions>) -> PyResult<Self> {
        let options: df::BalancerOptions = options.conv().unwrap_or_default();
        Ok(Balancer { inner: Arc::new(crate::sync_call(|| df::Balancer::new(options))?) })
    }

    /// The options it was made with.
    #[getter]
    fn options(&self) -> BalancerOptions {
        self.inner.options().clone().conv()
    }

    /// Replaces the endpoints; those that stay keep their counters.
    fn set_endpoints(&self, endpoints: Vec<Endpoint>) -> PyResult<()> {
        crate::sync_call(|| self.inner.set_endpoints(endpoints.conv()))
    }

    /// The endpoint for the next request (`key` for `consistent-hash`), or `None` when there is none.
    #[pyo3(signature = (key=None))]
    fn pick(&self, key: Option<String>) -> PyResult<Option<Endpoint>> {
        Ok(crate::sync_call(|| Ok(self.inner.pick(key.as_deref())))?.conv())
    }

    /// Reports a picked request as done: `ok` or failed, and its latency in seconds.
    #[pyo3(signature = (id, ok, latency=0.0))]
    fn release(&self, id: &str, ok: bool, latency: f64) -> PyResult<()> {
        let latency = crate::seconds("latency", latency)?;
        crate::sync_call(|| {
            self.inner.release(id, ok, latency);
            Ok(())
        })
    }

    /// Every endpoint's counters.
    fn stats(&self) -> PyResult<Vec<EndpointStats>> {
        Ok(crate::sync_call(|| Ok(self.inner.stats()))?.conv())
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Endpoint>()?;
    m.add_class::<BalancerOptions>()?;
    m.add_class::<EndpointStats>()?;
    m.add_class::<Balancer>()?;
    Ok(())
}
