//! [`Swarm`]: Docker Swarm mode (SwarmKit) as a [`ServiceBackend`], and the swarm's lifecycle.
//!
//! The same [`ServiceSpec`] and compose [`Stack`] that [`crate::Fleet`] deploys with dockfleet's own
//! scheduler become Swarm services here: constraints, spread preferences, max replicas per node,
//! resources (the process limit too), restart policy, update and rollback configs, healthcheck,
//! published ports, endpoint mode, networks and their aliases, and the container's settings
//! (entrypoint, user and groups, hostname, extra hosts, init, read-only root, capabilities, ulimits,
//! sysctls, tmpfs, log driver, stop signal, SELinux labels) map one to one. What Swarm mode cannot
//! express (the `binpack` and `random` strategies, privileged containers, security options other than
//! SELinux labels on API 1.41, a rollback config whose failure action is `rollback`, a shutdown delay)
//! is refused with the field named, before any engine call, instead of being silently dropped.
//!
//! A `Swarm` is built over a [`Fleet`] of the engines that are (or will be) its nodes. Fleet host
//! names name the nodes: `node.hostname==df-2` pins a task to the engine called `df-2` in the
//! inventory, whatever the machine's own hostname. Nodes joined by [`Swarm::join`] carry their fleet
//! host's labels as node labels, so `role==manager` and `zone!=b` mean what they mean on the fleet.
//! Before a service is created or updated its image is carried to every node of the fleet that lacks
//! it (streamed export → import from a node that has it), or pulled there from its registry as the
//! spec's `pull_policy` says, with the fleet's credentials, which go along with the service too.
//!
//! Ports are published in Swarm's `host` mode by default: each task binds its own port on its node, as
//! tasks do on a fleet, so the registrator registers every task at its node's address and port and the
//! proxy balances over them with their health; [`SwarmOptions::publish_mode`] `ingress` uses the
//! routing mesh instead, and a port's own [`crate::ServicePort::mode`] overrides either for that port.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use bollard::models as bm;
use bollard::query_parameters as qp;
use bollard::Docker;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use crate::backend::ServiceBackend;
use crate::docker::DockerHost;
use crate::error::{Error, Result};
use crate::fleet::Fleet;
use crate::host::{Host, ListContainersOptions, LogOptions, Mount, NetworkOptions, ResultStream, VolumeSummary};
use crate::reconcile::{
    ensure_image, labelled_exec, labelled_logs, spec_hash, ServiceExecOptions, ServiceLogLine, Task, TaskExec,
    LABEL_PREVIOUS_SPEC_HASH, LABEL_SPEC, LABEL_SPEC_HASH,
};
use crate::rollout::{Progress, RolloutEvent, RolloutOptions};
use crate::spec::{ConstraintKey, ServiceSpec, UpdateConfig};
use crate::stack::{ServiceStatus, Stack, StackDownReport, StackOptions, LABEL_STACK};
use crate::stats::{labelled_stats, TaskStats};
use crate::Later;

/// Label Swarm puts on every task container: the service's name.
const SWARM_SERVICE: &str = "com.docker.swarm.service.name";

/// Swarm keeps secrets of at least 1 and under this many bytes (swarmkit's `MaxSecretSize`).
const MAX_SECRET_BYTES: usize = 500 * 1024;
/// Node label naming the fleet host a node is (set by [`Swarm::join`] and [`Swarm::init`]).
pub const LABEL_NODE_HOST: &str = "dockfleet.host";

/// Options of a [`Swarm`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SwarmOptions {
    /// How services publish their ports: `host` (default: each task binds its port on its node, as on
    /// a fleet) or `ingress` (Swarm's routing mesh: every node answers and forwards).
    pub publish_mode: String,
    /// How often a rollout, scale or removal polls the swarm (default 250 ms).
    #[serde(with = "crate::serde_ms")]
    pub poll_interval: Duration,
    /// How long a rollout, scale or removal may take before it fails with `timeout` (default 300 s).
    #[serde(with = "crate::serde_ms")]
    pub timeout: Duration,
    /// Swarm's cluster port on managers (default 2377).
    pub port: u16,
}

impl Default for SwarmOptions {
    fn default() -> Self {
        SwarmOptions {
            publish_mode: "host".into(),
            poll_interval: Duration::from_millis(250),
            timeout: Duration::from_secs(300),
            port: 2377,
        }
    }
}

impl SwarmOptions {
    /// Checks the options; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if !crate::spec::PUBLISH_MODES.contains(&self.publish_mode.as_str()) {
            return Err(Error::invalid("publish_mode", format!("{:?} is not host or ingress", self.publish_mode)));
        }
        if self.poll_interval < Duration::from_millis(10) {
            return Err(Error::invalid("poll_interval", "must be at least 10 ms"));
        }
        if self.timeout.is_zero() {
            return Err(Error::invalid("timeout", "must be positive"));
        }
        if self.port == 0 {
            return Err(Error::invalid("port", "must be 1-65535"));
        }
        Ok(())
    }
}

/// One node of a swarm.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmNode {
    /// Swarm's node ID.
    pub id: String,
    /// The fleet host this node is (empty when the node's engine is not in the fleet).
    pub host: String,
    /// The machine's hostname as the node reports it.
    pub hostname: String,
    /// `manager` or `worker`.
    pub role: String,
    /// `active`, `pause` or `drain`.
    pub availability: String,
    /// `ready`, `down`, `disconnected` or `unknown`.
    pub state: String,
    /// The node's address.
    pub address: String,
    /// Whether it is the Raft leader (managers).
    pub leader: bool,
    /// `reachable` or `unreachable` (managers; empty for workers).
    pub reachability: String,
    /// Node labels.
    pub labels: BTreeMap<String, String>,
    /// Engine version.
    pub engine_version: String,
}

struct Inner {
    fleet: Fleet,
    options: SwarmOptions,
    /// The fleet host last found to be a reachable manager.
    manager: Mutex<Option<String>>,
}

/// A Docker Swarm formed by (some of) a fleet's engines, used as a [`ServiceBackend`]. Cheap to clone.
#[derive(Clone)]
pub struct Swarm {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Swarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swarm").field("hosts", &self.inner.fleet.names()).finish()
    }
}

fn docker_host(h: &Arc<dyn Host>) -> Result<&DockerHost> {
    h.as_docker()
        .ok_or_else(|| Error::invalid(format!("hosts.{}", h.name()), "Swarm mode needs a Docker engine (a DockerHost)"))
}

/// What one engine says about its swarm membership.
struct Membership {
    node_id: String,
    state: bm::LocalNodeState,
    manager: bool,
    address: String,
}

async fn membership(h: &DockerHost) -> Result<Membership> {
    let docker = h.bollard().await?;
    let info = docker.info().await.map_err(|e| h.object_err(e, "swarm", "", "info"))?;
    let s = info.swarm.unwrap_or_default();
    Ok(Membership {
        node_id: s.node_id.unwrap_or_default(),
        state: s.local_node_state.unwrap_or(bm::LocalNodeState::EMPTY),
        manager: s.control_available.unwrap_or(false),
        address: s.node_addr.unwrap_or_default(),
    })
}

/// Runs a read of the swarm, `|m, docker| body` (an expression that may use `?`, evaluated to a
/// `Result`), on the manager used last without first asking it whether it still is one (an `/info`,
/// several ms of an engine's time, before every call of a rollout's polling); when its answer says it
/// no longer serves the swarm ([`lost_manager`]: demoted, out of the swarm, without a leader, its
/// engine gone), once more on a manager found anew. (A macro, not a function taking an async
/// closure: the futures of async closures cannot be required to be `Send`.)
macro_rules! read {
    ($swarm:expr, |$m:ident, $docker:ident| $body:expr) => {{
        let mut anew = false;
        loop {
            let ($m, $docker) = $swarm.reader(anew).await?;
            match async { $body }.await {
                Err(e) if !anew && lost_manager(&e) => {
                    $swarm.forget_manager($m, &e);
                    anew = true;
                }
                r => break r,
            }
        }
    }};
}

/// Whether a manager's answer to a read says it no longer serves the swarm, so that the read is
/// worth repeating on another manager.
fn lost_manager(e: &Error) -> bool {
    match e {
        Error::EngineUnreachable { .. } | Error::Timeout { .. } => true,
        Error::Engine { status: 503, message, .. } => {
            message.contains("not a swarm manager") || message.contains("does not have a leader")
        }
        _ => false,
    }
}

fn nanos(d: Duration) -> i64 {
    d.as_nanos().min(i64::MAX as u128) as i64
}

fn hashmap(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn btreemap(m: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    m.unwrap_or_default().into_iter().collect()
}

fn check_choice(field: &str, value: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(Error::invalid(field, format!("{value:?} is not one of {}", allowed.join(", "))))
    }
}

/// Maps a dockfleet constraint to Swarm's spelling. `node_ids` maps fleet host names to node IDs.
fn constraint(field: &str, text: &str, node_ids: &BTreeMap<String, String>) -> Result<String> {
    let c = crate::spec::Constraint::parse(field, text)?;
    let op = if c.equal { "==" } else { "!=" };
    let raw = text.trim_start();
    Ok(match &c.key {
        ConstraintKey::Hostname => match node_ids.get(&c.value) {
            Some(id) => format!("node.id{op}{id}"),
            None => format!("node.hostname{op}{}", c.value),
        },
        // Swarm's own keys keep their meaning.
        ConstraintKey::Label(_) if raw.starts_with("node.role") => format!("node.role{op}{}", c.value),
        ConstraintKey::Label(l) if raw.starts_with("engine.labels.") => format!("engine.labels.{l}{op}{}", c.value),
        ConstraintKey::Label(l) if l.starts_with("node.platform.") => format!("{l}{op}{}", c.value),
        ConstraintKey::Label(l) => format!("node.labels.{l}{op}{}", c.value),
        ConstraintKey::Runs => {
            return Err(Error::invalid(
                field,
                "Swarm mode cannot place a service by where another one runs (moby/swarmkit#1442); use the fleet \
                 backend",
            ))
        }
    })
}

fn update_config(field: &str, u: &UpdateConfig, rollback: bool) -> Result<(i64, i64, String, i64, f64, String)> {
    if rollback && u.failure_action == "rollback" {
        return Err(Error::invalid(
            format!("{field}.failure_action"),
            "Swarm mode cannot roll back a rollback: use pause or continue",
        ));
    }
    Ok((
        i64::from(u.parallelism),
        nanos(u.delay),
        u.failure_action.clone(),
        nanos(u.monitor),
        u.max_failure_ratio,
        u.order.clone(),
    ))
}

/// Label on a secret or config a stack created: a hash of the content it was created from, so that a
/// changed file is noticed (Swarm never returns a secret's data). Anyone who can read it can already run
/// a task that mounts the secret, so it tells them nothing new.
pub(crate) const LABEL_CONTENT_HASH: &str = "dockfleet.content-hash";

