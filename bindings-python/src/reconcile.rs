//! The core `reconcile` module in Python: observe → plan → apply a service onto a fleet.

use std::collections::BTreeMap;

use dockfleet as df;
use pyo3::prelude::*;

use crate::fleet::Fleet;
use crate::host::{ContainerSpec, LogOptions};
use crate::schedule::HostState;
use crate::spec::ServiceSpec;
use crate::Seconds;
use crate::{dto, stream_class, Conv};

dto! {
    /// One task container as observed on an engine.
    Task => df::Task {
        host: String, id: String, name: String, slot: u32, spec_hash: String, state: String, status: String,
        exit_code: Option<i64>, restarts: u32, restarts_since_ms: i64, previous_spec_hash: String,
    }
}

dto! {
    /// What `observe` saw: the hosts, the service's tasks, tasks held by hosts within their grace, the
    /// specs recorded on the tasks (by hash) and the time (ms since the epoch).
    Observed => df::Observed {
        hosts: Vec<HostState>, tasks: Vec<Task>, held: Vec<Task>, specs: BTreeMap<String, ServiceSpec>, time_ms: i64,
    }
}

dto! {
    /// One step of a plan: `kind` is `create`, `remove` or `update`.
    Action => df::Action {
        kind: String, host: String, slot: u32, id: Option<String>, reason: String, restarts: u32, restarts_since_ms: i64,
    }
}

dto! {
    /// What `apply` would do, and why hosts took no (more) tasks.
    Plan => df::Plan {
        service: String, spec_hash: String, actions: Vec<Action>, unplaced: Vec<u32>, reasons: BTreeMap<String, String>,
    }
}

dto! {
    /// Options of `plan` and `deploy`; `force` replaces every running task (a rolling restart).
    PlanOptions => df::PlanOptions { seed: u64, force: bool }
}

dto! {
    /// What `apply` did.
    ApplyReport => df::ApplyReport { created: Vec<Task>, removed: Vec<String> }
}

dto! {
    /// What `deploy` did: the plan it carried out and the report.
    Deployment => df::Deployment { plan: Plan, report: ApplyReport }
}

dto! {
    /// Options of `supervise`: `resync`, `debounce` and `host_grace` in seconds; `inventory`, a file read
    /// again at every pass (hosts joining and leaving).
    SuperviseOptions => df::SuperviseOptions {
        resync: Seconds, debounce: Seconds, seed: u64, host_grace: Seconds, inventory: Option<std::path::PathBuf>,
    }
}

dto! {
    /// One pass of `supervise` that changed something or failed (`error_code`, `error`).
    Reconciliation => df::Reconciliation {
        trigger: String, deployment: Deployment, error_code: Option<String>, error: Option<String>,
    }
}

dto! {
    /// One chunk of a service's output (`service_logs`), with the task that wrote it.
    ServiceLogLine => df::ServiceLogLine { host: String, id: String, name: String, slot: u32, stream: String, message: String }
}

stream_class!(
    /// A service's output: `async for line in service_logs(backend, service)`.
    ServiceLogStream, df::ServiceLogLine => ServiceLogLine
);

/// The output of every task of `service`, on a `Fleet` or a `Swarm`, merged as it arrives, each chunk
/// with its task (what `docker service logs` shows); `options` apply to each task.
#[pyfunction]
#[pyo3(signature = (backend, service, options=None))]
fn service_logs(
    backend: crate::backend::Backend,
    service: String,
    options: Option<LogOptions>,
) -> PyResult<ServiceLogStream> {
    let options: df::LogOptions = options.conv().unwrap_or_default();
    ServiceLogStream::open(|| backend.get().service_logs(&service, &options))
}

dto! {
    /// Options of `service_exec`: the command's `env`, `working_dir` and `user`; only one `slot`'s task;
    /// `parallelism` tasks at once, in slot order (0: all at once).
    ServiceExecOptions => df::ServiceExecOptions {
        env: BTreeMap<String, String>, working_dir: Option<String>, user: Option<String>, slot: Option<u32>,
        parallelism: u32,
    }
}

dto! {
    /// One task's run of `service_exec`: its exit code and output, or its error (`error_code`, `error`).
    TaskExec => df::TaskExec {
        host: String, id: String, name: String, slot: u32, exit_code: Option<i64>, stdout: String, stderr: String,
        error_code: Option<String>, error: Option<String>,
    }
}

/// Runs `command` in every running task of `service` (or one slot's), on a `Fleet` or a `Swarm`, on
/// all its hosts; one result per task, in slot order.
#[pyfunction]
#[pyo3(signature = (backend, service, command, options=None))]
async fn service_exec(
    backend: crate::backend::Backend,
    service: String,
    command: Vec<String>,
    options: Option<ServiceExecOptions>,
) -> PyResult<Vec<TaskExec>> {
    let b = backend.get();
    let options: df::ServiceExecOptions = options.conv().unwrap_or_default();
    crate::call(async move { b.service_exec(&service, &command, &options).await }).await
}

stream_class!(
    /// Reconciliation passes: `async for r in supervise(fleet, spec)`; `aclose()` stops supervising.
    ReconcileStream, df::Reconciliation => Reconciliation
);

