//! The core `swarm` module in Node: `Swarm` (Docker Swarm mode as a service backend, and the swarm's
//! lifecycle), `SwarmOptions`, `SwarmNode`.

use std::collections::HashMap;
use std::time::Duration;

use dockfleet as df;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::fleet::Fleet;
use crate::shape::Record;
use crate::{call, object, Conv, Number};

object! { in
    #[doc = "Options of a `Swarm`: `publishMode` is `host` (default) or `ingress`; `pollInterval` and"]
    #[doc = "`timeout` in milliseconds; `port` is Swarm's cluster port (2377)."]
    SwarmOptions => df::SwarmOptions { publish_mode: String, poll_interval: Number<Duration>, timeout: Number<Duration>, port: Number<u16> }
}

object! { out
    #[doc = "One node of a swarm; `host` is the fleet host it is (empty when not in the fleet)."]
    SwarmNode => df::SwarmNode {
        id: String, host: String, hostname: String, role: String, availability: String, state: String,
        address: String, leader: bool, reachability: String, labels: HashMap<String, String>,
        engine_version: String,
    }
}

/// Label naming the fleet host a swarm node is.
#[napi]
pub const LABEL_NODE_HOST: &str = df::LABEL_NODE_HOST;

/// A Docker Swarm formed by (some of) a fleet's engines: pass it wherever a `Fleet` deploys services
/// (`rollout`, `stackUp`, `scale`, …) to run them as Swarm services instead.
#[napi]
pub struct Swarm {
    pub(crate) inner: df::Swarm,
}

impl Conv<Swarm> for df::Swarm {
    fn conv(self) -> Swarm {
        Swarm { inner: self }
    }
}

#[napi]
impl Swarm {
    /// Initialises a swarm with the fleet host `manager` as its first manager (kept if it already is one).
    #[napi(writable = true, catch_unwind)]
    pub fn init<'env>(
        env: &'env Env,
        fleet: &Fleet,
        manager: String,
        options: Option<SwarmOptions>,
    ) -> Result<PromiseRaw<'env, Swarm>> {
        let f = fleet.snapshot();
        let o: df::SwarmOptions = options.conv().unwrap_or_default();
        call(env, async move { df::Swarm::init(f, &manager, o).await })
    }

    /// The swarm some of whose managers are in `fleet`.
    #[napi(writable = true, catch_unwind)]
    pub fn connect<'env>(
        env: &'env Env,
        fleet: &Fleet,
        options: Option<SwarmOptions>,
    ) -> Result<PromiseRaw<'env, Swarm>> {
        let f = fleet.snapshot();
        let o: df::SwarmOptions = options.conv().unwrap_or_default();
        call(env, async move { df::Swarm::connect(f, o).await })
    }

    /// The fleet whose engines are the swarm's nodes.
    #[napi(catch_unwind)]
    pub fn fleet(&self) -> Fleet {
        Fleet::from_core(self.inner.fleet().clone())
    }

    /// The options.
    #[napi(catch_unwind)]
    pub fn options(&self) -> SwarmOptions {
        self.inner.options().clone().conv()
    }

    /// Joins the fleet host `host` as a `worker` or a `manager`, with its fleet labels as node labels.
    #[napi(catch_unwind)]
    pub fn join<'env>(&self, env: &'env Env, host: String, role: String) -> Result<PromiseRaw<'env, SwarmNode>> {
        let s = self.inner.clone();
        call(env, async move { s.join(&host, &role).await })
    }

    /// Makes `host` leave the swarm (a manager only with `force`) and removes its node.
    #[napi(catch_unwind)]
    pub fn leave<'env>(&self, env: &'env Env, host: String, force: Option<bool>) -> Result<PromiseRaw<'env, ()>> {
        let s = self.inner.clone();
        call(env, async move { s.leave(&host, force.unwrap_or(false)).await })
    }

    /// Every fleet host leaves the swarm, workers first.
    #[napi(catch_unwind)]
    pub fn dissolve<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        let s = self.inner.clone();
        call(env, async move { s.dissolve().await })
    }

    /// The swarm's nodes.
    #[napi(catch_unwind)]
    pub fn nodes<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Vec<SwarmNode>>> {
        let s = self.inner.clone();
        call(env, async move { s.nodes().await })
    }

    /// Replaces a node's labels (its `dockfleet.host` label is kept).
    #[napi(catch_unwind)]
    pub fn set_node_labels<'env>(
        &self,
        env: &'env Env,
        host: String,
        labels: Record<String, String>,
    ) -> Result<PromiseRaw<'env, SwarmNode>> {
        let s = self.inner.clone();
        let labels = labels.0.into_iter().collect();
        call(env, async move { s.set_node_labels(&host, labels).await })
    }

    /// Sets a node's availability: `active`, `pause` or `drain`.
    #[napi(catch_unwind)]
    pub fn set_availability<'env>(
        &self,
        env: &'env Env,
        host: String,
        availability: String,
    ) -> Result<PromiseRaw<'env, SwarmNode>> {
        let s = self.inner.clone();
        call(env, async move { s.set_availability(&host, &availability).await })
    }

    /// Promotes a node to `manager` or demotes it to `worker`.
    #[napi(catch_unwind)]
    pub fn set_role<'env>(&self, env: &'env Env, host: String, role: String) -> Result<PromiseRaw<'env, SwarmNode>> {
        let s = self.inner.clone();
        call(env, async move { s.set_role(&host, &role).await })
    }

    /// Creates a secret holding `data`; resolves to its ID.
    #[napi(catch_unwind)]
    pub fn create_secret<'env>(
        &self,
        env: &'env Env,
        name: String,
        data: Buffer,
        labels: Option<Record<String, String>>,
    ) -> Result<PromiseRaw<'env, String>> {
        let s = self.inner.clone();
        let (data, labels) = (data.to_vec(), labels.map(|r| r.0).unwrap_or_default().into_iter().collect());
        call(env, async move { s.create_secret(&name, &data, labels).await })
    }

    /// Removes a secret by name or ID.
    #[napi(catch_unwind)]
    pub fn remove_secret<'env>(&self, env: &'env Env, name: String) -> Result<PromiseRaw<'env, ()>> {
        let s = self.inner.clone();
        call(env, async move { s.remove_secret(&name).await })
    }

    /// Creates a config holding `data`; resolves to its ID.
    #[napi(catch_unwind)]
    pub fn create_config<'env>(
        &self,
        env: &'env Env,
        name: String,
        data: Buffer,
        labels: Option<Record<String, String>>,
    ) -> Result<PromiseRaw<'env, String>> {
        let s = self.inner.clone();
        let (data, labels) = (data.to_vec(), labels.map(|r| r.0).unwrap_or_default().into_iter().collect());
        call(env, async move { s.create_config(&name, &data, labels).await })
    }

    /// Removes a config by name or ID.
    #[napi(catch_unwind)]
    pub fn remove_config<'env>(&self, env: &'env Env, name: String) -> Result<PromiseRaw<'env, ()>> {
        let s = self.inner.clone();
        call(env, async move { s.remove_config(&name).await })
    }
}
