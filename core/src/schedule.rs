//! The scheduler: a pure, deterministic function from (service spec, hosts, slots to place, seed) to
//! placements, with a reason for every host that could not take (more) tasks.
//!
//! Filters first: availability and placement constraints once per host, then per placement the
//! per-host limit (`max_replicas_per_host`, and one task per host when a port is published), free
//! published ports, and CPU/memory reservations. Then the strategy: `spread` places each task on a
//! host with the fewest tasks of the service (ties: fewest tasks overall, then a seeded order),
//! `binpack` on the fullest host that still fits, `random` on a seeded random host. Spread preferences
//! (`zone`, …) first balance the tasks over the values of each label, in order, as Swarm does.
//!
//! Each placement costs O(log hosts): a million tasks onto ten thousand hosts is one benchmark.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::spec::{Constraint, ServiceSpec};

/// A host as the scheduler sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostState {
    /// Host name.
    pub name: String,
    /// Host labels (what constraints and preferences look at).
    pub labels: BTreeMap<String, String>,
    /// Reachable and accepting tasks.
    pub available: bool,
    /// CPUs of the host.
    pub cpus: f64,
    /// Memory of the host, bytes.
    pub memory_bytes: u64,
    /// CPUs already reserved by tasks on the host.
    pub reserved_cpus: f64,
    /// Memory already reserved by tasks on the host, bytes.
    pub reserved_memory_bytes: u64,
    /// Host ports in use, as `"8080/tcp"`.
    pub used_ports: BTreeSet<String>,
    /// Tasks of every service on the host.
    pub tasks: u32,
    /// Tasks of this service already on the host.
    pub service_tasks: u32,
    /// Services with a running task on the host (what `node.runs` constraints look at).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub services: BTreeSet<String>,
    /// The OCI runtimes the host's engine has (what a spec's `runtime` needs); empty when unknown,
    /// which admits any runtime.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub runtimes: BTreeSet<String>,
}

/// Where one slot goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The service's slot number (1-based in replicated mode; in global mode, one per host).
    pub slot: u32,
    /// The host chosen.
    pub host: String,
}

/// The scheduler's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// Placements, in slot order.
    pub assignments: Vec<Assignment>,
    /// Slots no host could take.
    pub unplaced: Vec<u32>,
    /// For every host that was rejected or filled up: why it took no (more) tasks. When `unplaced` is
    /// not empty this holds a reason for every host.
    pub reasons: BTreeMap<String, String>,
}

/// Options of [`schedule`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleOptions {
    /// Seed for tie-breaks and the `random` strategy: the same inputs and seed give the same schedule.
    pub seed: u64,
}

/// splitmix64: a tiny, well-distributed seeded generator (all the scheduler needs).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Per-host running state during one scheduling run.
struct Slotting<'a> {
    spec: &'a ServiceSpec,
    hosts: &'a [HostState],
    limit: Option<u32>,
    service_tasks: Vec<u32>,
    tasks: Vec<u32>,
    free_cpus: Vec<f64>,
    free_memory: Vec<i128>,
    /// The ports each task binds on its host, as `"8080/tcp"`.
    published: Vec<String>,
    cpu_need: f64,
    memory_need: u64,
}

impl Slotting<'_> {
    /// Why host `i` cannot take one more task, if it cannot.
    fn refuse(&self, i: usize) -> Option<String> {
        if let Some(l) = self.limit {
            if self.service_tasks[i] >= l {
                let why = if self.spec.placement.max_replicas_per_host == Some(l) {
                    format!("max_replicas_per_host {l} reached")
                } else {
                    "a port bound on the host allows one task per host".to_string()
                };
                return Some(why);
            }
        }
        if self.service_tasks[i] == 0 {
            if let Some(p) = self.published.iter().find(|p| self.hosts[i].used_ports.contains(*p)) {
                return Some(format!("port {p} is already in use"));
            }
        }
        if self.cpu_need > 0.0 && self.free_cpus[i] + 1e-9 < self.cpu_need {
            return Some(format!("insufficient CPU: needs {}, {:.2} free", self.cpu_need, self.free_cpus[i].max(0.0)));
        }
        if self.memory_need > 0 && self.free_memory[i] < self.memory_need as i128 {
            return Some(format!(
                "insufficient memory: needs {} bytes, {} free",
                self.memory_need,
                self.free_memory[i].max(0)
            ));
        }
        None
    }

    fn place(&mut self, i: usize) {
        // Saturating: the counts are the caller's (a `HostState` from Python or Node may say anything).
        self.service_tasks[i] = self.service_tasks[i].saturating_add(1);
        self.tasks[i] = self.tasks[i].saturating_add(1);
        self.free_cpus[i] -= self.cpu_need;
        self.free_memory[i] -= self.memory_need as i128;
    }

    /// Binpack key: free share of the host after this placement (lower is fuller).
    fn fullness_key(&self, i: usize) -> u64 {
        let h = &self.hosts[i];
        let cpu = if h.cpus > 0.0 { (self.free_cpus[i] / h.cpus).clamp(0.0, 1.0) } else { 0.0 };
        let mem =
            if h.memory_bytes > 0 { (self.free_memory[i] as f64 / h.memory_bytes as f64).clamp(0.0, 1.0) } else { 0.0 };
        // Without reservations every host is "empty": fall back to packing by task count.
        let score =
            if self.cpu_need > 0.0 || self.memory_need > 0 { cpu + mem } else { 1.0 / (1.0 + self.tasks[i] as f64) };
        (score * 1e12) as u64
    }
}

