//! [`DockerHost`]: the [`Host`] trait over a real Docker engine, through bollard.
//!
//! Connects over a unix socket, plain TCP (loopback, or anywhere with an explicit `insecure` opt-in) or
//! TLS with client certificates, or from the standard `DOCKER_HOST` / `DOCKER_TLS_VERIFY` /
//! `DOCKER_CERT_PATH` environment. The API version is negotiated on first contact, so old (API 1.41) and
//! new engines both work.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bollard::errors::Error as BollardError;
use bollard::models as bm;
use bollard::query_parameters as qp;
use bollard::Docker;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::error::{Error, Result};
use crate::host::*;
use crate::registry::RegistryAuth;
use crate::transport::Transport;

/// Client certificate, key and the CA that must have signed the engine's certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsConfig {
    /// CA certificate (PEM) that signed the engine's server certificate.
    pub ca: PathBuf,
    /// Client certificate (PEM).
    pub cert: PathBuf,
    /// Client private key (PEM).
    pub key: PathBuf,
}

/// How to reach one engine. Build with [`HostConfig::new`] or [`HostConfig::from_env`], then
/// [`DockerHost::connect`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostConfig {
    /// Name of the host in its fleet: 1-253 of `[A-Za-z0-9_.-:@]`, not `.` or `..`, as instance IDs are
    /// (it is part of the IDs of the instances a registrator finds on the host).
    pub name: String,
    /// `unix:///var/run/docker.sock`, `tcp://10.0.0.5:2376`, `https://…` (TLS), `http://…` (plain).
    pub address: String,
    /// Labels used for placement (`role=manager`, `zone=a`, …).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// TLS with client certificates; required for `https://`.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Allow plain TCP to a non-loopback address. An open Docker port is root for anyone who can reach
    /// it, so this is refused unless set.
    #[serde(default)]
    pub insecure: bool,
    /// Limit on first contact with the engine and on opening each new connection (default 5 s); a
    /// call that hits it fails with code `timeout`.
    #[serde(default = "default_connect_timeout", with = "crate::serde_ms")]
    pub connect_timeout: Duration,
    /// Limit on each request until the engine starts answering (default 60 s, as docker-py); streams
    /// (logs, events, stats, builds, copies) are not cut once they have started.
    #[serde(default = "default_request_timeout", with = "crate::serde_ms")]
    pub request_timeout: Duration,
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            name: "local".into(),
            address: "unix:///var/run/docker.sock".into(),
            labels: BTreeMap::new(),
            tls: None,
            insecure: false,
            connect_timeout: default_connect_timeout(),
            request_timeout: default_request_timeout(),
        }
    }
}

impl HostConfig {
    /// A host named `name` at `address`, with default timeouts and no TLS.
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> Self {
        HostConfig { name: name.into(), address: address.into(), ..Default::default() }
    }

    /// Reads `DOCKER_HOST` (default the local socket), `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`
    /// (default `~/.docker`) as the docker CLI does. Plain TCP to a non-loopback address still needs
    /// `insecure = true` set on the result.
    pub fn from_env(name: impl Into<String>) -> Result<Self> {
        Self::from_vars(name, |k| std::env::var(k).ok())
    }

    pub(crate) fn from_vars(name: impl Into<String>, var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let address =
            var("DOCKER_HOST").filter(|s| !s.is_empty()).unwrap_or_else(|| "unix:///var/run/docker.sock".into());
        let verify = var("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty() && v != "0");
        let tls = if verify {
            let dir = match var("DOCKER_CERT_PATH").filter(|s| !s.is_empty()) {
                Some(d) => PathBuf::from(d),
                None => {
                    let home = var("HOME").ok_or_else(|| {
                        Error::invalid("DOCKER_CERT_PATH", "not set, and HOME is not set to find ~/.docker")
                    })?;
                    PathBuf::from(home).join(".docker")
                }
            };
            Some(TlsConfig { ca: dir.join("ca.pem"), cert: dir.join("cert.pem"), key: dir.join("key.pem") })
        } else {
            None
        };
        Ok(HostConfig { name: name.into(), address, tls, ..Default::default() })
    }
}

/// Where an address points, once parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Unix(PathBuf),
    Tcp { host: String, port: u16 },
}

