//! # dockfleet
//!
//! Deploy and run replicated Docker services across many Docker hosts, from code.
//!
//! This crate is the core of dockfleet; the Python (`import dockfleet`) and Node
//! (`require('dockfleet')`) packages wrap it with the same names and shapes.
//!
//! - [`Host`] is one Docker engine; [`DockerHost`] implements it over bollard (unix socket, TCP, TLS
//!   with client certificates, or the standard `DOCKER_*` environment).
//! - [`Fleet`] is a named set of hosts with labels, from a TOML/YAML inventory or from code, with a
//!   concurrent [`Fleet::probe`].
//! - [`copy_image`] streams an image from one host to another (no registry needed);
//!   [`Host::pull_image`] and [`Host::push_image`] go through a registry, with [`RegistryAuth`] given
//!   in code or found where `docker login` keeps it ([`docker_config_auth`]).
//! - [`ServiceBackend`] deploys [`ServiceSpec`]s and compose [`Stack`]s, either with dockfleet's own
//!   scheduler and reconciler over a [`Fleet`] of plain engines or on Docker Swarm mode ([`Swarm`]).
//! - [`service_logs`] and [`service_stats`] read a service's output and resource use on every host it
//!   runs on; [`prometheus_text`] turns the samples into a scrape endpoint's body; [`service_exec`]
//!   runs a command in every task.
//! - Every failure is an [`Error`] with a stable [`Error::code`].
//! - [`embed::EmbeddedRuntime`] lets another event loop (asyncio's, libuv's…) drive dockfleet's calls on
//!   its own thread; the bindings use it so an engine call needs no hand-off between threads.
//!
//! ```no_run
//! use dockfleet::{ContainerSpec, DockerHost, Host, HostConfig};
//!
//! # async fn demo() -> dockfleet::Result<()> {
//! let host = DockerHost::connect(HostConfig::new("local", "unix:///var/run/docker.sock")).await?;
//! let info = host.info().await?;
//! println!("{} runs Docker {} with {} CPUs", info.name, info.engine_version, info.cpus);
//! let id = host.create_container(&ContainerSpec::new("dockfleet/busybox:latest")).await?;
//! host.remove_container(&id, true, true).await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod backend;
mod balancer;
mod discovery;
mod docker;
mod dotenv;
pub mod embed;
pub mod error;
#[cfg(feature = "etcd")]
mod etcd;
mod files;
mod fleet;
mod health;
mod host;
mod http1;
mod image;
mod merge;
mod proxy;
mod reconcile;
mod registrator;
mod registry;
mod render;
mod rollout;
mod schedule;
#[doc(hidden)]
pub mod serde_ms;
mod spec;
mod stack;
pub mod stats;
mod stream;
mod swarm;
mod transport;

pub use backend::ServiceBackend;
pub use balancer::{Balancer, BalancerOptions, Endpoint, EndpointStats};
pub use discovery::{Discovery, DiscoveryEvent, EmbeddedDiscovery, Instance, LookupOptions};
pub use docker::{DockerHost, HostConfig, TlsConfig};
pub use error::{catch_panic, Error, Result};
#[cfg(feature = "etcd")]
pub use etcd::{EtcdConfig, EtcdDiscovery};
pub use fleet::{Fleet, HostStatus, InventoryFormat, ProbeOptions};
pub use health::HealthCheck;
pub use host::*;
// Named as well, for the parity test, which reads the functions this file exports by name.
pub use image::{copy_image, distribute_image, COPY_PROGRESS_INTERVAL};
pub use proxy::{Proxy, ProxyEndpointStats, ProxyOptions, Route, LATENCY_BOUNDS_MS};
pub use reconcile::{
    apply, deploy, observe, plan, remove_service, service_exec, service_logs, spec_hash, supervise, task_container,
    Action, ApplyReport, Deployment, Observed, Plan, PlanOptions, Reconciliation, ServiceExecOptions, ServiceLogLine,
    SuperviseOptions, Task, TaskExec, LABEL_CPU_RESERVATION, LABEL_MEMORY_RESERVATION, LABEL_PREVIOUS_SPEC,
    LABEL_PREVIOUS_SPEC_HASH, LABEL_RESTARTS, LABEL_SERVICE, LABEL_SLOT, LABEL_SPEC, LABEL_SPEC_HASH,
};
pub use registrator::{registrator, RegistratorEvent, RegistratorOptions};
pub use registry::{docker_config_auth, RegistryAuth};
pub use render::{default_template, render_config, sync_config, RenderEvent, RenderOptions};
pub use rollout::{rollback, rollout, RolloutEvent, RolloutOptions};
pub use schedule::{schedule, Assignment, HostState, Schedule, ScheduleOptions};
pub use spec::{
    parse_preference, Constraint, ConstraintKey, Placement, Resources, ServiceFile, ServicePort, ServiceRestartPolicy,
    ServiceSpec, UpdateConfig,
};
pub use stack::{
    load_compose, load_compose_files, parse_bytes, parse_compose, parse_duration, stack_down, stack_ps, stack_up,
    Dependency, ServiceStatus, Stack, StackBuild, StackDownReport, StackFile, StackOptions, StackService, LABEL_STACK,
    MAX_COMPOSE_BYTES,
};
pub use stats::{prometheus_text, service_stats, TaskStats};
pub use stream::SharedStream;
pub use swarm::{Swarm, SwarmNode, SwarmOptions, LABEL_NODE_HOST};

/// Re-exported so callers can reach engine features dockfleet does not wrap.
pub use bollard;

/// A point in time `d` after another that cannot panic. Every duration in dockfleet's options may be as
/// long as the caller likes (`Duration::MAX` for "never"); `Instant + Duration` panics past the clock's
/// range, so deadlines are taken at most a century ahead, which no timer reaches.
pub(crate) trait Later: Sized + std::ops::Add<std::time::Duration, Output = Self> {
    fn later(self, d: std::time::Duration) -> Self {
        const CENTURY: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 24 * 3600);
        self + d.min(CENTURY)
    }
}
impl Later for std::time::Instant {}
impl Later for tokio::time::Instant {}
