//! Deploying a service onto a fleet of plain engines: observe → plan → apply.
//!
//! The engines' container labels are the state: every task container carries `dockfleet.service`,
//! `dockfleet.slot`, `dockfleet.spec-hash` and its reservations, so a new process adopts what it finds
//! and there is no second database to drift. [`plan`] is a pure function of the spec and what
//! [`observe`] saw; it says what [`apply`] would do, with a reason for each action, and on a converged
//! service it plans nothing, so applying an unchanged spec makes no mutating engine call.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fleet::{Fleet, ProbeOptions};
use crate::host::{
    now_nanos, ContainerSpec, EventOptions, Host, ListContainersOptions, LogOptions, PortMapping, ResultStream,
};
use crate::schedule::{schedule, HostState, ScheduleOptions};
use crate::spec::ServiceSpec;
use crate::Later;

/// Label naming the service a container belongs to.
pub const LABEL_SERVICE: &str = "dockfleet.service";
/// Label holding the task's slot number.
pub const LABEL_SLOT: &str = "dockfleet.slot";
/// Label holding the hash of the spec the task was created from.
pub const LABEL_SPEC_HASH: &str = "dockfleet.spec-hash";
/// Label holding the task's CPU reservation.
pub const LABEL_CPU_RESERVATION: &str = "dockfleet.cpu-reservation";
/// Label holding the task's memory reservation in bytes.
pub const LABEL_MEMORY_RESERVATION: &str = "dockfleet.memory-reservation";
/// Label holding the whole spec the task was created from (JSON), so a new process can roll back.
pub const LABEL_SPEC: &str = "dockfleet.spec";
/// Label holding the spec (JSON) of the task this one replaced in an update.
pub const LABEL_PREVIOUS_SPEC: &str = "dockfleet.previous-spec";
/// Label holding the hash of [`LABEL_PREVIOUS_SPEC`].
pub const LABEL_PREVIOUS_SPEC_HASH: &str = "dockfleet.previous-spec-hash";
/// Label listing the ports a task on the host network binds on its host (`80/tcp,53/udp`): the engine
/// reports no port of such a container, so placement and discovery read them here.
pub const LABEL_HOST_PORTS: &str = "dockfleet.host-ports";
/// Label counting the restarts of the task's slot under its restart policy: `N@MS`, N restarts since
/// the time MS (milliseconds since the epoch) that opened the policy's window.
pub const LABEL_RESTARTS: &str = "dockfleet.restarts";

/// One task container as observed on an engine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Host it runs on.
    pub host: String,
    /// Container ID.
    pub id: String,
    /// Container name.
    pub name: String,
    /// Slot number (replicated mode).
    pub slot: u32,
    /// Hash of the spec it was created from.
    pub spec_hash: String,
    /// `running`, `exited`, `created`, …
    pub state: String,
    /// Engine status text, e.g. `Exited (137) 2 seconds ago`.
    pub status: String,
    /// Exit code, once it has exited.
    pub exit_code: Option<i64>,
    /// Restarts of its slot counted by the restart policy (see [`LABEL_RESTARTS`]).
    pub restarts: u32,
    /// Start of the restart policy's window, milliseconds since the epoch (0: no restart yet).
    pub restarts_since_ms: i64,
    /// Hash of the spec of the task it replaced in an update (empty if none).
    pub previous_spec_hash: String,
}

/// What [`observe`] saw: the hosts as the scheduler needs them, and the service's tasks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// Every host of the fleet, with its load; unreachable ones have `available = false`.
    pub hosts: Vec<HostState>,
    /// The service's task containers on reachable hosts.
    pub tasks: Vec<Task>,
    /// Tasks last seen on hosts that are now unreachable but still within their grace period
    /// ([`SuperviseOptions::host_grace`]): their slots count as taken, and nothing is done to them.
    pub held: Vec<Task>,
    /// The specs recorded on the tasks ([`LABEL_SPEC`], [`LABEL_PREVIOUS_SPEC`]), by spec hash.
    pub specs: BTreeMap<String, ServiceSpec>,
    /// When it was observed, milliseconds since the epoch (the restart policy's clock).
    pub time_ms: i64,
}

/// One step of a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// `create`, `remove` or `update` (replace a task whose spec changed).
    pub kind: String,
    /// Host concerned.
    pub host: String,
    /// Slot concerned.
    pub slot: u32,
    /// Container concerned (`remove` and `update`).
    pub id: Option<String>,
    /// Why.
    pub reason: String,
    /// `create`: the restart count the new task carries (0 unless it replaces a stopped task).
    pub restarts: u32,
    /// `create`: start of the restart policy's window it carries (milliseconds since the epoch).
    pub restarts_since_ms: i64,
}

/// What [`apply`] would do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Service name.
    pub service: String,
    /// Hash of the spec being applied.
    pub spec_hash: String,
    /// Actions, removals first.
    pub actions: Vec<Action>,
    /// Slots no host could take.
    pub unplaced: Vec<u32>,
    /// Per host, why it took no (more) tasks (see [`crate::Schedule::reasons`]).
    pub reasons: BTreeMap<String, String>,
}

/// Options of [`plan`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Seed of the scheduler's tie-breaks.
    pub seed: u64,
    /// Replace every running task, those of the current spec too: a rolling restart (`docker
    /// service update --force`), to pick up what a task read when it started (a secret, a DNS
    /// answer, a dependency's new address).
    pub force: bool,
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyReport {
    /// Containers created and started.
    pub created: Vec<Task>,
    /// Containers removed.
    pub removed: Vec<String>,
}

/// What [`deploy`] did: the plan it carried out and the report of carrying it out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The plan that was applied.
    pub plan: Plan,
    /// What applying it did.
    pub report: ApplyReport,
}

/// FNV-1a, 64 bits: a stable hash for spec identity (not for security).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The hash of what a task is made of: everything but the replica count, the placement, the restart
/// policy, the update and rollback settings and the validation opt-ins, which change how many tasks run,
/// where, or how they are replaced, not what a task is. (A task whose host no longer satisfies a new
/// placement is moved by [`plan`]; the others stay.)
pub fn spec_hash(spec: &ServiceSpec) -> String {
    let mut s = spec.clone();
    s.replicas = 0;
    s.placement = Default::default();
    s.restart_policy = Default::default();
    s.update_config = Default::default();
    s.rollback_config = Default::default();
    s.allow_host_mounts = false;
    s.allow_privileged = false;
    s.shutdown_delay = Default::default();
    s.pull_policy = None;
    let json = serde_json::to_vec(&s).unwrap_or_default();
    format!("{:016x}", fnv1a(&json))
}

/// The container a task of `spec` in `slot` runs as. A `{{.Node.Hostname}}` in its hostname or
/// environment is left for the host that places the task to fill.
pub fn task_container(spec: &ServiceSpec, slot: u32) -> ContainerSpec {
    task_container_with(spec, None, slot, BTreeMap::new())
}

/// [`LABEL_HOST_PORTS`]'s value for a task of `spec`: `None` off the host network or without ports.
pub(crate) fn host_ports_label(spec: &ServiceSpec) -> Option<String> {
    if !spec.host_network() {
        return None;
    }
    let ports = spec.host_port_keys();
    (!ports.is_empty()).then(|| ports.join(","))
}

/// The ports a running container binds on its host: those the engine reports, and for a container
/// on the host network those its [`LABEL_HOST_PORTS`] names (each its own host port).
pub(crate) fn host_ports(c: &crate::host::ContainerSummary) -> Vec<PortMapping> {
    let mut out = c.ports.clone();
    let named = c.labels.get(LABEL_HOST_PORTS).map(|l| l.split(',')).into_iter().flatten();
    out.extend(named.filter_map(|p| {
        let (port, protocol) = p.split_once('/')?;
        let port: u16 = port.parse().ok()?;
        Some(PortMapping { container_port: port, host_port: Some(port), protocol: protocol.into(), host_ip: None })
    }));
    out
}

/// Whether a container runs on the host network with no port it names (neither the engine nor a
/// [`LABEL_HOST_PORTS`] label): one run by hand or by another tool, whose ports only its exposed ports
/// tell (an inspect; see [`exposed_on_host`]).
pub(crate) fn listens_unnamed(c: &crate::host::ContainerSummary) -> bool {
    c.state == "running" && c.network_mode == "host" && c.ports.is_empty() && !c.labels.contains_key(LABEL_HOST_PORTS)
}

/// A host-network container's exposed ports as the ports it binds on its host, each at its own number.
pub(crate) fn exposed_on_host(exposed: &[PortMapping]) -> Vec<PortMapping> {
    exposed.iter().map(|p| PortMapping { host_port: Some(p.container_port), ..p.clone() }).collect()
}