/// Parses and checks an engine address; `field` names it in errors.
pub(crate) fn parse_address(field: &str, address: &str, tls: bool) -> Result<Endpoint> {
    let bad = |message: &str| Error::InvalidAddress {
        field: field.to_string(),
        address: address.to_string(),
        message: message.to_string(),
    };
    let (scheme, rest) = address
        .split_once("://")
        .ok_or_else(|| bad("expected unix:///path, tcp://host:port, http://host:port or https://host:port"))?;
    match scheme {
        "unix" => {
            if !rest.starts_with('/') {
                return Err(bad("a unix socket path must be absolute (unix:///var/run/docker.sock)"));
            }
            Ok(Endpoint::Unix(PathBuf::from(rest)))
        }
        "tcp" | "http" | "https" => {
            if scheme == "https" && !tls {
                return Err(bad("https:// needs a tls configuration (ca, cert, key)"));
            }
            if scheme == "http" && tls {
                return Err(bad("http:// is plain TCP but a tls configuration is given; use tcp:// or https://"));
            }
            let hostport = rest.strip_suffix('/').unwrap_or(rest);
            if hostport.is_empty() {
                return Err(bad("missing host"));
            }
            if hostport.contains('/') || hostport.contains('?') || hostport.contains('@') {
                return Err(bad("an engine address has no path, query or user part"));
            }
            let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
                let (h, after) = r.split_once(']').ok_or_else(|| bad("unclosed '[' in IPv6 address"))?;
                (h.to_string(), after.strip_prefix(':'))
            } else {
                match hostport.rsplit_once(':') {
                    Some((h, p)) => (h.to_string(), Some(p)),
                    None => (hostport.to_string(), None),
                }
            };
            if host.is_empty() {
                return Err(bad("missing host"));
            }
            let valid_host = host.parse::<std::net::IpAddr>().is_ok()
                || host.split('.').all(|l| {
                    !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if !valid_host {
                return Err(bad("host is neither an IP address nor a valid DNS name"));
            }
            let port = match port {
                None => {
                    if tls {
                        2376
                    } else {
                        2375
                    }
                }
                Some(p) => match p.parse::<u16>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(bad("port must be a number from 1 to 65535")),
                },
            };
            Ok(Endpoint::Tcp { host, port })
        }
        other => Err(bad(&format!("unsupported scheme {other:?} (use unix, tcp, http or https)"))),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn check_pem(field: &str, path: &Path, marker: &str) -> Result<()> {
    let data = std::fs::read_to_string(path)
        .map_err(|e| Error::invalid(field, format!("cannot read {}: {e}", path.display())))?;
    if !data.contains(marker) {
        return Err(Error::invalid(field, format!("{} holds no PEM {marker}", path.display())));
    }
    Ok(())
}

struct Inner {
    config: HostConfig,
    endpoint: Endpoint,
    /// The client and the negotiated API version, made on first contact.
    client: OnceCell<(Docker, String)>,
}

/// A Docker engine reached through bollard. Cheap to clone; clones share one client.
#[derive(Clone)]
pub struct DockerHost {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DockerHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerHost")
            .field("name", &self.inner.config.name)
            .field("address", &self.inner.config.address)
            .finish()
    }
}

/// What an error was about, to give `not_found` errors their kind.
#[derive(Clone, Copy)]
enum Subject<'a> {
    Container(&'a str),
    Image(&'a str),
    Network(&'a str),
    Volume(&'a str),
    /// Any other kind of object (`service`, `node`, `swarm`, …) and its identifier.
    Object(&'a str, &'a str),
    Engine,
}

impl DockerHost {
    /// Validates the configuration (address, TLS files, insecure opt-in) and builds a client without
    /// contacting the engine. The first call negotiates the API version within `connect_timeout`.
    pub fn new(config: HostConfig) -> Result<Self> {
        if config.name.trim().is_empty() {
            return Err(Error::invalid("name", "must not be empty"));
        }
        crate::discovery::check_name("name", &config.name)?;
        if config.connect_timeout.is_zero() {
            return Err(Error::invalid("connect_timeout", "must be positive"));
        }
        if config.request_timeout.is_zero() {
            return Err(Error::invalid("request_timeout", "must be positive"));
        }
        let endpoint = parse_address("address", &config.address, config.tls.is_some())?;
        match (&endpoint, &config.tls) {
            (Endpoint::Unix(_), Some(_)) => {
                return Err(Error::invalid("tls", "TLS does not apply to a unix socket address"));
            }
            (Endpoint::Tcp { .. }, Some(tls)) => {
                check_pem("tls.ca", &tls.ca, "CERTIFICATE")?;
                check_pem("tls.cert", &tls.cert, "CERTIFICATE")?;
                check_pem("tls.key", &tls.key, "PRIVATE KEY")?;
            }
            (Endpoint::Tcp { host, .. }, None) => {
                if !is_loopback(host) && !config.insecure {
                    return Err(Error::Insecure { field: "address".into(), address: config.address.clone() });
                }
            }
            (Endpoint::Unix(_), None) => {}
        }
        Ok(DockerHost { inner: Arc::new(Inner { config, endpoint, client: OnceCell::new() }) })
    }

    /// [`DockerHost::new`], then a ping: fails with `engine_unreachable`, `tls` or `timeout` when the
    /// engine cannot be used.
    pub async fn connect(config: HostConfig) -> Result<Self> {
        let host = Self::new(config)?;
        host.ping().await?;
        Ok(host)
    }

    /// [`HostConfig::from_env`] then [`DockerHost::connect`].
    pub async fn from_env(name: impl Into<String>) -> Result<Self> {
        Self::connect(HostConfig::from_env(name)?).await
    }

    /// The configuration this host was built from.
    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    /// The underlying bollard client (API version already negotiated), for calls dockfleet does not
    /// wrap. Used by the benchmarks as the "raw bollard" baseline.
    pub async fn bollard(&self) -> Result<&Docker> {
        self.client().await
    }

    /// Builds the bollard client for the validated endpoint over dockfleet's pooled transport. This
    /// happens on first contact, so a fleet loads even while one of its engines is down.
    fn build_client(&self) -> Result<Docker> {
        let config = &self.inner.config;
        let timeout_secs = whole_seconds(config.request_timeout);
        let (transport, authority) = match (&self.inner.endpoint, &config.tls) {
            (Endpoint::Unix(path), _) => {
                if !path.exists() {
                    return Err(Error::EngineUnreachable {
                        host: config.name.clone(),
                        message: format!("no socket at {}", path.display()),
                        source: None,
                    });
                }
                (Transport::unix(path), "localhost".to_string())
            }
            (Endpoint::Tcp { host, port }, Some(tls)) => {
                (Transport::https(config.connect_timeout, tls, &config.name)?, format!("{}:{port}", bracket(host)))
            }
            (Endpoint::Tcp { host, port }, None) => {
                (Transport::http(config.connect_timeout), format!("{}:{port}", bracket(host)))
            }
        };
        let address = format!("{}://{authority}", transport.scheme());
        let transport = Arc::new(transport);
        Docker::connect_with_custom_transport(
            move |req| transport.request(req),
            Some(address),
            timeout_secs,
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|e| Error::Internal(format!("building the engine client: {e}")))
    }

    async fn client(&self) -> Result<&Docker> {
        let inner = &self.inner;
        inner
            .client
            .get_or_try_init(|| async {
                let docker = self.build_client()?;
                let fut = docker.negotiate_version();
                let docker = match tokio::time::timeout(inner.config.connect_timeout, fut).await {
                    Ok(r) => r.map_err(|e| self.first_contact_err(e))?,
                    Err(_) => {
                        return Err(Error::Timeout {
                            host: inner.config.name.clone(),
                            operation: "connect".into(),
                            after: inner.config.connect_timeout,
                        })
                    }
                };
                let v = docker.client_version();
                tracing::debug!(host = %inner.config.name, api = %v, "negotiated API version");
                Ok((docker, v.to_string()))
            })
            .await
            .map(|(d, _)| d)
    }

    /// Maps a failure of the first request. With TLS 1.3 an engine that rejects the client certificate
    /// does so after the client finished its handshake, and hyper's connection task may swallow the alert
    /// and report only that the connection closed; on a TLS host's first contact that is a TLS error.
    fn first_contact_err(&self, e: BollardError) -> Error {
        let mapped = self.map_err(e, Subject::Engine, "connect");
        match mapped {
            Error::EngineUnreachable { host, message, source }
                if self.inner.config.tls.is_some() && closed_after_connect(&message) =>
            {
                Error::Tls {
                    target: host,
                    message: format!(
                        "the engine closed the connection right after the TLS handshake: it most likely rejected \
                         our client certificate ({message})"
                    ),
                    source,
                }
            }
            other => other,
        }
    }

    fn api_version(&self) -> String {
        self.inner.client.get().map(|(_, v)| v.clone()).unwrap_or_default()
    }

    /// Maps an error of a call dockfleet makes through [`DockerHost::bollard`] itself (Swarm mode's
    /// services, tasks and nodes): `not_found` names `kind` and `id`.
    pub(crate) fn object_err(&self, e: BollardError, kind: &str, id: &str, operation: &str) -> Error {
        self.map_err(e, Subject::Object(kind, id), operation)
    }

    fn map_err(&self, e: BollardError, subject: Subject<'_>, operation: &str) -> Error {
        let host = self.inner.config.name.clone();
        match e {
            BollardError::DockerResponseServerError { status_code, message } => match status_code {
                // Starting a container whose network is gone: the network is what is missing.
                404 if message.starts_with("network ") && message.ends_with(" not found") => {
                    let id = message["network ".len()..message.len() - " not found".len()].to_string();
                    Error::NotFound { kind: "network".into(), id, host, message }
                }
                404 => {
                    let (kind, id) = match subject {
                        Subject::Container(id) => ("container", id),
                        Subject::Image(id) => ("image", id),
                        Subject::Network(id) => ("network", id),
                        Subject::Volume(id) => ("volume", id),
                        Subject::Object(kind, id) => (kind, id),
                        Subject::Engine => ("object", ""),
                    };
                    Error::NotFound { kind: kind.into(), id: id.into(), host, message }
                }
                409 => Error::Conflict { host, message },
                // SwarmKit refuses to remove a secret or config a service uses with InvalidArgument,
                // which the engine answers as a 400: it is a conflict with the service.
                400 if message.contains(" is in use by ") => Error::Conflict { host, message },
                400 if message.contains("HTTP request to an HTTPS server") => Error::Tls {
                    target: host,
                    message: "the engine requires TLS; configure tls (ca, cert, key)".into(),
                    source: Some(message.into()),
                },
                _ => Error::Engine { host, status: status_code, message },
            },
            BollardError::RequestTimeoutError => {
                Error::Timeout { host, operation: operation.into(), after: self.inner.config.request_timeout }
            }
            BollardError::DockerStreamError { error } => Error::Engine { host, status: 500, message: error },
            e @ (BollardError::CertPathError { .. }
            | BollardError::CertParseError { .. }
            | BollardError::CertMultipleKeys { .. }
            | BollardError::NoNativeCertsError { .. }
            | BollardError::LoadNativeCertsErrors { .. }) => {
                Error::Tls { target: host, message: e.to_string(), source: Some(Box::new(e)) }
            }
            e @ (BollardError::HyperLegacyError { .. }
            | BollardError::HyperResponseError { .. }
            | BollardError::IOError { .. }
            | BollardError::SocketNotFoundError(_)) => {
                let chain = error_chain_text(&e);
                if looks_like_tls(&chain) {
                    Error::Tls { target: host, message: tls_hint(&chain), source: Some(Box::new(e)) }
                } else if timed_out(&e) {
                    // The connector's `connect_timeout` fired (or the kernel gave up on the handshake):
                    // the same `timeout` the first contact's own limit reports, whichever fires first.
                    let after = self.inner.config.connect_timeout;
                    Error::Timeout { host, operation: format!("{operation} (connect)"), after }
                } else {
                    Error::EngineUnreachable {
                        host,
                        message: format!("{operation}: {chain}"),
                        source: Some(Box::new(e)),
                    }
                }
            }
            other => Error::Engine { host, status: 0, message: other.to_string() },
        }
    }

    /// Checks a pull's or push's reference and credentials; returns the registry the reference names.
    fn check_registry_call<'r>(&self, reference: &'r str, auth: Option<&RegistryAuth>) -> Result<&'r str> {
        crate::host::validate_image_ref("reference", reference)?;
        if let Some(a) = auth {
            a.validate("options.auth")?;
        }
        Ok(crate::registry::registry_of(reference))
    }

    /// Maps an error of a pull or push: a registry's refusal is `unauthorized`, an image it lacks
    /// `not_found` (the engine passes either on as a 500 or in its progress stream).
    fn registry_err(&self, e: BollardError, registry: &str, reference: &str, operation: &str) -> Error {
        let text = match &e {
            BollardError::DockerResponseServerError { message, .. } => message.clone(),
            BollardError::DockerStreamError { error } => error.clone(),
            _ => return self.map_err(e, Subject::Image(reference), operation),
        };
        let lower = text.to_ascii_lowercase();
        let host = self.inner.config.name.clone();
        if ["no basic auth credentials", "unauthorized", "authentication required", "denied:"]
            .iter()
            .any(|w| lower.contains(w))
        {
            Error::Unauthorized { host, registry: registry.to_string(), message: text }
        } else if lower.contains("manifest unknown") || lower.contains("not found: manifest") {
            Error::NotFound { kind: "image".into(), id: reference.to_string(), host, message: text }
        } else {
            self.map_err(e, Subject::Image(reference), operation)
        }
    }

    fn stream_err<'a>(&'a self, subject: Subject<'a>, operation: &'static str) -> impl Fn(BollardError) -> Error + 'a {
        move |e| self.map_err(e, subject, operation)
    }
}

