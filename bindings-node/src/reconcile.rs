//! The core `reconcile` module in Node: observe → plan → apply a service onto a fleet.

use std::collections::HashMap;
use std::time::Duration;

use dockfleet as df;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::js_error;
use crate::fleet::Fleet;
use crate::host::{ContainerSpec, LogOptions};
use crate::schedule::HostState;
use crate::spec::ServiceSpec;
use crate::{arg, call, object, stream_class, Conv, Number};

object! { out
    #[doc = "One task container as observed on an engine."]
    Task => df::Task {
        host: String, id: String, name: String, slot: Number<u32>, spec_hash: String, state: String, status: String,
        exit_code: Option<Number<i64>>, restarts: Number<u32>, restarts_since_ms: Number<i64>, previous_spec_hash: String,
    }
}

object! { out
    #[doc = "What `observe` saw: the hosts, the service's tasks, tasks held by hosts within their grace, the"]
    #[doc = "specs recorded on the tasks (by hash) and the time (ms since the epoch)."]
    Observed => df::Observed {
        hosts: Vec<HostState>, tasks: Vec<Task>, held: Vec<Task>, specs: HashMap<String, ServiceSpec>, time_ms: Number<i64>,
    }
}

object! { out
    #[doc = "One step of a plan: `kind` is `create`, `remove` or `update`."]
    Action => df::Action {
        kind: String, host: String, slot: Number<u32>, id: Option<String>, reason: String, restarts: Number<u32>, restarts_since_ms: Number<i64>,
    }
}

object! { out
    #[doc = "What `apply` would do, and why hosts took no (more) tasks."]
    Plan => df::Plan {
        service: String, spec_hash: String, actions: Vec<Action>, unplaced: Vec<Number<u32>>, reasons: HashMap<String, String>,
    }
}

object! { in
    #[doc = "Options of `plan` and `deploy`; `force` replaces every running task (a rolling restart)."]
    PlanOptions => df::PlanOptions { seed: Number<u64>, force: bool }
}

object! { out
    #[doc = "What `apply` did."]
    ApplyReport => df::ApplyReport { created: Vec<Task>, removed: Vec<String> }
}

object! { out
    #[doc = "What `deploy` did: the plan it carried out and the report."]
    Deployment => df::Deployment { plan: Plan, report: ApplyReport }
}

object! { in
    #[doc = "Options of `supervise`: `resync`, `debounce` and `hostGrace` in milliseconds; `inventory`, a file"]
    #[doc = "read again at every pass (hosts joining and leaving)."]
    SuperviseOptions => df::SuperviseOptions {
        resync: Number<Duration>, debounce: Number<Duration>, seed: Number<u64>, host_grace: Number<Duration>, inventory: Option<String>,
    }
}

object! { out
    #[doc = "One pass of `supervise` that changed something or failed (`errorCode`, `error`)."]
    Reconciliation => df::Reconciliation {
        trigger: String, deployment: Deployment, error_code: Option<String>, error: Option<String>,
    }
}

object! { out
    #[doc = "One chunk of a service's output (`serviceLogs`), with the task that wrote it."]
    ServiceLogLine => df::ServiceLogLine { host: String, id: String, name: String, slot: Number<u32>, stream: String, message: String }
}

stream_class!(
    #[doc = "A service's output: `for await (const line of serviceLogs(backend, service))`."]
    ServiceLogStream, df::ServiceLogLine => ServiceLogLine
);

/// The output of every task of `service`, on a `Fleet` or a `Swarm`, merged as it arrives, each chunk
/// with its task (what `docker service logs` shows); `options` apply to each task.
#[napi(catch_unwind)]
pub fn service_logs(
    backend: crate::backend::Backend<'_>,
    service: String,
    options: Option<LogOptions>,
) -> ServiceLogStream {
    let options: df::LogOptions = options.conv().unwrap_or_default();
    ServiceLogStream::new(crate::backend::backend(&backend).service_logs(&service, &options))
}

object! { in
    #[doc = "Options of `serviceExec`: the command's `env`, `workingDir` and `user`; only one `slot`'s task;"]
    #[doc = "`parallelism` tasks at once, in slot order (0: all at once)."]
    ServiceExecOptions => df::ServiceExecOptions {
        env: HashMap<String, String>, working_dir: Option<String>, user: Option<String>, slot: Option<Number<u32>>,
        parallelism: Number<u32>,
    }
}

object! { out
    #[doc = "One task's run of `serviceExec`: its exit code and output, or its error (`errorCode`, `error`)."]
    TaskExec => df::TaskExec {
        host: String, id: String, name: String, slot: Number<u32>, exit_code: Option<Number<i64>>, stdout: String, stderr: String,
        error_code: Option<String>, error: Option<String>,
    }
}

/// Runs `command` in every running task of `service` (or one slot's), on a `Fleet` or a `Swarm`, on
/// all its hosts; resolves to one result per task, in slot order.
#[napi(catch_unwind)]
pub fn service_exec<'env>(
    env: &'env Env,
    backend: crate::backend::Backend<'_>,
    service: String,
    command: Vec<String>,
    options: Option<ServiceExecOptions>,
) -> Result<PromiseRaw<'env, Vec<TaskExec>>> {
    let b = crate::backend::backend(&backend);
    let options: df::ServiceExecOptions = options.conv().unwrap_or_default();
    call(env, async move { b.service_exec(&service, &command, &options).await })
}

