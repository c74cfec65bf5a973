//! [`ServiceSpec`]: a replicated (or global) service, what the scheduler places and the reconciler keeps
//! running. Field names and defaults follow Docker Swarm mode's where Swarm has them, so a compose
//! `deploy:` section maps onto it one to one.
//!
//! [`ServiceSpec::validate`] checks everything that can be checked without an engine and names the field
//! path of the first problem (`ports[1].published`, `placement.constraints[0]`, …).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::host::{Healthcheck, Mount};

/// A port of a service: `target` inside the container, optionally `published` on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePort {
    /// Port inside the container.
    pub target: u16,
    /// Port on each host running a task. A fixed port can be bound once per host, so it also limits
    /// the service to one task per host; `0` lets each host's engine choose a free port (compose's
    /// `"80"` short form), which discovery then reports; `None` does not publish the port. On the
    /// host network (`networks: ["host"]`) a task listens on its host's own ports: every port counts
    /// as bound on the host at `target`, and `published` must be unset, 0 or equal to `target`.
    #[serde(default)]
    pub published: Option<u16>,
    /// `tcp` (default) or `udp`.
    #[serde(default = "tcp")]
    pub protocol: String,
    /// How Swarm mode publishes it: `host` (on the node running each task) or `ingress` (the routing
    /// mesh, on every node); `None`: [`crate::SwarmOptions::publish_mode`]. Plain engines publish on
    /// the host running each task whichever is set (compose's long-syntax `mode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

fn tcp() -> String {
    "tcp".into()
}

impl Default for ServicePort {
    fn default() -> Self {
        ServicePort { target: 0, published: None, protocol: tcp(), mode: None }
    }
}

/// A Swarm secret or config made available to a service's tasks as a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceFile {
    /// Name of the secret or config (see [`crate::Swarm::create_secret`]).
    pub source: String,
    /// Where the file appears: for a secret a file name under `/run/secrets/` (default: `source`), for a
    /// config an absolute path (default: `/source`).
    pub target: String,
    /// File mode (default `0o444`).
    pub mode: u32,
}

impl Default for ServiceFile {
    fn default() -> Self {
        ServiceFile { source: String::new(), target: String::new(), mode: 0o444 }
    }
}

impl ServiceFile {
    /// A file named after the object, mode `0o444`.
    pub fn new(source: impl Into<String>) -> Self {
        ServiceFile { source: source.into(), ..Default::default() }
    }

    /// The target with its default filled in (`source` for a secret, `/source` for a config).
    pub(crate) fn target(&self, secret: bool) -> String {
        match (self.target.is_empty(), secret) {
            (false, _) => self.target.clone(),
            (true, true) => self.source.clone(),
            (true, false) => format!("/{}", self.source),
        }
    }
}

/// The constraint keys of a host's platform: its engine's OS type and architecture.
pub(crate) const PLATFORM_OS: &str = "node.platform.os";
pub(crate) const PLATFORM_ARCH: &str = "node.platform.arch";

/// Where tasks may go and how they are spread.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Placement {
    /// Every constraint must hold on a host: `role==manager`, `zone!=b`, `node.hostname==df-1`,
    /// `node.labels.disk==ssd` (Swarm's spelling is accepted too; `node.role` is the `role` label),
    /// `node.platform.os==linux`, `node.platform.arch==x86_64` (what the host's engine reports).
    pub constraints: Vec<String>,
    /// Spread preferences, applied in order: `zone` or Swarm's `spread=node.labels.zone` spreads tasks
    /// evenly over the values of that label before spreading over hosts.
    pub preferences: Vec<String>,
    /// At most this many tasks of the service on one host (`None`: no limit).
    pub max_replicas_per_host: Option<u32>,
    /// `spread` (default: fewest tasks first), `binpack` (fullest host that still fits first) or
    /// `random` (seeded).
    pub strategy: String,
}

/// CPU and memory reservations (what the scheduler sets aside) and limits (what the engine enforces).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// CPUs reserved per task.
    pub cpu_reservation: Option<f64>,
    /// CPU limit per task.
    pub cpu_limit: Option<f64>,
    /// Memory reserved per task, bytes.
    pub memory_reservation: Option<u64>,
    /// Memory limit per task, bytes.
    pub memory_limit: Option<u64>,
    /// Most processes (and threads) per task (`-1`: unlimited; compose's `pids_limit` or
    /// `deploy.resources.limits.pids`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// Each task's CPU weight against the other containers of its host while its CPUs are all busy
    /// (`docker run --cpu-shares`, compose's `cpu_shares`; the engine's default weight is 1024), 2
    /// to 262144. Swarm mode has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u64>,
    /// The CPUs each task may run on, as `0-3` or `0,2` (`docker run --cpuset-cpus`, compose's
    /// `cpuset`): tasks go only to hosts that have them. Swarm mode has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    /// Memory and swap together per task, bytes (`docker run --memory-swap`, compose's
    /// `memswap_limit`): at least `memory_limit`, which it needs (equal to it: no swap); `-1`, swap
    /// without limit. Swarm mode has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swap_limit: Option<i64>,
    /// How readily the kernel swaps out each task's anonymous memory, 0 to 100 (compose's
    /// `mem_swappiness`; 0: only to avert running out). Swarm mode has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swappiness: Option<u8>,
    /// A task at its memory limit waits for memory instead of having a process killed (compose's
    /// `oom_kill_disable`); it needs `memory_limit`, without which the whole host could stall.
    /// Swarm mode has none.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub oom_kill_disable: bool,
}

/// When a task that stopped is replaced (Swarm's `restart_policy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceRestartPolicy {
    /// `any` (default), `on-failure` or `none`.
    pub condition: String,
    /// Wait between restart attempts (default 5 s).
    #[serde(with = "crate::serde_ms")]
    pub delay: Duration,
    /// Attempts before giving up; 0 (default) means no limit.
    pub max_attempts: u32,
    /// Window in which attempts are counted; zero (default) means since the task was created.
    #[serde(with = "crate::serde_ms")]
    pub window: Duration,
}

impl Default for ServiceRestartPolicy {
    fn default() -> Self {
        ServiceRestartPolicy {
            condition: "any".into(),
            delay: Duration::from_secs(5),
            max_attempts: 0,
            window: Duration::ZERO,
        }
    }
}

/// How an update (or a rollback) replaces tasks (Swarm's `update_config` / `rollback_config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdateConfig {
    /// Tasks replaced at once (default 1; 0 means all at once).
    pub parallelism: u32,
    /// Wait between batches (default 0).
    #[serde(with = "crate::serde_ms")]
    pub delay: Duration,
    /// `stop-first` (default: the old task stops, then the new one starts; if it cannot start, the old
    /// one runs again) or `start-first` (the new task is healthy before the old one stops, so the
    /// service never drops below its replica count).
    pub order: String,
    /// How long a new task is watched for failure after it starts (default 5 s).
    #[serde(with = "crate::serde_ms")]
    pub monitor: Duration,
    /// What to do when too many tasks fail: `pause` (default), `continue` or `rollback`.
    pub failure_action: String,
    /// Fraction of tasks that may fail before `failure_action` applies (default 0).
    pub max_failure_ratio: f64,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            parallelism: 1,
            delay: Duration::ZERO,
            order: "stop-first".into(),
            monitor: Duration::from_secs(5),
            failure_action: "pause".into(),
            max_failure_ratio: 0.0,
        }
    }
}

/// The longest [`ServiceSpec::shutdown_delay`].
pub(crate) const MAX_SHUTDOWN_DELAY: Duration = Duration::from_secs(3600);

/// The most replicas a service may ask for. Planning holds every task in memory (about 270 bytes each:
/// 10 million took 2.7 GB), so a slip such as `replicas: 100000000` would take the process down
/// instead of failing; a million is far above any fleet of Docker engines and what the scheduler
/// benchmark places.
pub(crate) const MAX_REPLICAS: u32 = 1_000_000;

