//! The core `stack` module in Node: compose files deployed as stacks (up, ps, down).

use std::collections::HashMap;
use std::time::Duration;

use dockfleet as df;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::backend::{backend, Backend};
use crate::error::js_error;
use crate::host::{NetworkOptions, VolumeOptions};
use crate::reconcile::Task;
use crate::rollout::{RolloutOptions, RolloutStream};
use crate::spec::ServiceSpec;
use crate::{call, object, Conv, Number};

object! { out
    #[doc = "A dependency of a stack service: `condition` is `service_started`, `service_healthy` or"]
    #[doc = "`service_completed_successfully`; `restart` restarts the dependent when a deploy replaces the"]
    #[doc = "dependency; `required: false` skips a dependency the stack lacks or that misses its condition."]
    Dependency => df::Dependency { service: String, condition: String, restart: bool, required: bool }
}

object! { out
    #[doc = "How a stack service's image is built (compose's `build:`)."]
    StackBuild => df::StackBuild { context: String, dockerfile: Option<String>, args: HashMap<String, String>,
        target: Option<String>, labels: HashMap<String, String>, no_cache: bool,
    }
}

object! { out
    #[doc = "One service of a stack: its compose name, spec, dependencies and build."]
    StackService => df::StackService {
        name: String, spec: ServiceSpec, depends_on: Vec<Dependency>, build: Option<StackBuild>,
    }
}

object! { out
    #[doc = "A secret or config a stack creates (Swarm backend): its full name, where its content comes from (exactly one of `file`, `environment`, read when the stack is deployed from this process's environment or else `env_files`, and for a config `content`) and its labels."]
    StackFile => df::StackFile {
        name: String, file: Option<String>, environment: Option<String>, content: Option<String>,
        labels: HashMap<String, String>, env_files: Vec<String>,
    }
}

object! { out
    #[doc = "A stack: services, and the networks, volumes, secrets and configs it creates."]
    Stack => df::Stack {
        name: String, services: Vec<StackService>, networks: Vec<String>, volumes: Vec<String>,
        network_options: HashMap<String, NetworkOptions>, volume_options: HashMap<String, VolumeOptions>,
        secrets: Vec<StackFile>, configs: Vec<StackFile>,
    }
}

object! { in
    #[doc = "Options of `stackUp`: `dependencyTimeout` in milliseconds; `prune` removes services no longer in the stack."]
    StackOptions => df::StackOptions { rollout: RolloutOptions, dependency_timeout: Number<Duration>, prune: bool }
}

object! { out
    #[doc = "One service of a stack as `stackPs` sees it."]
    ServiceStatus => df::ServiceStatus { name: String, desired: Number<u32>, running: Number<u32>, tasks: Vec<Task> }
}

object! { out
    #[doc = "What `stackDown` removed."]
    StackDownReport => df::StackDownReport {
        services: Vec<String>, containers: Number<u32>, networks: Number<u32>, volumes: Number<u32>, secrets: Number<u32>, configs: Number<u32>,
    }
}

/// Label naming the stack of a service, network or volume.
#[napi]
pub const LABEL_STACK: &str = df::LABEL_STACK;
/// Largest compose file accepted, in bytes.
#[napi]
pub const MAX_COMPOSE_BYTES: u32 = df::MAX_COMPOSE_BYTES as u32;

/// Parses compose text into the stack `name`; relative paths resolve against `baseDir` (default `.`).
#[napi(catch_unwind)]
pub fn parse_compose(env: Env, name: String, text: String, base_dir: Option<String>) -> Result<Stack> {
    let base = std::path::PathBuf::from(base_dir.unwrap_or_else(|| ".".into()));
    df::parse_compose(&name, &text, &base).map(Conv::conv).map_err(|e| js_error(&env, e))
}

/// Reads and parses a compose file into the stack `name`.
#[napi(catch_unwind)]
pub fn load_compose(env: Env, name: String, path: String) -> Result<Stack> {
    df::load_compose(&name, std::path::Path::new(&path)).map(Conv::conv).map_err(|e| js_error(&env, e))
}

/// Reads compose files and merges them into the stack `name`, each overriding the ones before it.
#[napi(catch_unwind)]
pub fn load_compose_files(env: Env, name: String, paths: Vec<String>) -> Result<Stack> {
    let paths: Vec<std::path::PathBuf> = paths.into_iter().map(Into::into).collect();
    df::load_compose_files(&name, &paths).map(Conv::conv).map_err(|e| js_error(&env, e))
}

/// Deploys or updates a stack on a `Fleet` or a `Swarm`; yields the stack's steps and every service's
/// rollout events.
#[napi(catch_unwind)]
pub fn stack_up(backend: Backend<'_>, stack: Stack, options: Option<StackOptions>) -> RolloutStream {
    let options: df::StackOptions = options.conv().unwrap_or_default();
    RolloutStream::new(self::backend(&backend).stack_up(stack.conv(), options))
}

/// The stack's services and their tasks.
#[napi(catch_unwind)]
pub fn stack_ps<'env>(
    env: &'env Env,
    backend: Backend<'_>,
    stack: String,
) -> Result<PromiseRaw<'env, Vec<ServiceStatus>>> {
    let b = self::backend(&backend);
    call(env, async move { b.stack_ps(&stack).await })
}

/// Removes the stack's services and networks, and its volumes when `removeVolumes` is set.
#[napi(catch_unwind)]
pub fn stack_down<'env>(
    env: &'env Env,
    backend: Backend<'_>,
    stack: String,
    remove_volumes: Option<bool>,
) -> Result<PromiseRaw<'env, StackDownReport>> {
    let b = self::backend(&backend);
    call(env, async move { b.stack_down(&stack, remove_volumes.unwrap_or(false)).await })
}
