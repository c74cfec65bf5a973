//! The core `stats` module in Node: a service's tasks sampled across the fleet, and the samples as
//! Prometheus text.

use dockfleet as df;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::host::Stats;
use crate::{call, object, Conv, Number};

object! { out
    #[doc = "One running task's resource use, with where it runs (`serviceStats`)."]
    TaskStats => df::TaskStats { service: String, host: String, name: String, slot: Number<u32>, stats: Stats }
}

/// One resource sample of every running task of `service`, on a `Fleet` or a `Swarm`, taken on all
/// its hosts at once (about a second), ordered by slot and host.
#[napi(catch_unwind)]
pub fn service_stats<'env>(
    env: &'env Env,
    backend: crate::backend::Backend<'_>,
    service: String,
) -> Result<PromiseRaw<'env, Vec<TaskStats>>> {
    let b = crate::backend::backend(&backend);
    call(env, async move { b.service_stats(&service).await })
}

/// The samples in Prometheus' text exposition format, one `dockfleet_task_*` family per figure.
#[napi(catch_unwind)]
pub fn prometheus_text(samples: Vec<TaskStats>) -> String {
    let samples: Vec<df::TaskStats> = samples.conv();
    df::prometheus_text(&samples)
}
