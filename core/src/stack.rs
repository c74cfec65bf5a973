//! Stacks: several services from a compose file, deployed together onto a fleet of plain engines.
//!
//! [`parse_compose`] reads a compose file (the `docker stack deploy` dialect: services with `deploy:`)
//! strictly: an unknown key is an error naming its path (`x-` extension keys are allowed; a service's
//! `x-dockfleet:` is read, for `shutdown_delay`, and as strictly checked), YAML alias expansion is bounded, and every service is validated, all before any engine call. [`stack_up`]
//! creates the stack's networks and volumes on every reachable host, builds images that have a
//! `build:` section, then rolls out the services in `depends_on` order, waiting for a dependency to be
//! started or healthy as the condition says (which `docker stack deploy` ignores). [`stack_ps`] lists
//! the stack's tasks per service; [`stack_down`] removes its services and networks, and its volumes
//! only when asked.
//!
//! Variables are substituted from this process's environment as compose does (`$VAR`, `${VAR}`,
//! `${VAR:-default}`, `${VAR-default}`, `${VAR:+replacement}`, `${VAR+replacement}`,
//! `${VAR:?message}`, `$$`; defaults and replacements may nest); a bare `KEY` in `environment` takes
//! its value from the environment, and a bare label is an empty one.
//!
//! Names follow Swarm: service `web` of stack `blog` runs as service `blog_web`, network `front` is
//! `blog_front`, volume `data` is `blog_data`, and everything carries the label
//! `com.docker.stack.namespace=blog`. Plain engines have no overlay network: a stack network (also one
//! declared with `driver: overlay`, so that one file serves the Swarm backend too) is a
//! bridge network on each host, so containers on one host reach each other by container name, and
//! services on different hosts reach each other through published ports (see discovery).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use crate::backend::ServiceBackend;
use crate::error::{Error, Result};
use crate::fleet::{Fleet, ProbeOptions};
use crate::host::{
    BuildOptions, Healthcheck, IpamPool, ListContainersOptions, Mount, NetworkOptions, NetworkSummary, VolumeOptions,
    VolumeSummary,
};
use crate::reconcile::{remove_service, task_from, LABEL_SERVICE};
use crate::rollout::{RolloutEvent, RolloutOptions};
use crate::spec::{ServiceFile, ServicePort, ServiceSpec, UpdateConfig};
use crate::Later;

/// Label naming the stack of a service, network or volume (Swarm's).
pub const LABEL_STACK: &str = "com.docker.stack.namespace";

/// Largest compose file accepted (1 MiB).
pub const MAX_COMPOSE_BYTES: usize = 1 << 20;

/// A dependency of a stack service on another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    /// The service depended on (its name in the compose file).
    pub service: String,
    /// `service_started` (default), `service_healthy` or `service_completed_successfully`.
    pub condition: String,
    /// Restart this service's tasks when a `stack_up` replaces the dependency's (compose's
    /// `restart: true`), so that they reconnect to it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart: bool,
    /// When false (compose's `required: false`), a dependency the stack lacks is skipped, and one
    /// that does not meet its condition in time is reported and deployed past.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Default for Dependency {
    fn default() -> Self {
        Dependency { service: String::new(), condition: "service_started".into(), restart: false, required: true }
    }
}

/// How a stack service's image is built (compose's `build:`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackBuild {
    /// Build context directory on this machine.
    pub context: PathBuf,
    /// Dockerfile inside the context (default `Dockerfile`).
    pub dockerfile: Option<String>,
    /// Build arguments.
    pub args: BTreeMap<String, String>,
    /// Stage of a multi-stage Dockerfile to stop at.
    pub target: Option<String>,
    /// Labels on the image (besides the stack's).
    pub labels: BTreeMap<String, String>,
    /// Build without the engine's cache.
    pub no_cache: bool,
}

/// One service of a stack.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StackService {
    /// Its name in the compose file (`web`); the spec's name is `STACK_web`.
    pub name: String,
    /// The service spec.
    pub spec: ServiceSpec,
    /// Services that must be started (or healthy, …) first.
    pub depends_on: Vec<Dependency>,
    /// Build the image from this context before deploying.
    pub build: Option<StackBuild>,
}

/// A stack: services, and the networks and volumes they use (full engine names).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stack {
    /// Stack name: `[a-z0-9][a-z0-9_-]*`.
    pub name: String,
    /// Services, in the compose file's order.
    pub services: Vec<StackService>,
    /// Networks to create on every host (external ones are not listed).
    pub networks: Vec<String>,
    /// Named volumes to create on every host (external ones are not listed).
    pub volumes: Vec<String>,
    /// Options of the networks the stack creates, by full name (compose's `networks.<n>`: labels,
    /// driver options, `internal`, `attachable`, `enable_ipv6`, `ipam`); the stack's own label is
    /// added. The driver is left to the backend: a bridge on each plain engine, an overlay on Swarm.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub network_options: BTreeMap<String, NetworkOptions>,
    /// Options of the volumes the stack creates, by full name (compose's `volumes.<v>`: labels and
    /// the `local` driver's options); the stack's own label is added.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volume_options: BTreeMap<String, VolumeOptions>,
    /// Swarm secrets the stack creates from files (Swarm backend only; external ones are not listed).
    pub secrets: Vec<StackFile>,
    /// Swarm configs the stack creates from files (Swarm backend only).
    pub configs: Vec<StackFile>,
}

/// A secret or config a stack creates: its full name, where its content comes from (exactly one of
/// `file`, `environment` and, for a config, `content`) and its labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StackFile {
    /// Full name (`STACK_key`, or the compose `name:`).
    pub name: String,
    /// The file holding its content: a regular file of at most 1 MiB (Swarm holds a secret or config
    /// under 500 KiB), read when the stack is deployed.
    pub file: Option<PathBuf>,
    /// The environment variable holding its content, read when the stack is deployed (compose's
    /// `environment:`); the value itself is never kept in the stack.
    pub environment: Option<String>,
    /// A config's content, given inline (compose's `content:`; not for secrets).
    pub content: Option<String>,
    /// Env files (lowest precedence first) that give `environment`'s variable when this process's
    /// environment lacks it: the compose file's `.env`, as compose reads it. Read when the stack is
    /// deployed, like the variable.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env_files: Vec<PathBuf>,
    /// Labels, besides the stack's own.
    pub labels: BTreeMap<String, String>,
}

/// How large a secret's or config's file may be (Swarm holds each under 500 KiB).
const MAX_FILE_BYTES: u64 = 1 << 20;

impl StackFile {
    /// Its content, read from its file or environment variable; `field` (`secrets.db_pw`) names
    /// it in errors.
    pub fn data(&self, field: &str) -> Result<Vec<u8>> {
        match (&self.file, &self.environment, &self.content) {
            (Some(f), None, None) => {
                crate::files::read_bytes(f, MAX_FILE_BYTES).map_err(|why| Error::invalid(format!("{field}.file"), why))
            }
            (None, Some(var), None) => {
                if let Some(v) = std::env::var_os(var) {
                    return Ok(v.into_encoded_bytes());
                }
                let process = |k: &str| std::env::var(k).ok();
                for f in self.env_files.iter().rev() {
                    if let Some(v) = crate::dotenv::read(&format!("{field}.env_files"), f, &process)?.remove(var) {
                        return Ok(v.into_bytes());
                    }
                }
                let files: Vec<String> = self.env_files.iter().map(|f| f.display().to_string()).collect();
                let why = match files.is_empty() {
                    true => format!("{var} is not set in this process's environment"),
                    false => format!("{var} is not set in this process's environment nor in {}", files.join(", ")),
                };
                Err(Error::invalid(format!("{field}.environment"), why))
            }
            (None, None, Some(text)) => Ok(text.clone().into_bytes()),
            _ => Err(Error::invalid(field, "needs exactly one of file, environment and content")),
        }
    }

    /// Where its content comes from: the key (`file`, `environment`, `content`) and, for messages,
    /// the place.
    pub(crate) fn source(&self) -> (&'static str, String) {
        match (&self.file, &self.environment) {
            (Some(f), _) => ("file", f.display().to_string()),
            (None, Some(v)) => ("environment", format!("${v}")),
            _ => ("content", "its content".into()),
        }
    }

    fn validate(&self, field: &str, config: bool) -> Result<()> {
        crate::host::validate_name(&format!("{field}.name"), &self.name)?;
        let sources = [self.file.is_some(), self.environment.is_some(), self.content.is_some()];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(Error::invalid(field, "needs exactly one of file, environment and content"));
        }
        if !self.env_files.is_empty() && self.environment.is_none() {
            return Err(Error::invalid(format!("{field}.env_files"), "env files only go with environment"));
        }
        if self.content.is_some() && !config {
            return Err(Error::invalid(
                format!("{field}.content"),
                "a secret's content comes from a file or the environment, never the stack",
            ));
        }
        if let Some(v) = &self.environment {
            if v.is_empty() || v.contains(['=', '\0']) {
                return Err(Error::invalid(format!("{field}.environment"), format!("{v:?} is not a variable name")));
            }
        }
        crate::spec::check_labels(&format!("{field}.labels"), &self.labels)
    }
}

/// Options of [`stack_up`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StackOptions {
    /// Options of each service's rollout.
    pub rollout: RolloutOptions,
    /// How long to wait for a dependency's condition (default 120 s).
    #[serde(with = "crate::serde_ms")]
    pub dependency_timeout: Duration,
    /// Remove services of the stack that the stack no longer has (`docker stack deploy --prune`).
    pub prune: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions { rollout: RolloutOptions::default(), dependency_timeout: Duration::from_secs(120), prune: false }
    }
}

/// One service of a stack as [`stack_ps`] sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Service name (`STACK_web`).
    pub name: String,
    /// Replicas its current spec asks for (0 when unknown, or in global mode).
    pub desired: u32,
    /// Tasks running.
    pub running: u32,
    /// Its task containers on reachable hosts.
    pub tasks: Vec<crate::reconcile::Task>,
}

/// What [`stack_down`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackDownReport {
    /// Services removed.
    pub services: Vec<String>,
    /// Task containers removed.
    pub containers: u32,
    /// Networks removed (one per host).
    pub networks: u32,
    /// Volumes removed (one per host; only when asked).
    pub volumes: u32,
    /// Swarm secrets removed (Swarm backend).
    pub secrets: u32,
    /// Swarm configs removed (Swarm backend).
    pub configs: u32,
}

// ---------------------------------------------------------------------------------------------
// The compose file, as far as dockfleet understands it. Every struct refuses unknown keys.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComposeFile {
    #[serde(default)]
    #[allow(dead_code)]
    version: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    name: Option<String>,
    #[serde(default)]
    services: BTreeMap<String, ComposeService>,
    #[serde(default)]
    volumes: BTreeMap<String, Option<ComposeObject>>,
    #[serde(default)]
    networks: BTreeMap<String, Option<ComposeObject>>,
    #[serde(default)]
    secrets: BTreeMap<String, ComposeFileObject>,
    #[serde(default)]
    configs: BTreeMap<String, ComposeFileObject>,
}

/// A top-level secret or config: its content from `file`, `environment` or (configs) `content`, or
/// `external` (created beforehand).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ComposeFileObject {
    file: Option<String>,
    environment: Option<String>,
    content: Option<String>,
    labels: Option<Value>,
    external: Option<bool>,
    name: Option<String>,
}

/// A top-level network or volume (`internal` to `ipam` are networks' only).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ComposeObject {
    driver: Option<String>,
    driver_opts: Option<Value>,
    labels: Option<Value>,
    external: Option<bool>,
    name: Option<String>,
    internal: Option<bool>,
    attachable: Option<bool>,
    enable_ipv6: Option<bool>,
    ipam: Option<ComposeIpam>,
}

/// A network's `ipam:`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ComposeIpam {
    driver: Option<String>,
    #[serde(default)]
    config: Vec<ComposeIpamPool>,
    options: Option<Value>,
}