/// [`task_container`] on `host` (which fills `{{.Node.Hostname}}`), with extra `dockfleet.*` labels
/// (restart count, previous spec).
pub(crate) fn task_container_with(
    spec: &ServiceSpec,
    host: Option<&str>,
    slot: u32,
    extra: BTreeMap<String, String>,
) -> ContainerSpec {
    static NONCE: AtomicU64 = AtomicU64::new(0);
    let nonce = fnv1a(
        format!("{}-{}-{:?}", std::process::id(), NONCE.fetch_add(1, Ordering::Relaxed), std::time::SystemTime::now())
            .as_bytes(),
    );
    let mut labels = spec.labels.clone();
    labels.insert(LABEL_SERVICE.into(), spec.name.clone());
    labels.insert(LABEL_SLOT.into(), slot.to_string());
    labels.insert(LABEL_SPEC_HASH.into(), spec_hash(spec));
    labels.insert(LABEL_SPEC.into(), serde_json::to_string(spec).unwrap_or_default());
    if let Some(c) = spec.resources.cpu_reservation {
        labels.insert(LABEL_CPU_RESERVATION.into(), c.to_string());
    }
    if let Some(m) = spec.resources.memory_reservation {
        labels.insert(LABEL_MEMORY_RESERVATION.into(), m.to_string());
    }
    if let Some(ports) = host_ports_label(spec) {
        labels.insert(LABEL_HOST_PORTS.into(), ports);
    }
    labels.extend(extra);
    // Validated with the spec; left as it is otherwise, for the container's check to refuse.
    let placeholders = crate::spec::Placeholders { service: &spec.name, slot, host };
    let fill = |field: &str, text: &String| {
        crate::spec::fill_placeholders(field, text, &placeholders).unwrap_or_else(|_| text.clone())
    };
    ContainerSpec {
        name: Some(format!("{}.{slot}.{:08x}", spec.name, nonce as u32)),
        image: spec.image.clone(),
        command: spec.command.clone(),
        entrypoint: spec.entrypoint.clone(),
        working_dir: spec.working_dir.clone(),
        user: spec.user.clone(),
        env: spec.env.iter().map(|(k, v)| (k.clone(), fill("env", v))).collect(),
        labels,
        ports: spec
            .ports
            .iter()
            .map(|p| PortMapping {
                container_port: p.target,
                // On the host network the engine binds nothing (and warns about a binding).
                host_port: p.published.filter(|_| !spec.host_network()),
                protocol: p.protocol.clone(),
                host_ip: None,
            })
            .collect(),
        mounts: spec.volumes.clone(),
        cpus: spec.resources.cpu_limit,
        memory_bytes: spec.resources.memory_limit,
        pids_limit: spec.resources.pids_limit,
        cpu_shares: spec.resources.cpu_shares,
        cpuset_cpus: spec.resources.cpuset_cpus.clone(),
        memory_swap_bytes: spec.resources.memory_swap_limit,
        memory_swappiness: spec.resources.memory_swappiness,
        oom_kill_disable: spec.resources.oom_kill_disable,
        oom_score_adj: spec.oom_score_adj,
        runtime: spec.runtime.clone(),
        healthcheck: spec.healthcheck.clone(),
        network: spec.networks.first().cloned(),
        extra_networks: spec.networks.iter().skip(1).cloned().collect(),
        network_aliases: if spec.networks.first().is_some_and(|n| crate::host::is_user_network(n)) {
            std::iter::once(&spec.name).chain(&spec.network_aliases).cloned().collect()
        } else {
            Vec::new()
        },
        privileged: spec.privileged,
        security_opt: spec.security_opt.clone(),
        devices: spec.devices.clone(),
        tty: spec.tty,
        stdin_open: spec.stdin_open,
        pid: spec.pid.clone(),
        ipc: spec.ipc.clone(),
        group_add: spec.group_add.clone(),
        hostname: spec.hostname.as_ref().map(|h| fill("hostname", h)),
        extra_hosts: spec.extra_hosts.clone(),
        init: spec.init,
        read_only: spec.read_only,
        cap_add: spec.cap_add.clone(),
        cap_drop: spec.cap_drop.clone(),
        logging: spec.logging.clone(),
        ulimits: spec.ulimits.clone(),
        sysctls: spec.sysctls.clone(),
        tmpfs: spec.tmpfs.clone(),
        shm_size: spec.shm_size,
        dns: spec.dns.clone(),
        dns_search: spec.dns_search.clone(),
        dns_opt: spec.dns_opt.clone(),
        stop_timeout: Some(spec.stop_grace_period.as_secs().min(u32::MAX as u64) as u32),
        stop_signal: spec.stop_signal.clone(),
        ..Default::default()
    }
}

/// Reads a task from its container's labels, recording the specs it carries into `specs`.
pub(crate) fn task_from(
    host: &str,
    c: &crate::host::ContainerSummary,
    specs: &mut BTreeMap<String, ServiceSpec>,
) -> Task {
    let label = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
    let (restarts, since) = label(LABEL_RESTARTS)
        .split_once('@')
        .and_then(|(n, ms)| Some((n.parse().ok()?, ms.parse().ok()?)))
        .unwrap_or((0, 0));
    let task = Task {
        host: host.to_string(),
        id: c.id.clone(),
        name: c.name.clone(),
        slot: label(LABEL_SLOT).parse().unwrap_or(0),
        spec_hash: label(LABEL_SPEC_HASH),
        state: c.state.clone(),
        status: c.status.clone(),
        exit_code: if c.state == "exited" { c.exit_code() } else { None },
        restarts,
        restarts_since_ms: since,
        previous_spec_hash: label(LABEL_PREVIOUS_SPEC_HASH),
    };
    for (hash, json) in [(&task.spec_hash, LABEL_SPEC), (&task.previous_spec_hash, LABEL_PREVIOUS_SPEC)] {
        if hash.is_empty() || specs.contains_key(hash) {
            continue;
        }
        if let Ok(spec) = serde_json::from_str::<ServiceSpec>(&label(json)) {
            specs.insert(hash.clone(), spec);
        }
    }
    task
}

/// Reads the fleet: every host's capacity, load and used ports, and the service's tasks. Unreachable
/// hosts are reported unavailable, never an error.
pub async fn observe(fleet: &Fleet, service: &str) -> Result<Observed> {
    let time_ms = now_nanos() / 1_000_000;
    let statuses = fleet.probe(&ProbeOptions::default()).await;
    let jobs = statuses.into_iter().map(|st| {
        let host = fleet.host(&st.name);
        async move {
            let host = host?;
            let mut state = HostState {
                name: st.name.clone(),
                labels: st.labels.clone(),
                available: st.reachable,
                cpus: st.info.as_ref().map(|i| i.cpus as f64).unwrap_or(0.0),
                memory_bytes: st.info.as_ref().map(|i| i.memory_bytes).unwrap_or(0),
                runtimes: st.info.as_ref().map(|i| i.runtimes.iter().cloned().collect()).unwrap_or_default(),
                ..Default::default()
            };
            // The engine's platform, for `node.platform.os` and `node.platform.arch` constraints.
            if let Some(i) = &st.info {
                for (k, v) in [(crate::spec::PLATFORM_OS, &i.os_type), (crate::spec::PLATFORM_ARCH, &i.arch)] {
                    if !v.is_empty() {
                        state.labels.insert(k.into(), v.clone());
                    }
                }
            }
            let mut tasks = Vec::new();
            let mut specs = BTreeMap::new();
            if !st.reachable {
                return Ok::<_, Error>((state, tasks, specs));
            }
            let all = host.list_containers(&ListContainersOptions { all: true, ..Default::default() }).await;
            let all = match all {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(host = %st.name, error = %e, "host failed while being observed");
                    state.available = false;
                    return Ok((state, tasks, specs));
                }
            };
            for mut c in all {
                let running = c.state == "running";
                if running {
                    state.tasks += 1;
                    if listens_unnamed(&c) {
                        // (Gone meanwhile: it binds nothing.)
                        if let Ok(d) = host.inspect_container(&c.id).await {
                            c.ports = exposed_on_host(&d.exposed_ports);
                        }
                    }
                    for p in host_ports(&c) {
                        if let Some(hp) = p.host_port {
                            state.used_ports.insert(format!("{hp}/{}", p.protocol));
                        }
                    }
                    if let Some(s) = c.labels.get(LABEL_SERVICE).filter(|_| !is_draining(&c.name)) {
                        state.services.insert(s.clone());
                    }
                    let num = |k: &str| c.labels.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
                    state.reserved_cpus += num(LABEL_CPU_RESERVATION);
                    state.reserved_memory_bytes += num(LABEL_MEMORY_RESERVATION) as u64;
                }
                if c.labels.get(LABEL_SERVICE).map(String::as_str) == Some(service) {
                    tasks.push(task_from(&st.name, &c, &mut specs));
                }
            }
            Ok((state, tasks, specs))
        }
    });
    let mut observed = Observed { time_ms, ..Default::default() };
    for r in futures::future::join_all(jobs).await {
        let (h, t, specs) = r?;
        observed.hosts.push(h);
        observed.tasks.extend(t);
        observed.specs.extend(specs);
    }
    observed.tasks.sort_by(|a, b| (a.slot, &a.host, &a.id).cmp(&(b.slot, &b.host, &b.id)));
    Ok(observed)
}

fn remove(t: &Task, reason: impl Into<String>) -> Action {
    Action {
        kind: "remove".into(),
        host: t.host.clone(),
        slot: t.slot,
        id: Some(t.id.clone()),
        reason: reason.into(),
        ..Default::default()
    }
}

/// Refuses what only Swarm mode has: secrets and configs live in the swarm's Raft store, and plain
/// engines have nothing like it.
pub(crate) fn fleet_can_run(spec: &ServiceSpec) -> Result<()> {
    for (field, empty) in [("secrets", spec.secrets.is_empty()), ("configs", spec.configs.is_empty())] {
        if !empty {
            return Err(Error::invalid(
                field,
                "plain engines have no secret or config store: deploy this service with the Swarm backend",
            ));
        }
    }
    Ok(())
}

