//! [`ServiceBackend`]: one service API over two engines of deployment.
//!
//! [`Fleet`] deploys services itself, with dockfleet's scheduler and reconciler driving plain Docker
//! engines; [`crate::Swarm`] hands the same specs and compose stacks to Docker Swarm mode (SwarmKit),
//! whose managers schedule, heal and update them. Code written against the trait moves from one to the
//! other by changing the line that builds the backend:
//!
//! ```no_run
//! use std::sync::Arc;
//! use dockfleet::{Fleet, ServiceBackend, ServiceSpec, Swarm, SwarmOptions};
//! use futures::TryStreamExt;
//!
//! # async fn demo() -> dockfleet::Result<()> {
//! let fleet = Fleet::from_file("fleet.toml")?;
//! let backend: Arc<dyn ServiceBackend> = Arc::new(fleet.clone());
//! // or: let backend: Arc<dyn ServiceBackend> = Arc::new(Swarm::connect(fleet, SwarmOptions::default()).await?);
//! let spec = ServiceSpec { replicas: 3, ..ServiceSpec::new("web", "dockfleet/busybox:latest") };
//! let events: Vec<_> = backend.rollout(spec, Default::default()).try_collect().await?;
//! println!("{}", events.last().map(|e| e.message.as_str()).unwrap_or(""));
//! println!("{} running", backend.service_status("web").await?.running);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::fleet::Fleet;
use crate::host::{LogOptions, ResultStream};
use crate::reconcile::{
    deploy, observe, remove_service, service_exec, service_logs, PlanOptions, ServiceExecOptions, ServiceLogLine,
    TaskExec,
};
use crate::rollout::{rollback, rollout, RolloutEvent, RolloutOptions};
use crate::spec::ServiceSpec;
use crate::stack::{stack_down, stack_ps, stack_up, ServiceStatus, Stack, StackDownReport, StackOptions};
use crate::stats::{service_stats, TaskStats};

/// Where services run: [`Fleet`] (dockfleet's own scheduler and reconciler over plain engines) or
/// [`crate::Swarm`] (Docker Swarm mode). Both take the same [`ServiceSpec`]s and [`Stack`]s and report
/// the same [`RolloutEvent`]s and [`ServiceStatus`]es.
#[async_trait]
pub trait ServiceBackend: Send + Sync + std::fmt::Debug {
    /// `fleet` or `swarm`.
    fn kind(&self) -> &'static str;

    /// Creates the service, or updates it to `spec` per its update config, gated on health; yields
    /// progress and ends after a `completed` or `paused` event. An invalid spec, or one this backend
    /// cannot express, ends the stream with its error before any mutating engine call.
    fn rollout(&self, spec: ServiceSpec, options: RolloutOptions) -> ResultStream<RolloutEvent>;

    /// Rolls `service` back to the spec it had before its last update, per its rollback config.
    fn rollback(&self, service: &str, options: RolloutOptions) -> ResultStream<RolloutEvent>;

    /// Sets the replica count of a replicated service and returns once that many tasks run.
    async fn scale(&self, service: &str, replicas: u32) -> Result<ServiceStatus>;

    /// The service's desired and running task counts and its current tasks. A [`Fleet`] counts as
    /// desired the slots its tasks hold (it keeps no other record); Swarm mode reports its own count.
    async fn service_status(&self, service: &str) -> Result<ServiceStatus>;

    /// Removes the service and all its tasks; returns how many tasks went.
    async fn remove_service(&self, service: &str) -> Result<usize>;

    /// The output of every task of the service, merged as it arrives, each chunk with the host, task
    /// and slot that wrote it (`docker service logs`; see [`service_logs`](crate::service_logs)).
    /// `options` apply per task; with `follow`, tasks started later are taken in too.
    fn service_logs(&self, service: &str, options: &LogOptions) -> ResultStream<ServiceLogLine>;

    /// One resource sample of every running task of the service, taken on all its hosts at once
    /// (see [`service_stats`](crate::stats::service_stats)).
    async fn service_stats(&self, service: &str) -> Result<Vec<TaskStats>>;

    /// Runs `command` in every running task of the service (or one slot's), on all its hosts (see
    /// [`service_exec`](crate::service_exec)).
    async fn service_exec(
        &self,
        service: &str,
        command: &[String],
        options: &ServiceExecOptions,
    ) -> Result<Vec<TaskExec>>;

