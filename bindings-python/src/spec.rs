//! The core `spec` module in Python: `ServiceSpec` and its parts. Durations in seconds.

use std::collections::BTreeMap;

use dockfleet as df;
use pyo3::prelude::*;

use crate::dto;
use crate::host::{Healthcheck, LogConfig, Mount, Ulimit};
use crate::Seconds;

dto! {
    /// A port of a service: `target` in the container, optionally `published` on each host.
    ServicePort => df::ServicePort { target: u16, published: Option<u16>, protocol: String, mode: Option<String> }
}

dto! {
    /// Where tasks may go (`constraints` like `role==manager`) and how they spread.
    Placement => df::Placement {
        constraints: Vec<String>, preferences: Vec<String>, max_replicas_per_host: Option<u32>, strategy: String,
    }
}

dto! {
    /// CPU and memory reservations and limits per task.
    Resources => df::Resources {
        cpu_reservation: Option<f64>, cpu_limit: Option<f64>, memory_reservation: Option<u64>, memory_limit: Option<u64>,
        pids_limit: Option<i64>, cpu_shares: Option<u64>, cpuset_cpus: Option<String>, memory_swap_limit: Option<i64>,
        memory_swappiness: Option<u8>, oom_kill_disable: bool,
    }
}

dto! {
    /// When a stopped task is replaced; `delay` and `window` in seconds.
    ServiceRestartPolicy => df::ServiceRestartPolicy { condition: String, delay: Seconds, max_attempts: u32, window: Seconds }
}

dto! {
    /// How updates and rollbacks replace tasks; `delay` and `monitor` in seconds.
    UpdateConfig => df::UpdateConfig {
        parallelism: u32, delay: Seconds, order: String, monitor: Seconds, failure_action: String, max_failure_ratio: f64,
    }
}

dto! {
    /// A Swarm secret or config mounted into a service's tasks: `target` is a file name under
    /// `/run/secrets/` for a secret (default `source`), an absolute path for a config (default `/source`).
    ServiceFile => df::ServiceFile { source: String, target: String, mode: u32 }
}

dto! {
    /// A replicated or global service.
    ServiceSpec => df::ServiceSpec {
        name: String, image: String, command: Vec<String>, entrypoint: Option<Vec<String>>, working_dir: Option<String>,
        user: Option<String>, group_add: Vec<String>, stop_signal: Option<String>, hostname: Option<String>, extra_hosts: Vec<String>,
        init: Option<bool>, read_only: bool, cap_add: Vec<String>, cap_drop: Vec<String>, logging: Option<LogConfig>,
        ulimits: Vec<Ulimit>, sysctls: BTreeMap<String, String>, tmpfs: Vec<String>, shm_size: Option<u64>, dns: Vec<String>,
        dns_search: Vec<String>, dns_opt: Vec<String>, env: BTreeMap<String, String>,
        labels: BTreeMap<String, String>, ports: Vec<ServicePort>, volumes: Vec<Mount>, mode: String, replicas: u32,
        placement: Placement, resources: Resources, restart_policy: ServiceRestartPolicy,
        healthcheck: Option<Healthcheck>, update_config: UpdateConfig, rollback_config: UpdateConfig,
        stop_grace_period: Seconds, shutdown_delay: Seconds, networks: Vec<String>, network_aliases: Vec<String>,
        endpoint_mode: Option<String>, privileged: bool, security_opt: Vec<String>, devices: Vec<String>,
        tty: bool, stdin_open: bool, pid: Option<String>, ipc: Option<String>, oom_score_adj: Option<i32>, runtime: Option<String>, pull_policy: Option<String>,
        allow_privileged: bool,
        allow_host_mounts: bool, secrets: Vec<ServiceFile>, configs: Vec<ServiceFile>,
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ServicePort>()?;
    m.add_class::<ServiceFile>()?;
    m.add_class::<Placement>()?;
    m.add_class::<Resources>()?;
    m.add_class::<ServiceRestartPolicy>()?;
    m.add_class::<UpdateConfig>()?;
    m.add_class::<ServiceSpec>()?;
    Ok(())
}
