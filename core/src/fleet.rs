//! [`Fleet`]: a named set of hosts with labels, loaded from a TOML or YAML inventory or built in code,
//! and a concurrent health probe that reports on every host instead of failing as a whole.
//!
//! Inventory format (TOML; the YAML form has the same keys):
//!
//! ```toml
//! [defaults]              # optional, applies to every host
//! connect_timeout_ms = 3000
//! request_timeout_ms = 30000
//!
//! [[hosts]]
//! name = "node-1"
//! address = "tcp://10.0.0.11:2376"
//! tls = { ca = "certs/ca.pem", cert = "certs/cert.pem", key = "certs/key.pem" }   # relative to the file
//! labels = { role = "manager", zone = "a" }
//!
//! [[hosts]]
//! name = "node-2"
//! address = "tcp://127.0.0.1:2375"
//! insecure = false        # plain TCP off loopback needs insecure = true
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::docker::{DockerHost, HostConfig, TlsConfig};
use crate::error::{Error, Result};
use crate::host::{Host, HostInfo};
use crate::registry::RegistryAuth;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct InventoryFile {
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    hosts: Vec<HostEntry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    connect_timeout_ms: Option<u64>,
    request_timeout_ms: Option<u64>,
    insecure: Option<bool>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostEntry {
    name: String,
    address: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    tls: Option<TlsConfig>,
    insecure: Option<bool>,
    connect_timeout_ms: Option<u64>,
    request_timeout_ms: Option<u64>,
}

/// Inventory file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InventoryFormat {
    /// TOML.
    Toml,
    /// YAML.
    Yaml,
}

/// Options of [`Fleet::probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOptions {
    /// Limit for each host's ping and info together (default 5 s).
    pub timeout: Duration,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions { timeout: Duration::from_secs(5) }
    }
}

/// The outcome of probing one host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostStatus {
    /// Host name.
    pub name: String,
    /// Its address.
    pub address: String,
    /// Its fleet labels.
    pub labels: BTreeMap<String, String>,
    /// Whether it answered.
    pub reachable: bool,
    /// Ping round trip, when reachable.
    #[serde(with = "crate::serde_ms::option")]
    pub latency: Option<Duration>,
    /// Capacity and load, when reachable.
    pub info: Option<HostInfo>,
    /// Error code (`engine_unreachable`, `tls`, `timeout`, …) when not reachable.
    pub error_code: Option<String>,
    /// Error message when not reachable.
    pub error: Option<String>,
}

/// A named set of hosts. Cheap to clone (hosts are shared).
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    hosts: Vec<Arc<dyn Host>>,
    registry_auths: BTreeMap<String, RegistryAuth>,
}

impl Fleet {
    /// An empty fleet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fleet of already built hosts; names must be unique.
    pub fn from_hosts(hosts: Vec<Arc<dyn Host>>) -> Result<Self> {
        let mut f = Fleet::new();
        for h in hosts {
            f.add(h)?;
        }
        Ok(f)
    }

    /// Adds a host; fails with `invalid_argument` if the name is taken.
    pub fn add(&mut self, host: Arc<dyn Host>) -> Result<()> {
        if self.hosts.iter().any(|h| h.name() == host.name()) {
            return Err(Error::invalid(
                format!("hosts.{}", host.name()),
                "a host with this name is already in the fleet",
            ));
        }
        self.hosts.push(host);
        Ok(())
    }

    /// Builds a [`DockerHost`] from `config` (validated, not contacted) and adds it.
    pub fn add_docker(&mut self, config: HostConfig) -> Result<Arc<dyn Host>> {
        let host: Arc<dyn Host> = Arc::new(DockerHost::new(config)?);
        self.add(host.clone())?;
        Ok(host)
    }

    /// Credentials for a registry (`auth.server`), which hosts use when a service's `pull_policy` has
    /// them pull from it; they replace any given before for the same registry. Checked, not contacted.
    pub fn set_registry_auth(&mut self, auth: RegistryAuth) -> Result<()> {
        auth.validate("auth")?;
        self.registry_auths.insert(auth.server.clone(), auth);
        Ok(())
    }

    /// The credentials for `image`'s registry: the fleet's, or else those `docker login` keeps (which
    /// may run a credential helper). A docker config that cannot be read is logged and passed over: a
    /// public image still pulls without credentials, and a private one fails with `unauthorized`.
    pub(crate) async fn registry_auth_for(&self, image: &str) -> Option<RegistryAuth> {
        let server = crate::registry::registry_of(image).to_string();
        if let Some(auth) = self.registry_auths.get(&server) {
            return Some(auth.clone());
        }
        let found = tokio::task::spawn_blocking(move || crate::registry::docker_config_auth(&server, None)).await;
        match found {
            Ok(Ok(auth)) => auth,
            Ok(Err(e)) => {
                tracing::warn!(%image, error = %e, "docker's config gives no credentials; pulling without");
                None
            }
            Err(e) => {
                tracing::warn!(%image, error = %e, "reading docker's config failed; pulling without credentials");
                None
            }
        }
    }