/// Credentials as the engine's `X-Registry-Auth` header carries them.
pub(crate) fn credentials(a: &RegistryAuth) -> bollard::auth::DockerCredentials {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    bollard::auth::DockerCredentials {
        username: some(&a.username),
        password: some(&a.password),
        serveraddress: some(&a.server),
        identitytoken: a.identity_token.clone(),
        ..Default::default()
    }
}

/// A progress line's byte counts, when it has them.
fn progress_of(p: Option<bm::ProgressDetail>) -> (Option<u64>, Option<u64>) {
    let p = p.unwrap_or_default();
    let n = |v: Option<i64>| v.filter(|v| *v >= 0).map(|v| v as u64);
    (n(p.current), n(p.total))
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn error_chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for s in crate::error::chain(e) {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
    }
    parts.join(": ")
}

/// Whether an error's chain holds an I/O error of kind `TimedOut`: how hyper's connector reports that a
/// TCP connect took longer than its timeout.
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    crate::error::chain(e)
        .any(|s| s.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut))
}

/// Whether an error chain says the connection was closed or dropped after it was established (as
/// opposed to refused, unroutable or timed out).
fn closed_after_connect(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    ["connection was not ready", "canceled", "connection closed", "connection reset", "broken pipe", "unexpected eof"]
        .iter()
        .any(|k| t.contains(k))
        && !t.contains("connection refused")
}

fn looks_like_tls(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    ["certificate", "tls", "handshake", "unknownissuer", "alert", "corrupt message", "invalidcontenttype"]
        .iter()
        .any(|k| t.contains(k))
}

fn tls_hint(chain: &str) -> String {
    let t = chain.to_ascii_lowercase();
    if t.contains("unknownissuer") || t.contains("unknown issuer") {
        format!("the engine's certificate is not signed by the configured CA ({chain})")
    } else if t.contains("corrupt message") || t.contains("invalidcontenttype") {
        format!("the engine did not answer TLS; is it a plain TCP port? ({chain})")
    } else if t.contains("alert") {
        format!("the engine rejected our client certificate ({chain})")
    } else {
        chain.to_string()
    }
}

fn nanos_to_docker_time(n: i64) -> String {
    format!("{}.{:09}", n.div_euclid(1_000_000_000), n.rem_euclid(1_000_000_000))
}

fn label_map(labels: Option<Vec<String>>) -> BTreeMap<String, String> {
    labels
        .unwrap_or_default()
        .into_iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l, String::new()),
        })
        .collect()
}

fn ports_from_map(map: Option<bm::PortMap>) -> Vec<PortMapping> {
    let mut out = Vec::new();
    for (key, bindings) in map.unwrap_or_default() {
        let Some((container_port, proto)) = port_key(&key) else { continue };
        match bindings {
            Some(bs) if !bs.is_empty() => {
                for b in bs {
                    out.push(PortMapping {
                        container_port,
                        host_port: b.host_port.and_then(|p| p.parse().ok()),
                        protocol: proto.to_string(),
                        host_ip: b.host_ip.filter(|s| !s.is_empty()),
                    });
                }
            }
            _ => out.push(PortMapping { container_port, host_port: None, protocol: proto.to_string(), host_ip: None }),
        }
    }
    PortMapping::order(&mut out);
    out
}

/// An engine's port key, `80/tcp` (`80` alone is TCP): the port and the protocol.
fn port_key(key: &str) -> Option<(u16, &str)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    Some((port.parse().ok()?, proto))
}

/// A container config's exposed ports (`80/tcp`, `53/udp`), unbound, in [`PortMapping::order`].
fn exposed_ports(keys: Vec<String>) -> Vec<PortMapping> {
    let mut out: Vec<PortMapping> = keys
        .iter()
        .filter_map(|key| {
            let (container_port, proto) = port_key(key)?;
            Some(PortMapping { container_port, host_port: None, protocol: proto.into(), host_ip: None })
        })
        .collect();
    PortMapping::order(&mut out);
    out
}

/// A container list's ports, in the same order as [`ports_from_map`]'s.
fn ports_from_list(ports: Vec<bm::PortSummary>) -> Vec<PortMapping> {
    let mut out: Vec<PortMapping> = ports
        .into_iter()
        .map(|p| PortMapping {
            container_port: p.private_port,
            host_port: p.public_port,
            protocol: p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into()),
            host_ip: p.ip.filter(|s| !s.is_empty()),
        })
        .collect();
    PortMapping::order(&mut out);
    out
}

pub(crate) fn volume_summary(v: bm::Volume) -> VolumeSummary {
    VolumeSummary {
        name: v.name,
        driver: v.driver,
        mountpoint: v.mountpoint,
        labels: v.labels.into_iter().collect(),
        driver_opts: v.options.into_iter().collect(),
    }
}

/// A network as the engine lists it.
pub(crate) fn network_summary(n: bm::Network) -> NetworkSummary {
    NetworkSummary {
        id: n.id.unwrap_or_default(),
        name: n.name.unwrap_or_default(),
        driver: n.driver.unwrap_or_default(),
        labels: n.labels.unwrap_or_default().into_iter().collect(),
        driver_opts: n.options.unwrap_or_default().into_iter().collect(),
        internal: n.internal.unwrap_or_default(),
        attachable: n.attachable.unwrap_or_default(),
        enable_ipv6: n.enable_ipv6.unwrap_or_default(),
        ipam: n
            .ipam
            .and_then(|i| i.config)
            .unwrap_or_default()
            .into_iter()
            .map(|c| IpamPool {
                subnet: c.subnet.unwrap_or_default(),
                ip_range: c.ip_range.filter(|r| !r.is_empty()),
                gateway: c.gateway.filter(|g| !g.is_empty()),
                aux_addresses: c.auxiliary_addresses.unwrap_or_default().into_iter().collect(),
            })
            .collect(),
    }
}

