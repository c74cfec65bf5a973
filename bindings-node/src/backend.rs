//! The core `backend` module in Node: where services run (a `Fleet` or a `Swarm`), and the two
//! operations only the backend trait has, `scale` and `serviceStatus`. The others (`rollout`,
//! `rollback`, `removeService`, `stackUp`, `stackPs`, `stackDown`) take a backend too.

use std::sync::Arc;

use dockfleet as df;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::fleet::Fleet;
use crate::stack::ServiceStatus;
use crate::swarm::Swarm;
use crate::{arg, call};

/// A `Fleet` or a `Swarm` argument.
pub(crate) type Backend<'a> = Either<ClassInstance<'a, Fleet>, ClassInstance<'a, Swarm>>;

/// The core backend behind a `Fleet` or `Swarm` argument, for work that outlives the call.
pub(crate) fn backend(b: &Backend<'_>) -> Arc<dyn df::ServiceBackend> {
    match b {
        Either::A(f) => Arc::new(f.snapshot()),
        Either::B(s) => Arc::new(s.inner.clone()),
    }
}

/// Sets the replica count of a replicated service; resolves to its status once that many tasks run.
#[napi(catch_unwind)]
pub fn scale<'env>(
    env: &'env Env,
    backend: Backend<'_>,
    service: String,
    replicas: f64,
) -> Result<PromiseRaw<'env, ServiceStatus>> {
    let replicas = arg("replicas", replicas)?;
    let b = self::backend(&backend);
    call(env, async move { b.scale(&service, replicas).await })
}

/// The service's desired and running task counts and its current tasks.
#[napi(catch_unwind)]
pub fn service_status<'env>(
    env: &'env Env,
    backend: Backend<'_>,
    service: String,
) -> Result<PromiseRaw<'env, ServiceStatus>> {
    let b = self::backend(&backend);
    call(env, async move { b.service_status(&service).await })
}