/// Keeps `spec` running on `fleet` until the stream is closed: heals on engine events and every resync.
#[pyfunction]
#[pyo3(signature = (fleet, spec, options=None))]
fn supervise(fleet: &Fleet, spec: ServiceSpec, options: Option<SuperviseOptions>) -> PyResult<ReconcileStream> {
    let options: df::SuperviseOptions = options.conv().unwrap_or_default();
    ReconcileStream::open(|| df::supervise(fleet.snapshot(), spec.conv(), options))
}

/// Reads the fleet and the service's tasks (unreachable hosts are reported, not raised).
#[pyfunction]
async fn observe(fleet: Py<Fleet>, service: String) -> PyResult<Observed> {
    let f = Python::attach(|py| fleet.borrow(py).snapshot());
    crate::call(async move { df::observe(&f, &service).await }).await
}

/// Plans the actions that bring the observed service to `spec` (pure).
#[pyfunction]
#[pyo3(signature = (spec, observed, options=None))]
fn plan(spec: ServiceSpec, observed: Observed, options: Option<PlanOptions>) -> PyResult<Plan> {
    let options: df::PlanOptions = options.conv().unwrap_or_default();
    Ok(crate::sync_call(|| df::plan(&spec.conv(), &observed.conv(), &options))?.conv())
}

/// Carries out a plan.
#[pyfunction]
async fn apply(fleet: Py<Fleet>, spec: ServiceSpec, plan: Plan) -> PyResult<ApplyReport> {
    let f = Python::attach(|py| fleet.borrow(py).snapshot());
    let (spec, plan): (df::ServiceSpec, df::Plan) = (spec.conv(), plan.conv());
    crate::call(async move { df::apply(&f, &spec, &plan).await }).await
}

/// Observes, plans and applies: brings the service to `spec`.
#[pyfunction]
#[pyo3(signature = (fleet, spec, options=None))]
async fn deploy(fleet: Py<Fleet>, spec: ServiceSpec, options: Option<PlanOptions>) -> PyResult<Deployment> {
    let f = Python::attach(|py| fleet.borrow(py).snapshot());
    let spec: df::ServiceSpec = spec.conv();
    let options: df::PlanOptions = options.conv().unwrap_or_default();
    crate::call(async move { df::deploy(&f, &spec, &options).await }).await
}

/// Removes the service and every task of it, on a `Fleet` or a `Swarm`; returns how many tasks went.
#[pyfunction]
async fn remove_service(backend: crate::backend::Backend, service: String) -> PyResult<u32> {
    let b = backend.get();
    crate::call(async move { b.remove_service(&service).await.map(|n| n as u32) }).await
}

/// The hash of what a task of `spec` is made of.
#[pyfunction]
fn spec_hash(spec: ServiceSpec) -> PyResult<String> {
    crate::sync_call(|| Ok(df::spec_hash(&spec.conv())))
}

/// The container a task of `spec` in `slot` runs as.
#[pyfunction]
fn task_container(spec: ServiceSpec, slot: i128) -> PyResult<ContainerSpec> {
    let slot = crate::count("slot", slot)?;
    Ok(crate::sync_call(|| Ok(df::task_container(&spec.conv(), slot)))?.conv())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Task>()?;
    m.add_class::<Observed>()?;
    m.add_class::<Action>()?;
    m.add_class::<Plan>()?;
    m.add_class::<PlanOptions>()?;
    m.add_class::<ApplyReport>()?;
    m.add_class::<Deployment>()?;
    m.add_class::<SuperviseOptions>()?;
    m.add_class::<Reconciliation>()?;
    m.add_class::<ReconcileStream>()?;
    m.add_class::<ServiceLogLine>()?;
    m.add_class::<ServiceLogStream>()?;
    m.add_class::<ServiceExecOptions>()?;
    m.add_class::<TaskExec>()?;
    m.add_function(wrap_pyfunction!(service_exec, m)?)?;
    m.add_function(wrap_pyfunction!(supervise, m)?)?;
    m.add_function(wrap_pyfunction!(observe, m)?)?;
    m.add_function(wrap_pyfunction!(plan, m)?)?;
    m.add_function(wrap_pyfunction!(apply, m)?)?;
    m.add_function(wrap_pyfunction!(deploy, m)?)?;
    m.add_function(wrap_pyfunction!(remove_service, m)?)?;
    m.add_function(wrap_pyfunction!(service_logs, m)?)?;
    m.add_function(wrap_pyfunction!(spec_hash, m)?)?;
    m.add_function(wrap_pyfunction!(task_container, m)?)?;
    m.add("LABEL_SERVICE", df::LABEL_SERVICE)?;
    m.add("LABEL_SLOT", df::LABEL_SLOT)?;
    m.add("LABEL_SPEC_HASH", df::LABEL_SPEC_HASH)?;
    m.add("LABEL_SPEC", df::LABEL_SPEC)?;
    m.add("LABEL_PREVIOUS_SPEC", df::LABEL_PREVIOUS_SPEC)?;
    m.add("LABEL_PREVIOUS_SPEC_HASH", df::LABEL_PREVIOUS_SPEC_HASH)?;
    m.add("LABEL_RESTARTS", df::LABEL_RESTARTS)?;
    m.add("LABEL_CPU_RESERVATION", df::LABEL_CPU_RESERVATION)?;
    m.add("LABEL_MEMORY_RESERVATION", df::LABEL_MEMORY_RESERVATION)?;
    Ok(())
}