/// The engine's request for a network `name` with `options`; `driver` when the options name none.
pub(crate) fn network_request(name: &str, options: &NetworkOptions, driver: &str) -> bm::NetworkCreateRequest {
    let pools: Vec<bm::IpamConfig> = options
        .ipam
        .iter()
        .map(|p| bm::IpamConfig {
            subnet: Some(p.subnet.clone()),
            ip_range: p.ip_range.clone(),
            gateway: p.gateway.clone(),
            auxiliary_addresses: (!p.aux_addresses.is_empty()).then(|| p.aux_addresses.clone().into_iter().collect()),
        })
        .collect();
    bm::NetworkCreateRequest {
        name: name.to_string(),
        driver: Some(options.driver.clone().unwrap_or_else(|| driver.to_string())),
        internal: Some(options.internal),
        attachable: Some(options.attachable),
        enable_ipv6: Some(options.enable_ipv6),
        ipam: (!pools.is_empty()).then(|| bm::Ipam { config: Some(pools), ..Default::default() }),
        options: Some(options.driver_opts.clone().into_iter().collect()),
        labels: Some(options.labels.clone().into_iter().collect()),
        ..Default::default()
    }
}

fn create_body(spec: &ContainerSpec) -> bm::ContainerCreateBody {
    let mut exposed = Vec::new();
    let mut bindings: bm::PortMap = HashMap::new();
    for p in &spec.ports {
        let key = format!("{}/{}", p.container_port, p.protocol);
        if !exposed.contains(&key) {
            exposed.push(key.clone());
        }
        if let Some(hp) = p.host_port {
            bindings.entry(key).or_insert_with(|| Some(Vec::new())).get_or_insert_with(Vec::new).push(
                bm::PortBinding {
                    host_ip: p.host_ip.clone(),
                    host_port: Some(if hp == 0 { String::new() } else { hp.to_string() }),
                },
            );
        }
    }
    let binds: Vec<String> = spec.mounts.iter().map(Mount::bind_entry).collect();
    let restart_policy = spec.restart_policy.as_ref().map(|r| bm::RestartPolicy {
        name: Some(match r.name.as_str() {
            "always" => bm::RestartPolicyNameEnum::ALWAYS,
            "unless-stopped" => bm::RestartPolicyNameEnum::UNLESS_STOPPED,
            "on-failure" => bm::RestartPolicyNameEnum::ON_FAILURE,
            _ => bm::RestartPolicyNameEnum::NO,
        }),
        maximum_retry_count: r.max_retries.map(i64::from),
    });
    // Validated before: every entry reads. `systempaths=unconfined` is no engine option but empty
    // masked and read-only path lists, as the docker CLI sends it.
    let opts = spec.security_opt.iter().filter_map(|o| crate::host::SecurityOpt::parse("security_opt", o).ok());
    let system_paths = opts.clone().any(|o| o == crate::host::SecurityOpt::SystemPaths);
    let security_opt: Vec<String> = opts.filter_map(|o| o.for_engine()).collect();
    let host_config = bm::HostConfig {
        binds: (!binds.is_empty()).then_some(binds),
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        restart_policy,
        nano_cpus: spec.cpus.map(|c| (c * 1e9).round() as i64),
        memory: spec.memory_bytes.map(|m| m.min(i64::MAX as u64) as i64),
        pids_limit: spec.pids_limit,
        cpu_shares: spec.cpu_shares.map(|n| n as i64),
        cpuset_cpus: spec.cpuset_cpus.clone(),
        memory_swap: spec.memory_swap_bytes,
        memory_swappiness: spec.memory_swappiness.map(i64::from),
        oom_kill_disable: spec.oom_kill_disable.then_some(true),
        oom_score_adj: spec.oom_score_adj.map(i64::from),
        runtime: spec.runtime.clone(),
        group_add: (!spec.group_add.is_empty()).then(|| spec.group_add.clone()),
        network_mode: spec.network.clone(),
        pid_mode: spec.pid.clone(),
        ipc_mode: spec.ipc.clone(),
        privileged: spec.privileged.then_some(true),
        // Validated before: every entry reads.
        devices: (!spec.devices.is_empty()).then(|| {
            spec.devices
                .iter()
                .filter_map(|d| crate::host::Device::parse("devices", d).ok())
                .map(|d| bm::DeviceMapping {
                    path_on_host: Some(d.host.into()),
                    path_in_container: Some(d.container.into()),
                    cgroup_permissions: Some(d.permissions.into()),
                })
                .collect()
        }),
        extra_hosts: (!spec.extra_hosts.is_empty()).then(|| spec.extra_hosts.clone()),
        init: spec.init,
        readonly_rootfs: spec.read_only.then_some(true),
        security_opt: (!security_opt.is_empty()).then_some(security_opt),
        masked_paths: system_paths.then(Vec::new),
        readonly_paths: system_paths.then(Vec::new),
        cap_add: (!spec.cap_add.is_empty()).then(|| spec.cap_add.clone()),
        cap_drop: (!spec.cap_drop.is_empty()).then(|| spec.cap_drop.clone()),
        log_config: spec.logging.as_ref().map(|l| bm::HostConfigLogConfig {
            typ: (!l.driver.is_empty()).then(|| l.driver.clone()),
            config: (!l.options.is_empty()).then(|| l.options.clone().into_iter().collect()),
        }),
        ulimits: (!spec.ulimits.is_empty()).then(|| spec.ulimits.iter().map(ulimit).collect()),
        sysctls: (!spec.sysctls.is_empty()).then(|| spec.sysctls.clone().into_iter().collect()),
        shm_size: spec.shm_size.map(|s| s as i64),
        dns: (!spec.dns.is_empty()).then(|| spec.dns.clone()),
        dns_search: (!spec.dns_search.is_empty()).then(|| spec.dns_search.clone()),
        dns_options: (!spec.dns_opt.is_empty()).then(|| spec.dns_opt.clone()),
        tmpfs: (!spec.tmpfs.is_empty()).then(|| {
            spec.tmpfs.iter().map(|t| t.split_once(':').unwrap_or((t, ""))).map(|(p, o)| (p.into(), o.into())).collect()
        }),
        ..Default::default()
    };
    // The engine (before API 1.44) takes one network's endpoint at create; further networks are
    // joined by `create_container` before the start.
    let networking_config = spec
        .network
        .as_ref()
        .filter(|_| !spec.network_aliases.is_empty())
        .map(|n| bm::NetworkingConfig { endpoints_config: Some(HashMap::from([(n.clone(), endpoint(spec))])) });
    let dur = |d: Option<Duration>| d.map(|d| d.as_nanos().min(i64::MAX as u128) as i64);
    bm::ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: (!spec.command.is_empty()).then(|| spec.command.clone()),
        entrypoint: spec.entrypoint.clone(),
        env: (!spec.env.is_empty()).then(|| spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: (!spec.labels.is_empty()).then(|| spec.labels.clone().into_iter().collect()),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        healthcheck: spec.healthcheck.as_ref().map(|h| bm::HealthConfig {
            test: Some(h.test.clone()),
            interval: dur(h.interval),
            timeout: dur(h.timeout),
            retries: h.retries.map(i64::from),
            start_period: dur(h.start_period),
            start_interval: None,
        }),
        hostname: spec.hostname.clone(),
        working_dir: spec.working_dir.clone(),
        user: spec.user.clone(),
        stop_timeout: spec.stop_timeout.map(i64::from),
        stop_signal: spec.stop_signal.clone(),
        tty: spec.tty.then_some(true),
        open_stdin: spec.stdin_open.then_some(true),
        host_config: Some(host_config),
        networking_config,
        ..Default::default()
    }
}

/// The engine's form of a ulimit (Swarm's too).
pub(crate) fn ulimit(u: &crate::host::Ulimit) -> bm::ResourcesUlimits {
    bm::ResourcesUlimits { name: Some(u.name.clone()), soft: Some(u.soft), hard: Some(u.hard) }
}

/// The endpoint settings of each of a container's user-defined networks: its aliases.
fn endpoint(spec: &ContainerSpec) -> bm::EndpointSettings {
    bm::EndpointSettings {
        aliases: (!spec.network_aliases.is_empty()).then(|| spec.network_aliases.clone()),
        ..Default::default()
    }
}

fn log_line(o: bollard::container::LogOutput) -> LogLine {
    use bollard::container::LogOutput as L;
    let (stream, message) = match o {
        L::StdOut { message } => ("stdout", message),
        L::StdErr { message } => ("stderr", message),
        L::StdIn { message } => ("stdin", message),
        L::Console { message } => ("console", message),
    };
    LogLine { stream: stream.into(), message: String::from_utf8_lossy(&message).into_owned() }
}