stream_class!(
    #[doc = "Reconciliation passes: `for await (const r of supervise(fleet, spec))`; `close()` stops supervising."]
    ReconcileStream, df::Reconciliation => Reconciliation
);

/// Label naming the service a container belongs to.
#[napi]
pub const LABEL_SERVICE: &str = df::LABEL_SERVICE;
/// Label holding the task's slot number.
#[napi]
pub const LABEL_SLOT: &str = df::LABEL_SLOT;
/// Label holding the hash of the spec the task was created from.
#[napi]
pub const LABEL_SPEC_HASH: &str = df::LABEL_SPEC_HASH;
/// Label holding the whole spec the task was created from (JSON).
#[napi]
pub const LABEL_SPEC: &str = df::LABEL_SPEC;
/// Label holding the spec (JSON) of the task this one replaced in an update.
#[napi]
pub const LABEL_PREVIOUS_SPEC: &str = df::LABEL_PREVIOUS_SPEC;
/// Label holding the hash of the previous spec.
#[napi]
pub const LABEL_PREVIOUS_SPEC_HASH: &str = df::LABEL_PREVIOUS_SPEC_HASH;
/// Label counting the restarts of the task's slot (`N@MS`).
#[napi]
pub const LABEL_RESTARTS: &str = df::LABEL_RESTARTS;
/// Label holding the task's CPU reservation.
#[napi]
pub const LABEL_CPU_RESERVATION: &str = df::LABEL_CPU_RESERVATION;
/// Label holding the task's memory reservation in bytes.
#[napi]
pub const LABEL_MEMORY_RESERVATION: &str = df::LABEL_MEMORY_RESERVATION;

/// Keeps `spec` running on `fleet` until the stream is closed: heals on engine events and every resync.
#[napi(catch_unwind)]
pub fn supervise(fleet: &Fleet, spec: ServiceSpec, options: Option<SuperviseOptions>) -> ReconcileStream {
    let options: df::SuperviseOptions = options.conv().unwrap_or_default();
    ReconcileStream::new(df::supervise(fleet.snapshot(), spec.conv(), options))
}

/// Reads the fleet and the service's tasks (unreachable hosts are reported, not rejected).
#[napi(catch_unwind)]
pub fn observe<'env>(env: &'env Env, fleet: &Fleet, service: String) -> Result<PromiseRaw<'env, Observed>> {
    let f = fleet.snapshot();
    call(env, async move { df::observe(&f, &service).await })
}

/// Plans the actions that bring the observed service to `spec` (pure).
#[napi(catch_unwind)]
pub fn plan(env: Env, spec: ServiceSpec, observed: Observed, options: Option<PlanOptions>) -> Result<Plan> {
    let options: df::PlanOptions = options.conv().unwrap_or_default();
    df::plan(&spec.conv(), &observed.conv(), &options).map(Conv::conv).map_err(|e| js_error(&env, e))
}

/// Carries out a plan.
#[napi(catch_unwind)]
pub fn apply<'env>(
    env: &'env Env,
    fleet: &Fleet,
    spec: ServiceSpec,
    plan: Plan,
) -> Result<PromiseRaw<'env, ApplyReport>> {
    let f = fleet.snapshot();
    let (spec, plan): (df::ServiceSpec, df::Plan) = (spec.conv(), plan.conv());
    call(env, async move { df::apply(&f, &spec, &plan).await })
}

/// Observes, plans and applies: brings the service to `spec`.
#[napi(catch_unwind)]
pub fn deploy<'env>(
    env: &'env Env,
    fleet: &Fleet,
    spec: ServiceSpec,
    options: Option<PlanOptions>,
) -> Result<PromiseRaw<'env, Deployment>> {
    let f = fleet.snapshot();
    let spec: df::ServiceSpec = spec.conv();
    let options: df::PlanOptions = options.conv().unwrap_or_default();
    call(env, async move { df::deploy(&f, &spec, &options).await })
}

/// Removes the service and every task of it, on a `Fleet` or a `Swarm`; resolves to how many tasks went.
#[napi(catch_unwind)]
pub fn remove_service<'env>(
    env: &'env Env,
    backend: crate::backend::Backend<'_>,
    service: String,
) -> Result<PromiseRaw<'env, Number<u64>>> {
    let b = crate::backend::backend(&backend);
    call(env, async move { b.remove_service(&service).await.map(|n| n as u64) })
}

/// The hash of what a task of `spec` is made of.
#[napi(catch_unwind)]
pub fn spec_hash(spec: ServiceSpec) -> String {
    df::spec_hash(&spec.conv())
}

/// The container a task of `spec` in `slot` runs as.
#[napi(catch_unwind)]
pub fn task_container(spec: ServiceSpec, slot: f64) -> Result<ContainerSpec> {
    Ok(df::task_container(&spec.conv(), arg("slot", slot)?).conv())
}
