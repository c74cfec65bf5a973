//! The core `stack` module in Python: compose files deployed as stacks (up, ps, down).

use std::collections::BTreeMap;
use std::path::PathBuf;

use dockfleet as df;
use pyo3::prelude::*;

use crate::backend::Backend;
use crate::host::{NetworkOptions, VolumeOptions};
use crate::reconcile::Task;
use crate::rollout::{RolloutOptions, RolloutStream};
use crate::spec::ServiceSpec;
use crate::Seconds;
use crate::{dto, Conv};

dto! {
    /// A dependency of a stack service: `condition` is `service_started`, `service_healthy` or
    /// `service_completed_successfully`; `restart` restarts the dependent when a deploy replaces the
    /// dependency; `required=False` skips a dependency the stack lacks or that misses its condition.
    Dependency => df::Dependency { service: String, condition: String, restart: bool, required: bool }
}

dto! {
    /// How a stack service's image is built (compose's `build:`).
    StackBuild => df::StackBuild { context: PathBuf, dockerfile: Option<String>, args: BTreeMap<String, String>,
        target: Option<String>, labels: BTreeMap<String, String>, no_cache: bool,
    }
}

dto! {
    /// One service of a stack: its compose name, spec, dependencies and build.
    StackService => df::StackService {
        name: String, spec: ServiceSpec, depends_on: Vec<Dependency>, build: Option<StackBuild>,
    }
}

dto! {
    /// A secret or config a stack creates (Swarm backend): its full name, where its content comes from
    /// (exactly one of `file`, `environment`, read when the stack is deployed from this process's environment or else `env_files`, and for a config
    /// `content`) and its labels.
    StackFile => df::StackFile {
        name: String, file: Option<PathBuf>, environment: Option<String>, content: Option<String>,
        labels: BTreeMap<String, String>, env_files: Vec<PathBuf>,
    }
}

dto! {
    /// A stack: services, and the networks, volumes, secrets and configs it creates.
    Stack => df::Stack {
        name: String, services: Vec<StackService>, networks: Vec<String>, volumes: Vec<String>,
        network_options: BTreeMap<String, NetworkOptions>, volume_options: BTreeMap<String, VolumeOptions>,
        secrets: Vec<StackFile>, configs: Vec<StackFile>,
    }
}

dto! {
    /// Options of `stack_up`: `dependency_timeout` in seconds; `prune` removes services no longer in the stack.
    StackOptions => df::StackOptions { rollout: RolloutOptions, dependency_timeout: Seconds, prune: bool }
}

dto! {
    /// One service of a stack as `stack_ps` sees it.
    ServiceStatus => df::ServiceStatus { name: String, desired: u32, running: u32, tasks: Vec<Task> }
}

dto! {
    /// What `stack_down` removed.
    StackDownReport => df::StackDownReport {
        services: Vec<String>, containers: u32, networks: u32, volumes: u32, secrets: u32, configs: u32,
    }
}

/// Parses compose text into the stack `name`; relative paths resolve against `base_dir` (default `.`).
#[pyfunction]
#[pyo3(signature = (name, text, base_dir=None))]
fn parse_compose(name: &str, text: &str, base_dir: Option<PathBuf>) -> PyResult<Stack> {
    let base = base_dir.unwrap_or_else(|| PathBuf::from("."));
    Ok(crate::sync_call(|| df::parse_compose(name, text, &base))?.conv())
}

/// Reads and parses a compose file into the stack `name`.
#[pyfunction]
fn load_compose(name: &str, path: PathBuf) -> PyResult<Stack> {
    Ok(crate::sync_call(|| df::load_compose(name, &path))?.conv())
}

/// Reads compose files and merges them into the stack `name`, each overriding the ones before it.
#[pyfunction]
fn load_compose_files(name: &str, paths: Vec<PathBuf>) -> PyResult<Stack> {
    Ok(crate::sync_call(|| df::load_compose_files(name, &paths))?.conv())
}

/// Deploys or updates a stack on a `Fleet` or a `Swarm`; yields the stack's steps and every service's
/// rollout events.
#[pyfunction]
#[pyo3(signature = (backend, stack, options=None))]
fn stack_up(backend: Backend, stack: Stack, options: Option<StackOptions>) -> PyResult<RolloutStream> {
    let options: df::StackOptions = options.conv().unwrap_or_default();
    RolloutStream::open(|| backend.get().stack_up(stack.conv(), options))
}

/// The stack's services and their tasks.
#[pyfunction]
async fn stack_ps(backend: Backend, stack: String) -> PyResult<Vec<ServiceStatus>> {
    let b = backend.get();
    crate::call(async move { b.stack_ps(&stack).await }).await
}

/// Removes the stack's services and networks, and its volumes when `remove_volumes` is set.
#[pyfunction]
#[pyo3(signature = (backend, stack, remove_volumes=false))]
async fn stack_down(backend: Backend, stack: String, remove_volumes: bool) -> PyResult<StackDownReport> {
    let b = backend.get();
    crate::call(async move { b.stack_down(&stack, remove_volumes).await }).await
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Dependency>()?;
    m.add_class::<StackBuild>()?;
    m.add_class::<StackService>()?;
    m.add_class::<StackFile>()?;
    m.add_class::<Stack>()?;
    m.add_class::<StackOptions>()?;
    m.add_class::<ServiceStatus>()?;
    m.add_class::<StackDownReport>()?;
    m.add_function(wrap_pyfunction!(parse_compose, m)?)?;
    m.add_function(wrap_pyfunction!(load_compose, m)?)?;
    m.add_function(wrap_pyfunction!(load_compose_files, m)?)?;
    m.add_function(wrap_pyfunction!(stack_up, m)?)?;
    m.add_function(wrap_pyfunction!(stack_ps, m)?)?;
    m.add_function(wrap_pyfunction!(stack_down, m)?)?;
    m.add("LABEL_STACK", df::LABEL_STACK)?;
    m.add("MAX_COMPOSE_BYTES", df::MAX_COMPOSE_BYTES)?;
    Ok(())
}
