//! The [`Host`] trait (one Docker engine) and the plain data types it speaks.
//!
//! [`crate::DockerHost`] implements it over bollard. Everything else in dockfleet (fleets, services,
//! discovery) talks to engines only through this trait, so it can be faked in unit tests of pure logic.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::registry::RegistryAuth;

/// A boxed, owned stream of results: what every streaming call returns.
pub type ResultStream<T> = BoxStream<'static, Result<T>>;

/// Answer to [`Host::ping`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ping {
    /// Round-trip time of the `/_ping` request.
    #[serde(with = "crate::serde_ms")]
    pub latency: Duration,
    /// The API version spoken with this engine after negotiation.
    pub api_version: String,
}

/// What an engine says about itself ([`Host::info`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    /// The engine's own name for its machine (its hostname).
    pub name: String,
    /// Engine ID.
    pub id: String,
    /// Engine version, e.g. `20.10.24`.
    pub engine_version: String,
    /// Negotiated API version, e.g. `1.41`.
    pub api_version: String,
    /// Operating system description.
    pub os: String,
    /// `linux` or `windows`.
    pub os_type: String,
    /// CPU architecture, e.g. `x86_64`.
    pub arch: String,
    /// Number of CPUs the engine can use.
    pub cpus: u32,
    /// Memory of the machine in bytes.
    pub memory_bytes: u64,
    /// The engine's own labels (`dockerd --label k=v`).
    pub labels: BTreeMap<String, String>,
    /// Containers in any state.
    pub containers: u32,
    /// Running containers.
    pub containers_running: u32,
    /// Images stored.
    pub images: u32,
    /// Storage driver, e.g. `overlay2`.
    pub storage_driver: String,
    /// The OCI runtimes the engine can run containers with (`runc`, and others its `daemon.json`
    /// names, such as `nvidia` or `runsc`).
    pub runtimes: Vec<String>,
}

/// A container port, optionally published on the host.
///
/// An engine with IPv6 reports a port published on all addresses twice, once per address family
/// (`host_ip` `0.0.0.0` and `::`), and the two may have different port numbers (Docker 20.10 picks
/// an engine-chosen port for each family on its own). Read back from an engine, a container's
/// mappings are in order of container port and protocol, IPv4 before IPv6.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Port inside the container.
    pub container_port: u16,
    /// Port on the host; `None` when not published (or let the engine choose with `Some(0)`).
    #[serde(default)]
    pub host_port: Option<u16>,
    /// `tcp` (default), `udp` or `sctp`.
    #[serde(default = "default_protocol")]
    pub protocol: String,
    /// Host address to bind; all addresses when `None`.
    #[serde(default)]
    pub host_ip: Option<String>,
}

fn default_protocol() -> String {
    "tcp".to_string()
}

impl Default for PortMapping {
    fn default() -> Self {
        PortMapping { container_port: 0, host_port: None, protocol: default_protocol(), host_ip: None }
    }
}

impl PortMapping {
    /// A TCP port published on the same port number of the host.
    pub fn tcp(container_port: u16, host_port: u16) -> Self {
        PortMapping { container_port, host_port: Some(host_port), protocol: "tcp".into(), host_ip: None }
    }

    /// Whether it is bound on an IPv6 address only (`::` or another).
    pub(crate) fn is_ipv6(&self) -> bool {
        self.host_ip.as_deref().is_some_and(|ip| ip.contains(':'))
    }

    /// The order mappings read from an engine are in: by container port and protocol, IPv4 first.
    pub(crate) fn order(ports: &mut [PortMapping]) {
        ports.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
    }

    fn order_key(&self) -> (u16, &str, bool, Option<u16>) {
        (self.container_port, &self.protocol, self.is_ipv6(), self.host_port)
    }
}

/// A bind mount (absolute `source`) or a named volume (any other `source`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Host path (absolute) or volume name.
    pub source: String,
    /// Path inside the container (absolute).
    pub target: String,
    /// Mount read-only.
    #[serde(default)]
    pub read_only: bool,
    /// A bind's propagation: `private`, `rprivate` (the engine's default when `None`), `shared`,
    /// `rshared`, `slave` or `rslave`. The shared and slave kinds need a host path that is itself a
    /// shared (or slave) mount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
    /// A bind's SELinux relabelling: `z` (content shared among containers) or `Z` (private to this
    /// one). Plain engines only; a no-op on hosts without SELinux.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selinux: Option<String>,
    /// A named volume's: do not copy what the image has at `target` into the volume when it is new.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_copy: bool,
}

/// The bind propagations an engine takes.
pub const PROPAGATIONS: &[&str] = &["private", "rprivate", "shared", "rshared", "slave", "rslave"];

impl Mount {
    /// Whether it binds a host path (an absolute `source`) rather than mounting a named volume.
    pub fn is_bind(&self) -> bool {
        self.source.starts_with('/')
    }

    /// Checks the mount; `field` (e.g. `volumes[2]`) prefixes the field path in errors.
    pub fn validate(&self, field: &str) -> Result<()> {
        if !self.target.starts_with('/') {
            return Err(Error::invalid(
                format!("{field}.target"),
                format!("{:?} must be an absolute path", self.target),
            ));
        }
        if self.source.is_empty() {
            return Err(Error::invalid(format!("{field}.source"), "must not be empty"));
        }
        let bind_only =
            |key: &str| Error::invalid(format!("{field}.{key}"), "applies to binds (an absolute source) only");
        if let Some(p) = &self.propagation {
            if !self.is_bind() {
                return Err(bind_only("propagation"));
            }
            if !PROPAGATIONS.contains(&p.as_str()) {
                return Err(Error::invalid(
                    format!("{field}.propagation"),
                    format!("{p:?} is not one of {PROPAGATIONS:?}"),
                ));
            }
        }
        if let Some(z) = &self.selinux {
            if !self.is_bind() {
                return Err(bind_only("selinux"));
            }
            if z != "z" && z != "Z" {
                return Err(Error::invalid(format!("{field}.selinux"), format!("{z:?} is not z or Z")));
            }
        }
        if self.no_copy && self.is_bind() {
            return Err(Error::invalid(format!("{field}.no_copy"), "applies to named volumes only"));
        }
        Ok(())
    }

    /// The engine's `Binds` entry: `source:target[:options]`.
    pub(crate) fn bind_entry(&self) -> String {
        let mut options: Vec<&str> = Vec::new();
        if self.read_only {
            options.push("ro");
        }
        options.extend(self.selinux.as_deref());
        options.extend(self.propagation.as_deref());
        if self.no_copy {
            options.push("nocopy");
        }
        let options = if options.is_empty() { String::new() } else { format!(":{}", options.join(",")) };
        format!("{}:{}{options}", self.source, self.target)
    }
}

/// Checks an engine object name (container, network, volume): `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub(crate) fn validate_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(field, format!("{name:?} must match [a-zA-Z0-9][a-zA-Z0-9_.-]*")))
    }
}

/// Checks a reference to an existing container, network, volume, secret or config (its name, its ID
/// or an ID's prefix; IDs are hex) as [`validate_name`] does. It becomes part of the path of the
/// engine's URL, unescaped: a `/`, `?` or `#` there would address another object or endpoint
/// (`remove_image("../containers/web")` would send `DELETE /containers/web`), and an empty one
/// another endpoint.
pub(crate) fn validate_ref(field: &str, reference: &str) -> Result<()> {
    validate_name(field, reference)
}

/// Whether `network` is a user-defined network rather than one of the engine's modes (`bridge`,
/// `host`, `none`, `container:…`, `default`), on which aliases and further networks are refused.
pub(crate) fn is_user_network(network: &str) -> bool {
    !matches!(network, "bridge" | "host" | "none" | "default") && !network.starts_with("container:")
}

/// Checks a container's network, further networks and aliases (the fields of [`ContainerSpec`]).
fn validate_networks(network: Option<&str>, extra: &[String], aliases: &[String]) -> Result<()> {
    let user_network = network.is_some_and(is_user_network);
    if let Some(n) = network.filter(|n| !n.starts_with("container:")) {
        validate_ref("network", n)?;
    }
    for (i, n) in extra.iter().enumerate() {
        let field = format!("extra_networks[{i}]");
        validate_ref(&field, n)?;
        if !is_user_network(n) {
            return Err(Error::invalid(field, format!("{n:?} is not a user-defined network")));
        }
        if !user_network {
            return Err(Error::invalid(field, "further networks need `network` to be a user-defined network"));
        }
    }
    for (i, a) in aliases.iter().enumerate() {
        validate_alias(&format!("network_aliases[{i}]"), a)?;
        if !user_network {
            return Err(Error::invalid(
                format!("network_aliases[{i}]"),
                "aliases need `network` to be a user-defined network (the engine's bridge, host and none have none)",
            ));
        }
    }
    Ok(())
}

/// Checks a network alias: a DNS name of at most 253 of `[a-zA-Z0-9_.-]`, starting with a letter or digit.
pub(crate) fn validate_alias(field: &str, alias: &str) -> Result<()> {
    validate_name(field, alias)?;
    if alias.len() > 253 {
        return Err(Error::invalid(field, format!("{alias:?} is longer than a DNS name's 253 characters")));
    }
    Ok(())
}