fn tar_directory(dir: &Path) -> Result<Bytes> {
    let io = |e: std::io::Error| Error::Io { path: dir.display().to_string(), source: e };
    if !dir.is_dir() {
        return Err(Error::invalid("context_dir", format!("{} is not a directory", dir.display())));
    }
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.append_dir_all(".", dir).map_err(io)?;
    Ok(Bytes::from(builder.into_inner().map_err(io)?))
}

#[async_trait]
impl Host for DockerHost {
    fn as_docker(&self) -> Option<&DockerHost> {
        Some(self)
    }

    fn name(&self) -> &str {
        &self.inner.config.name
    }

    fn address(&self) -> &str {
        &self.inner.config.address
    }

    fn labels(&self) -> &BTreeMap<String, String> {
        &self.inner.config.labels
    }

    async fn ping(&self) -> Result<Ping> {
        let docker = self.client().await?;
        let start = Instant::now();
        docker.ping().await.map_err(|e| self.map_err(e, Subject::Engine, "ping"))?;
        let latency = start.elapsed();
        let api_version = self.api_version();
        Ok(Ping { latency, api_version })
    }

    async fn info(&self) -> Result<HostInfo> {
        let docker = self.client().await?;
        let i = docker.info().await.map_err(|e| self.map_err(e, Subject::Engine, "info"))?;
        let n = |v: Option<i64>| v.unwrap_or(0).max(0) as u32;
        let mut runtimes: Vec<String> = i.runtimes.unwrap_or_default().into_keys().collect();
        runtimes.sort();
        Ok(HostInfo {
            name: i.name.unwrap_or_default(),
            id: i.id.unwrap_or_default(),
            engine_version: i.server_version.unwrap_or_default(),
            api_version: self.api_version(),
            os: i.operating_system.unwrap_or_default(),
            os_type: i.os_type.unwrap_or_default(),
            arch: i.architecture.unwrap_or_default(),
            cpus: n(i.ncpu),
            memory_bytes: i.mem_total.unwrap_or(0).max(0) as u64,
            labels: label_map(i.labels),
            containers: n(i.containers),
            containers_running: n(i.containers_running),
            images: n(i.images),
            storage_driver: i.driver.unwrap_or_default(),
            runtimes,
        })
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        spec.validate()?;
        let docker = self.client().await?;
        let options = qp::CreateContainerOptions { name: spec.name.clone(), platform: String::new() };
        let r = docker
            .create_container(Some(options), create_body(spec))
            .await
            .map_err(|e| self.map_err(e, Subject::Image(&spec.image), "create container"))?;
        for w in &r.warnings {
            tracing::warn!(host = %self.name(), container = %r.id, "engine warning: {w}");
        }
        for n in &spec.extra_networks {
            let request = bm::NetworkConnectRequest { container: r.id.clone(), endpoint_config: Some(endpoint(spec)) };
            if let Err(e) = docker.connect_network(n, request).await {
                let e = self.map_err(e, Subject::Network(n), "connect network");
                let _ = self.remove_container(&r.id, true, false).await;
                return Err(e);
            }
        }
        Ok(r.id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        crate::host::validate_ref("id", id)?;
        let docker = self.client().await?;
        docker.start_container(id, None).await.map_err(|e| self.map_err(e, Subject::Container(id), "start container"))
    }

    async fn stop_container(&self, id: &str, grace: Option<Duration>) -> Result<()> {
        crate::host::validate_ref("id", id)?;
        let docker = self.client().await?;
        let options =
            qp::StopContainerOptions { signal: None, t: grace.map(|g| g.as_secs().min(i32::MAX as u64) as i32) };
        docker
            .stop_container(id, Some(options))
            .await
            .map_err(|e| self.map_err(e, Subject::Container(id), "stop container"))
    }

    async fn kill_container(&self, id: &str, signal: Option<&str>) -> Result<()> {
        crate::host::validate_ref("id", id)?;
        let docker = self.client().await?;
        let options = qp::KillContainerOptions { signal: signal.unwrap_or("SIGKILL").to_string() };
        docker
            .kill_container(id, Some(options))
            .await
            .map_err(|e| self.map_err(e, Subject::Container(id), "kill container"))
    }

    async fn rename_container(&self, id: &str, name: &str) -> Result<()> {
        crate::host::validate_ref("id", id)?;
        crate::host::validate_name("name", name)?;
        let docker = self.client().await?;
        let options = qp::RenameContainerOptions { name: name.to_string() };
        docker
            .rename_container(id, options)
            .await
            .map_err(|e| self.map_err(e, Subject::Container(id), "rename container"))
    }

    async fn remove_container(&self, id: &str, force: bool, volumes: bool) -> Result<()> {
        crate::host::validate_ref("id", id)?;
        let docker = self.client().await?;
        let options = qp::RemoveContainerOptions { v: volumes, force, link: false };
        docker
            .remove_container(id, Some(options))
            .await
            .map_err(|e| self.map_err(e, Subject::Container(id), "remove container"))
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerDetails> {
        crate::host::validate_ref("id", id)?;
        let docker = self.client().await?;
        let c = docker
            .inspect_container(id, None)
            .await
            .map_err(|e| self.map_err(e, Subject::Container(id), "inspect container"))?;
        let st = c.state.unwrap_or_default();
        let config = c.config.unwrap_or_default();
        let net = c.network_settings.unwrap_or_default();
        let host_config = c.host_config.unwrap_or_default();
        let privileged = host_config.privileged.unwrap_or(false);
        Ok(ContainerDetails {
            id: c.id.unwrap_or_default(),
            name: c.name.unwrap_or_default().trim_start_matches('/').to_string(),
            image: config.image.unwrap_or_default(),
            image_id: c.image.unwrap_or_default(),
            state: ContainerState {
                status: st.status.map(|s| s.to_string()).unwrap_or_default(),
                running: st.running.unwrap_or(false),
                exit_code: st.exit_code.unwrap_or(0),
                pid: st.pid.unwrap_or(0),
                started_at: st.started_at.unwrap_or_default(),
                finished_at: st.finished_at.unwrap_or_default(),
                health: st
                    .health
                    .and_then(|h| h.status)
                    .map(|s| s.to_string())
                    .filter(|s| !s.is_empty() && s != "none"),
                oom_killed: st.oom_killed.unwrap_or(false),
            },
            labels: config.labels.unwrap_or_default().into_iter().collect(),
            ports: ports_from_map(net.ports).into_iter().filter(|p| p.host_port.is_some()).collect(),
            networks: net
                .networks
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.ip_address.unwrap_or_default()))
                .collect(),
            restart_count: c.restart_count.unwrap_or(0),
            created: c.created.unwrap_or_default(),
            privileged,
            security_opt: host_config.security_opt.unwrap_or_default(),
            network_mode: host_config.network_mode.unwrap_or_default(),
            exposed_ports: exposed_ports(config.exposed_ports.unwrap_or_default()),
        })
    }

    async fn list_containers(&self, options: &ListContainersOptions) -> Result<Vec<ContainerSummary>> {
        let docker = self.client().await?;
        let mut filters: HashMap<String, Vec<String>> = HashMap::new();
        if !options.labels.is_empty() {
            filters.insert("label".into(), options.labels.clone());
        }
        if let Some(n) = &options.name {
            filters.insert("name".into(), vec![n.clone()]);
        }
        let q = qp::ListContainersOptions { all: options.all, limit: None, size: false, filters: Some(filters) };
        let list =
            docker.list_containers(Some(q)).await.map_err(|e| self.map_err(e, Subject::Engine, "list containers"))?;
        Ok(list
            .into_iter()
            .map(|c| ContainerSummary {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                image: c.image.unwrap_or_default(),
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                status: c.status.unwrap_or_default(),
                labels: c.labels.unwrap_or_default().into_iter().collect(),
                ports: ports_from_list(c.ports.unwrap_or_default()),
                created: c.created.unwrap_or(0),
                network_mode: c.host_config.and_then(|h| h.network_mode).unwrap_or_default(),
            })
            .collect())
    }