/// Plans the actions that bring the observed service to `spec`: pure, deterministic for a seed.
pub fn plan(spec: &ServiceSpec, observed: &Observed, options: &PlanOptions) -> Result<Plan> {
    fleet_can_run(spec)?;
    spec.validate()?;
    let hash = spec_hash(spec);
    let mut out = Plan { service: spec.name.clone(), spec_hash: hash.clone(), ..Default::default() };
    let available: BTreeSet<&str> = observed.hosts.iter().filter(|h| h.available).map(|h| h.name.as_str()).collect();
    let global = spec.mode == "global";

    // 1. Tasks that stopped are replaced as the restart policy says (their slot is planned again
    //    below, carrying the restart count); the others stay, holding their slot.
    let key = |host: &str, slot: u32| if global { host.to_string() } else { slot.to_string() };
    let rp = &spec.restart_policy;
    let window_ms = i64::try_from(rp.window.as_millis()).unwrap_or(i64::MAX);
    let mut restarts: BTreeMap<String, (u32, i64)> = BTreeMap::new();
    let mut live: Vec<&Task> = Vec::new();
    for t in &observed.tasks {
        if !available.contains(t.host.as_str()) || t.state == "removing" {
            continue; // on an unreachable host: not counted, so its slot is placed elsewhere
        }
        if is_draining(&t.name) {
            // Out of discovery already, on its way out (its removal was cut short): it holds no slot.
            out.actions.push(remove(t, "task was draining before its removal; removed"));
            continue;
        }
        if !matches!(t.state.as_str(), "exited" | "dead" | "created") {
            live.push(t);
            continue;
        }
        if t.state == "created" || t.spec_hash != hash {
            out.actions
                .push(remove(t, format!("task is {} ({}); replaced by one of the current spec", t.state, t.status)));
            continue;
        }
        let wanted = match rp.condition.as_str() {
            "none" => false,
            "on-failure" => t.exit_code != Some(0),
            _ => true,
        };
        if !wanted {
            live.push(t); // finished under its restart policy: it keeps its slot
            continue;
        }
        // Saturating: the counts and times come from labels on containers, which anyone can set.
        let fresh = t.restarts_since_ms == 0
            || (window_ms > 0 && observed.time_ms.saturating_sub(t.restarts_since_ms) > window_ms);
        let (count, since) = if fresh { (0, observed.time_ms) } else { (t.restarts, t.restarts_since_ms) };
        if rp.max_attempts > 0 && count >= rp.max_attempts {
            live.push(t); // the policy gave up on this slot
            continue;
        }
        let count = count.saturating_add(1);
        restarts.insert(key(&t.host, t.slot), (count, since));
        out.actions.push(remove(t, format!("task is {} ({}); restart {count}", t.state, t.status)));
    }
    let running = |t: &Task| t.state == "running";

    // 2. One task per slot (per host in global mode): extras go, keeping a running current-spec one.
    let mut by_key: BTreeMap<String, Vec<&Task>> = BTreeMap::new();
    for t in live {
        by_key.entry(key(&t.host, t.slot)).or_default().push(t);
    }
    let mut kept: Vec<&Task> = Vec::new();
    for (_, mut group) in by_key {
        group.sort_by_key(|t| (!running(t), t.spec_hash != hash, t.host.clone(), t.id.clone()));
        kept.push(group[0]);
        for extra in &group[1..] {
            out.actions.push(remove(extra, format!("duplicate of {} on {}", group[0].name, group[0].host)));
        }
    }
    // Slots held by tasks on hosts within their grace period.
    let held: BTreeSet<String> = observed.held.iter().map(|t| key(&t.host, t.slot)).collect();
    kept.retain(|t| {
        let dup = held.contains(&key(&t.host, t.slot)) && !global;
        if dup {
            out.actions.push(remove(t, "duplicate of a task on a host within its grace period"));
        }
        !dup
    });

    // 3. Tasks on hosts that no longer satisfy the placement go, and so do those over the per-host
    //    limit (highest slots first); replicated slots are then placed again below.
    let constraints = spec.constraints()?;
    kept.retain(|t| {
        let h = observed.hosts.iter().find(|h| h.name == t.host);
        let why = match h {
            Some(h) => crate::schedule::placement_reason(spec, h, &constraints),
            None => Some("not in the fleet".into()),
        };
        if let Some(why) = &why {
            out.actions.push(remove(t, format!("host no longer satisfies the placement: {why}")));
        }
        why.is_none()
    });
    if let Some(limit) = spec.per_host_limit() {
        let mut count: BTreeMap<String, u32> = BTreeMap::new();
        kept.sort_by_key(|t| (t.host.clone(), t.slot));
        kept.retain(|t| {
            let n = count.entry(t.host.clone()).or_default();
            *n += 1;
            if *n > limit {
                out.actions.push(remove(t, format!("over the limit of {limit} task(s) per host")));
            }
            *n <= limit
        });
    }

    // 4. Scale down: remove from the hosts with most copies first (then the highest slots).
    let taken = kept.len() + if global { 0 } else { held.len() };
    if !global && taken > spec.replicas as usize {
        let mut per_host: BTreeMap<&str, usize> = BTreeMap::new();
        for t in &kept {
            *per_host.entry(t.host.as_str()).or_default() += 1;
        }
        let excess = (taken - spec.replicas as usize).min(kept.len());
        for _ in 0..excess {
            let (at, _) = kept
                .iter()
                .enumerate()
                .max_by_key(|(_, t)| (per_host[t.host.as_str()], t.slot))
                .expect("kept is larger than the excess");
            let t = kept.remove(at);
            *per_host.get_mut(t.host.as_str()).expect("counted") -= 1;
            out.actions.push(remove(t, format!("scale down to {} replicas", spec.replicas)));
        }
    }

    // 5. Running tasks of an older spec (all of them when forced) are updated in place (same slot,
    //    same host).
    for t in &kept {
        if (t.spec_hash != hash || options.force) && running(t) {
            let reason = if t.spec_hash == hash {
                "forced restart".to_string()
            } else {
                format!("spec changed ({} → {hash})", if t.spec_hash.is_empty() { "none" } else { &t.spec_hash })
            };
            out.actions.push(Action {
                kind: "update".into(),
                host: t.host.clone(),
                slot: t.slot,
                id: Some(t.id.clone()),
                reason,
                ..Default::default()
            });
        }
    }

    // 6. Missing tasks are scheduled onto the hosts, counting what is kept.
    let mut hosts = observed.hosts.clone();
    for h in &mut hosts {
        h.service_tasks = kept.iter().filter(|t| t.host == h.name).count() as u32;
    }
    let used: BTreeSet<u32> = kept.iter().copied().chain(&observed.held).map(|t| t.slot).collect();
    let missing = (spec.replicas as usize).saturating_sub(kept.len() + held.len());
    let slots: Vec<u32> = (1..).filter(|s| !used.contains(s)).take(if global { 0 } else { missing }).collect();
    let placed = schedule(spec, &hosts, &slots, &ScheduleOptions { seed: options.seed })?;
    for a in &placed.assignments {
        let slot = if global { 0 } else { a.slot };
        let (restarts, restarts_since_ms) = restarts.get(&key(&a.host, slot)).copied().unwrap_or((0, 0));
        out.actions.push(Action {
            kind: "create".into(),
            host: a.host.clone(),
            slot,
            id: None,
            reason: if restarts > 0 { format!("restart {restarts} of the slot") } else { "missing task".into() },
            restarts,
            restarts_since_ms,
        });
    }
    out.unplaced = placed.unplaced;
    out.reasons = placed.reasons;
    // The validated spec was checked with a sample host and slot: a hostname is checked again as each
    // task will have it, filled with its host's name (a fleet may name a host `10.0.0.5:2376`) and its
    // slot, so that a plan never creates some tasks and then fails on the next.
    if let Some(hostname) = &spec.hostname {
        for a in out.actions.iter().filter(|a| a.kind != "remove") {
            let p = crate::spec::Placeholders { service: &spec.name, slot: a.slot, host: Some(&a.host) };
            let filled = crate::spec::fill_placeholders("hostname", hostname, &p)?;
            crate::host::validate_hostname("hostname", &filled).map_err(|e| match e {
                Error::InvalidArgument { field, message } => {
                    Error::invalid(field, format!("on host {} (slot {}): {message}", a.host, a.slot))
                }
                other => other,
            })?;
        }
    }
    Ok(out)
}

/// Carries out a plan: removals, then creations (the image is copied to a host that lacks it from one
/// that has it), then updates, stop-first: the old task stops, the new one starts in its slot, and
/// only then is the old one removed (a new task that cannot start leaves the old one running again,
/// see `replace_stop_first`). Each
/// step runs on all hosts at once, a few calls at a time per host. For updates gated on health, in
/// batches, with rollback, use [`crate::rollout`].
pub async fn apply(fleet: &Fleet, spec: &ServiceSpec, plan: &Plan) -> Result<ApplyReport> {
    use futures::FutureExt;
    spec.validate()?;
    let mut report = ApplyReport::default();
    let of = |kind: &'static str| plan.actions.iter().filter(move |a| a.kind == kind);
    let removals = of("remove").map(|a| {
        let job = async move {
            let id = a.id.as_deref().unwrap_or_default();
            stop_and_remove(fleet.host(&a.host)?.as_ref(), id, spec).await?;
            Ok(id.to_string())
        };
        (a.host.as_str(), job.boxed())
    });
    collect(per_host(REMOVE_CONCURRENCY, removals.collect()).await, &mut report.removed)?;
    let starting: Vec<&str> = plan.actions.iter().filter(|a| a.kind != "remove").map(|a| a.host.as_str()).collect();
    if !starting.is_empty() {
        ensure_image(fleet, spec, starting.into_iter(), &|_, _| {}).await?;
    }
    let creations = of("create").map(|a| {
        let mut extra = BTreeMap::new();
        if a.restarts > 0 {
            extra.insert(LABEL_RESTARTS.to_string(), format!("{}@{}", a.restarts, a.restarts_since_ms));
        }
        (a.host.as_str(), start_task(fleet, spec, &a.host, a.slot, extra).boxed())
    });
    collect(per_host(CREATE_CONCURRENCY, creations.collect()).await, &mut report.created)?;
    let updates = of("update").map(|a| {
        let job = async move {
            let id = a.id.as_deref().unwrap_or_default();
            let extra = previous_spec_labels(fleet.host(&a.host)?.as_ref(), id, spec).await;
            let task = replace_stop_first(fleet, spec, a, extra).await?;
            Ok((id.to_string(), task))
        };
        (a.host.as_str(), job.boxed())
    });
    let mut pairs = Vec::new();
    let outcome = collect(per_host(CREATE_CONCURRENCY, updates.collect()).await, &mut pairs);
    for (old, new) in pairs {
        report.removed.push(old);
        report.created.push(new);
    }
    outcome?;
    Ok(report)
}