/// Checks an image reference (`[registry/]name[:tag][@digest]`, or an image ID) before it becomes part
/// of the path of the engine's URL: ASCII letters, digits and `._-:@/` only, and no path component
/// empty, `.` or `..` (`../containers/web` would address a container). What remains is the engine's
/// to judge (`invalid reference format`).
pub(crate) fn validate_image_ref(field: &str, reference: &str) -> Result<()> {
    let chars_ok = reference.chars().all(|c| c.is_ascii_alphanumeric() || "._-:@/".contains(c));
    let parts_ok = reference.split('/').all(|p| !p.is_empty() && p != "." && p != "..");
    if reference.is_empty() {
        Err(Error::invalid(field, "must not be empty"))
    } else if chars_ok && parts_ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("{reference:?} is not an image reference: [registry/]name[:tag][@digest] of [A-Za-z0-9._-:@/], no empty, `.` or `..` path component"),
        ))
    }
}

/// Checks a signal's name or number (`SIGQUIT`, `QUIT`, `3`, `SIGRTMIN+3`), if any: the engine refuses
/// one it does not know, but only when it creates the container.
pub(crate) fn validate_signal(field: &str, signal: Option<&str>) -> Result<()> {
    match signal {
        Some(s) if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-') => {
            Err(Error::invalid(field, format!("{s:?} is not a signal (SIGQUIT, QUIT or 3)")))
        }
        _ => Ok(()),
    }
}

/// Checks a container's hostname: 1 to 64 (the kernel's limit) of `[a-zA-Z0-9_.-]`, starting with a
/// letter or digit.
pub(crate) fn validate_hostname(field: &str, hostname: &str) -> Result<()> {
    validate_name(field, hostname)?;
    if hostname.len() > 64 {
        return Err(Error::invalid(field, format!("{hostname:?} is longer than the kernel's 64 characters")));
    }
    Ok(())
}

/// Checks `/etc/hosts` entries, `name:address`: a host name and an IP address, or `host-gateway`
/// (the engine's address on the container's network).
pub(crate) fn validate_extra_hosts(field: &str, entries: &[String]) -> Result<()> {
    for (i, e) in entries.iter().enumerate() {
        let field = format!("{field}[{i}]");
        let (name, address) = e
            .split_once(':')
            .ok_or_else(|| Error::invalid(&field, format!("{e:?} is not name:address (db.internal:10.0.0.5)")))?;
        validate_alias(&field, name)?;
        if address != "host-gateway" && address.parse::<std::net::IpAddr>().is_err() {
            return Err(Error::invalid(&field, format!("{address:?} is not an IP address or host-gateway")));
        }
    }
    Ok(())
}

/// Checks capability names (`NET_ADMIN`, `CAP_NET_ADMIN`, `ALL`; the engine takes either case).
pub(crate) fn validate_caps(field: &str, caps: &[String]) -> Result<()> {
    for (i, c) in caps.iter().enumerate() {
        if c.is_empty() || !c.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::invalid(format!("{field}[{i}]"), format!("{c:?} is not a capability (NET_ADMIN)")));
        }
    }
    Ok(())
}

/// A host device given to a container, read from `HOST[:CONTAINER][:PERMISSIONS]` as `docker run
/// --device` takes it: the container's path defaults to the host's, the permissions (the device
/// cgroup's `r`ead, `w`rite and `m`knod) to `rwm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Device<'a> {
    pub(crate) host: &'a str,
    pub(crate) container: &'a str,
    pub(crate) permissions: &'a str,
}

impl<'a> Device<'a> {
    /// Reads one `devices` entry; the error names `field`.
    pub(crate) fn parse(field: &str, text: &'a str) -> Result<Device<'a>> {
        let parts: Vec<&str> = text.split(':').collect();
        let is_permissions = |p: &str| {
            !p.is_empty() && p.len() <= 3 && p.chars().all(|c| "rwm".contains(c)) && {
                let mut seen = p.chars().collect::<Vec<_>>();
                seen.sort_unstable();
                seen.dedup();
                seen.len() == p.len()
            }
        };
        let (host, container, permissions) = match parts[..] {
            [h] => (h, h, "rwm"),
            [h, p] if is_permissions(p) => (h, h, p),
            [h, c] => (h, c, "rwm"),
            [h, c, p] => (h, c, p),
            _ => {
                return Err(Error::invalid(
                    field,
                    format!("{text:?} is not HOST[:CONTAINER][:PERMISSIONS] (/dev/ttyUSB0:/dev/ttyUSB0:rw)"),
                ))
            }
        };
        if !host.starts_with("/dev/") || !clean_path(host) {
            return Err(Error::invalid(field, format!("{host:?} is not a device path under /dev/")));
        }
        if !container.starts_with('/') || !clean_path(container) {
            return Err(Error::invalid(field, format!("{container:?} is not an absolute path in the container")));
        }
        if !is_permissions(permissions) {
            return Err(Error::invalid(field, format!("permissions {permissions:?} are not some of r, w and m")));
        }
        Ok(Device { host, container, permissions })
    }
}

/// Whether `path` has no `..` or empty component, whitespace or control characters.
fn clean_path(path: &str) -> bool {
    !path.chars().any(|c| c.is_whitespace() || c.is_control())
        && path.split('/').skip(1).all(|c| !c.is_empty() && c != "..")
}

/// One `security_opt` entry, read: the engine's `key=value` (`key:value` is read too, as compose
/// writes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecurityOpt<'a> {
    /// `no-new-privileges[=bool]`: the no_new_privs bit (setuid binaries gain nothing).
    NoNewPrivileges(bool),
    /// `seccomp=unconfined`, or a profile's JSON text; `permissive` when it is unconfined or its
    /// default action allows (or only logs) every call it does not name.
    Seccomp { profile: &'a str, permissive: bool },
    /// `apparmor=unconfined`, or the name of a profile loaded on the host.
    AppArmor(&'a str),
    /// `label=disable`, or `user:`, `role:`, `type:` or `level:` and the SELinux value.
    Label(&'a str),
    /// `systempaths=unconfined`: no masked or read-only paths under `/proc` and `/sys`.
    SystemPaths,
}

/// Largest seccomp profile taken (the engine's default profile is about 20 KB of JSON).
const MAX_SECCOMP_PROFILE: usize = 256 * 1024;

impl<'a> SecurityOpt<'a> {
    /// Reads one entry; the error names `field`.
    pub(crate) fn parse(field: &str, opt: &'a str) -> Result<Self> {
        let bad = |why: String| Error::invalid(field, why);
        // The key is a plain word, so the first `=` or `:` ends it (a JSON profile holds both).
        let (key, value) = match opt.find(['=', ':']) {
            Some(i) => (&opt[..i], Some(&opt[i + 1..])),
            None => (opt, None),
        };
        let value_of = |what: &str| {
            value.filter(|v| !v.is_empty()).ok_or_else(|| bad(format!("{key} needs a value ({key}={what})")))
        };
        match key {
            "no-new-privileges" => match value.unwrap_or("true") {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(SecurityOpt::NoNewPrivileges(true)),
                "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(SecurityOpt::NoNewPrivileges(false)),
                v => Err(bad(format!("no-new-privileges takes true or false, not {v:?}"))),
            },
            "seccomp" => {
                let v = value_of("unconfined")?;
                if v == "unconfined" {
                    return Ok(SecurityOpt::Seccomp { profile: v, permissive: true });
                }
                if !v.trim_start().starts_with('{') {
                    return Err(bad(format!(
                        "seccomp takes unconfined or a profile's JSON text, not {v:?} \
                         (a compose file may name a profile's file)"
                    )));
                }
                if v.len() > MAX_SECCOMP_PROFILE {
                    return Err(bad(format!("the seccomp profile is over {MAX_SECCOMP_PROFILE} bytes")));
                }
                let profile: serde_json::Value =
                    serde_json::from_str(v).map_err(|e| bad(format!("the seccomp profile is not JSON: {e}")))?;
                match profile.get("defaultAction").and_then(|a| a.as_str()) {
                    Some(a) => Ok(SecurityOpt::Seccomp {
                        profile: v,
                        permissive: matches!(a, "SCMP_ACT_ALLOW" | "SCMP_ACT_LOG"),
                    }),
                    None => Err(bad("the seccomp profile has no defaultAction".into())),
                }
            }
            "apparmor" => {
                let v = value_of("unconfined")?;
                if v.chars().all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c)) {
                    Ok(SecurityOpt::AppArmor(v))
                } else {
                    Err(bad(format!("{v:?} is not an AppArmor profile name")))
                }
            }
            "label" => {
                let v = value_of("disable")?;
                let ok = v == "disable"
                    || v.split_once(':').is_some_and(|(k, x)| {
                        ["user", "role", "type", "level"].contains(&k)
                            && !x.is_empty()
                            && !x.chars().any(|c| c.is_whitespace() || c.is_control())
                    });
                if ok {
                    Ok(SecurityOpt::Label(v))
                } else {
                    Err(bad(format!("label takes disable, or user:, role:, type: or level: and a value, not {v:?}")))
                }
            }
            "systempaths" => match value {
                Some("unconfined") => Ok(SecurityOpt::SystemPaths),
                _ => Err(bad("systempaths takes only unconfined".into())),
            },
            _ => Err(bad(format!(
                "{opt:?} is not a security option: no-new-privileges, seccomp=…, apparmor=…, label=… or \
                 systempaths=unconfined"
            ))),
        }
    }

    /// Whether it takes away some of the engine's confinement, which hands a container more of its
    /// host: unconfined seccomp, AppArmor or system paths, SELinux labels disabled, or a seccomp
    /// profile that allows (or only logs) every call it does not name.
    pub(crate) fn loosens(&self) -> bool {
        match self {
            SecurityOpt::NoNewPrivileges(_) => false,
            SecurityOpt::Seccomp { permissive, .. } => *permissive,
            SecurityOpt::AppArmor(v) => *v == "unconfined",
            SecurityOpt::Label(v) => *v == "disable",
            SecurityOpt::SystemPaths => true,
        }
    }

    /// The entry as the engine takes it in `HostConfig.SecurityOpt` (`None` for `systempaths`, which
    /// the engine takes as empty masked and read-only path lists instead).
    pub(crate) fn for_engine(&self) -> Option<String> {
        match self {
            SecurityOpt::NoNewPrivileges(b) => Some(format!("no-new-privileges={b}")),
            SecurityOpt::Seccomp { profile, .. } => Some(format!("seccomp={profile}")),
            SecurityOpt::AppArmor(v) => Some(format!("apparmor={v}")),
            SecurityOpt::Label(v) => Some(format!("label={v}")),
            SecurityOpt::SystemPaths => None,
        }
    }
}

/// Checks `security_opt` entries, each read by [`SecurityOpt::parse`].
pub(crate) fn validate_security_opt(field: &str, opts: &[String]) -> Result<()> {
    for (i, o) in opts.iter().enumerate() {
        SecurityOpt::parse(&format!("{field}[{i}]"), o)?;
    }
    Ok(())
}

/// Checks a process limit: at least 1, or -1 for none.
pub(crate) fn validate_pids_limit(field: &str, limit: Option<i64>) -> Result<()> {
    match limit {
        Some(n) if n < 1 && n != -1 => {
            Err(Error::invalid(field, format!("{n} must be at least 1 (-1, or leaving it out: unlimited)")))
        }
        _ => Ok(()),
    }
}

/// Checks a CPU weight (`{prefix}cpu_shares`, 2 to 262144 as the kernel takes it) and a CPU set
/// (`{prefix}cpuset_cpus`, see [`cpuset_cpus`]).
pub(crate) fn validate_cpu_tuning(prefix: &str, shares: Option<u64>, cpuset: Option<&str>) -> Result<()> {
    validate_cpu_shares(&format!("{prefix}cpu_shares"), shares)?;
    if let Some(set) = cpuset {
        cpuset_cpus(&format!("{prefix}cpuset_cpus"), set)?;
    }
    Ok(())
}

/// Checks a CPU weight: 2 to 262144, as the kernel takes it.
pub(crate) fn validate_cpu_shares(field: &str, shares: Option<u64>) -> Result<()> {
    match shares.filter(|n| !(2..=262_144).contains(n)) {
        Some(n) => Err(Error::invalid(field, format!("{n} is not from 2 to 262144 (the default weight is 1024)"))),
        None => Ok(()),
    }
}

/// The CPUs a CPU set names (`0-3,6`: CPUs 0 to 3 and 6), as `--cpuset-cpus` and the kernel's
/// `cpuset.cpus` read it; each at most 1023.
pub(crate) fn cpuset_cpus(field: &str, set: &str) -> Result<BTreeSet<u32>> {
    let bad = |why: String| Error::invalid(field, format!("{set:?}: {why} (a CPU set reads 0-3 or 0,2)"));
    let mut out = BTreeSet::new();
    for part in set.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let cpu = |t: &str| {
            let ok = !t.is_empty() && t.len() <= 4 && t.bytes().all(|b| b.is_ascii_digit());
            t.parse::<u32>().ok().filter(|n| ok && *n < 1024).ok_or_else(|| bad(format!("{t:?} is no CPU number")))
        };
        let (a, b) = (cpu(a)?, cpu(b)?);
        if a > b {
            return Err(bad(format!("the range {part} runs backwards")));
        }
        out.extend(a..=b);
    }
    Ok(out)
}

