//! The core `health` module in Node: active health checks (durations in milliseconds).

use dockfleet as df;

use crate::object;

object! { in
    #[doc = "An active check: `kind` `tcp` or `http` (GET `path`, status within `minStatus`..`maxStatus`),"]
    #[doc = "every `interval`, each within `timeout`; `rise` passes or `fall` failures in a row flip it."]
    HealthCheck => df::HealthCheck {
        kind: String, path: String, min_status: u32, max_status: u32, interval: f64, timeout: f64, rise: u32, fall: u32,
    }
}
