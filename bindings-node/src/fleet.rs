//! The core `fleet` module in Node: `Fleet`, `ProbeOptions`, `HostStatus`.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use dockfleet as df;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::docker::HostConfig;
use crate::error::js_error;
use crate::host::{DockerHost, HostInfo};
use crate::{call, object, Conv, Number};

object! { in
    #[doc = "Options of `Fleet.probe`; `timeout` in milliseconds per host."]
    ProbeOptions => df::ProbeOptions { timeout: Number<Duration> }
}

object! { out
    #[doc = "The outcome of probing one host."]
    HostStatus => df::HostStatus {
        name: String, address: String, labels: HashMap<String, String>, reachable: bool, latency: Option<Number<Duration>>,
        info: Option<HostInfo>, error_code: Option<String>, error: Option<String>,
    }
}

/// A named set of hosts with labels, from an inventory file or built in code.
#[napi]
pub struct Fleet {
    inner: RwLock<df::Fleet>,
}

impl Fleet {
    /// Wraps a core fleet.
    pub(crate) fn from_core(fleet: df::Fleet) -> Self {
        Fleet { inner: RwLock::new(fleet) }
    }

    /// A copy of the fleet (hosts are shared) for work that outlives the call.
    pub(crate) fn snapshot(&self) -> df::Fleet {
        self.read().clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, df::Fleet> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, df::Fleet> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[napi]
impl Fleet {
    /// An empty fleet.
    #[napi(constructor, catch_unwind)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Fleet { inner: RwLock::new(df::Fleet::new()) }
    }

    /// Loads a `.toml`, `.yaml` or `.yml` inventory; hosts are validated, not contacted.
    #[napi(factory, writable = true, catch_unwind)]
    pub fn from_file(env: Env, path: String) -> Result<Self> {
        let f = df::Fleet::from_file(path).map_err(|e| js_error(&env, e))?;
        Ok(Fleet { inner: RwLock::new(f) })
    }

    /// Parses inventory text (`format` is `toml` or `yaml`); relative TLS paths resolve against `baseDir`.
    #[napi(factory, writable = true, catch_unwind)]
    pub fn parse(env: Env, text: String, format: String, base_dir: Option<String>) -> Result<Self> {
        let fmt = match format.as_str() {
            "toml" => df::InventoryFormat::Toml,
            "yaml" | "yml" => df::InventoryFormat::Yaml,
            other => {
                return Err(js_error(&env, df::Error::invalid("format", format!("{other:?} is not toml or yaml"))))
            }
        };
        let f = df::Fleet::parse(&text, fmt, base_dir.as_deref().map(std::path::Path::new))
            .map_err(|e| js_error(&env, e))?;
        Ok(Fleet { inner: RwLock::new(f) })
    }

    /// Adds a host; throws `invalid_argument` if the name is taken.
    #[napi(catch_unwind)]
    pub fn add(&self, env: Env, host: &DockerHost) -> Result<()> {
        self.write().add(host.inner.clone()).map_err(|e| js_error(&env, e))
    }

    /// Builds a `DockerHost` from `config` and adds it.
    #[napi(catch_unwind)]
    pub fn add_docker(&self, env: Env, config: HostConfig) -> Result<DockerHost> {
        Ok(self.write().add_docker(config.conv()).map_err(|e| js_error(&env, e))?.conv())
    }

    /// Credentials for a registry, which hosts use when a service's `pullPolicy` has them pull from it.
    #[napi(catch_unwind)]
    pub fn set_registry_auth(&self, env: Env, auth: crate::registry::RegistryAuth) -> Result<()> {
        self.write().set_registry_auth(auth.conv()).map_err(|e| js_error(&env, e))
    }

    /// Removes a host by name and returns it.
    #[napi(catch_unwind)]
    pub fn remove(&self, env: Env, name: String) -> Result<DockerHost> {
        Ok(self.write().remove(&name).map_err(|e| js_error(&env, e))?.conv())
    }

    #[napi(catch_unwind)]
    pub fn hosts(&self) -> Vec<DockerHost> {
        self.read().hosts().iter().cloned().map(Conv::conv).collect()
    }

    #[napi(catch_unwind)]
    pub fn names(&self) -> Vec<String> {
        self.read().names()
    }

    /// One host by name; throws `not_found` if absent.
    #[napi(catch_unwind)]
    pub fn host(&self, env: Env, name: String) -> Result<DockerHost> {
        Ok(self.read().host(&name).map_err(|e| js_error(&env, e))?.conv())
    }

    /// Hosts whose labels match every `key=value` (or bare `key`) in `selector`.
    #[napi(catch_unwind)]
    pub fn select(&self, selector: Vec<String>) -> Vec<DockerHost> {
        let sel: Vec<&str> = selector.iter().map(String::as_str).collect();
        self.read().select(&sel).into_iter().map(Conv::conv).collect()
    }

    /// Number of hosts.
    #[napi(getter, catch_unwind)]
    pub fn length(&self) -> u32 {
        self.read().len() as u32
    }

    /// Pings every host concurrently; one `HostStatus` per host, never a rejection for a down host.
    #[napi(catch_unwind)]
    pub fn probe<'env>(
        &self,
        env: &'env Env,
        options: Option<ProbeOptions>,
    ) -> Result<PromiseRaw<'env, Vec<HostStatus>>> {
        let fleet = self.read().clone();
        let o: df::ProbeOptions = options.conv().unwrap_or_default();
        call(env, async move { Ok(fleet.probe(&o).await) })
    }
}