/// Checks a memory and swap limit against the memory limit it extends.
pub(crate) fn validate_memory_swap(field: &str, swap: Option<i64>, memory: Option<u64>) -> Result<()> {
    match (swap, memory) {
        (None, _) | (Some(-1), Some(_)) => Ok(()),
        (Some(_), None) => Err(Error::invalid(field, "needs a memory limit, which it extends by swap")),
        (Some(s), Some(m)) if s < 0 || (s as u64) < m => Err(Error::invalid(
            field,
            format!("{s} is below the memory limit {m}: it counts memory and swap together (-1: swap without limit)"),
        )),
        _ => Ok(()),
    }
}

/// Checks a swappiness (`{prefix}memory_swappiness`) and an `oom_kill_disable`
/// (`{prefix}oom_kill_disable`).
pub(crate) fn validate_oom(
    prefix: &str,
    swappiness: Option<u8>,
    kill_disable: bool,
    memory: Option<u64>,
) -> Result<()> {
    validate_swappiness(&format!("{prefix}memory_swappiness"), swappiness)?;
    validate_oom_kill_disable(&format!("{prefix}oom_kill_disable"), kill_disable, memory)
}

/// Checks a swappiness: 0 to 100.
pub(crate) fn validate_swappiness(field: &str, swappiness: Option<u8>) -> Result<()> {
    match swappiness.filter(|n| *n > 100) {
        Some(n) => Err(Error::invalid(field, format!("{n} is not from 0 to 100"))),
        None => Ok(()),
    }
}

/// Checks that an `oom_kill_disable` has the memory limit it needs.
pub(crate) fn validate_oom_kill_disable(field: &str, kill_disable: bool, memory: Option<u64>) -> Result<()> {
    if kill_disable && memory.is_none() {
        return Err(Error::invalid(
            field,
            "needs a memory limit: without one, a task that never gets killed can stall its whole host",
        ));
    }
    Ok(())
}

/// Checks an OOM score adjustment: -1000 to 1000, as the kernel takes it.
pub(crate) fn validate_oom_score_adj(field: &str, adj: Option<i32>) -> Result<()> {
    match adj.filter(|n| !(-1000..=1000).contains(n)) {
        Some(n) => Err(Error::invalid(field, format!("{n} is not from -1000 to 1000"))),
        None => Ok(()),
    }
}

/// Checks supplementary groups: group names or GIDs.
pub(crate) fn validate_groups(field: &str, groups: &[String]) -> Result<()> {
    for (i, g) in groups.iter().enumerate() {
        let ok = !g.is_empty()
            && g.len() <= 32
            && g.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            && !g.starts_with('-');
        if !ok {
            return Err(Error::invalid(format!("{field}[{i}]"), format!("{g:?} is not a group name or GID")));
        }
    }
    Ok(())
}

/// A log driver and its options ([`ContainerSpec::logging`], compose's `logging`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// The driver: `json-file` (the engine's usual default), `local`, `journald`, `syslog`, `none`, …,
    /// or empty for the engine's default (not on Swarm, which needs it named). [`Host::logs`] and the
    /// service log calls read only what `json-file`, `local` and `journald` keep.
    pub driver: String,
    /// The driver's options (`json-file`: `max-size: 10m`, `max-file: 3`).
    pub options: BTreeMap<String, String>,
}

/// A resource limit of a container's processes ([`ContainerSpec::ulimits`], compose's `ulimits`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ulimit {
    /// The limit: `nofile`, `nproc`, `memlock`, `core`, `stack`, …
    pub name: String,
    /// The soft limit (`-1`: unlimited).
    pub soft: i64,
    /// The hard limit (`-1`: unlimited), at least the soft one.
    pub hard: i64,
}

/// The limits `setrlimit` knows, by the names the engine takes.
const ULIMITS: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// Checks the logging, ulimits, sysctls and tmpfs fields shared by [`ContainerSpec`] and services.
pub(crate) fn validate_runtime(
    logging: Option<&LogConfig>,
    ulimits: &[Ulimit],
    sysctls: &BTreeMap<String, String>,
    tmpfs: &[String],
) -> Result<()> {
    if let Some(l) = logging {
        let ok = l.driver.chars().all(|c| c.is_ascii_alphanumeric() || "_.-/:".contains(c));
        if !ok {
            return Err(Error::invalid("logging.driver", format!("{:?} is not a log driver (json-file)", l.driver)));
        }
        if l.options.keys().any(|k| k.is_empty()) {
            return Err(Error::invalid("logging.options", "option names must not be empty"));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, u) in ulimits.iter().enumerate() {
        let field = format!("ulimits[{i}]");
        if !ULIMITS.contains(&u.name.as_str()) {
            return Err(Error::invalid(
                format!("{field}.name"),
                format!("{:?} is not one of {}", u.name, ULIMITS.join(", ")),
            ));
        }
        if !seen.insert(&u.name) {
            return Err(Error::invalid(format!("{field}.name"), format!("{} is limited twice", u.name)));
        }
        let valid = |v: i64| v >= -1;
        if !valid(u.soft) || !valid(u.hard) || (u.hard != -1 && (u.soft == -1 || u.soft > u.hard)) {
            return Err(Error::invalid(
                field,
                format!("soft {} and hard {} must be -1 (unlimited) or more, soft at most hard", u.soft, u.hard),
            ));
        }
    }
    for k in sysctls.keys() {
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c)) {
            return Err(Error::invalid(format!("sysctls.{k}"), "is not a kernel parameter (net.core.somaxconn)"));
        }
    }
    for (i, t) in tmpfs.iter().enumerate() {
        let (path, options) = t.split_once(':').unwrap_or((t, ""));
        let options_ok = options.split(',').filter(|o| !o.is_empty()).all(|o| {
            let (k, v) = o.split_once('=').unwrap_or((o, "x"));
            !k.is_empty()
                && !v.is_empty()
                && k.chars().chain(v.chars()).all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        });
        if !path.starts_with('/') || path.contains("..") || !options_ok {
            return Err(Error::invalid(
                format!("tmpfs[{i}]"),
                format!("{t:?} is not an absolute path with options (/run:size=64m,mode=1777)"),
            ));
        }
    }
    Ok(())
}