/// Refuses a replica count over [`MAX_REPLICAS`], naming `field`.
pub(crate) fn check_replicas(field: &str, replicas: u32) -> Result<()> {
    if replicas > MAX_REPLICAS {
        return Err(Error::invalid(field, format!("{replicas} is over the limit of {MAX_REPLICAS}")));
    }
    Ok(())
}

/// A service: what to run, how many, where, and how to update it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceSpec {
    /// Service name: `[a-z0-9][a-z0-9_.-]*`, at most 63 characters (it prefixes container names).
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Command; the image's when empty.
    pub command: Vec<String>,
    /// Entrypoint replacing the image's (`None`: the image's; compose's `entrypoint`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Working directory of the command, an absolute path (`None`: the image's; compose's `working_dir`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// User the command runs as, `name`, `uid` or `uid:gid` (`None`: the image's; compose's `user`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Supplementary groups of each task's processes, names from the image's `/etc/group` or GIDs
    /// (compose's `group_add`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    /// Signal that stops a task, before `stop_grace_period` runs out (`SIGQUIT` lets nginx finish its
    /// requests; `None`: the image's, else `SIGTERM`; compose's `stop_signal`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Hostname of every task (`None`: the engine's, the container ID's first 12 characters). May
    /// hold Swarm's placeholders `{{.Service.Name}}`, `{{.Task.Slot}}` and `{{.Node.Hostname}}`
    /// (`web-{{.Task.Slot}}`), as `env` values may. The host is the fleet's name of it on plain
    /// engines, and on Swarm, which fills them itself, the node's hostname (the machine's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Entries added to each task's `/etc/hosts`, `name:address`; the address may be `host-gateway`,
    /// the engine's address on the task's network (compose's `extra_hosts`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// Run an init process as PID 1 of each task, which reaps zombies and forwards signals (`None`:
    /// the engine's default, off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// Mount each task's root filesystem read-only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// Capabilities added to the engine's default set (`NET_ADMIN`). Those that hand a container its
    /// host (`ALL`, `SYS_ADMIN`, `SYS_MODULE`, `SYS_RAWIO`, `SYS_PTRACE`, `DAC_READ_SEARCH`, `BPF`) are
    /// refused unless `allow_privileged` is set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Capabilities taken from the default set (`ALL` drops every one).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// Log driver and options of every task (`None`: the engine's default; compose's `logging`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<crate::host::LogConfig>,
    /// Resource limits of each task's processes (compose's `ulimits`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<crate::host::Ulimit>,
    /// Namespaced kernel parameters of each task (`net.core.somaxconn`; compose's `sysctls`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    /// In-memory filesystems, `path[:options]` (`/run:size=64m,mode=1777`); on Swarm only the `size`
    /// and `mode` options (compose's `tmpfs`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    /// Size of each task's `/dev/shm` in bytes (`None`: the engine's 64 MiB; compose's `shm_size`). On
    /// Swarm, which has no such setting, a tmpfs of that size at `/dev/shm`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
    /// DNS servers of each task, IP addresses (compose's `dns`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// DNS search domains (compose's `dns_search`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    /// Resolver options, `ndots:2` (compose's `dns_opt`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_opt: Vec<String>,
    /// Environment. Values may hold Swarm's placeholders (`SLOT={{.Task.Slot}}`; see `hostname`).
    pub env: BTreeMap<String, String>,
    /// Labels on every task's container (the `dockfleet.*` prefix is reserved).
    pub labels: BTreeMap<String, String>,
    /// Ports.
    pub ports: Vec<ServicePort>,
    /// Bind mounts and named volumes.
    pub volumes: Vec<Mount>,
    /// `replicated` (default) or `global` (one task on every eligible host).
    pub mode: String,
    /// Tasks wanted in `replicated` mode (default 1, at most 1,000,000).
    pub replicas: u32,
    /// Placement.
    pub placement: Placement,
    /// Resources.
    pub resources: Resources,
    /// Restart policy.
    pub restart_policy: ServiceRestartPolicy,
    /// Healthcheck (the image's when `None`).
    pub healthcheck: Option<Healthcheck>,
    /// How updates replace tasks.
    pub update_config: UpdateConfig,
    /// How rollbacks replace tasks.
    pub rollback_config: UpdateConfig,
    /// Time between the stop signal and the kill (default 10 s).
    #[serde(with = "crate::serde_ms")]
    pub stop_grace_period: Duration,
    /// Time a task spends out of discovery, still running, before it gets the stop signal (default 0,
    /// none; at most an hour): when a task is removed or replaced (also by removing the service or
    /// taking its stack down, where all its tasks wait out one delay together), its container is first renamed
    /// `<name>.draining`, which the registrator deregisters at once, so that load balancers stop
    /// sending it new requests (the built-in proxy at once, a rendered nginx or HAProxy once it has
    /// reloaded) while it finishes those it has. Nomad's `shutdown_delay`; Swarm mode has none.
    #[serde(with = "crate::serde_ms", skip_serializing_if = "Duration::is_zero")]
    pub shutdown_delay: Duration,
    /// Networks to attach. Several must all be user-defined networks. On those, other containers
    /// reach every task by the service's name (and on plain engines, where a network is a bridge on
    /// each host, the tasks on the same host). `["host"]` runs the tasks in their host's network
    /// namespace (node agents, software that must see the host's interfaces or many ports): they
    /// are then reached at their host's address on the service's `ports` (see [`ServicePort`]),
    /// which bind each host once; discovery registers them there.
    pub networks: Vec<String>,
    /// DNS names the tasks also answer to on their networks (a compose stack's service is reached by
    /// its name in the file, `db`, as well as by the service's, `shop_db`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub network_aliases: Vec<String>,
    /// How the service's name resolves on its networks under Swarm mode (compose's
    /// `deploy.endpoint_mode`): `vip`, one virtual address that Swarm balances over the tasks (Swarm's
    /// default), or `dnsrr`, each task's own address. Plain engines have no virtual address: there the
    /// name resolves to each task's address (on each host's network) whichever is set, and the proxy
    /// or a rendered nginx or HAProxy balances.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_mode: Option<String>,
    /// Run the containers privileged. Refused unless `allow_privileged` is also set.
    pub privileged: bool,
    /// Security options of every task (compose's `security_opt`): `no-new-privileges`,
    /// `seccomp=unconfined` or a seccomp profile's JSON text, `apparmor=<profile>` or `unconfined`,
    /// `label=disable` or `label=<user|role|type|level>:<value>`, `systempaths=unconfined`
    /// (`key:value` is read too). Those that lift the engine's confinement (`unconfined`,
    /// `label=disable`, a seccomp profile whose default action allows) need `allow_privileged`. Swarm
    /// mode (API 1.41) takes only the `label` ones.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// Host devices given to every task, `HOST[:CONTAINER][:PERMISSIONS]` (`/dev/ttyUSB0`,
    /// `/dev/fuse:/dev/fuse:rw`; see [`crate::ContainerSpec::devices`]), compose's `devices`. A device
    /// belongs to its host: pin the service with a placement constraint to the hosts that have it (a
    /// host without it fails the task's create). The host's memory and disks (`/dev/mem`, `/dev/sda`,
    /// `/dev/nvme0n1`, `/dev/mapper/…` and the like) hand a container its host and need
    /// `allow_privileged`. Swarm mode cannot give a service a device (moby/swarmkit#1244): the fleet
    /// backend only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// Give every task a terminal (compose's `tty`; see [`crate::ContainerSpec::tty`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
    /// Keep every task's standard input open, though nothing writes to it (compose's `stdin_open`; see
    /// [`crate::ContainerSpec::stdin_open`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stdin_open: bool,
    /// `host` runs every task in its host's process namespace (compose's `pid: host`), as node
    /// agents that report on every process of a host need; `None`, each task its own. A task's root
    /// then may signal every process of its host, so this needs `allow_privileged`. Swarm mode
    /// (API 1.41) has no process namespace setting: the fleet backend only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// IPC namespace (compose's `ipc`): `private` (each task its own, the engine's usual default),
    /// `shareable` (its own, which other containers of its host may join), `none` (no shared memory
    /// at all) or `host`, the host's: a task's root may then read and write every System V and POSIX
    /// shared memory segment of its host, so `host` needs `allow_privileged`. `None`: the engine's
    /// default. Swarm mode (API 1.41) has no IPC setting: the fleet backend only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
    /// Added to the kernel's OOM score of each task's processes, -1000 to 1000 (compose's
    /// `oom_score_adj`): above 0 they are killed first when the host runs out of memory. Below 0 the
    /// host's other processes are killed before them, so that needs `allow_privileged`. Swarm mode
    /// (API 1.41) has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i32>,
    /// The OCI runtime each task runs with (compose's `runtime`: `runsc` for gVisor, `nvidia` for
    /// GPUs, `kata`…); `None`, the engine's default. Tasks go only to hosts whose engine has it.
    /// Swarm mode (API 1.41) has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Whether hosts pull the image from its registry, with the fleet's credentials for it
    /// ([`crate::Fleet::set_registry_auth`]) or else those `docker login` keeps:
    /// - `None` or `never`: never; a host that lacks the image gets a copy from a host of the fleet
    ///   that has it;
    /// - `missing` (compose's default): the same, and when no host of the fleet has it, each host a
    ///   task starts on that lacks it pulls it;
    /// - `always`: each host a task starts on pulls it first, so a tag that moved starts its new
    ///   image (tasks already running keep theirs until they are replaced).
    ///
    /// Not part of what a task is: changing it replaces no task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<String>,
    /// Opt-in for `privileged`, for the `cap_add`s, `security_opt`s and `devices` that hand a container
    /// its host.
    pub allow_privileged: bool,
    /// Opt-in for binding the host's `/` or the Docker socket, which hand the container the host.
    pub allow_host_mounts: bool,
    /// Swarm secrets mounted into every task (Swarm backend only: plain engines have no secret store).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<ServiceFile>,
    /// Swarm configs mounted into every task (Swarm backend only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<ServiceFile>,
}