/// Creations (and updates) in flight at once on one host. Starting a container is CPU work in the
/// engine; more at once only queue up inside it. Measured on the testbed (three engines sharing 2
/// cores), 50 replicas: 5.1 s all at once, 4.2–4.4 s at 4 per host, 4.9–5.1 s at 1 per host.
const CREATE_CONCURRENCY: usize = 4;
/// Removals in flight at once on one host: mostly waiting out the stop grace period, so many more.
/// Scaling 50 → 10 with a 1 s grace: 15.5 s at 1 per host, 4.9 s at 4, 2.7 s unbounded.
const REMOVE_CONCURRENCY: usize = 16;

/// Runs the jobs, each host's at most `limit` at a time, all hosts at once; results in no particular
/// order.
async fn per_host<'a, T: Send + 'a>(
    limit: usize,
    jobs: Vec<(&'a str, futures::future::BoxFuture<'a, Result<T>>)>,
) -> Vec<Result<T>> {
    use futures::StreamExt;
    let mut by_host: BTreeMap<&str, Vec<futures::future::BoxFuture<'a, Result<T>>>> = BTreeMap::new();
    for (host, job) in jobs {
        by_host.entry(host).or_default().push(job);
    }
    let hosts =
        by_host.into_values().map(|list| futures::stream::iter(list).buffer_unordered(limit).collect::<Vec<_>>());
    futures::future::join_all(hosts).await.into_iter().flatten().collect()
}

/// Keeps the successes (so a report shows what was done) and returns the first error, if any.
fn collect<T>(results: Vec<Result<T>>, into: &mut Vec<T>) -> Result<()> {
    let mut first = None;
    for r in results {
        match r {
            Ok(v) => into.push(v),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    first.map_or(Ok(()), Err)
}

/// What a task's container name ends with once it is draining (see [`ServiceSpec::shutdown_delay`]).
pub(crate) const DRAINING_SUFFIX: &str = ".draining";

/// Whether a task's container name says it is draining.
pub(crate) fn is_draining(name: &str) -> bool {
    name.ends_with(DRAINING_SUFFIX)
}

/// Takes a task out of service: with a shutdown delay, first out of discovery (its container renamed
/// `<name>.draining`, which the registrator deregisters, and which tells a later plan to remove it
/// should this process stop meanwhile) and, after the delay, stopped within its grace period and
/// removed.
pub(crate) async fn stop_and_remove(host: &dyn Host, id: &str, spec: &ServiceSpec) -> Result<()> {
    drain_and_wait(host, id, spec).await;
    stop_then_remove(host, id, spec.stop_grace_period).await
}

/// With a shutdown delay, takes a running task out of discovery (see [`drain`]) and waits the delay.
async fn drain_and_wait(host: &dyn Host, id: &str, spec: &ServiceSpec) {
    if !spec.shutdown_delay.is_zero() {
        match drain(host, id).await {
            Ok(true) => tokio::time::sleep(spec.shutdown_delay).await,
            Ok(false) => {}
            // (Gone already, most likely: the stop and removal that follow say so.)
            Err(e) => tracing::warn!(host = host.name(), container = id, error = %e, "cannot drain the task"),
        }
    }
}

/// Stops a task within its grace period (SIGTERM, then SIGKILL once it is over), then removes it.
async fn stop_then_remove(host: &dyn Host, id: &str, grace: std::time::Duration) -> Result<()> {
    // (A stop that fails, say because the task exited meanwhile, leaves the forced removal to finish.)
    let _ = host.stop_container(id, Some(grace)).await;
    host.remove_container(id, true, false).await
}

/// Replaces task `a.id` of `a.host` by a task of `spec` in the same slot, stop-first: the old task is
/// drained (after its shutdown delay) and stopped within its grace period, and the new one created
/// and started; only then is the old one removed. When the new task cannot be created or started (a
/// device or an image the host lacks, a port taken meanwhile…), the old one, if it ran, is started
/// again under its own name, and the error is returned: the slot keeps serving the spec it had, as
/// if the update had not been tried. (Swarm mode and a plain remove-then-create leave the slot empty
/// then, until a later pass.) An old task gone since it was observed leaves the slot to the new one.
pub(crate) async fn replace_stop_first(
    fleet: &Fleet,
    spec: &ServiceSpec,
    a: &Action,
    extra: BTreeMap<String, String>,
) -> Result<Task> {
    let host = fleet.host(&a.host)?;
    let host = host.as_ref();
    let old = a.id.as_deref().unwrap_or_default();
    let before = match host.inspect_container(old).await {
        Ok(d) => d,
        // Gone since it was observed (removed by hand, say): the slot is free for the new task.
        Err(Error::NotFound { .. }) => return start_task(fleet, spec, &a.host, a.slot, extra).await,
        Err(e) => return Err(e),
    };
    drain_and_wait(host, old, spec).await;
    let _ = host.stop_container(old, Some(spec.stop_grace_period)).await;
    match start_task(fleet, spec, &a.host, a.slot, extra).await {
        Ok(task) => {
            if let Err(e) = host.remove_container(old, true, false).await {
                // (Stopped, of an older spec: the next plan removes it.)
                tracing::warn!(host = host.name(), container = old, error = %e, "cannot remove the replaced task");
            }
            Ok(task)
        }
        Err(e) => {
            if before.state.running {
                if let Err(again) = restore(host, old, &before.name).await {
                    tracing::warn!(host = host.name(), container = old, error = %again, "cannot start the old task again");
                } else {
                    tracing::info!(host = host.name(), container = old, error = %e, "the new task failed to start; the old one runs again");
                }
            }
            Err(e)
        }
    }
}

/// Brings back a task stopped for a replacement that failed: its name without the draining suffix
/// (which would have the registrator ignore it and the next plan remove it), then started.
async fn restore(host: &dyn Host, id: &str, name: &str) -> Result<()> {
    let name = name.trim_start_matches('/');
    let current = host.inspect_container(id).await?;
    if current.name.trim_start_matches('/') != name {
        host.rename_container(id, name).await?;
    }
    host.start_container(id).await
}

/// Renames a running task's container `<name>.draining` (unless it is already); whether it runs,
/// that is, whether the delay is worth waiting (a task that exited serves nothing).
async fn drain(host: &dyn Host, id: &str) -> Result<bool> {
    let c = host.inspect_container(id).await?;
    if !c.state.running {
        return Ok(false);
    }
    let name = c.name.trim_start_matches('/');
    if !is_draining(name) {
        tracing::info!(host = host.name(), container = name, "draining: out of discovery before the stop");
        host.rename_container(id, &format!("{name}{DRAINING_SUFFIX}")).await?;
    }
    Ok(true)
}

/// The labels that record, on the task of `spec` replacing container `id`, the spec `id` was made
/// from; when that is `spec` itself (a forced restart), the one `id` recorded, so that a rollback
/// still returns to it.
pub(crate) async fn previous_spec_labels(host: &dyn Host, id: &str, spec: &ServiceSpec) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Ok(d) = host.inspect_container(id).await {
        let same = d.labels.get(LABEL_SPEC_HASH) == Some(&spec_hash(spec));
        let (hash_key, spec_key) =
            if same { (LABEL_PREVIOUS_SPEC_HASH, LABEL_PREVIOUS_SPEC) } else { (LABEL_SPEC_HASH, LABEL_SPEC) };
        if let (Some(hash), Some(json)) = (d.labels.get(hash_key), d.labels.get(spec_key)) {
            out.insert(LABEL_PREVIOUS_SPEC_HASH.to_string(), hash.clone());
            out.insert(LABEL_PREVIOUS_SPEC.to_string(), json.clone());
        }
    }
    out
}

/// Creates and starts a task of `spec` in `slot` on `host`; on failure nothing is left behind.
pub(crate) async fn start_task(
    fleet: &Fleet,
    spec: &ServiceSpec,
    host: &str,
    slot: u32,
    extra: BTreeMap<String, String>,
) -> Result<Task> {
    let h = fleet.host(host)?;
    let previous_spec_hash = extra.get(LABEL_PREVIOUS_SPEC_HASH).cloned().unwrap_or_default();
    let c = task_container_with(spec, Some(host), slot, extra);
    let id = h.create_container(&c).await?;
    if let Err(e) = h.start_container(&id).await {
        let _ = h.remove_container(&id, true, false).await;
        return Err(e);
    }
    Ok(Task {
        host: host.to_string(),
        id,
        name: c.name.unwrap_or_default(),
        slot,
        spec_hash: spec_hash(spec),
        state: "running".into(),
        previous_spec_hash,
        ..Default::default()
    })
}

/// What [`ensure_image`] tells of its work: the host concerned (empty: all of them) and what happens.
pub(crate) type ImageNote<'n> = &'n (dyn Fn(&str, String) + Sync);

/// Makes `spec`'s image present on every host in `targets` as its `pull_policy` says: copied from a
/// host of the fleet that has it, or pulled from its registry; `note` hears of each copy and pull as
/// it starts and ends.
pub(crate) async fn ensure_image<'a>(
    fleet: &Fleet,
    spec: &ServiceSpec,
    targets: impl Iterator<Item = &'a str>,
    note: ImageNote<'_>,
) -> Result<()> {
    let image = spec.image.as_str();
    let names: BTreeSet<&str> = targets.collect();
    let hosts = names.iter().map(|n| fleet.host(n)).collect::<Result<Vec<_>>>()?;
    let policy = spec.pull_policy.as_deref().unwrap_or("never");
    if policy == "always" {
        return pull_on(fleet, image, &hosts, note).await;
    }
    let mut missing: Vec<Arc<dyn Host>> = Vec::new();
    for h in hosts {
        if !h.image_exists(image).await? {
            missing.push(h);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    for h in fleet.hosts() {
        if h.image_exists(image).await.unwrap_or(false) {
            note("", format!("copying {image} from {} to {}", h.name(), names_of(&missing)));
            crate::image::copy_to(h.clone(), &missing, image, note).await?;
            return Ok(());
        }
    }
    if policy == "missing" {
        return pull_on(fleet, image, &missing, note).await;
    }
    Err(Error::NotFound {
        kind: "image".into(),
        id: image.to_string(),
        host: names.into_iter().collect::<Vec<_>>().join(","),
        message: "no host of the fleet has it (build or load it on one host first, or set pull_policy to pull it \
                  from its registry)"
            .into(),
    })
}

fn names_of(hosts: &[Arc<dyn Host>]) -> String {
    hosts.iter().map(|h| h.name()).collect::<Vec<_>>().join(", ")
}

/// Pulls `image` on every host of `hosts` at once, with the fleet's credentials for its registry.
async fn pull_on(fleet: &Fleet, image: &str, hosts: &[Arc<dyn Host>], note: ImageNote<'_>) -> Result<()> {
    let options = crate::host::PullOptions { auth: fleet.registry_auth_for(image).await, platform: None };
    note("", format!("pulling {image} on {}", names_of(hosts)));
    let pulls = hosts.iter().map(|h| {
        let options = &options;
        async move {
            let mut progress = h.pull_image(image, options);
            while let Some(p) = futures::TryStreamExt::try_next(&mut progress).await? {
                if p.done {
                    tracing::info!(host = %h.name(), %image, digest = ?p.digest, "image pulled");
                    note(h.name(), format!("pulled {image} ({})", p.digest.as_deref().unwrap_or("no digest")));
                }
            }
            Ok::<_, Error>(())
        }
    });
    futures::future::join_all(pulls).await.into_iter().collect()
}

/// Observes, plans and applies: brings the service to `spec`.
pub async fn deploy(fleet: &Fleet, spec: &ServiceSpec, options: &PlanOptions) -> Result<Deployment> {
    let observed = observe(fleet, &spec.name).await?;
    let plan = plan(spec, &observed, options)?;
    let report = apply(fleet, spec, &plan).await?;
    Ok(Deployment { plan, report })
}

/// Options of [`supervise`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SuperviseOptions {
    /// Reconcile at least this often even without events (default 10 s): catches hosts that come back
    /// and anything whose event was missed.
    #[serde(with = "crate::serde_ms")]
    pub resync: std::time::Duration,
    /// Wait this long after an event for more to arrive before reconciling (default 100 ms).
    #[serde(with = "crate::serde_ms")]
    pub debounce: std::time::Duration,
    /// Seed of the scheduler's tie-breaks.
    pub seed: u64,
    /// How long a host may be unreachable before its tasks are placed on other hosts (default 10 s).
    /// Within it their slots stay taken, so a short network blip moves nothing; when the host comes
    /// back after its tasks were moved, the extras are removed.
    #[serde(with = "crate::serde_ms")]
    pub host_grace: std::time::Duration,
    /// An inventory file (TOML or YAML, see [`Fleet::from_file`]) read again at every pass: hosts added
    /// to it join the service (a global service gets a task there), hosts taken out of it are no longer
    /// managed. When unset, the fleet given to [`supervise`] is used as it is. A file that fails to
    /// load is reported in the pass, and the last good fleet is kept.
    pub inventory: Option<std::path::PathBuf>,
}

impl Default for SuperviseOptions {
    fn default() -> Self {
        SuperviseOptions {
            resync: std::time::Duration::from_secs(10),
            debounce: std::time::Duration::from_millis(100),
            seed: 0,
            host_grace: std::time::Duration::from_secs(10),
            inventory: None,
        }
    }
}

/// One pass of [`supervise`] that changed something (or failed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    /// What started it: `start`, `resync`, or `event: <action> <container name> on <host>`.
    pub trigger: String,
    /// The plan carried out and what it did.
    pub deployment: Deployment,
    /// Code of the error that stopped this pass, if any (the supervision goes on).
    pub error_code: Option<String>,
    /// Message of that error.
    pub error: Option<String>,
}

