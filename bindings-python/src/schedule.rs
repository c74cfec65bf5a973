//! The core `schedule` module in Python: the pure scheduler and its types.

use std::collections::{BTreeMap, BTreeSet};

use dockfleet as df;
use pyo3::prelude::*;

use crate::spec::ServiceSpec;
use crate::{dto, Conv};

dto! {
    /// A host as the scheduler sees it; `used_ports` like `"8080/tcp"`; `services`, those running a task
    /// there (what `node.runs` constraints look at); `runtimes`, its engine's (empty: unknown, any).
    HostState => df::HostState {
        name: String, labels: BTreeMap<String, String>, available: bool, cpus: f64, memory_bytes: u64,
        reserved_cpus: f64, reserved_memory_bytes: u64, used_ports: BTreeSet<String>, tasks: u32, service_tasks: u32,
        services: BTreeSet<String>, runtimes: BTreeSet<String>,
    }
}

dto! {
    /// Where one slot goes.
    Assignment => df::Assignment { slot: u32, host: String }
}

dto! {
    /// The scheduler's answer: placements, unplaced slots, and why hosts took no (more) tasks.
    Schedule => df::Schedule { assignments: Vec<Assignment>, unplaced: Vec<u32>, reasons: BTreeMap<String, String> }
}

dto! {
    /// Options of `schedule`: the seed of tie-breaks and of the random strategy.
    ScheduleOptions => df::ScheduleOptions { seed: u64 }
}

/// Places `slots` of `spec` onto `hosts`: pure and deterministic for a given seed.
#[pyfunction]
#[pyo3(signature = (spec, hosts, slots, options=None))]
fn schedule(
    spec: ServiceSpec,
    hosts: Vec<HostState>,
    slots: Vec<i128>,
    options: Option<ScheduleOptions>,
) -> PyResult<Schedule> {
    let slots = slots.into_iter().map(|s| crate::count("slots", s)).collect::<PyResult<Vec<u32>>>()?;
    let hosts: Vec<df::HostState> = hosts.conv();
    let options: df::ScheduleOptions = options.conv().unwrap_or_default();
    Ok(crate::sync_call(|| df::schedule(&spec.conv(), &hosts, &slots, &options))?.conv())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<HostState>()?;
    m.add_class::<Assignment>()?;
    m.add_class::<Schedule>()?;
    m.add_class::<ScheduleOptions>()?;
    m.add_function(wrap_pyfunction!(schedule, m)?)?;
    Ok(())
}