impl Default for ServiceSpec {
    fn default() -> Self {
        ServiceSpec {
            name: String::new(),
            image: String::new(),
            command: Vec::new(),
            entrypoint: None,
            working_dir: None,
            user: None,
            group_add: Vec::new(),
            stop_signal: None,
            hostname: None,
            extra_hosts: Vec::new(),
            init: None,
            read_only: false,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            logging: None,
            ulimits: Vec::new(),
            sysctls: BTreeMap::new(),
            tmpfs: Vec::new(),
            shm_size: None,
            dns: Vec::new(),
            dns_search: Vec::new(),
            dns_opt: Vec::new(),
            env: BTreeMap::new(),
            labels: BTreeMap::new(),
            ports: Vec::new(),
            volumes: Vec::new(),
            mode: "replicated".into(),
            replicas: 1,
            placement: Placement::default(),
            resources: Resources::default(),
            restart_policy: ServiceRestartPolicy::default(),
            healthcheck: None,
            update_config: UpdateConfig::default(),
            rollback_config: UpdateConfig::default(),
            stop_grace_period: Duration::from_secs(10),
            shutdown_delay: Duration::ZERO,
            networks: Vec::new(),
            network_aliases: Vec::new(),
            privileged: false,
            security_opt: Vec::new(),
            endpoint_mode: None,
            devices: Vec::new(),
            tty: false,
            stdin_open: false,
            pid: None,
            ipc: None,
            oom_score_adj: None,
            runtime: None,
            pull_policy: None,
            allow_privileged: false,
            allow_host_mounts: false,
            secrets: Vec::new(),
            configs: Vec::new(),
        }
    }
}

/// What a constraint looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstraintKey {
    /// The host's name (`node.hostname`, `hostname`).
    Hostname,
    /// One of the host's labels (`node.labels.K` or plain `K`).
    Label(String),
    /// Whether the host runs a task of the service named by the value (`node.runs==shop_db`: on a
    /// host running one; `!=`: on a host running none). Service affinity, which Swarm mode lacks
    /// (moby/swarmkit#1442): the fleet backend only.
    Runs,
}

/// A parsed placement constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    /// What it looks at.
    pub key: ConstraintKey,
    /// `true` for `==`, `false` for `!=`.
    pub equal: bool,
    /// The value compared with.
    pub value: String,
}

impl Constraint {
    /// Parses `key==value` or `key!=value`; `field` names it in errors.
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        let (key, equal, value) = if let Some((k, v)) = text.split_once("==") {
            (k, true, v)
        } else if let Some((k, v)) = text.split_once("!=") {
            (k, false, v)
        } else {
            return Err(Error::invalid(field, format!("{text:?} is not key==value or key!=value")));
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() || value.is_empty() {
            return Err(Error::invalid(field, format!("{text:?} has an empty key or value")));
        }
        let key = match key {
            "node.hostname" | "hostname" | "node.name" => ConstraintKey::Hostname,
            "node.runs" => ConstraintKey::Runs,
            // A fleet host's role is its `role` label (Swarm's node.role).
            "node.role" => ConstraintKey::Label("role".into()),
            // What the engine reports: its OS type (`linux`) and architecture (`x86_64`), as in Swarm.
            PLATFORM_OS | PLATFORM_ARCH => ConstraintKey::Label(key.into()),
            k => {
                let label = k.strip_prefix("node.labels.").or_else(|| k.strip_prefix("engine.labels.")).unwrap_or(k);
                if label.starts_with("node.") {
                    return Err(Error::invalid(
                        field,
                        format!(
                            "{key:?} is not supported: use node.hostname, node.platform.os, node.platform.arch, \
                             node.runs, node.labels.NAME or a label name"
                        ),
                    ));
                }
                ConstraintKey::Label(label.to_string())
            }
        };
        Ok(Constraint { key, equal, value: value.to_string() })
    }

    /// Whether a host with this name and these labels satisfies the constraint. A `node.runs`
    /// constraint needs the host's services ([`Self::admits`]): here the host runs none.
    pub fn matches(&self, hostname: &str, labels: &BTreeMap<String, String>) -> bool {
        let actual = match &self.key {
            ConstraintKey::Hostname => Some(hostname),
            ConstraintKey::Label(k) => labels.get(k).map(String::as_str),
            ConstraintKey::Runs => None,
        };
        (actual == Some(self.value.as_str())) == self.equal
    }

    /// Whether the host satisfies the constraint, `node.runs` included.
    pub fn admits(&self, host: &crate::schedule::HostState) -> bool {
        match self.key {
            ConstraintKey::Runs => host.services.contains(&self.value) == self.equal,
            _ => self.matches(&host.name, &host.labels),
        }
    }
}

/// Parses a spread preference (`zone`, `node.labels.zone`, `spread=node.labels.zone`) into a label name.
pub fn parse_preference(field: &str, text: &str) -> Result<String> {
    let t = text.trim();
    let t = t.strip_prefix("spread=").unwrap_or(t);
    let t = t.strip_prefix("node.labels.").unwrap_or(t);
    if t.is_empty() || t.contains(['=', ' ']) {
        return Err(Error::invalid(field, format!("{text:?} is not a label name (or spread=node.labels.NAME)")));
    }
    Ok(t.to_string())
}

/// A service's modes (`ServiceSpec::mode`).
pub(crate) const SERVICE_MODES: &[&str] = &["replicated", "global"];
/// How Swarm resolves a service's name (`ServiceSpec::endpoint_mode`).
pub(crate) const ENDPOINT_MODES: &[&str] = &["vip", "dnsrr"];
/// How Swarm publishes a port (`ServicePort::mode`, `SwarmOptions::publish_mode`).
pub(crate) const PUBLISH_MODES: &[&str] = &["host", "ingress"];

pub(crate) fn check_choice(field: &str, value: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(Error::invalid(field, format!("{value:?} is not one of {}", allowed.join(", "))))
    }
}

