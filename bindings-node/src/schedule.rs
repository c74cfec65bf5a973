//! The core `schedule` module in Node: the pure scheduler and its types.

use std::collections::HashMap;

use dockfleet as df;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::js_error;
use crate::spec::ServiceSpec;
use crate::{arg, object, Conv, Number};

object! { in
    #[doc = "A host as the scheduler sees it; `usedPorts` like `\"8080/tcp\"`; `services`, those running a task there (what `node.runs` constraints look at); `runtimes`, its engine's (empty: unknown, any)."]
    HostState => df::HostState {
        name: String, labels: HashMap<String, String>, available: bool, cpus: f64, memory_bytes: Number<u64>,
        reserved_cpus: f64, reserved_memory_bytes: Number<u64>, used_ports: Vec<String>, tasks: Number<u32>, service_tasks: Number<u32>,
        services: Vec<String>, runtimes: Vec<String>,
    }
}

object! { out
    #[doc = "Where one slot goes."]
    Assignment => df::Assignment { slot: Number<u32>, host: String }
}

object! { out
    #[doc = "The scheduler's answer: placements, unplaced slots, and why hosts took no (more) tasks."]
    Schedule => df::Schedule { assignments: Vec<Assignment>, unplaced: Vec<Number<u32>>, reasons: HashMap<String, String> }
}

object! { in
    #[doc = "Options of `schedule`: the seed of tie-breaks and of the random strategy."]
    ScheduleOptions => df::ScheduleOptions { seed: Number<u64> }
}

/// Places `slots` of `spec` onto `hosts`: pure and deterministic for a given seed.
#[napi(catch_unwind)]
pub fn schedule(
    env: Env,
    spec: ServiceSpec,
    hosts: Vec<HostState>,
    slots: Vec<f64>,
    options: Option<ScheduleOptions>,
) -> Result<Schedule> {
    let hosts: Vec<df::HostState> = hosts.conv();
    let slots = slots.into_iter().map(|s| arg("slots", s)).collect::<Result<Vec<u32>>>()?;
    let options: df::ScheduleOptions = options.conv().unwrap_or_default();
    df::schedule(&spec.conv(), &hosts, &slots, &options).map(Conv::conv).map_err(|e| js_error(&env, e))
}