    fn logs(&self, id: &str, options: &LogOptions) -> ResultStream<LogLine> {
        let this = self.clone();
        let id = id.to_string();
        let q = qp::LogsOptions {
            follow: options.follow,
            stdout: options.stdout,
            stderr: options.stderr,
            since: options.since.unwrap_or(0).clamp(0, i32::MAX as i64) as i32,
            until: 0,
            timestamps: options.timestamps,
            tail: options.tail.map(|t| t.to_string()).unwrap_or_else(|| "all".into()),
        };
        Box::pin(async_stream::try_stream! {
            crate::host::validate_ref("id", &id)?;
            let docker = this.client().await?;
            let s = docker.logs(&id, Some(q)).map_err(this.stream_err(Subject::Container(&id), "logs"));
            futures::pin_mut!(s);
            while let Some(item) = s.next().await {
                yield log_line(item?);
            }
        })
    }

    async fn wait_container(&self, id: &str) -> Result<i64> {
        crate::host::validate_ref("id", id)?;
        let docker = self.client().await?;
        let q = qp::WaitContainerOptions { condition: "not-running".into() };
        let mut s = docker.wait_container(id, Some(q));
        match s.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(self.map_err(e, Subject::Container(id), "wait container")),
            None => Err(Error::Engine {
                host: self.name().into(),
                status: 0,
                message: "wait ended without a status".into(),
            }),
        }
    }

    async fn exec(&self, id: &str, command: &[String], options: &ExecOptions) -> Result<ExecOutput> {
        crate::host::validate_ref("id", id)?;
        if command.is_empty() {
            return Err(Error::invalid("command", "must not be empty"));
        }
        let docker = self.client().await?;
        let config = bollard::exec::CreateExecOptions::<String> {
            cmd: Some(command.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            env: (!options.env.is_empty()).then(|| options.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: options.working_dir.clone(),
            user: options.user.clone(),
            ..Default::default()
        };
        let err = |e| self.map_err(e, Subject::Container(id), "exec");
        let exec = docker.create_exec(id, config).await.map_err(err)?;
        let mut out = ExecOutput::default();
        if let bollard::exec::StartExecResults::Attached { mut output, .. } =
            docker.start_exec(&exec.id, None).await.map_err(err)?
        {
            while let Some(chunk) = output.next().await {
                let line = log_line(chunk.map_err(err)?);
                match line.stream.as_str() {
                    "stderr" => out.stderr.push_str(&line.message),
                    _ => out.stdout.push_str(&line.message),
                }
            }
        }
        let inspect = docker.inspect_exec(&exec.id).await.map_err(err)?;
        out.exit_code = inspect.exit_code.unwrap_or(-1);
        Ok(out)
    }

    fn build_image(&self, context_dir: &Path, options: &BuildOptions) -> ResultStream<BuildEvent> {
        let this = self.clone();
        let dir = context_dir.to_path_buf();
        let options = options.clone();
        Box::pin(async_stream::try_stream! {
            if options.tag.trim().is_empty() {
                Err(Error::invalid("tag", "must not be empty"))?;
            }
            if let Some(t) = &options.target {
                crate::host::validate_name("target", t)?;
            }
            let tar = tokio::task::spawn_blocking(move || tar_directory(&dir))
                .await
                .map_err(|e| Error::Internal(format!("tar task: {e}")))??;
            yield BuildEvent { kind: "context".into(), message: format!("sending {} bytes of build context", tar.len()), image_id: None };
            let docker = this.client().await?;
            let q = qp::BuildImageOptions {
                dockerfile: options.dockerfile.clone().unwrap_or_else(|| "Dockerfile".into()),
                t: Some(options.tag.clone()),
                buildargs: Some(options.build_args.clone().into_iter().collect()),
                labels: Some(options.labels.clone().into_iter().collect()),
                nocache: options.no_cache,
                target: options.target.clone().unwrap_or_default(),
                rm: true,
                forcerm: true,
                ..Default::default()
            };
            let s = docker.build_image(q, None, Some(bollard::body_full(tar)));
            futures::pin_mut!(s);
            while let Some(item) = s.next().await {
                let info = item.map_err(|e| this.map_err(e, Subject::Engine, "build image"))?;
                if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                    Err(Error::Engine { host: this.name().into(), status: 500, message: format!("build failed: {detail}") })?;
                }
                if let Some(text) = info.stream {
                    let text = text.trim_end().to_string();
                    if text.is_empty() {
                        continue;
                    }
                    let kind = if text.starts_with("Step ") { "step" } else { "output" };
                    yield BuildEvent { kind: kind.into(), message: text, image_id: None };
                }
            }
            // The full ID, from the tag (the legacy builder reports only a short one).
            let id = this.inspect_image(&options.tag).await?.id;
            yield BuildEvent { kind: "done".into(), message: format!("built {}", options.tag), image_id: Some(id) };
        })
    }

    async fn list_images(&self) -> Result<Vec<ImageSummary>> {
        let docker = self.client().await?;
        let list = docker
            .list_images(None::<qp::ListImagesOptions>)
            .await
            .map_err(|e| self.map_err(e, Subject::Engine, "list images"))?;
        Ok(list
            .into_iter()
            .map(|i| ImageSummary {
                id: i.id,
                tags: i.repo_tags.into_iter().filter(|t| t != "<none>:<none>").collect(),
                size_bytes: i.size.max(0) as u64,
                created: i.created,
                labels: i.labels.into_iter().collect(),
            })
            .collect())
    }

    async fn inspect_image(&self, reference: &str) -> Result<ImageSummary> {
        crate::host::validate_image_ref("reference", reference)?;
        let docker = self.client().await?;
        let i = docker
            .inspect_image(reference)
            .await
            .map_err(|e| self.map_err(e, Subject::Image(reference), "inspect image"))?;
        Ok(ImageSummary {
            id: i.id.unwrap_or_default(),
            tags: i.repo_tags.unwrap_or_default(),
            size_bytes: i.size.unwrap_or(0).max(0) as u64,
            created: 0,
            labels: i.config.and_then(|c| c.labels).unwrap_or_default().into_iter().collect(),
        })
    }

    async fn remove_image(&self, reference: &str, force: bool) -> Result<()> {
        crate::host::validate_image_ref("reference", reference)?;
        let docker = self.client().await?;
        let q = qp::RemoveImageOptions { force, noprune: false, platforms: None };
        docker
            .remove_image(reference, Some(q), None)
            .await
            .map_err(|e| self.map_err(e, Subject::Image(reference), "remove image"))?;
        Ok(())
    }

    fn pull_image(&self, reference: &str, options: &PullOptions) -> ResultStream<ImageProgress> {
        let this = self.clone();
        let reference = reference.to_string();
        let options = options.clone();
        Box::pin(async_stream::try_stream! {
            let registry = this.check_registry_call(&reference, options.auth.as_ref())?;
            if let Some(p) = &options.platform {
                if p.split('/').count() > 3 || !p.split('/').all(|part| crate::host::validate_name("", part).is_ok()) {
                    Err(Error::invalid("options.platform", format!("{p:?} is not a platform: os[/arch[/variant]]")))?;
                }
            }
            let (repo, tag) = crate::host::split_reference(&reference);
            let docker = this.client().await?;
            let q = qp::CreateImageOptions {
                from_image: Some(repo.to_string()),
                tag: Some(tag.to_string()),
                platform: options.platform.clone().unwrap_or_default(),
                ..Default::default()
            };
            let s = docker.create_image(Some(q), None, options.auth.as_ref().map(credentials));
            futures::pin_mut!(s);
            let mut digest = None;
            while let Some(item) = s.next().await {
                let fail = |e| this.registry_err(e, registry, &reference, "pull image");
                let info = item.map_err(fail)?;
                if let Some(error) = info.error_detail.and_then(|d| d.message) {
                    Err(fail(BollardError::DockerStreamError { error }))?;
                }
                let status = info.status.unwrap_or_default();
                if let Some(d) = status.strip_prefix("Digest: ") {
                    digest = Some(d.trim().to_string());
                }
                let (current, total) = progress_of(info.progress_detail);
                // `Pulling from <repository>` carries the tag where other lines carry a layer.
                let layer = info.id.filter(|_| !status.starts_with("Pulling from ")).unwrap_or_default();
                yield ImageProgress { layer, status, current, total, digest: None, done: false };
            }
            let at = if tag.contains(':') { '@' } else { ':' };
            yield ImageProgress { status: format!("pulled {repo}{at}{tag}"), digest, done: true, ..Default::default() };
        })
    }

    fn push_image(&self, reference: &str, options: &PushOptions) -> ResultStream<ImageProgress> {
        let this = self.clone();
        let reference = reference.to_string();
        let options = options.clone();
        Box::pin(async_stream::try_stream! {
            let registry = this.check_registry_call(&reference, options.auth.as_ref())?;
            if reference.contains('@') {
                Err(Error::invalid("reference", format!("{reference:?}: push a tag, not a digest")))?;
            }
            // The engine reports a missing image only after it started answering.
            this.inspect_image(&reference).await?;
            let (repo, tag) = crate::host::split_reference(&reference);
            let docker = this.client().await?;
            let q = qp::PushImageOptions { tag: Some(tag.to_string()), platform: None };
            let s = docker.push_image(repo, Some(q), options.auth.as_ref().map(credentials));
            futures::pin_mut!(s);
            let mut digest = None;
            while let Some(item) = s.next().await {
                let fail = |e| this.registry_err(e, registry, &reference, "push image");
                let info = item.map_err(fail)?;
                if let Some(error) = info.error_detail.and_then(|d| d.message) {
                    Err(fail(BollardError::DockerStreamError { error }))?;
                }
                let status = info.status.unwrap_or_default();
                // `1: digest: sha256:… size: 943`
                if let Some((_, d)) = status.split_once("digest: ") {
                    digest = d.split_whitespace().next().map(str::to_string);
                }
                let (current, total) = progress_of(info.progress_detail);
                yield ImageProgress { layer: String::new(), status, current, total, digest: None, done: false };
            }
            yield ImageProgress { status: format!("pushed {repo}:{tag}"), digest, done: true, ..Default::default() };
        })
    }

    async fn tag_image(&self, source: &str, target: &str) -> Result<()> {
        crate::host::validate_image_ref("source", source)?;
        crate::host::validate_image_ref("target", target)?;
        if target.contains('@') {
            return Err(Error::invalid("target", format!("{target:?}: a tag cannot be a digest")));
        }
        let (repo, tag) = crate::host::split_reference(target);
        let docker = self.client().await?;
        let q = qp::TagImageOptions { repo: Some(repo.to_string()), tag: Some(tag.to_string()) };
        docker.tag_image(source, Some(q)).await.map_err(|e| self.map_err(e, Subject::Image(source), "tag image"))
    }

    async fn create_network(&self, name: &str, options: &NetworkOptions) -> Result<String> {
        crate::host::validate_name("name", name)?;
        options.validate("options")?;
        let docker = self.client().await?;
        // Engines before API 1.44 create a second network of the same name unless asked not to (a
        // field bollard's request type no longer has), and then refuse the name as ambiguous.
        let q =
            qp::ListNetworksOptions { filters: Some(HashMap::from([("name".to_string(), vec![name.to_string()])])) };
        let same =
            docker.list_networks(Some(q)).await.map_err(|e| self.map_err(e, Subject::Engine, "list networks"))?;
        if same.iter().any(|n| n.name.as_deref() == Some(name)) {
            return Err(Error::Conflict {
                host: self.inner.config.name.clone(),
                message: format!("network with name {name} already exists"),
            });
        }
        let r = docker
            .create_network(network_request(name, options, "bridge"))
            .await
            .map_err(|e| self.map_err(e, Subject::Network(name), "create network"))?;
        Ok(r.id)
    }

    async fn remove_network(&self, name: &str) -> Result<()> {
        crate::host::validate_ref("name", name)?;
        let docker = self.client().await?;
        docker.remove_network(name).await.map_err(|e| self.map_err(e, Subject::Network(name), "remove network"))
    }

    async fn list_networks(&self, labels: &[String]) -> Result<Vec<NetworkSummary>> {
        let docker = self.client().await?;
        let q = qp::ListNetworksOptions { filters: Some(HashMap::from([("label".to_string(), labels.to_vec())])) };
        let list =
            docker.list_networks(Some(q)).await.map_err(|e| self.map_err(e, Subject::Engine, "list networks"))?;
        Ok(list.into_iter().map(network_summary).collect())
    }

    async fn create_volume(&self, name: &str, options: &VolumeOptions) -> Result<VolumeSummary> {
        crate::host::validate_name("name", name)?;
        options.validate("options")?;
        let docker = self.client().await?;
        let req = bm::VolumeCreateRequest {
            name: Some(name.to_string()),
            driver: options.driver.clone(),
            driver_opts: Some(options.driver_opts.clone().into_iter().collect()),
            labels: Some(options.labels.clone().into_iter().collect()),
            ..Default::default()
        };
        let v = docker.create_volume(req).await.map_err(|e| self.map_err(e, Subject::Volume(name), "create volume"))?;
        Ok(volume_summary(v))
    }

    async fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        crate::host::validate_ref("name", name)?;
        let docker = self.client().await?;
        docker
            .remove_volume(name, Some(qp::RemoveVolumeOptions { force }))
            .await
            .map_err(|e| self.map_err(e, Subject::Volume(name), "remove volume"))
    }

    async fn list_volumes(&self, labels: &[String]) -> Result<Vec<VolumeSummary>> {
        let docker = self.client().await?;
        let q = qp::ListVolumesOptions { filters: Some(HashMap::from([("label".to_string(), labels.to_vec())])) };
        let r = docker.list_volumes(Some(q)).await.map_err(|e| self.map_err(e, Subject::Engine, "list volumes"))?;
        Ok(r.volumes.unwrap_or_default().into_iter().map(volume_summary).collect())
    }

    fn export_image(&self, reference: &str) -> ResultStream<Bytes> {
        let this = self.clone();
        let reference = reference.to_string();
        Box::pin(async_stream::try_stream! {
            // Check first: the export endpoint reports a missing image only after headers are sent.
            this.inspect_image(&reference).await?;
            let docker = this.client().await?;
            let s = docker.export_image(&reference).map_err(this.stream_err(Subject::Image(&reference), "export image"));
            futures::pin_mut!(s);
            while let Some(chunk) = s.next().await {
                yield chunk?;
            }
        })
    }

    async fn import_image(&self, archive: ResultStream<Bytes>) -> Result<Vec<String>> {
        let docker = self.client().await?;
        let q = qp::ImportImageOptions { quiet: false, platform: None };
        let s = docker.import_image_stream(q, archive, None);
        futures::pin_mut!(s);
        let mut loaded = Vec::new();
        while let Some(item) = s.next().await {
            let info = item.map_err(|e| self.map_err(e, Subject::Engine, "import image"))?;
            if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                return Err(Error::Engine {
                    host: self.name().into(),
                    status: 500,
                    message: format!("import failed: {detail}"),
                });
            }
            if let Some(text) = info.stream {
                for line in text.lines() {
                    if let Some(r) =
                        line.strip_prefix("Loaded image: ").or_else(|| line.strip_prefix("Loaded image ID: "))
                    {
                        loaded.push(r.trim().to_string());
                    }
                }
            }
        }
        Ok(loaded)
    }

    fn events(&self, options: &EventOptions) -> ResultStream<Event> {
        let this = self.clone();
        // The stream is lazy; without an explicit start, start at the moment of this call so that events
        // between the call and the first poll are replayed by the engine rather than lost. (Assumes the
        // engine's clock is close to ours; pass `since_nanos` from a previous event to resume exactly.)
        let since = options.since_nanos.unwrap_or_else(|| {
            let now = crate::host::now_nanos();
            options.until_nanos.map_or(now, |until| now.min(until))
        });
        let q = qp::EventsOptions {
            since: Some(nanos_to_docker_time(since)),
            until: options.until_nanos.map(nanos_to_docker_time),
            filters: (!options.filters.is_empty()).then(|| options.filters.clone().into_iter().collect()),
        };
        Box::pin(async_stream::try_stream! {
            let docker = this.client().await?;
            let s = docker.events(Some(q)).map_err(this.stream_err(Subject::Engine, "events"));
            futures::pin_mut!(s);
            while let Some(item) = s.next().await {
                let m = item?;
                let actor = m.actor.unwrap_or_default();
                yield Event {
                    host: this.name().to_string(),
                    kind: m.typ.map(|t| t.to_string()).unwrap_or_default(),
                    action: m.action.unwrap_or_default(),
                    id: actor.id.unwrap_or_default(),
                    attributes: actor.attributes.unwrap_or_default().into_iter().collect(),
                    time_nanos: m.time_nano.unwrap_or_else(|| m.time.unwrap_or(0) * 1_000_000_000),
                };
            }
        })
    }

    async fn stats(&self, id: &str) -> Result<Stats> {
        crate::host::validate_ref("id", id)?;
        let docker = self.client().await?;
        let q = qp::StatsOptions { stream: false, one_shot: false };
        let mut s = docker.stats(id, Some(q));
        match s.next().await {
            Some(r) => {
                Ok(crate::stats::from_docker(id, &r.map_err(|e| self.map_err(e, Subject::Container(id), "stats"))?))
            }
            None => Err(Error::Engine {
                host: self.name().into(),
                status: 0,
                message: "stats ended without a sample".into(),
            }),
        }
    }

    fn stats_stream(&self, id: &str) -> ResultStream<Stats> {
        let this = self.clone();
        let id = id.to_string();
        Box::pin(async_stream::try_stream! {
            crate::host::validate_ref("id", &id)?;
            let docker = this.client().await?;
            let q = qp::StatsOptions { stream: true, one_shot: false };
            let s = docker.stats(&id, Some(q)).map_err(this.stream_err(Subject::Container(&id), "stats"));
            futures::pin_mut!(s);
            while let Some(item) = s.next().await {
                yield crate::stats::from_docker(&id, &item?);
            }
        })
    }
}