fn check_update(field: &str, u: &UpdateConfig) -> Result<()> {
    check_choice(&format!("{field}.order"), &u.order, &["stop-first", "start-first"])?;
    check_choice(&format!("{field}.failure_action"), &u.failure_action, &["pause", "continue", "rollback"])?;
    if !(0.0..=1.0).contains(&u.max_failure_ratio) {
        return Err(Error::invalid(format!("{field}.max_failure_ratio"), "must be between 0 and 1"));
    }
    Ok(())
}

/// A start-first update runs the new task beside the old one on the same host, which a fixed published
/// port (bound once per host) makes impossible.
fn check_start_first(field: &str, u: &UpdateConfig, host_ports: &[(u16, &str)]) -> Result<()> {
    if u.order != "start-first" {
        return Ok(());
    }
    if let Some((port, protocol)) = host_ports.first() {
        return Err(Error::invalid(
            format!("{field}.order"),
            format!(
                "start-first cannot start a new task beside the old one: port {port}/{protocol} is bound on a fixed \
                 host port; publish it with published: 0 (each engine picks a port) or use stop-first"
            ),
        ));
    }
    Ok(())
}

/// Paths whose bind mount hands a container the host.
/// Capabilities that let a container take over its host (load modules, mount, read any file,
/// trace host processes, …), refused in `cap_add` without `allow_privileged`.
const HOST_TAKEOVER_CAPS: &[&str] =
    &["ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "SYS_PTRACE", "DAC_READ_SEARCH", "BPF"];

/// What Swarm's placeholders stand for in one task.
pub(crate) struct Placeholders<'a> {
    /// `{{.Service.Name}}`.
    pub service: &'a str,
    /// `{{.Task.Slot}}`.
    pub slot: u32,
    /// `{{.Node.Hostname}}`: the fleet's name of the host placing the task; left as it is without one.
    pub host: Option<&'a str>,
}