/// Hosts at a leaf of the preference tree, ordered by the strategy.
enum Leaf {
    /// spread / binpack: a min-heap of (primary, secondary, seeded tie-break, host).
    Heap(BinaryHeap<Reverse<(u64, u64, u64, usize)>>),
    /// random: live candidates.
    Pool(Vec<usize>),
}

struct Group {
    /// Tasks of the service in this group (for choosing among sibling groups).
    count: u64,
    /// Seeded tie-break among siblings.
    tie: u64,
    children: Vec<Group>,
    leaf: Option<Leaf>,
    exhausted: bool,
}

fn key(s: &Slotting<'_>, strategy: &str, i: usize, tie: u64) -> Reverse<(u64, u64, u64, usize)> {
    match strategy {
        "binpack" => Reverse((s.fullness_key(i), 0, tie, i)),
        _ => Reverse((s.service_tasks[i] as u64, s.tasks[i] as u64, tie, i)),
    }
}

fn build(
    s: &Slotting<'_>,
    prefs: &[String],
    members: Vec<usize>,
    strategy: &str,
    ties: &[u64],
    rng: &mut Rng,
) -> Group {
    let count = members.iter().map(|&i| s.service_tasks[i] as u64).sum();
    if let Some((label, rest)) = prefs.split_first() {
        let mut by_value: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for i in members {
            by_value.entry(s.hosts[i].labels.get(label).map(String::as_str).unwrap_or("")).or_default().push(i);
        }
        let children = by_value.into_values().map(|m| build(s, rest, m, strategy, ties, rng)).collect();
        return Group { count, tie: rng.next(), children, leaf: None, exhausted: false };
    }
    let leaf = if strategy == "random" {
        Leaf::Pool(members)
    } else {
        Leaf::Heap(members.iter().map(|&i| key(s, strategy, i, ties[i])).collect())
    };
    Group { count, tie: rng.next(), children: Vec::new(), leaf: Some(leaf), exhausted: false }
}

/// Places one task somewhere under `g`; returns the host, or `None` when the group is exhausted.
fn pick(
    g: &mut Group,
    s: &mut Slotting<'_>,
    strategy: &str,
    ties: &[u64],
    rng: &mut Rng,
    reasons: &mut BTreeMap<String, String>,
) -> Option<usize> {
    if g.exhausted {
        return None;
    }
    if let Some(leaf) = g.leaf.as_mut() {
        let chosen = match leaf {
            Leaf::Heap(heap) => loop {
                // Run dry: the group is exhausted (below), so its parent stops choosing it.
                let Some(Reverse((_, _, _, i))) = heap.pop() else { break None };
                match s.refuse(i) {
                    Some(why) => {
                        reasons.insert(s.hosts[i].name.clone(), why);
                    }
                    None => {
                        s.place(i);
                        heap.push(key(s, strategy, i, ties[i]));
                        break Some(i);
                    }
                }
            },
            Leaf::Pool(pool) => loop {
                if pool.is_empty() {
                    break None;
                }
                let at = (rng.next() % pool.len() as u64) as usize;
                let i = pool[at];
                match s.refuse(i) {
                    Some(why) => {
                        reasons.insert(s.hosts[i].name.clone(), why);
                        pool.swap_remove(at);
                    }
                    None => {
                        s.place(i);
                        break Some(i);
                    }
                }
            },
        };
        match chosen {
            Some(i) => {
                g.count += 1;
                return Some(i);
            }
            None => {
                g.exhausted = true;
                return None;
            }
        }
    }
    loop {
        // The live child with the fewest tasks of the service (seeded tie-break).
        let best = g
            .children
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.exhausted)
            .min_by_key(|(_, c)| (c.count, c.tie))
            .map(|(k, _)| k);
        let Some(k) = best else {
            g.exhausted = true;
            return None;
        };
        if let Some(i) = pick(&mut g.children[k], s, strategy, ties, rng, reasons) {
            g.count += 1;
            return Some(i);
        }
    }
}