/// One entry of `ipam.config`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ComposeIpamPool {
    subnet: String,
    ip_range: Option<String>,
    gateway: Option<String>,
    aux_addresses: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComposeService {
    /// The service is deployed only when one of these is active (`COMPOSE_PROFILES`).
    profiles: Option<Vec<String>>,
    image: Option<String>,
    build: Option<Value>,
    command: Option<Value>,
    entrypoint: Option<Value>,
    working_dir: Option<String>,
    /// A name or `uid[:gid]`: `user: 1000` (a YAML number) is as good as `user: "1000"`.
    user: Option<Value>,
    stop_signal: Option<String>,
    hostname: Option<String>,
    extra_hosts: Option<Value>,
    init: Option<bool>,
    read_only: Option<bool>,
    privileged: Option<bool>,
    cap_add: Option<Value>,
    devices: Option<Value>,
    tty: Option<bool>,
    stdin_open: Option<bool>,
    /// `host`: the host's process namespace.
    pid: Option<String>,
    /// One container's name, as other containers of the file reach it: an alias of the service on
    /// its networks (tasks are named `<service>.<slot>.<id>`); for one replica only, as in compose.
    container_name: Option<String>,
    /// `private`, `shareable`, `none` or `host` (see [`ServiceSpec::ipc`]).
    ipc: Option<String>,
    /// `SERVICE` or `SERVICE:ALIAS`: a dependency on a service of the file, reached on a network they
    /// share by its name and the alias (see [`link_services`]).
    links: Option<Value>,
    /// Becomes [`ServiceSpec::pull_policy`] (unset: compose's default, see `pull_policy`).
    pull_policy: Option<String>,
    cap_drop: Option<Value>,
    logging: Option<ComposeLogging>,
    ulimits: Option<BTreeMap<String, Value>>,
    sysctls: Option<Value>,
    tmpfs: Option<Value>,
    shm_size: Option<Value>,
    security_opt: Option<Value>,
    pids_limit: Option<i64>,
    /// `os/arch[/variant]`: tasks go to hosts of that platform.
    platform: Option<String>,
    /// Compose's service-level forms of `deploy.resources` and `deploy.replicas`; where both are
    /// set they must agree.
    mem_limit: Option<Value>,
    mem_reservation: Option<Value>,
    cpus: Option<Value>,
    /// CFS quota and period in microseconds: a CPU limit of quota / period CPUs.
    cpu_quota: Option<Value>,
    cpu_period: Option<Value>,
    /// [`crate::spec::Resources::cpu_shares`], [`crate::spec::Resources::cpuset_cpus`] and
    /// [`crate::spec::Resources::memory_swap_limit`] (bytes, or -1).
    cpu_shares: Option<u64>,
    cpuset: Option<String>,
    memswap_limit: Option<Value>,
    /// [`crate::spec::Resources::memory_swappiness`], [`crate::spec::Resources::oom_kill_disable`] and
    /// [`ServiceSpec::oom_score_adj`].
    mem_swappiness: Option<u8>,
    oom_kill_disable: Option<bool>,
    oom_score_adj: Option<i32>,
    /// [`ServiceSpec::runtime`].
    runtime: Option<String>,
    scale: Option<u32>,
    group_add: Option<Value>,
    dns: Option<Value>,
    dns_search: Option<Value>,
    dns_opt: Option<Value>,
    environment: Option<Value>,
    env_file: Option<Value>,
    /// Files of `KEY=VALUE` lines, read as env files are, whose labels `labels` may override.
    label_file: Option<Value>,
    #[serde(default)]
    ports: Vec<Value>,
    /// Container ports other containers reach on the service's networks, not published.
    #[serde(default)]
    expose: Vec<Value>,
    #[serde(default)]
    volumes: Vec<Value>,
    networks: Option<Value>,
    /// `host`, `none` or `bridge`: the engine's network of that name instead of `networks`.
    network_mode: Option<String>,
    healthcheck: Option<ComposeHealthcheck>,
    labels: Option<Value>,
    depends_on: Option<Value>,
    stop_grace_period: Option<String>,
    restart: Option<String>,
    deploy: Option<ComposeDeploy>,
    #[serde(default)]
    secrets: Vec<Value>,
    #[serde(default)]
    configs: Vec<Value>,
    /// Settings compose has no key for.
    #[serde(rename = "x-dockfleet")]
    x_dockfleet: Option<ComposeDockfleet>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComposeLogging {
    driver: Option<String>,
    options: Option<BTreeMap<String, Value>>,
}

/// A service's `x-dockfleet:` extension: dockfleet's own settings that compose has no key for.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComposeDockfleet {
    /// [`ServiceSpec::shutdown_delay`], e.g. `5s`.
    shutdown_delay: Option<String>,
    /// [`ServiceSpec::allow_privileged`]: accept `privileged`, and the `cap_add`s, `security_opt`s and
    /// `devices` that hand a container its host.
    allow_privileged: Option<bool>,
    /// [`ServiceSpec::allow_host_mounts`]: accept binding the host's `/` or the Docker socket.
    allow_host_mounts: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComposeHealthcheck {
    test: Option<Value>,
    interval: Option<String>,
    timeout: Option<String>,
    retries: Option<u32>,
    start_period: Option<String>,
    start_interval: Option<Value>,
    #[serde(default)]
    disable: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ComposeDeploy {
    mode: Option<String>,
    replicas: Option<u32>,
    placement: Option<ComposePlacement>,
    resources: Option<ComposeResources>,
    restart_policy: Option<ComposeRestart>,
    update_config: Option<ComposeUpdate>,
    rollback_config: Option<ComposeUpdate>,
    labels: Option<Value>,
    endpoint_mode: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ComposePlacement {
    #[serde(default)]
    constraints: Vec<String>,
    #[serde(default)]
    preferences: Vec<ComposePreference>,
    max_replicas_per_node: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComposePreference {
    spread: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ComposeResources {
    limits: Option<ComposeResource>,
    reservations: Option<ComposeResource>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ComposeResource {
    cpus: Option<Value>,
    memory: Option<Value>,
    pids: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ComposeRestart {
    condition: Option<String>,
    delay: Option<String>,
    max_attempts: Option<u32>,
    window: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ComposeUpdate {
    parallelism: Option<u32>,
    delay: Option<String>,
    failure_action: Option<String>,
    monitor: Option<String>,
    max_failure_ratio: Option<f64>,
    order: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Parsing.

/// Parses a Go-style duration as compose writes them: `1m30s`, `10s`, `500ms`, `1.5h`, `0`.
pub fn parse_duration(field: &str, text: &str) -> Result<Duration> {
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let bad = || Error::invalid(field, format!("{text:?} is not a duration like 1m30s, 10s or 500ms"));
    let mut total = 0f64;
    let mut rest = t;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// Parses a byte size as compose writes them: `512M`, `1g`, `100kb`, `1048576`.
pub fn parse_bytes(field: &str, value: &Value) -> Result<u64> {
    let bad = |v: &str| Error::invalid(field, format!("{v:?} is not a size like 512M, 1G or a number of bytes"));
    let text = match value {
        Value::Number(n) => return n.as_u64().ok_or_else(|| bad(&n.to_string())),
        Value::String(s) => s.trim().to_ascii_lowercase(),
        other => return Err(bad(&format!("{other:?}"))),
    };
    let t = text.strip_suffix('b').unwrap_or(&text);
    let (num, scale) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.trim().parse().map_err(|_| bad(&text))?;
    if !(n.is_finite() && n >= 0.0) {
        return Err(bad(&text));
    }
    Ok((n * scale as f64) as u64)
}

/// A scalar YAML value as text (`KEY: 1` and `KEY: true` are strings in an environment).
fn scalar(field: &str, v: &Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        _ => Err(Error::invalid(field, "must be a string, number or boolean")),
    }
}

fn string_list(field: &str, v: &Value) -> Result<Vec<String>> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Sequence(items) => items.iter().enumerate().map(|(i, x)| scalar(&format!("{field}[{i}]"), x)).collect(),
        _ => Err(Error::invalid(field, "must be a string or a list of strings")),
    }
}

/// `KEY=VALUE` lists and `KEY: VALUE` maps of environment variables and build arguments. A list item
/// `KEY` without a value, or a map value `null`, takes the value from the compose file's environment
/// (this process's, over its `.env` file), as compose does, and is left out when that is unset.
fn env_list_or_dict(field: &str, v: &Value, env: &Env) -> Result<BTreeMap<String, String>> {
    list_or_dict(field, v, |k| env.get(k).cloned())
}

/// `KEY=VALUE` lists and `KEY: VALUE` maps of labels. A list item `KEY` without a value, or a map
/// value `null`, is the label with an empty value, as compose has it (not one from the environment).
fn label_list_or_dict(field: &str, v: &Value) -> Result<BTreeMap<String, String>> {
    list_or_dict(field, v, |_| Some(String::new()))
}

/// A list or map of `KEY=VALUE`; `bare(KEY)` gives the value of a `KEY` without one (`None`: left out).
fn list_or_dict(field: &str, v: &Value, bare: impl Fn(&str) -> Option<String>) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    match v {
        Value::Mapping(m) => {
            for (k, val) in m {
                let k = scalar(field, k)?;
                let path = format!("{field}.{k}");
                if val.is_null() {
                    if let Some(v) = bare(&k) {
                        out.insert(k, v);
                    }
                } else {
                    out.insert(k, scalar(&path, val)?);
                }
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                let item = scalar(&format!("{field}[{i}]"), item)?;
                match item.split_once('=') {
                    Some((k, v)) => {
                        out.insert(k.to_string(), v.to_string());
                    }
                    None => {
                        if let Some(v) = bare(&item) {
                            out.insert(item, v);
                        }
                    }
                }
            }
        }
        Value::Null => {}
        _ => return Err(Error::invalid(field, "must be a map or a list of KEY=VALUE")),
    }
    Ok(out)
}

/// Splits a command line as a POSIX shell would split words (quotes and backslashes; no expansion).
fn shell_words(field: &str, text: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(Error::invalid(field, "unterminated single quote")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x) => cur.push(x),
                            None => return Err(Error::invalid(field, "unterminated double quote")),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(Error::invalid(field, "unterminated double quote")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Compose's `extra_hosts` as `name:address` entries: a list of `name:address` or `name=address`
/// (an IPv6 address may be in brackets), or a map of names to an address or a list of them.
fn extra_hosts(field: &str, v: &Value) -> Result<Vec<String>> {
    let entry = |name: &str, address: &str| {
        let address = address.trim();
        let address = address.strip_prefix('[').and_then(|a| a.strip_suffix(']')).unwrap_or(address);
        format!("{}:{address}", name.trim())
    };
    let mut out = Vec::new();
    match v {
        Value::Mapping(m) => {
            for (k, v) in m {
                let name = scalar(field, k)?;
                let f = format!("{field}.{name}");
                let addresses = match v {
                    Value::Sequence(_) => string_list(&f, v)?,
                    other => vec![scalar(&f, other)?],
                };
                out.extend(addresses.iter().map(|a| entry(&name, a)));
            }
        }
        other => {
            for (i, e) in string_list(field, other)?.iter().enumerate() {
                let (name, address) = e
                    .split_once('=')
                    .or_else(|| e.split_once(':'))
                    .ok_or_else(|| Error::invalid(format!("{field}[{i}]"), format!("{e:?} is not name:address")))?;
                out.push(entry(name, address));
            }
        }
    }
    Ok(out)
}

/// The profile file a `seccomp` security option names (`seccomp=profile.json`), if it names one
/// rather than `unconfined` or inline JSON.
fn seccomp_file(opt: &str) -> Option<&str> {
    let path = opt.strip_prefix("seccomp").and_then(|r| r.strip_prefix(['=', ':']))?;
    (!(path == "unconfined" || path.trim_start().starts_with('{') || path.is_empty())).then_some(path)
}

/// A `seccomp` security option naming a profile's file (neither `unconfined` nor JSON text) becomes
/// `seccomp=` and the file's text, as compose and the docker CLI send it; the path is relative to the
/// compose file's directory. Other entries are kept as written.
fn seccomp_profile_file(field: &str, opt: String, base_dir: &Path) -> Result<String> {
    let Some(path) = seccomp_file(&opt) else { return Ok(opt) };
    let text = crate::files::read_text(&base_dir.join(path), 1 << 20)
        .map_err(|why| Error::invalid(field, format!("seccomp profile {why}")))?;
    Ok(format!("seccomp={}", text.trim()))
}

/// A compose `platform` (`linux/amd64`, `linux/arm/v7`) as placement constraints on the platform a
/// host's engine reports: its OS type, and its architecture as the kernel names it (`x86_64`,
/// `aarch64`, `armv7l`), as Swarm matches `node.platform.arch`.
fn platform_constraints(field: &str, platform: &str) -> Result<Vec<String>> {
    let parts: Vec<&str> = platform.split('/').collect();
    let named = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| named(p)) {
        return Err(Error::invalid(field, format!("{platform:?} is not os/arch or os/arch/variant")));
    }
    let arch = match (parts[1], parts.get(2).copied()) {
        ("amd64", _) => "x86_64",
        ("arm64", _) => "aarch64",
        ("386", _) => "i686",
        ("arm", Some("v6")) => "armv6l",
        ("arm", Some("v7") | None) => "armv7l",
        (other, _) => other,
    };
    Ok(vec![format!("{}=={}", crate::spec::PLATFORM_OS, parts[0]), format!("{}=={arch}", crate::spec::PLATFORM_ARCH)])
}

/// A number of CPUs (`0.5`, `"2"`).
fn cpu_count(field: &str, v: &Option<Value>) -> Result<Option<f64>> {
    v.as_ref()
        .map(|v| {
            let t = scalar(field, v)?;
            match t.parse::<f64>() {
                Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
                _ => Err(Error::invalid(field, format!("{t:?} is not a number of CPUs"))),
            }
        })
        .transpose()
}

/// The CPU limit that compose's `cpu_quota` and `cpu_period` (CFS microseconds; the period defaults
/// to the kernel's 100 ms) stand for: quota / period CPUs. Both are bounded as the kernel bounds them
/// (1 ms to 1 s for the period, at least 1 ms for the quota).
fn cfs_cpus(f: &dyn Fn(&str) -> String, quota: &Option<Value>, period: &Option<Value>) -> Result<Option<f64>> {
    let micros = |key: &str, v: &Value, max: u64| -> Result<u64> {
        let t = scalar(&f(key), v)?;
        match t.parse::<u64>() {
            Ok(n) if (1000..=max).contains(&n) => Ok(n),
            _ => Err(Error::invalid(f(key), format!("{t:?} is not a number of microseconds from 1000 to {max}"))),
        }
    };
    let period = period.as_ref().map(|p| micros("cpu_period", p, 1_000_000)).transpose()?;
    match (quota, period) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(Error::invalid(f("cpu_period"), "a period limits nothing without cpu_quota")),
        (Some(q), p) => {
            let q = micros("cpu_quota", q, u64::MAX)?;
            Ok(Some(q as f64 / p.unwrap_or(100_000) as f64))
        }
    }
}

/// A `deploy` value and its service-level form (`service_key`): where both are set they must be
/// the same (compose requires it); either one is the value.
fn agree<T: PartialEq + std::fmt::Debug>(
    field: &str,
    deploy: Option<T>,
    service: Option<T>,
    service_key: &str,
) -> Result<Option<T>> {
    match (deploy, service) {
        (Some(d), Some(s)) if d != s => {
            Err(Error::invalid(field, format!("{d:?} differs from the service's {service_key}, {s:?}")))
        }
        (d, s) => Ok(d.or(s)),
    }
}

/// An `expose` entry (`3000`, `"8000/udp"`): a container port, not published.
fn exposed(field: &str, v: &Value) -> Result<ServicePort> {
    let p = port(field, v)?;
    if v.is_mapping() || p.published != Some(0) {
        return Err(Error::invalid(field, "expose takes a container port (3000 or 3000/udp), not a mapping"));
    }
    Ok(ServicePort { published: None, ..p })
}

fn port(field: &str, v: &Value) -> Result<ServicePort> {
    let bad = |why: &str| Error::invalid(field, why.to_string());
    let num = |f: &str, v: &Value| -> Result<u16> {
        let s = scalar(f, v)?;
        s.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| Error::invalid(f, format!("{s:?} is not a port 1-65535")))
    };
    match v {
        Value::Number(_) => Ok(ServicePort { target: num(field, v)?, published: Some(0), ..Default::default() }),
        Value::String(s) => {
            let (spec, protocol) = s.split_once('/').unwrap_or((s.as_str(), "tcp"));
            // `8000-8002:80-82` is a range; `-1:80` is only a bad port.
            let is_range = |part: &str| {
                part.split_once('-')
                    .is_some_and(|(a, b)| !a.is_empty() && a.chars().chain(b.chars()).all(|c| c.is_ascii_digit()))
            };
            if spec.split(':').any(is_range) {
                return Err(bad("port ranges are not supported: list each port"));
            }
            let parts: Vec<&str> = spec.split(':').collect();
            let p = |t: &str| Value::String(t.to_string());
            match parts[..] {
                [target] => Ok(ServicePort {
                    target: num(field, &p(target))?,
                    published: Some(0),
                    protocol: protocol.into(),
                    mode: None,
                }),
                [published, target] => Ok(ServicePort {
                    target: num(field, &p(target))?,
                    published: Some(num(field, &p(published))?),
                    protocol: protocol.into(),
                    mode: None,
                }),
                _ => Err(bad("binding a published port to one host address is not supported: use PUBLISHED:TARGET")),
            }
        }
        Value::Mapping(m) => {
            let mut out = ServicePort { published: Some(0), ..Default::default() };
            for (k, val) in m {
                let k = scalar(field, k)?;
                let f = format!("{field}.{k}");
                match k.as_str() {
                    "target" => out.target = num(&f, val)?,
                    "published" => out.published = Some(num(&f, val)?),
                    "protocol" => out.protocol = scalar(&f, val)?,
                    "mode" => {
                        let mode = scalar(&f, val)?;
                        if !crate::spec::PUBLISH_MODES.contains(&mode.as_str()) {
                            return Err(Error::invalid(f, format!("{mode:?} is not host or ingress")));
                        }
                        out.mode = Some(mode);
                    }
                    // Descriptions of the port for tools; the engine takes neither.
                    "name" | "app_protocol" => {
                        scalar(&f, val)?;
                    }
                    _ => return Err(Error::invalid(f, "unknown key")),
                }
            }
            if out.target == 0 {
                return Err(Error::invalid(format!("{field}.target"), "is required"));
            }
            Ok(out)
        }
        _ => Err(bad("must be \"PUBLISHED:TARGET[/PROTOCOL]\", a port number or a map")),
    }
}

struct Names<'a> {
    stack: &'a str,
    base_dir: &'a Path,
    env: &'a Env,
    volumes: &'a BTreeMap<String, String>,
    networks: &'a BTreeMap<String, String>,
    secrets: &'a BTreeMap<String, String>,
    configs: &'a BTreeMap<String, String>,
}

/// A service's `secrets:` or `configs:` entry: `NAME` or `{source, target, mode, uid, gid}`.
fn service_file(field: &str, v: &Value, declared: &BTreeMap<String, String>, secret: bool) -> Result<ServiceFile> {
    let section = if secret { "secrets" } else { "configs" };
    let (key, target, mode) = match v {
        Value::String(k) => (k.clone(), None, None),
        Value::Mapping(m) => {
            let (mut key, mut target, mut mode) = (None, None, None);
            for (k, val) in m {
                let k = scalar(field, k)?;
                let kf = format!("{field}.{k}");
                match k.as_str() {
                    "source" => key = Some(scalar(&kf, val)?),
                    "target" => target = Some(scalar(&kf, val)?),
                    "mode" => mode = Some(file_mode(&kf, val)?),
                    "uid" | "gid" if scalar(&kf, val)? == "0" => {}
                    "uid" | "gid" => return Err(Error::invalid(kf, "only 0 (the default) is supported")),
                    _ => return Err(Error::invalid(kf, "unknown key (source, target, mode, uid, gid)")),
                }
            }
            (key.ok_or_else(|| Error::invalid(format!("{field}.source"), "is required"))?, target, mode)
        }
        _ => return Err(Error::invalid(field, "must be a name or a map with source")),
    };
    let full = declared
        .get(&key)
        .ok_or_else(|| Error::invalid(field, format!("{key:?} is not declared in the top-level {section}")))?;
    // Compose mounts a secret at /run/secrets/KEY and a config at /KEY, whatever the object's full name.
    let target = target.unwrap_or_else(|| if secret { key.clone() } else { format!("/{key}") });
    Ok(ServiceFile { source: full.clone(), target, mode: mode.unwrap_or(0o444) })
}

/// A service's `volumes:` entry: a mount, or (`type: tmpfs`) a tmpfs entry as `tmpfs:` has them.
enum Mounted {
    Mount(Mount),
    Tmpfs(String),
}

/// A boolean as compose writes one: `true`/`false`, quoted or not.
fn flag(field: &str, v: &Value) -> Result<bool> {
    match scalar(field, v)?.as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(Error::invalid(field, format!("{other:?} is not true or false"))),
    }
}

/// A file mode. Compose writes modes in octal (0440), which YAML 1.2 reads as a string; a plain
/// number (288) is taken as it is.
fn file_mode(field: &str, val: &Value) -> Result<u32> {
    let text = scalar(field, val)?;
    let octal = text.strip_prefix("0o").or_else(|| text.strip_prefix('0').filter(|t| !t.is_empty()));
    let n = match (val.as_u64(), octal) {
        (Some(n), _) => u32::try_from(n).ok(),
        (None, Some(o)) => u32::from_str_radix(o, 8).ok(),
        (None, None) => text.parse().ok(),
    };
    n.filter(|m| *m <= 0o7777).ok_or_else(|| Error::invalid(field, format!("{text:?} is not a file mode (0440)")))
}

/// Bind consistency modes: Docker Desktop's, which engines on Linux accept and ignore.
const CONSISTENCY: &[&str] = &["consistent", "cached", "delegated"];

fn volume(field: &str, v: &Value, names: &Names<'_>) -> Result<Mounted> {
    let mut mount = Mount::default();
    let mut tmpfs: Vec<String> = Vec::new();
    match v {
        Value::String(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            let (src, dst, mode) = match parts[..] {
                [_] => {
                    return Err(Error::invalid(
                        field,
                        "anonymous volumes are not supported: name the volume (NAME:PATH)",
                    ))
                }
                [src, dst] => (src, dst, ""),
                [src, dst, mode] => (src, dst, mode),
                _ => return Err(Error::invalid(field, format!("{s:?} is not SOURCE:TARGET[:MODE]"))),
            };
            (mount.source, mount.target) = (src.to_string(), dst.to_string());
            for m in mode.split(',').filter(|m| !m.is_empty()) {
                match m {
                    "ro" => mount.read_only = true,
                    "rw" => mount.read_only = false,
                    "z" | "Z" => mount.selinux = Some(m.to_string()),
                    "nocopy" => mount.no_copy = true,
                    _ if crate::host::PROPAGATIONS.contains(&m) => mount.propagation = Some(m.to_string()),
                    _ if CONSISTENCY.contains(&m) => {}
                    _ => {
                        return Err(Error::invalid(
                            field,
                            format!(
                                "{m:?} is not ro, rw, z, Z, nocopy or a propagation ({})",
                                crate::host::PROPAGATIONS.join(", ")
                            ),
                        ))
                    }
                }
            }
        }
        Value::Mapping(m) => {
            let mut kind = String::new();
            let sub = |f: &str, val: &Value| match val {
                Value::Mapping(m) => m.iter().map(|(k, v)| Ok((scalar(f, k)?, v.clone()))).collect::<Result<Vec<_>>>(),
                _ => Err(Error::invalid(f, "must be a map")),
            };
            let mut sections = Vec::new();
            for (k, val) in m {
                let k = scalar(field, k)?;
                let f = format!("{field}.{k}");
                match k.as_str() {
                    "type" => {
                        kind = scalar(&f, val)?;
                        if !["volume", "bind", "tmpfs"].contains(&kind.as_str()) {
                            return Err(Error::invalid(f, format!("{kind:?} is not volume, bind or tmpfs")));
                        }
                    }
                    "source" => mount.source = scalar(&f, val)?,
                    "target" => mount.target = scalar(&f, val)?,
                    "read_only" => mount.read_only = flag(&f, val)?,
                    "consistency" => {
                        let c = scalar(&f, val)?;
                        if !CONSISTENCY.contains(&c.as_str()) {
                            return Err(Error::invalid(f, format!("{c:?} is not one of {CONSISTENCY:?}")));
                        }
                    }
                    "bind" | "volume" | "tmpfs" => sections.push((k.clone(), f.clone(), sub(&f, val)?)),
                    _ => return Err(Error::invalid(f, "unknown key")),
                }
            }
            if kind.is_empty() {
                // Without a type, a path is a bind and a name a volume, as in the short form.
                let path = ['/', '.', '~'].iter().any(|c| mount.source.starts_with(*c));
                kind = if path { "bind" } else { "volume" }.into();
            }
            for (section, sf, entries) in sections {
                if section != kind {
                    return Err(Error::invalid(sf, format!("is for type: {section}, and this mount is a {kind}")));
                }
                for (k, val) in &entries {
                    let f = format!("{sf}.{k}");
                    match (section.as_str(), k.as_str()) {
                        ("bind", "propagation") => mount.propagation = Some(scalar(&f, val)?),
                        ("bind", "selinux") => mount.selinux = Some(scalar(&f, val)?),
                        ("bind", "create_host_path") => {
                            if !flag(&f, val)? {
                                return Err(Error::invalid(
                                    f,
                                    "false is not supported: an engine creates a missing host path for a bind",
                                ));
                            }
                        }
                        ("volume", "nocopy") => mount.no_copy = flag(&f, val)?,
                        ("volume", "subpath") => {
                            return Err(Error::invalid(f, "not supported: subpaths need engine API 1.45"))
                        }
                        ("tmpfs", "size") => tmpfs.push(format!("size={}", parse_bytes(&f, val)?)),
                        ("tmpfs", "mode") => tmpfs.push(format!("mode={:o}", file_mode(&f, val)?)),
                        _ => return Err(Error::invalid(f, "unknown key")),
                    }
                }
            }
            if kind == "tmpfs" {
                if !mount.source.is_empty() || mount.read_only {
                    return Err(Error::invalid(
                        field,
                        "a tmpfs takes a target (and size, mode), no source or read_only",
                    ));
                }
                let entry =
                    if tmpfs.is_empty() { mount.target } else { format!("{}:{}", mount.target, tmpfs.join(",")) };
                return Ok(Mounted::Tmpfs(entry));
            }
            if kind == "bind" && mount.source.is_empty() {
                return Err(Error::invalid(format!("{field}.source"), "is required for a bind"));
            }
            if kind == "volume" && (mount.source.starts_with('/') || mount.source.starts_with('.')) {
                return Err(Error::invalid(
                    format!("{field}.source"),
                    format!("{:?} is a path: a volume's source names a volume (use type: bind)", mount.source),
                ));
            }
        }
        _ => return Err(Error::invalid(field, "must be \"SOURCE:TARGET[:MODE]\" or a map")),
    };
    let source = std::mem::take(&mut mount.source);
    mount.source = if source.starts_with('/') {
        source
    } else if source == "~" || source.starts_with("~/") {
        // As compose does: the home directory of the user running it.
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::invalid(format!("{field}.source"), "~ needs HOME set"))?;
        std::path::Path::new(&home)
            .join(source.trim_start_matches('~').trim_start_matches('/'))
            .to_string_lossy()
            .into_owned()
    } else if source.starts_with('.') {
        names.base_dir.join(&source).to_string_lossy().into_owned()
    } else {
        names.volumes.get(&source).cloned().ok_or_else(|| {
            Error::invalid(field, format!("volume {source:?} is not declared in the top-level volumes"))
        })?
    };
    mount.validate(field)?;
    Ok(Mounted::Mount(mount))
}

/// A compose `pull_policy` as [`ServiceSpec::pull_policy`]. Unset, it is compose's default: `missing`,
/// or `never` for a service with `build:`, which every `stack_up` builds (the engine's cache keeps that
/// quick) and copies to the hosts that lack it, as `build` says too. dockfleet pulls when it deploys,
/// not on a schedule, so `daily`, `weekly` and `every_<duration>` are refused.
fn pull_policy(field: &str, policy: Option<&str>, has_build: bool) -> Result<String> {
    Ok(match policy {
        None if has_build => "never",
        None | Some("missing" | "if_not_present") => "missing",
        Some("always") if has_build => {
            return Err(Error::invalid(
                field,
                "a service with build: is built at every stack_up; always would pull over it",
            ))
        }
        Some(p @ ("never" | "always")) => p,
        Some("build") if has_build => "never",
        Some("build") => return Err(Error::invalid(field, "build needs a build: section to build from")),
        Some(p) if ["daily", "weekly"].contains(&p) || p.starts_with("every_") => {
            return Err(Error::invalid(
                field,
                format!("{p}: dockfleet pulls when it deploys, not on a schedule (always pulls at every deploy)"),
            ))
        }
        Some(p) => return Err(Error::invalid(field, format!("{p:?} is not missing, never, build or always"))),
    }
    .to_string())
}

fn service_from(svc_name: &str, s: ComposeService, names: &Names<'_>) -> Result<StackService> {
    let field = format!("services.{svc_name}");
    let f = |k: &str| format!("{field}.{k}");
    let mut spec = ServiceSpec::new(format!("{}_{svc_name}", names.stack), "");
    spec.pull_policy = Some(pull_policy(&f("pull_policy"), s.pull_policy.as_deref(), s.build.is_some())?);
    let build = match &s.build {
        None => None,
        Some(Value::String(ctx)) => Some(StackBuild { context: names.base_dir.join(ctx), ..Default::default() }),
        Some(Value::Mapping(m)) => {
            let mut b = StackBuild { context: names.base_dir.to_path_buf(), ..Default::default() };
            for (k, v) in m {
                let k = scalar(&f("build"), k)?;
                let kf = f(&format!("build.{k}"));
                match k.as_str() {
                    "context" => b.context = names.base_dir.join(scalar(&kf, v)?),
                    "dockerfile" => b.dockerfile = Some(scalar(&kf, v)?),
                    "args" => b.args = env_list_or_dict(&kf, v, names.env)?,
                    "target" => {
                        let t = scalar(&kf, v)?;
                        crate::host::validate_name(&kf, &t)?;
                        b.target = Some(t);
                    }
                    "labels" => b.labels = label_list_or_dict(&kf, v)?,
                    "no_cache" => {
                        b.no_cache = v.as_bool().ok_or_else(|| Error::invalid(&kf, "must be true or false"))?
                    }
                    "cache_from"
                    | "cache_to"
                    | "network"
                    | "pull"
                    | "platforms"
                    | "secrets"
                    | "ssh"
                    | "shm_size"
                    | "extra_hosts"
                    | "isolation"
                    | "privileged"
                    | "tags"
                    | "additional_contexts"
                    | "ulimits"
                    | "dockerfile_inline"
                    | "entitlements" => {
                        return Err(Error::invalid(
                            kf,
                            "not supported: dockfleet builds with the engine's own builder from context, \
                             dockerfile, args, target, labels and no_cache",
                        ))
                    }
                    _ => return Err(Error::invalid(kf, "unknown key")),
                }
            }
            Some(b)
        }
        Some(_) => return Err(Error::invalid(f("build"), "must be a context path or a map")),
    };
    spec.image = match (&s.image, &build) {
        (Some(i), _) => i.clone(),
        (None, Some(_)) => format!("{}:latest", spec.name),
        (None, None) => return Err(Error::invalid(f("image"), "is required (or a build section)")),
    };
    let words = |field: &str, v: &Value| match v {
        Value::String(line) => shell_words(&f(field), line),
        other => string_list(&f(field), other),
    };
    if let Some(c) = &s.command {
        spec.command = words("command", c)?;
    }
    if let Some(e) = &s.entrypoint {
        spec.entrypoint = Some(words("entrypoint", e)?);
    }
    spec.working_dir = s.working_dir.clone();
    spec.user = s.user.as_ref().map(|u| scalar(&f("user"), u)).transpose()?;
    spec.stop_signal = s.stop_signal.clone();
    if let Some(files) = &s.env_file {
        // Each entry a path, or (compose 2.24) {path, required}: a file not required may be missing.
        let items = match files {
            Value::Sequence(items) => items.clone(),
            one => vec![one.clone()],
        };
        for (i, item) in items.iter().enumerate() {
            let ef = f(&format!("env_file[{i}]"));
            let (file, required) = match item {
                Value::Mapping(m) => {
                    let (mut path, mut required) = (None, true);
                    for (k, v) in m {
                        let k = scalar(&ef, k)?;
                        let kf = format!("{ef}.{k}");
                        match k.as_str() {
                            "path" => path = Some(scalar(&kf, v)?),
                            "required" => {
                                required = v.as_bool().ok_or_else(|| Error::invalid(&kf, "must be true or false"))?
                            }
                            _ => return Err(Error::invalid(kf, "unknown key")),
                        }
                    }
                    (path.ok_or_else(|| Error::invalid(format!("{ef}.path"), "is required"))?, required)
                }
                other => (scalar(&ef, other)?, true),
            };
            let path = names.base_dir.join(&file);
            if !required && !path.exists() {
                continue;
            }
            spec.env.extend(crate::dotenv::read(&ef, &path, &|k| names.env.get(k).cloned())?);
        }
    }
    if let Some(env) = &s.environment {
        spec.env.extend(env_list_or_dict(&f("environment"), env, names.env)?);
    }
    // Labels from files first (compose 2.24's `label_file`, read as env files are); `labels` win.
    if let Some(files) = &s.label_file {
        for (i, file) in string_list(&f("label_file"), files)?.iter().enumerate() {
            let path = names.base_dir.join(file);
            let read = crate::dotenv::read(&f(&format!("label_file[{i}]")), &path, &|k| names.env.get(k).cloned())?;
            spec.labels.extend(read);
        }
    }
    if let Some(labels) = &s.labels {
        spec.labels.extend(label_list_or_dict(&f("labels"), labels)?);
    }
    spec.labels.insert(LABEL_STACK.into(), names.stack.into());
    spec.ports = s.ports.iter().enumerate().map(|(i, p)| port(&f(&format!("ports[{i}]")), p)).collect::<Result<_>>()?;
    for (i, e) in s.expose.iter().enumerate() {
        let p = exposed(&f(&format!("expose[{i}]")), e)?;
        if !spec.ports.iter().any(|q| (q.target, &q.protocol) == (p.target, &p.protocol)) {
            spec.ports.push(p);
        }
    }
    let mut tmpfs_mounts = Vec::new();
    for (i, v) in s.volumes.iter().enumerate() {
        match volume(&f(&format!("volumes[{i}]")), v, names)? {
            Mounted::Mount(m) => spec.volumes.push(m),
            Mounted::Tmpfs(t) => tmpfs_mounts.push(t),
        }
    }
    let mut aliases = vec![svc_name.to_string()];
    if let Some(n) = &s.container_name {
        crate::host::validate_alias(&f("container_name"), n)?;
        aliases.push(n.clone());
    }
    if let Some(mode) = &s.network_mode {
        let mf = f("network_mode");
        if s.networks.is_some() {
            return Err(Error::invalid(mf, "network_mode and networks exclude each other"));
        }
        match mode.as_str() {
            "host" | "none" | "bridge" => spec.networks.push(mode.clone()),
            m if m.starts_with("service:") || m.starts_with("container:") => {
                return Err(Error::invalid(
                    mf,
                    "a task has its own network namespace: the other one may run on another host (join a \
                     network of the stack instead)",
                ))
            }
            _ => return Err(Error::invalid(mf, format!("{mode:?} is not host, none or bridge"))),
        }
    }
    let nets: Vec<String> = match &s.networks {
        None if s.network_mode.is_some() => Vec::new(),
        None => vec!["default".into()],
        Some(Value::Mapping(m)) => {
            let mut out = Vec::new();
            for (k, v) in m {
                let k = scalar(&f("networks"), k)?;
                let nf = f(&format!("networks.{k}"));
                match v {
                    Value::Null => {}
                    Value::Mapping(options) => {
                        for (o, ov) in options {
                            match scalar(&nf, o)?.as_str() {
                                // On every network of the service: a task has one set of aliases.
                                "aliases" => {
                                    let af = format!("{nf}.aliases");
                                    for (j, a) in string_list(&af, ov)?.into_iter().enumerate() {
                                        crate::host::validate_alias(&format!("{af}[{j}]"), &a)?;
                                        aliases.push(a);
                                    }
                                }
                                other => {
                                    return Err(Error::invalid(
                                        format!("{nf}.{other}"),
                                        "per-service network options other than aliases are not supported",
                                    ))
                                }
                            }
                        }
                    }
                    _ => return Err(Error::invalid(nf, "must be a map of options (aliases) or empty")),
                }
                out.push(k);
            }
            out
        }
        Some(other) => string_list(&f("networks"), other)?,
    };
    for (i, n) in nets.iter().enumerate() {
        let full =
            names.networks.get(n).cloned().or_else(|| (n == "default").then(|| format!("{}_default", names.stack)));
        let full = full.ok_or_else(|| {
            Error::invalid(
                f(&format!("networks[{i}]")),
                format!("network {n:?} is not declared in the top-level networks"),
            )
        })?;
        spec.networks.push(full);
    }
    spec.hostname = s.hostname.clone();
    if let Some(v) = &s.extra_hosts {
        spec.extra_hosts = extra_hosts(&f("extra_hosts"), v)?;
    }
    spec.init = s.init;
    spec.read_only = s.read_only.unwrap_or(false);
    if let Some(v) = &s.devices {
        spec.devices = string_list(&f("devices"), v)?;
    }
    spec.tty = s.tty.unwrap_or(false);
    spec.stdin_open = s.stdin_open.unwrap_or(false);
    spec.pid = s.pid.clone();
    if let Some(m) = s.ipc.as_deref().filter(|m| m.starts_with("service:") || m.starts_with("container:")) {
        return Err(Error::invalid(
            f("ipc"),
            format!("{m:?}: a task has its own IPC namespace: the other one may run on another host"),
        ));
    }
    spec.ipc = s.ipc.clone();
    if let Some(v) = &s.cap_add {
        spec.cap_add = string_list(&f("cap_add"), v)?;
    }
    if let Some(v) = &s.cap_drop {
        spec.cap_drop = string_list(&f("cap_drop"), v)?;
    }
    if let Some(l) = &s.logging {
        let mut options = BTreeMap::new();
        for (k, v) in l.options.iter().flatten() {
            options.insert(k.clone(), scalar(&f(&format!("logging.options.{k}")), v)?);
        }
        spec.logging = Some(crate::host::LogConfig { driver: l.driver.clone().unwrap_or_default(), options });
    }
    for (name, v) in s.ulimits.iter().flatten() {
        let uf = f(&format!("ulimits.{name}"));
        let int = |field: &str, v: &Value| {
            v.as_i64().ok_or_else(|| Error::invalid(field, "must be a whole number (-1: unlimited)"))
        };
        let (soft, hard) = match v {
            Value::Mapping(m) => {
                let (mut soft, mut hard) = (None, None);
                for (k, v) in m {
                    match scalar(&uf, k)?.as_str() {
                        "soft" => soft = Some(int(&format!("{uf}.soft"), v)?),
                        "hard" => hard = Some(int(&format!("{uf}.hard"), v)?),
                        other => return Err(Error::invalid(format!("{uf}.{other}"), "unknown key (soft, hard)")),
                    }
                }
                (soft, hard)
            }
            other => {
                let n = int(&uf, other)?;
                (Some(n), Some(n))
            }
        };
        let (soft, hard) = soft.zip(hard).ok_or_else(|| Error::invalid(&uf, "needs both soft and hard"))?;
        spec.ulimits.push(crate::host::Ulimit { name: name.clone(), soft, hard });
    }
    if let Some(v) = &s.sysctls {
        spec.sysctls = label_list_or_dict(&f("sysctls"), v)?;
    }
    if let Some(v) = &s.tmpfs {
        spec.tmpfs = string_list(&f("tmpfs"), v)?;
    }
    spec.tmpfs.extend(tmpfs_mounts);
    if let Some(v) = &s.shm_size {
        spec.shm_size = Some(parse_bytes(&f("shm_size"), v)?);
    }
    crate::host::validate_pids_limit(&f("pids_limit"), s.pids_limit)?;
    spec.resources.pids_limit = s.pids_limit;
    let mem = |k: &str, v: &Option<Value>| v.as_ref().map(|v| parse_bytes(&f(k), v)).transpose();
    spec.resources.memory_limit = mem("mem_limit", &s.mem_limit)?;
    spec.resources.memory_reservation = mem("mem_reservation", &s.mem_reservation)?;
    // `cpus: 0` is no limit.
    spec.resources.cpu_limit = cpu_count(&f("cpus"), &s.cpus)?.filter(|c| *c != 0.0);
    let quota = cfs_cpus(&f, &s.cpu_quota, &s.cpu_period)?;
    spec.resources.cpu_limit = agree(&f("cpu_quota"), quota, spec.resources.cpu_limit, "cpus")?;
    crate::host::validate_cpu_shares(&f("cpu_shares"), s.cpu_shares)?;
    spec.resources.cpu_shares = s.cpu_shares;
    if let Some(set) = &s.cpuset {
        crate::host::cpuset_cpus(&f("cpuset"), set)?;
    }
    spec.resources.cpuset_cpus = s.cpuset.clone();
    spec.resources.memory_swap_limit = match &s.memswap_limit {
        None => None,
        Some(v) if v.as_i64() == Some(-1) || v.as_str() == Some("-1") => Some(-1),
        Some(v) => Some(parse_bytes(&f("memswap_limit"), v)?.min(i64::MAX as u64) as i64),
    };
    if let Some(n) = s.scale {
        crate::spec::check_replicas(&f("scale"), n)?;
        spec.replicas = n;
    }
    if let Some(v) = &s.group_add {
        spec.group_add = string_list(&f("group_add"), v)?;
    }
    if let Some(v) = &s.security_opt {
        let field = f("security_opt");
        spec.security_opt = string_list(&field, v)?
            .into_iter()
            .enumerate()
            .map(|(i, o)| seccomp_profile_file(&format!("{field}[{i}]"), o, names.base_dir))
            .collect::<Result<_>>()?;
    }
    for (key, src, dst) in [
        ("dns", &s.dns, &mut spec.dns),
        ("dns_search", &s.dns_search, &mut spec.dns_search),
        ("dns_opt", &s.dns_opt, &mut spec.dns_opt),
    ] {
        if let Some(v) = src {
            *dst = string_list(&f(key), v)?;
        }
    }
    // Compose's containers reach each other by the names in the file (on networks; `networks: []`
    // leaves a service on the engine's bridge, and the engine's own networks have no aliases).
    if spec.networks.first().is_some_and(|n| crate::host::is_user_network(n)) {
        let mut seen = std::collections::BTreeSet::new();
        aliases.retain(|a| seen.insert(a.clone()));
        spec.network_aliases = aliases;
    }
    if let Some(h) = &s.healthcheck {
        if h.start_interval.is_some() {
            return Err(Error::invalid(
                f("healthcheck.start_interval"),
                "not supported: a Healthcheck has no start interval (engines take one from API 1.44, \
                 Docker 25); use interval",
            ));
        }
        let d = |k: &str, v: &Option<String>| -> Result<Option<Duration>> {
            v.as_deref().map(|t| parse_duration(&f(&format!("healthcheck.{k}")), t)).transpose()
        };
        let test = if h.disable {
            vec!["NONE".to_string()]
        } else {
            match &h.test {
                Some(Value::String(cmd)) => vec!["CMD-SHELL".to_string(), cmd.clone()],
                Some(other) => string_list(&f("healthcheck.test"), other)?,
                None => return Err(Error::invalid(f("healthcheck.test"), "is required unless disable is set")),
            }
        };
        spec.healthcheck = Some(Healthcheck {
            test,
            interval: d("interval", &h.interval)?,
            timeout: d("timeout", &h.timeout)?,
            retries: h.retries,
            start_period: d("start_period", &h.start_period)?,
        });
    }
    if let Some(g) = &s.stop_grace_period {
        spec.stop_grace_period = parse_duration(&f("stop_grace_period"), g)?;
    }
    spec.privileged = s.privileged.unwrap_or(false);
    if let Some(x) = &s.x_dockfleet {
        spec.allow_privileged = x.allow_privileged.unwrap_or(false);
        spec.allow_host_mounts = x.allow_host_mounts.unwrap_or(false);
    }
    if let Some(d) = s.x_dockfleet.as_ref().and_then(|x| x.shutdown_delay.as_deref()) {
        let field = f("x-dockfleet.shutdown_delay");
        spec.shutdown_delay = parse_duration(&field, d)?;
        if spec.shutdown_delay > crate::spec::MAX_SHUTDOWN_DELAY {
            return Err(Error::invalid(field, "must be at most an hour"));
        }
    }
    if let Some(r) = &s.restart {
        spec.restart_policy.condition = match r.as_str() {
            "no" => "none".into(),
            "always" | "unless-stopped" => "any".into(),
            "on-failure" => "on-failure".into(),
            other => {
                return Err(Error::invalid(
                    f("restart"),
                    format!("{other:?} is not no, always, unless-stopped or on-failure"),
                ))
            }
        };
    }
    let depends_on = match &s.depends_on {
        None => Vec::new(),
        Some(Value::Mapping(m)) => {
            let mut out = Vec::new();
            for (k, v) in m {
                let k = scalar(&f("depends_on"), k)?;
                let kf = f(&format!("depends_on.{k}"));
                let mut d = Dependency { service: k, ..Default::default() };
                if let Some(m) = v.as_mapping() {
                    for (ck, cv) in m {
                        let ck = scalar(&kf, ck)?;
                        let cf = format!("{kf}.{ck}");
                        match ck.as_str() {
                            "condition" => d.condition = scalar(&cf, cv)?,
                            "required" => d.required = flag(&cf, cv)?,
                            "restart" => d.restart = flag(&cf, cv)?,
                            _ => return Err(Error::invalid(cf, "unknown key (condition, required, restart)")),
                        }
                    }
                } else if !v.is_null() {
                    return Err(Error::invalid(kf, "must be a map with a condition"));
                }
                out.push(d);
            }
            out
        }
        Some(other) => string_list(&f("depends_on"), other)?
            .into_iter()
            .map(|service| Dependency { service, ..Default::default() })
            .collect(),
    };
    if let Some(d) = s.deploy {
        let df = |k: &str| f(&format!("deploy.{k}"));
        if let Some(m) = d.mode {
            if m.ends_with("-job") {
                return Err(Error::invalid(
                    df("mode"),
                    format!("{m:?}: jobs are not supported (replicated or global)"),
                ));
            }
            crate::spec::check_choice(&df("mode"), &m, crate::spec::SERVICE_MODES)?;
            spec.mode = m;
        }
        if let Some(r) = d.replicas {
            crate::spec::check_replicas(&df("replicas"), r)?;
            spec.replicas = agree(&df("replicas"), Some(r), s.scale, "scale")?.unwrap_or(r);
        }
        if let Some(p) = d.placement {
            spec.placement.constraints = p.constraints;
            spec.placement.preferences = p.preferences.into_iter().map(|p| p.spread).collect();
            spec.placement.max_replicas_per_host = p.max_replicas_per_node;
        }
        if let Some(r) = d.resources {
            let mem = |k: &str, v: &Option<Value>| v.as_ref().map(|v| parse_bytes(&df(k), v)).transpose();
            let (l, r) = (r.limits.unwrap_or_default(), r.reservations.unwrap_or_default());
            let res = &mut spec.resources;
            let (cpus, field) = (cpu_count(&df("resources.limits.cpus"), &l.cpus)?, df("resources.limits.cpus"));
            res.cpu_limit = agree(&field, cpus, res.cpu_limit, "cpus")?;
            let (memory, field) = (mem("resources.limits.memory", &l.memory)?, df("resources.limits.memory"));
            res.memory_limit = agree(&field, memory, res.memory_limit, "mem_limit")?;
            res.cpu_reservation = cpu_count(&df("resources.reservations.cpus"), &r.cpus)?;
            let (memory, field) =
                (mem("resources.reservations.memory", &r.memory)?, df("resources.reservations.memory"));
            res.memory_reservation = agree(&field, memory, res.memory_reservation, "mem_reservation")?;
            crate::host::validate_pids_limit(&df("resources.limits.pids"), l.pids)?;
            if r.pids.is_some() {
                return Err(Error::invalid(df("resources.reservations.pids"), "only limits take pids"));
            }
            res.pids_limit = agree(&df("resources.limits.pids"), l.pids, s.pids_limit, "pids_limit")?;
        }
        if let Some(r) = d.restart_policy {
            let rp = &mut spec.restart_policy;
            if let Some(c) = r.condition {
                rp.condition = c;
            }
            if let Some(t) = r.delay {
                rp.delay = parse_duration(&df("restart_policy.delay"), &t)?;
            }
            if let Some(n) = r.max_attempts {
                rp.max_attempts = n;
            }
            if let Some(t) = r.window {
                rp.window = parse_duration(&df("restart_policy.window"), &t)?;
            }
        }
        for (key, src, dst) in [
            ("update_config", d.update_config, &mut spec.update_config),
            ("rollback_config", d.rollback_config, &mut spec.rollback_config),
        ] {
            if let Some(u) = src {
                update_from(&df(key), u, dst)?;
            }
        }
        if let Some(l) = &d.labels {
            spec.labels.extend(label_list_or_dict(&df("labels"), l)?);
        }
        if let Some(m) = d.endpoint_mode {
            crate::spec::check_choice(&df("endpoint_mode"), &m, crate::spec::ENDPOINT_MODES)?;
            spec.endpoint_mode = Some(m);
        }
    }
    for (i, v) in s.secrets.iter().enumerate() {
        spec.secrets.push(service_file(&f(&format!("secrets[{i}]")), v, names.secrets, true)?);
    }
    for (i, v) in s.configs.iter().enumerate() {
        spec.configs.push(service_file(&f(&format!("configs[{i}]")), v, names.configs, false)?);
    }
    if let Some(p) = &s.platform {
        spec.placement.constraints.extend(platform_constraints(&f("platform"), p)?);
    }
    let swap = spec.resources.memory_swap_limit;
    crate::host::validate_memory_swap(&f("memswap_limit"), swap, spec.resources.memory_limit)?;
    spec.resources.memory_swappiness = s.mem_swappiness;
    spec.resources.oom_kill_disable = s.oom_kill_disable.unwrap_or(false);
    crate::host::validate_swappiness(&f("mem_swappiness"), s.mem_swappiness)?;
    let memory = spec.resources.memory_limit;
    crate::host::validate_oom_kill_disable(&f("oom_kill_disable"), spec.resources.oom_kill_disable, memory)?;
    spec.oom_score_adj = s.oom_score_adj;
    if let Some(r) = &s.runtime {
        crate::host::validate_name(&f("runtime"), r)?;
    }
    spec.runtime = s.runtime.clone();
    crate::host::validate_oom_score_adj(&f("oom_score_adj"), s.oom_score_adj)?;
    if s.container_name.is_some() && (spec.mode == "global" || spec.replicas > 1) {
        let runs =
            if spec.mode == "global" { "one task per host".to_string() } else { format!("{} replicas", spec.replicas) };
        return Err(Error::invalid(
            f("container_name"),
            format!("names one container, and the service runs {runs}: remove container_name to scale it"),
        ));
    }
    spec.validate().map_err(|e| e.with_field_prefix(&field))?;
    Ok(StackService { name: svc_name.to_string(), spec, depends_on, build })
}

fn update_from(field: &str, u: ComposeUpdate, dst: &mut UpdateConfig) -> Result<()> {
    if let Some(p) = u.parallelism {
        dst.parallelism = p;
    }
    if let Some(t) = u.delay {
        dst.delay = parse_duration(&format!("{field}.delay"), &t)?;
    }
    if let Some(a) = u.failure_action {
        dst.failure_action = a;
    }
    if let Some(t) = u.monitor {
        dst.monitor = parse_duration(&format!("{field}.monitor"), &t)?;
    }
    if let Some(r) = u.max_failure_ratio {
        dst.max_failure_ratio = r;
    }
    if let Some(o) = u.order {
        dst.order = o;
    }
    Ok(())
}

/// Substitutes variables in one string as compose does: `$VAR`, `${VAR}`, `${VAR:-default}`
/// (default when unset or empty), `${VAR-default}` (when unset), `${VAR:+replacement}` (when set and
/// not empty), `${VAR+replacement}` (when set), `${VAR:?message}` / `${VAR?message}` (error), and
/// `$$` for a literal `$`. A default or a replacement may hold variables of its own, nested at most
/// [`MAX_NESTING`] deep. Unset variables become empty.
pub(crate) fn interpolate(field: &str, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    interpolate_nested(field, text, env, 0)
}

/// How deep `${A:-${B:-…}}` may nest: each level is a call, and a file of `${A:-` repeated would
/// otherwise overflow the stack (an abort, which no error handling catches).
const MAX_NESTING: usize = 16;

fn interpolate_nested(field: &str, text: &str, env: &dyn Fn(&str) -> Option<String>, depth: usize) -> Result<String> {
    if depth > MAX_NESTING {
        return Err(Error::invalid(field, format!("variables nested more than {MAX_NESTING} deep")));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = closing_brace(r).ok_or_else(|| Error::invalid(field, format!("unterminated ${{ in {text:?}")))?;
            let expr = &r[..end];
            rest = &r[end + 1..];
            let name_len = expr.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(expr.len());
            let (name, op) = expr.split_at(name_len);
            if name.is_empty() {
                return Err(Error::invalid(field, format!("bad variable ${{{expr}}}")));
            }
            let value = env(name);
            // A default or replacement may itself hold variables (`${A:-${B}}`).
            let word = |skip: usize| interpolate_nested(field, &op[skip..], env, depth + 1);
            let value = match op {
                "" => value.unwrap_or_default(),
                _ if op.starts_with(":-") => match value.filter(|v| !v.is_empty()) {
                    Some(v) => v,
                    None => word(2)?,
                },
                _ if op.starts_with('-') => match value {
                    Some(v) => v,
                    None => word(1)?,
                },
                _ if op.starts_with(":+") => match value.filter(|v| !v.is_empty()) {
                    Some(_) => word(2)?,
                    None => String::new(),
                },
                _ if op.starts_with('+') => match value {
                    Some(_) => word(1)?,
                    None => String::new(),
                },
                _ if op.starts_with(":?") || op.starts_with('?') => {
                    let unset =
                        if op.starts_with(':') { value.as_deref().is_none_or(str::is_empty) } else { value.is_none() };
                    if unset {
                        let msg = op.trim_start_matches(':').trim_start_matches('?');
                        return Err(Error::invalid(field, format!("variable {name} is required: {msg}")));
                    }
                    value.unwrap_or_default()
                }
                _ => return Err(Error::invalid(field, format!("bad variable ${{{expr}}}"))),
            };
            out.push_str(&value);
        } else {
            let name_len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            if name_len == 0 {
                out.push('$');
            } else {
                out.push_str(&env(&rest[..name_len]).unwrap_or_default());
                rest = &rest[name_len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Where the `}` closing a `${` ends in `r` (the text after the `${`), past any nested `${…}`.
fn closing_brace(r: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = r.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'{' if i > 0 && bytes[i - 1] == b'$' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Interpolates every string value (not keys) of the document, naming the path of a bad one.
fn interpolate_all(v: &mut Value, path: &str, env: &Env) -> Result<()> {
    match v {
        Value::Tagged(t) => interpolate_all(&mut t.value, path, env)?,
        Value::String(s) => *s = interpolate(path, s, &|k| env.get(k).cloned())?,
        Value::Sequence(items) => {
            for (i, x) in items.iter_mut().enumerate() {
                interpolate_all(x, &format!("{path}[{i}]"), env)?;
            }
        }
        Value::Mapping(m) => {
            for (k, x) in m.iter_mut() {
                let k = k.as_str().map(str::to_string).unwrap_or_else(|| format!("{k:?}"));
                interpolate_all(x, &if path.is_empty() { k } else { format!("{path}.{k}") }, env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Drops `x-` extension keys where compose allows them: the top level, and each service, network and
/// volume definition; but a service's `x-dockfleet`, which is read (and checked as strictly as the rest).
fn strip_extensions(doc: &mut Value) {
    fn strip(v: &mut Value, keep: &str) {
        if let Value::Mapping(m) = v {
            m.retain(|k, _| !k.as_str().is_some_and(|k| k.starts_with("x-") && k != keep));
        }
    }
    strip(doc, "");
    for section in ["services", "networks", "volumes", "secrets", "configs"] {
        let keep = if section == "services" { "x-dockfleet" } else { "" };
        if let Some(Value::Mapping(items)) = doc.get_mut(section) {
            for (_, item) in items.iter_mut() {
                strip(item, keep);
            }
        }
    }
}

/// Why a compose service key dockfleet does not read is left out, for the error that names it.
fn unsupported_service_key(key: &str) -> Option<&'static str> {
    Some(match key {
        "external_links" => "services reach each other by their names in the file on their networks",
        "userns_mode" | "cgroup_parent" => "a task has its own namespaces and joins its service's networks",
        "device_cgroup_rules" => "list the devices a task needs in devices",
        "develop" | "attach" => "they drive compose's development loop; dockfleet deploys (service_logs reads output)",
        "volumes_from" => "a task may run on any host: share a named volume instead",
        "uts" | "cgroup" => "a task has its own namespaces",
        "isolation" | "storage_opt" | "blkio_config" | "mac_address" | "domainname" | "cpu_rt_runtime"
        | "cpu_rt_period" | "cpu_count" | "cpu_percent" => "dockfleet does not set it on tasks",
        "annotations" => "set labels (Docker 20.10's API has no annotations)",
        _ => return None,
    })
}

pub(crate) fn check_stack_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            format!("stack name {name:?} must match [a-z0-9][a-z0-9_-]* (at most 40 characters)"),
        ))
    }
}

/// The variables a compose file is interpolated with.
type Env = BTreeMap<String, String>;

/// How many files one stack may include (`include:`), all told, and how deep includes may nest.
const MAX_INCLUDED: usize = 64;
const MAX_INCLUDE_DEPTH: usize = 8;

/// One compose file of a stack, read and interpolated: the one given, or one it includes.
struct Part {
    /// The document as interpolated, to compare what two files both define.
    raw: Value,
    file: ComposeFile,
    /// Where its relative paths resolve: its project directory.
    base_dir: PathBuf,
    /// The variables it was interpolated with; its env files and bare `environment` keys read them.
    env: Env,
    /// The env files among the sources of `env`, lowest precedence first.
    env_files: Vec<PathBuf>,
    /// How its errors' field paths start: empty for the file given, then `include[0]`,
    /// `include[0].include[1]`, …
    prefix: String,
    /// The file, for messages (`None`: the text given to [`parse_compose`]).
    path: Option<PathBuf>,
}

impl Part {
    /// `field` of this file, as errors name it.
    fn field(&self, field: &str) -> String {
        if self.prefix.is_empty() {
            field.to_string()
        } else {
            format!("{}.{field}", self.prefix)
        }
    }

    fn describe(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => "the compose file".into(),
        }
    }
}

/// The variables of a compose file, and the env files among their sources (lowest precedence
/// first; this process's environment is above them all).
struct Vars {
    values: Env,
    files: Vec<PathBuf>,
}

/// The variables of the compose file given: this process's environment over the `.env` file of
/// `base_dir` (when there is one), as compose has them; and `COMPOSE_PROJECT_NAME`, the stack's name.
fn project_env(name: &str, base_dir: &Path) -> Result<Vars> {
    let process: Env =
        std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect();
    let dotenv = base_dir.join(".env");
    let (mut values, files) = if dotenv.is_file() {
        (crate::dotenv::read(".env", &dotenv, &|k| process.get(k).cloned())?, vec![dotenv])
    } else {
        (Env::new(), Vec::new())
    };
    values.extend(process);
    values.insert("COMPOSE_PROJECT_NAME".into(), name.to_string());
    Ok(Vars { values, files })
}

/// The profiles `COMPOSE_PROFILES` (comma-separated, from the environment or `.env`) makes active;
/// `*` activates all.
fn active_profiles(env: &Env) -> Result<BTreeSet<String>> {
    let mut active = BTreeSet::new();
    for p in env.get("COMPOSE_PROFILES").map(String::as_str).unwrap_or("").split(',').map(str::trim) {
        if !p.is_empty() {
            if p != "*" {
                check_profile("COMPOSE_PROFILES", p)?;
            }
            active.insert(p.to_string());
        }
    }
    Ok(active)
}

/// A profile name as compose has them: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn check_profile(field: &str, p: &str) -> Result<()> {
    let ok = p.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && p.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(field, format!("{p:?} is not a profile name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)")))
    }
}

/// One entry of a compose file's `include`: the file, and (long syntax) its project directory and
/// env files, each relative to the including file's directory.
struct Include {
    /// One file, or several merged into one (the first one's directory is the project directory).
    paths: Vec<String>,
    project_directory: Option<String>,
    env_files: Option<Vec<String>>,
}

fn include_entries(v: Value) -> Result<Vec<Include>> {
    let Value::Sequence(items) = v else {
        return Err(Error::invalid("include", "must be a list of files"));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("include[{i}]");
        let entry = match item {
            Value::String(p) => Include { paths: vec![p.clone()], project_directory: None, env_files: None },
            Value::Mapping(m) => {
                let mut entry = Include { paths: Vec::new(), project_directory: None, env_files: None };
                for (k, v) in m {
                    let k = scalar(&field, k)?;
                    let kf = format!("{field}.{k}");
                    match k.as_str() {
                        "path" => entry.paths = string_list(&kf, v)?,
                        "project_directory" => entry.project_directory = Some(scalar(&kf, v)?),
                        "env_file" => entry.env_files = Some(string_list(&kf, v)?),
                        _ => return Err(Error::invalid(kf, "unknown key (path, project_directory or env_file)")),
                    }
                }
                entry
            }
            _ => return Err(Error::invalid(field, "must be a path or {path, project_directory, env_file}")),
        };
        if entry.paths.is_empty() || entry.paths.iter().any(String::is_empty) {
            return Err(Error::invalid(format!("{field}.path"), "is required"));
        }
        out.push(entry);
    }
    Ok(out)
}

/// Reads one compose file (`text`) into `parts`, then the files it includes, depth first. `chain`
/// holds the files including this one (canonical paths), to refuse a cycle.
/// One compose file's text as a document: parsed, `<<` merges applied, `x-` keys dropped and
/// variables substituted.
fn load_doc(text: &str, env: &Env) -> Result<Value> {
    if text.len() > MAX_COMPOSE_BYTES {
        let why = format!("{} bytes is over the limit of {MAX_COMPOSE_BYTES}", text.len());
        return Err(Error::invalid("compose", why));
    }
    // serde_yaml_ng refuses documents whose aliases expand past a fixed multiple of their size
    // ("repetition limit exceeded"), which stops alias bombs; the size limit above bounds the rest.
    let mut doc: Value =
        serde_yaml_ng::from_str(text).map_err(|e| Error::invalid("compose", format!("not valid YAML: {e}")))?;
    doc.apply_merge().map_err(|e| Error::invalid("compose", format!("bad merge key (<<): {e}")))?;
    strip_extensions(&mut doc);
    interpolate_all(&mut doc, "", env)?;
    Ok(doc)
}

/// How deep `extends` may chain.
const MAX_EXTENDS: usize = 16;

/// Resolves the `extends` of every service of `doc`, a file in `dir`: each becomes its base service
/// (from the same file, or from `extends.file`, relative to `dir`) merged with what it sets itself,
/// by compose's merge rules. A base's `depends_on` is not inherited, as compose documents. Relative
/// paths of a base from another directory are made absolute from there.
fn resolve_extends(doc: &mut Value, dir: &Path, env: &Env) -> Result<()> {
    let Some(Value::Mapping(services)) = doc.get_mut("services") else { return Ok(()) };
    let written = services.clone();
    for (name, svc) in services.iter_mut() {
        let Some(name) = name.as_str() else { continue };
        if svc.get("extends").is_some() {
            *svc = extended(&written, dir, env, name, &mut Vec::new())?;
        }
    }
    Ok(())
}

/// The service `name` of `services` (a file in `dir`) with its `extends` resolved. `chain` holds
/// the services extending it, to refuse a cycle.
fn extended(
    services: &serde_yaml_ng::Mapping,
    dir: &Path,
    env: &Env,
    name: &str,
    chain: &mut Vec<(PathBuf, String)>,
) -> Result<Value> {
    let field = format!("services.{name}.extends");
    let mut svc = services
        .get(name)
        .cloned()
        .ok_or_else(|| Error::invalid(field.clone(), format!("there is no service {name:?} to extend")))?;
    let Some(ext) = svc.as_mapping_mut().and_then(|m| m.remove("extends")) else { return Ok(svc) };
    let (base_name, file) = match &ext {
        Value::String(s) => (s.clone(), None),
        Value::Mapping(m) => {
            let mut base = None;
            let mut file = None;
            for (k, v) in m {
                let k = scalar(&field, k)?;
                match k.as_str() {
                    "service" => base = Some(scalar(&format!("{field}.service"), v)?),
                    "file" => file = Some(scalar(&format!("{field}.file"), v)?),
                    _ => return Err(Error::invalid(format!("{field}.{k}"), "unknown key (service or file)")),
                }
            }
            (base.ok_or_else(|| Error::invalid(format!("{field}.service"), "is required"))?, file)
        }
        _ => return Err(Error::invalid(field, "must be a service name or {service, file}")),
    };
    let here = (dir.to_path_buf(), name.to_string());
    if chain.contains(&here) || chain.len() >= MAX_EXTENDS {
        let names: Vec<&str> = chain.iter().map(|(_, n)| n.as_str()).chain([name]).collect();
        return Err(Error::invalid(field, format!("extends loop or chain too long: {}", names.join(" extends "))));
    }
    chain.push(here);
    let missing = |place: String| Error::invalid(field.clone(), format!("there is no service {base_name:?} {place}"));
    let base = match file {
        None if !services.contains_key(base_name.as_str()) => return Err(missing("in this file".into())),
        None => extended(services, dir, env, &base_name, chain),
        Some(f) => {
            let path = dir.join(&f);
            let text = crate::files::read_text(&path, MAX_COMPOSE_BYTES as u64)
                .map_err(|why| Error::invalid(format!("{field}.file"), why))?;
            let doc = load_doc(&text, env).map_err(|e| e.with_field_prefix(&format!("{field}.file")))?;
            let from = path.parent().unwrap_or(Path::new("/")).to_path_buf();
            let Some(Value::Mapping(theirs)) = doc.get("services").filter(|s| s.get(base_name.as_str()).is_some())
            else {
                return Err(missing(format!("in {}", path.display())));
            };
            let base = extended(theirs, &from, env, &base_name, chain)
                .map_err(|e| e.with_field_prefix(&format!("{field}.file")))?;
            Ok(if from == dir { base } else { absolute_paths(base, &from) })
        }
    };
    chain.pop();
    let mut base = base?;
    if let Some(m) = base.as_mapping_mut() {
        m.remove("depends_on");
    }
    Ok(crate::merge::service(base, svc))
}

/// A service's relative paths (build context, env files, bind sources, seccomp profiles) made
/// absolute from `dir`.
fn absolute_paths(mut svc: Value, dir: &Path) -> Value {
    let abs = |p: &str| dir.join(p).to_string_lossy().into_owned();
    let relative = |p: &str| !p.starts_with('/') && !p.starts_with('~') && !p.contains("://");
    let Some(m) = svc.as_mapping_mut() else { return svc };
    match m.get_mut("build") {
        Some(Value::String(s)) if relative(s) => *s = abs(s),
        Some(Value::Mapping(b)) => {
            if let Some(Value::String(s)) = b.get_mut("context").filter(|c| c.as_str().is_some_and(relative)) {
                *s = abs(s);
            }
        }
        _ => {}
    }
    match m.get_mut("label_file") {
        Some(Value::String(s)) if relative(s) => *s = abs(s),
        Some(Value::Sequence(items)) => {
            for x in items {
                if let Value::String(s) = x {
                    if relative(s) {
                        *s = abs(s);
                    }
                }
            }
        }
        _ => {}
    }
    let env_files: Vec<&mut Value> = match m.get_mut("env_file") {
        Some(Value::Sequence(items)) => items.iter_mut().collect(),
        Some(v) => vec![v],
        None => vec![],
    };
    for e in env_files {
        let target = match e {
            Value::Mapping(em) => em.get_mut("path"),
            other => Some(other),
        };
        if let Some(Value::String(s)) = target.filter(|t| t.as_str().is_some_and(relative)) {
            *s = abs(s);
        }
    }
    if let Some(Value::Sequence(items)) = m.get_mut("volumes") {
        for v in items {
            match v {
                Value::String(s) if s.starts_with('.') => *s = abs(s),
                Value::Mapping(vm) if vm.get("type").and_then(Value::as_str) == Some("bind") => {
                    if let Some(Value::String(s)) = vm.get_mut("source").filter(|x| x.as_str().is_some_and(relative)) {
                        *s = abs(s);
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(Value::Sequence(items)) = m.get_mut("security_opt") {
        for o in items {
            let Value::String(s) = o else { continue };
            if let Some(p) = seccomp_file(s).filter(|p| relative(p)) {
                *s = format!("seccomp={}", abs(p));
            }
        }
    }
    svc
}

/// Reads compose files (`texts`: one, or several merged into one, as `include` with a list of
/// paths does) into `parts`, then the files they include, depth first. `chain` holds the files
/// including these (canonical paths), to refuse a cycle.
fn read_part(
    texts: &[String],
    base_dir: &Path,
    vars: Vars,
    prefix: String,
    path: Option<PathBuf>,
    chain: &mut Vec<PathBuf>,
    parts: &mut Vec<Part>,
) -> Result<()> {
    let in_file = |e: Error| if prefix.is_empty() { e } else { e.with_field_prefix(&prefix) };
    let Vars { values: env, files: env_files } = vars;
    let mut doc = Value::Null;
    let mut includes = Vec::new();
    for text in texts {
        let mut one = load_doc(text, &env).map_err(in_file)?;
        if let Some(v) = one.as_mapping_mut().and_then(|m| m.remove("include")) {
            includes.extend(include_entries(v).map_err(in_file)?);
        }
        doc = if doc.is_null() { one } else { crate::merge::file(doc, one) };
    }
    resolve_extends(&mut doc, base_dir, &env).map_err(in_file)?;
    let doc = crate::merge::strip(doc);
    let file: ComposeFile = serde_path_to_error::deserialize(doc.clone()).map_err(|e| {
        let path = e.path().to_string();
        let key = path.strip_prefix("services.").and_then(|p| p.split_once('.')).map(|(_, k)| k);
        let message = match key.and_then(unsupported_service_key) {
            Some(why) if e.inner().to_string().starts_with("unknown field") => format!("not supported: {why}"),
            _ => e.inner().to_string(),
        };
        in_file(Error::invalid(if path == "." { "compose".into() } else { path }, message))
    })?;
    let here = Part {
        raw: doc,
        file,
        base_dir: base_dir.to_path_buf(),
        env,
        env_files: env_files.clone(),
        prefix: prefix.clone(),
        path,
    };
    let env = here.env.clone();
    parts.push(here);
    for (i, inc) in includes.into_iter().enumerate() {
        let fail = |f: &str, why: String| in_file(Error::invalid(format!("include[{i}].{f}"), why));
        // This file's depth is how many includes its prefix names.
        if prefix.matches("include[").count() >= MAX_INCLUDE_DEPTH || parts.len() + inc.paths.len() > MAX_INCLUDED {
            let why = format!("includes nest at most {MAX_INCLUDE_DEPTH} deep, {MAX_INCLUDED} files in all");
            return Err(fail("path", why));
        }
        let (mut canonicals, mut texts) = (Vec::new(), Vec::new());
        for p in &inc.paths {
            let file = base_dir.join(p);
            let canonical =
                file.canonicalize().map_err(|e| fail("path", format!("cannot read {}: {e}", file.display())))?;
            if let Some(at) = chain.iter().position(|c| *c == canonical) {
                let cycle: Vec<String> =
                    chain[at..].iter().chain([&canonical]).map(|p| p.display().to_string()).collect();
                return Err(fail("path", format!("include cycle: {}", cycle.join(" includes "))));
            }
            texts.push(crate::files::read_text(&canonical, MAX_COMPOSE_BYTES as u64).map_err(|why| fail("path", why))?);
            canonicals.push(canonical);
        }
        let file = base_dir.join(&inc.paths[0]);
        let project = match &inc.project_directory {
            Some(d) => base_dir.join(d),
            None => canonicals[0].parent().unwrap_or(Path::new("/")).to_path_buf(),
        };
        // Its env files give defaults; the including file's variables win over them.
        // (field, file, required): the default `.env` may be missing.
        let sub_env_files: Vec<(String, PathBuf, bool)> = match inc.env_files {
            Some(files) => {
                files.iter().enumerate().map(|(n, f)| (format!("env_file[{n}]"), base_dir.join(f), true)).collect()
            }
            None => vec![("path".into(), project.join(".env"), false)],
        };
        let mut sub_env = Env::new();
        let mut sub_files = Vec::new();
        for (ef, f, required) in sub_env_files {
            if !required && !f.is_file() {
                continue;
            }
            let vars =
                crate::dotenv::read("", &f, &|k| sub_env.get(k).or(env.get(k)).cloned()).map_err(|e| match e {
                    Error::InvalidArgument { message, .. } => fail(&ef, message),
                    other => other,
                })?;
            sub_env.extend(vars);
            sub_files.push(f);
        }
        sub_files.extend(env_files.iter().cloned());
        sub_env.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let sub_prefix = if prefix.is_empty() { format!("include[{i}]") } else { format!("{prefix}.include[{i}]") };
        let depth = chain.len();
        chain.extend(canonicals);
        let vars = Vars { values: sub_env, files: sub_files };
        read_part(&texts, &project, vars, sub_prefix, Some(file), chain, parts)?;
        chain.truncate(depth);
    }
    Ok(())
}

/// The items of one section of every part (`take` moves them out), each with the part it comes
/// from. Two parts may define one item only alike: a network or volume, or a service, secret or
/// config of the same project directory (its relative paths resolve there).
fn merged<T>(
    parts: &mut [Part],
    section: &str,
    take: impl Fn(&mut ComposeFile) -> BTreeMap<String, T>,
) -> Result<Vec<(String, T, usize)>> {
    let mut out: Vec<(String, T, usize)> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..parts.len() {
        for (key, item) in take(&mut parts[i].file) {
            let Some(&j) = seen.get(&key) else {
                seen.insert(key.clone(), i);
                out.push((key, item, i));
                continue;
            };
            let (a, b) = (&parts[j], &parts[i]);
            let def = |p: &Part| p.raw.get(section).and_then(|s| s.get(key.as_str())).cloned();
            if def(a) == def(b) && (matches!(section, "networks" | "volumes") || a.base_dir == b.base_dir) {
                continue;
            }
            return Err(Error::invalid(
                b.field(&format!("{section}.{key}")),
                format!("{} defines {section}.{key} too, differently: a name may be defined once", a.describe()),
            ));
        }
    }
    Ok(out)
}

/// Parses a compose file into the stack `name`. Relative paths (build contexts, env files, bind
/// sources, included files) resolve against `base_dir`, the project directory. Its variables come
/// from this process's environment over a `.env` file in `base_dir`, when there is one; `include:`
/// reads other compose files, each with its own project directory and `.env`. No engine is
/// contacted.
pub fn parse_compose(name: &str, text: &str, base_dir: &Path) -> Result<Stack> {
    check_stack_name(name)?;
    let env = project_env(name, base_dir)?;
    let mut parts = Vec::new();
    read_part(&[text.to_string()], base_dir, env, String::new(), None, &mut Vec::new(), &mut parts)?;
    stack_of(name, parts)
}

/// The stack of the compose files read.
fn stack_of(name: &str, mut parts: Vec<Part>) -> Result<Stack> {
    let volumes = merged(&mut parts, "volumes", |f| std::mem::take(&mut f.volumes))?;
    let networks = merged(&mut parts, "networks", |f| std::mem::take(&mut f.networks))?;
    let secrets = merged(&mut parts, "secrets", |f| std::mem::take(&mut f.secrets))?;
    let configs = merged(&mut parts, "configs", |f| std::mem::take(&mut f.configs))?;
    let services = merged(&mut parts, "services", |f| std::mem::take(&mut f.services))?;
    let objects = |section: &str, items: Vec<(String, Option<ComposeObject>, usize)>| {
        let mut all = BTreeMap::new();
        let mut created = Vec::new();
        let mut options = BTreeMap::new();
        for (key, obj, part) in items {
            let field = parts[part].field(&format!("{section}.{key}"));
            let obj = obj.unwrap_or_default();
            let full = obj.name.clone().unwrap_or_else(|| format!("{name}_{key}"));
            crate::host::validate_name(&field, &full)?;
            if let Some(o) = object_options(&field, obj, section == "networks")? {
                created.push(full.clone());
                if o != NetworkOptions::default() {
                    options.insert(full.clone(), o);
                }
            }
            all.insert(key, full);
        }
        Ok::<_, Error>((all, created, options))
    };
    let (volumes, created_volumes, volume_options) = objects("volumes", volumes)?;
    let volume_options = volume_options.iter().map(|(k, o)| (k.clone(), volume_of(o))).collect();
    let (mut networks, mut created_networks, network_options) = objects("networks", networks)?;
    let files = |section: &str, items: Vec<(String, ComposeFileObject, usize)>| {
        let mut all = BTreeMap::new();
        let mut created = Vec::new();
        for (key, obj, part) in items {
            let field = parts[part].field(&format!("{section}.{key}"));
            let full = obj.name.clone().unwrap_or_else(|| format!("{name}_{key}"));
            crate::host::validate_name(&field, &full)?;
            let given = obj.file.is_some() || obj.environment.is_some() || obj.content.is_some();
            match (given, obj.external.unwrap_or(false)) {
                (true, true) => {
                    return Err(Error::invalid(field, "file, environment or content, and external exclude each other"))
                }
                (false, false) => {
                    let sources =
                        if section == "configs" { "file, environment or content" } else { "file or environment" };
                    return Err(Error::invalid(field, format!("needs {sources} (or external: true)")));
                }
                (true, false) => {
                    let file = obj.file.map(|f| parts[part].base_dir.join(f));
                    if let Some(f) = file.as_ref().filter(|f| !f.is_file()) {
                        return Err(Error::invalid(format!("{field}.file"), format!("{} is not a file", f.display())));
                    }
                    let labels = match &obj.labels {
                        Some(l) => label_list_or_dict(&format!("{field}.labels"), l)?,
                        None => BTreeMap::new(),
                    };
                    let env_files = if obj.environment.is_some() { parts[part].env_files.clone() } else { Vec::new() };
                    let f = StackFile {
                        name: full.clone(),
                        file,
                        environment: obj.environment,
                        content: obj.content,
                        labels,
                        env_files,
                    };
                    f.validate(&field, section == "configs")?;
                    created.push(f);
                }
                (false, true) if obj.labels.is_some() => {
                    return Err(Error::invalid(format!("{field}.labels"), EXTERNAL_KEEPS))
                }
                (false, true) => {}
            }
            all.insert(key, full);
        }
        Ok::<_, Error>((all, created))
    };
    let (secrets, created_secrets) = files("secrets", secrets)?;
    let (configs, created_configs) = files("configs", configs)?;
    // Services of profiles that are not active are checked like the rest, then left out.
    let active = active_profiles(&parts[0].env)?;
    let mut inactive = BTreeMap::new();
    // A container_name is a name on the stack's networks: it may stand for one service only.
    let mut container_names: BTreeMap<&str, &str> = BTreeMap::new();
    let mut links = Vec::new();
    for (svc_name, svc, part) in &services {
        if let Some(n) = &svc.container_name {
            let other =
                container_names.insert(n, svc_name).or(services.iter().find(|x| x.0 == *n).map(|x| x.0.as_str()));
            if let Some(other) = other.filter(|o| o != svc_name) {
                return Err(Error::invalid(
                    parts[*part].field(&format!("services.{svc_name}.container_name")),
                    format!("{n:?} already names service {other} of the file"),
                ));
            }
        }
        if let Some(v) = &svc.links {
            let lf = parts[*part].field(&format!("services.{svc_name}.links"));
            for (i, link) in string_list(&lf, v)?.into_iter().enumerate() {
                let field = format!("{lf}[{i}]");
                let (target, alias) = link.split_once(':').unwrap_or((&link, &link));
                if !services.iter().any(|x| x.0 == target) || target == svc_name {
                    let why = format!("{target:?} is no other service of the file (external_links are not supported)");
                    return Err(Error::invalid(field, why));
                }
                crate::host::validate_alias(&field, alias)?;
                if alias != target && services.iter().any(|x| x.0 == alias) {
                    return Err(Error::invalid(field, format!("{alias:?} already names service {alias} of the file")));
                }
                links.push((svc_name.clone(), field, target.to_string(), alias.to_string()));
            }
        }
        let field = parts[*part].field(&format!("services.{svc_name}.profiles"));
        let profiles = svc.profiles.as_deref().unwrap_or_default();
        for p in profiles {
            check_profile(&field, p)?;
        }
        if !profiles.is_empty() && !active.contains("*") && !profiles.iter().any(|p| active.contains(p)) {
            inactive.insert(svc_name.clone(), profiles.join(", "));
        }
    }
    let services = services
        .into_iter()
        .map(|(svc_name, svc, part)| {
            let p = &parts[part];
            let names = Names {
                stack: name,
                base_dir: &p.base_dir,
                env: &p.env,
                volumes: &volumes,
                networks: &networks,
                secrets: &secrets,
                configs: &configs,
            };
            service_from(&svc_name, svc, &names).map_err(|e| {
                if p.prefix.is_empty() {
                    e
                } else {
                    e.with_field_prefix(&p.prefix)
                }
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut services = services;
    link_services(&mut services, links)?;
    let mut services: Vec<StackService> = services.into_iter().filter(|s| !inactive.contains_key(&s.name)).collect();
    for s in &services {
        for d in s.depends_on.iter().filter(|d| d.required) {
            if let Some(profiles) = inactive.get(&d.service) {
                return Err(Error::invalid(
                    format!("services.{}.depends_on.{}", s.name, d.service),
                    format!(
                        "{} is in profile {profiles}, which is not active: list it in COMPOSE_PROFILES (or set \
                         required: false)",
                        d.service
                    ),
                ));
            }
        }
    }
    let default = format!("{name}_default");
    if services.iter().any(|s| s.spec.networks.contains(&default)) && !networks.contains_key("default") {
        networks.insert("default".into(), default.clone());
        created_networks.push(default);
    }
    runs_full_names(&mut services);
    let stack = Stack {
        name: name.to_string(),
        services,
        networks: created_networks,
        volumes: created_volumes,
        network_options,
        volume_options,
        secrets: created_secrets,
        configs: created_configs,
    };
    stack.validate()?;
    Ok(stack)
}

/// Compose's `links` (`(service, field, target, alias)`, checked): as compose has them on a
/// network, each is a dependency on the target (started first, unless `depends_on` says more), which
/// the linking service reaches by the target's name and by the alias on a network they share; the
/// alias is one more of the target's network aliases, so other services of the network see it too.
fn link_services(services: &mut [StackService], links: Vec<(String, String, String, String)>) -> Result<()> {
    for (from, field, target, alias) in links {
        let nets = |n: &str| services.iter().find(|s| s.name == n).map(|s| s.spec.networks.clone()).unwrap_or_default();
        let (a, b) = (nets(&from), nets(&target));
        if !a.iter().any(|n| crate::host::is_user_network(n) && b.contains(n)) {
            return Err(Error::invalid(field, format!("{from} and {target} share no network of the stack")));
        }
        for s in services.iter_mut() {
            if s.name == from && !s.depends_on.iter().any(|d| d.service == target) {
                s.depends_on.push(Dependency { service: target.clone(), ..Default::default() });
            }
            if s.name == target && !s.spec.network_aliases.contains(&alias) {
                s.spec.network_aliases.push(alias.clone());
            }
        }
    }
    Ok(())
}

/// A `node.runs` constraint naming a service of the file by its name there (`node.runs==db`) names
/// its full one (`shop_db`), as the tasks' labels do.
fn runs_full_names(services: &mut [StackService]) {
    let full: BTreeMap<String, String> = services.iter().map(|s| (s.name.clone(), s.spec.name.clone())).collect();
    for s in services.iter_mut() {
        for c in &mut s.spec.placement.constraints {
            let Ok(p) = crate::spec::Constraint::parse("", c) else { continue };
            if let (crate::spec::ConstraintKey::Runs, Some(name)) = (&p.key, full.get(&p.value)) {
                *c = format!("node.runs{}{name}", if p.equal { "==" } else { "!=" });
            }
        }
    }
}

/// Reads and parses a compose file (see [`parse_compose`]); its directory is the project directory.
pub fn load_compose(name: &str, path: &Path) -> Result<Stack> {
    load_files(name, &[path], |_| "path".into())
}

/// Reads several compose files and merges them into one stack, each file overriding the ones before
/// it by compose's merge rules (as `docker stack deploy -c a.yaml -c b.yaml` and `docker compose -f
/// … -f …` do); relative paths in all of them resolve in the first one's directory, the project
/// directory, whose `.env` gives variables.
pub fn load_compose_files(name: &str, paths: &[PathBuf]) -> Result<Stack> {
    if paths.is_empty() {
        return Err(Error::invalid("paths", "needs at least one compose file"));
    }
    let paths: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    load_files(name, &paths, |i| format!("paths[{i}]"))
}

fn load_files(name: &str, paths: &[&Path], field: impl Fn(usize) -> String) -> Result<Stack> {
    check_stack_name(name)?;
    let (mut texts, mut chain) = (Vec::new(), Vec::new());
    for (i, path) in paths.iter().enumerate() {
        let text =
            crate::files::read_text(path, MAX_COMPOSE_BYTES as u64).map_err(|why| Error::invalid(field(i), why))?;
        let cannot = |e: std::io::Error| Error::invalid(field(i), format!("{}: cannot read it: {e}", path.display()));
        chain.push(path.canonicalize().map_err(cannot)?);
        texts.push(text);
    }
    let base_dir = paths[0].parent().unwrap_or(Path::new("."));
    let env = project_env(name, base_dir)?;
    let mut parts = Vec::new();
    read_part(&texts, base_dir, env, String::new(), Some(paths[0].to_path_buf()), &mut chain, &mut parts)?;
    stack_of(name, parts)
}

/// The options of a top-level network or volume of a compose file, checked (`None`: external).
/// Both are read as [`NetworkOptions`]; a volume keeps its labels and driver options. The driver is
/// only checked: the backends choose it (a bridge on each plain engine, an overlay on Swarm).
fn object_options(field: &str, obj: ComposeObject, network: bool) -> Result<Option<NetworkOptions>> {
    let drivers: &[&str] = if network { NETWORK_DRIVERS } else { VOLUME_DRIVERS };
    if let Some(d) = &obj.driver {
        if !drivers.contains(&d.as_str()) {
            return Err(Error::invalid(
                format!("{field}.driver"),
                format!("{d:?} is not supported (use {})", drivers.join(" or ")),
            ));
        }
    }
    // The keys given besides driver, name and external, and whether only a network has them.
    let given = [
        ("labels", obj.labels.is_some(), false),
        ("driver_opts", obj.driver_opts.is_some(), false),
        ("internal", obj.internal.is_some(), true),
        ("attachable", obj.attachable.is_some(), true),
        ("enable_ipv6", obj.enable_ipv6.is_some(), true),
        ("ipam", obj.ipam.is_some(), true),
    ];
    let given = given.iter().filter(|(_, set, _)| *set);
    if let Some((key, ..)) = given.clone().find(|(.., network_only)| *network_only && !network) {
        return Err(Error::invalid(format!("{field}.{key}"), "is a network's key; a volume has no such key"));
    }
    if obj.external.unwrap_or(false) {
        if let Some((key, ..)) = given.clone().next() {
            return Err(Error::invalid(format!("{field}.{key}"), EXTERNAL_KEEPS));
        }
        return Ok(None);
    }
    let mut o = NetworkOptions {
        internal: obj.internal.unwrap_or(false),
        attachable: obj.attachable.unwrap_or(false),
        enable_ipv6: obj.enable_ipv6.unwrap_or(false),
        ..Default::default()
    };
    if let Some(l) = &obj.labels {
        o.labels = label_list_or_dict(&format!("{field}.labels"), l)?;
        crate::spec::check_labels(&format!("{field}.labels"), &o.labels)?;
    }
    if let Some(d) = &obj.driver_opts {
        let f = format!("{field}.driver_opts");
        if !d.is_mapping() {
            return Err(Error::invalid(f, "must be a map of option: value"));
        }
        o.driver_opts = list_or_dict(&f, d, |_| None)?;
    }
    if let Some(ipam) = obj.ipam {
        let f = format!("{field}.ipam");
        if let Some(d) = ipam.driver.filter(|d| d != "default") {
            return Err(Error::invalid(
                format!("{f}.driver"),
                format!("{d:?}: only the engine's default IPAM driver is supported"),
            ));
        }
        if ipam.options.as_ref().is_some_and(|v| !v.is_null() && v.as_mapping().is_none_or(|m| !m.is_empty())) {
            return Err(Error::invalid(format!("{f}.options"), "the default IPAM driver takes no options"));
        }
        for (i, p) in ipam.config.into_iter().enumerate() {
            let aux = match &p.aux_addresses {
                Some(v) if v.is_mapping() => list_or_dict(&format!("{f}.config[{i}].aux_addresses"), v, |_| None)?,
                Some(_) => {
                    return Err(Error::invalid(
                        format!("{f}.config[{i}].aux_addresses"),
                        "must be a map of name: address",
                    ))
                }
                None => BTreeMap::new(),
            };
            o.ipam.push(IpamPool { subnet: p.subnet, ip_range: p.ip_range, gateway: p.gateway, aux_addresses: aux });
        }
    }
    let checked = if network { o.validate(field) } else { volume_of(&o).validate(field) };
    // The options' `ipam[i]` is the file's `ipam.config[i]`.
    checked.map_err(|e| match e {
        Error::InvalidArgument { field, message } => {
            Error::InvalidArgument { field: field.replacen(".ipam[", ".ipam.config[", 1), message }
        }
        e => e,
    })?;
    Ok(Some(o))
}

/// A compose volume's options, read as [`NetworkOptions`] by [`object_options`].
fn volume_of(o: &NetworkOptions) -> VolumeOptions {
    VolumeOptions { driver: None, labels: o.labels.clone(), driver_opts: o.driver_opts.clone() }
}

/// How an existing network differs from what the stack asks of it, if it does: its labels and driver
/// options must include the stack's, and each pool the stack names must be there. An engine keeps a
/// network's options for its life, so a stack that changed them must take the network down first.
pub(crate) fn network_drift(want: &NetworkOptions, have: &NetworkSummary) -> Option<String> {
    let pools =
        |p: &IpamPool| format!("{}{}", p.subnet, p.gateway.as_deref().map(|g| format!(" via {g}")).unwrap_or_default());
    let missing_pool = want.ipam.iter().find(|w| {
        !have.ipam.iter().any(|h| {
            h.subnet == w.subnet
                && (w.ip_range.is_none() || h.ip_range == w.ip_range)
                && (w.gateway.is_none() || h.gateway == w.gateway)
        })
    });
    if want.internal != have.internal {
        Some(format!("internal is {}, the stack asks for {}", have.internal, want.internal))
    } else if want.enable_ipv6 != have.enable_ipv6 {
        Some(format!("enable_ipv6 is {}, the stack asks for {}", have.enable_ipv6, want.enable_ipv6))
    } else if let Some(p) = missing_pool {
        Some(format!("it has no pool {} (it has {:?})", pools(p), have.ipam.iter().map(pools).collect::<Vec<_>>()))
    } else {
        map_drift("driver option", &want.driver_opts, &have.driver_opts)
            .or_else(|| map_drift("label", &want.labels, &have.labels))
    }
}

/// How an existing volume differs from what the stack asks of it, if it does: the same driver and
/// driver options, and the stack's labels.
pub(crate) fn volume_drift(want: &VolumeOptions, have: &VolumeSummary) -> Option<String> {
    let driver = want.driver.as_deref().unwrap_or("local");
    if driver != have.driver {
        Some(format!("its driver is {}, the stack asks for {driver}", have.driver))
    } else if want.driver_opts != have.driver_opts {
        Some(format!("its driver options are {:?}, the stack asks for {:?}", have.driver_opts, want.driver_opts))
    } else {
        map_drift("label", &want.labels, &have.labels)
    }
}

fn map_drift(what: &str, want: &BTreeMap<String, String>, have: &BTreeMap<String, String>) -> Option<String> {
    want.iter().find(|(k, v)| have.get(*k) != Some(*v)).map(|(k, v)| match have.get(k) {
        Some(h) => format!("its {what} {k} is {h:?}, the stack asks for {v:?}"),
        None => format!("it has no {what} {k} (the stack asks for {v:?})"),
    })
}

/// Refuses the stack when `n`, a network on `host`, is one of its networks with other options than
/// the stack's.
pub(crate) fn check_network(stack: &Stack, host: &str, n: &NetworkSummary) -> Result<()> {
    match stack.networks.contains(&n.name).then(|| network_drift(&stack.network(&n.name), n)).flatten() {
        Some(why) => Err(drift_error(host, "network", &n.name, &why)),
        None => Ok(()),
    }
}

/// Refuses the stack when `host` has one of its volumes with other options than the stack's; else
/// the names of the stack's volumes `host` has (with the stack's label or not).
pub(crate) async fn check_volumes(stack: &Stack, host: &dyn crate::host::Host) -> Result<BTreeSet<String>> {
    if stack.volumes.is_empty() {
        return Ok(BTreeSet::new());
    }
    let mut present = BTreeSet::new();
    for v in host.list_volumes(&[]).await?.into_iter().filter(|v| stack.volumes.contains(&v.name)) {
        if v.labels.get(LABEL_STACK) == Some(&stack.name) {
            if let Some(why) = volume_drift(&stack.volume(&v.name), &v) {
                return Err(drift_error(host.name(), "volume", &v.name, &why));
            }
        }
        present.insert(v.name);
    }
    Ok(present)
}

/// What a `stack_up` has created so far: networks, volumes and (Swarm) secrets and configs. When a
/// later one cannot be created, or the images cannot be built, [`Undo::failed`] removes them again,
/// newest first, so that the failed deploy leaves the engines as it found them; else a corrected file
/// would then be refused for the options of an object the failed deploy created. Dropped before
/// [`Undo::keep`] (the `stack_up` stream dropped, or its task aborted, during those steps), it
/// removes them in a task of the runtime it was made on.
pub(crate) struct Undo {
    steps: Vec<(String, UndoStep)>,
    stack: String,
    runtime: Option<tokio::runtime::Handle>,
}

type UndoStep = Box<dyn FnOnce() -> futures::future::BoxFuture<'static, Result<()>> + Send>;

impl Drop for Undo {
    fn drop(&mut self) {
        let steps = std::mem::take(&mut self.steps);
        if steps.is_empty() {
            return;
        }
        let stack = std::mem::take(&mut self.stack);
        let what: Vec<&str> = steps.iter().map(|(w, _)| w.as_str()).collect();
        let Some(runtime) = &self.runtime else {
            tracing::warn!(%stack, left = ?what, "stack_up was cancelled, and no runtime is left to remove what it created");
            return;
        };
        tracing::warn!(%stack, undo = ?what, "stack_up was cancelled: removing what it created");
        runtime.spawn(async move {
            for (what, remove) in steps.into_iter().rev() {
                if let Err(e) = remove().await {
                    tracing::warn!(%stack, %what, error = %e, "could not remove what a cancelled stack_up created");
                }
            }
        });
    }
}

impl Undo {
    /// Nothing created yet, for stack `stack`.
    pub(crate) fn new(stack: &str) -> Self {
        Undo { steps: Vec::new(), stack: stack.to_string(), runtime: tokio::runtime::Handle::try_current().ok() }
    }

    /// What was created stays: the stack's services are being deployed on it.
    pub(crate) fn keep(mut self) {
        self.steps.clear();
    }

    /// Records `what` (`network shop_back on df-1`) as created; `remove` removes it.
    pub(crate) fn created<F>(&mut self, what: String, remove: impl FnOnce() -> F + Send + 'static)
    where
        F: std::future::Future<Output = Result<()>> + Send + 'static,
    {
        self.steps.push((what, Box::new(move || Box::pin(remove()))));
    }

    /// Creates the stack's volumes on `host`, recording those it did not have (`present`).
    pub(crate) async fn create_volumes(
        &mut self,
        stack: &Stack,
        host: &std::sync::Arc<dyn crate::host::Host>,
        present: &BTreeSet<String>,
    ) -> Result<()> {
        for v in &stack.volumes {
            host.create_volume(v, &stack.volume(v)).await?;
            if !present.contains(v) {
                let (h, v) = (host.clone(), v.clone());
                self.created(
                    format!("volume {v} on {}", h.name()),
                    move || async move { h.remove_volume(&v, false).await },
                );
            }
        }
        Ok(())
    }

    /// Removes what was created, reporting each removal as a stack event `undone`, and returns
    /// `error`, what failed. A removal that fails is logged and reported, and the rest go on.
    pub(crate) async fn failed(
        mut self,
        error: Error,
        stack: &str,
        tx: &tokio::sync::mpsc::UnboundedSender<RolloutEvent>,
    ) -> Error {
        // (Taken: should this future be dropped in the middle, the drop guard does not start over.)
        let steps = std::mem::take(&mut self.steps);
        for (what, remove) in steps.into_iter().rev() {
            match remove().await {
                Ok(()) => stack_event(tx, stack, "undone", format!("removed {what}: the deploy failed ({error})")),
                Err(e) => {
                    tracing::warn!(stack, %what, error = %e, "could not remove what a failed stack_up created");
                    stack_event(tx, stack, "undone", format!("could not remove {what}: {e}"));
                }
            }
        }
        error
    }
}

/// The error for a network or volume of the stack that exists on `host` with other options.
pub(crate) fn drift_error(host: &str, kind: &str, name: &str, why: &str) -> Error {
    let fix = if kind == "volume" {
        "remove it to create it anew (stack_down with volumes, which deletes its data)"
    } else {
        "take the stack down (stack_down removes its networks) and deploy it again"
    };
    Error::Conflict {
        host: host.to_string(),
        message: format!(
            "{kind} {name} exists with other options than the stack's: {why}; an engine cannot change them, so {fix}"
        ),
    }
}

/// Why a key beside `external: true` is refused.
const EXTERNAL_KEEPS: &str = "an external object keeps what it was created with; only name may be given";

/// Network drivers a stack's network may name. Overlay networks span a swarm's nodes; on plain
/// engines each stack network is a bridge on each host, whichever is named.
const NETWORK_DRIVERS: &[&str] = &["bridge", "overlay"];
/// Volume drivers a stack's volume may name.
const VOLUME_DRIVERS: &[&str] = &["local"];

impl Stack {
    /// The options of a network the stack creates, with the stack's label.
    pub(crate) fn network(&self, name: &str) -> NetworkOptions {
        let mut o = self.network_options.get(name).cloned().unwrap_or_default();
        o.labels.insert(LABEL_STACK.to_string(), self.name.clone());
        o
    }

    /// The options of a volume the stack creates, with the stack's label.
    pub(crate) fn volume(&self, name: &str) -> VolumeOptions {
        let mut o = self.volume_options.get(name).cloned().unwrap_or_default();
        o.labels.insert(LABEL_STACK.to_string(), self.name.clone());
        o
    }

    /// Checks the stack without any engine call: its name, every service, and that `depends_on`
    /// names services of the stack, with known conditions and no cycle.
    pub fn validate(&self) -> Result<()> {
        check_stack_name(&self.name)?;
        for (section, files) in [("secrets", &self.secrets), ("configs", &self.configs)] {
            for (i, f) in files.iter().enumerate() {
                f.validate(&format!("{section}[{i}]"), section == "configs")?;
            }
        }
        // Each network or volume with options: one the stack creates, a driver the backends take,
        // options that check, and labels left to the stack's own where they start with `dockfleet.`.
        let object = |field: &str, created: &[String], name: &str, driver: Option<&str>, drivers: &[&str]| {
            if !created.iter().any(|c| c == name) {
                return Err(Error::invalid(field, "is not a network or volume the stack creates"));
            }
            match driver.filter(|d| !drivers.contains(d)) {
                Some(d) => Err(Error::invalid(format!("{field}.driver"), format!("{d:?} is not one of {drivers:?}"))),
                None => Ok(()),
            }
        };
        for (name, o) in &self.network_options {
            let field = format!("network_options.{name}");
            object(&field, &self.networks, name, o.driver.as_deref(), NETWORK_DRIVERS)?;
            o.validate(&field)?;
            crate::spec::check_labels(&format!("{field}.labels"), &o.labels)?;
        }
        for (name, o) in &self.volume_options {
            let field = format!("volume_options.{name}");
            object(&field, &self.volumes, name, o.driver.as_deref(), VOLUME_DRIVERS)?;
            o.validate(&field)?;
            crate::spec::check_labels(&format!("{field}.labels"), &o.labels)?;
        }
        let known: BTreeSet<&str> = self.services.iter().map(|s| s.name.as_str()).collect();
        for s in &self.services {
            let field = format!("services.{}", s.name);
            s.spec.validate().map_err(|e| e.with_field_prefix(&field))?;
            if s.spec.labels.get(LABEL_STACK) != Some(&self.name) {
                return Err(Error::invalid(
                    format!("{field}.labels.{LABEL_STACK}"),
                    format!("must be {:?}", self.name),
                ));
            }
            for (i, m) in s.spec.volumes.iter().enumerate() {
                let bound = self.volume_options.get(&m.source).and_then(VolumeOptions::bound_host_path);
                if let Some(path) = bound.filter(|p| crate::spec::takes_over_host(p) && !s.spec.allow_host_mounts) {
                    return Err(Error::invalid(
                        format!("{field}.volumes[{i}].source"),
                        format!(
                            "volume {} binds {path}, which gives the container control of the host; \
                             set allow_host_mounts to accept that",
                            m.source
                        ),
                    ));
                }
            }
            for d in &s.depends_on {
                let df = format!("{field}.depends_on.{}", d.service);
                if !known.contains(d.service.as_str()) {
                    if d.required {
                        return Err(Error::invalid(
                            df,
                            "is not a service of this stack (set required: false to skip it)",
                        ));
                    }
                    continue;
                }
                if !["service_started", "service_healthy", "service_completed_successfully"]
                    .contains(&d.condition.as_str())
                {
                    return Err(Error::invalid(
                        format!("{df}.condition"),
                        format!(
                            "{:?} is not service_started, service_healthy or service_completed_successfully",
                            d.condition
                        ),
                    ));
                }
            }
        }
        self.order().map(|_| ())
    }

    /// The services in deployment order: each after everything it depends on.
    pub fn order(&self) -> Result<Vec<&StackService>> {
        // A dependency the stack lacks (allowed when not required) counts as deployed.
        let present: BTreeSet<&str> = self.services.iter().map(|s| s.name.as_str()).collect();
        // A service placed by where another of the stack runs (`node.runs`) comes after it.
        let by_full: BTreeMap<&str, &str> =
            self.services.iter().map(|s| (s.spec.name.as_str(), s.name.as_str())).collect();
        let placed_after = |s: &StackService| -> Vec<&str> {
            let runs = s.spec.constraints().unwrap_or_default().into_iter();
            runs.filter(|c| c.key == crate::spec::ConstraintKey::Runs)
                .filter_map(|c| by_full.get(c.value.as_str()).copied())
                .collect()
        };
        let mut done: BTreeSet<&str> = BTreeSet::new();
        let mut out = Vec::new();
        while out.len() < self.services.len() {
            let before = out.len();
            for s in &self.services {
                let ready = |d: &Dependency| done.contains(d.service.as_str()) || !present.contains(d.service.as_str());
                let placed = placed_after(s).iter().all(|n| done.contains(n));
                if !done.contains(s.name.as_str()) && s.depends_on.iter().all(ready) && placed {
                    out.push(s);
                }
            }
            for s in &out[before..] {
                done.insert(s.name.as_str());
            }
            if out.len() == before {
                let stuck: Vec<&str> =
                    self.services.iter().map(|s| s.name.as_str()).filter(|n| !done.contains(n)).collect();
                return Err(Error::invalid(
                    format!("services.{}.depends_on", stuck[0]),
                    format!("dependency cycle (depends_on, node.runs) among {}", stuck.join(", ")),
                ));
            }
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Up, ps, down.

pub(crate) fn stack_event(
    tx: &tokio::sync::mpsc::UnboundedSender<RolloutEvent>,
    stack: &str,
    kind: &str,
    message: String,
) {
    let _ = tx.send(RolloutEvent {
        kind: kind.into(),
        phase: "stack".into(),
        service: stack.into(),
        message,
        ..Default::default()
    });
}

/// Deploys (or updates) a stack: networks and volumes on every reachable host, images built where a
/// service has `build:`, then each service's rollout in `depends_on` order. Yields the stack's own
/// steps (phase `stack`: `network`, `volume`, `build`, `waiting`, `not-required` (a dependency with
/// `required: false` missed its condition), `restart` (a dependency with `restart: true` was
/// replaced), `pruned`, then `completed` or `paused`) and every service's rollout events. An invalid
/// stack ends the stream with its error before any engine call. When a network or volume cannot be
/// created, or an image cannot be built, the networks and volumes this call created are removed
/// again (events `undone`) before the error ends the stream; when the stream is dropped during those
/// steps, they are removed in a task of the runtime (from the first service's deploy on, what was
/// created stays).
pub fn stack_up(fleet: Fleet, stack: Stack, options: StackOptions) -> crate::host::ResultStream<RolloutEvent> {
    crate::stream::from_channel(move |tx| async move {
        stack.validate()?;
        for s in &stack.services {
            crate::reconcile::fleet_can_run(&s.spec)
                .map_err(|e| e.with_field_prefix(&format!("services.{}", s.name)))?;
        }
        let order = stack.order()?;
        let reachable: Vec<_> = fleet
            .probe(&ProbeOptions::default())
            .await
            .into_iter()
            .filter(|s| s.reachable)
            .map(|s| fleet.host(&s.name))
            .collect::<Result<_>>()?;
        // What exists is checked on every host before anything is created.
        let stack_label = [format!("{LABEL_STACK}={}", stack.name)];
        let mut existing = Vec::new();
        for h in &reachable {
            let networks = h.list_networks(&stack_label).await?;
            for n in &networks {
                check_network(&stack, h.name(), n)?;
            }
            let volumes = check_volumes(&stack, h.as_ref()).await?;
            existing.push((networks.into_iter().map(|n| n.name).collect::<BTreeSet<String>>(), volumes));
        }
        let mut undo = Undo::new(&stack.name);
        let created = async {
            for (h, (networks, volumes)) in reachable.iter().zip(existing) {
                for n in stack.networks.iter().filter(|n| !networks.contains(*n)) {
                    match h.create_network(n, &stack.network(n)).await {
                        Ok(_) => {
                            let (h, n) = (h.clone(), n.clone());
                            undo.created(format!("network {n} on {}", h.name()), move || async move {
                                h.remove_network(&n).await
                            });
                        }
                        Err(Error::Conflict { .. }) => {}
                        Err(e) => return Err(e),
                    }
                    stack_event(&tx, &stack.name, "network", format!("network {n} on {}", h.name()));
                }
                undo.create_volumes(&stack, h, &volumes).await?;
            }
            Ok(())
        };
        if let Err(e) = created.await {
            return Err(undo.failed(e, &stack.name, &tx).await);
        }
        if !stack.volumes.is_empty() {
            stack_event(
                &tx,
                &stack.name,
                "volume",
                format!("volumes {} on {} host(s)", stack.volumes.join(", "), reachable.len()),
            );
        }
        if let Some(host) = reachable.first() {
            if let Err(e) = build_images(&stack, host.as_ref(), &tx).await {
                return Err(undo.failed(e, &stack.name, &tx).await);
            }
        } else if stack.services.iter().any(|s| s.build.is_some()) {
            return Err(Error::EngineUnreachable {
                host: "fleet".into(),
                message: "no host is reachable to build on".into(),
                source: None,
            });
        }
        undo.keep();
        let timeout = options.dependency_timeout;
        let waits = |spec: &ServiceSpec, condition: &str| {
            let (fleet, spec, condition) = (fleet.clone(), spec.clone(), condition.to_string());
            async move { wait_condition(&fleet, &spec, &condition, timeout).await }
        };
        deploy_services(&fleet, &stack, &order, &options, &tx, waits).await
    })
}

/// Builds the images of the stack's services that have a `build:` section, on `host`.
pub(crate) async fn build_images(
    stack: &Stack,
    host: &dyn crate::host::Host,
    tx: &tokio::sync::mpsc::UnboundedSender<RolloutEvent>,
) -> Result<()> {
    for s in stack.services.iter().filter(|s| s.build.is_some()) {
        let b = s.build.as_ref().expect("filtered");
        let mut labels = b.labels.clone();
        labels.insert(LABEL_STACK.to_string(), stack.name.clone());
        stack_event(tx, &stack.name, "build", format!("building {} on {}", s.spec.image, host.name()));
        let opts = BuildOptions {
            tag: s.spec.image.clone(),
            dockerfile: b.dockerfile.clone(),
            build_args: b.args.clone(),
            labels,
            no_cache: b.no_cache,
            target: b.target.clone(),
        };
        let mut events = host.build_image(&b.context, &opts);
        while let Some(e) = events.next().await {
            e.map_err(|e| e.with_field_prefix(&format!("services.{}.build", s.name)))?;
        }
    }
    Ok(())
}

/// Rolls the stack's services out through `backend` in `depends_on` order, waiting for each
/// dependency's condition with `wait` and forwarding every rollout event; stops after a `paused` one.
/// Then prunes (when asked) and reports `completed`.
pub(crate) async fn deploy_services<W, F>(
    backend: &dyn ServiceBackend,
    stack: &Stack,
    order: &[&StackService],
    options: &StackOptions,
    tx: &tokio::sync::mpsc::UnboundedSender<RolloutEvent>,
    wait: W,
) -> Result<()>
where
    W: Fn(&ServiceSpec, &str) -> F,
    F: std::future::Future<Output = Result<()>>,
{
    // Services whose tasks this deploy replaced: those depending on one with `restart: true` are
    // restarted too.
    let mut replaced: BTreeSet<&str> = BTreeSet::new();
    for s in order {
        let mut restart = false;
        for d in &s.depends_on {
            // Validated: a dependency the stack lacks is not required.
            let Some(dep) = stack.services.iter().find(|x| x.name == d.service) else { continue };
            restart |= d.restart && replaced.contains(dep.name.as_str());
            if d.condition != "service_started" {
                let why = format!("{} waits for {} ({})", s.spec.name, dep.spec.name, d.condition);
                stack_event(tx, &stack.name, "waiting", why);
                match wait(&dep.spec, &d.condition).await {
                    Err(e) if !d.required => {
                        let why = format!("{} deployed without {} ({}): {e}", s.spec.name, dep.spec.name, d.condition);
                        stack_event(tx, &stack.name, "not-required", why);
                    }
                    r => r?,
                }
            }
        }
        let mut rollout = options.rollout.clone();
        if restart && !rollout.force {
            rollout.force = true;
            let why = format!("{} restarts: a dependency with restart: true was replaced", s.spec.name);
            stack_event(tx, &stack.name, "restart", why);
        }
        let mut events = backend.rollout(s.spec.clone(), rollout);
        while let Some(e) = events.next().await {
            let e = e?;
            if e.kind == "task-updated" {
                replaced.insert(s.name.as_str());
            }
            let paused = e.kind == "paused";
            let _ = tx.send(e);
            if paused {
                let why = format!("{} paused; the services after it were not deployed", s.spec.name);
                stack_event(tx, &stack.name, "paused", why);
                return Ok(());
            }
        }
    }
    if options.prune {
        let keep: BTreeSet<&str> = stack.services.iter().map(|s| s.spec.name.as_str()).collect();
        for st in backend.stack_ps(&stack.name).await? {
            if !keep.contains(st.name.as_str()) {
                let n = backend.remove_service(&st.name).await?;
                stack_event(tx, &stack.name, "pruned", format!("{} ({n} task(s))", st.name));
            }
        }
    }
    stack_event(tx, &stack.name, "completed", format!("{} service(s) deployed", stack.services.len()));
    Ok(())
}

/// Waits until every task of `spec` is healthy (`service_healthy`; running when it has no
/// healthcheck) or has exited 0 (`service_completed_successfully`).
async fn wait_condition(fleet: &Fleet, spec: &ServiceSpec, condition: &str, timeout: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now().later(timeout);
    let opts = ListContainersOptions {
        all: true,
        labels: vec![format!("{LABEL_SERVICE}={}", spec.name)],
        ..Default::default()
    };
    let wanted = if spec.mode == "global" { 1 } else { spec.replicas as usize };
    loop {
        let mut ok = 0;
        for h in fleet.hosts() {
            let Ok(list) = h.list_containers(&opts).await else { continue };
            ok += list
                .iter()
                .filter(|c| match condition {
                    "service_completed_successfully" => c.state == "exited" && c.exit_code() == Some(0),
                    _ => c.state == "running" && !matches!(c.health(), Some("unhealthy" | "starting")),
                })
                .count();
        }
        if ok >= wanted {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Timeout {
                host: "fleet".into(),
                operation: format!("waiting for {} to be {condition}", spec.name),
                after: timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The stack's services and their tasks on the reachable hosts.
pub async fn stack_ps(fleet: &Fleet, stack: &str) -> Result<Vec<ServiceStatus>> {
    check_stack_name(stack)?;
    let opts =
        ListContainersOptions { all: true, labels: vec![format!("{LABEL_STACK}={stack}")], ..Default::default() };
    let lists = futures::future::join_all(fleet.hosts().iter().map(|h| {
        let opts = opts.clone();
        async move { (h.name().to_string(), h.list_containers(&opts).await) }
    }))
    .await;
    let mut by_service: BTreeMap<String, ServiceStatus> = BTreeMap::new();
    let mut specs = BTreeMap::new();
    for (host, list) in lists {
        let Ok(list) = list else { continue }; // unreachable: its tasks are not listed
        for c in list {
            let Some(service) = c.labels.get(LABEL_SERVICE).cloned() else { continue };
            let task = task_from(&host, &c, &mut specs);
            let st = by_service
                .entry(service.clone())
                .or_insert_with(|| ServiceStatus { name: service, ..Default::default() });
            if task.state == "running" {
                st.running += 1;
            }
            if let Some(spec) = specs.get(&task.spec_hash) {
                st.desired = if spec.mode == "global" { 0 } else { spec.replicas };
            }
            st.tasks.push(task);
        }
    }
    let mut out: Vec<ServiceStatus> = by_service.into_values().collect();
    for s in &mut out {
        s.tasks.sort_by(|a, b| (a.slot, &a.host).cmp(&(b.slot, &b.host)));
    }
    Ok(out)
}

/// Removes the stack's services and networks on every reachable host, and its volumes when
/// `remove_volumes` is set (otherwise their data stays, as with `docker stack rm`).
pub async fn stack_down(fleet: &Fleet, stack: &str, remove_volumes: bool) -> Result<StackDownReport> {
    check_stack_name(stack)?;
    let mut report = StackDownReport::default();
    for st in stack_ps(fleet, stack).await? {
        report.containers += remove_service(fleet, &st.name).await? as u32;
        report.services.push(st.name);
    }
    let filter = [format!("{LABEL_STACK}={stack}")];
    for h in fleet.hosts() {
        let Ok(nets) = h.list_networks(&filter).await else { continue };
        for n in nets {
            h.remove_network(&n.id).await?;
            report.networks += 1;
        }
        if remove_volumes {
            for v in h.list_volumes(&filter).await? {
                h.remove_volume(&v.name, false).await?;
                report.volumes += 1;
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORDPRESS: &str = r#"
version: '3'
x-common: &common
  stop_grace_period: 1s
services:
  wordpress:
    <<: *common
    image: dockfleet/busybox:latest
    command: httpd -f -p 80 -h /www
    entrypoint: [/bin/busybox]
    working_dir: /www
    user: "65534:65534"
    stop_signal: SIGQUIT
    x-dockfleet:
      shutdown_delay: 1500ms
    ports:
      - 8080:80
    networks:
      - overlay
    environment:
      WORDPRESS_DB_HOST: db:3306
      WORDPRESS_DB_USER: wordpress
    depends_on:
      db:
        condition: service_healthy
    deploy:
      mode: replicated
      replicas: 3
      update_config: { parallelism: 2, order: stop-first, monitor: 2s, failure_action: rollback }
  db:
    image: dockfleet/busybox:latest
    command: ["sleep", "600"]
    networks: [overlay]
    volumes:
      - db-data:/var/lib/mysql
    environment:
      - MYSQL_ROOT_PASSWORD=somewordpress
    healthcheck:
      test: test -d /var/lib/mysql
      interval: 500ms
    deploy:
      placement:
        constraints: [node.role == manager]
      resources:
        limits: { cpus: '0.5', memory: 64M }
      restart_policy: { condition: on-failure, delay: 1s, max_attempts: 3, window: 1m }
volumes:
  db-data:
networks:
  overlay:
"#;

    fn parse(text: &str) -> Result<Stack> {
        parse_compose("blog", text, Path::new("/srv/blog"))
    }

    #[test]
    fn a_wordpress_like_stack_maps_onto_service_specs() {
        let s = parse(WORDPRESS).unwrap();
        assert_eq!(s.networks, ["blog_overlay"]);
        assert_eq!(s.volumes, ["blog_db-data"]);
        let order: Vec<&str> = s.order().unwrap().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(order, ["db", "wordpress"], "db first: wordpress depends on it");
        let wp = &s.services.iter().find(|x| x.name == "wordpress").unwrap().spec;
        assert_eq!(wp.name, "blog_wordpress");
        assert_eq!(wp.command, ["httpd", "-f", "-p", "80", "-h", "/www"]);
        assert_eq!(wp.entrypoint.as_deref(), Some(&["/bin/busybox".to_string()][..]));
        assert_eq!((wp.working_dir.as_deref(), wp.user.as_deref()), (Some("/www"), Some("65534:65534")));
        assert_eq!(wp.stop_signal.as_deref(), Some("SIGQUIT"));
        let numeric = parse("services:\n  web: {image: x, user: 1000}\n").unwrap();
        assert_eq!(numeric.services[0].spec.user.as_deref(), Some("1000"));
        assert_eq!(wp.ports, [ServicePort { target: 80, published: Some(8080), protocol: "tcp".into(), mode: None }]);
        assert_eq!(wp.replicas, 3);
        assert_eq!(wp.stop_grace_period, Duration::from_secs(1), "merged from the x- anchor");
        assert_eq!(wp.shutdown_delay, Duration::from_millis(1500), "from x-dockfleet");
        assert_eq!((wp.update_config.parallelism, wp.update_config.failure_action.as_str()), (2, "rollback"));
        assert_eq!(wp.labels.get(LABEL_STACK).map(String::as_str), Some("blog"));
        assert_eq!(wp.networks, ["blog_overlay"]);
        assert_eq!(wp.network_aliases, ["wordpress"], "reached by its name in the file");
        let more = "services:\n  web:\n    image: x\n    hostname: web-{{.Task.Slot}}\n    init: true\n    read_only: true\n    cap_add: [NET_ADMIN]\n    cap_drop: [ALL]\n    extra_hosts: ['a:10.0.0.1', 'b=10.0.0.2', 'c:[::1]', 'gw:host-gateway']\n";
        let web = parse(more).unwrap().services.remove(0).spec;
        assert_eq!((web.hostname.as_deref(), web.init, web.read_only), (Some("web-{{.Task.Slot}}"), Some(true), true));
        assert_eq!((&web.cap_add[..], &web.cap_drop[..]), (&["NET_ADMIN".to_string()][..], &["ALL".to_string()][..]));
        assert_eq!(web.extra_hosts, ["a:10.0.0.1", "b:10.0.0.2", "c:::1", "gw:host-gateway"]);
        // node-exporter's compose file (its README's), with the two opt-ins: the host's network and
        // processes, and its root.
        let agent = "services:\n  node_exporter:\n    image: quay.io/prometheus/node-exporter:latest\n    container_name: node_exporter\n    command:\n      - '--path.rootfs=/host'\n    network_mode: host\n    pid: host\n    restart: unless-stopped\n    volumes:\n      - '/:/host:ro,rslave'\n    x-dockfleet: {allow_privileged: true, allow_host_mounts: true}\n";
        let agent = parse(agent).unwrap().services.remove(0).spec;
        assert_eq!((agent.pid.as_deref(), &agent.networks[..]), (Some("host"), &["host".to_string()][..]));
        let e = parse("services:\n  agent: {image: x, pid: host}\n").unwrap_err();
        assert!(e.to_string().contains("services.agent.pid") && e.to_string().contains("allow_privileged"), "{e}");
        // ipc: the task's own (shareable too), none, or with the opt-in the host's.
        for (mode, ok) in [
            ("shareable", true),
            ("none", true),
            ("private", true),
            ("host", false),
            ("service:db", false),
            ("x", false),
        ] {
            let r = parse(&format!("services:\n  a: {{image: x, ipc: '{mode}'}}\n  db: {{image: x}}\n"));
            match r {
                Ok(s) => assert!(ok && s.services.iter().any(|s| s.spec.ipc.as_deref() == Some(mode)), "{mode}"),
                Err(e) => assert!(!ok && e.to_string().contains("services.a.ipc"), "{mode}: {e}"),
            }
        }
        let shm = parse("services:\n  a: {image: x, ipc: host, x-dockfleet: {allow_privileged: true}}\n").unwrap();
        assert_eq!(crate::task_container(&shm.services[0].spec, 1).ipc.as_deref(), Some("host"));
        for (ok, policy) in [
            ("{image: x}", "missing"),
            ("{image: x, pull_policy: if_not_present}", "missing"),
            ("{image: x, pull_policy: never}", "never"),
            ("{image: x, pull_policy: always}", "always"),
            ("{build: .}", "never"),
            ("{build: ., pull_policy: build}", "never"),
        ] {
            let s = parse(&format!("services:\n  web: {ok}\n")).unwrap();
            assert_eq!(s.services[0].spec.pull_policy.as_deref(), Some(policy), "{ok}");
        }
        for bad in [
            "{image: x, pull_policy: daily}",
            "{image: x, pull_policy: build}",
            "{image: x, pull_policy: every_12h}",
            "{image: x, pull_policy: sometimes}",
            "{build: ., image: x, pull_policy: always}",
        ] {
            let e = parse(&format!("services:\n  web: {bad}\n")).unwrap_err();
            assert!(e.to_string().contains("services.web.pull_policy"), "{bad}: {e}");
        }
        // node.runs names a service of the file by its name there, and places it after that one.
        let affine = "services:\n  web: {image: x, deploy: {placement: {constraints: ['node.runs==db', 'node.runs!=cache']}}}\n  db: {image: x}\n  cache: {image: x, deploy: {placement: {constraints: ['node.runs!=other_db']}}}\n";
        let stack = parse(affine).unwrap();
        let constraints = |n: &str| &stack.services.iter().find(|s| s.name == n).unwrap().spec.placement.constraints;
        assert_eq!(constraints("web"), &["node.runs==blog_db", "node.runs!=blog_cache"]);
        assert_eq!(constraints("cache"), &["node.runs!=other_db"], "not of the file: as written");
        let order: Vec<&str> = stack.order().unwrap().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(order, ["cache", "db", "web"], "web after both");
        let cycle = "services:\n  a: {image: x, deploy: {placement: {constraints: ['node.runs==b']}}}\n  b: {image: x, deploy: {placement: {constraints: ['node.runs!=a']}}}\n";
        assert!(parse(cycle).unwrap_err().to_string().contains("node.runs"));
        // cpu_quota / cpu_period is a CPU limit, which must agree with cpus where both are set.
        let cpus = |extra: &str| {
            parse(&format!("services:\n  web: {{image: x, {extra}}}\n")).map(|s| s.services[0].spec.resources.cpu_limit)
        };
        assert_eq!(cpus("cpu_quota: 50000").unwrap(), Some(0.5));
        assert_eq!(cpus("cpu_quota: 150000, cpu_period: 50000, cpus: 3").unwrap(), Some(3.0));
        for (bad, field) in [
            ("cpu_quota: 50000, cpus: 1", "services.web.cpu_quota"),
            ("cpu_period: 50000", "services.web.cpu_period"),
            ("cpu_quota: 10", "services.web.cpu_quota"),
            ("cpu_quota: 50000, cpu_period: 2000000", "services.web.cpu_period"),
            ("cpu_quota: -1", "services.web.cpu_quota"),
            ("cpu_quota: 1000, cpu_period: 1000000", "resources.cpu_limit"),
        ] {
            let e = cpus(bad).unwrap_err().to_string();
            assert!(e.contains(field), "{bad}: {e}");
        }
        let console = parse("services:\n  web: {image: x, tty: true, stdin_open: true}\n").unwrap();
        let c = crate::task_container(&console.services[0].spec, 1);
        assert!(c.tty && c.stdin_open);
        let devices = "services:\n  web: {image: x, devices: ['/dev/ttyUSB0:/dev/modem:rw', /dev/fuse]}\n";
        assert_eq!(parse(devices).unwrap().services[0].spec.devices, ["/dev/ttyUSB0:/dev/modem:rw", "/dev/fuse"]);
        let opted = "services:\n  web:\n    image: x\n    privileged: true\n    cap_add: [SYS_ADMIN]\n    volumes: ['/:/host']\n    x-dockfleet: {allow_privileged: true, allow_host_mounts: true}\n";
        let web = parse(opted).unwrap().services.remove(0).spec;
        assert!(web.privileged && web.allow_privileged && web.allow_host_mounts);
        let map = parse("services:\n  web: {image: x, extra_hosts: {a: 10.0.0.1, b: ['::1', 10.0.0.2]}}\n").unwrap();
        assert_eq!(map.services[0].spec.extra_hosts, ["a:10.0.0.1", "b:::1", "b:10.0.0.2"]);
        let exposing = "services:\n  web:\n    image: x\n    ports: ['8080:80']\n    expose: [80, '3000', 53/udp]\n    networks:\n      a: {aliases: [api, web]}\n      b:\nnetworks: {a: {}, b: {}}\n";
        let web = parse(exposing).unwrap().services.remove(0).spec;
        let ports: Vec<(u16, Option<u16>, &str)> =
            web.ports.iter().map(|p| (p.target, p.published, p.protocol.as_str())).collect();
        assert_eq!(ports, [(80, Some(8080), "tcp"), (3000, None, "tcp"), (53, None, "udp")], "exposed, not published");
        assert_eq!(web.network_aliases, ["web", "api"], "its name first, each alias once");
        // A container_name is one more name of the service on its networks.
        let named = "services:\n  web: {image: x, container_name: shop-web, networks: {a: {aliases: [api]}}}\n  db: {image: x, container_name: db}\nnetworks: {a: {}}\n";
        let stack = parse(named).unwrap();
        let aliases = |n: &str| stack.services.iter().find(|s| s.name == n).unwrap().spec.network_aliases.clone();
        assert_eq!(aliases("web"), ["web", "shop-web", "api"]);
        assert_eq!(aliases("db"), ["db"], "its own name, once");
        // A link is a dependency on a service of the file, which answers to the link's alias too.
        let linked = "services:\n  web: {image: x, links: [db, 'cache:redis'], depends_on: {db: {condition: service_healthy}}}\n  db: {image: x, healthcheck: {test: 'true'}}\n  cache: {image: x}\n";
        let stack = parse(linked).unwrap();
        let web = stack.services.iter().find(|s| s.name == "web").unwrap();
        let deps: Vec<(&str, &str)> =
            web.depends_on.iter().map(|d| (d.service.as_str(), d.condition.as_str())).collect();
        assert_eq!(deps, [("db", "service_healthy"), ("cache", "service_started")], "depends_on's condition kept");
        let aliases = |n: &str| stack.services.iter().find(|s| s.name == n).unwrap().spec.network_aliases.clone();
        assert_eq!((aliases("cache"), aliases("db")), (vec!["cache".into(), "redis".into()], vec!["db".to_string()]));
        assert_eq!(stack.order().unwrap().last().unwrap().name, "web", "after what it links to");
        let pids = |t: &str| {
            parse(&format!("services:\n  web: {{image: x, {t}}}\n")).map(|s| s.services[0].spec.resources.pids_limit)
        };
        assert_eq!(pids("pids_limit: 100").unwrap(), Some(100));
        let tuned = parse("services:\n  web: {image: x, cpu_shares: 512, cpuset: '0-1,3', mem_limit: 64m, memswap_limit: 128m}\n  batch: {image: x, mem_limit: 64m, memswap_limit: -1}\n").unwrap();
        let r = &tuned.services.iter().find(|s| s.name == "web").unwrap().spec.resources;
        assert_eq!(
            (r.cpu_shares, r.cpuset_cpus.as_deref(), r.memory_swap_limit),
            (Some(512), Some("0-1,3"), Some(128 << 20))
        );
        let c = crate::task_container(&tuned.services.iter().find(|s| s.name == "web").unwrap().spec, 1);
        assert_eq!(
            (c.cpu_shares, c.cpuset_cpus.as_deref(), c.memory_swap_bytes),
            (Some(512), Some("0-1,3"), Some(128 << 20))
        );
        let batch = &tuned.services.iter().find(|s| s.name == "batch").unwrap().spec;
        assert_eq!(batch.resources.memory_swap_limit, Some(-1), "swap without limit");
        let oom = parse("services:\n  db: {image: x, deploy: {resources: {limits: {memory: 1g}}}, mem_swappiness: 0, oom_kill_disable: true, oom_score_adj: -500, x-dockfleet: {allow_privileged: true}}\n").unwrap();
        let db = &oom.services[0].spec;
        assert_eq!(
            (db.resources.memory_swappiness, db.resources.oom_kill_disable, db.oom_score_adj),
            (Some(0), true, Some(-500))
        );
        let c = crate::task_container(db, 1);
        assert_eq!((c.memory_swappiness, c.oom_kill_disable, c.oom_score_adj), (Some(0), true, Some(-500)));
        let gpu = parse("services:\n  ml: {image: x, runtime: nvidia}\n").unwrap();
        assert_eq!(crate::task_container(&gpu.services[0].spec, 1).runtime.as_deref(), Some("nvidia"));
        assert_eq!(pids("deploy: {resources: {limits: {pids: 50}}}").unwrap(), Some(50));
        assert_eq!(pids("pids_limit: 50, deploy: {resources: {limits: {pids: 50}}}").unwrap(), Some(50));
        for (t, field) in [
            ("pids_limit: 100, deploy: {resources: {limits: {pids: 50}}}", "services.web.deploy.resources.limits.pids"),
            ("deploy: {resources: {reservations: {pids: 50}}}", "services.web.deploy.resources.reservations.pids"),
            ("pids_limit: 0", "services.web.pids_limit"),
            ("deploy: {resources: {limits: {pids: -5}}}", "services.web.deploy.resources.limits.pids"),
            ("group_add: [wheel, 'a b']", "services.web.group_add[1]"),
        ] {
            let e = pids(t).unwrap_err().to_string();
            assert!(e.contains(field), "{t}: {e}");
        }
        let groups = parse("services:\n  web: {image: x, group_add: [wheel, 1234]}\n").unwrap();
        assert_eq!(groups.services[0].spec.group_add, ["wheel", "1234"]);
        let long = "services:\n  web:\n    image: x\n    ports:\n      - {target: 80, published: 8080, mode: host, name: web, app_protocol: http}\n      - {target: 443, published: 8443}\n";
        let ports = parse(long).unwrap().services.remove(0).spec.ports;
        assert_eq!(
            ports.iter().map(|p| (p.target, p.mode.as_deref())).collect::<Vec<_>>(),
            [(80, Some("host")), (443, None)]
        );
        let rr = parse("services:\n  web: {image: x, deploy: {endpoint_mode: dnsrr}}\n").unwrap();
        assert_eq!(rr.services[0].spec.endpoint_mode.as_deref(), Some("dnsrr"));
        let e = parse("services:\n  web: {image: x, deploy: {endpoint_mode: rr}}\n").unwrap_err();
        assert!(e.to_string().contains("services.web.deploy.endpoint_mode"), "{e}");
        let shm = parse("services:\n  web: {image: x, shm_size: 256m}\n").unwrap();
        assert_eq!(shm.services[0].spec.shm_size, Some(256 << 20));
        let dns = parse("services:\n  web: {image: x, dns: 10.0.0.2, dns_search: [a.internal], dns_opt: [ndots:2]}\n")
            .unwrap();
        let web = &dns.services[0].spec;
        assert_eq!(
            (&web.dns[..], &web.dns_search[..], &web.dns_opt[..]),
            (&["10.0.0.2".to_string()][..], &["a.internal".to_string()][..], &["ndots:2".to_string()][..])
        );
        let runtime = "services:\n  web:\n    image: x\n    logging: {driver: json-file, options: {max-size: 10m, max-file: 3}}\n    ulimits: {nproc: 512, nofile: {soft: 1024, hard: 4096}}\n    sysctls: [net.core.somaxconn=1024]\n    tmpfs: /run\n";
        let web = parse(runtime).unwrap().services.remove(0).spec;
        let l = web.logging.unwrap();
        assert_eq!(
            (l.driver.as_str(), l.options["max-size"].as_str(), l.options["max-file"].as_str()),
            ("json-file", "10m", "3")
        );
        let u: Vec<(&str, i64, i64)> = web.ulimits.iter().map(|u| (u.name.as_str(), u.soft, u.hard)).collect();
        assert_eq!(u, [("nofile", 1024, 4096), ("nproc", 512, 512)]);
        assert_eq!((web.sysctls["net.core.somaxconn"].as_str(), &web.tmpfs[..]), ("1024", &["/run".to_string()][..]));
        for (text, network) in [
            ("services:\n  web: {image: x, network_mode: host, ports: ['80:80', '9100']}\n", "host"),
            ("services:\n  web: {image: x, network_mode: none}\n", "none"),
            ("services:\n  web: {image: x, network_mode: bridge}\n", "bridge"),
            // Swarm's way: the engine's network as an external one.
            ("services:\n  web: {image: x, networks: [hostnet]}\nnetworks:\n  hostnet: {external: true, name: host}\n", "host"),
        ] {
            let stack = parse(text).unwrap();
            let web = &stack.services[0].spec;
            assert_eq!((&web.networks[..], &web.network_aliases[..]), (&[network.to_string()][..], &[][..]), "{text}");
            assert!(stack.networks.is_empty(), "no default network: {text}");
        }
        let host = parse("services:\n  web: {image: x, network_mode: host, ports: ['80:80', '9100']}\n").unwrap();
        assert_eq!(host.services[0].spec.host_ports(), [(80, "tcp"), (9100, "tcp")]);
        for (text, field) in [
            ("services:\n  web: {image: x, network_mode: host, networks: [default]}\n", "services.web.network_mode"),
            (
                "services:\n  web: {image: x, network_mode: 'service:db'}\n  db: {image: x}\n",
                "services.web.network_mode",
            ),
            ("services:\n  web: {image: x, network_mode: 'container:c1'}\n", "services.web.network_mode"),
            ("services:\n  web: {image: x, network_mode: overlay}\n", "services.web.network_mode"),
            (
                "services:\n  web: {image: x, network_mode: host, ports: ['8080:80']}\n",
                "services.web.ports[0].published",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.to_string().contains(field), "{text}: {e}");
        }
        let none = parse("services:\n  web: {image: x, networks: []}\n").unwrap().services.remove(0).spec;
        assert!(none.networks.is_empty() && none.network_aliases.is_empty());
        let two = "services:\n  web: {image: x, networks: [a, b]}\nnetworks: {a: {}, b: {}}\n";
        assert_eq!(parse(two).unwrap().services[0].spec.networks, ["blog_a", "blog_b"]);
        let db = &s.services.iter().find(|x| x.name == "db").unwrap();
        assert_eq!(
            db.spec.volumes,
            [Mount {
                source: "blog_db-data".into(),
                target: "/var/lib/mysql".into(),
                read_only: false,
                ..Default::default()
            }]
        );
        assert_eq!(db.spec.placement.constraints, ["node.role == manager"]);
        assert_eq!(db.spec.resources.memory_limit, Some(64 << 20));
        assert_eq!(db.spec.resources.cpu_limit, Some(0.5));
        assert_eq!(db.spec.restart_policy.max_attempts, 3);
        assert_eq!(db.spec.restart_policy.window, Duration::from_secs(60));
        let hc = db.spec.healthcheck.as_ref().unwrap();
        assert_eq!(hc.test, ["CMD-SHELL", "test -d /var/lib/mysql"]);
        assert_eq!(hc.interval, Some(Duration::from_millis(500)));
        assert_eq!(
            s.services.iter().find(|x| x.name == "wordpress").unwrap().depends_on[0].condition,
            "service_healthy"
        );
    }

    #[test]
    fn a_key_without_a_value_is_read_from_the_environment_for_variables_and_is_empty_for_labels() {
        let text = "services:\n  web:\n    image: x\n    environment: [PATH, DOCKFLEET_SURELY_UNSET_VAR, A=1]\n    labels: [bare, k=v]\n    deploy:\n      labels: {also-bare: null}\n";
        let s = parse(text).unwrap();
        let spec = &s.services[0].spec;
        assert_eq!(spec.env.get("PATH"), std::env::var("PATH").ok().as_ref());
        assert!(!spec.env.contains_key("DOCKFLEET_SURELY_UNSET_VAR"), "an unset variable is left out");
        assert_eq!(spec.env.get("A").map(String::as_str), Some("1"));
        // As compose-go's Labels: a label named without a value is there, empty.
        assert_eq!(spec.labels.get("bare").map(String::as_str), Some(""));
        assert_eq!(spec.labels.get("also-bare").map(String::as_str), Some(""));
        assert_eq!(spec.labels.get("k").map(String::as_str), Some("v"));
    }

    #[test]
    fn bad_files_name_the_field() {
        let cases: &[(&str, &str)] = &[
            ("services:\n  web:\n    image: x\n    entrypoint: []\n", "services.web.entrypoint"),
            ("services:\n  web:\n    image: x\n    working_dir: tmp\n", "services.web.working_dir"),
            ("services:\n  web:\n    image: x\n    stop_signal: SIG QUIT\n", "services.web.stop_signal"),
            ("services:\n  web:\n    image: x\n    deploy:\n      replicas: many\n", "services.web.deploy.replicas"),
            ("services:\n  web:\n    image: x\n    deploy:\n      replicas: 100000000\n", "services.web.deploy.replicas"),
            ("services:\n  web:\n    image: x\n    deploy:\n      placment: {}\n", "services.web.deploy"),
            ("services:\n  web:\n    image: x\n    volumes: ['/:/host']\n", "services.web.volumes[0].source"),
            ("services:\n  web:\n    image: x\n    volumes: ['data:/d']\n", "services.web.volumes[0]"),
            ("services:\n  web:\n    image: x\n    ports: ['1.2.3.4:80:80']\n", "services.web.ports[0]"),
            ("services:\n  web:\n    image: x\n    depends_on: [db]\n", "services.web.depends_on.db"),
            ("services:\n  web:\n    build: {context: ., cache_from: [x]}\n", "services.web.build.cache_from: not supported"),
            ("services:\n  web:\n    build: {context: ., target: 'a b'}\n", "services.web.build.target"),
            ("services:\n  web:\n    build: {context: ., tagret: prod}\n", "services.web.build.tagret: unknown key"),
            ("services:\n  web:\n    image: x\n    stop_grace_period: soon\n", "services.web.stop_grace_period"),
            ("services:\n  web: {image: x, x-dockfleet: {shutdown_delay: soon}}\n", "services.web.x-dockfleet.shutdown_delay"),
            ("services:\n  web: {image: x, x-dockfleet: {shutdown_delay: 2h}}\n", "services.web.x-dockfleet.shutdown_delay"),
            ("services:\n  web: {image: x, x-dockfleet: {drain: 2s}}\n", "services.web.x-dockfleet"),
            (
                "services:\n  web:\n    image: x\n    deploy: {resources: {limits: {memory: lots}}}\n",
                "services.web.deploy.resources.limits.memory",
            ),
            ("services:\n  web: {image: x, depends_on: [db]}\n  db: {image: x, depends_on: [web]}\n", "depends_on"),
            ("networks:\n  n: {driver: macvlan}\nservices:\n  web: {image: x}\n", "networks.n.driver"),
            ("services:\n  web: {image: x, secrets: [pw]}\n", "services.web.secrets[0]"),
            ("secrets:\n  pw: {file: ./nowhere.txt}\nservices:\n  web: {image: x}\n", "secrets.pw.file"),
            ("secrets:\n  pw: {external: true, file: x}\nservices:\n  web: {image: x}\n", "secrets.pw"),
            ("secrets:\n  pw: {}\nservices:\n  web: {image: x}\n", "secrets.pw"),
            (
                "secrets:\n  pw: {external: true}\nservices:\n  web: {image: x, secrets: [{source: pw, uid: '1000'}]}\n",
                "services.web.secrets[0].uid",
            ),
            ("configs:\n  c: {external: true}\nservices:\n  web: {image: x, configs: [{source: c, target: rel}]}\n", "services.web.configs[0].target"),
            ("services:\n  web: {image: x, privileged: true}\n", "services.web.privileged"),
            ("services:\n  web: {image: x, cap_add: [SYS_ADMIN]}\n", "services.web.cap_add[0]"),
            ("services:\n  web: {image: x, devices: [/dev/sda]}\n", "services.web.devices[0]"),
            ("services:\n  web: {image: x, devices: ['nvidia.com/gpu=all']}\n", "services.web.devices[0]"),
            ("services:\n  web: {image: x, volumes: ['/:/host']}\n", "services.web.volumes[0].source"),
            ("services:\n  web: {image: x, expose: ['8080:80']}\n", "services.web.expose[0]"),
            ("services:\n  web: {image: x, expose: ['3000-3005']}\n", "services.web.expose[0]"),
            ("services:\n  web: {image: x, networks: {a: {ipv4_address: 10.0.0.2}}}\nnetworks: {a: {}}\n", "services.web.networks.a.ipv4_address"),
            ("services:\n  web: {image: x, networks: {a: {aliases: ['bad alias']}}}\nnetworks: {a: {}}\n", "services.web.networks.a.aliases[0]"),
            ("services:\n  web: {image: x, ulimits: {nofile: {soft: 1}}}\n", "services.web.ulimits.nofile"),
            ("services:\n  web: {image: x, ulimits: {nofile: many}}\n", "services.web.ulimits.nofile"),
            ("services:\n  web: {image: x, ulimits: {files: 1}}\n", "services.web.ulimits[0].name"),
            ("services:\n  web: {image: x, logging: {driver: x, opts: {}}}\n", "services.web"),
            ("services:\n  web: {image: x, tmpfs: [run]}\n", "services.web.tmpfs[0]"),
            ("services:\n  web: {image: x, container_name: web1, scale: 2}\n", "services.web.container_name: names one container, and the service runs 2 replicas"),
            ("services:\n  web: {image: x, container_name: web1, deploy: {mode: global}}\n", "one task per host"),
            ("services:\n  web: {image: x, container_name: 'web 1'}\n", "services.web.container_name"),
            ("services:\n  web: {image: x, container_name: one}\n  api: {image: x, container_name: one}\n", "already names service"),
            ("services:\n  web: {image: x, container_name: api}\n  api: {image: x}\n", "services.web.container_name: \"api\" already names service api"),
            ("services:\n  web: {image: x, links: [db]}\n", "services.web.links[0]: \"db\" is no other service"),
            ("services:\n  web: {image: x, links: [web]}\n", "services.web.links[0]"),
            ("services:\n  web: {image: x, links: ['db:api']}\n  db: {image: x}\n  api: {image: x}\n", "services.web.links[0]: \"api\" already names"),
            ("services:\n  web: {image: x, links: ['db:a b']}\n  db: {image: x}\n", "services.web.links[0]"),
            ("services:\n  web: {image: x, links: [db], networks: [a]}\n  db: {image: x, networks: [b]}\nnetworks: {a: {}, b: {}}\n", "services.web.links[0]: web and db share no network"),
            ("services:\n  web: {image: x, external_links: [db]}\n", "services.web.external_links"),
            ("services:\n  web: {image: x, cpu_shares: 1}\n", "services.web.cpu_shares: 1 is not from 2"),
            ("services:\n  web: {image: x, mem_swappiness: 101}\n", "services.web.mem_swappiness: 101 is not from 0 to 100"),
            ("services:\n  web: {image: x, runtime: 'run c'}\n", "services.web.runtime"),
            ("services:\n  web: {image: x, oom_kill_disable: true}\n", "services.web.oom_kill_disable: needs a memory limit"),
            ("services:\n  web: {image: x, oom_score_adj: 2000}\n", "services.web.oom_score_adj: 2000 is not from -1000"),
            ("services:\n  web: {image: x, oom_score_adj: -100}\n", "services.web.oom_score_adj: below 0"),
            ("services:\n  web: {image: x, cpuset: '3-1'}\n", "services.web.cpuset: \"3-1\": the range 3-1 runs backwards"),
            ("services:\n  web: {image: x, cpuset: '0,x'}\n", "services.web.cpuset"),
            ("services:\n  web: {image: x, memswap_limit: 1g}\n", "services.web.memswap_limit: needs a memory limit"),
            ("services:\n  web: {image: x, mem_limit: 1g, memswap_limit: 512m}\n", "is below the memory limit"),
            ("services:\n  web: {image: x, mem_limit: 1g, memswap_limit: lots}\n", "services.web.memswap_limit"),
            ("services:\n  web: {image: x, mem_limit: lots}\n", "services.web.mem_limit"),
            ("services:\n  web: {image: x, cpus: -1}\n", "services.web.cpus"),
            ("services:\n  web: {image: x, scale: 0, deploy: {replicas: 2}}\n", "services.web.deploy.replicas"),
            ("services:\n  web: {image: x, mem_limit: 1g, deploy: {resources: {limits: {memory: 2g}}}}\n", "services.web.deploy.resources.limits.memory"),
            ("services:\n  web: {image: x, cpus: 1, deploy: {resources: {limits: {cpus: '2'}}}}\n", "differs from the service's cpus"),
            ("services:\n  web: {image: x, isolation: hyperv}\n", "services.web.isolation: not supported"),
            ("services:\n  web: {image: x, healthcheck: {test: [CMD, 'true'], start_interval: 1s}}\n", "services.web.healthcheck.start_interval: not supported"),
            ("services:\n  web: {image: x, deploy: {mode: replicated-job}}\n", "services.web.deploy.mode"),
            ("services:\n  web: {image: x, deploy: {mode: daemon}}\n", "services.web.deploy.mode"),
            ("servics: {}\n", "servics"),
        ];
        for (text, field) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.code(), "invalid_argument", "{text}");
            assert!(e.to_string().contains(field), "{e} should name {field} for:\n{text}");
        }
        let port =
            |p: &str| parse(&format!("services:\n  web: {{image: x, ports: ['{p}']}}\n")).unwrap_err().to_string();
        assert!(port("-1:80").contains("\"-1\" is not a port"), "{}", port("-1:80"));
        assert!(port("8000-8002:80-82").contains("port ranges are not supported"));
        assert!(port("8000:80-82").contains("port ranges are not supported"));
    }

    #[test]
    fn networks_and_volumes_keep_their_labels() {
        let text = "services:\n  web: {image: x, networks: [front], volumes: ['v:/v']}\n\
                    networks:\n  front: {labels: {tier: net}}\n  outside: {external: true}\n\
                    volumes:\n  v: {labels: [tier=data, bare]}\n";
        let stack = parse(text).unwrap();
        let tier = |v: &str| BTreeMap::from([("tier".to_string(), v.to_string())]);
        assert_eq!(stack.network_options["blog_front"], NetworkOptions { labels: tier("net"), ..Default::default() });
        assert_eq!(stack.volume_options["blog_v"].labels["bare"], "");
        let labels = stack.volume("blog_v").labels;
        assert_eq!((labels["tier"].as_str(), labels[LABEL_STACK].as_str()), ("data", "blog"));
        assert_eq!(stack.network("blog_default").labels.len(), 1, "the stack's own only");
        assert!(!stack.network_options.contains_key("blog_default"), "defaults are left out");
        for (text, field) in [
            ("networks:\n  n: {external: true, labels: {a: b}}\nservices:\n  web: {image: x}\n", "networks.n.labels"),
            (
                "volumes:\n  v: {labels: {dockfleet.stack: other}}\nservices:\n  web: {image: x}\n",
                "volumes.v.labels.dockfleet.stack",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
        let mut odd = stack.clone();
        odd.network_options.insert("elsewhere".into(), NetworkOptions::default());
        assert!(odd.validate().unwrap_err().to_string().contains("network_options.elsewhere"));
    }

    #[test]
    fn networks_and_volumes_keep_their_options() {
        let text = "services:\n  web: {image: x, networks: [front], volumes: ['scratch:/s']}\n\
                    networks:\n  front:\n    driver: bridge\n    internal: true\n    enable_ipv6: true\n\
                    \x20   driver_opts: {com.docker.network.driver.mtu: 1400}\n\
                    \x20   ipam:\n      driver: default\n      config:\n\
                    \x20       - {subnet: 172.28.0.0/16, ip_range: 172.28.5.0/24, gateway: 172.28.5.254, \
                    aux_addresses: {router: 172.28.1.5}}\n\
                    \x20       - {subnet: 'fd00:28::/64'}\n\
                    volumes:\n  scratch: {driver: local, driver_opts: {type: tmpfs, device: tmpfs, o: size=1m}}\n";
        let stack = parse(text).unwrap();
        let net = &stack.network_options["blog_front"];
        assert!(net.internal && net.enable_ipv6 && !net.attachable && net.driver.is_none());
        assert_eq!(net.driver_opts["com.docker.network.driver.mtu"], "1400");
        assert_eq!(
            net.ipam[0],
            IpamPool {
                subnet: "172.28.0.0/16".into(),
                ip_range: Some("172.28.5.0/24".into()),
                gateway: Some("172.28.5.254".into()),
                aux_addresses: BTreeMap::from([("router".into(), "172.28.1.5".into())]),
            }
        );
        assert_eq!(net.ipam[1].subnet, "fd00:28::/64");
        let vol = &stack.volume_options["blog_scratch"];
        assert_eq!((vol.driver.as_deref(), vol.driver_opts["o"].as_str()), (None, "size=1m"));
        let net = |body: &str| format!("networks:\n  n: {body}\nservices:\n  web: {{image: x, networks: [n]}}\n");
        let vol = |body: &str| format!("volumes:\n  v: {body}\nservices:\n  web: {{image: x, volumes: ['v:/v']}}\n");
        for (text, field) in [
            (net("{ipam: {config: [{subnet: 10.1.0.0}]}}"), "networks.n.ipam.config[0].subnet"),
            (net("{ipam: {config: [{subnet: 10.1.0.0/33}]}}"), "networks.n.ipam.config[0].subnet"),
            (net("{ipam: {config: [{subnet: 10.1.5.0/16}]}}"), "the subnet is 10.1.0.0/16"),
            (net("{enable_ipv6: true, ipam: {config: [{subnet: 'fd00::1/64'}]}}"), "the subnet is fd00::/64"),
            (net("{ipam: {config: [{subnet: 10.1.0.0/16, gateway: 10.2.0.1}]}}"), "networks.n.ipam.config[0].gateway"),
            (net("{ipam: {config: [{subnet: 10.1.0.0/16, gateway: ten}]}}"), "networks.n.ipam.config[0].gateway"),
            (
                net("{ipam: {config: [{subnet: 10.1.0.0/16, ip_range: 10.0.0.0/8}]}}"),
                "networks.n.ipam.config[0].ip_range",
            ),
            (
                net("{ipam: {config: [{subnet: 10.1.0.0/16, ip_range: 10.2.0.0/24}]}}"),
                "networks.n.ipam.config[0].ip_range",
            ),
            (
                net("{ipam: {config: [{subnet: 10.1.0.0/16, aux_addresses: {r: 10.9.0.1}}]}}"),
                "networks.n.ipam.config[0].aux_addresses.r",
            ),
            (
                net("{ipam: {config: [{subnet: 10.1.0.0/16}, {subnet: 10.1.2.0/24}]}}"),
                "networks.n.ipam.config[1].subnet",
            ),
            (net("{ipam: {config: [{subnet: 'fd00::/64'}]}}"), "networks.n.ipam.config[0].subnet"),
            (net("{ipam: {driver: weave}}"), "networks.n.ipam.driver"),
            (net("{ipam: {options: {a: b}}}"), "networks.n.ipam.options"),
            (net("{ipam: {config: [{ip_range: 10.1.0.0/24}]}}"), "networks.n.ipam.config[0]"),
            (net("{driver: macvlan}"), "networks.n.driver"),
            (net("{driver_opts: [a=b]}"), "networks.n.driver_opts"),
            (net("{external: true, internal: true}"), "networks.n.internal"),
            (vol("{driver_opts: {type: tmpfs, uid: '1000'}}"), "volumes.v.driver_opts.uid"),
            (vol("{internal: true}"), "volumes.v.internal"),
            (vol("{driver: nfs-plugin}"), "volumes.v.driver"),
            (vol("{external: true, driver_opts: {type: tmpfs}}"), "volumes.v.driver_opts"),
        ] {
            let e = parse(&text).unwrap_err();
            assert_eq!(e.code(), "invalid_argument", "{text}");
            assert!(e.to_string().contains(field), "{e} should name {field} for:\n{text}");
        }
        // A volume that binds a path handing the container its host needs the service's opt-in.
        let bind = |opt_in: &str| {
            parse(&format!(
                "volumes:\n  sock: {{driver_opts: {{type: none, o: bind, device: /var/run/docker.sock}}}}\n\
                 services:\n  web: {{image: x, volumes: ['sock:/s'] {opt_in}}}\n"
            ))
        };
        let e = bind("").unwrap_err().to_string();
        assert!(e.contains("services.web.volumes[0].source") && e.contains("allow_host_mounts"), "{e}");
        bind(", x-dockfleet: {allow_host_mounts: true}").unwrap();
        let mut odd = stack.clone();
        odd.network_options.get_mut("blog_front").unwrap().driver = Some("macvlan".into());
        assert!(odd.validate().unwrap_err().to_string().contains("network_options.blog_front.driver"));
    }

    #[test]
    fn mounts_keep_their_options_and_tmpfs_mounts_become_tmpfs() {
        let text = "volumes: {v: {}}\nservices:\n  web:\n    image: x\n    tmpfs: /run\n    volumes:\n\
                    \x20     - v:/v:nocopy\n      - /srv:/srv:ro,z,rslave\n      - ./conf:/conf:cached\n\
                    \x20     - {type: bind, source: /data, target: /data, bind: {propagation: rshared, selinux: Z, create_host_path: true}}\n\
                    \x20     - {type: volume, source: v, target: /w, read_only: 'true', volume: {nocopy: true}}\n\
                    \x20     - {type: tmpfs, target: /cache, tmpfs: {size: 1m, mode: '01777'}}\n\
                    \x20     - {type: tmpfs, target: /scratch}\n";
        let spec = parse(text).unwrap().services.remove(0).spec;
        let m = &spec.volumes;
        assert_eq!(m.len(), 5, "{m:?}");
        assert!(m[0].no_copy && m[0].source == "blog_v" && m[0].bind_entry() == "blog_v:/v:nocopy");
        assert_eq!(m[1].bind_entry(), "/srv:/srv:ro,z,rslave");
        assert_eq!((m[2].propagation.as_ref(), m[2].selinux.as_ref()), (None, None), "consistency is ignored");
        assert_eq!(m[3].bind_entry(), "/data:/data:Z,rshared");
        let home = |entry: &str| {
            let text = format!("services:\n  web: {{image: x, volumes: ['{entry}']}}\n");
            parse(&text).unwrap().services.remove(0).spec.volumes.remove(0).source
        };
        let h = std::env::var("HOME").unwrap();
        assert_eq!(home("~/conf:/conf"), format!("{}/conf", h.trim_end_matches('/')), "~ is the home directory");
        assert_eq!(home("./conf:/conf"), "/srv/blog/./conf", "a relative path is the file's directory's");
        assert!(m[4].read_only && m[4].no_copy);
        assert_eq!(spec.tmpfs, ["/run", "/cache:size=1048576,mode=1777", "/scratch"]);
        let vol =
            |entry: &str| format!("volumes: {{v: {{}}}}\nservices:\n  web:\n    image: x\n    volumes: [{entry}]\n");
        for (text, field, says) in [
            (vol("'v:/v:shared'"), "volumes[0].propagation", "binds"),
            (vol("'/a:/a:nocopy'"), "volumes[0].no_copy", "named volumes"),
            (vol("'/a:/a:rw,exec'"), "volumes[0]", "\"exec\" is not"),
            (
                vol("{type: bind, source: /a, target: /a, bind: {propagation: sideways}}"),
                "volumes[0].propagation",
                "sideways",
            ),
            (
                vol("{type: bind, source: /a, target: /a, bind: {create_host_path: false}}"),
                "bind.create_host_path",
                "creates",
            ),
            (vol("{type: bind, source: /a, target: /a, volume: {nocopy: true}}"), "volumes[0].volume", "type: volume"),
            (vol("{type: volume, source: v, target: /a, volume: {subpath: x}}"), "volume.subpath", "1.45"),
            (vol("{type: volume, source: v, target: /a, read_only: yes}"), "volumes[0].read_only", "true or false"),
            (vol("{type: tmpfs, source: v, target: /a}"), "volumes[0]", "no source"),
            (vol("{type: tmpfs, target: /a, tmpfs: {mode: rwx}}"), "tmpfs.mode", "file mode"),
            (vol("{type: npipe, source: x, target: /a}"), "volumes[0].type", "npipe"),
            (vol("{type: bind, target: /a}"), "volumes[0].source", "required"),
            (vol("{type: volume, source: /srv, target: /a}"), "volumes[0].source", "type: bind"),
        ] {
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(field) && e.contains(says), "{e} should name {field} and say {says}:\n{text}");
        }
    }

    #[test]
    fn dependencies_may_restart_their_dependents_or_be_optional() {
        let text = "services:\n  web:\n    image: x\n    depends_on:\n\
                    \x20     db: {condition: service_healthy, restart: true}\n\
                    \x20     cache: {condition: service_started, required: false}\n\
                    \x20     metrics: {required: false}\n  db: {image: y}\n  cache: {image: z}\n";
        let stack = parse(text).unwrap();
        let web = stack.services.iter().find(|s| s.name == "web").unwrap();
        let d: Vec<(&str, bool, bool)> =
            web.depends_on.iter().map(|d| (d.service.as_str(), d.restart, d.required)).collect();
        assert_eq!(d, [("db", true, true), ("cache", false, false), ("metrics", false, false)]);
        let order: Vec<&str> = stack.order().unwrap().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(order.last(), Some(&"web"), "metrics, not in the file, does not hold web back: {order:?}");
        // Only required: true (and restart: false) are left out of the spec's serialization.
        let json = serde_json::to_string(&web.depends_on).unwrap();
        assert!(json.contains("\"restart\":true") && json.contains("\"required\":false"), "{json}");
        assert_eq!(
            serde_json::to_string(&Dependency { service: "a".into(), ..Default::default() }).unwrap(),
            r#"{"service":"a","condition":"service_started"}"#
        );
        for (text, field) in [
            ("services:\n  web: {image: x, depends_on: {db: {required: true}}}\n", "services.web.depends_on.db"),
            ("services:\n  web: {image: x, depends_on: [db]}\n", "services.web.depends_on.db"),
            (
                "services:\n  web: {image: x, depends_on: {db: {restart: sometimes}}}\n  db: {image: y}\n",
                "services.web.depends_on.db.restart",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(field), "{e} should name {field}");
        }
    }

    #[test]
    fn secrets_from_the_environment_and_configs_given_inline() {
        let text = "
secrets:
  token: {environment: DOCKFLEET_UNIT_TOKEN, labels: {tier: auth}}
configs:
  motd: {content: 'hello $${USER}', labels: [tier=conf]}
services:
  web: {image: x, secrets: [token], configs: [{source: motd, target: /etc/motd}]}
";
        let stack = parse(text).unwrap();
        let token = &stack.secrets[0];
        assert_eq!(
            (token.environment.as_deref(), token.file.as_ref(), token.labels["tier"].as_str()),
            (Some("DOCKFLEET_UNIT_TOKEN"), None, "auth")
        );
        let e = token.data("secrets.token").unwrap_err().to_string();
        assert!(e.contains("secrets.token.environment") && e.contains("DOCKFLEET_UNIT_TOKEN is not set"), "{e}");
        let motd = &stack.configs[0];
        assert_eq!(
            (motd.data("configs.motd").unwrap(), motd.labels["tier"].as_str()),
            (b"hello ${USER}".to_vec(), "conf")
        );
        for (text, field) in [
            ("secrets:\n  s: {content: x}\nservices:\n  web: {image: x}\n", "secrets.s.content"),
            ("secrets:\n  s: {file: ./a, environment: A}\nservices:\n  web: {image: x}\n", "secrets.s"),
            ("configs:\n  c: {content: x, external: true}\nservices:\n  web: {image: x}\n", "configs.c"),
            ("configs:\n  c: {external: true, labels: {a: b}}\nservices:\n  web: {image: x}\n", "configs.c.labels"),
            ("configs:\n  c: {}\nservices:\n  web: {image: x}\n", "configs.c"),
            ("secrets:\n  s: {environment: 'A=B'}\nservices:\n  web: {image: x}\n", "secrets.s.environment"),
            (
                "secrets:\n  s: {environment: A, labels: {dockfleet.x: y}}\nservices:\n  web: {image: x}\n",
                "secrets.s.labels.dockfleet.x",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.code() == "invalid_argument" && e.to_string().contains(field), "{e} should name {field}");
        }
        let mut odd = stack.clone();
        odd.secrets[0].content = Some("x".into());
        assert!(odd.validate().unwrap_err().to_string().contains("secrets[0]"));
    }

    #[test]
    fn existing_networks_and_volumes_must_match_the_stack() {
        let want = NetworkOptions {
            internal: true,
            labels: BTreeMap::from([("tier".into(), "a".into())]),
            ipam: vec![IpamPool { subnet: "10.5.0.0/24".into(), ..Default::default() }],
            ..Default::default()
        };
        let have = NetworkSummary {
            name: "n".into(),
            internal: true,
            labels: BTreeMap::from([("tier".into(), "a".into()), ("other".into(), "x".into())]),
            driver_opts: BTreeMap::from([("com.docker.network.driver.overlay.vxlanid_list".into(), "4097".into())]),
            ipam: vec![IpamPool {
                subnet: "10.5.0.0/24".into(),
                gateway: Some("10.5.0.1".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(network_drift(&want, &have), None, "the engine's additions are no drift");
        let drift = |f: &dyn Fn(&mut NetworkOptions)| {
            let mut w = want.clone();
            f(&mut w);
            network_drift(&w, &have).unwrap()
        };
        assert!(drift(&|w| w.internal = false).contains("internal is true"));
        assert!(drift(&|w| w.enable_ipv6 = true).contains("enable_ipv6"));
        assert!(drift(&|w| w.ipam[0].subnet = "10.6.0.0/24".into()).contains("no pool 10.6.0.0/24"));
        assert!(drift(&|w| w.ipam[0].gateway = Some("10.5.0.9".into())).contains("no pool 10.5.0.0/24 via 10.5.0.9"));
        assert!(drift(&|w| {
            w.driver_opts.insert("com.docker.network.driver.mtu".into(), "1400".into());
        })
        .contains("driver option com.docker.network.driver.mtu"));
        assert!(drift(&|w| {
            w.labels.insert("tier".into(), "b".into());
        })
        .contains("label tier is \"a\""));
        let vol =
            VolumeOptions { driver_opts: BTreeMap::from([("type".into(), "tmpfs".into())]), ..Default::default() };
        let have = VolumeSummary {
            name: "v".into(),
            driver: "local".into(),
            driver_opts: vol.driver_opts.clone(),
            ..Default::default()
        };
        assert_eq!(volume_drift(&vol, &have), None);
        assert!(volume_drift(&VolumeOptions::default(), &have).unwrap().contains("driver options"));
        let plugin = VolumeOptions { driver: Some("nfs".into()), ..vol.clone() };
        assert!(volume_drift(&plugin, &have).unwrap().contains("its driver is local"));
        let e = drift_error("df-1", "volume", "v", "why");
        assert_eq!(e.code(), "conflict");
        assert!(e.to_string().contains("deletes its data"), "{e}");
    }

    #[test]
    fn env_files_as_paths_or_with_required() {
        let dir = std::env::temp_dir().join(format!("dockfleet-envfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.env"), "A=1\nB=2\n").unwrap();
        std::fs::write(dir.join("b.env"), "B=3\n").unwrap();
        let with = |files: &str| {
            parse_compose("blog", &format!("services:\n  web: {{image: x, env_file: {files}}}\n"), &dir)
                .map(|mut s| s.services.remove(0).spec.env)
        };
        let want = BTreeMap::from([("A".to_string(), "1".to_string()), ("B".to_string(), "3".to_string())]);
        assert_eq!(with("[a.env, b.env]").unwrap(), want, "later files win");
        assert_eq!(with("[a.env, {path: b.env}, {path: missing.env, required: false}]").unwrap(), want);
        assert_eq!(with("a.env").unwrap().len(), 2);
        for (files, field) in [
            ("[a.env, {path: missing.env}]", "services.web.env_file[1]"),
            ("[{required: false}]", "services.web.env_file[0].path"),
            ("[{path: a.env, format: raw}]", "services.web.env_file[0].format"),
            ("[{path: a.env, required: maybe}]", "services.web.env_file[0].required"),
        ] {
            let e = with(files).unwrap_err().to_string();
            assert!(e.contains(field), "{files}: {e}");
        }
        // label_file: read as env files are, later files and then `labels` winning.
        std::fs::write(dir.join("app.labels"), "# team\nteam=shop\ntier=${TIER:-web}\n").unwrap();
        std::fs::write(dir.join("more.labels"), "tier=front\nowner=ops\n").unwrap();
        let labels = |t: &str| {
            parse_compose("blog", &format!("services:\n  web: {{image: x, {t}}}\n"), &dir)
                .map(|mut s| s.services.remove(0).spec.labels)
        };
        let l = labels("label_file: app.labels").unwrap();
        assert_eq!((l["team"].as_str(), l["tier"].as_str()), ("shop", "web"));
        let l = labels("label_file: [app.labels, more.labels], labels: {owner: me}").unwrap();
        assert_eq!((l["tier"].as_str(), l["owner"].as_str()), ("front", "me"));
        let e = labels("label_file: [app.labels, none.labels]").unwrap_err().to_string();
        assert!(e.contains("services.web.label_file[1]"), "{e}");
        std::fs::write(dir.join("bad.labels"), "dockfleet.slot=1\n").unwrap();
        let e = labels("label_file: bad.labels").unwrap_err().to_string();
        assert!(e.contains("services.web.labels"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_build_section_reads_its_context_dockerfile_args_target_labels_and_no_cache() {
        let text = "services:\n  web:\n    build:\n      context: ./app\n      dockerfile: Dockerfile.prod\n      \
                    args: [GREETING=hi]\n      target: base\n      labels: {team: shop}\n      no_cache: true\n";
        let b = parse(text).unwrap().services.remove(0).build.unwrap();
        assert_eq!(
            b,
            StackBuild {
                context: PathBuf::from("/srv/blog/./app"),
                dockerfile: Some("Dockerfile.prod".into()),
                args: BTreeMap::from([("GREETING".into(), "hi".into())]),
                target: Some("base".into()),
                labels: BTreeMap::from([("team".into(), "shop".into())]),
                no_cache: true,
            }
        );
    }

    #[test]
    fn security_options_as_written_and_seccomp_profiles_from_files() {
        let stack =
            parse("services:\n  web: {image: x, security_opt: ['no-new-privileges:true', 'label:type:web_t']}\n")
                .unwrap();
        assert_eq!(stack.services[0].spec.security_opt, ["no-new-privileges:true", "label:type:web_t"]);
        let dir = std::env::temp_dir().join(format!("dockfleet-seccomp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let profile =
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#;
        std::fs::write(dir.join("profile.json"), format!("{profile}\n")).unwrap();
        std::fs::write(dir.join("allow.json"), r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).unwrap();
        std::fs::write(dir.join("broken.json"), "{defaultAction").unwrap();
        let with = |opts: &str| {
            parse_compose("blog", &format!("services:\n  web: {{image: x, security_opt: [{opts}]}}\n"), &dir)
        };
        let stack = with("'seccomp:./profile.json', 'seccomp=unconfined'").map(|_| ()).unwrap_err();
        assert!(stack.to_string().contains("services.web.security_opt[1]"), "unconfined needs the opt-in: {stack}");
        let spec = with("'seccomp:./profile.json'").unwrap().services.remove(0).spec;
        assert_eq!(spec.security_opt, [format!("seccomp={profile}")], "the file's text, as compose sends it");
        for (opts, why) in [
            ("'no-new-privileges', 'seccomp=missing.json'", "missing.json: cannot read it"),
            ("'seccomp=broken.json'", "not JSON"),
            ("'seccomp=allow.json'", "allow_privileged"),
        ] {
            let e = with(opts).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains("services.web.security_opt[") && e.contains(why), "{opts}: {e}");
        }
        let opted =
            "services:\n  web: {image: x, security_opt: [seccomp=allow.json], x-dockfleet: {allow_privileged: true}}\n";
        parse_compose("blog", opted, &dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn secrets_and_configs_from_files_or_external() {
        let dir = std::env::temp_dir().join(format!("dockfleet-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pw.txt"), "hunter2").unwrap();
        std::fs::write(dir.join("app.conf"), "a = 1").unwrap();
        let text = "
secrets:
  db_pw: {file: ./pw.txt}
  api_key: {external: true}
configs:
  app: {file: ./app.conf}
services:
  web:
    image: x
    secrets: [db_pw, {source: api_key, target: key, mode: 0400}]
    configs: [{source: app, target: /etc/app.conf}]
";
        let stack = parse_compose("blog", text, &dir).unwrap();
        let pw = StackFile { name: "blog_db_pw".into(), file: Some(dir.join("./pw.txt")), ..Default::default() };
        assert_eq!(stack.secrets, vec![pw.clone()]);
        assert_eq!(pw.data("secrets.db_pw").unwrap(), b"hunter2");
        // A file set in code is read as a compose file's is: a device is refused, not read on and on.
        let device = StackFile { name: "blog_zero".into(), file: Some("/dev/zero".into()), ..Default::default() };
        let e = device.data("secrets.zero").unwrap_err();
        assert!(e.code() == "invalid_argument" && e.to_string().contains("secrets.zero.file"), "{e}");
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert_eq!(stack.configs.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["blog_app"]);
        let spec = &stack.services[0].spec;
        assert_eq!(
            spec.secrets,
            vec![
                ServiceFile { source: "blog_db_pw".into(), target: "db_pw".into(), mode: 0o444 },
                ServiceFile { source: "blog_api_key".into(), target: "key".into(), mode: 0o400 },
            ]
        );
        assert_eq!(
            spec.configs,
            vec![ServiceFile { source: "blog_app".into(), target: "/etc/app.conf".into(), mode: 0o444 }]
        );
        // Plain engines have no secret store: the fleet refuses, naming the field.
        let e = crate::reconcile::fleet_can_run(spec).unwrap_err();
        assert!(e.to_string().contains("secrets") && e.to_string().contains("Swarm"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut bomb =
            String::from("x-a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 9].join(",");
            bomb.push_str(&format!("x-a{i}: &a{i} [{refs}]\n"));
        }
        bomb.push_str("services:\n  web:\n    image: x\n    command: *a9\n");
        let e = parse(&bomb).unwrap_err();
        assert_eq!(e.code(), "invalid_argument");
        assert!(e.to_string().contains("repetition limit"), "{e}");
        let huge = format!("services: {{}}\n#{}\n", "x".repeat(MAX_COMPOSE_BYTES));
        assert!(parse(&huge).unwrap_err().to_string().contains("limit"));
    }

    #[test]
    fn variables_are_substituted_like_compose() {
        let env = |k: &str| match k {
            "TAG" => Some("2".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let i = |t: &str| interpolate("f", t, &env);
        assert_eq!(i("app:${TAG}").unwrap(), "app:2");
        assert_eq!(i("app:$TAG-x").unwrap(), "app:2-x");
        assert_eq!(i("${NOPE:-def} ${EMPTY:-def} ${EMPTY-def} ${NOPE-d2}").unwrap(), "def def  d2");
        assert_eq!(i("cost $$5 and $").unwrap(), "cost $5 and $");
        // Replacements: `:+` when set and not empty, `+` when set.
        assert_eq!(i("[${TAG:+on}][${EMPTY:+on}][${NOPE:+on}][${EMPTY+on}][${NOPE+on}]").unwrap(), "[on][][][on][]");
        // Nested in a default or a replacement.
        assert_eq!(i("${NOPE:-${TAG}} ${NOPE:-a${NOPE:-b}c} ${TAG:+v${TAG}} ${TAG:-${NOPE}}").unwrap(), "2 abc v2 2");
        assert!(i("${NOPE:-${TAG}").is_err(), "unterminated");
        let deep = format!("{}x{}", "${NOPE:-".repeat(100_000), "}".repeat(100_000));
        assert!(i(&deep).unwrap_err().to_string().contains("nested more than 16 deep"));
        let ok = format!("{}x{}", "${NOPE:-".repeat(16), "}".repeat(16));
        assert_eq!(i(&ok).unwrap(), "x");
        assert!(i("${NOPE:?set NOPE}").unwrap_err().to_string().contains("set NOPE"));
        assert!(i("${TAG").is_err());
    }

    #[test]
    fn short_forms_and_helpers() {
        let s = parse(
            "services:\n  web:\n    image: x\n    command: sh -c 'echo \"hi there\"; sleep 1'\n    ports: ['80', '53:53/udp', {target: 443, published: 8443}]\n    labels: [a=1]\n    restart: unless-stopped\n",
        )
        .unwrap();
        let web = &s.services[0].spec;
        assert_eq!(web.command, ["sh", "-c", "echo \"hi there\"; sleep 1"]);
        assert_eq!(web.ports[0], ServicePort { target: 80, published: Some(0), protocol: "tcp".into(), mode: None });
        assert_eq!(web.ports[1], ServicePort { target: 53, published: Some(53), protocol: "udp".into(), mode: None });
        assert_eq!(web.ports[2].published, Some(8443));
        assert_eq!(web.labels.get("a").map(String::as_str), Some("1"));
        assert_eq!(web.restart_policy.condition, "any");
        assert_eq!(web.networks, ["blog_default"]);
        assert_eq!(s.networks, ["blog_default"]);
        assert_eq!(parse_duration("d", "1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("d", "1.5h").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("d", "10").is_err());
        assert_eq!(parse_bytes("m", &Value::String("1g".into())).unwrap(), 1 << 30);
        assert_eq!(parse_bytes("m", &Value::String("512mb".into())).unwrap(), 512 << 20);
        assert!(parse_compose("Bad Name", "services: {}", Path::new(".")).is_err());
    }

    /// A scratch directory of files for one test.
    fn project(test: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dockfleet-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    #[test]
    fn a_dot_env_file_gives_variables_under_the_environment() {
        let dir = project(
            "dotenv",
            &[
                (".env", "TAG=1.2\nHOME=/from/dotenv\nGREETING=\"hello ${TAG}\"\nBARE=from-dotenv\n"),
                ("web.env", "URL=http://${GREETING// /}:${TAG}\n"),
            ],
        );
        let text = "services:\n  web:\n    image: app:${TAG}\n    command: [echo, '${HOME}', \
                    '${COMPOSE_PROJECT_NAME}']\n    environment: [BARE, G=$GREETING]\n";
        let spec = parse_compose("blog", text, &dir).unwrap().services.remove(0).spec;
        assert_eq!(spec.image, "app:1.2");
        let home = std::env::var("HOME").unwrap();
        assert_eq!(spec.command, ["echo", home.as_str(), "blog"], "this process's environment wins over .env");
        assert_eq!(spec.env["BARE"], "from-dotenv", "a bare key reads .env too");
        assert_eq!(spec.env["G"], "hello 1.2", ".env values have their own variables substituted");
        // An env_file's values substitute variables from the file's environment.
        let e = parse_compose("blog", "services:\n  web: {image: x, env_file: web.env}\n", &dir).unwrap_err();
        assert!(e.to_string().contains("web.env:1"), "{e}");
        std::fs::write(dir.join("web.env"), "URL=http://${GREETING:+x}:${TAG}\n").unwrap();
        let spec = parse_compose("blog", "services:\n  web: {image: x, env_file: web.env}\n", &dir).unwrap();
        assert_eq!(spec.services[0].spec.env["URL"], "http://x:1.2");
        // A secret's variable may come from .env, read when it is deployed.
        std::fs::write(dir.join(".env"), "DOCKFLEET_TEST_ONLY_IN_DOTENV='from .env'\n").unwrap();
        let text = "services:\n  web: {image: x}\nsecrets:\n  pw: {environment: DOCKFLEET_TEST_ONLY_IN_DOTENV}\n  \
                    other: {environment: DOCKFLEET_TEST_NOWHERE}\n";
        let stack = parse_compose("blog", text, &dir).unwrap();
        let pw = stack.secrets.iter().find(|s| s.name == "blog_pw").unwrap();
        assert_eq!(pw.env_files, [dir.join(".env")]);
        assert_eq!(pw.data("secrets.pw").unwrap(), b"from .env");
        let other = stack.secrets.iter().find(|s| s.name == "blog_other").unwrap();
        let e = other.data("secrets.other").unwrap_err().to_string();
        assert!(e.contains("secrets.other.environment") && e.contains(".env"), "{e}");
        let mut file = pw.clone();
        (file.environment, file.file) = (None, Some(dir.join("web.env")));
        assert!(file.validate("secrets.pw", false).unwrap_err().to_string().contains("secrets.pw.env_files"));
        // A bad .env is an error naming its line; nothing is read from it.
        std::fs::write(dir.join(".env"), "OK=1\nNOT A LINE\n").unwrap();
        let e = parse_compose("blog", text, &dir).unwrap_err();
        assert_eq!(e.code(), "invalid_argument");
        assert!(e.to_string().contains(".env:2"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn include_reads_other_files_with_their_own_directory_and_env() {
        let dir = project(
            "include",
            &[
                (
                    "compose.yaml",
                    "include:\n  - db/compose.yaml\n  - path: cache/compose.yaml\n    env_file: cache.env\n\
                     services:\n  web:\n    image: web:${TAG}\n    depends_on: [db]\n    networks: [back]\n\
                     \x20   secrets: [token]\n",
                ),
                (".env", "TAG=main\n"),
                ("cache.env", "CACHE_TAG=7\n"),
                (
                    "db/compose.yaml",
                    "services:\n  db:\n    image: db:${DB_TAG}-${TAG}\n    build: ./ctx\n    env_file: db.env\n\
                     \x20   networks: [back]\n    volumes: [data:/var/lib/db, ./conf:/etc/db]\n\
                     networks:\n  back: {}\nvolumes:\n  data: {}\nsecrets:\n  token: {file: token.txt}\n",
                ),
                ("db/.env", "DB_TAG=9\nTAG=overridden-by-main\n"),
                ("db/db.env", "WHO=db\n"),
                ("db/token.txt", "s3cret"),
                (
                    "cache/compose.yaml",
                    "services:\n  cache: {image: 'cache:${CACHE_TAG}', networks: [back]}\nnetworks:\n  back: {}\n",
                ),
            ],
        );
        let stack = load_compose("shop", &dir.join("compose.yaml")).unwrap();
        let svc = |n: &str| stack.services.iter().find(|s| s.name == n).unwrap();
        assert_eq!(svc("web").spec.image, "web:main");
        let db = svc("db");
        assert_eq!(db.spec.image, "db:9-main", "the including file's variables win over the included .env");
        assert_eq!(db.build.as_ref().unwrap().context, dir.join("db").join("./ctx"), "paths resolve in its directory");
        assert_eq!(db.spec.env["WHO"], "db");
        assert!(db.spec.volumes.iter().any(|m| m.source == dir.join("db").join("./conf").to_string_lossy()));
        assert_eq!(svc("cache").spec.image, "cache:7");
        assert_eq!(stack.networks, ["shop_back"], "a network two files define alike is one network");
        assert_eq!(stack.volumes, ["shop_data"]);
        assert_eq!(stack.secrets[0].file.as_deref(), Some(dir.join("db").join("token.txt").as_path()));
        assert_eq!(svc("web").depends_on[0].service, "db");

        // What two files define differently, a cycle, a missing file, and a merge are refused.
        let refused = |main: &str, field: &str, why: &str| {
            std::fs::write(dir.join("compose.yaml"), main).unwrap();
            let e = load_compose("shop", &dir.join("compose.yaml")).unwrap_err();
            assert_eq!(e.code(), "invalid_argument", "{main}: {e}");
            let text = e.to_string();
            assert!(text.contains(field) && text.contains(why), "{main}: {text}");
        };
        refused(
            "include: [db/compose.yaml]\nservices:\n  db: {image: other}\n",
            "services.db",
            "defines services.db too",
        );
        refused(
            "include: [db/compose.yaml]\nservices:\n  web: {image: x}\nnetworks:\n  back: {internal: true}\n",
            "include[0].networks.back",
            "differently",
        );
        std::fs::write(dir.join("db/loop.yaml"), "include: [../compose.yaml]\nservices: {}\n").unwrap();
        refused(
            "include: [db/loop.yaml]\nservices:\n  web: {image: x}\n",
            "include[0].include[0].path",
            "include cycle",
        );
        refused("include: [nowhere.yaml]\n", "include[0].path", "cannot read");
        refused("include: [/dev/null]\n", "include[0].path", "not a regular file");
        refused("include: [{path: [db/compose.yaml, b.yaml]}]\n", "include[0].path", "b.yaml: No such file");
        refused("include: [{path: db/compose.yaml, profiles: [x]}]\n", "include[0].profiles", "unknown key");
        refused("include: [{path: db/compose.yaml, env_file: none.env}]\n", "include[0].env_file[0]", "cannot read");
        // Eight levels of includes are read; a ninth is refused.
        for n in 0..9 {
            std::fs::write(dir.join(format!("n{n}.yaml")), format!("include: [n{}.yaml]\n", n + 1)).unwrap();
        }
        std::fs::write(dir.join("n8.yaml"), "services:\n  deep: {image: x}\n").unwrap();
        std::fs::write(dir.join("compose.yaml"), "include: [n0.yaml]\n").unwrap();
        let deep = load_compose("shop", &dir.join("compose.yaml")).unwrap_err().to_string();
        assert!(deep.contains("nest at most 8 deep"), "{deep}");
        std::fs::write(dir.join("compose.yaml"), "include: [n1.yaml]\n").unwrap();
        assert_eq!(load_compose("shop", &dir.join("compose.yaml")).unwrap().services[0].name, "deep");
        std::fs::write(dir.join("db/bad.yaml"), "services:\n  db: {image: x, links: [web]}\n").unwrap();
        refused("include: [db/bad.yaml]\n", "include[0].services.db.links", "not supported");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn services_of_profiles_that_are_not_active_are_left_out() {
        let text =
            "services:\n  web: {image: x, depends_on: {tools: {condition: service_started, required: false}}}\n  \
                    tools: {image: t, profiles: [debug]}\n  admin: {image: a, profiles: [ops, debug]}\n  \
                    never: {image: n, profiles: [later]}\n";
        let names = |dir: &Path| {
            let stack = parse_compose("app", text, dir).unwrap();
            stack.services.iter().map(|s| s.name.clone()).collect::<Vec<_>>()
        };
        let dir = project("profiles", &[]);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(names(&dir), ["web"], "no profile is active");
        std::fs::write(dir.join(".env"), "COMPOSE_PROFILES=debug\n").unwrap();
        assert_eq!(names(&dir), ["admin", "tools", "web"]);
        std::fs::write(dir.join(".env"), "COMPOSE_PROFILES=' ops , later'\n").unwrap();
        assert_eq!(names(&dir), ["admin", "never", "web"]);
        std::fs::write(dir.join(".env"), "COMPOSE_PROFILES=*\n").unwrap();
        assert_eq!(names(&dir).len(), 4);

        // A service depending on one left out, bad profile names, and a bad COMPOSE_PROFILES.
        std::fs::write(dir.join(".env"), "").unwrap();
        let needs = "services:\n  web: {image: x, depends_on: [tools]}\n  tools: {image: t, profiles: [debug]}\n";
        let e = parse_compose("app", needs, &dir).unwrap_err().to_string();
        assert!(e.contains("services.web.depends_on.tools") && e.contains("profile debug"), "{e}");
        let e = parse_compose("app", "services:\n  web: {image: x, profiles: ['-x']}\n", &dir).unwrap_err();
        assert!(e.to_string().contains("services.web.profiles"), "{e}");
        std::fs::write(dir.join(".env"), "COMPOSE_PROFILES=a,b c\n").unwrap();
        let e = parse_compose("app", text, &dir).unwrap_err();
        assert!(e.to_string().contains("COMPOSE_PROFILES") && e.to_string().contains("\"b c\""), "{e}");
        // A service left out is still checked.
        std::fs::write(dir.join(".env"), "").unwrap();
        let e =
            parse_compose("app", "services:\n  t: {image: t, profiles: [x], userns_mode: host}\n", &dir).unwrap_err();
        assert!(e.to_string().contains("services.t"), "{e}");
        let e = parse_compose("app", "services:\n  t: {image: t, profiles: [x], working_dir: rel}\n", &dir);
        assert!(e.unwrap_err().to_string().contains("services.t.working_dir"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn extends_merges_a_base_service_from_this_file_or_another() {
        let dir = project(
            "extends",
            &[
                (
                    "compose.yaml",
                    "services:\n  base:\n    image: app\n    environment: [A=1, B=2]\n    ports: ['8080:80']\n    \
                     depends_on: [db]\n  db: {image: db}\n  web:\n    extends: base\n    environment: {B: '3'}\n    \
                     ports: ['8081:80']\n  worker:\n    extends: {file: common/services.yaml, service: queue}\n    \
                     command: [work, hard]\n  twice: {extends: web, deploy: {replicas: 2}}\nvolumes:\n  named: {}\n",
                ),
                (
                    "common/services.yaml",
                    "services:\n  queue:\n    extends: plain\n    build: ./ctx\n    env_file: q.env\n    \
                     label_file: q.labels\n    volumes: ['./data:/data', 'named:/named']\n    command: [work]\n  plain: {image: 'q:${TAG:-1}'}\n",
                ),
                ("common/q.env", "Q=1\n"),
                ("common/q.labels", "queue=yes\n"),
            ],
        );
        let stack = load_compose("ext", &dir.join("compose.yaml")).unwrap();
        let svc = |n: &str| stack.services.iter().find(|s| s.name == n).unwrap_or_else(|| panic!("{n}"));
        let web = &svc("web").spec;
        assert_eq!(web.image, "app");
        assert_eq!(web.env, BTreeMap::from([("A".into(), "1".into()), ("B".into(), "3".into())]));
        assert_eq!(web.ports.iter().map(|p| p.published).collect::<Vec<_>>(), [Some(8080), Some(8081)]);
        assert!(svc("web").depends_on.is_empty(), "depends_on is not inherited");
        assert_eq!(svc("base").depends_on.len(), 1);
        assert_eq!(svc("twice").spec.replicas, 2);
        assert_eq!(svc("twice").spec.env["B"], "3", "extends chains");
        let worker = svc("worker");
        assert_eq!(worker.spec.image, "q:1");
        assert_eq!(worker.spec.command, ["work", "hard"], "command is replaced, not appended");
        assert_eq!(worker.spec.env["Q"], "1", "its env file is read from its own directory");
        assert_eq!(worker.spec.labels["queue"], "yes", "and its label file");
        let common = dir.join("common");
        assert_eq!(worker.build.as_ref().unwrap().context, common.join("./ctx"));
        assert!(worker.spec.volumes.iter().any(|m| m.source == common.join("./data").to_string_lossy()));
        assert!(worker.spec.volumes.iter().any(|m| m.source == "ext_named"), "{:?}", worker.spec.volumes);

        for (text, field, why) in [
            ("services:\n  a: {extends: b}\n  b: {extends: a}\n", "services.a.extends", "loop"),
            ("services:\n  a: {extends: nope}\n", "services.a.extends", "no service \"nope\" in this file"),
            (
                "services:\n  a: {extends: {file: common/services.yaml, service: nope}}\n",
                "services.a.extends",
                "services.yaml",
            ),
            ("services:\n  a: {extends: {service: b, files: x}}\n  b: {image: x}\n", "extends.files", "unknown key"),
            ("services:\n  a: {extends: {file: none.yaml, service: b}}\n", "services.a.extends.file", "cannot read"),
            ("services:\n  a: {extends: [b]}\n", "services.a.extends", "service name or"),
            (
                "services:\n  a: {extends: {file: common/services.yaml, service: plain}, userns_mode: host}\n",
                "services.a",
                "not supported",
            ),
        ] {
            let e = parse_compose("ext", text, &dir).unwrap_err();
            assert_eq!(e.code(), "invalid_argument");
            let e = e.to_string();
            assert!(e.contains(field) && e.contains(why), "{text}: {e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_include_of_several_files_merges_them() {
        let dir = project(
            "include-merge",
            &[
                ("compose.yaml", "include:\n  - path: [app/compose.yaml, app/override.yaml]\n"),
                ("app/compose.yaml", "services:\n  web: {image: 'web:1', ports: ['80:80'], environment: [A=1]}\n"),
                (
                    "app/override.yaml",
                    "services:\n  web: {image: 'web:2', ports: !override ['81:80'], environment: [B=2], build: ./ctx}\n  \
                     extra: {extends: web, environment: {A: !reset null}}\n",
                ),
            ],
        );
        let stack = load_compose("merged", &dir.join("compose.yaml")).unwrap();
        let web = &stack.services.iter().find(|s| s.name == "web").unwrap();
        assert_eq!(web.spec.image, "web:2");
        assert_eq!(web.spec.ports.iter().map(|p| p.published).collect::<Vec<_>>(), [Some(81)]);
        assert_eq!(web.spec.env.len(), 2);
        assert_eq!(web.build.as_ref().unwrap().context, dir.join("app").join("./ctx"), "the first file's directory");
        let extra = &stack.services.iter().find(|s| s.name == "extra").unwrap();
        assert_eq!(extra.spec.env, BTreeMap::from([("B".into(), "2".into())]), "!reset removes A");

        // The same two files given as the stack's files.
        let files = [dir.join("app/compose.yaml"), dir.join("app/override.yaml")];
        assert_eq!(load_compose_files("merged", &files).unwrap().services, stack.services);
        let e = load_compose_files("merged", &[files[0].clone(), dir.join("nope.yaml")]).unwrap_err();
        assert!(e.to_string().contains("paths[1]") && e.to_string().contains("nope.yaml"), "{e}");
        assert!(load_compose_files("merged", &[]).unwrap_err().to_string().contains("paths"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn service_level_resources_and_scale_are_deploy_settings() {
        let spec = |t: &str| parse(&format!("services:\n  web: {{image: x, {t}}}\n")).unwrap().services.remove(0).spec;
        let s = spec("mem_limit: 64m, mem_reservation: 32m, cpus: 0.5, scale: 3");
        assert_eq!(
            (s.resources.memory_limit, s.resources.memory_reservation, s.resources.cpu_limit, s.replicas),
            (Some(64 << 20), Some(32 << 20), Some(0.5), 3)
        );
        assert_eq!(spec("cpus: 0").resources.cpu_limit, None, "0 is no limit");
        let s = spec("mem_limit: 64m, scale: 2, deploy: {replicas: 2, resources: {limits: {memory: 64M, cpus: '1'}}}");
        assert_eq!((s.resources.memory_limit, s.resources.cpu_limit, s.replicas), (Some(64 << 20), Some(1.0), 2));
    }

    #[test]
    fn a_platform_places_tasks_on_hosts_of_that_platform() {
        let constraints = |p: &str| {
            parse(&format!(
                "services:\n  web: {{image: x, platform: '{p}', deploy: {{placement: {{constraints: [zone==a]}}}}}}\n"
            ))
            .map(|mut s| s.services.remove(0).spec.placement.constraints)
        };
        assert_eq!(
            constraints("linux/amd64").unwrap(),
            ["zone==a", "node.platform.os==linux", "node.platform.arch==x86_64"]
        );
        assert_eq!(constraints("linux/arm64/v8").unwrap()[2], "node.platform.arch==aarch64");
        assert_eq!(constraints("linux/arm/v7").unwrap()[2], "node.platform.arch==armv7l");
        assert_eq!(constraints("linux/riscv64").unwrap()[2], "node.platform.arch==riscv64");
        for bad in ["linux", "linux/", "linux/amd64/v2/x", "linux/am d64"] {
            let e = constraints(bad).unwrap_err().to_string();
            assert!(e.contains("services.web.platform"), "{bad}: {e}");
        }
        let c = crate::spec::Constraint::parse("c", "node.platform.os == linux").unwrap();
        assert_eq!(c.key, crate::spec::ConstraintKey::Label("node.platform.os".into()));
        assert!(crate::spec::Constraint::parse("c", "node.platform.variant==v8").is_err());
    }
}