/// Checks a `/dev/shm` size: at least 1 byte, and not with a tmpfs of its own at `/dev/shm`.
pub(crate) fn validate_shm_size(shm_size: Option<u64>, tmpfs: &[String]) -> Result<()> {
    match shm_size {
        Some(0) => Err(Error::invalid("shm_size", "must be at least 1 byte (leave it out for the engine's 64 MiB)")),
        Some(_) if tmpfs.iter().any(|t| t.split(':').next().map(|p| p.trim_end_matches('/')) == Some("/dev/shm")) => {
            Err(Error::invalid("shm_size", "/dev/shm is also in tmpfs: size it there"))
        }
        Some(s) if s > i64::MAX as u64 => Err(Error::invalid("shm_size", format!("{s} is too large"))),
        _ => Ok(()),
    }
}

/// Checks DNS servers (IP addresses), search domains (DNS names) and resolver options.
pub(crate) fn validate_dns(dns: &[String], search: &[String], options: &[String]) -> Result<()> {
    for (i, d) in dns.iter().enumerate() {
        if d.parse::<std::net::IpAddr>().is_err() {
            return Err(Error::invalid(format!("dns[{i}]"), format!("{d:?} is not an IP address")));
        }
    }
    for (i, d) in search.iter().enumerate() {
        validate_alias(&format!("dns_search[{i}]"), d)?;
    }
    for (i, o) in options.iter().enumerate() {
        if o.is_empty() || !o.chars().all(|c| c.is_ascii_alphanumeric() || "_-:.".contains(c)) {
            return Err(Error::invalid(format!("dns_opt[{i}]"), format!("{o:?} is not a resolver option (ndots:2)")));
        }
    }
    Ok(())
}

/// Checks environment variable names (non-empty, no `=`).
pub(crate) fn validate_env(env: &BTreeMap<String, String>) -> Result<()> {
    for k in env.keys() {
        if k.is_empty() || k.contains('=') {
            return Err(Error::invalid(format!("env.{k}"), "variable names must be non-empty and contain no '='"));
        }
    }
    Ok(())
}

/// When the engine restarts a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPolicy {
    /// `no` (the default), `always`, `unless-stopped` or `on-failure`.
    pub name: String,
    /// Attempts for `on-failure`.
    #[serde(default)]
    pub max_retries: Option<u32>,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy { name: "no".into(), max_retries: None }
    }
}

/// A Docker HEALTHCHECK for a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `["CMD", "prog", "arg"]`, `["CMD-SHELL", "cmd"]` or `["NONE"]`.
    pub test: Vec<String>,
    /// Time between checks (engine default 30 s).
    #[serde(default, with = "crate::serde_ms::option")]
    pub interval: Option<Duration>,
    /// Time a check may take (engine default 30 s).
    #[serde(default, with = "crate::serde_ms::option")]
    pub timeout: Option<Duration>,
    /// Consecutive failures before unhealthy (engine default 3).
    #[serde(default)]
    pub retries: Option<u32>,
    /// Grace period after start during which failures do not count.
    #[serde(default, with = "crate::serde_ms::option")]
    pub start_period: Option<Duration>,
}

/// Everything needed to create one container ([`Host::create_container`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerSpec {
    /// Container name; the engine picks one when `None`.
    pub name: Option<String>,
    /// Image reference, e.g. `dockfleet/busybox:latest`.
    pub image: String,
    /// Command (arguments after the entrypoint); the image's `CMD` when empty.
    pub command: Vec<String>,
    /// Entrypoint override.
    pub entrypoint: Option<Vec<String>>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Container labels.
    pub labels: BTreeMap<String, String>,
    /// Exposed and published ports.
    pub ports: Vec<PortMapping>,
    /// Bind mounts and named volumes.
    pub mounts: Vec<Mount>,
    /// Restart policy; the engine's default (`no`) when `None`.
    pub restart_policy: Option<RestartPolicy>,
    /// CPU limit in CPUs (e.g. `0.5`).
    pub cpus: Option<f64>,
    /// Memory limit in bytes.
    pub memory_bytes: Option<u64>,
    /// Most processes (and threads) the container may run at once (`-1`: unlimited; `None`: the
    /// engine's default, unlimited). A fork bomb in a container then fails there, not on its host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// CPU weight against the other containers of the host while its CPUs are all busy
    /// (`docker run --cpu-shares`; the engine's default is 1024), 2 to 262144.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u64>,
    /// The CPUs the container may run on, as `0-3` or `0,2` (`docker run --cpuset-cpus`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    /// Memory and swap together, bytes (`docker run --memory-swap`): at least `memory_bytes`, which it
    /// needs; `-1`, swap without limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swap_bytes: Option<i64>,
    /// How readily the kernel swaps out its anonymous memory, 0 to 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swappiness: Option<u8>,
    /// At its memory limit (which it needs) the container waits for memory instead of having a
    /// process killed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub oom_kill_disable: bool,
    /// Added to the kernel's OOM score of its processes, -1000 to 1000.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i32>,
    /// The OCI runtime to run it with (`docker run --runtime`); `None`, the engine's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Healthcheck; the image's when `None`.
    pub healthcheck: Option<Healthcheck>,
    /// Network to attach to (`bridge`, `host`, `none` or a network name).
    pub network: Option<String>,
    /// User-defined networks joined besides `network` (which must be one too), after the container
    /// is created and before it starts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_networks: Vec<String>,
    /// DNS names the container answers to on its user-defined networks, besides its own name: other
    /// containers on those networks resolve them to it (several containers may share one, and a lookup
    /// then returns them all).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub network_aliases: Vec<String>,
    /// Hostname inside the container (the engine's default: the ID's first 12 characters).
    pub hostname: Option<String>,
    /// Entries added to `/etc/hosts`, `name:address` (`db.internal:10.0.0.5`); the address may be
    /// `host-gateway`, the engine's address on the container's network.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// Run an init process (the engine's `docker-init`) as PID 1, which reaps zombies and forwards
    /// signals (`None`: the engine's default, off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// Mount the container's root filesystem read-only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// Capabilities added to the engine's default set (`NET_ADMIN`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Capabilities taken from it (`ALL` drops every one).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// Log driver and options (`None`: the engine's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<LogConfig>,
    /// Resource limits of the container's processes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Ulimit>,
    /// Namespaced kernel parameters (`net.core.somaxconn`); the engine refuses those not namespaced.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    /// In-memory filesystems mounted at these paths, `path[:options]` (`/run:size=64m,mode=1777`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    /// Size of `/dev/shm` in bytes (`None`: the engine's 64 MiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
    /// DNS servers, IP addresses (on a user-defined network the engine's resolver forwards to them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// DNS search domains.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    /// Resolver options (`ndots:2`, `timeout:1`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_opt: Vec<String>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// User (`uid[:gid]` or name).
    pub user: Option<String>,
    /// Supplementary groups of the container's processes, names from the image's `/etc/group` or
    /// GIDs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    /// Seconds the engine waits after the stop signal before killing (engine default 10).
    pub stop_timeout: Option<u32>,
    /// Signal that stops the container (`SIGQUIT`, `QUIT`, `3`; `None`: the image's, else `SIGTERM`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Run privileged: every device and capability, no confinement. The container controls its host.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    /// Security options, as `docker run --security-opt` takes them: `no-new-privileges`,
    /// `seccomp=unconfined` or a seccomp profile's JSON text, `apparmor=<profile>` or `unconfined`,
    /// `label=disable` or `label=<user|role|type|level>:<value>`, `systempaths=unconfined`
    /// (`key:value` is read too).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// Host devices given to the container, `HOST[:CONTAINER][:PERMISSIONS]` as `docker run --device`
    /// takes them (`/dev/ttyUSB0`, `/dev/fuse:/dev/fuse:rw`): the container's path defaults to the
    /// host's, the permissions (`r`, `w`, `m`knod) to `rwm`. A device the host lacks fails the create.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// Give the container a terminal (`docker run -t`): its output is then one raw stream (log lines
    /// come as `console`), and programs that check for a terminal behave as at a console.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
    /// Keep the container's standard input open (`docker run -i`), though nothing writes to it: a
    /// shell or `cat` reading it waits instead of reading end-of-file and exiting.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stdin_open: bool,
    /// Process namespace (`docker run --pid`): `host` shares the host's, where the container sees,
    /// and as root may signal, every process of its host; `container:<name|id>` shares another
    /// container's; `None`, its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// IPC namespace (`docker run --ipc`): `private`, `shareable` (one other containers may join),
    /// `none`, `host` (the host's shared memory) or `container:<name|id>` (a shareable one's);
    /// `None`, the engine's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
}

impl ContainerSpec {
    /// A spec running `image` with its defaults.
    pub fn new(image: impl Into<String>) -> Self {
        ContainerSpec { image: image.into(), ..Default::default() }
    }