/// Why `host` can run no task of `spec`, whatever else runs there: a placement constraint (parsed as
/// `constraints`) does not hold, it lacks a CPU that the spec's CPU set names, or its engine lacks the
/// spec's runtime. A host whose CPUs (0) or runtimes (none) are unknown is not held to the last two.
pub(crate) fn placement_reason(spec: &ServiceSpec, host: &HostState, constraints: &[Constraint]) -> Option<String> {
    // Validated: the CPU set reads.
    let cpuset = spec.resources.cpuset_cpus.as_deref().and_then(|s| crate::host::cpuset_cpus("", s).ok());
    if let Some(cpu) =
        cpuset.and_then(|set| set.last().copied()).filter(|c| host.cpus > 0.0 && f64::from(*c) >= host.cpus)
    {
        return Some(format!("has {} CPU(s); resources.cpuset_cpus names CPU {cpu}", host.cpus));
    }
    if let Some(r) = spec.runtime.as_ref().filter(|r| !host.runtimes.is_empty() && !host.runtimes.contains(*r)) {
        let has = host.runtimes.iter().cloned().collect::<Vec<_>>().join(", ");
        return Some(format!("its engine has no runtime {r} (it has {has})"));
    }
    for (c, text) in constraints.iter().zip(&spec.placement.constraints) {
        if !c.admits(host) {
            let actual = match &c.key {
                crate::spec::ConstraintKey::Hostname => format!("hostname={}", host.name),
                crate::spec::ConstraintKey::Label(k) => match host.labels.get(k) {
                    Some(v) => format!("{k}={v}"),
                    None => format!("no label {k}"),
                },
                crate::spec::ConstraintKey::Runs if c.equal => format!("no task of {}", c.value),
                crate::spec::ConstraintKey::Runs => format!("runs a task of {}", c.value),
            };
            return Some(format!("constraint {text} not satisfied ({actual})"));
        }
    }
    None
}