/// Keeps `spec` running on `fleet` until the stream is dropped: reconciles at start, when an engine
/// reports one of the service's containers dying, being killed or going away (after the restart
/// policy's delay; its condition and attempts decide whether the task is replaced), every `resync`,
/// and when an unreachable host's grace runs out (its tasks are then placed elsewhere). Yields each
/// pass that planned something or failed; an invalid spec ends the stream with its error before any
/// engine call.
pub fn supervise(
    fleet: Fleet,
    spec: ServiceSpec,
    options: SuperviseOptions,
) -> crate::host::ResultStream<Reconciliation> {
    use futures::StreamExt;
    let mut fleet = fleet;
    Box::pin(async_stream::stream! {
        if let Err(e) = spec.validate() {
            yield Err(e);
            return;
        }
        let plan_options = PlanOptions { seed: options.seed, force: false };
        let mut trigger = "start".to_string();
        // What each host ran when last seen, and since when each unreachable host has been so.
        let mut last_seen: BTreeMap<String, Vec<Task>> = BTreeMap::new();
        let mut down_since: BTreeMap<String, tokio::time::Instant> = BTreeMap::new();
        loop {
            let since = now_nanos();
            let mut pass = Reconciliation { trigger: trigger.clone(), ..Default::default() };
            let reloaded = options.inventory.as_deref().map(Fleet::from_file);
            let result = async {
                match reloaded {
                    Some(Ok(f)) => fleet = f,
                    Some(Err(e)) => return Err(e.with_field_prefix("inventory")),
                    None => {}
                }
                let mut observed = observe(&fleet, &spec.name).await?;
                let now = tokio::time::Instant::now();
                for h in &observed.hosts {
                    if h.available {
                        down_since.remove(&h.name);
                        last_seen.insert(h.name.clone(), observed.tasks.iter().filter(|t| t.host == h.name).cloned().collect());
                    } else if now.duration_since(*down_since.entry(h.name.clone()).or_insert(now)) < options.host_grace {
                        observed.held.extend(last_seen.get(&h.name).cloned().unwrap_or_default());
                    } else {
                        last_seen.remove(&h.name);
                    }
                }
                let plan = plan(&spec, &observed, &plan_options)?;
                let report = apply(&fleet, &spec, &plan).await?;
                Ok::<_, Error>(Deployment { plan, report })
            }
            .await;
            match result {
                Ok(d) => {
                    let changed = !d.plan.actions.is_empty() || !d.plan.unplaced.is_empty();
                    pass.deployment = d;
                    if changed || trigger == "start" {
                        yield Ok(pass);
                    }
                }
                Err(e) => {
                    tracing::warn!(service = %spec.name, error = %e, "reconcile pass failed");
                    pass.error_code = Some(e.code().to_string());
                    pass.error = Some(e.to_string());
                    yield Ok(pass);
                }
            }
            // Wait for a relevant event (replayed from the start of this pass, so none is missed) or
            // for the resync period.
            let filters = crate::host::EventOptions {
                since_nanos: Some(since),
                until_nanos: None,
                filters: BTreeMap::from([
                    ("type".to_string(), vec!["container".to_string()]),
                    ("label".to_string(), vec![format!("{LABEL_SERVICE}={}", spec.name)]),
                    ("event".to_string(), ["die", "kill", "stop", "destroy", "oom"].map(String::from).to_vec()),
                ]),
            };
            let mut events = futures::stream::select_all(fleet.hosts().iter().map(|h| h.events(&filters)));
            // Look again at the resync, or when a host's grace runs out, whichever comes first.
            let grace_ends = down_since.values().map(|t| t.later(options.host_grace)).min();
            let wake = tokio::time::Instant::now().later(options.resync);
            let deadline = tokio::time::sleep_until(grace_ends.map_or(wake, |g| g.min(wake)));
            tokio::pin!(deadline);
            trigger = loop {
                tokio::select! {
                    _ = &mut deadline => break "resync".to_string(),
                    ev = events.next() => match ev {
                        Some(Ok(e)) => {
                            let name = e.attributes.get("name").cloned().unwrap_or_else(|| e.id.chars().take(12).collect());
                            break format!("event: {} {name} on {}", e.action, e.host);
                        }
                        // A host's event stream failed (host down): the resync will look again.
                        Some(Err(_)) => continue,
                        None => {
                            (&mut deadline).await;
                            break "resync".to_string();
                        }
                    },
                }
            };
            drop(events);
            let wait = if trigger.starts_with("event: die") || trigger.starts_with("event: kill") || trigger.starts_with("event: oom") {
                options.debounce.max(spec.restart_policy.delay)
            } else {
                options.debounce
            };
            tokio::time::sleep(wait).await;
        }
    })
}