    /// Deploys or updates a compose stack (see [`crate::stack_up`]).
    fn stack_up(&self, stack: Stack, options: StackOptions) -> ResultStream<RolloutEvent>;

    /// The stack's services and their tasks.
    async fn stack_ps(&self, stack: &str) -> Result<Vec<ServiceStatus>>;

    /// Removes the stack's services and networks, and its volumes when `remove_volumes` is set.
    async fn stack_down(&self, stack: &str, remove_volumes: bool) -> Result<StackDownReport>;
}

/// The spec most of a service's tasks were created from, as recorded in their labels.
fn current_spec(observed: &crate::reconcile::Observed) -> Option<ServiceSpec> {
    let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
    for t in observed.tasks.iter().filter(|t| t.state == "running") {
        *votes.entry(t.spec_hash.as_str()).or_default() += 1;
    }
    let hash = votes.into_iter().max_by_key(|(_, n)| *n).map(|(h, _)| h.to_string());
    let hash = hash.or_else(|| observed.tasks.first().map(|t| t.spec_hash.clone()))?;
    observed.specs.get(&hash).cloned()
}

fn unknown_service(service: &str) -> Error {
    Error::NotFound {
        kind: "service".into(),
        id: service.into(),
        host: "fleet".into(),
        message: "no task of this service records its spec".into(),
    }
}

#[async_trait]
impl ServiceBackend for Fleet {
    fn kind(&self) -> &'static str {
        "fleet"
    }

    fn rollout(&self, spec: ServiceSpec, options: RolloutOptions) -> ResultStream<RolloutEvent> {
        rollout(self.clone(), spec, options)
    }

    fn rollback(&self, service: &str, options: RolloutOptions) -> ResultStream<RolloutEvent> {
        rollback(self.clone(), service.to_string(), options)
    }

    async fn scale(&self, service: &str, replicas: u32) -> Result<ServiceStatus> {
        let observed = observe(self, service).await?;
        let spec = current_spec(&observed).ok_or_else(|| unknown_service(service))?;
        if spec.mode != "replicated" {
            return Err(Error::invalid("replicas", format!("{service} runs in {} mode", spec.mode)));
        }
        deploy(self, &ServiceSpec { replicas, ..spec }, &PlanOptions::default()).await?;
        self.service_status(service).await
    }

    async fn service_status(&self, service: &str) -> Result<ServiceStatus> {
        crate::discovery::check_name("service", service)?;
        let observed = observe(self, service).await?;
        // A fleet keeps no service record besides its tasks' labels, and a scale-down leaves tasks whose
        // recorded spec still says the old count: every slot a task (running or not, or held on an
        // unreachable host) occupies is one the last deploy asked for.
        let slots: std::collections::BTreeSet<u32> =
            observed.tasks.iter().chain(&observed.held).map(|t| t.slot).collect();
        let desired = match current_spec(&observed) {
            Some(s) if s.mode == "replicated" => slots.len() as u32,
            Some(s) => {
                let constraints = s.constraints()?;
                let eligible = |h: &&crate::schedule::HostState| h.available && constraints.iter().all(|c| c.admits(h));
                observed.hosts.iter().filter(eligible).count() as u32
            }
            None => 0,
        };
        let running = observed.tasks.iter().filter(|t| t.state == "running").count() as u32;
        Ok(ServiceStatus { name: service.to_string(), desired, running, tasks: observed.tasks })
    }

    async fn remove_service(&self, service: &str) -> Result<usize> {
        remove_service(self, service).await
    }

    fn service_logs(&self, service: &str, options: &LogOptions) -> ResultStream<ServiceLogLine> {
        service_logs(self, service, options)
    }

    async fn service_stats(&self, service: &str) -> Result<Vec<TaskStats>> {
        service_stats(self, service).await
    }

    async fn service_exec(
        &self,
        service: &str,
        command: &[String],
        options: &ServiceExecOptions,
    ) -> Result<Vec<TaskExec>> {
        service_exec(self, service, command, options).await
    }

    fn stack_up(&self, stack: Stack, options: StackOptions) -> ResultStream<RolloutEvent> {
        stack_up(self.clone(), stack, options)
    }

    async fn stack_ps(&self, stack: &str) -> Result<Vec<ServiceStatus>> {
        stack_ps(self, stack).await
    }

    async fn stack_down(&self, stack: &str, remove_volumes: bool) -> Result<StackDownReport> {
        stack_down(self, stack, remove_volumes).await
    }
}
