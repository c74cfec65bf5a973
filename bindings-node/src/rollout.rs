//! The core `rollout` module in Node: rolling updates gated on health, and rollback.

use std::time::Duration;

use dockfleet as df;
use napi_derive::napi;

use crate::backend::{backend, Backend};
use crate::spec::ServiceSpec;
use crate::{object, stream_class, Conv, Number};

object! { in
    #[doc = "Options of `rollout` and `rollback`: `readyTimeout` in milliseconds; `force` replaces every task even if its spec is unchanged (a rolling restart)."]
    RolloutOptions => df::RolloutOptions { seed: Number<u64>, ready_timeout: Number<Duration>, force: bool }
}

object! { out
    #[doc = "One step of a rollout: `kind` is `started`, `image`, `task-started`, `task-updated`, `task-failed`, then"]
    #[doc = "`completed` or `paused`; `done` of `total` for a progress bar; `phase` is `update` or `rollback`."]
    RolloutEvent => df::RolloutEvent {
        kind: String, phase: String, service: String, host: String, slot: Number<u32>, id: Option<String>, done: Number<u32>,
        total: Number<u32>, failed: Number<u32>, message: String,
    }
}

stream_class!(
    #[doc = "Rollout progress: `for await (const e of rollout(fleet, spec))`; ends after `completed` or `paused`."]
    RolloutStream, df::RolloutEvent => RolloutEvent
);

/// Creates the service or updates it to `spec` per its update config, gated on health, on a `Fleet`
/// or a `Swarm`; yields progress.
#[napi(catch_unwind)]
pub fn rollout(backend: Backend<'_>, spec: ServiceSpec, options: Option<RolloutOptions>) -> RolloutStream {
    let options: df::RolloutOptions = options.conv().unwrap_or_default();
    RolloutStream::new(self::backend(&backend).rollout(spec.conv(), options))
}

/// Rolls `service` back to the spec its tasks replaced, per its rollback config; yields progress.
#[napi(catch_unwind)]
pub fn rollback(backend: Backend<'_>, service: String, options: Option<RolloutOptions>) -> RolloutStream {
    let options: df::RolloutOptions = options.conv().unwrap_or_default();
    RolloutStream::new(self::backend(&backend).rollback(&service, options))
}