    /// Checks the spec without any engine call; the error names the offending field.
    pub fn validate(&self) -> Result<()> {
        if let Some(name) = &self.name {
            validate_name("name", name)?;
        }
        validate_image_ref("image", &self.image)?;
        validate_signal("stop_signal", self.stop_signal.as_deref())?;
        validate_env(&self.env)?;
        validate_networks(self.network.as_deref(), &self.extra_networks, &self.network_aliases)?;
        if let Some(h) = &self.hostname {
            validate_hostname("hostname", h)?;
        }
        validate_extra_hosts("extra_hosts", &self.extra_hosts)?;
        validate_caps("cap_add", &self.cap_add)?;
        validate_caps("cap_drop", &self.cap_drop)?;
        validate_runtime(self.logging.as_ref(), &self.ulimits, &self.sysctls, &self.tmpfs)?;
        validate_dns(&self.dns, &self.dns_search, &self.dns_opt)?;
        validate_shm_size(self.shm_size, &self.tmpfs)?;
        validate_security_opt("security_opt", &self.security_opt)?;
        validate_pids_limit("pids_limit", self.pids_limit)?;
        validate_cpu_tuning("", self.cpu_shares, self.cpuset_cpus.as_deref())?;
        validate_memory_swap("memory_swap_bytes", self.memory_swap_bytes, self.memory_bytes)?;
        validate_oom("", self.memory_swappiness, self.oom_kill_disable, self.memory_bytes)?;
        validate_oom_score_adj("oom_score_adj", self.oom_score_adj)?;
        if let Some(r) = &self.runtime {
            validate_name("runtime", r)?;
        }
        validate_groups("group_add", &self.group_add)?;
        for (i, d) in self.devices.iter().enumerate() {
            Device::parse(&format!("devices[{i}]"), d)?;
        }
        match self.pid.as_deref().map(|p| (p, p.strip_prefix("container:"))) {
            None | Some(("host", _)) => {}
            Some((_, Some(c))) => validate_ref("pid", c)?,
            Some((p, None)) => {
                return Err(Error::invalid("pid", format!("{p:?} is not host or container:<name|id>")));
            }
        }
        match self.ipc.as_deref().map(|m| (m, m.strip_prefix("container:"))) {
            None | Some(("private" | "shareable" | "none" | "host", _)) => {}
            Some((_, Some(c))) => validate_ref("ipc", c)?,
            Some((m, None)) => {
                return Err(Error::invalid(
                    "ipc",
                    format!("{m:?} is not private, shareable, none, host or container:<name|id>"),
                ));
            }
        }
        for (i, p) in self.ports.iter().enumerate() {
            if p.container_port == 0 {
                return Err(Error::invalid(format!("ports[{i}].container_port"), "must be 1-65535"));
            }
            if !["tcp", "udp", "sctp"].contains(&p.protocol.as_str()) {
                return Err(Error::invalid(
                    format!("ports[{i}].protocol"),
                    format!("{:?} is not tcp, udp or sctp", p.protocol),
                ));
            }
            if let Some(ip) = &p.host_ip {
                if ip.parse::<std::net::IpAddr>().is_err() {
                    return Err(Error::invalid(format!("ports[{i}].host_ip"), format!("{ip:?} is not an IP address")));
                }
            }
        }
        for (i, m) in self.mounts.iter().enumerate() {
            m.validate(&format!("mounts[{i}]"))?;
        }
        if let Some(r) = &self.restart_policy {
            if !["no", "always", "unless-stopped", "on-failure"].contains(&r.name.as_str()) {
                return Err(Error::invalid(
                    "restart_policy.name",
                    format!("{:?} is not no, always, unless-stopped or on-failure", r.name),
                ));
            }
            if r.max_retries.is_some() && r.name != "on-failure" {
                return Err(Error::invalid("restart_policy.max_retries", "only applies to on-failure"));
            }
        }
        if let Some(c) = self.cpus {
            if !(c.is_finite() && c > 0.0) {
                return Err(Error::invalid("cpus", format!("{c} must be a positive number of CPUs")));
            }
        }
        if let Some(m) = self.memory_bytes {
            if m < 6 * 1024 * 1024 {
                return Err(Error::invalid("memory_bytes", format!("{m} is below the engine's minimum of 6 MiB")));
            }
        }
        if let Some(h) = &self.healthcheck {
            let first = h.test.first().map(String::as_str);
            match first {
                Some("NONE") => {}
                Some("CMD") | Some("CMD-SHELL") if h.test.len() >= 2 => {}
                _ => {
                    return Err(Error::invalid(
                        "healthcheck.test",
                        "must be [\"CMD\", prog, args…], [\"CMD-SHELL\", command] or [\"NONE\"]",
                    ))
                }
            }
            for (field, d) in [("interval", h.interval), ("timeout", h.timeout), ("start_period", h.start_period)] {
                if let Some(d) = d {
                    if d < Duration::from_millis(1) {
                        return Err(Error::invalid(format!("healthcheck.{field}"), "must be at least 1 ms"));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Which containers [`Host::list_containers`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListContainersOptions {
    /// Include stopped containers.
    pub all: bool,
    /// Label filters: `key` (has the label) or `key=value`. All must match.
    pub labels: Vec<String>,
    /// Name filter (substring match, as the engine does).
    pub name: Option<String>,
}

/// One container in a listing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerSummary {
    /// Full container ID.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// Image reference it was created from.
    pub image: String,
    /// `created`, `running`, `exited`, …
    pub state: String,
    /// Human status, e.g. `Up 3 seconds`.
    pub status: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Exposed and published ports.
    pub ports: Vec<PortMapping>,
    /// Creation time, seconds since the epoch.
    pub created: i64,
    /// Its network mode as the engine lists it: `default` or `bridge`, `host`, `none`,
    /// `container:<id>`, or the name of the network it was created on.
    pub network_mode: String,
}

impl ContainerSummary {
    /// The HEALTHCHECK verdict in the status text (`Up 3 seconds (healthy)`): `healthy`, `unhealthy` or
    /// `starting`; `None` without a healthcheck.
    pub fn health(&self) -> Option<&'static str> {
        ["healthy", "unhealthy", "health: starting"]
            .into_iter()
            .find(|h| self.status.contains(&format!("({h})")))
            .map(|h| h.trim_start_matches("health: "))
    }

    /// The exit code in the status text (`Exited (137) 2 seconds ago`) of an exited container.
    pub fn exit_code(&self) -> Option<i64> {
        let rest = self.status.strip_prefix("Exited (")?;
        rest[..rest.find(')')?].parse().ok()
    }
}

/// Nanoseconds since the Unix epoch now (the unit of engine event times).
pub(crate) fn now_nanos() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// The state part of [`ContainerDetails`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerState {
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited` or `dead`.
    pub status: String,
    /// True while running.
    pub running: bool,
    /// Exit code of the last run.
    pub exit_code: i64,
    /// Process ID on the host (0 when not running).
    pub pid: i64,
    /// Start time (RFC 3339).
    pub started_at: String,
    /// Finish time (RFC 3339).
    pub finished_at: String,
    /// `starting`, `healthy` or `unhealthy` when the container has a healthcheck.
    pub health: Option<String>,
    /// Killed by the kernel's OOM killer.
    pub oom_killed: bool,
}

/// Everything [`Host::inspect_container`] reports that dockfleet uses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerDetails {
    /// Full container ID.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// Image reference from the container's config.
    pub image: String,
    /// Image ID.
    pub image_id: String,
    /// Current state.
    pub state: ContainerState,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Published ports as bound by the engine.
    pub ports: Vec<PortMapping>,
    /// Address on each attached network, by network name.
    pub networks: BTreeMap<String, String>,
    /// Times the engine restarted it.
    pub restart_count: i64,
    /// Creation time (RFC 3339).
    pub created: String,
    /// Runs privileged ([`ContainerSpec::privileged`]).
    pub privileged: bool,
    /// Its security options as the engine keeps them ([`ContainerSpec::security_opt`]).
    pub security_opt: Vec<String>,
    /// Its network mode, as in [`ContainerSummary::network_mode`].
    pub network_mode: String,
    /// The ports its config exposes (the image's `EXPOSE`, `docker run --expose` and every port of
    /// [`ContainerSpec::ports`]), bound or not; `host_port` is unset. On the host network these are
    /// the ports it says it listens on, which the engine reports nowhere else.
    pub exposed_ports: Vec<PortMapping>,
}

/// Which part of the logs [`Host::logs`] streams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogOptions {
    /// Keep streaming new output until the container stops.
    pub follow: bool,
    /// Include stdout.
    pub stdout: bool,
    /// Include stderr.
    pub stderr: bool,
    /// Only the last N lines.
    pub tail: Option<u32>,
    /// Only lines since this time (seconds since the epoch).
    pub since: Option<i64>,
    /// Prefix lines with the engine's timestamp.
    pub timestamps: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { follow: false, stdout: true, stderr: true, tail: None, since: None, timestamps: false }
    }
}

/// One chunk of container output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// `stdout`, `stderr` or `console` (TTY).
    pub stream: String,
    /// The text (invalid UTF-8 replaced).
    pub message: String,
}

/// Options of [`Host::exec`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecOptions {
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// User.
    pub user: Option<String>,
}

/// Result of [`Host::exec`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOutput {
    /// Exit code of the command.
    pub exit_code: i64,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

/// Options of [`Host::build_image`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BuildOptions {
    /// Tag of the result, e.g. `app:1`.
    pub tag: String,
    /// Dockerfile path inside the context (default `Dockerfile`).
    pub dockerfile: Option<String>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// Labels on the image.
    pub labels: BTreeMap<String, String>,
    /// Do not use the build cache.
    pub no_cache: bool,
    /// Stage of a multi-stage Dockerfile to stop at (`None`: the last).
    pub target: Option<String>,
}

/// One progress event of an image build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildEvent {
    /// `context` (bytes of context sent), `step` (a Dockerfile step starts), `output`, or `done`.
    pub kind: String,
    /// The text of the event.
    pub message: String,
    /// The built image's ID (set on `done`).
    pub image_id: Option<String>,
}

/// Options of [`Host::pull_image`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PullOptions {
    /// Credentials for the image's registry (`None`: pull anonymously).
    pub auth: Option<RegistryAuth>,
    /// The platform to pull for a multi-platform image (`linux/arm64`; `None`: the engine's own).
    pub platform: Option<String>,
}

/// Options of [`Host::push_image`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PushOptions {
    /// Credentials for the image's registry (`None`: push anonymously).
    pub auth: Option<RegistryAuth>,
}

/// One progress event of [`Host::pull_image`] or [`Host::push_image`], as the engine reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageProgress {
    /// The layer (short ID) the event is about; empty for the image as a whole.
    pub layer: String,
    /// The engine's status text: `Pulling fs layer`, `Downloading`, `Extracting`, `Pull complete`,
    /// `Pushing`, `Pushed`, `Layer already exists`, …
    pub status: String,
    /// Bytes of the layer done so far, while downloading, extracting or pushing.
    pub current: Option<u64>,
    /// The layer's size, when known.
    pub total: Option<u64>,
    /// The image's digest (`sha256:…`), on the last event.
    pub digest: Option<String>,
    /// True on the last event, once the image is pulled (or pushed).
    pub done: bool,
}

/// Splits an image reference into what the engine's pull takes: the repository and the tag (or digest).
/// A reference with neither gets `latest`, so that a pull never fetches every tag of a repository.
pub(crate) fn split_reference(reference: &str) -> (&str, &str) {
    if let Some((repo, digest)) = reference.split_once('@') {
        return (repo, digest);
    }
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, "latest"),
    }
}

/// One image in [`Host::list_images`], or the answer of [`Host::inspect_image`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageSummary {
    /// Image ID (`sha256:…`).
    pub id: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Creation time, seconds since the epoch (0 when unknown).
    pub created: i64,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// Which engine events [`Host::events`] streams.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventOptions {
    /// Replay events since this time (nanoseconds since the epoch) before following new ones; pass the
    /// `time_nanos` of the last event you saw to resume without gaps. When `None`, the stream starts at
    /// the moment [`Host::events`] is called (not when it is first polled), so nothing in between is lost.
    pub since_nanos: Option<i64>,
    /// Stop at this time (nanoseconds since the epoch); follow forever when `None`.
    pub until_nanos: Option<i64>,
    /// Engine filters, e.g. `{"type": ["container"], "event": ["die"], "label": ["app=web"]}`.
    pub filters: BTreeMap<String, Vec<String>>,
}

/// One engine event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Name of the host it came from.
    pub host: String,
    /// `container`, `image`, `network`, `volume`, …
    pub kind: String,
    /// `create`, `start`, `die`, `destroy`, `health_status: healthy`, …
    pub action: String,
    /// ID of the object.
    pub id: String,
    /// Attributes (container labels, `name`, `image`, `exitCode`, …).
    pub attributes: BTreeMap<String, String>,
    /// Time of the event in nanoseconds since the epoch.
    pub time_nanos: i64,
}

/// Resource usage of one container at one moment ([`Host::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Container ID.
    pub id: String,
    /// CPU use since the previous sample, in percent of one CPU (200 = two CPUs busy).
    pub cpu_percent: f64,
    /// Memory in use, page cache excluded.
    pub memory_bytes: u64,
    /// Memory limit (the machine's memory when unlimited).
    pub memory_limit_bytes: u64,
    /// `memory_bytes` as a percentage of `memory_limit_bytes`.
    pub memory_percent: f64,
    /// Bytes received over all networks.
    pub network_rx_bytes: u64,
    /// Bytes sent over all networks.
    pub network_tx_bytes: u64,
    /// Bytes read from block devices.
    pub block_read_bytes: u64,
    /// Bytes written to block devices.
    pub block_write_bytes: u64,
    /// Number of processes.
    pub pids: u64,
}

/// Progress of [`crate::copy_image`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyProgress {
    /// The image being copied.
    pub image: String,
    /// Source host name.
    pub source: String,
    /// Destination host name.
    pub target: String,
    /// Bytes streamed so far.
    pub bytes: u64,
    /// Expected total (the image size; the archive is slightly larger), when known.
    pub total_bytes: Option<u64>,
    /// True on the last event, once the destination has loaded the image.
    pub done: bool,
}

/// A network on one engine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSummary {
    /// Network ID.
    pub id: String,
    /// Network name.
    pub name: String,
    /// Driver (`bridge`, `host`, `null`, …).
    pub driver: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Options of the driver.
    #[serde(default)]
    pub driver_opts: BTreeMap<String, String>,
    /// Whether the network has no route out.
    #[serde(default)]
    pub internal: bool,
    /// Whether standalone containers may join it (Swarm overlay networks).
    #[serde(default)]
    pub attachable: bool,
    /// Whether its containers get IPv6 addresses.
    #[serde(default)]
    pub enable_ipv6: bool,
    /// Its address pools, as the engine reports them.
    #[serde(default)]
    pub ipam: Vec<IpamPool>,
}

/// A named volume on one engine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSummary {
    /// Volume name.
    pub name: String,
    /// Driver (`local`, …).
    pub driver: String,
    /// Where the engine keeps it on the host.
    pub mountpoint: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Options of the driver it was created with.
    #[serde(default)]
    pub driver_opts: BTreeMap<String, String>,
}

/// Options of [`Host::create_network`] (`docker network create`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkOptions {
    /// Driver: `bridge` when `None`; `overlay` on a Swarm manager, or a driver plugin the engine has.
    pub driver: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Options of the driver, e.g. `com.docker.network.driver.mtu` or `com.docker.network.bridge.name`.
    pub driver_opts: BTreeMap<String, String>,
    /// An internal network has no route out: its containers reach only each other.
    pub internal: bool,
    /// Standalone containers may join a Swarm overlay network.
    pub attachable: bool,
    /// Containers get IPv6 addresses too (from an IPv6 pool in `ipam`, or the engine's default pools).
    pub enable_ipv6: bool,
    /// Address pools; empty: the engine picks a free subnet.
    pub ipam: Vec<IpamPool>,
}

