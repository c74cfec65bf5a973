//! The core `health` module in Node: active health checks (durations in milliseconds).

use std::time::Duration;

use dockfleet as df;

use crate::object;
use crate::Number;

object! { in
    #[doc = "An active check: `kind` `tcp` or `http` (GET `path`, status within `minStatus`..`maxStatus`),"]
    #[doc = "every `interval`, each within `timeout`; `rise` passes or `fall` failures in a row flip it."]
    HealthCheck => df::HealthCheck {
        kind: String, path: String, min_status: Number<u16>, max_status: Number<u16>, interval: Number<Duration>, timeout: Number<Duration>, rise: Number<u32>, fall: Number<u32>,
    }
}