/// The swarm's secrets and configs, name → ID (what a service spec refers to them by).
#[derive(Debug, Default)]
pub(crate) struct SwarmObjects {
    secrets: BTreeMap<String, String>,
    configs: BTreeMap<String, String>,
    /// (`"secrets"` | `"configs"`, name) → the [`LABEL_CONTENT_HASH`] of those that carry one.
    content: BTreeMap<(&'static str, String), String>,
    /// The stack's named volumes, as a manager's engine has them: a node that lacks one (it joined
    /// later) creates it with the same driver, options and labels.
    volumes: BTreeMap<String, VolumeSummary>,
}

impl SwarmObjects {
    fn add(&mut self, kind: &'static str, id: String, name: Option<String>, labels: Option<HashMap<String, String>>) {
        let Some(name) = name else { return };
        if let Some(h) = labels.and_then(|mut l| l.remove(LABEL_CONTENT_HASH)) {
            self.content.insert((kind, name.clone()), h);
        }
        let ids = if kind == "secrets" { &mut self.secrets } else { &mut self.configs };
        ids.insert(name, id);
    }
}

fn content_hash(data: &[u8]) -> String {
    format!("{:016x}", crate::reconcile::fnv1a(data))
}

/// A `tmpfs` entry as a Swarm mount: Swarm (API 1.41) takes a size and a mode, no other option.
fn tmpfs_mount(field: &str, entry: &str) -> Result<bm::Mount> {
    let (path, options) = entry.split_once(':').unwrap_or((entry, ""));
    let mut tmpfs = bm::MountTmpfsOptions::default();
    for o in options.split(',').filter(|o| !o.is_empty()) {
        let bad = || Error::invalid(field, format!("{o:?}: Swarm's tmpfs takes size=BYTES and mode=OCTAL only"));
        match o.split_once('=').ok_or_else(bad)? {
            ("size", v) => {
                let bytes = crate::stack::parse_bytes(field, &serde_yaml_ng::Value::String(v.into()))?;
                tmpfs.size_bytes = Some(bytes.min(i64::MAX as u64) as i64);
            }
            ("mode", v) => tmpfs.mode = Some(i64::from_str_radix(v, 8).map_err(|_| bad())?),
            _ => return Err(bad()),
        }
    }
    Ok(bm::Mount {
        target: Some(path.to_string()),
        typ: Some(bm::MountType::TMPFS),
        tmpfs_options: Some(tmpfs),
        ..Default::default()
    })
}

/// Maps a validated [`ServiceSpec`] to a Swarm service spec; refuses what Swarm mode cannot express,
/// naming the field. `node_ids` maps fleet host names to node IDs (for hostname constraints).
pub(crate) fn to_swarm(
    spec: &ServiceSpec,
    node_ids: &BTreeMap<String, String>,
    publish_mode: &str,
    objects: &SwarmObjects,
) -> Result<bm::ServiceSpec> {
    spec.validate()?;
    if spec.strategy() != "spread" {
        return Err(Error::invalid(
            "placement.strategy",
            format!("Swarm mode always spreads; {:?} cannot be expressed (use the fleet backend)", spec.strategy()),
        ));
    }
    if spec.privileged {
        return Err(Error::invalid("privileged", "Swarm mode services cannot run privileged containers"));
    }
    let r = &spec.resources;
    for (field, set) in [
        ("resources.cpu_shares", r.cpu_shares.is_some()),
        ("resources.cpuset_cpus", r.cpuset_cpus.is_some()),
        ("resources.memory_swap_limit", r.memory_swap_limit.is_some()),
        ("resources.memory_swappiness", r.memory_swappiness.is_some()),
        ("resources.oom_kill_disable", r.oom_kill_disable),
        ("oom_score_adj", spec.oom_score_adj.is_some()),
        ("runtime", spec.runtime.is_some()),
        ("ipc", spec.ipc.is_some()),
    ] {
        if set {
            return Err(Error::invalid(
                field,
                "Swarm mode (API 1.41) has no such setting for a service's tasks; use the fleet backend",
            ));
        }
    }
    if spec.pid.is_some() {
        return Err(Error::invalid(
            "pid",
            "Swarm mode (API 1.41) cannot run a service in the host's process namespace; use the fleet backend",
        ));
    }
    if !spec.devices.is_empty() {
        return Err(Error::invalid(
            "devices[0]",
            "Swarm mode cannot give a service's tasks a device (moby/swarmkit#1244); use the fleet backend",
        ));
    }
    if !spec.shutdown_delay.is_zero() {
        return Err(Error::invalid(
            "shutdown_delay",
            "Swarm mode stops a task as it takes it out of service; a delay cannot be expressed (use the fleet backend)",
        ));
    }
    let hash = spec_hash(spec);
    let mut labels = spec.labels.clone();
    labels.insert(LABEL_SPEC_HASH.into(), hash.clone());
    let mut service_labels = labels.clone();
    // On the task's container, where discovery reads it (Swarm publishes nothing on the host network).
    if let Some(ports) = crate::reconcile::host_ports_label(spec) {
        labels.insert(crate::reconcile::LABEL_HOST_PORTS.into(), ports);
    }
    service_labels.insert(
        LABEL_SPEC.into(),
        serde_json::to_string(spec).map_err(|e| Error::Internal(format!("encoding the spec: {e}")))?,
    );
    let stack_labels: HashMap<String, String> =
        spec.labels.get(LABEL_STACK).map(|s| HashMap::from([(LABEL_STACK.to_string(), s.clone())])).unwrap_or_default();
    let volume_options = |source: &str| match objects.volumes.get(source) {
        Some(v) => bm::MountVolumeOptions {
            labels: Some(v.labels.clone().into_iter().collect()),
            driver_config: (!v.driver_opts.is_empty()).then(|| bm::MountVolumeOptionsDriverConfig {
                name: Some(v.driver.clone()),
                options: Some(v.driver_opts.clone().into_iter().collect()),
            }),
            ..Default::default()
        },
        None => bm::MountVolumeOptions {
            labels: (!stack_labels.is_empty()).then(|| stack_labels.clone()),
            ..Default::default()
        },
    };
    let mut mounts = Vec::new();
    for (i, m) in spec.volumes.iter().enumerate() {
        if m.selinux.is_some() {
            return Err(Error::invalid(
                format!("volumes[{i}].selinux"),
                "Swarm's mounts cannot relabel for SELinux (label the host path, or use the fleet backend)",
            ));
        }
        let bind = m.is_bind();
        let volume = (!bind && (m.no_copy || !stack_labels.is_empty()))
            .then(|| bm::MountVolumeOptions { no_copy: m.no_copy.then_some(true), ..volume_options(&m.source) });
        mounts.push(bm::Mount {
            target: Some(m.target.clone()),
            source: Some(m.source.clone()),
            typ: Some(if bind { bm::MountType::BIND } else { bm::MountType::VOLUME }),
            read_only: Some(m.read_only),
            bind_options: m
                .propagation
                .as_deref()
                .map(|p| bm::MountBindOptions { propagation: p.parse().ok(), ..Default::default() }),
            volume_options: volume,
            ..Default::default()
        });
    }
    for (i, t) in spec.tmpfs.iter().enumerate() {
        mounts.push(tmpfs_mount(&format!("tmpfs[{i}]"), t)?);
    }
    if let Some(size) = spec.shm_size {
        mounts.push(tmpfs_mount("shm_size", &format!("/dev/shm:size={size}"))?);
    }
    if spec.logging.as_ref().is_some_and(|l| l.driver.is_empty()) {
        return Err(Error::invalid("logging.driver", "Swarm needs the log driver named (json-file)"));
    }
    let health_check = spec.healthcheck.as_ref().map(|h| bm::HealthConfig {
        test: Some(h.test.clone()),
        interval: h.interval.map(nanos),
        timeout: h.timeout.map(nanos),
        retries: h.retries.map(i64::from),
        start_period: h.start_period.map(nanos),
        ..Default::default()
    });
    let id_of = |kind: &str, i: usize, name: &str, ids: &BTreeMap<String, String>| {
        ids.get(name).cloned().ok_or_else(|| {
            Error::invalid(format!("{kind}s[{i}].source"), format!("the swarm has no {kind} named {name:?}"))
        })
    };
    let secrets = spec
        .secrets
        .iter()
        .enumerate()
        .map(|(i, f)| {
            Ok(bm::TaskSpecContainerSpecSecrets {
                file: Some(bm::TaskSpecContainerSpecFile {
                    name: Some(f.target(true)),
                    uid: Some("0".into()),
                    gid: Some("0".into()),
                    mode: Some(f.mode),
                }),
                secret_id: Some(id_of("secret", i, &f.source, &objects.secrets)?),
                secret_name: Some(f.source.clone()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let configs = spec
        .configs
        .iter()
        .enumerate()
        .map(|(i, f)| {
            Ok(bm::TaskSpecContainerSpecConfigs {
                file: Some(bm::TaskSpecContainerSpecFile1 {
                    name: Some(f.target(false)),
                    uid: Some("0".into()),
                    gid: Some("0".into()),
                    mode: Some(f.mode),
                }),
                config_id: Some(id_of("config", i, &f.source, &objects.configs)?),
                config_name: Some(f.source.clone()),
                ..Default::default()
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // Swarm takes `address name`, as /etc/hosts lines are written (`host-gateway` too: the engine
    // running the task fills it).
    let hosts: Vec<String> = spec
        .extra_hosts
        .iter()
        .map(|e| e.split_once(':').map(|(name, address)| format!("{address} {name}")).unwrap_or(e.clone()))
        .collect();
    // Swarm (API 1.41) takes the SELinux labels; its seccomp, AppArmor and no-new-privileges
    // settings came with API 1.44.
    let mut selinux: Option<bm::TaskSpecContainerSpecPrivilegesSeLinuxContext> = None;
    for (i, o) in spec.security_opt.iter().enumerate() {
        let field = format!("security_opt[{i}]");
        match crate::host::SecurityOpt::parse(&field, o)? {
            crate::host::SecurityOpt::Label(v) => {
                let ctx = selinux.get_or_insert_with(Default::default);
                match v.split_once(':') {
                    Some(("user", x)) => ctx.user = Some(x.into()),
                    Some(("role", x)) => ctx.role = Some(x.into()),
                    Some(("type", x)) => ctx.typ = Some(x.into()),
                    Some((_, x)) => ctx.level = Some(x.into()),
                    None => ctx.disable = Some(true),
                }
            }
            _ => {
                return Err(Error::invalid(
                    field,
                    "Swarm mode (API 1.41) takes only label=… security options; no-new-privileges, seccomp, \
                     apparmor and systempaths need the fleet backend",
                ))
            }
        }
    }
    let container_spec = bm::TaskSpecContainerSpec {
        secrets: (!secrets.is_empty()).then_some(secrets),
        configs: (!configs.is_empty()).then_some(configs),
        image: Some(spec.image.clone()),
        labels: Some(hashmap(&labels)),
        // Swarm's `Command` is the entrypoint, its `Args` the command.
        command: spec.entrypoint.clone(),
        args: (!spec.command.is_empty()).then(|| spec.command.clone()),
        dir: spec.working_dir.clone(),
        user: spec.user.clone(),
        groups: (!spec.group_add.is_empty()).then(|| spec.group_add.clone()),
        stop_signal: spec.stop_signal.clone(),
        privileges: selinux
            .map(|c| bm::TaskSpecContainerSpecPrivileges { se_linux_context: Some(c), ..Default::default() }),
        // Swarm fills the same placeholders itself.
        hostname: spec.hostname.clone(),
        hosts: (!hosts.is_empty()).then_some(hosts),
        init: spec.init,
        read_only: spec.read_only.then_some(true),
        capability_add: (!spec.cap_add.is_empty()).then(|| spec.cap_add.clone()),
        capability_drop: (!spec.cap_drop.is_empty()).then(|| spec.cap_drop.clone()),
        ulimits: (!spec.ulimits.is_empty()).then(|| spec.ulimits.iter().map(crate::docker::ulimit).collect()),
        sysctls: (!spec.sysctls.is_empty()).then(|| spec.sysctls.clone().into_iter().collect()),
        dns_config: (!(spec.dns.is_empty() && spec.dns_search.is_empty() && spec.dns_opt.is_empty())).then(|| {
            bm::TaskSpecContainerSpecDnsConfig {
                nameservers: Some(spec.dns.clone()),
                search: Some(spec.dns_search.clone()),
                options: Some(spec.dns_opt.clone()),
            }
        }),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        mounts: Some(mounts),
        stop_grace_period: Some(nanos(spec.stop_grace_period)),
        health_check,
        tty: spec.tty.then_some(true),
        open_stdin: spec.stdin_open.then_some(true),
        ..Default::default()
    };
    let r = &spec.resources;
    let cpu = |c: Option<f64>| c.map(|c| (c * 1e9).round() as i64);
    let mem = |m: Option<u64>| m.map(|m| m.min(i64::MAX as u64) as i64);
    let resources = bm::TaskSpecResources {
        limits: Some(bm::Limit {
            nano_cpus: cpu(r.cpu_limit),
            memory_bytes: mem(r.memory_limit),
            // Swarm's "unlimited" is 0.
            pids: r.pids_limit.map(|n| n.max(0)),
        }),
        reservations: Some(bm::ResourceObject {
            nano_cpus: cpu(r.cpu_reservation),
            memory_bytes: mem(r.memory_reservation),
            ..Default::default()
        }),
        ..Default::default()
    };
    let rp = &spec.restart_policy;
    let restart_policy = bm::TaskSpecRestartPolicy {
        condition: Some(match rp.condition.as_str() {
            "none" => bm::TaskSpecRestartPolicyConditionEnum::NONE,
            "on-failure" => bm::TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
            _ => bm::TaskSpecRestartPolicyConditionEnum::ANY,
        }),
        delay: Some(nanos(rp.delay)),
        max_attempts: Some(i64::from(rp.max_attempts)),
        window: Some(nanos(rp.window)),
    };
    let constraints = spec
        .placement
        .constraints
        .iter()
        .enumerate()
        .map(|(i, c)| constraint(&format!("placement.constraints[{i}]"), c, node_ids))
        .collect::<Result<Vec<_>>>()?;
    let preferences = spec
        .preferences()?
        .into_iter()
        .map(|label| bm::TaskSpecPlacementPreferences {
            spread: Some(bm::TaskSpecPlacementSpread { spread_descriptor: Some(format!("node.labels.{label}")) }),
        })
        .collect();
    let placement = bm::TaskSpecPlacement {
        constraints: Some(constraints),
        preferences: Some(preferences),
        // Swarm knows no port of a task on the host network: one task per node keeps its ports free.
        max_replicas: if spec.host_network() { spec.per_host_limit() } else { spec.placement.max_replicas_per_host }
            .map(i64::from),
        ..Default::default()
    };
    let networks: Vec<bm::NetworkAttachmentConfig> = spec
        .networks
        .iter()
        .map(|n| bm::NetworkAttachmentConfig {
            target: Some(n.clone()),
            aliases: (!spec.network_aliases.is_empty()).then(|| spec.network_aliases.clone()),
            ..Default::default()
        })
        .collect();
    let (p, d, fa, m, ratio, order) = update_config("update_config", &spec.update_config, false)?;
    let update = bm::ServiceSpecUpdateConfig {
        parallelism: Some(p),
        delay: Some(d),
        failure_action: Some(match fa.as_str() {
            "continue" => bm::ServiceSpecUpdateConfigFailureActionEnum::CONTINUE,
            "rollback" => bm::ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK,
            _ => bm::ServiceSpecUpdateConfigFailureActionEnum::PAUSE,
        }),
        monitor: Some(m),
        max_failure_ratio: Some(ratio),
        order: Some(if order == "start-first" {
            bm::ServiceSpecUpdateConfigOrderEnum::START_FIRST
        } else {
            bm::ServiceSpecUpdateConfigOrderEnum::STOP_FIRST
        }),
    };
    let (p, d, fa, m, ratio, order) = update_config("rollback_config", &spec.rollback_config, true)?;
    let rollback = bm::ServiceSpecRollbackConfig {
        parallelism: Some(p),
        delay: Some(d),
        failure_action: Some(if fa == "continue" {
            bm::ServiceSpecRollbackConfigFailureActionEnum::CONTINUE
        } else {
            bm::ServiceSpecRollbackConfigFailureActionEnum::PAUSE
        }),
        monitor: Some(m),
        max_failure_ratio: Some(ratio),
        order: Some(if order == "start-first" {
            bm::ServiceSpecRollbackConfigOrderEnum::START_FIRST
        } else {
            bm::ServiceSpecRollbackConfigOrderEnum::STOP_FIRST
        }),
    };
    let mode = if spec.mode == "global" {
        bm::ServiceSpecMode { global: Some(HashMap::new()), ..Default::default() }
    } else {
        bm::ServiceSpecMode {
            replicated: Some(bm::ServiceSpecModeReplicated { replicas: Some(i64::from(spec.replicas)) }),
            ..Default::default()
        }
    };
    // A task on the host network listens on its node's ports itself, and Swarm refuses to publish
    // any (moby/moby#34215).
    let ports: Vec<bm::EndpointPortConfig> = spec
        .ports
        .iter()
        .filter(|p| p.published.is_some() && !spec.host_network())
        .map(|p| bm::EndpointPortConfig {
            protocol: Some(if p.protocol == "udp" {
                bm::EndpointPortConfigProtocolEnum::UDP
            } else {
                bm::EndpointPortConfigProtocolEnum::TCP
            }),
            target_port: Some(i64::from(p.target)),
            published_port: p.published.filter(|n| *n != 0).map(i64::from),
            publish_mode: Some(if p.mode.as_deref().unwrap_or(publish_mode) == "ingress" {
                bm::EndpointPortConfigPublishModeEnum::INGRESS
            } else {
                bm::EndpointPortConfigPublishModeEnum::HOST
            }),
            ..Default::default()
        })
        .collect();
    let endpoint_mode = match spec.endpoint_mode.as_deref() {
        Some("dnsrr")
            if ports.iter().any(|p| p.publish_mode == Some(bm::EndpointPortConfigPublishModeEnum::INGRESS)) =>
        {
            return Err(Error::invalid(
                "endpoint_mode",
                "dnsrr has no virtual address for the routing mesh to publish ports on (publish them in host mode)",
            ))
        }
        Some("dnsrr") => Some(bm::EndpointSpecModeEnum::DNSRR),
        Some(_) => Some(bm::EndpointSpecModeEnum::VIP),
        None => None,
    };
    Ok(bm::ServiceSpec {
        name: Some(spec.name.clone()),
        labels: Some(hashmap(&service_labels)),
        task_template: Some(bm::TaskSpec {
            container_spec: Some(container_spec),
            resources: Some(resources),
            restart_policy: Some(restart_policy),
            placement: Some(placement),
            networks: Some(networks),
            log_driver: spec.logging.as_ref().map(|l| bm::TaskSpecLogDriver {
                name: Some(l.driver.clone()),
                options: (!l.options.is_empty()).then(|| l.options.clone().into_iter().collect()),
            }),
            ..Default::default()
        }),
        mode: Some(mode),
        update_config: Some(update),
        rollback_config: Some(rollback),
        endpoint_spec: Some(bm::EndpointSpec { mode: endpoint_mode, ports: Some(ports) }),
        ..Default::default()
    })
}

/// The spec hash recorded in a Swarm service spec's container labels.
fn template_hash(spec: Option<&bm::ServiceSpec>) -> Option<String> {
    spec?.task_template.as_ref()?.container_spec.as_ref()?.labels.as_ref()?.get(LABEL_SPEC_HASH).cloned()
}

fn task_hash(t: &bm::Task) -> Option<String> {
    t.spec.as_ref()?.container_spec.as_ref()?.labels.as_ref()?.get(LABEL_SPEC_HASH).cloned()
}

fn state_name(s: Option<bm::TaskState>) -> String {
    s.map(|s| s.to_string()).unwrap_or_default()
}

/// How a watched update ended.
enum Watched {
    Completed,
    Paused(String),
    /// Swarm started rolling the update back (failure action `rollback`).
    RollingBack,
}

/// What one poll of a watched service saw.
struct Settled {
    /// Swarm's update state, when it is about this update.
    state: Option<bm::ServiceUpdateStatusStateEnum>,
    /// Whether Swarm's updater is expected to run (the task template changed).
    update_expected: bool,
    /// Tasks meant to run that run the target spec.
    running: u32,
    /// Tasks meant to run that do not (yet): starting, or of another spec.
    pending: u32,
    /// Tasks Swarm wants running.
    desired: u32,
}

impl Settled {
    /// How the watch ends after this poll, if it does, in `phase` (`update` or `rollback`).
    fn verdict(&self, phase: &str) -> Option<Watched> {
        use bm::ServiceUpdateStatusStateEnum as U;
        match self.state {
            Some(U::PAUSED | U::ROLLBACK_PAUSED) => return Some(Watched::Paused(String::new())),
            // A short rollback may have finished between two polls: it is followed all the same.
            Some(U::ROLLBACK_STARTED | U::ROLLBACK_COMPLETED) if phase == "update" => {
                return Some(Watched::RollingBack)
            }
            _ => {}
        }
        let updating = match self.state {
            Some(U::UPDATING | U::ROLLBACK_STARTED) => true,
            // Swarm's updater has not picked the change up yet.
            None | Some(U::EMPTY) => self.update_expected,
            _ => false,
        };
        (!updating && self.pending == 0 && self.running >= self.desired).then_some(Watched::Completed)
    }
}

impl Swarm {
    fn new(fleet: Fleet, options: SwarmOptions, manager: Option<String>) -> Self {
        Swarm { inner: Arc::new(Inner { fleet, options, manager: Mutex::new(manager) }) }
    }

    /// Initialises a new swarm with the fleet host `manager` as its first manager, advertised at the
    /// host's address, and labels that node with the host's fleet labels. A host already managing a
    /// swarm is kept as it is (idempotent); one that is a worker elsewhere is a `conflict`.
    pub async fn init(fleet: Fleet, manager: &str, options: SwarmOptions) -> Result<Swarm> {
        options.validate()?;
        let h = fleet.host(manager)?;
        let d = docker_host(&h)?;
        let m = membership(d).await?;
        match (m.state, m.manager) {
            (bm::LocalNodeState::ACTIVE, true) => {}
            (bm::LocalNodeState::INACTIVE | bm::LocalNodeState::EMPTY, _) => {
                let addr = crate::registrator::host_address(h.address());
                let req = bm::SwarmInitRequest {
                    listen_addr: Some(format!("0.0.0.0:{}", options.port)),
                    advertise_addr: Some(format!("{addr}:{}", options.port)),
                    ..Default::default()
                };
                d.bollard().await?.init_swarm(req).await.map_err(|e| d.object_err(e, "swarm", "", "swarm init"))?;
                tracing::info!(host = manager, "swarm initialised");
            }
            (state, _) => {
                return Err(Error::Conflict {
                    host: manager.into(),
                    message: format!("the engine is already in a swarm (state {state}) and is not a manager"),
                })
            }
        }
        let swarm = Swarm::new(fleet, options, Some(manager.to_string()));
        swarm.label_from_fleet(manager).await?;
        Ok(swarm)
    }

    /// A swarm some of whose managers are in `fleet`: the first reachable manager found is used.
    pub async fn connect(fleet: Fleet, options: SwarmOptions) -> Result<Swarm> {
        options.validate()?;
        let swarm = Swarm::new(fleet, options, None);
        swarm.manager().await?;
        Ok(swarm)
    }

    /// The fleet whose engines are the swarm's nodes.
    pub fn fleet(&self) -> &Fleet {
        &self.inner.fleet
    }

    /// The options.
    pub fn options(&self) -> &SwarmOptions {
        &self.inner.options
    }

    /// A polling wait of [`SwarmOptions::timeout`] at [`SwarmOptions::poll_interval`].
    fn wait(&self) -> Wait {
        self.wait_for(self.inner.options.timeout)
    }

    /// A polling wait of `timeout` at [`SwarmOptions::poll_interval`].
    fn wait_for(&self, timeout: Duration) -> Wait {
        Wait { deadline: Instant::now().later(timeout), timeout, interval: self.inner.options.poll_interval }
    }

    /// A reachable manager of the fleet: the last one used, or the first that answers as a manager.
    async fn manager(&self) -> Result<&DockerHost> {
        let cached = self.inner.manager.lock().expect("manager lock").clone();
        let hosts = self.inner.fleet.hosts();
        let order = cached.iter().filter_map(|n| hosts.iter().find(|h| h.name() == n)).chain(hosts.iter());
        let mut last = None;
        for h in order {
            let Some(d) = h.as_docker() else { continue };
            match membership(d).await {
                Ok(m) if m.manager => {
                    if cached.as_deref() != Some(h.name()) {
                        // A new manager (the first, or the last one used is gone): after losing the
                        // leader, the others answer "no leader" until Raft has elected one.
                        self.wait_for_leader(d).await?;
                    }
                    *self.inner.manager.lock().expect("manager lock") = Some(h.name().to_string());
                    return Ok(d);
                }
                Ok(_) => {}
                Err(e) => last = Some(e),
            }
        }
        Err(Error::NotFound {
            kind: "swarm manager".into(),
            id: String::new(),
            host: self.inner.fleet.names().join(","),
            message: match last {
                Some(e) => format!("no host of the fleet is a reachable swarm manager (last error: {e})"),
                None => "no host of the fleet is a swarm manager (Swarm::init forms one)".into(),
            },
        })
    }

    /// Waits, within [`SwarmOptions::timeout`], until the manager `d` knows a Raft leader.
    async fn wait_for_leader(&self, d: &DockerHost) -> Result<()> {
        let docker = d.bollard().await?;
        let wait = self.wait();
        let mut waited = false;
        loop {
            let e = match docker.inspect_swarm().await {
                Ok(_) => {
                    if waited {
                        tracing::info!(manager = d.name(), "the swarm has a leader again");
                    }
                    return Ok(());
                }
                Err(e) => d.object_err(e, "swarm", "", "inspect swarm"),
            };
            let electing =
                matches!(&e, Error::Engine { status: 503, .. }) || e.to_string().contains("does not have a leader");
            if !electing {
                return Err(e);
            }
            if !waited {
                tracing::warn!(manager = d.name(), "the swarm has no leader; waiting for an election");
                waited = true;
            }
            wait.again(|| format!("waiting for a swarm leader through {} ({e})", d.name())).await?;
        }
    }

    /// A manager, checked to be one: for calls that change the swarm or take several steps.
    async fn client(&self) -> Result<(&DockerHost, &Docker)> {
        let m = self.manager().await?;
        Ok((m, m.bollard().await?))
    }

    /// The manager a [`read!`] goes to: the one used last, unchecked, unless `anew`; otherwise (or
    /// when none was used yet) a manager [`Swarm::manager`] finds.
    async fn reader(&self, anew: bool) -> Result<(&DockerHost, &Docker)> {
        if !anew {
            let cached = self.inner.manager.lock().expect("manager lock").clone();
            let hosts = self.inner.fleet.hosts();
            if let Some(d) = cached.and_then(|n| hosts.iter().find(|h| h.name() == n)).and_then(|h| h.as_docker()) {
                return Ok((d, d.bollard().await?));
            }
        }
        self.client().await
    }

    /// Stops using the manager `m` after its answer `e` said it no longer serves the swarm.
    fn forget_manager(&self, m: &DockerHost, e: &Error) {
        tracing::info!(manager = m.name(), error = %e, "the swarm manager used last is gone; finding another");
        let mut cached = self.inner.manager.lock().expect("manager lock");
        if cached.as_deref() == Some(m.name()) {
            *cached = None;
        }
    }

    /// Fleet host name → node ID, for the reachable hosts that are nodes.
    async fn node_ids(&self) -> BTreeMap<String, String> {
        let jobs = self.inner.fleet.hosts().iter().filter_map(|h| {
            let d = h.as_docker()?;
            Some(async move { (h.name().to_string(), membership(d).await) })
        });
        futures::future::join_all(jobs)
            .await
            .into_iter()
            .filter_map(|(n, m)| {
                m.ok()
                    .filter(|m| m.state == bm::LocalNodeState::ACTIVE && !m.node_id.is_empty())
                    .map(|m| (n, m.node_id))
            })
            .collect()
    }

    /// The node ID of a fleet host (or a node ID or hostname outside the fleet).
    async fn node_id(&self, host: &str) -> Result<String> {
        if let Ok(h) = self.inner.fleet.host(host) {
            let m = membership(docker_host(&h)?).await?;
            if m.state != bm::LocalNodeState::ACTIVE || m.node_id.is_empty() {
                return Err(Error::NotFound {
                    kind: "swarm node".into(),
                    id: host.into(),
                    host: host.into(),
                    message: format!("the engine is not in the swarm (state {})", m.state),
                });
            }
            return Ok(m.node_id);
        }
        crate::host::validate_ref("host", host)?;
        let node = read!(self, |m, docker| {
            docker.inspect_node(host).await.map_err(|e| m.object_err(e, "swarm node", host, "inspect node"))
        })?;
        Ok(node.id.unwrap_or_default())
    }

    fn node_view(&self, n: bm::Node, hosts: &BTreeMap<String, String>) -> SwarmNode {
        let id = n.id.unwrap_or_default();
        let spec = n.spec.unwrap_or_default();
        let desc = n.description.unwrap_or_default();
        let status = n.status.unwrap_or_default();
        let ms = n.manager_status;
        let host = hosts.iter().find(|(_, nid)| **nid == id).map(|(h, _)| h.clone()).unwrap_or_default();
        SwarmNode {
            host,
            hostname: desc.hostname.unwrap_or_default(),
            role: spec.role.map(|r| r.to_string()).unwrap_or_default(),
            availability: spec.availability.map(|a| a.to_string()).unwrap_or_default(),
            state: status.state.map(|s| s.to_string()).unwrap_or_default(),
            address: status.addr.unwrap_or_default(),
            leader: ms.as_ref().and_then(|m| m.leader).unwrap_or(false),
            reachability: ms.and_then(|m| m.reachability).map(|r| r.to_string()).unwrap_or_default(),
            labels: btreemap(spec.labels),
            engine_version: desc.engine.and_then(|e| e.engine_version).unwrap_or_default(),
            id,
        }
    }

    /// The swarm's nodes, with the fleet host each one is.
    pub async fn nodes(&self) -> Result<Vec<SwarmNode>> {
        let list = read!(self, |m, docker| {
            docker
                .list_nodes(None::<qp::ListNodesOptions>)
                .await
                .map_err(|e| m.object_err(e, "swarm node", "", "list nodes"))
        })?;
        let hosts = self.node_ids().await;
        let mut out: Vec<SwarmNode> = list.into_iter().map(|n| self.node_view(n, &hosts)).collect();
        out.sort_by(|a, b| {
            (a.host.is_empty(), &a.host, &a.hostname, &a.id).cmp(&(b.host.is_empty(), &b.host, &b.hostname, &b.id))
        });
        Ok(out)
    }

    async fn node(&self, host: &str) -> Result<SwarmNode> {
        let id = self.node_id(host).await?;
        let n = read!(self, |m, docker| {
            docker.inspect_node(&id).await.map_err(|e| m.object_err(e, "swarm node", host, "inspect node"))
        })?;
        Ok(self.node_view(n, &self.node_ids().await))
    }

    /// Changes a node's spec (labels, availability) with the version check Swarm requires.
    async fn update_node(&self, host: &str, change: impl FnOnce(&mut bm::NodeSpec)) -> Result<SwarmNode> {
        self.change_node(host, change).await?;
        self.node(host).await
    }

    async fn change_node(&self, host: &str, change: impl FnOnce(&mut bm::NodeSpec)) -> Result<()> {
        let id = self.node_id(host).await?;
        let (m, docker) = self.client().await?;
        let n = docker.inspect_node(&id).await.map_err(|e| m.object_err(e, "swarm node", host, "inspect node"))?;
        let version = n.version.and_then(|v| v.index).unwrap_or_default();
        let mut spec = n.spec.unwrap_or_default();
        change(&mut spec);
        docker
            .update_node(&id, spec, qp::UpdateNodeOptions { version: version as i64 })
            .await
            .map_err(|e| m.object_err(e, "swarm node", host, "update node"))
    }

    /// Sets a node's labels (replacing its own; the `dockfleet.host` label is kept).
    pub async fn set_node_labels(&self, host: &str, labels: BTreeMap<String, String>) -> Result<SwarmNode> {
        for k in labels.keys() {
            if k.trim().is_empty() || k.contains('=') {
                return Err(Error::invalid(format!("labels.{k}"), "a label name must be non-empty and without '='"));
            }
        }
        self.update_node(host, |spec| {
            let keep = spec.labels.as_ref().and_then(|l| l.get(LABEL_NODE_HOST).cloned());
            let mut l = hashmap(&labels);
            if let Some(h) = keep {
                l.insert(LABEL_NODE_HOST.into(), h);
            }
            spec.labels = Some(l);
        })
        .await
    }

    /// Sets a node's availability: `active`, `pause` (no new tasks) or `drain` (its tasks move to other
    /// nodes).
    pub async fn set_availability(&self, host: &str, availability: &str) -> Result<SwarmNode> {
        let a = match availability {
            "active" => bm::NodeSpecAvailabilityEnum::ACTIVE,
            "pause" => bm::NodeSpecAvailabilityEnum::PAUSE,
            "drain" => bm::NodeSpecAvailabilityEnum::DRAIN,
            other => return Err(Error::invalid("availability", format!("{other:?} is not active, pause or drain"))),
        };
        self.update_node(host, |spec| spec.availability = Some(a)).await
    }

    /// Promotes a node to `manager` or demotes it to `worker` (`docker node promote` / `demote`), and
    /// waits (within [`SwarmOptions::timeout`]) until a fleet host's engine acts in its new role. Three or
    /// five managers let the swarm outlive one or two of them; Swarm refuses to demote the last one.
    pub async fn set_role(&self, host: &str, role: &str) -> Result<SwarmNode> {
        let r = match role {
            "manager" => bm::NodeSpecRoleEnum::MANAGER,
            "worker" => bm::NodeSpecRoleEnum::WORKER,
            other => return Err(Error::invalid("role", format!("{other:?} is not worker or manager"))),
        };
        self.change_node(host, |spec| spec.role = Some(r)).await?;
        let Ok(h) = self.inner.fleet.host(host) else { return self.node(host).await };
        if role == "worker" {
            // It may be the manager this swarm talks to: later calls must find another.
            let mut cached = self.inner.manager.lock().expect("manager lock");
            if cached.as_deref() == Some(host) {
                *cached = None;
            }
        }
        let d = docker_host(&h)?;
        let wait = self.wait();
        while membership(d).await?.manager != (role == "manager") {
            wait.again(|| format!("{host} becoming a {role}")).await?;
        }
        self.node(host).await
    }

    /// Gives the node of a fleet host its fleet labels and the `dockfleet.host` label.
    async fn label_from_fleet(&self, host: &str) -> Result<SwarmNode> {
        let h = self.inner.fleet.host(host)?;
        let mut labels = h.labels().clone();
        let name = host.to_string();
        self.update_node(host, move |spec| {
            let mut l = spec.labels.take().unwrap_or_default();
            l.extend(labels.iter_mut().map(|(k, v)| (k.clone(), v.clone())));
            l.insert(LABEL_NODE_HOST.into(), name);
            spec.labels = Some(l);
        })
        .await
    }

    /// Joins the fleet host `host` to the swarm as a `worker` or a `manager`, advertised at its address,
    /// and gives its node the host's fleet labels. A host that is already a node of this swarm only gets
    /// `role` (see [`Swarm::set_role`]) if it had the other one.
    pub async fn join(&self, host: &str, role: &str) -> Result<SwarmNode> {
        check_choice("role", role, &["worker", "manager"])?;
        let h = self.inner.fleet.host(host)?;
        let d = docker_host(&h)?;
        let mine = membership(d).await?;
        let (m, docker) = self.client().await?;
        if mine.state == bm::LocalNodeState::ACTIVE {
            let known = docker.inspect_node(&mine.node_id).await.is_ok();
            if known {
                if mine.manager != (role == "manager") {
                    self.set_role(host, role).await?;
                }
                return self.label_from_fleet(host).await;
            }
            return Err(Error::Conflict {
                host: host.into(),
                message: "the engine is already a node of another swarm; leave it first".into(),
            });
        }
        let sw = docker.inspect_swarm().await.map_err(|e| m.object_err(e, "swarm", "", "inspect swarm"))?;
        let tokens = sw.join_tokens.unwrap_or_default();
        let token = if role == "manager" { tokens.manager } else { tokens.worker }.unwrap_or_default();
        let manager_addr = membership(m).await?.address;
        let addr = crate::registrator::host_address(h.address());
        let port = self.inner.options.port;
        let req = bm::SwarmJoinRequest {
            listen_addr: Some(format!("0.0.0.0:{port}")),
            advertise_addr: Some(format!("{addr}:{port}")),
            remote_addrs: Some(vec![format!("{manager_addr}:{port}")]),
            join_token: Some(token),
            ..Default::default()
        };
        d.bollard().await?.join_swarm(req).await.map_err(|e| d.object_err(e, "swarm", "", "swarm join"))?;
        tracing::info!(host, role, "joined the swarm");
        self.label_from_fleet(host).await
    }

    /// Makes the fleet host `host` leave the swarm and removes its node from the node list. A manager
    /// leaves only with `force` (Swarm's rule: it may cost the swarm its quorum).
    pub async fn leave(&self, host: &str, force: bool) -> Result<()> {
        let h = self.inner.fleet.host(host)?;
        let d = docker_host(&h)?;
        let mine = membership(d).await?;
        if mine.state != bm::LocalNodeState::ACTIVE {
            return Ok(());
        }
        d.bollard()
            .await?
            .leave_swarm(Some(qp::LeaveSwarmOptions { force }))
            .await
            .map_err(|e| d.object_err(e, "swarm", "", "swarm leave"))?;
        tracing::info!(host, "left the swarm");
        if mine.manager {
            *self.inner.manager.lock().expect("manager lock") = None;
        }
        // The managers keep a departed node listed as down until it is removed.
        // Best effort: the node has left either way.
        if let Ok((m, docker)) = self.client().await {
            let wait = self.wait_for(Duration::from_secs(15));
            loop {
                let e = match docker.delete_node(&mine.node_id, Some(qp::DeleteNodeOptions { force: true })).await {
                    Ok(()) => break,
                    Err(e) => m.object_err(e, "swarm node", host, "remove node"),
                };
                if e.code() == "not_found" {
                    break;
                }
                if let Err(e) = wait.again(|| format!("removing the departed node {host} ({e})")).await {
                    tracing::warn!(host, error = %e, "the managers still list the departed node");
                    break;
                }
            }
        }
        Ok(())
    }

    /// Every fleet host leaves the swarm, workers first: the swarm is gone afterwards.
    pub async fn dissolve(&self) -> Result<()> {
        let mut members = Vec::new();
        for h in self.inner.fleet.hosts() {
            let Some(d) = h.as_docker() else { continue };
            if let Ok(m) = membership(d).await {
                if m.state != bm::LocalNodeState::INACTIVE {
                    members.push((m.manager, h.name().to_string()));
                }
            }
        }
        members.sort();
        for (_, name) in members {
            self.leave(&name, true).await?;
        }
        Ok(())
    }

    /// Creates a secret holding `data` (kept encrypted in the managers' Raft log, mounted read-only
    /// into the tasks that name it); returns its ID. A name already in use is a `conflict`.
    pub async fn create_secret(&self, name: &str, data: &[u8], labels: BTreeMap<String, String>) -> Result<String> {
        self.create_file_object(true, name, data, labels).await
    }

    /// Removes a secret by name or ID; a secret a service still uses is a `conflict`.
    pub async fn remove_secret(&self, name: &str) -> Result<()> {
        self.remove_file_object(true, name).await
    }

    /// Creates a config holding `data` (stored unencrypted, mounted into the tasks that name it);
    /// returns its ID. A name already in use is a `conflict`.
    pub async fn create_config(&self, name: &str, data: &[u8], labels: BTreeMap<String, String>) -> Result<String> {
        self.create_file_object(false, name, data, labels).await
    }

    /// Removes a config by name or ID; a config a service still uses is a `conflict`.
    pub async fn remove_config(&self, name: &str) -> Result<()> {
        self.remove_file_object(false, name).await
    }

    /// A secret (`secret`) or a config: the two differ in the engine only by their endpoints.
    async fn create_file_object(
        &self,
        secret: bool,
        name: &str,
        data: &[u8],
        labels: BTreeMap<String, String>,
    ) -> Result<String> {
        crate::host::validate_name("name", name)?;
        let (m, docker) = self.client().await?;
        let (name_, labels, data) = (
            Some(name.to_string()),
            Some(hashmap(&labels)),
            Some(base64::engine::general_purpose::STANDARD.encode(data)),
        );
        let r = if secret {
            docker.create_secret(bm::SecretSpec { name: name_, labels, data, ..Default::default() }).await
        } else {
            docker.create_config(bm::ConfigSpec { name: name_, labels, data, ..Default::default() }).await
        };
        let kind = if secret { "secret" } else { "config" };
        Ok(r.map_err(|e| m.object_err(e, kind, name, &format!("create {kind}")))?.id)
    }

    async fn remove_file_object(&self, secret: bool, name: &str) -> Result<()> {
        crate::host::validate_ref("name", name)?;
        let (m, docker) = self.client().await?;
        let r = if secret { docker.delete_secret(name).await } else { docker.delete_config(name).await };
        let kind = if secret { "secret" } else { "config" };
        r.map_err(|e| m.object_err(e, kind, name, &format!("remove {kind}")))
    }

    /// The swarm's secrets and configs (only read when `spec` names some), optionally only those with
    /// `label`.
    async fn objects(&self, wanted: bool, label: Option<&str>) -> Result<SwarmObjects> {
        let mut out = SwarmObjects::default();
        if !wanted {
            return Ok(out);
        }
        let filters = label.map(|l| HashMap::from([("label".to_string(), vec![l.to_string()])]));
        let (secrets, configs) = read!(self, |m, docker| {
            let secrets = docker
                .list_secrets(Some(qp::ListSecretsOptions { filters: filters.clone() }))
                .await
                .map_err(|e| m.object_err(e, "secret", "", "list secrets"))?;
            let configs = docker
                .list_configs(Some(qp::ListConfigsOptions { filters: filters.clone() }))
                .await
                .map_err(|e| m.object_err(e, "config", "", "list configs"))?;
            Ok((secrets, configs))
        })?;
        for x in secrets {
            if let (Some(id), Some(spec)) = (x.id, x.spec) {
                out.add("secrets", id, spec.name, spec.labels);
            }
        }
        for x in configs {
            if let (Some(id), Some(spec)) = (x.id, x.spec) {
                out.add("configs", id, spec.name, spec.labels);
            }
        }
        Ok(out)
    }

    /// Carries `spec`'s image to every node of the fleet that lacks it, or has them pull it, as its
    /// `pull_policy` says, with an `image` event for each step.
    async fn carry_image(&self, spec: &ServiceSpec, nodes: &BTreeMap<String, String>, p: &Progress) -> Result<()> {
        let note = |host: &str, message: String| p.emit_at("image", host, 0, None, message);
        ensure_image(&self.inner.fleet, spec, nodes.keys().map(String::as_str), &note).await
    }

    async fn find_service(&self, name: &str) -> Result<Option<bm::Service>> {
        read!(self, |m, docker| match docker.inspect_service(name, None::<qp::InspectServiceOptions>).await {
            Ok(s) => Ok(Some(s)),
            Err(e) => match m.object_err(e, "service", name, "inspect service") {
                Error::NotFound { .. } => Ok(None),
                e => Err(e),
            },
        })
    }

    /// The Swarm service of that name or ID; `not_found` when there is none. The name is checked
    /// before the swarm is asked.
    async fn service(&self, name: &str) -> Result<bm::Service> {
        crate::discovery::check_name("service", name)?;
        self.find_service(name).await?.ok_or_else(|| Error::NotFound {
            kind: "service".into(),
            id: name.into(),
            host: "swarm".into(),
            message: "no such Swarm service".into(),
        })
    }

    /// The desired and running task counts Swarm reports for a service.
    async fn counts(&self, id: &str) -> Result<(u32, u32)> {
        let filters = HashMap::from([("id".to_string(), vec![id.to_string()])]);
        let list = read!(self, |m, docker| {
            let options = qp::ListServicesOptions { filters: Some(filters.clone()), status: Some(true) };
            docker.list_services(Some(options)).await.map_err(|e| m.object_err(e, "service", id, "list services"))
        })?;
        let st =
            list.into_iter().find(|s| s.id.as_deref() == Some(id)).and_then(|s| s.service_status).unwrap_or_default();
        Ok((st.desired_tasks.unwrap_or(0) as u32, st.running_tasks.unwrap_or(0) as u32))
    }

    async fn tasks(&self, service: &str) -> Result<Vec<bm::Task>> {
        let filters = HashMap::from([("service".to_string(), vec![service.to_string()])]);
        read!(self, |m, docker| {
            docker
                .list_tasks(Some(qp::ListTasksOptions { filters: Some(filters.clone()) }))
                .await
                .map_err(|e| m.object_err(e, "service", service, "list tasks"))
        })
    }

    fn task_view(service: &str, t: &bm::Task, hosts: &BTreeMap<String, String>) -> Task {
        let status = t.status.clone().unwrap_or_default();
        let node = t.node_id.clone().unwrap_or_default();
        let host = hosts.iter().find(|(_, id)| **id == node).map(|(h, _)| h.clone()).unwrap_or(node);
        let cs = status.container_status.clone().unwrap_or_default();
        let slot = t.slot.unwrap_or(0).max(0) as u32;
        Task {
            host,
            id: cs.container_id.clone().filter(|c| !c.is_empty()).or_else(|| t.id.clone()).unwrap_or_default(),
            name: if slot > 0 { format!("{service}.{slot}") } else { service.to_string() },
            slot,
            spec_hash: task_hash(t).unwrap_or_default(),
            state: state_name(status.state),
            status: status.err.filter(|e| !e.is_empty()).or(status.message).unwrap_or_default(),
            exit_code: cs.exit_code,
            ..Default::default()
        }
    }

    /// Polls a service until Swarm has converged it on tasks of spec hash `target` (any hash when
    /// `None`), reporting each new task that runs or fails. `update` says whether Swarm's updater is
    /// expected to run (the task template changed), with the update status seen before the change.
    /// Tasks in `old` (those a forced restart replaces) never count as the target's.
    async fn watch(
        &self,
        id: &str,
        target: Option<&str>,
        update: Option<String>,
        old: &BTreeSet<String>,
        p: &mut Progress,
    ) -> Result<Watched> {
        let wait = self.wait();
        let hosts = self.node_ids().await;
        let mut seen = BTreeSet::new();
        loop {
            let svc = self.service(id).await?;
            let us = svc.update_status.clone().unwrap_or_default();
            // The update status of an earlier update says nothing about this one.
            let fresh = update.as_deref().is_none_or(|before| format!("{:?}", us.started_at) != before);
            let tasks = self.tasks(id).await?;
            let mut running = 0;
            let mut pending = 0;
            for t in &tasks {
                let desired = t.desired_state == Some(bm::TaskState::RUNNING);
                let state = t.status.as_ref().and_then(|s| s.state);
                let matches = target.is_none_or(|h| task_hash(t).as_deref() == Some(h))
                    && t.id.as_ref().is_none_or(|id| !old.contains(id));
                if desired && matches && state == Some(bm::TaskState::RUNNING) {
                    running += 1;
                } else if desired {
                    pending += 1;
                }
                let tid = t.id.clone().unwrap_or_default();
                if !matches || seen.contains(&tid) {
                    continue;
                }
                let v = Self::task_view(&p.service, t, &hosts);
                match state {
                    Some(bm::TaskState::RUNNING) if desired => {
                        seen.insert(tid);
                        p.done += 1;
                        p.emit_at(
                            "task-updated",
                            &v.host,
                            v.slot,
                            Some(v.id.clone()),
                            format!("task {} running", v.name),
                        );
                    }
                    Some(bm::TaskState::FAILED | bm::TaskState::REJECTED) => {
                        seen.insert(tid);
                        p.failed += 1;
                        p.emit_at(
                            "task-failed",
                            &v.host,
                            v.slot,
                            Some(v.id.clone()),
                            format!("task {}: {}", v.name, v.status),
                        );
                    }
                    _ => {}
                }
            }
            let state = us.state.filter(|_| fresh);
            let (desired, _) = self.counts(svc.id.as_deref().unwrap_or(id)).await?;
            let settled = Settled { state, update_expected: update.is_some(), running, pending, desired };
            match settled.verdict(p.phase) {
                Some(Watched::Paused(_)) => return Ok(Watched::Paused(us.message.unwrap_or_default())),
                Some(w) => return Ok(w),
                None => {}
            }
            wait.again(|| format!("waiting for {} to converge ({running} of {desired} running)", p.service)).await?;
        }
    }

    /// Follows an update (or an explicit rollback) to its end, following Swarm into an automatic
    /// rollback when the update's failure action asks for one.
    async fn follow(
        &self,
        id: &str,
        target: Option<String>,
        previous: Option<String>,
        update: Option<String>,
        old: &BTreeSet<String>,
        p: &mut Progress,
    ) -> Result<()> {
        match self.watch(id, target.as_deref(), update, old, p).await? {
            Watched::Completed => {
                p.emit_at("completed", "", 0, None, format!("{} of {} task(s) running", p.done, p.total))
            }
            Watched::Paused(why) => p.emit_at("paused", "", 0, None, why),
            Watched::RollingBack => {
                *p = Progress {
                    tx: p.tx.clone(),
                    service: p.service.clone(),
                    phase: "rollback",
                    done: 0,
                    total: p.total,
                    failed: 0,
                };
                p.emit_at("started", "", 0, None, "Swarm is rolling the update back".into());
                match self.watch(id, previous.as_deref(), None, &BTreeSet::new(), p).await? {
                    Watched::Completed | Watched::RollingBack => {
                        p.emit_at("completed", "", 0, None, format!("rolled back; {} task(s) running", p.done))
                    }
                    Watched::Paused(why) => p.emit_at("paused", "", 0, None, why),
                }
            }
        }
        Ok(())
    }

    async fn rollout_inner(&self, spec: ServiceSpec, force: bool, tx: UnboundedSender<RolloutEvent>) -> Result<()> {
        spec.validate()?;
        let nodes = self.node_ids().await;
        let wanted = !spec.secrets.is_empty() || !spec.configs.is_empty();
        let mut objects = self.objects(wanted, None).await?;
        objects.volumes = self.stack_volumes(&spec).await?;
        let desired = to_swarm(&spec, &nodes, &self.inner.options.publish_mode, &objects)?;
        let hash = spec_hash(&spec);
        let total = if spec.mode == "global" { nodes.len() as u32 } else { spec.replicas };
        let mut p = Progress { tx, service: spec.name.clone(), phase: "update", done: 0, total, failed: 0 };
        let existing = self.find_service(&spec.name).await?;
        // A service that pulls sends its registry's credentials along, for the nodes' agents to pull
        // with (`docker service create --with-registry-auth`).
        let pulls = spec.pull_policy.as_deref().is_some_and(|p| p != "never");
        let auth = if pulls { self.inner.fleet.registry_auth_for(&spec.image).await } else { None };
        let credentials = || auth.as_ref().map(crate::docker::credentials);
        let (m, docker) = self.client().await?;
        match existing {
            None => {
                self.carry_image(&spec, &nodes, &p).await?;
                p.emit_at("started", "", 0, None, format!("creating Swarm service {} ({total} task(s))", spec.name));
                let r = docker
                    .create_service(desired, credentials())
                    .await
                    .map_err(|e| m.object_err(e, "service", &spec.name, "create service"))?;
                let id = r.id.unwrap_or_else(|| spec.name.clone());
                self.follow(&id, Some(hash), None, None, &BTreeSet::new(), &mut p).await
            }
            Some(svc) => {
                let id = svc.id.clone().unwrap_or_else(|| spec.name.clone());
                let current = svc.spec.clone().unwrap_or_default();
                let current_hash = template_hash(Some(&current));
                let same_template = current_hash.as_deref() == Some(hash.as_str());
                let same_mode = current.mode == desired.mode;
                // Swarm keeps the previous spec for its rollback but bollard does not show it: the label
                // records which spec hash an explicit rollback goes back to.
                let mut current_labels = current.labels.clone().unwrap_or_default();
                let recorded_previous = current_labels.remove(LABEL_PREVIOUS_SPEC_HASH);
                if !force && same_template && same_mode && Some(&current_labels) == desired.labels.as_ref() {
                    p.done = total;
                    p.emit_at("started", "", 0, None, format!("{} is up to date", spec.name));
                    p.emit_at("completed", "", 0, None, "nothing to change".into());
                    return Ok(());
                }
                if !same_template {
                    self.carry_image(&spec, &nodes, &p).await?;
                }
                let previous = if same_template { recorded_previous } else { current_hash };
                let mut desired = desired;
                // Swarm replaces every task when the template's force counter moves: a forced restart
                // moves it, and any other update keeps it (a scale would otherwise restart them all).
                let restart = force && same_template;
                let counter = current.task_template.as_ref().and_then(|t| t.force_update).unwrap_or(0);
                if let Some(t) = desired.task_template.as_mut() {
                    t.force_update = Some(if restart { counter.wrapping_add(1) } else { counter });
                }
                let old: BTreeSet<String> = if restart {
                    self.tasks(&id).await?.into_iter().filter_map(|t| t.id).collect()
                } else {
                    BTreeSet::new()
                };
                if let (Some(labels), Some(prev)) = (desired.labels.as_mut(), previous.clone()) {
                    labels.insert(LABEL_PREVIOUS_SPEC_HASH.into(), prev);
                }
                let version = svc.version.and_then(|v| v.index).unwrap_or_default();
                let before = format!("{:?}", svc.update_status.and_then(|u| u.started_at));
                p.emit_at(
                    "started",
                    "",
                    0,
                    None,
                    if restart {
                        format!("restarting {} ({total} task(s))", spec.name)
                    } else if same_template {
                        format!("scaling {} to {total}", spec.name)
                    } else {
                        format!("updating {} ({total} task(s))", spec.name)
                    },
                );
                let opts = qp::UpdateServiceOptions { version: version as i32, ..Default::default() };
                docker
                    .update_service(&id, desired, opts, credentials())
                    .await
                    .map_err(|e| m.object_err(e, "service", &spec.name, "update service"))?;
                let update = (!same_template || restart).then_some(before);
                self.follow(&id, Some(hash), previous, update, &old, &mut p).await
            }
        }
    }

    async fn rollback_inner(&self, service: &str, tx: UnboundedSender<RolloutEvent>) -> Result<()> {
        let svc = self.service(service).await?;
        let labels = svc.spec.as_ref().and_then(|s| s.labels.clone()).unwrap_or_default();
        // Recorded by dockfleet's rollouts; a service updated by other tools is left to Swarm's check.
        let previous = labels.get(LABEL_PREVIOUS_SPEC_HASH).cloned();
        let id = svc.id.clone().unwrap_or_else(|| service.to_string());
        let (desired, _) = self.counts(&id).await?;
        let mut p = Progress { tx, service: service.into(), phase: "rollback", done: 0, total: desired, failed: 0 };
        let (m, docker) = self.client().await?;
        let version = svc.version.and_then(|v| v.index).unwrap_or_default();
        let before = format!("{:?}", svc.update_status.and_then(|u| u.started_at));
        p.emit_at("started", "", 0, None, format!("rolling {service} back to its previous spec"));
        let opts = qp::UpdateServiceOptions {
            version: version as i32,
            rollback: Some("previous".into()),
            ..Default::default()
        };
        docker.update_service(&id, svc.spec.unwrap_or_default(), opts, None).await.map_err(|e| {
            match m.object_err(e, "service", service, "rollback service") {
                Error::Engine { message, .. } if message.contains("previous spec") => {
                    Error::NotFound { kind: "previous spec".into(), id: service.into(), host: "swarm".into(), message }
                }
                e => e,
            }
        })?;
        self.follow(&id, previous, None, Some(before), &BTreeSet::new(), &mut p).await
    }

    async fn status_of(&self, svc: &bm::Service, hosts: &BTreeMap<String, String>) -> Result<ServiceStatus> {
        let name = svc.spec.as_ref().and_then(|s| s.name.clone()).unwrap_or_default();
        let id = svc.id.clone().unwrap_or_default();
        let (desired, _) = self.counts(&id).await?;
        let mut tasks: Vec<Task> = self
            .tasks(&id)
            .await?
            .iter()
            .filter(|t| t.desired_state == Some(bm::TaskState::RUNNING))
            .map(|t| Self::task_view(&name, t, hosts))
            .collect();
        tasks.sort_by(|a, b| (a.slot, &a.host).cmp(&(b.slot, &b.host)));
        let running = tasks.iter().filter(|t| t.state == "running").count() as u32;
        Ok(ServiceStatus { name, desired, running, tasks })
    }

    /// Waits until no engine of the fleet runs a container of the service any more.
    async fn wait_containers_gone(&self, service: &str) -> Result<()> {
        let wait = self.wait();
        let opts = ListContainersOptions {
            all: true,
            labels: vec![format!("{SWARM_SERVICE}={service}")],
            ..Default::default()
        };
        loop {
            let mut left = 0;
            for h in self.inner.fleet.hosts() {
                left += h.list_containers(&opts).await.map(|l| l.len()).unwrap_or(0);
            }
            if left == 0 {
                return Ok(());
            }
            wait.again(|| format!("waiting for the {left} container(s) of {service} to go")).await?;
        }
    }

    /// The named volumes of the stack `spec` belongs to that it mounts, as a manager's engine has them
    /// (none when it is not a stack's service).
    async fn stack_volumes(&self, spec: &ServiceSpec) -> Result<BTreeMap<String, VolumeSummary>> {
        let Some(stack) = spec.labels.get(LABEL_STACK) else { return Ok(BTreeMap::new()) };
        if spec.volumes.iter().all(Mount::is_bind) {
            return Ok(BTreeMap::new());
        }
        let filters = HashMap::from([("label".to_string(), vec![format!("{LABEL_STACK}={stack}")])]);
        let list = read!(self, |m, docker| {
            docker
                .list_volumes(Some(qp::ListVolumesOptions { filters: Some(filters.clone()) }))
                .await
                .map_err(|e| m.object_err(e, "volume", stack, "list volumes"))
        })?;
        Ok(list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .filter(|v| spec.volumes.iter().any(|m| m.source == v.name))
            .map(|v| (v.name.clone(), crate::docker::volume_summary(v)))
            .collect())
    }

    async fn stack_networks(&self, stack: &str) -> Result<Vec<bm::Network>> {
        let filters = HashMap::from([("label".to_string(), vec![format!("{LABEL_STACK}={stack}")])]);
        read!(self, |m, docker| {
            docker
                .list_networks(Some(qp::ListNetworksOptions { filters: Some(filters.clone()) }))
                .await
                .map_err(|e| m.object_err(e, "network", stack, "list networks"))
        })
    }

    async fn stack_up_inner(
        &self,
        stack: Stack,
        options: StackOptions,
        tx: UnboundedSender<RolloutEvent>,
    ) -> Result<()> {
        stack.validate()?;
        let order = stack.order()?;
        let nodes = self.node_ids().await;
        // Everything Swarm cannot express, and every file a secret or config comes from, is checked
        // before anything is created; the stack's own secrets and configs count as present.
        let wanted = !stack.secrets.is_empty()
            || !stack.configs.is_empty()
            || stack.services.iter().any(|s| !s.spec.secrets.is_empty() || !s.spec.configs.is_empty());
        let mut objects = self.objects(wanted, None).await?;
        let mut contents = Vec::new();
        for (kind, files) in [("secrets", &stack.secrets), ("configs", &stack.configs)] {
            for f in files {
                let key = f.name.strip_prefix(&format!("{}_", stack.name)).unwrap_or(&f.name);
                let data = f.data(&format!("{kind}.{key}"))?;
                // Swarm's own limit (swarmkit's MaxSecretSize), checked before anything is created.
                if kind == "secrets" && !(1..MAX_SECRET_BYTES).contains(&data.len()) {
                    let (source, place) = f.source();
                    let why = format!(
                        "{place} holds {} bytes; a Swarm secret holds at least 1 and under {MAX_SECRET_BYTES}",
                        data.len()
                    );
                    return Err(Error::invalid(format!("{kind}.{key}.{source}"), why));
                }
                let hash = content_hash(&data);
                let known = if kind == "secrets" { &mut objects.secrets } else { &mut objects.configs };
                if !known.contains_key(&f.name) {
                    known.insert(f.name.clone(), String::new());
                    contents.push((kind, f, data, hash));
                } else if objects.content.get(&(kind, f.name.clone())).is_some_and(|h| *h != hash) {
                    // Swarm cannot change a secret's or config's data; `docker stack deploy` fails here
                    // too. Saying so beats deploying the old content under the new one.
                    let (source, place) = f.source();
                    return Err(Error::invalid(
                        format!("{kind}.{key}.{source}"),
                        format!(
                            "{place} changed since {} was created, and Swarm {kind} cannot change: give it a \
                             new name (say {key}_v2) or take the stack down first",
                            f.name,
                        ),
                    ));
                }
            }
        }
        for s in &stack.services {
            to_swarm(&s.spec, &nodes, &self.inner.options.publish_mode, &objects)
                .map_err(|e| e.with_field_prefix(&format!("services.{}", s.name)))?;
        }
        // Networks and volumes that exist with other options than the stack's are refused before
        // anything is created.
        let mut existing = BTreeSet::new();
        for n in self.stack_networks(&stack.name).await?.into_iter().map(crate::docker::network_summary) {
            crate::stack::check_network(&stack, "swarm", &n)?;
            existing.insert(n.name);
        }
        let mut present = BTreeMap::new();
        for name in nodes.keys() {
            let h = self.inner.fleet.host(name)?;
            present.insert(name.clone(), crate::stack::check_volumes(&stack, h.as_ref()).await?);
        }
        let event = |kind: &str, message: String| crate::stack::stack_event(&tx, &stack.name, kind, message);
        let labels = HashMap::from([(LABEL_STACK.to_string(), stack.name.clone())]);
        let mut undo = crate::stack::Undo::new(&stack.name);
        let created = async {
            // Secrets and configs are immutable in Swarm: one that exists (with the same content) is
            // kept.
            for (kind, f, data, hash) in contents {
                let name = f.name.clone();
                let mut l = f.labels.clone();
                l.extend(btreemap(Some(labels.clone())));
                l.insert(LABEL_CONTENT_HASH.to_string(), hash);
                let (this, what) = (self.clone(), &kind[..kind.len() - 1]);
                if kind == "secrets" {
                    self.create_secret(&name, &data, l).await?;
                    undo.created(format!("secret {name}"), move || async move { this.remove_secret(&name).await });
                } else {
                    self.create_config(&name, &data, l).await?;
                    undo.created(format!("config {name}"), move || async move { this.remove_config(&name).await });
                }
                event(what, format!("{what} {}", f.name));
            }
            let (m, docker) = self.client().await?;
            for n in stack.networks.iter().filter(|n| !existing.contains(*n)) {
                // Always attachable: dockfleet's own checks join a stack's networks.
                let options = NetworkOptions { driver: None, attachable: true, ..stack.network(n) };
                let req = crate::docker::network_request(n, &options, "overlay");
                match docker.create_network(req).await.map_err(|e| m.object_err(e, "network", n, "create network")) {
                    Ok(_) => {
                        let (this, n) = (self.clone(), n.clone());
                        undo.created(format!("overlay network {n}"), move || async move {
                            let (m, docker) = this.client().await?;
                            docker
                                .remove_network(&n)
                                .await
                                .map_err(|e| m.object_err(e, "network", &n, "remove network"))
                        });
                    }
                    Err(Error::Conflict { .. }) => {}
                    Err(e) => return Err(e),
                }
                event("network", format!("overlay network {n}"));
            }
            for (name, present) in &present {
                undo.create_volumes(&stack, &self.inner.fleet.host(name)?, present).await?;
            }
            if !stack.volumes.is_empty() {
                event("volume", format!("volumes {} on {} node(s)", stack.volumes.join(", "), nodes.len()));
            }
            Ok(())
        };
        if let Err(e) = created.await {
            return Err(undo.failed(e, &stack.name, &tx).await);
        }
        if let Some(builder) = nodes.keys().next() {
            let built = match self.inner.fleet.host(builder) {
                Ok(h) => crate::stack::build_images(&stack, h.as_ref(), &tx).await,
                Err(e) => Err(e),
            };
            if let Err(e) = built {
                return Err(undo.failed(e, &stack.name, &tx).await);
            }
        } else if stack.services.iter().any(|s| s.build.is_some()) {
            return Err(Error::EngineUnreachable {
                host: "swarm".into(),
                message: "no node of the fleet is reachable to build on".into(),
                source: None,
            });
        }
        undo.keep();
        let timeout = options.dependency_timeout;
        let waits = |spec: &ServiceSpec, condition: &str| {
            let (this, name, condition) = (self.clone(), spec.name.clone(), condition.to_string());
            async move { this.wait_condition(&name, &condition, timeout).await }
        };
        crate::stack::deploy_services(self, &stack, &order, &options, &tx, waits).await
    }

    /// Waits until a service's tasks all run (Swarm reports a task with a healthcheck as running only
    /// once healthy) or, for `service_completed_successfully`, have all completed.
    async fn wait_condition(&self, service: &str, condition: &str, timeout: Duration) -> Result<()> {
        let wait = self.wait_for(timeout);
        loop {
            let svc = self.service(service).await?;
            let id = svc.id.clone().unwrap_or_default();
            let (desired, running) = self.counts(&id).await?;
            let ok = if condition == "service_completed_successfully" {
                let tasks = self.tasks(&id).await?;
                !tasks.is_empty()
                    && tasks.iter().all(|t| t.status.as_ref().and_then(|s| s.state) == Some(bm::TaskState::COMPLETE))
            } else {
                desired > 0 && running >= desired
            };
            if ok {
                return Ok(());
            }
            wait.again(|| format!("waiting for {service} to be {condition}")).await?;
        }
    }
}

#[async_trait]
impl ServiceBackend for Swarm {
    fn kind(&self) -> &'static str {
        "swarm"
    }

    fn rollout(&self, spec: ServiceSpec, options: RolloutOptions) -> ResultStream<RolloutEvent> {
        let this = self.clone();
        crate::stream::from_channel(move |tx| async move { this.rollout_inner(spec, options.force, tx).await })
    }

    fn rollback(&self, service: &str, _options: RolloutOptions) -> ResultStream<RolloutEvent> {
        let (this, service) = (self.clone(), service.to_string());
        crate::stream::from_channel(move |tx| async move { this.rollback_inner(&service, tx).await })
    }

    async fn scale(&self, service: &str, replicas: u32) -> Result<ServiceStatus> {
        crate::spec::check_replicas("replicas", replicas)?;
        let svc = self.service(service).await?;
        let id = svc.id.clone().unwrap_or_default();
        let mut spec = svc.spec.clone().unwrap_or_default();
        let Some(mode) = spec.mode.as_mut().and_then(|m| m.replicated.as_mut()) else {
            return Err(Error::invalid("replicas", format!("{service} is not a replicated service")));
        };
        mode.replicas = Some(i64::from(replicas));
        let (m, docker) = self.client().await?;
        let version = svc.version.and_then(|v| v.index).unwrap_or_default();
        let opts = qp::UpdateServiceOptions { version: version as i32, ..Default::default() };
        docker
            .update_service(&id, spec, opts, None)
            .await
            .map_err(|e| m.object_err(e, "service", service, "scale service"))?;
        let wait = self.wait();
        let hosts = self.node_ids().await;
        loop {
            let st = self.status_of(&self.service(&id).await?, &hosts).await?;
            if st.running == replicas && st.tasks.len() == replicas as usize {
                return Ok(st);
            }
            wait.again(|| format!("scaling {service} to {replicas} ({} running)", st.running)).await?;
        }
    }

    async fn service_status(&self, service: &str) -> Result<ServiceStatus> {
        let svc = self.service(service).await?;
        self.status_of(&svc, &self.node_ids().await).await
    }

    async fn remove_service(&self, service: &str) -> Result<usize> {
        let svc = self.service(service).await?;
        let id = svc.id.clone().unwrap_or_default();
        let n = self.tasks(&id).await?.iter().filter(|t| t.desired_state == Some(bm::TaskState::RUNNING)).count();
        let (m, docker) = self.client().await?;
        docker.delete_service(&id).await.map_err(|e| m.object_err(e, "service", service, "remove service"))?;
        self.wait_containers_gone(service).await?;
        Ok(n)
    }

    /// Read from each node's engine (a task's container), so `tail` and `since` apply per task as they
    /// do on a [`Fleet`]; an unknown service is `not_found`.
    fn service_logs(&self, service: &str, options: &LogOptions) -> ResultStream<ServiceLogLine> {
        let (this, service, options) = (self.clone(), service.to_string(), options.clone());
        Box::pin(async_stream::try_stream! {
            this.service(&service).await?;
            let lines = labelled_logs(this.fleet().clone(), SWARM_SERVICE, service, options);
            for await line in lines {
                yield line?;
            }
        })
    }

    /// Run on each node's engine (Swarm mode has no exec of its own); an unknown service is `not_found`.
    async fn service_exec(
        &self,
        service: &str,
        command: &[String],
        options: &ServiceExecOptions,
    ) -> Result<Vec<TaskExec>> {
        self.service(service).await?;
        labelled_exec(self.fleet(), SWARM_SERVICE, service, command, options).await
    }

    /// Sampled on each node's engine; an unknown service is `not_found`.
    async fn service_stats(&self, service: &str) -> Result<Vec<TaskStats>> {
        self.service(service).await?;
        labelled_stats(self.fleet(), SWARM_SERVICE, service).await
    }

    fn stack_up(&self, stack: Stack, options: StackOptions) -> ResultStream<RolloutEvent> {
        let this = self.clone();
        crate::stream::from_channel(move |tx| async move { this.stack_up_inner(stack, options, tx).await })
    }

    async fn stack_ps(&self, stack: &str) -> Result<Vec<ServiceStatus>> {
        crate::stack::check_stack_name(stack)?;
        let filters = HashMap::from([("label".to_string(), vec![format!("{LABEL_STACK}={stack}")])]);
        let list = read!(self, |m, docker| {
            docker
                .list_services(Some(qp::ListServicesOptions { filters: Some(filters.clone()), status: None }))
                .await
                .map_err(|e| m.object_err(e, "service", stack, "list services"))
        })?;
        let hosts = self.node_ids().await;
        let mut out = Vec::new();
        for svc in &list {
            out.push(self.status_of(svc, &hosts).await?);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn stack_down(&self, stack: &str, remove_volumes: bool) -> Result<StackDownReport> {
        let mut report = StackDownReport::default();
        for st in ServiceBackend::stack_ps(self, stack).await? {
            report.containers += ServiceBackend::remove_service(self, &st.name).await? as u32;
            report.services.push(st.name);
        }
        let (m, docker) = self.client().await?;
        for n in self.stack_networks(stack).await? {
            let id = n.id.unwrap_or_default();
            // Workers release their end of an overlay network a moment after their tasks go.
            let wait = self.wait_for(Duration::from_secs(30));
            loop {
                match docker.remove_network(&id).await.map_err(|e| m.object_err(e, "network", &id, "remove network")) {
                    Ok(()) | Err(Error::NotFound { .. }) => break,
                    Err(e) => wait.again(|| format!("removing network {id} ({e})")).await?,
                }
            }
            report.networks += 1;
        }
        let label = format!("{LABEL_STACK}={stack}");
        let mine = self.objects(true, Some(&label)).await?;
        for name in mine.secrets.keys() {
            self.remove_secret(name).await?;
            report.secrets += 1;
        }
        for name in mine.configs.keys() {
            self.remove_config(name).await?;
            report.configs += 1;
        }
        if remove_volumes {
            let filter = [format!("{LABEL_STACK}={stack}")];
            for h in self.inner.fleet.hosts() {
                let Ok(vols) = h.list_volumes(&filter).await else { continue };
                for v in vols {
                    h.remove_volume(&v.name, false).await?;
                    report.volumes += 1;
                }
            }
        }
        Ok(report)
    }
}

/// A polling wait: its loop checks, then calls [`Wait::again`], which sleeps one interval or, once
/// the deadline has passed, fails with a timeout naming what was being waited for.
struct Wait {
    deadline: Instant,
    timeout: Duration,
    interval: Duration,
}

impl Wait {
    async fn again(&self, waiting_for: impl FnOnce() -> String) -> Result<()> {
        if Instant::now() >= self.deadline {
            return Err(Error::Timeout { host: "swarm".into(), operation: waiting_for(), after: self.timeout });
        }
        tokio::time::sleep(self.interval).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{Healthcheck, LogConfig, Mount, Ulimit};
    use crate::spec::{ServiceFile, ServicePort};

    fn none() -> SwarmObjects {
        SwarmObjects::default()
    }

    #[test]
    fn a_read_moves_to_another_manager_only_when_the_answer_says_this_one_is_gone() {
        let engine = |status, message: &str| Error::Engine { host: "m".into(), status, message: message.into() };
        let gone = [
            engine(
                503,
                "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state.",
            ),
            engine(503, "rpc error: code = Unknown desc = The swarm does not have a leader."),
            Error::EngineUnreachable { host: "m".into(), message: "connection refused".into(), source: None },
            Error::Timeout { host: "m".into(), operation: "list tasks".into(), after: Duration::from_secs(60) },
        ];
        assert!(gone.iter().all(lost_manager));
        let not_gone = [
            engine(503, "service unavailable"),
            engine(500, "not a swarm manager"),
            Error::NotFound { kind: "service".into(), id: "web".into(), host: "m".into(), message: String::new() },
            Error::invalid("replicas", "no"),
        ];
        assert!(!not_gone.iter().any(lost_manager));
    }

    fn nodes() -> BTreeMap<String, String> {
        BTreeMap::from([("df-1".to_string(), "n1".to_string()), ("df-2".to_string(), "n2".to_string())])
    }

    #[test]
    fn maps_every_field_swarm_has() {
        let mut spec = ServiceSpec::new("web", "dockfleet/busybox:latest");
        spec.replicas = 4;
        spec.command = vec!["httpd".into(), "-f".into()];
        spec.env.insert("A".into(), "1".into());
        spec.labels.insert(LABEL_STACK.into(), "blog".into());
        spec.ports = vec![
            ServicePort { target: 80, published: Some(8080), protocol: "tcp".into(), mode: None },
            ServicePort { target: 81, published: Some(0), protocol: "udp".into(), mode: None },
            ServicePort { target: 82, published: None, protocol: "tcp".into(), mode: None },
        ];
        spec.volumes = vec![
            Mount { source: "data".into(), target: "/data".into(), no_copy: true, ..Default::default() },
            Mount {
                source: "/srv".into(),
                target: "/srv".into(),
                read_only: true,
                propagation: Some("rslave".into()),
                ..Default::default()
            },
        ];
        spec.placement.constraints = vec![
            "node.hostname==df-2".into(),
            "zone!=b".into(),
            "node.role==manager".into(),
            "node.platform.arch==x86_64".into(),
        ];
        spec.placement.preferences = vec!["spread=node.labels.zone".into()];
        spec.placement.max_replicas_per_host = Some(2);
        spec.resources.cpu_limit = Some(0.5);
        spec.resources.memory_reservation = Some(64 << 20);
        spec.restart_policy.condition = "on-failure".into();
        spec.restart_policy.max_attempts = 3;
        spec.healthcheck = Some(Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            interval: Some(Duration::from_secs(1)),
            retries: Some(2),
            ..Default::default()
        });
        spec.update_config.order = "stop-first".into();
        spec.update_config.failure_action = "rollback".into();
        spec.update_config.parallelism = 2;
        spec.stop_grace_period = Duration::from_secs(2);
        spec.networks = vec!["blog_default".into()];
        let s = to_swarm(&spec, &nodes(), "host", &none()).unwrap();
        let t = s.task_template.as_ref().unwrap();
        let c = t.container_spec.as_ref().unwrap();
        assert_eq!(c.args.as_deref(), Some(&["httpd".to_string(), "-f".to_string()][..]));
        assert_eq!(c.command, None, "the command is the image's CMD, not its entrypoint");
        assert_eq!((c.dir.as_deref(), c.user.as_deref()), (None, None));
        let with = ServiceSpec {
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
            working_dir: Some("/srv".into()),
            user: Some("65534".into()),
            stop_signal: Some("SIGQUIT".into()),
            ..spec.clone()
        };
        let s2 = to_swarm(&with, &nodes(), "host", &none()).unwrap();
        let c2 = s2.task_template.as_ref().unwrap().container_spec.as_ref().unwrap();
        assert_eq!(
            c2.command.as_deref(),
            Some(&["/bin/sh".to_string(), "-c".to_string()][..]),
            "Swarm's Command is the entrypoint"
        );
        assert_eq!(c2.args, c.args);
        assert_eq!((c2.dir.as_deref(), c2.user.as_deref()), (Some("/srv"), Some("65534")));
        assert_eq!((c.stop_signal.as_deref(), c2.stop_signal.as_deref()), (None, Some("SIGQUIT")));
        let net = |s: &bm::ServiceSpec| s.task_template.as_ref().unwrap().networks.clone().unwrap();
        assert_eq!(net(&s)[0].aliases, None);
        let more = ServiceSpec {
            hostname: Some("{{.Service.Name}}-{{.Task.Slot}}".into()),
            extra_hosts: vec!["db.internal:10.0.0.5".into(), "v6:::1".into(), "gw:host-gateway".into()],
            init: Some(true),
            read_only: true,
            cap_add: vec!["NET_ADMIN".into()],
            cap_drop: vec!["ALL".into()],
            ..spec.clone()
        };
        let s3 = to_swarm(&more, &nodes(), "host", &none()).unwrap();
        let c3 = s3.task_template.as_ref().unwrap().container_spec.as_ref().unwrap();
        assert_eq!(c3.hostname.as_deref(), Some("{{.Service.Name}}-{{.Task.Slot}}"), "Swarm fills them");
        assert_eq!(c3.hosts.as_deref().unwrap(), ["10.0.0.5 db.internal", "::1 v6", "host-gateway gw"]);
        assert_eq!((c3.init, c3.read_only), (Some(true), Some(true)));
        assert_eq!(
            (c3.capability_add.as_deref(), c3.capability_drop.as_deref()),
            (Some(&more.cap_add[..]), Some(&more.cap_drop[..]))
        );
        assert_eq!((c.hosts.as_ref(), c.init, c.read_only, c.capability_add.as_ref()), (None, None, None, None));
        let runtime = ServiceSpec {
            logging: Some(LogConfig {
                driver: "local".into(),
                options: BTreeMap::from([("max-size".into(), "1m".into())]),
            }),
            ulimits: vec![Ulimit { name: "nofile".into(), soft: 1024, hard: 4096 }],
            sysctls: BTreeMap::from([("net.core.somaxconn".into(), "1024".into())]),
            tmpfs: vec!["/run".into(), "/tmp:size=64m,mode=1777".into()],
            ..spec.clone()
        };
        let s4 = to_swarm(&runtime, &nodes(), "host", &none()).unwrap();
        let t4 = s4.task_template.as_ref().unwrap();
        assert_eq!(t4.container_spec.as_ref().unwrap().dns_config, None);
        let labelled = ServiceSpec {
            security_opt: vec!["label:user:system_u".into(), "label=level:s0:c1,c2".into(), "label=type:t".into()],
            ..spec.clone()
        };
        let p = to_swarm(&labelled, &nodes(), "host", &none()).unwrap();
        let ctx = p.task_template.unwrap().container_spec.unwrap().privileges.unwrap().se_linux_context.unwrap();
        assert_eq!(
            (ctx.disable, ctx.user.as_deref(), ctx.role, ctx.typ.as_deref(), ctx.level.as_deref()),
            (None, Some("system_u"), None, Some("t"), Some("s0:c1,c2"))
        );
        let unlabelled =
            ServiceSpec { security_opt: vec!["label=disable".into()], allow_privileged: true, ..spec.clone() };
        let p = to_swarm(&unlabelled, &nodes(), "host", &none()).unwrap();
        let ctx = p.task_template.unwrap().container_spec.unwrap().privileges.unwrap().se_linux_context.unwrap();
        assert_eq!(ctx.disable, Some(true));
        assert_eq!(
            to_swarm(&spec, &nodes(), "host", &none())
                .unwrap()
                .task_template
                .unwrap()
                .container_spec
                .unwrap()
                .privileges,
            None
        );
        let shm = ServiceSpec { shm_size: Some(256 << 20), ..spec.clone() };
        let s6 = to_swarm(&shm, &nodes(), "host", &none()).unwrap();
        let m = s6.task_template.unwrap().container_spec.unwrap().mounts.unwrap();
        let dev_shm = m.iter().find(|m| m.target.as_deref() == Some("/dev/shm")).expect("a tmpfs at /dev/shm");
        assert_eq!(
            (dev_shm.typ, dev_shm.tmpfs_options.as_ref().unwrap().size_bytes),
            (Some(bm::MountType::TMPFS), Some(256 << 20))
        );
        let resolving = ServiceSpec { dns: vec!["10.0.0.2".into()], dns_opt: vec!["ndots:2".into()], ..spec.clone() };
        let s5 = to_swarm(&resolving, &nodes(), "host", &none()).unwrap();
        let dc = s5.task_template.unwrap().container_spec.unwrap().dns_config.unwrap();
        assert_eq!(
            (dc.nameservers.unwrap(), dc.search.unwrap(), dc.options.unwrap()),
            (resolving.dns.clone(), vec![], resolving.dns_opt.clone())
        );
        let d = t4.log_driver.as_ref().unwrap();
        assert_eq!((d.name.as_deref(), d.options.as_ref().unwrap()["max-size"].as_str()), (Some("local"), "1m"));
        let c4 = t4.container_spec.as_ref().unwrap();
        assert_eq!(c4.ulimits.as_ref().unwrap()[0].hard, Some(4096));
        assert_eq!(c4.sysctls.as_ref().unwrap()["net.core.somaxconn"], "1024");
        let tmpfs: Vec<_> =
            c4.mounts.as_ref().unwrap().iter().filter(|m| m.typ == Some(bm::MountType::TMPFS)).collect();
        assert_eq!((tmpfs[0].target.as_deref(), tmpfs[1].target.as_deref()), (Some("/run"), Some("/tmp")));
        let o = tmpfs[1].tmpfs_options.as_ref().unwrap();
        assert_eq!((o.size_bytes, o.mode), (Some(64 << 20), Some(0o1777)));
        for (bad, field) in [
            (ServiceSpec { tmpfs: vec!["/tmp:noexec".into()], ..spec.clone() }, "tmpfs[0]"),
            (ServiceSpec { logging: Some(LogConfig::default()), ..spec.clone() }, "logging.driver"),
        ] {
            let e = to_swarm(&bad, &nodes(), "host", &none()).unwrap_err();
            assert!(e.to_string().contains(field), "{e}");
        }
        let aliased = ServiceSpec { network_aliases: vec!["wordpress".into()], ..spec.clone() };
        let n = net(&to_swarm(&aliased, &nodes(), "host", &none()).unwrap());
        assert_eq!(
            (n[0].target.as_deref(), n[0].aliases.as_deref()),
            (Some("blog_default"), Some(&["wordpress".into()][..]))
        );
        assert_eq!(c.env.as_deref(), Some(&["A=1".to_string()][..]));
        assert_eq!(c.labels.as_ref().unwrap()[LABEL_SPEC_HASH], spec_hash(&spec));
        assert_eq!(c.stop_grace_period, Some(2_000_000_000));
        assert_eq!(c.health_check.as_ref().unwrap().interval, Some(1_000_000_000));
        let mounts = c.mounts.as_ref().unwrap();
        assert_eq!(mounts[0].typ, Some(bm::MountType::VOLUME));
        assert_eq!(mounts[0].volume_options.as_ref().unwrap().labels.as_ref().unwrap()[LABEL_STACK], "blog");
        assert_eq!(mounts[0].volume_options.as_ref().unwrap().no_copy, Some(true));
        assert_eq!(mounts[1].typ, Some(bm::MountType::BIND));
        assert_eq!(mounts[1].read_only, Some(true));
        let propagation = mounts[1].bind_options.as_ref().unwrap().propagation;
        assert_eq!(propagation, Some(bm::MountBindOptionsPropagationEnum::RSLAVE));
        let mut relabelled = spec.clone();
        relabelled.volumes[1].selinux = Some("z".into());
        let e = to_swarm(&relabelled, &nodes(), "host", &none()).unwrap_err().to_string();
        assert!(e.contains("volumes[1].selinux"), "{e}");
        let p = t.placement.as_ref().unwrap();
        assert_eq!(
            p.constraints.as_deref().unwrap(),
            &[
                "node.id==n2".to_string(),
                "node.labels.zone!=b".into(),
                "node.role==manager".into(),
                "node.platform.arch==x86_64".into()
            ]
        );
        assert_eq!(
            p.preferences.as_ref().unwrap()[0].spread.as_ref().unwrap().spread_descriptor.as_deref(),
            Some("node.labels.zone")
        );
        assert_eq!(p.max_replicas, Some(2));
        let r = t.resources.as_ref().unwrap();
        assert_eq!(r.limits.as_ref().unwrap().nano_cpus, Some(500_000_000));
        assert_eq!(r.reservations.as_ref().unwrap().memory_bytes, Some(64 << 20));
        assert_eq!(r.limits.as_ref().unwrap().pids, None, "unset: Swarm's default");
        let limited = ServiceSpec {
            resources: crate::spec::Resources { pids_limit: Some(100), ..spec.resources.clone() },
            group_add: vec!["1234".into()],
            ..spec.clone()
        };
        let l = to_swarm(&limited, &nodes(), "host", &none()).unwrap().task_template.unwrap();
        assert_eq!(l.resources.unwrap().limits.unwrap().pids, Some(100));
        assert_eq!(l.container_spec.unwrap().groups, Some(vec!["1234".to_string()]));
        let unlimited = ServiceSpec {
            resources: crate::spec::Resources { pids_limit: Some(-1), ..Default::default() },
            ..spec.clone()
        };
        let u = to_swarm(&unlimited, &nodes(), "host", &none()).unwrap().task_template.unwrap();
        assert_eq!(u.resources.unwrap().limits.unwrap().pids, Some(0), "Swarm's unlimited");
        let rp = t.restart_policy.as_ref().unwrap();
        assert_eq!(rp.condition, Some(bm::TaskSpecRestartPolicyConditionEnum::ON_FAILURE));
        assert_eq!(rp.max_attempts, Some(3));
        assert_eq!(rp.delay, Some(5_000_000_000), "Swarm's default delay");
        assert_eq!(t.networks.as_ref().unwrap()[0].target.as_deref(), Some("blog_default"));
        assert_eq!(s.mode.as_ref().unwrap().replicated.as_ref().unwrap().replicas, Some(4));
        let u = s.update_config.as_ref().unwrap();
        assert_eq!(u.failure_action, Some(bm::ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK));
        assert_eq!(u.parallelism, Some(2));
        let ports = s.endpoint_spec.as_ref().unwrap().ports.as_ref().unwrap();
        assert_eq!(ports.len(), 2, "an unpublished port is not an endpoint port");
        assert_eq!(ports[0].published_port, Some(8080));
        assert_eq!(ports[0].publish_mode, Some(bm::EndpointPortConfigPublishModeEnum::HOST));
        assert_eq!(ports[1].published_port, None, "0 lets the engine choose");
        assert_eq!(ports[1].protocol, Some(bm::EndpointPortConfigProtocolEnum::UDP));
        let back: ServiceSpec = serde_json::from_str(&s.labels.as_ref().unwrap()[LABEL_SPEC]).unwrap();
        assert_eq!(back, spec);
        // A host outside the fleet keeps Swarm's own hostname constraint.
        spec.placement.constraints = vec!["node.hostname!=elsewhere".into()];
        let s = to_swarm(&spec, &nodes(), "ingress", &none()).unwrap();
        let t = s.task_template.unwrap();
        assert_eq!(t.placement.unwrap().constraints.unwrap(), vec!["node.hostname!=elsewhere".to_string()]);
        let endpoint = s.endpoint_spec.unwrap();
        assert_eq!(endpoint.mode, None, "Swarm's default, vip");
        let ports = endpoint.ports.unwrap();
        assert_eq!(ports[0].publish_mode, Some(bm::EndpointPortConfigPublishModeEnum::INGRESS));
        // dnsrr: each task's own address, which the routing mesh cannot publish on.
        let mode = |m: &str, publish: &str| {
            let s = ServiceSpec { endpoint_mode: Some(m.into()), ..spec.clone() };
            to_swarm(&s, &nodes(), publish, &none()).map(|s| s.endpoint_spec.unwrap().mode)
        };
        assert_eq!(mode("dnsrr", "host").unwrap(), Some(bm::EndpointSpecModeEnum::DNSRR));
        assert_eq!(mode("vip", "ingress").unwrap(), Some(bm::EndpointSpecModeEnum::VIP));
        assert!(mode("dnsrr", "ingress").unwrap_err().to_string().contains("endpoint_mode"));
        assert!(mode("rr", "host").unwrap_err().to_string().contains("endpoint_mode"));
        // A terminal and an open standard input, as Swarm's ContainerSpec has them.
        let console = ServiceSpec { tty: true, stdin_open: true, ..spec.clone() };
        let c = to_swarm(&console, &nodes(), "host", &none()).unwrap().task_template.unwrap().container_spec.unwrap();
        assert_eq!((c.tty, c.open_stdin), (Some(true), Some(true)));
        // Nor service affinity.
        let runs = ServiceSpec {
            placement: crate::spec::Placement { constraints: vec!["node.runs==db".into()], ..Default::default() },
            ..spec.clone()
        };
        let e = to_swarm(&runs, &nodes(), "host", &none()).unwrap_err().to_string();
        assert!(e.contains("placement.constraints[0]") && e.contains("swarmkit#1442"), "{e}");
        // Nor the host's process namespace.
        let pid = ServiceSpec { pid: Some("host".into()), allow_privileged: true, ..spec.clone() };
        assert!(to_swarm(&pid, &nodes(), "host", &none()).unwrap_err().to_string().contains("pid"));
        // Swarm has no devices: refused before any engine call.
        let device = ServiceSpec { devices: vec!["/dev/fuse".into()], ..spec.clone() };
        assert!(to_swarm(&device, &nodes(), "host", &none()).unwrap_err().to_string().contains("devices[0]"));
        let ipc = ServiceSpec { ipc: Some("shareable".into()), ..spec.clone() };
        assert!(to_swarm(&ipc, &nodes(), "host", &none()).unwrap_err().to_string().contains("ipc"));
        let oom = ServiceSpec { oom_score_adj: Some(500), ..spec.clone() };
        assert!(to_swarm(&oom, &nodes(), "host", &none()).unwrap_err().to_string().contains("oom_score_adj"));
        let gvisor = ServiceSpec { runtime: Some("runsc".into()), ..spec.clone() };
        assert!(to_swarm(&gvisor, &nodes(), "host", &none()).unwrap_err().to_string().contains("runtime"));
        // Nor CPU weights, CPU sets or swap limits.
        let r = crate::spec::Resources { memory_limit: Some(64 << 20), ..Default::default() };
        for (resources, field) in [
            (crate::spec::Resources { cpu_shares: Some(512), ..r.clone() }, "resources.cpu_shares"),
            (crate::spec::Resources { cpuset_cpus: Some("0".into()), ..r.clone() }, "resources.cpuset_cpus"),
            (crate::spec::Resources { memory_swap_limit: Some(-1), ..r.clone() }, "resources.memory_swap_limit"),
            (crate::spec::Resources { memory_swappiness: Some(0), ..r.clone() }, "resources.memory_swappiness"),
            (crate::spec::Resources { oom_kill_disable: true, ..r.clone() }, "resources.oom_kill_disable"),
        ] {
            let e = to_swarm(&ServiceSpec { resources, ..spec.clone() }, &nodes(), "host", &none()).unwrap_err();
            assert!(e.to_string().contains(field), "{e}");
        }
        // On the host network nothing is published (Swarm would refuse the task), the container's
        // label names the ports for discovery, and a node runs one task.
        let host = ServiceSpec {
            networks: vec!["host".into()],
            ports: vec![ServicePort { target: 9100, published: Some(9100), ..Default::default() }],
            network_aliases: Vec::new(),
            ..spec.clone()
        };
        let h = to_swarm(&host, &nodes(), "ingress", &none()).unwrap();
        assert_eq!(h.endpoint_spec.unwrap().ports, Some(vec![]));
        let t = h.task_template.unwrap();
        assert_eq!(t.networks.unwrap()[0].target.as_deref(), Some("host"));
        assert_eq!(t.placement.unwrap().max_replicas, Some(1));
        assert_eq!(t.container_spec.unwrap().labels.unwrap()[crate::reconcile::LABEL_HOST_PORTS], "9100/tcp");
        assert!(!h.labels.unwrap().contains_key(crate::reconcile::LABEL_HOST_PORTS), "on the containers only");
        // A port's own mode overrides the swarm's.
        let port = |mode: Option<&str>| ServicePort {
            target: 80,
            published: Some(8080),
            mode: mode.map(String::from),
            ..Default::default()
        };
        let modes = |ports: Vec<ServicePort>, publish: &str, endpoint: Option<&str>| {
            let s = ServiceSpec { ports, endpoint_mode: endpoint.map(String::from), ..spec.clone() };
            to_swarm(&s, &nodes(), publish, &none()).map(|s| {
                s.endpoint_spec.unwrap().ports.unwrap().into_iter().map(|p| p.publish_mode).collect::<Vec<_>>()
            })
        };
        use bm::EndpointPortConfigPublishModeEnum::{HOST, INGRESS};
        let mixed = vec![port(Some("ingress")), ServicePort { published: Some(8081), ..port(None) }];
        assert_eq!(modes(mixed.clone(), "host", None).unwrap(), [Some(INGRESS), Some(HOST)]);
        assert_eq!(modes(vec![port(Some("host"))], "ingress", None).unwrap(), [Some(HOST)]);
        assert!(modes(mixed, "host", Some("dnsrr")).unwrap_err().to_string().contains("endpoint_mode"));
        assert_eq!(modes(vec![port(Some("host"))], "ingress", Some("dnsrr")).unwrap(), [Some(HOST)]);
        let unpublished = ServiceSpec { endpoint_mode: Some("dnsrr".into()), ports: vec![], ..spec.clone() };
        let s = to_swarm(&unpublished, &nodes(), "ingress", &none()).unwrap();
        assert_eq!(s.endpoint_spec.unwrap().mode, Some(bm::EndpointSpecModeEnum::DNSRR));
        // Secrets and configs by name: the IDs come from the swarm; one it lacks is refused by field.
        spec.secrets = vec![
            ServiceFile::new("db_pw"),
            ServiceFile { target: "pw".into(), mode: 0o400, ..ServiceFile::new("api") },
        ];
        spec.configs = vec![ServiceFile::new("conf")];
        let objects = SwarmObjects {
            secrets: BTreeMap::from([("db_pw".into(), "s1".into()), ("api".into(), "s2".into())]),
            configs: BTreeMap::from([("conf".into(), "c1".into())]),
            ..Default::default()
        };
        let c = to_swarm(&spec, &nodes(), "host", &objects).unwrap().task_template.unwrap().container_spec.unwrap();
        let secrets = c.secrets.unwrap();
        assert_eq!(secrets[0].secret_id.as_deref(), Some("s1"));
        assert_eq!(secrets[0].file.as_ref().unwrap().name.as_deref(), Some("db_pw"));
        assert_eq!(secrets[1].file.as_ref().unwrap().name.as_deref(), Some("pw"));
        assert_eq!(secrets[1].file.as_ref().unwrap().mode, Some(0o400));
        let configs = c.configs.unwrap();
        assert_eq!(
            (configs[0].config_id.as_deref(), configs[0].file.as_ref().unwrap().name.as_deref()),
            (Some("c1"), Some("/conf"))
        );
        let e = to_swarm(&spec, &nodes(), "host", &none()).unwrap_err();
        assert!(e.to_string().contains("secrets[0].source") && e.to_string().contains("db_pw"), "{e}");
        let global = ServiceSpec { mode: "global".into(), ..ServiceSpec::new("g", "i") };
        assert!(to_swarm(&global, &nodes(), "host", &none()).unwrap().mode.unwrap().global.is_some());
    }

    #[test]
    fn when_a_watch_ends() {
        use bm::ServiceUpdateStatusStateEnum as U;
        let poll = |state, update_expected, running, pending, desired| Settled {
            state,
            update_expected,
            running,
            pending,
            desired,
        };
        let ends = |s: Settled, phase| match s.verdict(phase) {
            None => "waits",
            Some(Watched::Completed) => "completed",
            Some(Watched::Paused(_)) => "paused",
            Some(Watched::RollingBack) => "rolls back",
        };
        // A new service: done once every task runs.
        assert_eq!(ends(poll(None, false, 3, 0, 3), "update"), "completed");
        assert_eq!(ends(poll(None, false, 2, 1, 3), "update"), "waits");
        // An update Swarm has not picked up yet, or is carrying out, or finished with a task still starting.
        assert_eq!(ends(poll(None, true, 3, 0, 3), "update"), "waits");
        assert_eq!(ends(poll(Some(U::UPDATING), true, 3, 0, 3), "update"), "waits");
        assert_eq!(ends(poll(Some(U::COMPLETED), true, 2, 1, 3), "update"), "waits");
        assert_eq!(ends(poll(Some(U::COMPLETED), true, 3, 0, 3), "update"), "completed");
        assert_eq!(ends(poll(Some(U::PAUSED), true, 1, 2, 3), "update"), "paused");
        // Swarm rolling back, or already done rolling back before this poll: followed either way.
        assert_eq!(ends(poll(Some(U::ROLLBACK_STARTED), true, 0, 3, 3), "update"), "rolls back");
        assert_eq!(ends(poll(Some(U::ROLLBACK_COMPLETED), true, 0, 3, 3), "update"), "rolls back");
        assert_eq!(ends(poll(Some(U::ROLLBACK_STARTED), false, 3, 0, 3), "rollback"), "waits");
        assert_eq!(ends(poll(Some(U::ROLLBACK_COMPLETED), false, 3, 0, 3), "rollback"), "completed");
        assert_eq!(ends(poll(Some(U::ROLLBACK_PAUSED), false, 1, 2, 3), "rollback"), "paused");
    }

    #[test]
    fn refuses_what_swarm_cannot_express() {
        let base = ServiceSpec::new("web", "dockfleet/busybox:latest");
        let mut s = base.clone();
        s.placement.strategy = "binpack".into();
        let e = to_swarm(&s, &nodes(), "host", &none()).unwrap_err();
        assert_eq!(e.code(), "invalid_argument");
        assert!(e.to_string().contains("placement.strategy"), "{e}");
        let s = ServiceSpec { privileged: true, allow_privileged: true, ..base.clone() };
        assert!(to_swarm(&s, &nodes(), "host", &none()).unwrap_err().to_string().contains("privileged"));
        for opt in ["no-new-privileges", "seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"] {
            let s = ServiceSpec {
                security_opt: vec!["label=level:s0:c1,c2".into(), opt.into()],
                allow_privileged: true,
                ..base.clone()
            };
            let e = to_swarm(&s, &nodes(), "host", &none()).unwrap_err();
            assert!(e.to_string().contains("security_opt[1]") && e.to_string().contains("API 1.41"), "{opt}: {e}");
        }
        let mut s = base.clone();
        s.rollback_config.failure_action = "rollback".into();
        assert!(to_swarm(&s, &nodes(), "host", &none())
            .unwrap_err()
            .to_string()
            .contains("rollback_config.failure_action"));
        let s = ServiceSpec { shutdown_delay: Duration::from_secs(2), ..base.clone() };
        assert!(to_swarm(&s, &nodes(), "host", &none()).unwrap_err().to_string().contains("shutdown_delay"));
        let s = ServiceSpec { name: "Bad Name".into(), ..base };
        assert!(to_swarm(&s, &nodes(), "host", &none()).unwrap_err().to_string().contains("name"));
        let o = SwarmOptions { publish_mode: "mesh".into(), ..Default::default() };
        assert!(o.validate().unwrap_err().to_string().contains("publish_mode"));
    }
}
