//! Container resource statistics: the engine's raw counters turned into the numbers people read
//! (CPU %, memory without page cache, network and block I/O totals), as `docker stats` computes them;
//! a service's tasks sampled across the fleet at once ([`service_stats`]), and the samples in
//! Prometheus' text format ([`prometheus_text`]) for a scrape endpoint — what cAdvisor gives for one
//! host, for every host a service runs on.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use bollard::models::ContainerStatsResponse;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fleet::Fleet;
use crate::host::Stats;
use crate::reconcile::{labelled_tasks, LabelledTask, LABEL_SERVICE};

/// One running task's resource use, with where it runs ([`service_stats`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskStats {
    /// The service.
    pub service: String,
    /// Host the task runs on.
    pub host: String,
    /// Container name of the task.
    pub name: String,
    /// Slot of the task (0 in global mode).
    pub slot: u32,
    /// The sample (`stats.id` is the container ID).
    pub stats: Stats,
}

/// One sample of every running task of `service` on the fleet, taken on all hosts at once (about a
/// second: CPU needs two readings; up to [`STATS_PER_HOST`] tasks at a time on one host), ordered by
/// slot and host. A host that cannot be read (or does not list its tasks within a probe's 5 s), and a
/// task that stops meanwhile (or gives no sample within [`SAMPLE_TIMEOUT`]), are left out with a
/// warning; an unknown service has no samples.
pub async fn service_stats(fleet: &Fleet, service: &str) -> Result<Vec<TaskStats>> {
    labelled_stats(fleet, LABEL_SERVICE, service).await
}

/// [`service_stats`] of the running containers whose label `key` is `service`.
pub(crate) async fn labelled_stats(fleet: &Fleet, key: &str, service: &str) -> Result<Vec<TaskStats>> {
    use futures::StreamExt;
    crate::discovery::check_name("service", service)?;
    let mut by_host: BTreeMap<String, Vec<LabelledTask>> = BTreeMap::new();
    for t in labelled_tasks(fleet, key, service, false).await {
        by_host.entry(t.host.name().to_string()).or_default().push(t);
    }
    let sample = |t: LabelledTask| async move {
        let timeout =
            || Error::Timeout { host: t.host.name().to_string(), operation: "stats".into(), after: SAMPLE_TIMEOUT };
        let stats = tokio::time::timeout(SAMPLE_TIMEOUT, t.host.stats(&t.container.id)).await;
        match stats.unwrap_or_else(|_| Err(timeout())) {
            Ok(stats) => Some(TaskStats {
                service: service.to_string(),
                host: t.host.name().to_string(),
                name: t.container.name,
                slot: t.slot,
                stats,
            }),
            Err(e) => {
                tracing::warn!(host = %t.host.name(), container = %t.container.name, error = %e, "no stats for a task");
                None
            }
        }
    };
    // Every host at once; on each, at most STATS_PER_HOST samples in flight (one connection each).
    let hosts = by_host
        .into_values()
        .map(|tasks| futures::stream::iter(tasks).map(sample).buffer_unordered(STATS_PER_HOST).collect::<Vec<_>>());
    let mut samples: Vec<TaskStats> = futures::future::join_all(hosts).await.into_iter().flatten().flatten().collect();
    samples.sort_by(|a, b| (a.slot, &a.host, &a.name).cmp(&(b.slot, &b.host, &b.name)));
    Ok(samples)
}

/// How long [`service_stats`] waits for one task's sample (the engine takes about a second) before it
/// leaves the task out.
pub const SAMPLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How many tasks [`service_stats`] samples at once on one host: each sample holds a connection to
/// the engine for about a second, and a host may run hundreds of a service's tasks.
pub const STATS_PER_HOST: usize = 32;

