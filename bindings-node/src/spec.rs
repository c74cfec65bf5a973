//! The core `spec` module in Node: `ServiceSpec` and its parts. Durations in milliseconds.

use std::collections::HashMap;

use dockfleet as df;

use crate::host::{Healthcheck, Mount};
use crate::object;

object! { in
    #[doc = "A port of a service: `target` in the container, optionally `published` on each host."]
    ServicePort => df::ServicePort { target: u32, published: Option<u32>, protocol: String }
}

object! { in
    #[doc = "Where tasks may go (`constraints` like `role==manager`) and how they spread."]
    Placement => df::Placement {
        constraints: Vec<String>, preferences: Vec<String>, max_replicas_per_host: Option<u32>, strategy: String,
    }
}

object! { in
    #[doc = "CPU and memory reservations and limits per task."]
    Resources => df::Resources {
        cpu_reservation: Option<f64>, cpu_limit: Option<f64>, memory_reservation: Option<i64>, memory_limit: Option<i64>,
    }
}

object! { in
    #[doc = "When a stopped task is replaced; `delay` and `window` in milliseconds."]
    ServiceRestartPolicy => df::ServiceRestartPolicy { condition: String, delay: f64, max_attempts: u32, window: f64 }
}

object! { in
    #[doc = "How updates and rollbacks replace tasks; `delay` and `monitor` in milliseconds."]
    UpdateConfig => df::UpdateConfig {
        parallelism: u32, delay: f64, order: String, monitor: f64, failure_action: String, max_failure_ratio: f64,
    }
}

object! { in
    #[doc = "A Swarm secret or config mounted into a service's tasks: `target` is a file name under"]
    #[doc = "`/run/secrets/` for a secret (default `source`), an absolute path for a config (default `/source`)."]
    ServiceFile => df::ServiceFile { source: String, target: String, mode: u32 }
}

object! { in
    #[doc = "A replicated or global service."]
    ServiceSpec => df::ServiceSpec {
        name: String, image: String, command: Vec<String>, env: HashMap<String, String>,
        labels: HashMap<String, String>, ports: Vec<ServicePort>, volumes: Vec<Mount>, mode: String, replicas: u32,
        placement: Placement, resources: Resources, restart_policy: ServiceRestartPolicy,
        healthcheck: Option<Healthcheck>, update_config: UpdateConfig, rollback_config: UpdateConfig,
        stop_grace_period: f64, shutdown_delay: f64, networks: Vec<String>, privileged: bool, allow_privileged: bool,
        allow_host_mounts: bool, secrets: Vec<ServiceFile>, configs: Vec<ServiceFile>,
    }
}
