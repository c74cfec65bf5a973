//! The core `spec` module in Node: `ServiceSpec` and its parts. Durations in milliseconds.

use std::collections::HashMap;
use std::time::Duration;

use dockfleet as df;

use crate::host::{Healthcheck, LogConfig, Mount, Ulimit};
use crate::object;
use crate::Number;

object! { in
    #[doc = "A port of a service: `target` in the container, optionally `published` on each host."]
    ServicePort => df::ServicePort { target: Number<u16>, published: Option<Number<u16>>, protocol: String, mode: Option<String> }
}

object! { in
    #[doc = "Where tasks may go (`constraints` like `role==manager`) and how they spread."]
    Placement => df::Placement {
        constraints: Vec<String>, preferences: Vec<String>, max_replicas_per_host: Option<Number<u32>>, strategy: String,
    }
}

object! { in
    #[doc = "CPU and memory reservations and limits per task."]
    Resources => df::Resources {
        cpu_reservation: Option<f64>, cpu_limit: Option<f64>, memory_reservation: Option<Number<u64>>, memory_limit: Option<Number<u64>>,
        pids_limit: Option<Number<i64>>, cpu_shares: Option<Number<u64>>, cpuset_cpus: Option<String>,
        memory_swap_limit: Option<Number<i64>>, memory_swappiness: Option<Number<u8>>, oom_kill_disable: bool,
    }
}

object! { in
    #[doc = "When a stopped task is replaced; `delay` and `window` in milliseconds."]
    ServiceRestartPolicy => df::ServiceRestartPolicy { condition: String, delay: Number<Duration>, max_attempts: Number<u32>, window: Number<Duration> }
}

object! { in
    #[doc = "How updates and rollbacks replace tasks; `delay` and `monitor` in milliseconds."]
    UpdateConfig => df::UpdateConfig {
        parallelism: Number<u32>, delay: Number<Duration>, order: String, monitor: Number<Duration>, failure_action: String, max_failure_ratio: f64,
    }
}

object! { in
    #[doc = "A Swarm secret or config mounted into a service's tasks: `target` is a file name under"]
    #[doc = "`/run/secrets/` for a secret (default `source`), an absolute path for a config (default `/source`)."]
    ServiceFile => df::ServiceFile { source: String, target: String, mode: Number<u32> }
}

object! { in
    #[doc = "A replicated or global service."]
    ServiceSpec => df::ServiceSpec {
        name: String, image: String, command: Vec<String>, entrypoint: Option<Vec<String>>, working_dir: Option<String>,
        user: Option<String>, group_add: Vec<String>, stop_signal: Option<String>, hostname: Option<String>, extra_hosts: Vec<String>,
        init: Option<bool>, read_only: bool, cap_add: Vec<String>, cap_drop: Vec<String>, logging: Option<LogConfig>,
        ulimits: Vec<Ulimit>, sysctls: HashMap<String, String>, tmpfs: Vec<String>, shm_size: Option<Number<u64>>, dns: Vec<String>,
        dns_search: Vec<String>, dns_opt: Vec<String>, env: HashMap<String, String>,
        labels: HashMap<String, String>, ports: Vec<ServicePort>, volumes: Vec<Mount>, mode: String, replicas: Number<u32>,
        placement: Placement, resources: Resources, restart_policy: ServiceRestartPolicy,
        healthcheck: Option<Healthcheck>, update_config: UpdateConfig, rollback_config: UpdateConfig,
        stop_grace_period: Number<Duration>, shutdown_delay: Number<Duration>, networks: Vec<String>, network_aliases: Vec<String>,
        endpoint_mode: Option<String>, privileged: bool, security_opt: Vec<String>, devices: Vec<String>,
        tty: bool, stdin_open: bool, pid: Option<String>, ipc: Option<String>, oom_score_adj: Option<Number<i32>>, runtime: Option<String>, pull_policy: Option<String>,
        allow_privileged: bool,
        allow_host_mounts: bool, secrets: Vec<ServiceFile>, configs: Vec<ServiceFile>,
    }
}