/// Removes every task container of `service` on every reachable host; returns how many went.
///
/// Each task goes as an update or a scale-down takes it, with the settings recorded on it
/// ([`LABEL_SPEC`]): with a [`ServiceSpec::shutdown_delay`], every running task is first taken out
/// of discovery, all at once so that the delay is waited once, not once per task; then each is
/// stopped within its [`ServiceSpec::stop_grace_period`] (SIGTERM, SIGKILL once it is over) and
/// removed. (Swarm mode's `docker service rm` stops within the grace period too.)
pub async fn remove_service(fleet: &Fleet, service: &str) -> Result<usize> {
    use futures::FutureExt;
    let observed = observe(fleet, service).await?;
    // A task without a readable spec label: Swarm mode's defaults (a 10 s grace, no delay).
    let defaults = ServiceSpec::new(service, "");
    let spec_of = |t: &Task| observed.specs.get(&t.spec_hash).unwrap_or(&defaults);
    let draining: Vec<&Task> =
        observed.tasks.iter().filter(|t| t.state == "running" && !spec_of(t).shutdown_delay.is_zero()).collect();
    let drains = draining.iter().map(|t| async move {
        let drained = drain(fleet.host(&t.host)?.as_ref(), &t.id).await?;
        Ok::<_, Error>(drained.then_some(spec_of(t).shutdown_delay))
    });
    let mut delay = std::time::Duration::ZERO;
    for (r, t) in futures::future::join_all(drains).await.into_iter().zip(&draining) {
        match r {
            Ok(d) => delay = delay.max(d.unwrap_or_default()),
            // (Gone already, most likely: the removal below says so.)
            Err(e) => tracing::warn!(host = %t.host, container = %t.id, error = %e, "cannot drain the task"),
        }
    }
    if !delay.is_zero() {
        tracing::info!(
            service,
            delay_ms = delay.as_millis() as u64,
            "tasks out of discovery; waiting the shutdown delay"
        );
        tokio::time::sleep(delay).await;
    }
    let jobs = observed.tasks.iter().map(|t| {
        let job =
            async move { stop_then_remove(fleet.host(&t.host)?.as_ref(), &t.id, spec_of(t).stop_grace_period).await };
        (t.host.as_str(), job.boxed())
    });
    let mut done = Vec::new();
    collect(per_host(REMOVE_CONCURRENCY, jobs.collect()).await, &mut done)?;
    Ok(done.len())
}

/// One chunk of a service's output ([`service_logs`]), with the task that wrote it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLogLine {
    /// Host the task runs on.
    pub host: String,
    /// Container ID of the task.
    pub id: String,
    /// Container name of the task.
    pub name: String,
    /// Slot of the task (0 in global mode).
    pub slot: u32,
    /// `stdout`, `stderr` or `console` (TTY).
    pub stream: String,
    /// The text (invalid UTF-8 replaced).
    pub message: String,
}

/// The output of every task of `service` on the fleet's reachable hosts, merged as it arrives, each
/// chunk saying which task wrote it: what `docker service logs` shows for a Swarm service, on plain
/// engines. `options` apply to each task (`tail: Some(10)` is the last ten lines of every task).
/// Without `follow`, the stream has the output of the tasks found when it starts (exited ones
/// included) and ends. With `follow`, it also takes in every task started later (a replacement after
/// a heal, an update or a scale-up, seen through each host's engine events) and goes on until it is
/// dropped. A task removed meanwhile ends its own part, not the stream; a host that does not list its
/// tasks within a probe's 5 s (cut off, its engine hung) is left out with a warning.
pub fn service_logs(fleet: &Fleet, service: &str, options: &LogOptions) -> ResultStream<ServiceLogLine> {
    labelled_logs(fleet.clone(), LABEL_SERVICE, service.to_string(), options.clone())
}

/// Label Swarm mode puts on a task container: the task's name, `<service>.<slot>.<task id>`.
pub(crate) const SWARM_TASK_NAME: &str = "com.docker.swarm.task.name";

/// The slot a task container's labels give, as written: a dockfleet task's [`LABEL_SLOT`], or the middle
/// of a Swarm task's name (where a global Swarm task has its node's ID).
pub(crate) fn slot_label(labels: &BTreeMap<String, String>) -> Option<&str> {
    match labels.get(LABEL_SLOT) {
        Some(slot) => Some(slot),
        None => labels.get(SWARM_TASK_NAME)?.rsplit('.').nth(1),
    }
}

/// A task container's slot: [`slot_label`], else the middle of a container name shaped like a Swarm
/// task's; `None` in global mode.
pub(crate) fn task_slot(container: &str, labels: &BTreeMap<String, String>) -> Option<u32> {
    slot_label(labels).or_else(|| container.rsplit('.').nth(1))?.parse().ok()
}

/// One task found by [`labelled_tasks`]: its host, container and slot (0 when it has none).
pub(crate) struct LabelledTask {
    pub(crate) host: Arc<dyn Host>,
    pub(crate) container: crate::host::ContainerSummary,
    pub(crate) slot: u32,
}

/// The containers whose label `key` is `service` (running ones, or all with `all`) on every host of
/// the fleet at once, in slot order (then host, then name); a host that cannot list them is left out,
/// with a warning.
pub(crate) async fn labelled_tasks(fleet: &Fleet, key: &str, service: &str, all: bool) -> Vec<LabelledTask> {
    let list = ListContainersOptions { all, labels: vec![format!("{key}={service}")], ..Default::default() };
    // A host that does not answer (cut off, its engine hung) is given what a probe is, not the
    // request timeout: the others' tasks are not held up for it.
    let after = ProbeOptions::default().timeout;
    let listed = futures::future::join_all(fleet.hosts().iter().map(|h| {
        let list = list.clone();
        async move {
            let found = tokio::time::timeout(after, h.list_containers(&list)).await.unwrap_or_else(|_| {
                Err(Error::Timeout { host: h.name().to_string(), operation: "list tasks".into(), after })
            });
            (h.clone(), found)
        }
    }))
    .await;
    let mut tasks = Vec::new();
    for (host, found) in listed {
        match found {
            Ok(found) => tasks.extend(found.into_iter().map(|c| LabelledTask {
                slot: task_slot(&c.name, &c.labels).unwrap_or(0),
                host: host.clone(),
                container: c,
            })),
            Err(e) => {
                tracing::warn!(host = %host.name(), error = %e, "a host could not list its tasks; they are left out")
            }
        }
    }
    tasks.sort_by(|a, b| (a.slot, a.host.name(), &a.container.name).cmp(&(b.slot, b.host.name(), &b.container.name)));
    tasks
}

/// [`service_logs`] of the containers whose label `key` is `service` on the fleet's hosts.
pub(crate) fn labelled_logs(
    fleet: Fleet,
    key: &'static str,
    service: String,
    options: LogOptions,
) -> ResultStream<ServiceLogLine> {
    use futures::StreamExt;
    Box::pin(async_stream::try_stream! {
        crate::discovery::check_name("service", &service)?;
        // Subscribed before the tasks are listed, so that a task starting in between is not missed.
        let mut starts = futures::stream::SelectAll::new();
        if options.follow {
            let filters = BTreeMap::from([
                ("type".to_string(), vec!["container".to_string()]),
                ("event".to_string(), vec!["start".to_string()]),
                ("label".to_string(), vec![format!("{key}={service}")]),
            ]);
            for h in fleet.hosts() {
                starts.push(h.events(&EventOptions { filters: filters.clone(), ..Default::default() }));
            }
        }
        let mut following = BTreeSet::new();
        let mut parts = futures::stream::SelectAll::new();
        for t in labelled_tasks(&fleet, key, &service, true).await {
            following.insert(t.container.id.clone());
            let c = t.container;
            parts.push(task_logs(t.host.clone(), t.host.name().to_string(), c.id, c.name, t.slot, &options));
        }
        loop {
            tokio::select! {
                line = parts.next(), if !parts.is_empty() => {
                    if let Some(line) = line.flatten() {
                        yield line?;
                    }
                }
                event = starts.next(), if !starts.is_empty() => match event {
                    Some(Ok(e)) if following.insert(e.id.clone()) => {
                        let Ok(host) = fleet.host(&e.host) else { continue };
                        let name = e.attributes.get("name").cloned().unwrap_or_default();
                        let slot = task_slot(&name, &e.attributes).unwrap_or(0);
                        tracing::debug!(host = %e.host, container = %name, "following a new task's output");
                        parts.push(task_logs(host, e.host, e.id, name, slot, &options));
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "a host's events failed; its new tasks are not followed"),
                    _ => {}
                },
                else => break,
            }
        }
    })
}

/// Options of [`service_exec`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceExecOptions {
    /// Extra environment of the command.
    pub env: BTreeMap<String, String>,
    /// Its working directory.
    pub working_dir: Option<String>,
    /// The user it runs as.
    pub user: Option<String>,
    /// Only the task in this slot (`not_found` when no running task holds it).
    pub slot: Option<u32>,
    /// How many tasks run the command at once, in slot order (0, the default: all at once). 1 runs it
    /// task after task, as a rolling update would.
    pub parallelism: u32,
}

/// One task's run of [`service_exec`]: its exit code and output, or the error that kept it from
/// running (`error_code`, `error`) — one task's failure is reported, not raised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskExec {
    /// Host the task runs on.
    pub host: String,
    /// Container ID of the task.
    pub id: String,
    /// Container name of the task.
    pub name: String,
    /// Slot of the task (0 in global mode).
    pub slot: u32,
    /// Exit code of the command, when it ran.
    pub exit_code: Option<i64>,
    /// What it wrote to stdout.
    pub stdout: String,
    /// What it wrote to stderr.
    pub stderr: String,
    /// The error's code, when it could not run.
    pub error_code: Option<String>,
    /// The error, when it could not run.
    pub error: Option<String>,
}