/// The figures of [`prometheus_text`]: name, type, help, value.
type Figure = (&'static str, &'static str, &'static str, fn(&Stats) -> f64);

const FIGURES: [Figure; 8] = [
    ("cpu_percent", "gauge", "CPU use since the previous reading, in percent of one CPU.", |s| s.cpu_percent),
    ("memory_bytes", "gauge", "Memory in use, page cache excluded.", |s| s.memory_bytes as f64),
    ("memory_limit_bytes", "gauge", "Memory limit (the machine's memory when unlimited).", |s| {
        s.memory_limit_bytes as f64
    }),
    ("network_receive_bytes_total", "counter", "Bytes received over all networks.", |s| s.network_rx_bytes as f64),
    ("network_transmit_bytes_total", "counter", "Bytes sent over all networks.", |s| s.network_tx_bytes as f64),
    ("block_read_bytes_total", "counter", "Bytes read from block devices.", |s| s.block_read_bytes as f64),
    ("block_write_bytes_total", "counter", "Bytes written to block devices.", |s| s.block_write_bytes as f64),
    ("pids", "gauge", "Processes in the task.", |s| s.pids as f64),
];

/// The samples in Prometheus' text exposition format (0.0.4): one `dockfleet_task_*` family per figure
/// (gauges for CPU %, memory and processes, counters for network and block I/O), each sample labelled
/// with `service`, `host`, `slot`, `name` and `id`. Serve it from a scrape endpoint, or write it where
/// node_exporter's textfile collector reads.
pub fn prometheus_text(samples: &[TaskStats]) -> String {
    let mut out = String::new();
    for (name, kind, help, value) in FIGURES {
        let _ = writeln!(out, "# HELP dockfleet_task_{name} {help}\n# TYPE dockfleet_task_{name} {kind}");
        for t in samples {
            let labels = BTreeMap::from([
                ("host", t.host.as_str()),
                ("id", t.stats.id.as_str()),
                ("name", t.name.as_str()),
                ("service", t.service.as_str()),
            ]);
            let mut l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
            l.push(format!("slot=\"{}\"", t.slot));
            let _ = writeln!(out, "dockfleet_task_{name}{{{}}} {}", l.join(","), number(value(&t.stats)));
        }
    }
    out
}

/// A label value escaped as the exposition format asks (backslash, double quote, line feed).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A sample value: integers without a fraction, `NaN` and `±Inf` spelled as Prometheus does.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// Converts one engine stats sample into [`Stats`].
pub fn from_docker(id: &str, s: &ContainerStatsResponse) -> Stats {
    let cpu = s.cpu_stats.clone().unwrap_or_default();
    let pre = s.precpu_stats.clone().unwrap_or_default();
    let total = |c: &bollard::models::ContainerCpuStats| c.cpu_usage.as_ref().and_then(|u| u.total_usage).unwrap_or(0);
    let cpu_delta = total(&cpu).saturating_sub(total(&pre)) as f64;
    let sys_delta = cpu.system_cpu_usage.unwrap_or(0).saturating_sub(pre.system_cpu_usage.unwrap_or(0)) as f64;
    let online = cpu
        .online_cpus
        .filter(|n| *n > 0)
        .map(f64::from)
        .or_else(|| cpu.cpu_usage.as_ref().and_then(|u| u.percpu_usage.as_ref()).map(|v| v.len() as f64))
        .unwrap_or(1.0);
    let cpu_percent = if sys_delta > 0.0 && cpu_delta > 0.0 { cpu_delta / sys_delta * online * 100.0 } else { 0.0 };

    let mem = s.memory_stats.clone().unwrap_or_default();
    let raw = mem.stats.unwrap_or_default();
    // cgroup v1 reports page cache as "total_inactive_file"/"cache", v2 as "inactive_file".
    let cache = raw
        .get("total_inactive_file")
        .or_else(|| raw.get("inactive_file"))
        .or_else(|| raw.get("cache"))
        .copied()
        .unwrap_or(0);
    let usage = mem.usage.unwrap_or(0);
    let memory_bytes = usage.saturating_sub(cache.min(usage));
    let memory_limit_bytes = mem.limit.unwrap_or(0);
    let memory_percent =
        if memory_limit_bytes > 0 { memory_bytes as f64 / memory_limit_bytes as f64 * 100.0 } else { 0.0 };

    let (mut rx, mut tx) = (0u64, 0u64);
    for n in s.networks.as_ref().into_iter().flat_map(|m| m.values()) {
        rx += n.rx_bytes.unwrap_or(0);
        tx += n.tx_bytes.unwrap_or(0);
    }
    let (mut read, mut write) = (0u64, 0u64);
    let entries = s.blkio_stats.as_ref().and_then(|b| b.io_service_bytes_recursive.as_ref());
    for e in entries.into_iter().flatten() {
        match e.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => read += e.value.unwrap_or(0),
            Some("write") => write += e.value.unwrap_or(0),
            _ => {}
        }
    }
    Stats {
        id: s.id.clone().unwrap_or_else(|| id.to_string()),
        cpu_percent,
        memory_bytes,
        memory_limit_bytes,
        memory_percent,
        network_rx_bytes: rx,
        network_tx_bytes: tx,
        block_read_bytes: read,
        block_write_bytes: write,
        pids: s.pids_stats.as_ref().and_then(|p| p.current).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_one_family_per_figure_and_escapes_labels() {
        let t = TaskStats {
            service: "web".into(),
            host: "df-1".into(),
            name: "we\"b\\1\n".into(),
            slot: 2,
            stats: Stats { id: "abc".into(), cpu_percent: 12.5, memory_bytes: 4096, pids: 3, ..Default::default() },
        };
        let text = prometheus_text(&[t]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8 * 3, "{text}");
        assert_eq!(
            lines[0],
            "# HELP dockfleet_task_cpu_percent CPU use since the previous reading, in percent of one CPU."
        );
        assert_eq!(lines[1], "# TYPE dockfleet_task_cpu_percent gauge");
        assert_eq!(
            lines[2],
            r#"dockfleet_task_cpu_percent{host="df-1",id="abc",name="we\"b\\1\n",service="web",slot="2"} 12.5"#
        );
        assert!(lines[5].ends_with("} 4096"), "{}", lines[5]);
        assert!(text.contains("# TYPE dockfleet_task_network_receive_bytes_total counter\n"));
        assert!(lines[23].starts_with("dockfleet_task_pids{") && lines[23].ends_with("} 3"));
        assert_eq!(prometheus_text(&[]).lines().count(), 16, "families without samples");
        assert_eq!(
            (number(f64::NAN), number(f64::INFINITY), number(0.25)),
            ("NaN".into(), "+Inf".into(), "0.25".into())
        );
    }

    #[test]
    fn computes_like_docker_stats() {
        let json = r#"{
          "id": "abc",
          "cpu_stats": {"cpu_usage": {"total_usage": 3000000}, "system_cpu_usage": 20000000, "online_cpus": 2},
          "precpu_stats": {"cpu_usage": {"total_usage": 1000000}, "system_cpu_usage": 10000000},
          "memory_stats": {"usage": 1000, "limit": 4000, "stats": {"total_inactive_file": 200}},
          "networks": {"eth0": {"rx_bytes": 10, "tx_bytes": 20}, "eth1": {"rx_bytes": 1, "tx_bytes": 2}},
          "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 7}, {"op": "write", "value": 9}]},
          "pids_stats": {"current": 3}
        }"#;
        let s: ContainerStatsResponse = serde_json::from_str(json).unwrap();
        let st = from_docker("abc", &s);
        assert!((st.cpu_percent - 40.0).abs() < 1e-9, "{}", st.cpu_percent);
        assert_eq!(st.memory_bytes, 800);
        assert!((st.memory_percent - 20.0).abs() < 1e-9);
        assert_eq!((st.network_rx_bytes, st.network_tx_bytes), (11, 22));
        assert_eq!((st.block_read_bytes, st.block_write_bytes), (7, 9));
        assert_eq!(st.pids, 3);
    }
}
