//! The dockfleet demo: list the fleet's hosts with their capacity, build an image on one host, copy it
//! to the others with a progress bar, run a web container on every host, show them answering, clean up.
//!
//! Run: `scripts/demo.sh` (brings the testbed up first), or
//! `cargo run -p dockfleet-examples --example demo -- [INVENTORY]` (default: the testbed's inventory).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dockfleet::{
    BuildOptions, ContainerSpec, Fleet, Host, PlanOptions, PortMapping, ProbeOptions, ServiceSpec, SuperviseOptions,
};
use futures::{StreamExt, TryStreamExt};

const BASE: &str = "dockfleet/busybox:latest";
const DEMO_IMAGE: &str = "dockfleet/demo-web:latest";
const LABEL: &str = "dockfleet.demo";
const PORT: u16 = 18080;

#[tokio::main]
async fn main() -> dockfleet::Result<()> {
    let inventory = std::env::args().nth(1).unwrap_or_else(|| "/var/lib/dockfleet-testbed/fleet.toml".into());
    let fleet = Fleet::from_file(&inventory)?;
    println!("== fleet from {inventory}");
    println!("{:<8} {:<26} {:>5} {:>9} {:>8} {:>7}  labels", "host", "address", "cpus", "memory", "running", "ping");
    let statuses = fleet.probe(&ProbeOptions::default()).await;
    for s in &statuses {
        match (&s.info, s.latency) {
            (Some(i), Some(l)) => println!(
                "{:<8} {:<26} {:>5} {:>7.1}G {:>8} {:>5.1}ms  {}",
                s.name,
                s.address,
                i.cpus,
                i.memory_bytes as f64 / (1u64 << 30) as f64,
                i.containers_running,
                l.as_secs_f64() * 1000.0,
                s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
            ),
            _ => println!(
                "{:<8} {:<26} DOWN [{}] {}",
                s.name,
                s.address,
                s.error_code.as_deref().unwrap_or("?"),
                s.error.as_deref().unwrap_or("")
            ),
        }
    }
    let up: Vec<Arc<dyn Host>> =
        statuses.iter().filter(|s| s.reachable).map(|s| fleet.host(&s.name)).collect::<Result<_, _>>()?;
    let Some(builder) = up.first().cloned() else {
        eprintln!("no host is reachable");
        std::process::exit(1);
    };

    println!("\n== building {DEMO_IMAGE} on {}", builder.name());
    let ctx = std::env::temp_dir().join(format!("dockfleet-demo-{}", std::process::id()));
    std::fs::create_dir_all(&ctx).map_err(|e| dockfleet::Error::Io { path: ctx.display().to_string(), source: e })?;
    let dockerfile = format!(
        "FROM {BASE}\nCMD [\"sh\", \"-c\", \"echo \\\"hello from $(hostname) on $DOCKFLEET_HOST\\\" > /www/index.html && exec httpd -f -p 80 -h /www\"]\n"
    );
    std::fs::write(ctx.join("Dockerfile"), dockerfile)
        .map_err(|e| dockfleet::Error::Io { path: ctx.display().to_string(), source: e })?;
    let mut build = builder.build_image(&ctx, &BuildOptions { tag: DEMO_IMAGE.into(), ..Default::default() });
    while let Some(ev) = build.try_next().await? {
        match ev.kind.as_str() {
            "step" => println!("  {}", ev.message),
            "done" => println!("  built {}", ev.image_id.unwrap_or_default()),
            _ => {}
        }
    }
    let _ = std::fs::remove_dir_all(&ctx);

    println!("\n== copying the image to the other hosts (no registry: save → load, streamed)");
    for target in up.iter().skip(1) {
        let started = Instant::now();
        let mut copy = dockfleet::copy_image(builder.clone(), target.clone(), DEMO_IMAGE);
        while let Some(p) = copy.try_next().await? {
            let total = p.total_bytes.unwrap_or(p.bytes).max(p.bytes).max(1);
            let filled = (p.bytes * 30 / total) as usize;
            print!(
                "\r  {:>8} → {:<8} [{}{}] {:>5.1}/{:.1} MB",
                p.source,
                p.target,
                "#".repeat(filled),
                " ".repeat(30 - filled.min(30)),
                p.bytes as f64 / 1e6,
                total as f64 / 1e6
            );
            std::io::stdout().flush().ok();
            if p.done {
                println!("  done in {:.2}s", started.elapsed().as_secs_f64());
            }
        }
    }

    println!("\n== running one web container on every host");
    let mut running = Vec::new();
    for h in &up {
        let mut spec = ContainerSpec::new(DEMO_IMAGE);
        spec.name = Some(format!("dockfleet-demo-{}", h.name()));
        spec.labels.insert(LABEL.into(), "web".into());
        spec.env.insert("DOCKFLEET_HOST".into(), h.name().into());
        spec.ports = vec![PortMapping::tcp(80, PORT)];
        // A leftover from an interrupted run is replaced.
        let _ = h.remove_container(spec.name.as_deref().unwrap_or_default(), true, true).await;
        let id = h.create_container(&spec).await?;
        h.start_container(&id).await?;
        running.push((h.clone(), id));
    }
    for (h, id) in &running {
        let d = h.inspect_container(id).await?;
        let host_addr = h
            .address()
            .split("://")
            .nth(1)
            .and_then(|a| a.rsplit_once(':'))
            .map(|(a, _)| a.to_string())
            .unwrap_or_default();
        let answer = http_get(&host_addr, PORT).await;
        println!(
            "  {:<8} {} {:<10} http://{host_addr}:{PORT}/ → {}",
            h.name(),
            &d.id[..12],
            d.state.status,
            answer.trim()
        );
    }

    println!("\n== a service: 6 replicas of the demo image spread over the fleet, kept alive by dockfleet");
    let service_fleet = Fleet::from_hosts(up.clone())?;
    let mut spec = ServiceSpec::new("demo-svc", DEMO_IMAGE);
    spec.replicas = 6;
    spec.stop_grace_period = Duration::from_secs(1);
    spec.restart_policy.delay = Duration::from_millis(300);
    let mut passes = dockfleet::supervise(service_fleet.clone(), spec.clone(), SuperviseOptions::default());
    let first = passes.try_next().await?.ok_or_else(|| dockfleet::Error::Internal("supervision ended".into()))?;
    let mut placement: std::collections::BTreeMap<String, Vec<u32>> = Default::default();
    for t in &first.deployment.report.created {
        placement.entry(t.host.clone()).or_default().push(t.slot);
    }
    for (host, slots) in &placement {
        println!("  {host:<8} slots {slots:?}");
    }
    let victim = first.deployment.report.created[0].clone();
    println!("  killing {} on {} (SIGKILL, as a crash would)…", victim.name, victim.host);
    let started = Instant::now();
    service_fleet.host(&victim.host)?.kill_container(&victim.id, None).await?;
    if let Some(healed) = passes.try_next().await? {
        let new = &healed.deployment.report.created[0];
        println!(
            "  healed in {:.2}s ({}): slot {} runs again as {} on {}",
            started.elapsed().as_secs_f64(),
            healed.trigger,
            new.slot,
            new.name,
            new.host
        );
    }
    drop(passes);
    let again =
        dockfleet::plan(&spec, &dockfleet::observe(&service_fleet, "demo-svc").await?, &PlanOptions::default())?;
    println!("  re-planning the converged service: {} actions", again.actions.len());
    let removed = dockfleet::remove_service(&service_fleet, "demo-svc").await?;
    println!("  removed the service's {removed} tasks");

    println!("\n== cleaning up");
    let removals = futures::stream::iter(running.iter())
        .then(|(h, id)| async move { h.remove_container(id, true, true).await })
        .try_collect::<Vec<_>>();
    removals.await?;
    for h in &up {
        h.remove_image(DEMO_IMAGE, true).await?;
    }
    println!("  removed {} containers and the demo image from {} hosts", running.len(), up.len());
    Ok(())
}

async fn http_get(host: &str, port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for _ in 0..50 {
        if let Ok(mut s) = tokio::net::TcpStream::connect((host, port)).await {
            let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n").await;
            let mut buf = String::new();
            if s.read_to_string(&mut buf).await.is_ok() {
                if let Some((_, body)) = buf.split_once("\r\n\r\n") {
                    return body.to_string();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    format!("no answer from {host}:{port}")
}