/// A request timeout in bollard's whole seconds: rounded up so a limit is never shortened, at least 1,
/// and saturating (`Duration::MAX` rounds up past `u64::MAX`, which a plain cast wrapped to 0 seconds:
/// every request timed out at once).
fn whole_seconds(d: Duration) -> u64 {
    u64::try_from(d.as_millis().div_ceil(1000).max(1)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_timeouts_round_up_to_whole_seconds_and_saturate() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(60)), 60);
        assert_eq!(whole_seconds(Duration::MAX), u64::MAX);
    }

    #[test]
    fn published_ports_read_back_ipv4_first() {
        let b = |ip: &str, port: &str| bm::PortBinding { host_ip: Some(ip.into()), host_port: Some(port.into()) };
        let map = bm::PortMap::from([
            ("80/tcp".to_string(), Some(vec![b("::", "32849"), b("0.0.0.0", "32850")])),
            ("53/udp".to_string(), None),
        ]);
        let got: Vec<(u16, Option<u16>, Option<String>)> =
            ports_from_map(Some(map)).into_iter().map(|p| (p.container_port, p.host_port, p.host_ip)).collect();
        assert_eq!(
            got,
            [(53, None, None), (80, Some(32850), Some("0.0.0.0".into())), (80, Some(32849), Some("::".into()))]
        );
    }

    #[test]
    fn addresses_parse_and_fail_with_reasons() {
        assert_eq!(
            parse_address("a", "unix:///var/run/docker.sock", false).unwrap(),
            Endpoint::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            parse_address("a", "tcp://10.0.0.1:2375", false).unwrap(),
            Endpoint::Tcp { host: "10.0.0.1".into(), port: 2375 }
        );
        assert_eq!(
            parse_address("a", "tcp://h.example", true).unwrap(),
            Endpoint::Tcp { host: "h.example".into(), port: 2376 }
        );
        assert_eq!(
            parse_address("a", "tcp://[::1]:99", false).unwrap(),
            Endpoint::Tcp { host: "::1".into(), port: 99 }
        );
        for bad in [
            "10.0.0.1:2375",
            "tcp://",
            "tcp://h:0",
            "tcp://h:99999",
            "tcp://h:x",
            "ssh://h",
            "unix://rel",
            "tcp://h/p",
            "tcp://bad_host",
        ] {
            let e = parse_address("hosts[0].address", bad, false).unwrap_err();
            assert_eq!(e.code(), "invalid_address", "{bad}: {e}");
            assert!(e.to_string().contains("hosts[0].address"), "{e}");
        }
        assert_eq!(parse_address("a", "https://h:1", false).unwrap_err().code(), "invalid_address");
    }

    #[test]
    fn plain_tcp_needs_opt_in_off_loopback() {
        let e = DockerHost::new(HostConfig::new("h", "tcp://10.1.2.3:2375")).unwrap_err();
        assert_eq!(e.code(), "insecure");
        DockerHost::new(HostConfig::new("h", "tcp://127.0.0.1:2375")).unwrap();
        DockerHost::new(HostConfig::new("h", "tcp://localhost:2375")).unwrap();
        DockerHost::new(HostConfig { insecure: true, ..HostConfig::new("h", "tcp://10.1.2.3:2375") }).unwrap();
    }

    #[test]
    fn missing_certificate_names_the_field() {
        let tls = TlsConfig { ca: "/nonexistent/ca.pem".into(), cert: "/x".into(), key: "/y".into() };
        let e =
            DockerHost::new(HostConfig { tls: Some(tls), ..HostConfig::new("h", "tcp://10.1.2.3:2376") }).unwrap_err();
        assert_eq!(e.code(), "invalid_argument");
        assert!(e.to_string().contains("tls.ca"), "{e}");
    }

    #[test]
    fn env_follows_the_docker_cli() {
        let vars = |m: &'static [(&'static str, &'static str)]| {
            move |k: &str| m.iter().find(|(a, _)| *a == k).map(|(_, v)| v.to_string())
        };
        let c = HostConfig::from_vars("e", vars(&[])).unwrap();
        assert_eq!(c.address, "unix:///var/run/docker.sock");
        assert!(c.tls.is_none());
        let c = HostConfig::from_vars(
            "e",
            vars(&[("DOCKER_HOST", "tcp://h:2376"), ("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", "/c")]),
        )
        .unwrap();
        assert_eq!(c.tls.unwrap().ca, PathBuf::from("/c/ca.pem"));
        let c = HostConfig::from_vars("e", vars(&[("DOCKER_TLS_VERIFY", "1"), ("HOME", "/home/u")])).unwrap();
        assert_eq!(c.tls.unwrap().key, PathBuf::from("/home/u/.docker/key.pem"));
        let c = HostConfig::from_vars("e", vars(&[("DOCKER_TLS_VERIFY", "0")])).unwrap();
        assert!(c.tls.is_none());
    }

    #[test]
    fn security_options_process_limits_and_groups_reach_the_engine_in_its_form() {
        let spec = |opts: &[&str]| ContainerSpec {
            security_opt: opts.iter().map(|o| o.to_string()).collect(),
            ..ContainerSpec::new("busybox")
        };
        let h =
            create_body(&spec(&["no-new-privileges:true", "seccomp:unconfined", "label:disable"])).host_config.unwrap();
        assert_eq!(h.security_opt.unwrap(), ["no-new-privileges=true", "seccomp=unconfined", "label=disable"]);
        assert_eq!((h.masked_paths, h.readonly_paths), (None, None), "the engine's paths stay masked");
        let h = create_body(&spec(&["systempaths=unconfined"])).host_config.unwrap();
        assert_eq!((h.security_opt, h.masked_paths, h.readonly_paths), (None, Some(vec![]), Some(vec![])));
        assert_eq!(create_body(&spec(&[])).host_config.unwrap().security_opt, None);
        let limited = ContainerSpec { pids_limit: Some(64), group_add: vec!["1234".into()], ..spec(&[]) };
        let h = create_body(&limited).host_config.unwrap();
        assert_eq!((h.pids_limit, h.group_add), (Some(64), Some(vec!["1234".to_string()])));
        let h = create_body(&spec(&[])).host_config.unwrap();
        assert_eq!((h.pids_limit, h.group_add), (None, None), "the engine's defaults");
    }

    #[test]
    fn docker_time_format() {
        assert_eq!(nanos_to_docker_time(1_500_000_000_123), "1500.000000123");
    }
}