/// One address pool of a network (`docker network create --subnet … --ip-range … --gateway …`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IpamPool {
    /// The subnet, in CIDR form (`172.28.0.0/16`, `fd00:1::/64`).
    pub subnet: String,
    /// The part of the subnet containers get addresses from (CIDR, inside `subnet`).
    pub ip_range: Option<String>,
    /// The gateway's address (inside `subnet`); the engine picks one when `None`.
    pub gateway: Option<String>,
    /// Addresses the engine must not hand out, by name (inside `subnet`).
    pub aux_addresses: BTreeMap<String, String>,
}

/// Options of [`Host::create_volume`] (`docker volume create`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeOptions {
    /// Driver: `local` when `None`, or a volume plugin the engine has.
    pub driver: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Options of the driver. The `local` driver takes `type`, `device`, `o` (mount options) and
    /// `size`: `{type: tmpfs, device: tmpfs, o: size=64m}`, or an NFS export
    /// `{type: nfs, o: "addr=10.0.0.2,rw", device: ":/export"}`.
    pub driver_opts: BTreeMap<String, String>,
}

/// The options the `local` volume driver takes.
const LOCAL_VOLUME_OPTS: &[&str] = &["type", "device", "o", "size"];

fn check_keys(field: &str, map: &BTreeMap<String, String>) -> Result<()> {
    match map.keys().find(|k| k.is_empty() || k.contains('\0')) {
        Some(k) => Err(Error::invalid(format!("{field}.{k}"), "a key must be non-empty text")),
        None => Ok(()),
    }
}

/// An address and prefix length: `10.1.0.0/16`, with no bits set past the prefix (which an engine
/// would report differently from what was asked).
fn parse_cidr(field: &str, text: &str) -> Result<(std::net::IpAddr, u8)> {
    use std::net::IpAddr::{V4, V6};
    let bad = || Error::invalid(field, format!("{text:?} is not a subnet in CIDR form (10.1.0.0/16, fd00::/64)"));
    let (addr, len) = text.split_once('/').ok_or_else(bad)?;
    let addr: std::net::IpAddr = addr.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    let bits: u32 = if addr.is_ipv4() { 32 } else { 128 };
    if u32::from(len) > bits {
        return Err(bad());
    }
    let host_bits = bits - u32::from(len);
    let keep = |n: u128| if host_bits >= 128 { 0 } else { n >> host_bits << host_bits };
    let base: std::net::IpAddr = match addr {
        V4(a) => V4((keep(u128::from(u32::from(a))) as u32).into()),
        V6(a) => V6(keep(u128::from(a)).into()),
    };
    if base != addr {
        return Err(Error::invalid(
            field,
            format!("{text:?} has bits set past its prefix: the subnet is {base}/{len}"),
        ));
    }
    Ok((addr, len))
}