/// Runs `command` in every running task of `service` on the fleet (or in one slot's), on all their
/// hosts — what `docker exec` does for one container and Swarm mode has no command for (reload a
/// configuration in every replica, look inside one without finding its host first). Results come in
/// slot order, one per task, each with its exit code and output or its own error. Invalid arguments
/// fail before any engine call.
pub async fn service_exec(
    fleet: &Fleet,
    service: &str,
    command: &[String],
    options: &ServiceExecOptions,
) -> Result<Vec<TaskExec>> {
    labelled_exec(fleet, LABEL_SERVICE, service, command, options).await
}

/// [`service_exec`] in the running containers whose label `key` is `service`.
pub(crate) async fn labelled_exec(
    fleet: &Fleet,
    key: &str,
    service: &str,
    command: &[String],
    options: &ServiceExecOptions,
) -> Result<Vec<TaskExec>> {
    use futures::StreamExt;
    crate::discovery::check_name("service", service)?;
    if command.is_empty() {
        return Err(Error::invalid("command", "must not be empty"));
    }
    let mut tasks = labelled_tasks(fleet, key, service, false).await;
    tasks.retain(|t| options.slot.is_none_or(|s| s == t.slot));
    if let (Some(s), true) = (options.slot, tasks.is_empty()) {
        return Err(Error::NotFound {
            kind: "task".into(),
            id: format!("{service}.{s}"),
            host: "fleet".into(),
            message: "no running task of the service holds this slot".into(),
        });
    }
    let exec = crate::host::ExecOptions {
        env: options.env.clone(),
        working_dir: options.working_dir.clone(),
        user: options.user.clone(),
    };
    let run = |t: LabelledTask| {
        let exec = &exec;
        async move {
            let out = t.host.exec(&t.container.id, command, exec).await;
            let mut r = TaskExec {
                host: t.host.name().to_string(),
                id: t.container.id,
                name: t.container.name,
                slot: t.slot,
                ..Default::default()
            };
            match out {
                Ok(o) => (r.exit_code, r.stdout, r.stderr) = (Some(o.exit_code), o.stdout, o.stderr),
                Err(e) => (r.error_code, r.error) = (Some(e.code().to_string()), Some(e.to_string())),
            }
            r
        }
    };
    let at_once = if options.parallelism == 0 { tasks.len().max(1) } else { options.parallelism as usize };
    Ok(futures::stream::iter(tasks).map(run).buffered(at_once).collect().await)
}