/// Places `slots` of a replicated service onto `hosts` (which describe what already runs there).
/// In global mode `slots` is ignored: every eligible host without a task of the service gets one.
/// The spec is validated first.
pub fn schedule(spec: &ServiceSpec, hosts: &[HostState], slots: &[u32], options: &ScheduleOptions) -> Result<Schedule> {
    spec.validate()?;
    let constraints = spec.constraints()?;
    let prefs = spec.preferences()?;
    let strategy = spec.strategy().to_string();
    let mut rng = Rng(options.seed ^ 0x5DEE_CE66_D1CE_4E5B);
    let ties: Vec<u64> = hosts.iter().map(|_| rng.next()).collect();
    let mut reasons = BTreeMap::new();
    let mut eligible = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let why = if h.available { placement_reason(spec, h, &constraints) } else { Some("host unavailable".into()) };
        match why {
            Some(why) => {
                reasons.insert(h.name.clone(), why);
            }
            None => eligible.push(i),
        }
    }
    let mut s = Slotting {
        spec,
        hosts,
        limit: spec.per_host_limit(),
        service_tasks: hosts.iter().map(|h| h.service_tasks).collect(),
        tasks: hosts.iter().map(|h| h.tasks).collect(),
        free_cpus: hosts.iter().map(|h| h.cpus - h.reserved_cpus).collect(),
        free_memory: hosts.iter().map(|h| h.memory_bytes as i128 - h.reserved_memory_bytes as i128).collect(),
        published: spec.host_port_keys(),
        cpu_need: spec.resources.cpu_reservation.unwrap_or(0.0),
        memory_need: spec.resources.memory_reservation.unwrap_or(0),
    };
    let mut out = Schedule::default();

    if spec.mode == "global" {
        let mut slot = 0;
        for i in eligible {
            if s.service_tasks[i] > 0 {
                continue;
            }
            slot += 1;
            match s.refuse(i) {
                Some(why) => {
                    reasons.insert(hosts[i].name.clone(), why);
                    out.unplaced.push(slot);
                }
                None => {
                    s.place(i);
                    out.assignments.push(Assignment { slot, host: hosts[i].name.clone() });
                }
            }
        }
        out.reasons = reasons;
        return Ok(out);
    }

    let mut root = build(&s, &prefs, eligible, &strategy, &ties, &mut rng);
    for &slot in slots {
        match pick(&mut root, &mut s, &strategy, &ties, &mut rng, &mut reasons) {
            Some(i) => out.assignments.push(Assignment { slot, host: hosts[i].name.clone() }),
            None => out.unplaced.push(slot),
        }
    }
    if !out.unplaced.is_empty() {
        // Every host gets its reason: those still in a heap were skipped only because the search
        // stopped; ask them now.
        for (i, h) in hosts.iter().enumerate() {
            if !reasons.contains_key(&h.name) {
                let why = s.refuse(i).unwrap_or_else(|| "no capacity left for this service".into());
                reasons.insert(h.name.clone(), why);
            }
        }
    }
    out.reasons = reasons;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ServicePort;

    fn host(name: &str, zone: &str, role: &str) -> HostState {
        HostState {
            name: name.into(),
            labels: BTreeMap::from([("zone".into(), zone.into()), ("role".into(), role.into())]),
            available: true,
            cpus: 4.0,
            memory_bytes: 8 << 30,
            ..Default::default()
        }
    }

    fn fleet() -> Vec<HostState> {
        vec![
            host("h1", "a", "manager"),
            host("h2", "a", "worker"),
            host("h3", "b", "worker"),
            host("h4", "b", "worker"),
        ]
    }

    fn counts(s: &Schedule) -> BTreeMap<String, u32> {
        let mut m = BTreeMap::new();
        for a in &s.assignments {
            *m.entry(a.host.clone()).or_default() += 1;
        }
        m
    }

    fn slots(n: u32) -> Vec<u32> {
        (1..=n).collect()
    }

    #[test]
    fn spread_is_even_and_deterministic() {
        let spec = ServiceSpec { replicas: 10, ..ServiceSpec::new("web", "img") };
        let a = schedule(&spec, &fleet(), &slots(10), &ScheduleOptions { seed: 7 }).unwrap();
        let c = counts(&a);
        assert_eq!(c.values().sum::<u32>(), 10);
        assert!(c.values().max().unwrap() - c.values().min().unwrap() <= 1, "{c:?}");
        assert_eq!(a, schedule(&spec, &fleet(), &slots(10), &ScheduleOptions { seed: 7 }).unwrap());
        assert!(a.unplaced.is_empty());
    }

    #[test]
    fn spread_accounts_for_tasks_already_running() {
        let mut hosts = fleet();
        hosts[0].service_tasks = 3;
        let spec = ServiceSpec::new("web", "img");
        let s = schedule(&spec, &hosts, &slots(3), &ScheduleOptions::default()).unwrap();
        assert!(!counts(&s).contains_key("h1"), "{s:?}");
    }

    #[test]
    fn constraints_hold_and_rejections_have_reasons() {
        let mut spec = ServiceSpec::new("db", "img");
        spec.placement.constraints = vec!["role==manager".into()];
        let s = schedule(&spec, &fleet(), &slots(2), &ScheduleOptions::default()).unwrap();
        assert_eq!(counts(&s), BTreeMap::from([("h1".to_string(), 2)]));
        assert!(s.reasons["h2"].contains("constraint role==manager not satisfied (role=worker)"), "{:?}", s.reasons);
        spec.placement.constraints = vec!["zone!=b".into(), "node.hostname!=h1".into()];
        let s = schedule(&spec, &fleet(), &slots(3), &ScheduleOptions::default()).unwrap();
        assert_eq!(counts(&s), BTreeMap::from([("h2".to_string(), 3)]));
    }

    #[test]
    fn node_runs_places_by_where_another_service_runs() {
        let mut hosts = fleet();
        hosts[1].services.insert("shop_db".into());
        hosts[3].services.insert("shop_db".into());
        let mut spec = ServiceSpec::new("shop_web", "img");
        spec.placement.constraints = vec!["node.runs==shop_db".into()];
        let s = schedule(&spec, &hosts, &slots(4), &ScheduleOptions::default()).unwrap();
        assert_eq!(counts(&s), BTreeMap::from([("h2".to_string(), 2), ("h4".to_string(), 2)]));
        assert!(s.reasons["h1"].contains("node.runs==shop_db not satisfied (no task of shop_db)"), "{:?}", s.reasons);
        spec.placement.constraints = vec!["node.runs!=shop_db".into()];
        let s = schedule(&spec, &hosts, &slots(2), &ScheduleOptions::default()).unwrap();
        assert_eq!(counts(&s), BTreeMap::from([("h1".to_string(), 1), ("h3".to_string(), 1)]));
        assert!(s.reasons["h2"].contains("(runs a task of shop_db)"), "{:?}", s.reasons);
    }

    #[test]
    fn limits_ports_and_resources_leave_tasks_unplaced_with_a_reason_per_host() {
        let mut spec = ServiceSpec::new("web", "img");
        spec.ports = vec![ServicePort { target: 80, published: Some(8080), protocol: "tcp".into(), mode: None }];
        let mut hosts = fleet();
        hosts[3].used_ports.insert("8080/tcp".into());
        hosts[2].available = false;
        let s = schedule(&spec, &hosts, &slots(4), &ScheduleOptions::default()).unwrap();
        assert_eq!(s.assignments.len(), 2);
        assert_eq!(s.unplaced, vec![3, 4]);
        assert_eq!(s.reasons.len(), 4, "a reason for every host: {:?}", s.reasons);
        assert_eq!(s.reasons["h3"], "host unavailable");
        assert!(s.reasons["h4"].contains("port 8080/tcp is already in use"));
        assert!(s.reasons["h1"].contains("one task per host"));

        let mut spec = ServiceSpec::new("big", "img");
        spec.resources.cpu_reservation = Some(1.5);
        let s = schedule(&spec, &fleet(), &slots(10), &ScheduleOptions::default()).unwrap();
        assert_eq!(s.assignments.len(), 8, "two 1.5-CPU tasks fit on a 4-CPU host");
        assert!(s.reasons.values().all(|r| r.starts_with("insufficient CPU")), "{:?}", s.reasons);

        spec.placement.max_replicas_per_host = Some(1);
        let s = schedule(&spec, &fleet(), &slots(5), &ScheduleOptions::default()).unwrap();
        assert_eq!((s.assignments.len(), s.unplaced.len()), (4, 1));
        assert!(s.reasons.values().all(|r| r == "max_replicas_per_host 1 reached"));

        // A CPU set goes only to hosts that have its CPUs.
        let mut pinned = ServiceSpec::new("pinned", "img");
        pinned.resources.cpuset_cpus = Some("0,3-5".into());
        let mut hosts = fleet();
        hosts[1].cpus = 8.0;
        let s = schedule(&pinned, &hosts, &slots(2), &ScheduleOptions::default()).unwrap();
        assert_eq!(counts(&s), BTreeMap::from([("h2".to_string(), 2)]));
        assert_eq!(s.reasons.keys().collect::<Vec<_>>(), ["h1", "h3", "h4"], "{:?}", s.reasons);
        pinned.replicas = 2;
        hosts[1].available = false;
        let s = schedule(&pinned, &hosts, &slots(2), &ScheduleOptions::default()).unwrap();
        assert_eq!(s.unplaced, [1, 2]);
        assert_eq!(s.reasons["h1"], "has 4 CPU(s); resources.cpuset_cpus names CPU 5");
        hosts[0].cpus = 0.0;
        let s = schedule(&pinned, &hosts, &slots(2), &ScheduleOptions::default()).unwrap();
        assert_eq!(counts(&s)["h1"], 2, "a host whose CPUs are unknown is not held to the set");

        // A runtime goes only to hosts whose engine has it; a host whose runtimes are unknown admits it.
        let mut gpu = ServiceSpec::new("gpu", "img");
        gpu.runtime = Some("nvidia".into());
        let mut hosts = fleet();
        for (h, runtimes) in hosts.iter_mut().zip([&["runc"][..], &["nvidia", "runc"], &["runc"], &[]]) {
            h.runtimes = runtimes.iter().map(|r| r.to_string()).collect();
        }
        let s = schedule(&gpu, &hosts, &slots(4), &ScheduleOptions::default()).unwrap();
        assert_eq!(counts(&s), BTreeMap::from([("h2".to_string(), 2), ("h4".to_string(), 2)]));
        assert_eq!(s.reasons["h1"], "its engine has no runtime nvidia (it has runc)");
    }

    #[test]
    fn preferences_spread_over_label_values_first() {
        let mut hosts = fleet();
        hosts.push(host("h5", "b", "worker"));
        hosts.push(host("h6", "b", "worker"));
        let mut spec = ServiceSpec::new("web", "img");
        spec.placement.preferences = vec!["spread=node.labels.zone".into()];
        let s = schedule(&spec, &hosts, &slots(6), &ScheduleOptions::default()).unwrap();
        let c = counts(&s);
        let zone_a = c.get("h1").copied().unwrap_or(0) + c.get("h2").copied().unwrap_or(0);
        assert_eq!(zone_a, 3, "half the tasks in zone a although it has a third of the hosts: {c:?}");
    }

    #[test]
    fn a_preference_group_with_no_room_left_is_passed_over() {
        // Zone a's only host cannot take the task (its published port is in use), for every strategy:
        // its group runs dry, and the tasks go to zone b (this looped for ever once).
        let mut hosts = vec![host("h1", "a", "worker"), host("h2", "b", "worker"), host("h3", "b", "worker")];
        hosts[0].used_ports.insert("8080/tcp".into());
        for strategy in ["spread", "binpack", "random"] {
            let mut spec = ServiceSpec::new("web", "img");
            spec.ports = vec![ServicePort { target: 80, published: Some(8080), protocol: "tcp".into(), mode: None }];
            spec.placement.preferences = vec!["spread=node.labels.zone".into()];
            spec.placement.strategy = strategy.into();
            let s = schedule(&spec, &hosts, &slots(3), &ScheduleOptions::default()).unwrap();
            assert_eq!(counts(&s), BTreeMap::from([("h2".to_string(), 1), ("h3".to_string(), 1)]), "{strategy}");
            assert_eq!(s.unplaced, vec![3], "{strategy}");
            assert!(s.reasons["h1"].contains("port 8080/tcp is already in use"), "{strategy}: {:?}", s.reasons);
        }
    }

    #[test]
    fn counts_at_the_end_of_their_type_do_not_overflow() {
        let mut hosts = fleet();
        hosts[0].tasks = u32::MAX;
        hosts[1].service_tasks = u32::MAX;
        let spec = ServiceSpec::new("web", "img");
        let s = schedule(&spec, &hosts, &slots(8), &ScheduleOptions::default()).unwrap();
        assert_eq!(s.assignments.len(), 8);
        assert!(!counts(&s).contains_key("h2"), "the host with the most tasks of the service takes none: {s:?}");
    }

    #[test]
    fn binpack_fills_one_host_before_the_next() {
        let mut spec = ServiceSpec::new("web", "img");
        spec.placement.strategy = "binpack".into();
        spec.resources.cpu_reservation = Some(1.0);
        let s = schedule(&spec, &fleet(), &slots(5), &ScheduleOptions::default()).unwrap();
        let c = counts(&s);
        assert_eq!(c.values().copied().collect::<BTreeSet<_>>(), BTreeSet::from([1, 4]), "{c:?}");
    }

    #[test]
    fn random_is_seeded() {
        let mut spec = ServiceSpec::new("web", "img");
        spec.placement.strategy = "random".into();
        let a = schedule(&spec, &fleet(), &slots(20), &ScheduleOptions { seed: 1 }).unwrap();
        let b = schedule(&spec, &fleet(), &slots(20), &ScheduleOptions { seed: 1 }).unwrap();
        let c = schedule(&spec, &fleet(), &slots(20), &ScheduleOptions { seed: 2 }).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.assignments.len(), 20);
    }

    #[test]
    fn global_mode_runs_one_task_per_eligible_host() {
        let mut spec = ServiceSpec::new("agent", "img");
        spec.mode = "global".into();
        spec.placement.constraints = vec!["role!=manager".into()];
        let mut hosts = fleet();
        hosts[1].service_tasks = 1;
        let s = schedule(&spec, &hosts, &[], &ScheduleOptions::default()).unwrap();
        assert_eq!(s.assignments.iter().map(|a| a.host.as_str()).collect::<Vec<_>>(), ["h3", "h4"]);
    }

    #[test]
    fn an_invalid_spec_is_refused() {
        let mut spec = ServiceSpec::new("web", "img");
        spec.placement.constraints = vec!["zone=a".into()];
        assert_eq!(
            schedule(&spec, &fleet(), &slots(1), &ScheduleOptions::default()).unwrap_err().code(),
            "invalid_argument"
        );
    }
}