    /// Removes a host by name and returns it.
    pub fn remove(&mut self, name: &str) -> Result<Arc<dyn Host>> {
        let i = self.index(name)?;
        Ok(self.hosts.remove(i))
    }

    fn index(&self, name: &str) -> Result<usize> {
        self.hosts.iter().position(|h| h.name() == name).ok_or_else(|| Error::NotFound {
            kind: "host".into(),
            id: name.into(),
            host: String::new(),
            message: format!("no host named {name:?} in the fleet"),
        })
    }

    /// Loads an inventory file; `.toml`, `.yaml` and `.yml` are recognised by extension. Relative TLS
    /// paths are resolved against the file's directory. Hosts are validated but not contacted.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Io { path: path.display().to_string(), source: e })?;
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => InventoryFormat::Toml,
            Some("yaml") | Some("yml") => InventoryFormat::Yaml,
            _ => {
                return Err(Error::invalid(
                    "path",
                    format!("{}: unknown inventory format (use .toml, .yaml or .yml)", path.display()),
                ))
            }
        };
        Self::parse(&text, format, path.parent())
    }

    /// Parses inventory text. Relative TLS paths are resolved against `base_dir` when given.
    pub fn parse(text: &str, format: InventoryFormat, base_dir: Option<&Path>) -> Result<Self> {
        let file: InventoryFile = match format {
            InventoryFormat::Toml => {
                let de = toml::Deserializer::parse(text).map_err(|e| Error::invalid("inventory", e.to_string()))?;
                serde_path_to_error::deserialize(de)
                    .map_err(|e| path_error(e.path().to_string(), e.inner().to_string()))?
            }
            InventoryFormat::Yaml => {
                let de = serde_yaml_ng::Deserializer::from_str(text);
                serde_path_to_error::deserialize(de)
                    .map_err(|e| path_error(e.path().to_string(), e.inner().to_string()))?
            }
        };
        let mut fleet = Fleet::new();
        for (i, h) in file.hosts.into_iter().enumerate() {
            let field = format!("hosts[{i}]");
            let mut labels = file.defaults.labels.clone();
            labels.extend(h.labels);
            let resolve = |p: PathBuf| match base_dir {
                Some(b) if p.is_relative() => b.join(p),
                _ => p,
            };
            let ms = |v: Option<u64>, d: Option<u64>, name: &str| -> Result<Option<Duration>> {
                match v.or(d) {
                    Some(0) => Err(Error::invalid(format!("{field}.{name}"), "must be positive")),
                    other => Ok(other.map(Duration::from_millis)),
                }
            };
            let mut config = HostConfig {
                name: h.name,
                address: h.address,
                labels,
                tls: h.tls.map(|t| TlsConfig { ca: resolve(t.ca), cert: resolve(t.cert), key: resolve(t.key) }),
                insecure: h.insecure.or(file.defaults.insecure).unwrap_or(false),
                ..Default::default()
            };
            if let Some(d) = ms(h.connect_timeout_ms, file.defaults.connect_timeout_ms, "connect_timeout_ms")? {
                config.connect_timeout = d;
            }
            if let Some(d) = ms(h.request_timeout_ms, file.defaults.request_timeout_ms, "request_timeout_ms")? {
                config.request_timeout = d;
            }
            let host = DockerHost::new(config).map_err(|e| e.with_field_prefix(&field))?;
            fleet.add(Arc::new(host)).map_err(|_| Error::invalid(format!("{field}.name"), "duplicate host name"))?;
        }
        Ok(fleet)
    }

    /// All hosts, in inventory order.
    pub fn hosts(&self) -> &[Arc<dyn Host>] {
        &self.hosts
    }

    /// Host names, in inventory order.
    pub fn names(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.name().to_string()).collect()
    }

    /// One host by name; `not_found` if absent.
    pub fn host(&self, name: &str) -> Result<Arc<dyn Host>> {
        Ok(self.hosts[self.index(name)?].clone())
    }

    /// Hosts whose labels match every `key=value` (or bare `key`: has the label) in `selector`.
    pub fn select(&self, selector: &[&str]) -> Vec<Arc<dyn Host>> {
        self.hosts
            .iter()
            .filter(|h| {
                selector.iter().all(|s| match s.split_once('=') {
                    Some((k, v)) => h.labels().get(k).map(String::as_str) == Some(v),
                    None => h.labels().contains_key(*s),
                })
            })
            .cloned()
            .collect()
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// True when the fleet has no host.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Pings every host and reads its info, all at once, each bounded by `options.timeout`. Never
    /// fails as a whole: each host's outcome is in its [`HostStatus`], in inventory order.
    pub async fn probe(&self, options: &ProbeOptions) -> Vec<HostStatus> {
        let jobs = self.hosts.iter().map(|h| {
            let h = h.clone();
            let timeout = options.timeout;
            async move {
                let work = async {
                    let ping = h.ping().await?;
                    let info = h.info().await?;
                    Ok::<_, Error>((ping, info))
                };
                let outcome = match tokio::time::timeout(timeout, work).await {
                    Ok(r) => r,
                    Err(_) => Err(Error::Timeout { host: h.name().into(), operation: "probe".into(), after: timeout }),
                };
                let base = HostStatus {
                    name: h.name().to_string(),
                    address: h.address().to_string(),
                    labels: h.labels().clone(),
                    reachable: false,
                    latency: None,
                    info: None,
                    error_code: None,
                    error: None,
                };
                match outcome {
                    Ok((ping, info)) => {
                        HostStatus { reachable: true, latency: Some(ping.latency), info: Some(info), ..base }
                    }
                    Err(e) => {
                        tracing::debug!(host = %h.name(), error = %e, "probe failed");
                        HostStatus { error_code: Some(e.code().to_string()), error: Some(e.to_string()), ..base }
                    }
                }
            }
        });
        futures::future::join_all(jobs).await
    }
}

