#![no_main]
//! The pure planners on arbitrary numbers: the scheduler, `plan` (restart policies, counts and times
//! read from container labels, which anyone can set), `task_container` and the load balancer. A valid
//! service and fleet are the template; the input overwrites their numbers, extremes included, and picks
//! the strategies. Each call must return a result or an error, never panic (overflow checks are on in
//! fuzz builds, so an overflow is a finding).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dockfleet::{
    Balancer, BalancerOptions, Endpoint, HostState, Observed, PlanOptions, ScheduleOptions, ServiceSpec, Task,
};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// An integer of type `T`, often one at an end of its range.
fn int<T: Copy + for<'a> libfuzzer_sys::arbitrary::Arbitrary<'a>>(u: &mut Unstructured, ends: [T; 3]) -> Result<T> {
    Ok(match u.int_in_range(0..=3u8)? {
        0..=2 => ends[u.choose_index(3)?],
        _ => u.arbitrary()?,
    })
}

fn u32_(u: &mut Unstructured) -> Result<u32> {
    int(u, [0, 1, u32::MAX])
}

fn u64_(u: &mut Unstructured) -> Result<u64> {
    int(u, [0, 1, u64::MAX])
}

fn i64_(u: &mut Unstructured) -> Result<i64> {
    int(u, [i64::MIN, 0, i64::MAX])
}

fn f64_(u: &mut Unstructured) -> Result<f64> {
    Ok(*u.choose(&[0.0, 0.5, 2.0, -1.0, f64::NAN, f64::INFINITY, f64::MAX, f64::MIN_POSITIVE])?)
}

fn duration(u: &mut Unstructured) -> Result<Duration> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => Duration::ZERO,
        1 => Duration::MAX,
        2 => Duration::from_millis(u.arbitrary::<u16>()?.into()),
        _ => Duration::new(u.arbitrary()?, u.int_in_range(0..=999_999_999)?),
    })
}

fn spec(u: &mut Unstructured) -> Result<ServiceSpec> {
    let mut s = ServiceSpec::new("web", "img");
    s.replicas = u.int_in_range(0..=64)?;
    s.mode = u.choose(&["replicated", "global"])?.to_string();
    s.placement.strategy = u.choose(&["spread", "binpack", "random"])?.to_string();
    s.placement.max_replicas_per_host = u.arbitrary::<bool>()?.then(|| u32_(u)).transpose()?;
    if u.arbitrary()? {
        s.placement.preferences = vec!["spread=node.labels.zone".into()];
    }
    s.resources.cpu_reservation = u.arbitrary::<bool>()?.then(|| f64_(u)).transpose()?;
    s.resources.cpu_limit = u.arbitrary::<bool>()?.then(|| f64_(u)).transpose()?;
    s.resources.memory_reservation = u.arbitrary::<bool>()?.then(|| u64_(u)).transpose()?;
    s.resources.memory_limit = u.arbitrary::<bool>()?.then(|| u64_(u)).transpose()?;
    s.restart_policy.condition = u.choose(&["any", "on-failure", "none"])?.to_string();
    s.restart_policy.max_attempts = u32_(u)?;
    s.restart_policy.window = duration(u)?;
    s.restart_policy.delay = duration(u)?;
    s.stop_grace_period = duration(u)?;
    s.shutdown_delay = duration(u)?;
    s.update_config.parallelism = u32_(u)?;
    s.update_config.delay = duration(u)?;
    s.update_config.monitor = duration(u)?;
    s.update_config.max_failure_ratio = f64_(u)?;
    Ok(s)
}

fn hosts(u: &mut Unstructured) -> Result<Vec<HostState>> {
    (0..u.int_in_range(0..=4)?)
        .map(|i| {
            Ok(HostState {
                name: format!("h{i}"),
                labels: BTreeMap::from([("zone".to_string(), format!("{}", i % 2))]),
                available: u.ratio(4, 5)?,
                cpus: f64_(u)?,
                memory_bytes: u64_(u)?,
                reserved_cpus: f64_(u)?,
                reserved_memory_bytes: u64_(u)?,
                tasks: u32_(u)?,
                service_tasks: u32_(u)?,
                ..Default::default()
            })
        })
        .collect()
}

fn tasks(u: &mut Unstructured, spec: &ServiceSpec, hosts: &[HostState]) -> Result<Vec<Task>> {
    let hash = dockfleet::spec_hash(spec);
    (0..u.int_in_range(0..=6)?)
        .map(|i| {
            Ok(Task {
                host: hosts.get(i % hosts.len().max(1)).map_or("gone".into(), |h| h.name.clone()),
                id: format!("c{i}"),
                name: format!("web.{i}"),
                slot: u32_(u)?,
                spec_hash: if u.arbitrary()? { hash.clone() } else { "old".into() },
                state: u.choose(&["running", "exited", "dead", "created", "removing"])?.to_string(),
                exit_code: u.arbitrary::<bool>()?.then(|| i64_(u)).transpose()?,
                restarts: u32_(u)?,
                restarts_since_ms: i64_(u)?,
                ..Default::default()
            })
        })
        .collect()
}

fn balancer(u: &mut Unstructured) -> Result<()> {
    let strategies = ["round-robin", "weighted", "least-connections", "p2c", "p2c-ewma", "consistent-hash", "random"];
    let options = BalancerOptions {
        strategy: u.choose(&strategies)?.to_string(),
        seed: u64_(u)?,
        max_fails: u32_(u)?,
        fail_window: duration(u)?,
        ejection: duration(u)?,
        virtual_nodes: u.int_in_range(0..=300)?,
    };
    let Ok(b) = Balancer::new(options) else { return Ok(()) };
    let endpoints = (0..u.int_in_range(0..=4)?)
        .map(|i| {
            Ok(Endpoint { id: format!("e{i}"), address: "10.0.0.1".into(), port: u.arbitrary()?, weight: u32_(u)? })
        })
        .collect::<Result<Vec<_>>>()?;
    if b.set_endpoints(endpoints).is_err() {
        return Ok(());
    }
    let t0 = Instant::now();
    for step in 0..u.int_in_range(0..=32u64)? {
        let now = t0 + Duration::from_secs(step * u.int_in_range(0..=3600u64)?);
        let key = format!("k{}", u.arbitrary::<u8>()?);
        if let Some(e) = b.pick_at(Some(&key), now) {
            b.release_at(&e.id, u.arbitrary()?, duration(u)?, now);
        }
    }
    drop(b.stats());
    Ok(())
}

fn run(u: &mut Unstructured) -> Result<()> {
    let spec = spec(u)?;
    let hosts = hosts(u)?;
    let slots: Vec<u32> = (0..u.int_in_range(0..=8)?).map(|_| u32_(u)).collect::<Result<_>>()?;
    let seed = u64_(u)?;
    drop(dockfleet::schedule(&spec, &hosts, &slots, &ScheduleOptions { seed }));
    let observed = Observed { tasks: tasks(u, &spec, &hosts)?, hosts, time_ms: i64_(u)?, ..Default::default() };
    drop(dockfleet::plan(&spec, &observed, &PlanOptions { seed, force: u.arbitrary()? }));
    drop(dockfleet::task_container(&spec, u32_(u)?));
    balancer(u)
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