/// One task's part of [`service_logs`]: its output, each chunk labelled; `None` for the end of a
/// task removed meanwhile.
fn task_logs(
    host: Arc<dyn Host>,
    host_name: String,
    id: String,
    name: String,
    slot: u32,
    options: &LogOptions,
) -> futures::stream::BoxStream<'static, Option<Result<ServiceLogLine>>> {
    use futures::StreamExt;
    let lines = host.logs(&id, options);
    Box::pin(lines.map(move |l| match l {
        Ok(l) => Some(Ok(ServiceLogLine {
            host: host_name.clone(),
            id: id.clone(),
            name: name.clone(),
            slot,
            stream: l.stream,
            message: l.message,
        })),
        Err(e) if e.code() == "not_found" => {
            tracing::debug!(host = %host_name, container = %id, "task gone while its logs were read");
            None
        }
        Err(e) => Some(Err(e)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<HostState> {
        (1..=3)
            .map(|i| HostState {
                name: format!("h{i}"),
                labels: BTreeMap::from([("role".into(), if i == 1 { "manager" } else { "worker" }.into())]),
                available: true,
                cpus: 2.0,
                memory_bytes: 1 << 33,
                ..Default::default()
            })
            .collect()
    }

    fn task(host: &str, slot: u32, hash: &str, state: &str) -> Task {
        Task {
            host: host.into(),
            id: format!("{host}-{slot}-{state}"),
            name: format!("web.{slot}.x"),
            slot,
            spec_hash: hash.into(),
            state: state.into(),
            exit_code: (state == "exited").then_some(1),
            ..Default::default()
        }
    }

    fn kinds(p: &Plan) -> Vec<(String, String, u32)> {
        p.actions.iter().map(|a| (a.kind.clone(), a.host.clone(), a.slot)).collect()
    }

    #[test]
    fn a_task_slot_is_read_from_its_name() {
        let labels = |name: &str| BTreeMap::from([("com.docker.swarm.task.name".to_string(), name.to_string())]);
        assert_eq!(task_slot("", &labels("web.3.x7k2")), Some(3));
        assert_eq!(task_slot("", &labels("my.web.12.x7k2")), Some(12), "a dotted service name");
        assert_eq!(task_slot("", &labels("web.nodeid1234.x7k2")), None, "global mode");
        assert_eq!(task_slot("web.2.x7k2", &BTreeMap::new()), Some(2), "the container name without the label");
        assert_eq!(task_slot("web", &BTreeMap::new()), None);
        let both =
            BTreeMap::from([(LABEL_SLOT.to_string(), "4".to_string()), (SWARM_TASK_NAME.into(), "web.3.x".into())]);
        assert_eq!((task_slot("web.2.x", &both), slot_label(&labels("web.abc.x"))), (Some(4), Some("abc")));
    }

    #[test]
    fn fresh_deploy_creates_every_slot_and_a_converged_one_plans_nothing() {
        let spec = ServiceSpec { replicas: 3, ..ServiceSpec::new("web", "img") };
        let p = plan(&spec, &Observed { hosts: hosts(), tasks: vec![], ..Default::default() }, &PlanOptions::default())
            .unwrap();
        assert_eq!(p.actions.iter().filter(|a| a.kind == "create").count(), 3);
        let h = spec_hash(&spec);
        let tasks = vec![task("h1", 1, &h, "running"), task("h2", 2, &h, "running"), task("h3", 3, &h, "running")];
        let p =
            plan(&spec, &Observed { hosts: hosts(), tasks, ..Default::default() }, &PlanOptions::default()).unwrap();
        assert!(p.actions.is_empty(), "{p:?}");
        // Forced: every running task is replaced in place, a stopped one is not.
        let mut tasks = vec![task("h1", 1, &h, "running"), task("h2", 2, &h, "running"), task("h3", 3, &h, "running")];
        tasks[2].state = "exited".into();
        tasks[2].exit_code = Some(0);
        let spec = ServiceSpec {
            restart_policy: crate::spec::ServiceRestartPolicy { condition: "none".into(), ..Default::default() },
            ..spec
        };
        let forced = PlanOptions { force: true, ..Default::default() };
        let p = plan(&spec, &Observed { hosts: hosts(), tasks, ..Default::default() }, &forced).unwrap();
        assert_eq!(kinds(&p), [("update".into(), "h1".into(), 1), ("update".into(), "h2".into(), 2)]);
        assert!(p.actions.iter().all(|a| a.reason == "forced restart"), "{p:?}");
    }

    #[test]
    fn a_hostname_filled_with_a_host_name_is_checked_on_every_host_before_anything_is_planned() {
        let spec = ServiceSpec {
            replicas: 3,
            hostname: Some("{{.Node.Hostname}}-{{.Task.Slot}}".into()),
            ..ServiceSpec::new("web", "img")
        };
        let observed = |names: &[&str]| Observed {
            hosts: hosts().into_iter().zip(names).map(|(h, n)| HostState { name: n.to_string(), ..h }).collect(),
            ..Default::default()
        };
        let p = plan(&spec, &observed(&["h1", "h2", "h3"]), &PlanOptions::default()).unwrap();
        assert_eq!(p.actions.len(), 3);
        // A fleet may name a host by its address: the name then cannot fill a hostname.
        let e = plan(&spec, &observed(&["h1", "h2", "10.0.0.5:2376"]), &PlanOptions::default()).unwrap_err();
        assert_eq!(e.code(), "invalid_argument");
        assert!(e.to_string().contains("hostname") && e.to_string().contains("on host 10.0.0.5:2376"), "{e}");
        let long = ServiceSpec { hostname: Some(format!("{}-{{{{.Node.Hostname}}}}", "x".repeat(58))), ..spec.clone() };
        long.validate().unwrap();
        plan(&long, &observed(&["h1", "h2", "h3"]), &PlanOptions::default()).unwrap();
        let e = plan(&long, &observed(&["h1", "h2", "engine-three"]), &PlanOptions::default()).unwrap_err();
        assert!(e.to_string().contains("64") && e.to_string().contains("on host engine-three"), "71 characters: {e}");
    }

    #[test]
    fn replicas_and_update_settings_do_not_change_the_hash() {
        let a = ServiceSpec::new("web", "img");
        let mut b = a.clone();
        b.replicas = 9;
        b.update_config.parallelism = 4;
        b.restart_policy.condition = "none".into();
        b.placement.constraints = vec!["zone==a".into()];
        b.shutdown_delay = std::time::Duration::from_secs(3);
        assert_eq!(spec_hash(&a), spec_hash(&b));
        b.env.insert("X".into(), "1".into());
        assert_ne!(spec_hash(&a), spec_hash(&b));
    }

    #[test]
    fn a_draining_task_is_removed_and_its_slot_placed_again() {
        // What a process finds when another stopped during a task's shutdown delay.
        let spec = ServiceSpec { replicas: 2, ..ServiceSpec::new("web", "img") };
        let h = spec_hash(&spec);
        let mut draining = task("h2", 2, &h, "running");
        draining.name = format!("web.2.x{DRAINING_SUFFIX}");
        let tasks = vec![task("h1", 1, &h, "running"), draining];
        let p =
            plan(&spec, &Observed { hosts: hosts(), tasks, ..Default::default() }, &PlanOptions::default()).unwrap();
        let mut k = kinds(&p);
        k.sort();
        assert_eq!(k.len(), 2, "{p:?}");
        assert_eq!(k[1], ("remove".into(), "h2".into(), 2));
        assert_eq!((k[0].0.as_str(), k[0].2), ("create", 2));
    }

    #[test]
    fn exited_tasks_duplicates_and_old_specs() {
        let spec = ServiceSpec { replicas: 3, ..ServiceSpec::new("web", "img") };
        let h = spec_hash(&spec);
        let tasks = vec![
            task("h1", 1, &h, "running"),
            task("h2", 1, &h, "running"), // duplicate of slot 1 (a host came back)
            task("h2", 2, "old", "running"),
            task("h3", 3, &h, "exited"),
        ];
        let p =
            plan(&spec, &Observed { hosts: hosts(), tasks, ..Default::default() }, &PlanOptions::default()).unwrap();
        let k = kinds(&p);
        assert!(k.contains(&("remove".into(), "h3".into(), 3)), "{k:?}");
        assert!(k.contains(&("remove".into(), "h2".into(), 1)), "the duplicate on h2 goes: {k:?}");
        assert!(k.contains(&("update".into(), "h2".into(), 2)), "{k:?}");
        assert_eq!(p.actions.iter().filter(|a| a.kind == "create").map(|a| a.slot).collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn scale_down_removes_from_the_most_loaded_host_first() {
        let spec = ServiceSpec { replicas: 2, ..ServiceSpec::new("web", "img") };
        let h = spec_hash(&spec);
        let tasks = vec![task("h1", 1, &h, "running"), task("h2", 2, &h, "running"), task("h2", 3, &h, "running")];
        let p =
            plan(&spec, &Observed { hosts: hosts(), tasks, ..Default::default() }, &PlanOptions::default()).unwrap();
        assert_eq!(kinds(&p), vec![("remove".to_string(), "h2".to_string(), 3)]);
    }

    #[test]
    fn tasks_on_an_unreachable_host_are_placed_elsewhere() {
        let spec = ServiceSpec { replicas: 3, ..ServiceSpec::new("web", "img") };
        let h = spec_hash(&spec);
        let mut hs = hosts();
        hs[2].available = false;
        let tasks = vec![task("h1", 1, &h, "running"), task("h2", 2, &h, "running")];
        let p = plan(&spec, &Observed { hosts: hs, tasks, ..Default::default() }, &PlanOptions::default()).unwrap();
        let creates: Vec<_> = p.actions.iter().filter(|a| a.kind == "create").collect();
        assert_eq!(creates.len(), 1);
        assert_ne!(creates[0].host, "h3");
        assert_eq!(creates[0].slot, 3);
    }

    #[test]
    fn a_new_placement_moves_tasks_that_no_longer_fit() {
        let mut spec = ServiceSpec { replicas: 3, ..ServiceSpec::new("web", "img") };
        spec.ports =
            vec![crate::spec::ServicePort { target: 80, published: Some(8080), protocol: "tcp".into(), mode: None }];
        let tasks =
            vec![task("h1", 1, "old", "running"), task("h1", 2, "old", "running"), task("h2", 3, "old", "running")];
        let p =
            plan(&spec, &Observed { hosts: hosts(), tasks, ..Default::default() }, &PlanOptions::default()).unwrap();
        let mut k = kinds(&p);
        k.sort();
        assert_eq!(
            k,
            vec![
                ("create".into(), "h3".into(), 2),
                ("remove".into(), "h1".into(), 2),
                ("update".into(), "h1".into(), 1),
                ("update".into(), "h2".into(), 3)
            ]
        );
    }

    #[test]
    fn global_mode_follows_hosts_and_constraints() {
        let mut spec = ServiceSpec::new("agent", "img");
        spec.mode = "global".into();
        spec.placement.constraints = vec!["role==worker".into()];
        let h = spec_hash(&spec);
        let tasks = vec![task("h1", 0, &h, "running"), task("h2", 0, &h, "running")];
        let p =
            plan(&spec, &Observed { hosts: hosts(), tasks, ..Default::default() }, &PlanOptions::default()).unwrap();
        let mut k = kinds(&p);
        k.sort();
        assert_eq!(k, vec![("create".into(), "h3".into(), 0), ("remove".into(), "h1".into(), 0)]);
    }

    #[test]
    fn the_restart_policy_decides_which_stopped_tasks_come_back() {
        let mut spec = ServiceSpec { replicas: 2, ..ServiceSpec::new("web", "img") };
        let h = spec_hash(&spec);
        let mut ok = task("h2", 2, &h, "exited");
        ok.exit_code = Some(0);
        let tasks = vec![task("h1", 1, &h, "exited"), ok];
        let observed = Observed { hosts: hosts(), tasks, time_ms: 1_000_000, ..Default::default() };
        let creates = |p: &Plan| p.actions.iter().filter(|a| a.kind == "create").map(|a| a.slot).collect::<Vec<_>>();
        // any: both come back, counting a first restart.
        let p = plan(&spec, &observed, &PlanOptions::default()).unwrap();
        assert_eq!(creates(&p), vec![1, 2]);
        assert!(p
            .actions
            .iter()
            .filter(|a| a.kind == "create")
            .all(|a| (a.restarts, a.restarts_since_ms) == (1, 1_000_000)));
        // on-failure: the one that exited 0 has finished and keeps its slot.
        spec.restart_policy.condition = "on-failure".into();
        assert_eq!(creates(&plan(&spec, &observed, &PlanOptions::default()).unwrap()), vec![1]);
        // none: nothing comes back, nothing is removed.
        spec.restart_policy.condition = "none".into();
        assert!(plan(&spec, &observed, &PlanOptions::default()).unwrap().actions.is_empty());
        // max attempts within the window: give up after 3, start counting again once the window passed.
        spec.restart_policy = crate::spec::ServiceRestartPolicy {
            max_attempts: 3,
            window: std::time::Duration::from_secs(60),
            ..Default::default()
        };
        spec.replicas = 1;
        let mut o = observed.clone();
        o.tasks.truncate(1);
        o.tasks[0].restarts = 3;
        o.tasks[0].restarts_since_ms = 990_000;
        assert!(plan(&spec, &o, &PlanOptions::default()).unwrap().actions.is_empty(), "3 attempts used");
        o.tasks[0].restarts = 2;
        let p = plan(&spec, &o, &PlanOptions::default()).unwrap();
        assert_eq!(
            p.actions.iter().find(|a| a.kind == "create").map(|a| (a.restarts, a.restarts_since_ms)),
            Some((3, 990_000))
        );
        o.tasks[0].restarts = 3;
        o.tasks[0].restarts_since_ms = 900_000;
        let p = plan(&spec, &o, &PlanOptions::default()).unwrap();
        assert_eq!(
            p.actions.iter().find(|a| a.kind == "create").map(|a| (a.restarts, a.restarts_since_ms)),
            Some((1, 1_000_000))
        );
        // Counts and times at the ends of their types (they come from labels anyone can set) plan
        // without overflowing: a restart, counted as far as a u32 goes.
        spec.restart_policy.max_attempts = 0;
        for (since, now) in [(i64::MIN, 1_000_000), (-1, i64::MAX), (i64::MAX, i64::MIN)] {
            o.tasks[0].restarts = u32::MAX;
            o.tasks[0].restarts_since_ms = since;
            o.time_ms = now;
            let p = plan(&spec, &o, &PlanOptions::default()).unwrap();
            assert!(p.actions.iter().any(|a| a.kind == "create"), "{since} {now}");
        }
        o.time_ms = 1_000_000;
        // A stopped task of an older spec is replaced whatever the policy says.
        spec.restart_policy.condition = "none".into();
        o.tasks[0].spec_hash = "old".into();
        assert_eq!(creates(&plan(&spec, &o, &PlanOptions::default()).unwrap()), vec![1]);
    }

    #[test]
    fn tasks_of_a_host_within_its_grace_keep_their_slots() {
        let spec = ServiceSpec { replicas: 3, ..ServiceSpec::new("web", "img") };
        let h = spec_hash(&spec);
        let mut hs = hosts();
        hs[2].available = false;
        let tasks = vec![task("h1", 1, &h, "running"), task("h2", 2, &h, "running")];
        let held = vec![task("h3", 3, &h, "running")];
        let p = plan(
            &spec,
            &Observed { hosts: hs.clone(), tasks: tasks.clone(), held, ..Default::default() },
            &PlanOptions::default(),
        )
        .unwrap();
        assert!(p.actions.is_empty(), "{p:?}");
        // Once the grace is over the slot is placed elsewhere; when the host returns the extra goes.
        let p =
            plan(&spec, &Observed { hosts: hs, tasks: tasks.clone(), ..Default::default() }, &PlanOptions::default())
                .unwrap();
        assert_eq!(kinds(&p).len(), 1);
        let mut back = tasks;
        back.push(task("h1", 3, &h, "running"));
        back.push(task("h3", 3, &h, "running"));
        let p = plan(&spec, &Observed { hosts: hosts(), tasks: back, ..Default::default() }, &PlanOptions::default())
            .unwrap();
        assert_eq!(kinds(&p), vec![("remove".to_string(), "h3".to_string(), 3)]);
    }
}