/// Fills Swarm's placeholders `{{.Service.Name}}`, `{{.Task.Slot}}` and `{{.Node.Hostname}}` (spaces
/// inside the braces allowed) in a hostname or an environment value, as Swarm does. Any other `{{.…}}`
/// is an error naming `field`, as Swarm fails such a task; a `{{` not followed by `.` is text.
pub(crate) fn fill_placeholders(field: &str, text: &str, p: &Placeholders<'_>) -> Result<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        if !after.trim_start().starts_with('.') {
            out.push_str("{{");
            rest = after;
            continue;
        }
        let end = after
            .find("}}")
            .ok_or_else(|| Error::invalid(field, format!("{text:?} has a `{{{{.` without its `}}}}`")))?;
        match after[..end].trim() {
            ".Service.Name" => out.push_str(p.service),
            ".Task.Slot" => out.push_str(&p.slot.to_string()),
            ".Node.Hostname" => out.push_str(p.host.unwrap_or("{{.Node.Hostname}}")),
            other => {
                return Err(Error::invalid(
                    field,
                    format!(
                        "{{{{{other}}}}} is not a placeholder dockfleet fills \
                         ({{{{.Service.Name}}}}, {{{{.Task.Slot}}}}, {{{{.Node.Hostname}}}})"
                    ),
                ))
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether `n` is a service name: `[a-z0-9][a-z0-9_.-]*`, at most 63 characters.
fn is_service_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 63
        && n.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
}

/// Checks labels a user gives (a service's, a stack network's or volume's): each has a key, and the
/// `dockfleet.` prefix is left to dockfleet's own; the error names `field.KEY`.
pub(crate) fn check_labels(field: &str, labels: &BTreeMap<String, String>) -> Result<()> {
    for k in labels.keys() {
        if k.is_empty() || k.starts_with("dockfleet.") {
            return Err(Error::invalid(
                format!("{field}.{k}"),
                "a label needs a key, and the dockfleet. prefix is reserved for dockfleet's own labels",
            ));
        }
    }
    Ok(())
}

/// Device names (prefixes) of a host's memory and disks: a container given one reads and writes
/// the host's memory or filesystems.
const HOST_TAKEOVER_DEVICES: &[&str] = &[
    "/dev/mem",
    "/dev/kmem",
    "/dev/port",
    "/dev/sd",
    "/dev/hd",
    "/dev/vd",
    "/dev/xvd",
    "/dev/nvme",
    "/dev/mmcblk",
    "/dev/dm-",
    "/dev/mapper/",
    "/dev/md",
    "/dev/loop",
    "/dev/disk/",
    "/dev/root",
    "/dev/block/",
];

/// Whether giving a container the host device `path` hands it its host.
fn takes_over_host_device(path: &str) -> bool {
    HOST_TAKEOVER_DEVICES.iter().any(|p| path.starts_with(p))
}

const HOST_TAKEOVER_PATHS: &[&str] = &["/", "/var/run/docker.sock", "/run/docker.sock", "/var/run", "/run"];

/// Whether binding the host path `path` into a container hands the container its host.
pub(crate) fn takes_over_host(path: &str) -> bool {
    let p = path.trim_end_matches('/');
    HOST_TAKEOVER_PATHS.contains(&if p.is_empty() && path.starts_with('/') { "/" } else { p })
}

impl ServiceSpec {
    /// A one-replica service running `image`.
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        ServiceSpec { name: name.into(), image: image.into(), ..Default::default() }
    }

    /// The ports each task binds on its host ([`Self::host_ports`]), as `"8080/tcp"`.
    pub(crate) fn host_port_keys(&self) -> Vec<String> {
        self.host_ports().into_iter().map(|(n, protocol)| format!("{n}/{protocol}")).collect()
    }

    /// The parsed placement constraints.
    pub fn constraints(&self) -> Result<Vec<Constraint>> {
        self.placement
            .constraints
            .iter()
            .enumerate()
            .map(|(i, c)| Constraint::parse(&format!("placement.constraints[{i}]"), c))
            .collect()
    }

    /// The spread preferences as label names.
    pub fn preferences(&self) -> Result<Vec<String>> {
        self.placement
            .preferences
            .iter()
            .enumerate()
            .map(|(i, p)| parse_preference(&format!("placement.preferences[{i}]"), p))
            .collect()
    }

    /// Checks the spec without any engine call; the error names the offending field path.
    pub fn validate(&self) -> Result<()> {
        if !is_service_name(&self.name) {
            return Err(Error::invalid(
                "name",
                format!("{:?} must match [a-z0-9][a-z0-9_.-]* (at most 63 characters)", self.name),
            ));
        }
        crate::host::validate_image_ref("image", &self.image)?;
        if self.entrypoint.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::invalid("entrypoint", "must not be empty (leave it out to keep the image's)"));
        }
        if let Some(d) = self.working_dir.as_ref().filter(|d| !d.starts_with('/')) {
            return Err(Error::invalid("working_dir", format!("{d:?} must be an absolute path")));
        }
        if let Some(u) = self.user.as_ref().filter(|u| u.is_empty() || u.chars().any(|c| c.is_whitespace())) {
            return Err(Error::invalid("user", format!("{u:?} is not a user (name, uid or uid:gid)")));
        }
        crate::host::validate_signal("stop_signal", self.stop_signal.as_deref())?;
        let sample = Placeholders { service: &self.name, slot: 1, host: Some("host") };
        if let Some(h) = &self.hostname {
            crate::host::validate_hostname("hostname", &fill_placeholders("hostname", h, &sample)?)?;
        }
        for (k, v) in &self.env {
            fill_placeholders(&format!("env.{k}"), v, &sample)?;
        }
        crate::host::validate_extra_hosts("extra_hosts", &self.extra_hosts)?;
        crate::host::validate_caps("cap_add", &self.cap_add)?;
        crate::host::validate_caps("cap_drop", &self.cap_drop)?;
        crate::host::validate_runtime(self.logging.as_ref(), &self.ulimits, &self.sysctls, &self.tmpfs)?;
        crate::host::validate_dns(&self.dns, &self.dns_search, &self.dns_opt)?;
        crate::host::validate_shm_size(self.shm_size, &self.tmpfs)?;
        for (i, c) in self.cap_add.iter().enumerate() {
            let name = c.to_ascii_uppercase();
            if HOST_TAKEOVER_CAPS.contains(&name.trim_start_matches("CAP_")) && !self.allow_privileged {
                return Err(Error::invalid(
                    format!("cap_add[{i}]"),
                    format!("{c} gives the container control of the host; set allow_privileged to accept that"),
                ));
            }
        }
        for (i, d) in self.devices.iter().enumerate() {
            let field = format!("devices[{i}]");
            let device = crate::host::Device::parse(&field, d)?;
            if takes_over_host_device(device.host) && !self.allow_privileged {
                return Err(Error::invalid(
                    field,
                    format!(
                        "{} is the host's memory or a disk: it gives the container control of the host; set \
                         allow_privileged to accept that",
                        device.host
                    ),
                ));
            }
        }
        for (i, o) in self.security_opt.iter().enumerate() {
            let field = format!("security_opt[{i}]");
            if crate::host::SecurityOpt::parse(&field, o)?.loosens() && !self.allow_privileged {
                return Err(Error::invalid(
                    field,
                    "lifts the engine's confinement of the container; set allow_privileged to accept that",
                ));
            }
        }
        check_replicas("replicas", self.replicas)?;
        crate::host::validate_env(&self.env)?;
        check_labels("labels", &self.labels)?;
        let mut published = std::collections::BTreeSet::new();
        let host_network = self.host_network();
        for (i, p) in self.ports.iter().enumerate() {
            if p.target == 0 {
                return Err(Error::invalid(format!("ports[{i}].target"), "must be 1-65535"));
            }
            check_choice(&format!("ports[{i}].protocol"), &p.protocol, &["tcp", "udp"])?;
            if let Some(m) = &p.mode {
                check_choice(&format!("ports[{i}].mode"), m, PUBLISH_MODES)?;
            }
            if host_network {
                if p.published.is_some_and(|pp| pp != 0 && pp != p.target) {
                    return Err(Error::invalid(
                        format!("ports[{i}].published"),
                        format!(
                            "on the host network a task listens on its host's port {} itself; a port cannot be \
                             published elsewhere (leave published unset, 0 or equal to target)",
                            p.target
                        ),
                    ));
                }
                if p.mode.as_deref() == Some("ingress") {
                    return Err(Error::invalid(
                        format!("ports[{i}].mode"),
                        "on the host network a task listens on its host's port itself; there is no routing mesh",
                    ));
                }
            }
            if let Some(pp) = p.published.filter(|pp| *pp != 0).or(host_network.then_some(p.target)) {
                if !published.insert((pp, p.protocol.clone())) {
                    return Err(Error::invalid(
                        format!("ports[{i}].published"),
                        format!("{pp}/{} is published twice", p.protocol),
                    ));
                }
            }
        }
        for (i, m) in self.volumes.iter().enumerate() {
            m.validate(&format!("volumes[{i}]"))?;
            if takes_over_host(&m.source) && !self.allow_host_mounts {
                return Err(Error::invalid(
                    format!("volumes[{i}].source"),
                    format!(
                        "binding {} gives the container control of the host; set allow_host_mounts to accept that",
                        m.source
                    ),
                ));
            }
        }
        check_choice("mode", &self.mode, SERVICE_MODES)?;
        if let Some(m) = &self.endpoint_mode {
            check_choice("endpoint_mode", m, ENDPOINT_MODES)?;
        }
        if self.shutdown_delay > MAX_SHUTDOWN_DELAY {
            return Err(Error::invalid("shutdown_delay", "must be at most an hour"));
        }
        if self.privileged && !self.allow_privileged {
            return Err(Error::invalid(
                "privileged",
                "a privileged container controls its host; set allow_privileged to accept that",
            ));
        }
        match self.pid.as_deref() {
            None => {}
            Some("host") if self.allow_privileged => {}
            Some("host") => {
                return Err(Error::invalid(
                    "pid",
                    "in the host's process namespace a task's root may signal every process of its host; set \
                     allow_privileged to accept that",
                ))
            }
            Some(p) => {
                return Err(Error::invalid(
                    "pid",
                    format!("{p:?}: only host (another container's namespace may be on another host)"),
                ))
            }
        }
        match self.ipc.as_deref() {
            None | Some("private" | "shareable" | "none") => {}
            Some("host") if self.allow_privileged => {}
            Some("host") => {
                return Err(Error::invalid(
                    "ipc",
                    "in the host's IPC namespace a task's root may read and write every shared memory segment of \
                     its host; set allow_privileged to accept that",
                ))
            }
            Some(m) => {
                return Err(Error::invalid(
                    "ipc",
                    format!(
                        "{m:?} is not private, shareable, none or host (another container's namespace may be on \
                         another host)"
                    ),
                ))
            }
        }
        for (kind, files) in [("secrets", &self.secrets), ("configs", &self.configs)] {
            let mut targets = std::collections::BTreeSet::new();
            for (i, f) in files.iter().enumerate() {
                crate::host::validate_name(&format!("{kind}[{i}].source"), &f.source)?;
                let target = f.target(kind == "secrets");
                if kind == "configs" && !target.starts_with('/') {
                    return Err(Error::invalid(
                        format!("{kind}[{i}].target"),
                        format!("{target:?} must be an absolute path"),
                    ));
                }
                if kind == "secrets" && (target.contains("..") || target.ends_with('/')) {
                    return Err(Error::invalid(
                        format!("{kind}[{i}].target"),
                        format!("{target:?} is not a file name"),
                    ));
                }
                if f.mode > 0o777 {
                    return Err(Error::invalid(
                        format!("{kind}[{i}].mode"),
                        format!("{:o} is not a file mode", f.mode),
                    ));
                }
                if !targets.insert(target.clone()) {
                    return Err(Error::invalid(format!("{kind}[{i}].target"), format!("{target:?} is mounted twice")));
                }
            }
        }
        for (i, c) in self.constraints()?.iter().enumerate() {
            if c.key != ConstraintKey::Runs {
                continue;
            }
            let field = format!("placement.constraints[{i}]");
            if c.value == self.name {
                return Err(Error::invalid(
                    field,
                    "a service is not placed by its own tasks (max_replicas_per_host limits them per host)",
                ));
            }
            if !is_service_name(&c.value) {
                return Err(Error::invalid(field, format!("{:?} is not a service name", c.value)));
            }
        }
        self.preferences()?;
        check_choice("placement.strategy", self.strategy(), &["spread", "binpack", "random"])?;
        if self.placement.max_replicas_per_host == Some(0) {
            return Err(Error::invalid("placement.max_replicas_per_host", "must be at least 1 (omit it for no limit)"));
        }
        let r = &self.resources;
        for (field, v) in [("resources.cpu_reservation", r.cpu_reservation), ("resources.cpu_limit", r.cpu_limit)] {
            if let Some(v) = v {
                if !(v.is_finite() && v > 0.0) {
                    return Err(Error::invalid(field, format!("{v} must be a positive number of CPUs")));
                }
            }
        }
        // The kernel's bound: a CFS quota of at least 1 ms per 100 ms period. Less passes the create and
        // fails the start (runc: cpu.cfs_quota_us: invalid argument).
        if r.cpu_limit.is_some_and(|c| c < 0.01) {
            return Err(Error::invalid("resources.cpu_limit", "must be at least 0.01 CPUs"));
        }
        if let (Some(res), Some(lim)) = (r.cpu_reservation, r.cpu_limit) {
            if res > lim {
                return Err(Error::invalid("resources.cpu_reservation", "is above resources.cpu_limit"));
            }
        }
        if let Some(m) = r.memory_limit {
            if m < 6 * 1024 * 1024 {
                return Err(Error::invalid(
                    "resources.memory_limit",
                    format!("{m} is below the engine's minimum of 6 MiB"),
                ));
            }
        }
        if let (Some(res), Some(lim)) = (r.memory_reservation, r.memory_limit) {
            if res > lim {
                return Err(Error::invalid("resources.memory_reservation", "is above resources.memory_limit"));
            }
        }
        crate::host::validate_pids_limit("resources.pids_limit", r.pids_limit)?;
        crate::host::validate_cpu_tuning("resources.", r.cpu_shares, r.cpuset_cpus.as_deref())?;
        crate::host::validate_memory_swap("resources.memory_swap_limit", r.memory_swap_limit, r.memory_limit)?;
        crate::host::validate_oom("resources.", r.memory_swappiness, r.oom_kill_disable, r.memory_limit)?;
        crate::host::validate_oom_score_adj("oom_score_adj", self.oom_score_adj)?;
        if let Some(r) = &self.runtime {
            crate::host::validate_name("runtime", r)?;
        }
        if let Some(p) = &self.pull_policy {
            check_choice("pull_policy", p, &["never", "missing", "always"])?;
        }
        if self.oom_score_adj.is_some_and(|n| n < 0) && !self.allow_privileged {
            return Err(Error::invalid(
                "oom_score_adj",
                "below 0 the kernel kills the host's other processes before a task's when memory runs out; set \
                 allow_privileged to accept that",
            ));
        }
        crate::host::validate_groups("group_add", &self.group_add)?;
        check_choice("restart_policy.condition", &self.restart_policy.condition, &["any", "on-failure", "none"])?;
        check_update("update_config", &self.update_config)?;
        check_update("rollback_config", &self.rollback_config)?;
        let host_ports = self.host_ports();
        check_start_first("update_config", &self.update_config, &host_ports)?;
        check_start_first("rollback_config", &self.rollback_config, &host_ports)?;
        if let Some(h) = &self.healthcheck {
            let probe = crate::host::ContainerSpec {
                image: self.image.clone(),
                healthcheck: Some(h.clone()),
                ..Default::default()
            };
            probe.validate()?;
        }
        let user_networks = self.networks.first().is_some_and(|n| crate::host::is_user_network(n));
        for (i, n) in self.networks.iter().enumerate() {
            crate::host::validate_ref(&format!("networks[{i}]"), n)?;
            if i > 0 && !(user_networks && crate::host::is_user_network(n)) {
                return Err(Error::invalid(
                    format!("networks[{i}]"),
                    "only user-defined networks can be joined together (not bridge, host or none)",
                ));
            }
        }
        for (i, a) in self.network_aliases.iter().enumerate() {
            crate::host::validate_alias(&format!("network_aliases[{i}]"), a)?;
            if !user_networks {
                return Err(Error::invalid(
                    format!("network_aliases[{i}]"),
                    "aliases need a user-defined network in `networks`",
                ));
            }
        }
        Ok(())
    }

    /// The placement strategy, `spread` when unset.
    pub fn strategy(&self) -> &str {
        if self.placement.strategy.is_empty() {
            "spread"
        } else {
            &self.placement.strategy
        }
    }

    /// Whether the tasks run in their host's network namespace (`networks: ["host"]`).
    pub fn host_network(&self) -> bool {
        self.networks.first().is_some_and(|n| n == "host")
    }

    /// The ports each task binds on its host, as (port, protocol): those published on a fixed port,
    /// and on the host network every port, at its target.
    pub fn host_ports(&self) -> Vec<(u16, &str)> {
        let host_network = self.host_network();
        self.ports
            .iter()
            .filter_map(|p| {
                let port = if host_network { Some(p.target) } else { p.published.filter(|n| *n != 0) };
                port.map(|n| (n, p.protocol.as_str()))
            })
            .collect()
    }

    /// The largest number of this service's tasks one host may run: the explicit limit, and 1 when the
    /// service binds a fixed port on its hosts (a host port can be bound once; see [`Self::host_ports`]).
    pub fn per_host_limit(&self) -> Option<u32> {
        let ports = (!self.host_ports().is_empty()).then_some(1);
        match (self.placement.max_replicas_per_host, ports) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{LogConfig, Ulimit};

    fn spec() -> ServiceSpec {
        ServiceSpec::new("web", "dockfleet/busybox:latest")
    }

    #[test]
    fn defaults_follow_swarm() {
        let s = spec();
        assert_eq!((s.mode.as_str(), s.replicas), ("replicated", 1));
        assert_eq!(s.update_config.parallelism, 1);
        assert_eq!(s.update_config.order, "stop-first");
        assert_eq!(s.update_config.failure_action, "pause");
        assert_eq!(s.update_config.monitor, Duration::from_secs(5));
        assert_eq!(s.restart_policy.condition, "any");
        assert_eq!(s.restart_policy.delay, Duration::from_secs(5));
        assert_eq!(s.stop_grace_period, Duration::from_secs(10));
        assert_eq!(s.shutdown_delay, Duration::ZERO);
        assert_eq!(s.strategy(), "spread");
        s.validate().unwrap();
    }

    #[test]
    fn a_shutdown_delay_is_bounded_and_left_out_of_files_when_none() {
        let mut s = spec();
        assert!(
            !serde_json::to_string(&s).unwrap().contains("shutdown_delay"),
            "specs written before it read the same"
        );
        s.shutdown_delay = Duration::from_millis(1500);
        s.validate().unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains(r#""shutdown_delay":1500"#), "{json}");
        assert_eq!(serde_json::from_str::<ServiceSpec>(&json).unwrap(), s);
        s.shutdown_delay = Duration::from_secs(3601);
        let e = s.validate().unwrap_err();
        assert!(e.to_string().contains("shutdown_delay"), "{e}");
    }

    #[test]
    fn constraints_parse_in_both_spellings() {
        let c = Constraint::parse("c", "role==manager").unwrap();
        assert_eq!(c, Constraint { key: ConstraintKey::Label("role".into()), equal: true, value: "manager".into() });
        let c = Constraint::parse("c", "node.labels.zone != b").unwrap();
        assert_eq!(c, Constraint { key: ConstraintKey::Label("zone".into()), equal: false, value: "b".into() });
        assert_eq!(Constraint::parse("c", "node.hostname==df-1").unwrap().key, ConstraintKey::Hostname);
        assert_eq!(Constraint::parse("c", "node.role == manager").unwrap().key, ConstraintKey::Label("role".into()));
        let labels = BTreeMap::from([("zone".to_string(), "a".to_string())]);
        assert!(Constraint::parse("c", "zone!=b").unwrap().matches("h", &labels));
        assert!(!Constraint::parse("c", "zone==b").unwrap().matches("h", &labels));
        assert!(Constraint::parse("c", "disk!=ssd").unwrap().matches("h", &labels), "a missing label is not equal");
        assert!(!Constraint::parse("c", "disk==ssd").unwrap().matches("h", &labels));
        assert_eq!(parse_preference("p", "spread=node.labels.zone").unwrap(), "zone");
        let runs = Constraint::parse("c", "node.runs == shop_db").unwrap();
        assert_eq!(runs, Constraint { key: ConstraintKey::Runs, equal: true, value: "shop_db".into() });
        let mut host = crate::schedule::HostState { name: "h".into(), ..Default::default() };
        assert!(!runs.admits(&host) && Constraint::parse("c", "node.runs!=shop_db").unwrap().admits(&host));
        host.services.insert("shop_db".into());
        assert!(runs.admits(&host) && !Constraint::parse("c", "node.runs!=shop_db").unwrap().admits(&host));
    }

    #[test]
    fn on_the_host_network_every_port_binds_its_host() {
        let mut s = ServiceSpec::new("agent", "busybox");
        let port = |target, published| ServicePort { target, published, ..Default::default() };
        s.ports = vec![port(80, Some(8080)), port(81, Some(0)), port(82, None)];
        assert_eq!((s.host_ports(), s.per_host_limit()), (vec![(8080, "tcp")], Some(1)));
        s.ports = vec![port(81, Some(0)), port(82, None)];
        assert_eq!((s.host_ports(), s.per_host_limit()), (vec![], None));
        s.networks = vec!["host".into()];
        s.ports = vec![port(80, Some(80)), port(81, Some(0)), ServicePort { protocol: "udp".into(), ..port(53, None) }];
        s.validate().unwrap();
        assert!(s.host_network());
        assert_eq!(s.host_ports(), [(80, "tcp"), (81, "tcp"), (53, "udp")]);
        s.placement.max_replicas_per_host = Some(3);
        assert_eq!(s.per_host_limit(), Some(1), "each port can be bound once per host");
        s.ports.clear();
        assert_eq!((s.host_ports(), s.per_host_limit()), (vec![], Some(3)));
    }

    #[test]
    fn validation_names_the_field() {
        type Edit = fn(&mut ServiceSpec);
        let cases: &[(&str, Edit)] = &[
            ("name", |s| s.name = "Web".into()),
            ("image", |s| s.image = "".into()),
            ("labels.dockfleet.slot", |s| {
                s.labels.insert("dockfleet.slot".into(), "1".into());
            }),
            ("labels.", |s| {
                s.labels.insert(String::new(), "1".into());
            }),
            ("ports[0].target", |s| s.ports = vec![ServicePort::default()]),
            ("ports[0].published", |s| {
                s.networks = vec!["host".into()];
                s.ports = vec![ServicePort { target: 80, published: Some(8080), ..Default::default() }];
            }),
            ("ports[0].mode", |s| {
                s.networks = vec!["host".into()];
                s.ports = vec![ServicePort { target: 80, mode: Some("ingress".into()), ..Default::default() }];
            }),
            ("ports[1].published", |s| {
                s.networks = vec!["host".into()];
                s.ports = vec![
                    ServicePort { target: 80, ..Default::default() },
                    ServicePort { target: 80, published: Some(80), ..Default::default() },
                ];
            }),
            ("update_config.order", |s| {
                s.networks = vec!["host".into()];
                s.ports = vec![ServicePort { target: 80, ..Default::default() }];
                s.update_config.order = "start-first".into();
            }),
            ("ports[1].published", |s| {
                let p = ServicePort { target: 80, published: Some(8080), protocol: "tcp".into(), mode: None };
                s.ports = vec![p.clone(), p];
            }),
            ("volumes[0].source", |s| {
                s.volumes =
                    vec![Mount { source: "/".into(), target: "/host".into(), read_only: true, ..Default::default() }]
            }),
            ("volumes[0].source", |s| {
                s.volumes = vec![Mount {
                    source: "/var/run/docker.sock".into(),
                    target: "/s".into(),
                    read_only: false,
                    ..Default::default()
                }]
            }),
            ("privileged", |s| s.privileged = true),
            ("hostname", |s| s.hostname = Some("web-{{.Node.ID}}".into())),
            ("env.SLOT", |s| s.env = BTreeMap::from([("SLOT".into(), "{{ .Task.ID }}".into())])),
            ("env.SLOT", |s| s.env = BTreeMap::from([("SLOT".into(), "{{.Task.Slot".into())])),
            ("hostname", |s| s.hostname = Some("web-{{.Task.Slot}".into())),
            ("hostname", |s| s.hostname = Some("a b".into())),
            ("hostname", |s| s.hostname = Some("x".repeat(65))),
            ("extra_hosts[0]", |s| s.extra_hosts = vec!["db.internal".into()]),
            ("extra_hosts[1]", |s| s.extra_hosts = vec!["a:::1".into(), "db:10.0.0.300".into()]),
            ("extra_hosts[0]", |s| s.extra_hosts = vec!["a b:10.0.0.1".into()]),
            ("cap_add[0]", |s| s.cap_add = vec!["NET ADMIN".into()]),
            ("cap_add[1]", |s| s.cap_add = vec!["NET_ADMIN".into(), "cap_sys_admin".into()]),
            ("cap_add[0]", |s| s.cap_add = vec!["ALL".into()]),
            ("cap_drop[0]", |s| s.cap_drop = vec!["".into()]),
            ("logging.driver", |s| s.logging = Some(LogConfig { driver: "json file".into(), ..Default::default() })),
            ("ulimits[0].name", |s| s.ulimits = vec![Ulimit { name: "files".into(), soft: 1, hard: 1 }]),
            ("ulimits[0]", |s| s.ulimits = vec![Ulimit { name: "nofile".into(), soft: 2, hard: 1 }]),
            ("ulimits[0]", |s| s.ulimits = vec![Ulimit { name: "nofile".into(), soft: -2, hard: -1 }]),
            ("ulimits[1].name", |s| s.ulimits = vec![Ulimit { name: "nofile".into(), soft: 1, hard: 1 }; 2]),
            ("sysctls.net core", |s| s.sysctls = BTreeMap::from([("net core".into(), "1".into())])),
            ("tmpfs[0]", |s| s.tmpfs = vec!["run".into()]),
            ("dns[0]", |s| s.dns = vec!["ns1.example".into()]),
            ("shm_size", |s| s.shm_size = Some(0)),
            ("shm_size", |s| {
                s.shm_size = Some(1 << 20);
                s.tmpfs = vec!["/dev/shm/:size=1m".into()];
            }),
            ("devices[1]", |s| s.devices = vec!["/dev/fuse".into(), "/dev/sda:/dev/disk".into()]),
            ("devices[0]", |s| s.devices = vec!["/dev/mem".into()]),
            ("pid", |s| s.pid = Some("host".into())),
            ("ipc", |s| s.ipc = Some("host".into())),
            ("ipc", |s| {
                s.ipc = Some("container:db".into());
                s.allow_privileged = true;
            }),
            ("placement.constraints[1]", |s| {
                s.placement.constraints = vec!["node.runs==db".into(), format!("node.runs!={}", s.name)]
            }),
            ("placement.constraints[0]", |s| s.placement.constraints = vec!["node.runs==Shop DB".into()]),
            ("resources.cpu_limit", |s| s.resources.cpu_limit = Some(0.005)),
            ("resources.cpu_shares", |s| s.resources.cpu_shares = Some(300_000)),
            ("resources.memory_swappiness", |s| s.resources.memory_swappiness = Some(101)),
            ("runtime", |s| s.runtime = Some("run c".into())),
            ("resources.oom_kill_disable", |s| s.resources.oom_kill_disable = true),
            ("oom_score_adj", |s| s.oom_score_adj = Some(-500)),
            ("oom_score_adj", |s| {
                s.oom_score_adj = Some(1001);
                s.allow_privileged = true;
            }),
            ("resources.cpuset_cpus", |s| s.resources.cpuset_cpus = Some("0-".into())),
            ("resources.cpuset_cpus", |s| s.resources.cpuset_cpus = Some("1024".into())),
            ("resources.memory_swap_limit", |s| s.resources.memory_swap_limit = Some(1 << 30)),
            ("resources.memory_swap_limit", |s| {
                s.resources.memory_limit = Some(1 << 30);
                s.resources.memory_swap_limit = Some(-2);
            }),
            ("pid", |s| {
                s.pid = Some("container:db".into());
                s.allow_privileged = true;
            }),
            ("devices[0]", |s| s.devices = vec!["/dev/mapper/root".into()]),
            ("devices[0]", |s| s.devices = vec!["/dev/nvme0n1:/dev/x:r".into()]),
            ("devices[0]", |s| s.devices = vec!["/dev/fuse:rwx".into()]),
            ("security_opt[0]", |s| s.security_opt = vec!["seccomp=/etc/p.json".into()]),
            ("security_opt[1]", |s| s.security_opt = vec!["no-new-privileges".into(), "seccomp:unconfined".into()]),
            ("security_opt[0]", |s| s.security_opt = vec!["apparmor=unconfined".into()]),
            ("security_opt[0]", |s| s.security_opt = vec!["label:disable".into()]),
            ("security_opt[0]", |s| s.security_opt = vec!["systempaths=unconfined".into()]),
            ("security_opt[0]", |s| s.security_opt = vec![r#"seccomp={"defaultAction":"SCMP_ACT_LOG"}"#.into()]),
            ("dns_search[0]", |s| s.dns_search = vec!["a b".into()]),
            ("dns_opt[0]", |s| s.dns_opt = vec!["ndots 2".into()]),
            ("tmpfs[1]", |s| s.tmpfs = vec!["/run".into(), "/tmp:size=1m;rm -rf".into()]),
            ("networks[0]", |s| s.networks = vec!["a/b".into()]),
            ("networks[1]", |s| s.networks = vec!["front".into(), "host".into()]),
            ("networks[1]", |s| s.networks = vec!["bridge".into(), "front".into()]),
            ("network_aliases[0]", |s| s.network_aliases = vec!["db".into()]),
            ("network_aliases[1]", |s| {
                s.networks = vec!["front".into()];
                s.network_aliases = vec!["db".into(), "no such".into()];
            }),
            ("replicas", |s| s.replicas = 100_000_000),
            ("mode", |s| s.mode = "daemon".into()),
            ("endpoint_mode", |s| s.endpoint_mode = Some("rr".into())),
            ("ports[0].mode", |s| {
                s.ports = vec![ServicePort { target: 80, mode: Some("mesh".into()), ..Default::default() }]
            }),
            ("resources.pids_limit", |s| s.resources.pids_limit = Some(0)),
            ("group_add[1]", |s| s.group_add = vec!["1234".into(), "wheel users".into()]),
            ("placement.constraints[0]", |s| s.placement.constraints = vec!["role=manager".into()]),
            ("placement.strategy", |s| s.placement.strategy = "pack".into()),
            ("placement.max_replicas_per_host", |s| s.placement.max_replicas_per_host = Some(0)),
            ("resources.cpu_reservation", |s| {
                s.resources.cpu_reservation = Some(2.0);
                s.resources.cpu_limit = Some(1.0);
            }),
            ("restart_policy.condition", |s| s.restart_policy.condition = "always".into()),
            ("update_config.order", |s| s.update_config.order = "first".into()),
            ("rollback_config.max_failure_ratio", |s| s.rollback_config.max_failure_ratio = 2.0),
            ("update_config.order", |s| {
                s.ports = vec![ServicePort { target: 80, published: Some(8080), protocol: "tcp".into(), mode: None }];
                s.update_config.order = "start-first".into();
            }),
        ];
        for (field, edit) in cases {
            let mut s = spec();
            edit(&mut s);
            let e = s.validate().unwrap_err();
            assert_eq!(e.code(), "invalid_argument");
            assert!(e.to_string().contains(field), "{e} should name {field}");
        }
        let mut s = spec();
        s.volumes = vec![Mount { source: "/".into(), target: "/host".into(), read_only: true, ..Default::default() }];
        s.allow_host_mounts = true;
        s.privileged = true;
        s.allow_privileged = true;
        s.replicas = MAX_REPLICAS;
        s.networks = vec!["front".into(), "back".into()];
        s.network_aliases = vec!["db".into()];
        s.hostname = Some("{{.Service.Name}}-{{ .Task.Slot }}.local".into());
        s.extra_hosts = vec!["db.internal:10.0.0.5".into(), "v6:::1".into(), "gw:host-gateway".into()];
        s.cap_add = vec!["NET_ADMIN".into(), "SYS_ADMIN".into()];
        s.cap_drop = vec!["ALL".into()];
        s.logging = Some(LogConfig {
            driver: "json-file".into(),
            options: BTreeMap::from([("max-size".into(), "10m".into())]),
        });
        s.ulimits = vec![
            Ulimit { name: "nofile".into(), soft: 1024, hard: 4096 },
            Ulimit { name: "core".into(), soft: -1, hard: -1 },
        ];
        s.sysctls = BTreeMap::from([("net.core.somaxconn".into(), "1024".into())]);
        s.tmpfs = vec!["/run".into(), "/tmp:size=64m,mode=1777,noexec".into()];
        s.dns = vec!["10.0.0.2".into(), "fd00::2".into()];
        s.shm_size = Some(256 << 20);
        s.dns_search = vec!["example.internal".into()];
        s.dns_opt = vec!["ndots:2".into(), "rotate".into()];
        s.security_opt = vec!["no-new-privileges:true".into(), "seccomp=unconfined".into()];
        s.resources.pids_limit = Some(100);
        s.group_add = vec!["wheel".into(), "1234".into()];
        s.devices = vec!["/dev/fuse".into(), "/dev/sdb:/dev/xvdb:r".into()];
        s.pid = Some("host".into());
        s.validate().unwrap();
        let c = crate::task_container(&s, 2);
        assert_eq!(c.hostname, Some(format!("{}-2.local", s.name)), "placeholders filled per task");
        assert_eq!((&c.devices, c.pid.as_deref()), (&s.devices, Some("host")));
        let mut t = s.clone();
        t.hostname = Some("{{.Node.Hostname}}-{{.Task.Slot}}".into());
        t.env = BTreeMap::from([
            ("AT".into(), "{{.Service.Name}} {{.Task.Slot}} on {{ .Node.Hostname }}".into()),
            ("TEMPLATE".into(), "{{ user }} {{}}".into()),
        ]);
        t.validate().unwrap();
        let c2 = crate::reconcile::task_container_with(&t, Some("df-2"), 3, BTreeMap::new());
        assert_eq!(c2.hostname.as_deref(), Some("df-2-3"));
        assert_eq!(c2.env["AT"], format!("{} 3 on df-2", t.name));
        assert_eq!(c2.env["TEMPLATE"], "{{ user }} {{}}", "not a placeholder: text");
        let c3 = crate::task_container(&t, 3);
        assert_eq!(c3.env["AT"], format!("{} 3 on {{{{.Node.Hostname}}}}", t.name), "left for the placing host");
        assert_eq!((&c.extra_hosts, &c.cap_add, &c.cap_drop), (&s.extra_hosts, &s.cap_add, &s.cap_drop));
        assert_eq!((&c.logging, &c.ulimits, &c.sysctls, &c.tmpfs), (&s.logging, &s.ulimits, &s.sysctls, &s.tmpfs));
        assert_eq!((&c.dns, &c.dns_search, &c.dns_opt), (&s.dns, &s.dns_search, &s.dns_opt));
        assert_eq!(c.shm_size, Some(256 << 20));
        assert_eq!(c.security_opt, s.security_opt);
        assert_eq!((c.pids_limit, &c.group_add), (Some(100), &s.group_add));
        assert_eq!((c.network.as_deref(), &c.extra_networks[..]), (Some("front"), &["back".to_string()][..]));
        assert_eq!(c.network_aliases, [s.name.clone(), "db".into()], "the service's name and its aliases");
        assert!(c.privileged);
        c.validate().unwrap();
        s.networks = vec!["bridge".into()];
        s.network_aliases.clear();
        let c = crate::task_container(&s, 2);
        assert!(c.network_aliases.is_empty(), "the engine's bridge takes no aliases");
        c.validate().unwrap();
    }

    #[test]
    fn published_ports_limit_tasks_per_host() {
        let mut s = spec();
        assert_eq!(s.per_host_limit(), None);
        s.placement.max_replicas_per_host = Some(3);
        assert_eq!(s.per_host_limit(), Some(3));
        s.ports = vec![ServicePort { target: 80, published: Some(0), protocol: "tcp".into(), mode: None }];
        assert_eq!(s.per_host_limit(), Some(3), "an engine-chosen port does not limit");
        s.update_config.order = "start-first".into();
        s.validate().unwrap();
        s.ports = vec![ServicePort { target: 80, published: Some(8080), protocol: "tcp".into(), mode: None }];
        assert_eq!(s.per_host_limit(), Some(1));
    }
}