/// Whether `addr` lies in the subnet `net/len` (both of one family).
fn in_subnet(addr: std::net::IpAddr, net: std::net::IpAddr, len: u8) -> bool {
    use std::net::IpAddr::{V4, V6};
    let (a, n, bits) = match (addr, net) {
        (V4(a), V4(n)) => (u128::from(u32::from(a)), u128::from(u32::from(n)), 32),
        (V6(a), V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    let host_bits = bits - u32::from(len);
    host_bits >= 128 || (a >> host_bits) == (n >> host_bits)
}

impl NetworkOptions {
    /// Checks the options without any engine call; `field` prefixes the field paths in errors.
    pub fn validate(&self, field: &str) -> Result<()> {
        let at = |f: &str| if field.is_empty() { f.to_string() } else { format!("{field}.{f}") };
        if let Some(d) = &self.driver {
            if d.is_empty() || d.contains(char::is_whitespace) {
                return Err(Error::invalid(at("driver"), format!("{d:?} is not a driver name")));
            }
        }
        check_keys(&at("labels"), &self.labels)?;
        check_keys(&at("driver_opts"), &self.driver_opts)?;
        let mut subnets: Vec<(std::net::IpAddr, u8)> = Vec::new();
        for (i, p) in self.ipam.iter().enumerate() {
            let f = at(&format!("ipam[{i}]"));
            let (net, len) = parse_cidr(&format!("{f}.subnet"), &p.subnet)?;
            if net.is_ipv6() && !self.enable_ipv6 {
                return Err(Error::invalid(format!("{f}.subnet"), "an IPv6 subnet needs enable_ipv6"));
            }
            if let Some(&(other, olen)) =
                subnets.iter().find(|(o, ol)| in_subnet(net, *o, *ol) || in_subnet(*o, net, len))
            {
                return Err(Error::invalid(
                    format!("{f}.subnet"),
                    format!("overlaps another pool's subnet {other}/{olen}"),
                ));
            }
            subnets.push((net, len));
            let inside = |sub: &str, addr: std::net::IpAddr| {
                if in_subnet(addr, net, len) {
                    Ok(())
                } else {
                    Err(Error::invalid(format!("{f}.{sub}"), format!("{addr} is not in the subnet {}", p.subnet)))
                }
            };
            if let Some(r) = &p.ip_range {
                let (rnet, rlen) = parse_cidr(&format!("{f}.ip_range"), r)?;
                if rlen < len {
                    return Err(Error::invalid(format!("{f}.ip_range"), format!("{r} is larger than the subnet")));
                }
                inside("ip_range", rnet)?;
            }
            let ip = |sub: &str, text: &str| {
                text.parse::<std::net::IpAddr>()
                    .map_err(|_| Error::invalid(format!("{f}.{sub}"), format!("{text:?} is not an IP address")))
            };
            if let Some(g) = &p.gateway {
                inside("gateway", ip("gateway", g)?)?;
            }
            for (name, a) in &p.aux_addresses {
                let sub = format!("aux_addresses.{name}");
                if name.is_empty() {
                    return Err(Error::invalid(format!("{f}.aux_addresses"), "a name must be non-empty"));
                }
                inside(&sub, ip(&sub, a)?)?;
            }
        }
        Ok(())
    }
}

impl VolumeOptions {
    /// Checks the options without any engine call; `field` prefixes the field paths in errors.
    pub fn validate(&self, field: &str) -> Result<()> {
        let at = |f: &str| if field.is_empty() { f.to_string() } else { format!("{field}.{f}") };
        let driver = self.driver.as_deref().unwrap_or("local");
        if driver.is_empty() || driver.contains(char::is_whitespace) {
            return Err(Error::invalid(at("driver"), format!("{driver:?} is not a driver name")));
        }
        check_keys(&at("labels"), &self.labels)?;
        check_keys(&at("driver_opts"), &self.driver_opts)?;
        if driver == "local" {
            if let Some(k) = self.driver_opts.keys().find(|k| !LOCAL_VOLUME_OPTS.contains(&k.as_str())) {
                return Err(Error::invalid(
                    at(&format!("driver_opts.{k}")),
                    format!("the local driver takes only {}", LOCAL_VOLUME_OPTS.join(", ")),
                ));
            }
        }
        Ok(())
    }

    /// The host path a `local` volume binds (`o: bind` with a `device`), if it is one.
    pub fn bound_host_path(&self) -> Option<&str> {
        let local = self.driver.as_deref().is_none_or(|d| d == "local");
        let bind = self.driver_opts.get("o").is_some_and(|o| o.split(',').any(|x| x == "bind" || x == "rbind"));
        (local && bind).then(|| self.driver_opts.get("device").map(String::as_str)).flatten()
    }
}

/// One Docker engine. Implemented by [`crate::DockerHost`]; all methods are cancel-safe (drop the
/// future or stream to cancel) and bounded by the host's request timeout.
#[async_trait]
pub trait Host: Send + Sync + std::fmt::Debug {
    /// The host's name in its fleet.
    fn name(&self) -> &str;
    /// The address it was configured with (`unix:///…`, `tcp://…`).
    fn address(&self) -> &str;
    /// The labels it was given in its fleet (not the engine's own labels, see [`HostInfo::labels`]).
    fn labels(&self) -> &BTreeMap<String, String>;

    /// Checks the engine answers, and how fast.
    async fn ping(&self) -> Result<Ping>;
    /// The [`crate::DockerHost`] behind this host, when it is one: Swarm mode needs bollard's swarm,
    /// service, task and node calls, which the trait does not wrap.
    fn as_docker(&self) -> Option<&crate::DockerHost> {
        None
    }
    /// Engine and machine facts.
    async fn info(&self) -> Result<HostInfo>;

    /// Creates a container (validated first) and returns its ID. Does not start it.
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String>;
    /// Starts a created or stopped container.
    async fn start_container(&self, id: &str) -> Result<()>;
    /// Sends the stop signal, then kills after `grace` (engine default when `None`).
    async fn stop_container(&self, id: &str, grace: Option<Duration>) -> Result<()>;
    /// Sends a signal (`SIGKILL` when `None`).
    async fn kill_container(&self, id: &str, signal: Option<&str>) -> Result<()>;
    /// Removes a container; `force` kills it first if running; `volumes` removes its anonymous volumes.
    async fn remove_container(&self, id: &str, force: bool, volumes: bool) -> Result<()>;
    /// Renames a container (its ID, labels and state stay; the name is checked first).
    async fn rename_container(&self, id: &str, name: &str) -> Result<()>;
    /// Details of one container.
    async fn inspect_container(&self, id: &str) -> Result<ContainerDetails>;
    /// Containers matching the options.
    async fn list_containers(&self, options: &ListContainersOptions) -> Result<Vec<ContainerSummary>>;
    /// Container output as a stream.
    fn logs(&self, id: &str, options: &LogOptions) -> ResultStream<LogLine>;
    /// Waits until the container stops and returns its exit code.
    async fn wait_container(&self, id: &str) -> Result<i64>;
    /// Runs a command in a running container and collects its output.
    async fn exec(&self, id: &str, command: &[String], options: &ExecOptions) -> Result<ExecOutput>;

    /// Builds an image from a directory on this machine (sent as the build context).
    fn build_image(&self, context_dir: &std::path::Path, options: &BuildOptions) -> ResultStream<BuildEvent>;
    /// Images on the engine.
    async fn list_images(&self) -> Result<Vec<ImageSummary>>;
    /// One image; `not_found` when absent.
    async fn inspect_image(&self, reference: &str) -> Result<ImageSummary>;
    /// Whether an image is present.
    async fn image_exists(&self, reference: &str) -> Result<bool> {
        match self.inspect_image(reference).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
    /// Removes an image.
    async fn remove_image(&self, reference: &str, force: bool) -> Result<()>;
    /// Pulls an image from its registry, with the engine's progress. A reference without a tag or
    /// digest pulls `:latest`. A registry that refuses the credentials gives `unauthorized`; an image
    /// the registry does not have, `not_found`.
    fn pull_image(&self, reference: &str, options: &PullOptions) -> ResultStream<ImageProgress>;
    /// Pushes an image (tagged with its registry, see [`Host::tag_image`]) to its registry, with the
    /// engine's progress.
    fn push_image(&self, reference: &str, options: &PushOptions) -> ResultStream<ImageProgress>;
    /// Gives the image `source` the further name `target` (`registry:5000/team/app:1`).
    async fn tag_image(&self, source: &str, target: &str) -> Result<()>;
    /// The image as a `docker save` archive, streamed.
    fn export_image(&self, reference: &str) -> ResultStream<Bytes>;
    /// Loads a `docker save` archive from a stream; returns the loaded references.
    async fn import_image(&self, archive: ResultStream<Bytes>) -> Result<Vec<String>>;

    /// Creates a network (a bridge unless `options.driver` says otherwise); returns its ID
    /// (`conflict` when the name is taken). The options are checked before any engine call.
    async fn create_network(&self, name: &str, options: &NetworkOptions) -> Result<String>;
    /// Removes a network (`not_found` when absent).
    async fn remove_network(&self, name: &str) -> Result<()>;
    /// Networks carrying every label in `labels` (`key` or `key=value`); all when empty.
    async fn list_networks(&self, labels: &[String]) -> Result<Vec<NetworkSummary>>;
    /// Creates a named volume, or returns the existing one of that name (which keeps the options it
    /// was created with). The options are checked before any engine call.
    async fn create_volume(&self, name: &str, options: &VolumeOptions) -> Result<VolumeSummary>;
    /// Removes a named volume (`conflict` while a container uses it, unless `force`).
    async fn remove_volume(&self, name: &str, force: bool) -> Result<()>;
    /// Volumes carrying every label in `labels` (`key` or `key=value`); all when empty.
    async fn list_volumes(&self, labels: &[String]) -> Result<Vec<VolumeSummary>>;

    /// Engine events, following new ones until `until_nanos` (forever when `None`).
    fn events(&self, options: &EventOptions) -> ResultStream<Event>;
    /// One sample of a container's resource use (takes about a second: CPU needs two readings).
    async fn stats(&self, id: &str) -> Result<Stats>;
    /// A sample about every second until the container stops or the stream is dropped.
    fn stats_stream(&self, id: &str) -> ResultStream<Stats>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_and_exit_code_from_the_status_text() {
        let c = |status: &str| ContainerSummary { status: status.into(), ..Default::default() };
        assert_eq!(c("Up 3 seconds (healthy)").health(), Some("healthy"));
        assert_eq!(c("Up 1 second (health: starting)").health(), Some("starting"));
        assert_eq!(c("Up 9 seconds (unhealthy)").health(), Some("unhealthy"));
        assert_eq!(c("Up 3 seconds").health(), None);
        assert_eq!(c("Exited (137) 2 seconds ago").exit_code(), Some(137));
        assert_eq!(c("Up 3 seconds").exit_code(), None);
    }

    #[test]
    fn devices_read_as_docker_run_reads_them() {
        let d = |t| Device::parse("devices[0]", t).map(|d| (d.host, d.container, d.permissions));
        assert_eq!(d("/dev/fuse").unwrap(), ("/dev/fuse", "/dev/fuse", "rwm"));
        assert_eq!(d("/dev/ttyUSB0:/dev/modem").unwrap(), ("/dev/ttyUSB0", "/dev/modem", "rwm"));
        assert_eq!(d("/dev/ttyUSB0:r").unwrap(), ("/dev/ttyUSB0", "/dev/ttyUSB0", "r"));
        assert_eq!(d("/dev/net/tun:/dev/net/tun:rw").unwrap(), ("/dev/net/tun", "/dev/net/tun", "rw"));
        for bad in [
            "",
            "ttyUSB0",
            "/etc/passwd",
            "/dev/../etc/shadow",
            "/dev/x:rel",
            "/dev/x:/dev/y:rx",
            "/dev/x:/dev/y:rr",
            "/dev/x:/dev/y:",
            "/dev/x:/dev/y:r:w",
            "nvidia.com/gpu=all",
            "/dev/a b",
        ] {
            let e = d(bad).unwrap_err();
            assert!(e.code() == "invalid_argument" && e.to_string().contains("devices[0]"), "{bad:?}: {e}");
        }
        let mut c = ContainerSpec::new("busybox");
        c.devices = vec!["/dev/null".into(), "/dev/zero:/dev/z:rwx".into()];
        assert!(c.validate().unwrap_err().to_string().contains("devices[1]"));
        c.devices.clear();
        let cpus = |s: &str| cpuset_cpus("cpuset_cpus", s).map(|c| c.into_iter().collect::<Vec<_>>());
        assert_eq!(cpus("0-2,5,7-7").unwrap(), [0, 1, 2, 5, 7]);
        for bad in ["", "1,", "-1", "2-1", "a", "0-1023,1024", "+1", " 1"] {
            assert!(cpus(bad).unwrap_err().to_string().contains("cpuset_cpus"), "{bad:?}");
        }
        c.memory_swap_bytes = Some(-1);
        assert!(c.validate().unwrap_err().to_string().contains("memory_swap_bytes: needs a memory limit"));
        c.memory_bytes = Some(64 << 20);
        c.validate().unwrap();
        c.cpu_shares = Some(1);
        assert!(c.validate().unwrap_err().to_string().contains("cpu_shares"));
        c.cpu_shares = None;
        for (field, set) in [
            ("memory_swappiness", (|c| c.memory_swappiness = Some(200)) as fn(&mut ContainerSpec)),
            ("oom_score_adj", |c| c.oom_score_adj = Some(-1001)),
            ("oom_kill_disable", |c| {
                c.memory_bytes = None;
                c.memory_swap_bytes = None;
                c.oom_kill_disable = true;
            }),
        ] {
            let mut bad = c.clone();
            set(&mut bad);
            assert!(bad.validate().unwrap_err().to_string().contains(field), "{field}");
        }
        for (ipc, ok) in [("shareable", true), ("container:db", true), ("container:", false), ("shared", false)] {
            c.ipc = Some(ipc.into());
            assert_eq!(c.validate().is_ok(), ok, "ipc {ipc}");
        }
        c.ipc = None;
        for (pid, ok) in [("host", true), ("container:db", true), ("container:../x", false), ("private", false)] {
            c.pid = Some(pid.into());
            assert_eq!(c.validate().is_ok(), ok, "pid {pid}");
        }
    }

    #[test]
    fn networks_and_aliases_are_checked() {
        let spec = |network: Option<&str>, extra: &[&str], aliases: &[&str]| ContainerSpec {
            network: network.map(String::from),
            extra_networks: extra.iter().map(|s| s.to_string()).collect(),
            network_aliases: aliases.iter().map(|s| s.to_string()).collect(),
            ..ContainerSpec::new("busybox")
        };
        for ok in [
            spec(Some("front"), &["back"], &["db"]),
            spec(Some("container:web"), &[], &[]),
            spec(Some("host"), &[], &[]),
            spec(None, &[], &[]),
        ] {
            ok.validate().unwrap();
        }
        for (bad, field) in [
            (spec(Some("a/b"), &[], &[]), "network"),
            (spec(Some("front"), &["../x"], &[]), "extra_networks[0]"),
            (spec(Some("front"), &["host"], &[]), "extra_networks[0]"),
            (spec(Some("bridge"), &["back"], &[]), "extra_networks[0]"),
            (spec(None, &["back"], &[]), "extra_networks[0]"),
            (spec(None, &[], &["db"]), "network_aliases[0]"),
            (spec(Some("host"), &[], &["db"]), "network_aliases[0]"),
            (spec(Some("front"), &[], &["db", "-x"]), "network_aliases[1]"),
        ] {
            let e = bad.validate().unwrap_err();
            assert!(e.code() == "invalid_argument" && e.to_string().contains(field), "{e} should name {field}");
        }
    }

    #[test]
    fn security_options_read_both_separators_and_say_what_loosens() {
        fn read(o: &str) -> SecurityOpt<'_> {
            SecurityOpt::parse("security_opt[0]", o).unwrap()
        }
        let profile =
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#;
        let allowing =
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#;
        for (opt, engine, loosens) in [
            ("no-new-privileges", Some("no-new-privileges=true"), false),
            ("no-new-privileges:true", Some("no-new-privileges=true"), false),
            ("no-new-privileges=false", Some("no-new-privileges=false"), false),
            ("seccomp:unconfined", Some("seccomp=unconfined"), true),
            ("apparmor=docker-default", Some("apparmor=docker-default"), false),
            ("apparmor:unconfined", Some("apparmor=unconfined"), true),
            ("label:disable", Some("label=disable"), true),
            ("label=level:s0:c100,c200", Some("label=level:s0:c100,c200"), false),
            ("label:type:svirt_apache_t", Some("label=type:svirt_apache_t"), false),
            ("systempaths=unconfined", None, true),
        ] {
            let o = read(opt);
            assert_eq!((o.for_engine().as_deref(), o.loosens()), (engine, loosens), "{opt}");
        }
        // A JSON profile holds `:` and `=`: the key ends at the first of them.
        let written = format!("seccomp:{profile}");
        let o = read(&written);
        assert_eq!((o.for_engine(), o.loosens()), (Some(format!("seccomp={profile}")), false));
        assert!(read(&format!("seccomp={allowing}")).loosens(), "allows every call it does not name");
        for bad in [
            "",
            "no-new-privileges=maybe",
            "seccomp",
            "seccomp=",
            "seccomp=/etc/profile.json",
            "seccomp={not json",
            r#"seccomp={"syscalls": []}"#,
            "apparmor=a b",
            "label=user",
            "label=user:",
            "label=user:a b",
            "label=nested",
            "systempaths=masked",
            "privileged",
            "unconfined",
        ] {
            let e = SecurityOpt::parse("security_opt[3]", bad).unwrap_err();
            assert!(e.code() == "invalid_argument" && e.to_string().contains("security_opt[3]"), "{bad:?}: {e}");
        }
        let big = format!(r#"seccomp={{"defaultAction":"SCMP_ACT_ERRNO","x":"{}"}}"#, "a".repeat(MAX_SECCOMP_PROFILE));
        assert!(SecurityOpt::parse("f", &big).unwrap_err().to_string().contains("over"));
        for (bad, field) in [
            (ContainerSpec { pids_limit: Some(-2), ..ContainerSpec::new("busybox") }, "pids_limit"),
            (ContainerSpec { pids_limit: Some(0), ..ContainerSpec::new("busybox") }, "pids_limit"),
            (ContainerSpec { group_add: vec!["".into()], ..ContainerSpec::new("busybox") }, "group_add[0]"),
            (ContainerSpec { group_add: vec!["a:b".into()], ..ContainerSpec::new("busybox") }, "group_add[0]"),
        ] {
            let e = bad.validate().unwrap_err();
            assert!(e.to_string().contains(field), "{e} should name {field}");
        }
        ContainerSpec {
            pids_limit: Some(-1),
            group_add: vec!["0".into(), "wheel".into()],
            ..ContainerSpec::new("busybox")
        }
        .validate()
        .unwrap();
        let spec = ContainerSpec {
            security_opt: vec!["no-new-privileges".into(), "label=x".into()],
            ..ContainerSpec::new("busybox")
        };
        assert!(spec.validate().unwrap_err().to_string().contains("security_opt[1]"));
    }

    #[test]
    fn references_that_would_address_another_object_are_refused() {
        for ok in ["web-1", "4f2a9c", "my_app.web.1"] {
            assert!(validate_ref("id", ok).is_ok(), "{ok}");
        }
        for bad in ["", "../images/busybox", "web?force=1", "web#x", "/web", "a/b", "web 1", "%2e%2e"] {
            let e = validate_ref("id", bad).unwrap_err();
            assert_eq!((e.code(), e.to_string().contains("invalid id")), ("invalid_argument", true), "{bad}: {e}");
        }
        for ok in [
            "busybox",
            "dockfleet/busybox:latest",
            "localhost:5000/team/app:1.2.3",
            "app@sha256:0123abcd",
            "sha256:9d45ad7bcfa0",
            "Registry.Example:443/x_y/z-w",
        ] {
            assert!(validate_image_ref("reference", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../containers/web",
            "busybox/..",
            "a//b",
            "/busybox",
            "busybox/",
            "./busybox",
            "busybox?x=1",
            "busybox#x",
            "busy box",
            "busybox%2F..",
            "busybox\\..",
            "bus\nybox",
        ] {
            let e = validate_image_ref("reference", bad).unwrap_err();
            assert_eq!(e.code(), "invalid_argument", "{bad:?}");
            assert!(e.to_string().contains("invalid reference"), "{bad:?}: {e}");
        }
    }
}
