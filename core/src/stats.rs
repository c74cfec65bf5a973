//! Container resource statistics: the engine's raw counters turned into the numbers people read
//! (CPU %, memory without page cache, network and block I/O totals), as `docker stats` computes them.

use bollard::models::ContainerStatsResponse;

use crate::host::Stats;

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
