//! The dockfleet demo: list the fleet's hosts with their capacity, build an image on one host, copy it
//! to the others with a progress bar, run a web container on every host and show them answering; then
//! deploy a compose stack across the hosts, show its placement, roll an update with a progress bar,
//! register what runs in discovery, put the built-in proxy in front of the web tier, kill a container
//! and watch it heal while the proxy keeps answering, and clean up.
//!
//! Run: `scripts/demo.sh` (brings the testbed up first), or
//! `cargo run -p dockfleet-examples --example demo -- [INVENTORY]` (default: the testbed's inventory).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dockfleet::{
    BuildOptions, ContainerSpec, Discovery, Fleet, Host, PortMapping, ProbeOptions, StackOptions, SuperviseOptions,
};
use futures::{StreamExt, TryStreamExt};

const BASE: &str = "dockfleet/busybox:latest";
const DEMO_IMAGE: &str = "dockfleet/demo-web:latest";
const LABEL: &str = "dockfleet.demo";
const PORT: u16 = 18080;

/// The demo's stack, shaped like the WordPress example of `docker stack deploy`: a web tier replicated
/// over the hosts, a db pinned to the manager with a named volume and a healthcheck the web waits for.
const COMPOSE: &str = r#"
services:
  web:
    image: dockfleet/demo-web:latest
    ports: ["PORT:80"]
    stop_grace_period: 1s
    healthcheck: {test: "wget -q -O /dev/null http://127.0.0.1/", interval: 500ms, retries: 10}
    depends_on: {db: {condition: service_healthy}}
    deploy:
      replicas: 3
      update_config: {parallelism: 1, monitor: 1s, failure_action: rollback}
      restart_policy: {delay: 300ms}
  db:
    image: dockfleet/busybox:latest
    command: sh -c 'touch /data/ready; exec sleep 3600'
    stop_grace_period: 1s
    volumes: [db-data:/data]
    healthcheck: {test: test -f /data/ready, interval: 300ms}
    deploy:
      placement: {constraints: [node.role == manager]}
volumes:
  db-data:
"#;

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
        "FROM {BASE}\nCMD [\"sh\", \"-c\", \"echo \\\"hello from $(hostname) on ${{DOCKFLEET_HOST:-a stack}}\\\" > /www/index.html && exec httpd -f -p 80 -h /www\"]\n"
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

    // The per-host containers go; the stack below serves the same port.
    for (h, id) in &running {
        h.remove_container(id, true, true).await?;
    }

    println!("\n== a stack from a compose file: web x3 spread over the hosts, db pinned to the manager");
    let stack_fleet = Fleet::from_hosts(up.clone())?;
    let mut stack = dockfleet::parse_compose("demo", &COMPOSE.replace("PORT", &PORT.to_string()), Path::new("."))?;
    let _ = dockfleet::stack_down(&stack_fleet, "demo", true).await; // a leftover of an interrupted run
    let options = StackOptions::default();
    let mut events = dockfleet::stack_up(stack_fleet.clone(), stack.clone(), options.clone());
    while let Some(e) = events.try_next().await? {
        match (e.phase.as_str(), e.kind.as_str()) {
            ("stack", _) => println!("  [{}] {}", e.kind, e.message),
            (_, "started") => println!("  {}: {}", e.service, e.message),
            _ => {}
        }
    }
    println!("  {:<12} {:<8} {:>4}  {:<10} answer", "service", "host", "slot", "state");
    for st in dockfleet::stack_ps(&stack_fleet, "demo").await? {
        for t in &st.tasks {
            let answer = if st.name == "demo_web" {
                http_get(&address(&stack_fleet, &t.host)?, PORT).await
            } else {
                String::new()
            };
            println!("  {:<12} {:<8} {:>4}  {:<10} {}", st.name, t.host, t.slot, t.state, answer.trim());
        }
    }

    println!("\n== what the web tier uses, sampled on every host at once (as Prometheus would scrape it)");
    let samples = dockfleet::service_stats(&stack_fleet, "demo_web").await?;
    println!("  {:<8} {:>4} {:>7} {:>10} {:>10} {:>5}", "host", "slot", "cpu %", "memory", "net in", "pids");
    for s in &samples {
        let st = &s.stats;
        println!(
            "  {:<8} {:>4} {:>7.2} {:>9.1}M {:>9.1}K {:>5}",
            s.host,
            s.slot,
            st.cpu_percent,
            st.memory_bytes as f64 / 1048576.0,
            st.network_rx_bytes as f64 / 1024.0,
            st.pids
        );
    }
    let text = dockfleet::prometheus_text(&samples);
    println!("  {} lines of Prometheus text, e.g. {}", text.lines().count(), text.lines().nth(2).unwrap_or(""));

    println!("\n== a rolling update of the web tier, one task at a time, each healthy before the next");
    let web = stack.services.iter_mut().find(|s| s.name == "web").expect("the compose file has web");
    web.spec.env.insert("VERSION".into(), "2".into());
    let mut events = dockfleet::stack_up(stack_fleet.clone(), stack.clone(), options);
    while let Some(e) = events.try_next().await? {
        if e.service == "demo_web" && e.total > 0 && (e.kind == "task-updated" || e.kind == "task-failed") {
            let bar: String = (0..e.total).map(|i| if i < e.done { '#' } else { '.' }).collect();
            println!("  [{bar}] {}/{} {} slot {} on {}: {}", e.done, e.total, e.kind, e.slot, e.host, e.message);
        }
    }

    println!("\n== discovery: the registrator registers what runs; the live instances of demo_web");
    let registry = dockfleet::EmbeddedDiscovery::new();
    let mut registrator = dockfleet::registrator(
        stack_fleet.clone(),
        std::sync::Arc::new(registry.clone()),
        dockfleet::RegistratorOptions::default(),
    );
    tokio::spawn(async move { while registrator.next().await.is_some() {} });
    let mut watch = registry.watch("demo_web");
    let mut live = Vec::new();
    while live.len() < 3 {
        watch.try_next().await?;
        live = registry.lookup("demo_web", &dockfleet::LookupOptions::default()).await?;
    }
    for i in &live {
        println!("  {:<22} {}:{:<6} {} slot {}", i.id, i.address, i.port, i.health, i.metadata["slot"]);
    }

    println!("\n== the built-in proxy in front of demo_web, fed by discovery: different replicas answer");
    let registry_dyn: Arc<dyn Discovery> = Arc::new(registry.clone());
    let proxy = dockfleet::Proxy::start(
        registry_dyn,
        dockfleet::ProxyOptions { routes: vec![dockfleet::Route::new("demo_web")], ..Default::default() },
    )
    .await?;
    proxy.wait_ready(Duration::from_secs(30)).await?;
    for _ in 0..6 {
        println!("  {} → {}", proxy.address(), http_get("127.0.0.1", proxy.port()).await.trim());
    }
    // A client keeps asking through the proxy while a task is killed below.
    let (stop_load, load) = {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let port = proxy.port();
        let task = tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, 0u32);
            while !*rx.borrow() {
                if http_get_once("127.0.0.1", port).await.is_some_and(|b| b.contains("hello")) {
                    ok += 1;
                } else {
                    failed += 1;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (ok, failed)
        });
        (tx, task)
    };

    println!("\n== supervising the web tier: kill a task (SIGKILL, as a crash would) and watch it heal");
    let web = stack.services.iter().find(|s| s.name == "web").expect("the compose file has web").spec.clone();
    let mut passes = dockfleet::supervise(stack_fleet.clone(), web, SuperviseOptions::default());
    passes.try_next().await?; // the first pass finds the service converged
    let victim = dockfleet::observe(&stack_fleet, "demo_web").await?.tasks[0].clone();
    println!("  killing {} on {}…", victim.name, victim.host);
    let started = Instant::now();
    stack_fleet.host(&victim.host)?.kill_container(&victim.id, None).await?;
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
    // The registry followed: the killed task left it, its replacement joined once healthy.
    let t = Instant::now();
    loop {
        let live = registry.lookup("demo_web", &dockfleet::LookupOptions::default()).await?;
        if live.len() == 3 && live.iter().all(|i| i.id != victim.name) {
            let ids: Vec<&str> = live.iter().map(|i| i.id.as_str()).collect();
            println!("  discovery: {} live, {:.2}s after the heal", ids.join(", "), t.elapsed().as_secs_f64());
            break;
        }
        if t.elapsed() > Duration::from_secs(30) {
            println!("  discovery did not catch up within 30 s");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    stop_load.send_replace(true);
    let (ok, failed) = load.await.map_err(|e| dockfleet::Error::Internal(e.to_string()))?;
    println!("  through the proxy meanwhile: {ok} requests answered, {failed} failed");
    proxy.shutdown(Duration::from_secs(2)).await;

    println!("\n== cleaning up");
    let down = dockfleet::stack_down(&stack_fleet, "demo", true).await?;
    println!(
        "  stack down: {} services, {} containers, {} networks, {} volumes",
        down.services.len(),
        down.containers,
        down.networks,
        down.volumes
    );
    for h in &up {
        h.remove_image(DEMO_IMAGE, true).await?;
    }
    println!(
        "  removed {} containers and the demo image from {} hosts",
        running.len() + down.containers as usize,
        up.len()
    );
    Ok(())
}

/// The address part of a host's `tcp://ADDR:PORT`.
fn address(fleet: &Fleet, host: &str) -> dockfleet::Result<String> {
    let h = fleet.host(host)?;
    Ok(h.address().split("://").nth(1).and_then(|a| a.rsplit_once(':')).map(|(a, _)| a.to_string()).unwrap_or_default())
}

/// One GET; the body, or `None` when there was no 200 answer.
async fn http_get_once(host: &str, port: u16) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect((host, port)).await.ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").await.ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    head.contains(" 200 ").then(|| body.to_string())
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