fn path_error(path: String, message: String) -> Error {
    let field = if path.is_empty() || path == "." { "inventory".to_string() } else { path };
    Error::InvalidArgument { field, message }
}

impl Error {
    /// Prefixes the field path of input errors (`address` → `hosts[2].address`); other errors unchanged.
    pub fn with_field_prefix(self, prefix: &str) -> Self {
        let join = |f: String| if f.is_empty() { prefix.to_string() } else { format!("{prefix}.{f}") };
        match self {
            Error::InvalidArgument { field, message } => Error::InvalidArgument { field: join(field), message },
            Error::InvalidAddress { field, address, message } => {
                Error::InvalidAddress { field: join(field), address, message }
            }
            Error::Insecure { field, address } => Error::Insecure { field: join(field), address },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
[defaults]
connect_timeout_ms = 1500
labels = { dc = "one" }

[[hosts]]
name = "a"
address = "unix:///run/a.sock"
labels = { role = "manager", zone = "a" }

[[hosts]]
name = "b"
address = "tcp://10.9.9.9:2375"
insecure = true
labels = { role = "worker", zone = "b" }
"#;

    #[test]
    fn parses_toml_and_selects_by_label() {
        let f = Fleet::parse(TOML, InventoryFormat::Toml, None).unwrap();
        assert_eq!(f.names(), vec!["a", "b"]);
        assert_eq!(f.select(&["role=manager"]).len(), 1);
        assert_eq!(f.select(&["dc=one"]).len(), 2);
        assert_eq!(f.select(&["zone"]).len(), 2);
        assert_eq!(f.select(&["zone=c"]).len(), 0);
        assert_eq!(f.host("zz").unwrap_err().code(), "not_found");
    }

    #[test]
    fn parses_yaml() {
        let y = "hosts:\n  - name: a\n    address: unix:///run/a.sock\n    labels: {role: manager}\n";
        let f = Fleet::parse(y, InventoryFormat::Yaml, None).unwrap();
        assert_eq!(f.host("a").unwrap().labels()["role"], "manager");
    }

    #[test]
    fn errors_name_the_field_path() {
        let cases = [
            ("[[hosts]]\nname = \"a\"\naddress = \"tcp://10.0.0.1:2375\"\n", "hosts[0].address", "insecure"),
            ("[[hosts]]\nname = \"a\"\naddress = \"nope\"\n", "hosts[0].address", "invalid_address"),
            ("[[hosts]]\nname = \"a\"\naddress = \"unix:///x\"\nport = 3\n", "hosts[0]", "invalid_argument"),
            ("[[hosts]]\nname = \"a\"\naddress = 7\n", "hosts[0].address", "invalid_argument"),
            (
                "[[hosts]]\nname = \"a\"\naddress = \"unix:///x\"\n[[hosts]]\nname = \"a\"\naddress = \"unix:///y\"\n",
                "hosts[1].name",
                "invalid_argument",
            ),
            ("[[hosts]]\nname = \"a b/c\"\naddress = \"unix:///x\"\n", "hosts[0].name", "invalid_argument"),
            (
                "[[hosts]]\nname = \"a\"\naddress = \"unix:///x\"\nconnect_timeout_ms = 0\n",
                "hosts[0].connect_timeout_ms",
                "invalid_argument",
            ),
        ];
        for (text, field, code) in cases {
            let e = Fleet::parse(text, InventoryFormat::Toml, None).unwrap_err();
            assert_eq!(e.code(), code, "{text}: {e}");
            assert!(e.to_string().contains(field), "{text}: {e} should name {field}");
        }
    }

    #[test]
    fn relative_tls_paths_resolve_against_the_file() {
        let dir = std::env::temp_dir().join(format!("dockfleet-fleet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = "hosts:\n  - name: t\n    address: tcp://10.0.0.1:2376\n    tls: {ca: certs/ca.pem, cert: c.pem, key: k.pem}\n";
        std::fs::write(dir.join("fleet.yaml"), text).unwrap();
        let e = Fleet::from_file(dir.join("fleet.yaml")).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(e.code(), "invalid_argument");
        let msg = e.to_string();
        assert!(msg.contains("hosts[0].tls.ca"), "{msg}");
        assert!(msg.contains(&dir.join("certs/ca.pem").display().to_string()), "{msg}");
    }
}
