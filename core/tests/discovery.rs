//! Discovery on the testbed's real engines: the registrator registers what runs (dockfleet services by
//! name and slot, other containers by image), follows deaths at once, honours HEALTHCHECK and active
//! HTTP checks, and drops stale entries at resync with the engines as the authority.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use dockfleet::*;
use futures::StreamExt;

async fn http_ok(address: &str, port: u16) -> bool {
    HealthCheck { kind: "http".into(), ..Default::default() }.probe(address, port).await.is_ok()
}

#[tokio::test]
async fn the_registrator_follows_services_deaths_and_health() {
    let fleet = plain_fleet();
    let registry = EmbeddedDiscovery::new();
    let name = unique("disc").replace('-', "_");
    // Three web tasks, each publishing port 80 on a port its engine picks; httpd runs in the background
    // so a test can stop it without stopping the container.
    let mut spec = ServiceSpec::new(&name, IMAGE);
    spec.command = vec!["sh".into(), "-c".into(), "httpd -p 80 -h /www; exec sleep 600".into()];
    spec.replicas = 3;
    spec.stop_grace_period = Duration::from_secs(1);
    spec.ports = vec![ServicePort { target: 80, published: Some(0), protocol: "tcp".into(), mode: None }];
    deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();

    let checks = BTreeMap::from([(
        name.clone(),
        HealthCheck {
            kind: "http".into(),
            interval: Duration::from_millis(200),
            rise: 2,
            fall: 2,
            ..Default::default()
        },
    )]);
    let options = RegistratorOptions { resync: Duration::from_secs(2), checks, ..Default::default() };
    let reg: Arc<dyn Discovery> = Arc::new(registry.clone());
    let mut events = registrator(fleet.clone(), reg, options);
    let pump = tokio::spawn(async move {
        while let Some(e) = events.next().await {
            e.unwrap();
        }
    });

    let live = wait_lookup(&registry, &name, false, |v| v.len() == 3).await;
    let mut hosts: Vec<&str> = live.iter().map(|i| i.metadata["host"].as_str()).collect();
    hosts.sort();
    assert_eq!(hosts, ["df-1", "df-2", "df-3"]);
    for i in &live {
        assert!(i.address.starts_with("10.250.0.") && i.port != 80, "{i:?}");
        assert!(http_ok(&i.address, i.port).await, "the registered address answers: {i:?}");
        assert!(i.metadata.contains_key("slot") && i.ttl.is_some());
    }

    // httpd stops answering in one task: the active check takes it out of lookups (still listed as critical).
    let victim = live[0].clone();
    let h = fleet.host(&victim.metadata["host"]).unwrap();
    h.exec(&victim.metadata["container"], &["killall".into(), "httpd".into()], &ExecOptions::default()).await.unwrap();
    wait_lookup(&registry, &name, false, |v| v.len() == 2 && v.iter().all(|i| i.id != victim.id)).await;
    let all = wait_lookup(&registry, &name, true, |v| v.len() == 3).await;
    assert_eq!(all.iter().find(|i| i.id == victim.id).unwrap().health, "critical");

    // A task is killed: its entry goes at once (from the die event), not at the next resync.
    let dead = live[1].clone();
    let mut watch = registry.watch(&name);
    watch.next().await.unwrap().unwrap();
    let t = Instant::now();
    fleet.host(&dead.metadata["host"]).unwrap().kill_container(&dead.metadata["container"], None).await.unwrap();
    loop {
        let e = watch.next().await.unwrap().unwrap();
        if e.kind == "remove" && e.instances[0].id == dead.id {
            break;
        }
    }
    assert!(t.elapsed() < Duration::from_secs(1), "removed {:?} after the kill", t.elapsed());

    // A plain container publishing a port registers under its image's name.
    let df2 = fleet.host("df-2").unwrap();
    let tag = unique("plain");
    let mut c = ContainerSpec::new(IMAGE);
    c.command = vec!["httpd".into(), "-f".into(), "-p".into(), "80".into(), "-h".into(), "/www".into()];
    c.labels.insert("dockfleet.test".into(), tag.clone());
    c.labels.insert("dockfleet.discovery.service".into(), tag.clone());
    c.ports = vec![PortMapping::tcp(80, 0)];
    let id = df2.create_container(&c).await.unwrap();
    df2.start_container(&id).await.unwrap();
    let plain = wait_lookup(&registry, &tag, false, |v| v.len() == 1).await;
    assert_eq!(plain[0].address, "10.250.0.12");

    // A stale entry (as a crashed registrator would leave) is dropped at the next resync.
    let mut stale = Instance::new(&name, "ghost", "10.250.0.11", 1);
    stale.metadata = BTreeMap::from([
        ("registrator".into(), "dockfleet".into()),
        ("host".into(), "df-1".into()),
        ("container".into(), "gone".into()),
    ]);
    registry.register(&stale).await.unwrap();
    wait_lookup(&registry, &name, true, |v| v.iter().all(|i| i.id != "ghost")).await;

    pump.abort();
    df2.remove_container(&id, true, false).await.unwrap();
    remove_service(&fleet, &name).await.unwrap();
}

#[tokio::test]
async fn stopping_the_registrator_lets_its_entries_expire() {
    let fleet = plain_fleet();
    let registry = EmbeddedDiscovery::new();
    let spec = web_service("ttl", 2);
    let name = spec.name.clone();
    deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    let ttl = Duration::from_millis(500);
    let options = RegistratorOptions { ttl: Some(ttl), ..Default::default() };
    let mut events = registrator(fleet.clone(), Arc::new(registry.client()), options);
    let pump = tokio::spawn(async move {
        while let Some(e) = events.next().await {
            e.unwrap();
        }
    });
    wait_lookup(&registry, &name, false, |v| v.len() == 2).await;
    tokio::time::sleep(ttl * 3).await;
    assert_eq!(registry.lookup(&name, &LookupOptions::default()).await.unwrap().len(), 2, "kept alive while it runs");
    let stopped = Instant::now();
    pump.abort();
    let _ = pump.await;
    wait_lookup(&registry, &name, true, |v| v.is_empty()).await;
    assert!(stopped.elapsed() < ttl + Duration::from_secs(1), "expired after {:?}", stopped.elapsed());
    remove_service(&fleet, &name).await.unwrap();
}

#[tokio::test]
async fn two_registrators_do_not_flap_and_one_covers_for_the_other() {
    let fleet = plain_fleet();
    let registry = EmbeddedDiscovery::new();
    let spec = web_service("pair", 3);
    let name = spec.name.clone();
    deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    let options = RegistratorOptions {
        resync: Duration::from_millis(500),
        ttl: Some(Duration::from_millis(500)),
        ..Default::default()
    };
    let start = |d: EmbeddedDiscovery| {
        let mut events = registrator(fleet.clone(), Arc::new(d), options.clone());
        tokio::spawn(async move {
            while let Some(e) = events.next().await {
                e.unwrap();
            }
        })
    };
    let a = start(registry.client());
    wait_lookup(&registry, &name, false, |v| v.len() == 3).await;
    let b = start(registry.client());
    // Both running, several resyncs: not one change reaches a watcher.
    let mut watch = registry.watch(&name);
    watch.next().await.unwrap().unwrap();
    let quiet = tokio::time::timeout(Duration::from_secs(2), watch.next()).await;
    assert!(quiet.is_err(), "entries flapped: {quiet:?}");
    // The first one stops: its entries lapse, and the second registers them again within a resync.
    a.abort();
    let _ = a.await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    wait_lookup(&registry, &name, false, |v| v.len() == 3).await;
    b.abort();
    remove_service(&fleet, &name).await.unwrap();
}

/// A service on the host network (a node agent's way): each task listens in its host's own network
/// namespace, so the service runs one task per host, only where its port is free, and discovery finds
/// the tasks at their hosts' addresses although the engine reports no port of theirs.
#[tokio::test]
async fn a_service_on_the_host_network_runs_once_per_host_and_is_found_at_its_hosts_address() {
    const PORT: u16 = 18093;
    let fleet = plain_fleet();
    let name = unique("hostnet").replace('-', "_");
    // df-3 has the port already: a plain container publishes it.
    let df3 = fleet.host("df-3").unwrap();
    let tag = unique("holder");
    let mut holder = ContainerSpec::new(IMAGE);
    holder.command = vec!["sleep".into(), "600".into()];
    holder.labels.insert("dockfleet.test".into(), tag.clone());
    holder.ports = vec![PortMapping::tcp(80, PORT)];
    let holder = df3.create_container(&holder).await.unwrap();
    df3.start_container(&holder).await.unwrap();

    let mut spec = ServiceSpec::new(&name, IMAGE);
    spec.networks = vec!["host".into()];
    spec.command = ["httpd", "-f", "-p", &PORT.to_string(), "-h", "/www"].map(String::from).to_vec();
    spec.replicas = 3;
    spec.stop_grace_period = Duration::from_secs(1);
    spec.ports = vec![ServicePort { target: PORT, ..Default::default() }];
    let p = plan(&spec, &observe(&fleet, &name).await.unwrap(), &PlanOptions::default()).unwrap();
    assert_eq!(p.unplaced.len(), 1, "{p:?}");
    assert!(p.reasons["df-3"].contains(&format!("port {PORT}/tcp is already in use")), "{p:?}");
    deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    let o = observe(&fleet, &name).await.unwrap();
    let mut hosts: Vec<&str> = o.tasks.iter().filter(|t| t.state == "running").map(|t| t.host.as_str()).collect();
    hosts.sort();
    assert_eq!(hosts, ["df-1", "df-2"]);
    // The tasks' ports count as taken: a second service on the same port goes where it is free.
    let mut other = ServiceSpec::new(format!("{name}_other"), IMAGE);
    other.ports = vec![ServicePort { target: 80, published: Some(PORT), ..Default::default() }];
    other.replicas = 3;
    let p = plan(&other, &observe(&fleet, &other.name).await.unwrap(), &PlanOptions::default()).unwrap();
    assert_eq!((p.unplaced.len(), p.reasons.len()), (3, 3), "{p:?}");

    // The port is freed on df-3: the next deploy places the third task there.
    df3.remove_container(&holder, true, false).await.unwrap();
    deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    let registry = EmbeddedDiscovery::new();
    let reg: Arc<dyn Discovery> = Arc::new(registry.clone());
    let mut events = registrator(fleet.clone(), reg, RegistratorOptions::default());
    let pump = tokio::spawn(async move {
        while let Some(e) = events.next().await {
            e.unwrap();
        }
    });
    let live = wait_lookup(&registry, &name, false, |v| v.len() == 3).await;
    let mut found: Vec<(String, u16)> = live.iter().map(|i| (i.address.clone(), i.port)).collect();
    found.sort();
    let expected: Vec<(String, u16)> = (1..=3).map(|n| (format!("10.250.0.1{n}"), PORT)).collect();
    assert_eq!(found, expected, "each task at its host's own address and port");
    for (address, port) in &found {
        assert!(http_get(&format!("{address}:{port}")).await.starts_with("HTTP/1"), "{address}:{port} answers");
    }
    // A container run on the host network by hand is found alike when its label names its port.
    let df2 = fleet.host("df-2").unwrap();
    let tag = unique("agent");
    let mut agent = ContainerSpec::new(IMAGE);
    agent.network = Some("host".into());
    agent.command = ["httpd", "-f", "-p", &(PORT + 1).to_string(), "-h", "/www"].map(String::from).to_vec();
    for (k, v) in [("dockfleet.test", &tag), ("dockfleet.discovery.service", &tag)] {
        agent.labels.insert(k.into(), v.clone());
    }
    agent.labels.insert("dockfleet.host-ports".into(), format!("{}/tcp", PORT + 1));
    let id = df2.create_container(&agent).await.unwrap();
    df2.start_container(&id).await.unwrap();
    let found = wait_lookup(&registry, &tag, false, |v| v.len() == 1).await;
    assert_eq!((found[0].address.as_str(), found[0].port), ("10.250.0.12", PORT + 1));
    assert!(http_get(&format!("10.250.0.12:{}", PORT + 1)).await.starts_with("HTTP/1"));
    // One that names no port in a label is found at the ports it exposes (as gliderlabs'
    // registrator does), which the engine reports only when inspected.
    let df1 = fleet.host("df-1").unwrap();
    agent.labels.remove("dockfleet.host-ports");
    agent.command = ["httpd", "-f", "-p", &(PORT + 2).to_string(), "-h", "/www"].map(String::from).to_vec();
    agent.ports = vec![PortMapping { host_port: None, ..PortMapping::tcp(PORT + 2, 0) }];
    let exposed = df1.create_container(&agent).await.unwrap();
    df1.start_container(&exposed).await.unwrap();
    let d = df1.inspect_container(&exposed).await.unwrap();
    assert_eq!((d.network_mode.as_str(), d.ports.len()), ("host", 0), "{d:?}");
    assert_eq!(d.exposed_ports, agent.ports, "{d:?}");
    let listed = df1
        .list_containers(&ListContainersOptions { labels: vec![format!("dockfleet.test={tag}")], ..Default::default() })
        .await
        .unwrap();
    assert_eq!((listed.len(), listed[0].network_mode.as_str(), listed[0].ports.len()), (1, "host", 0), "{listed:?}");
    let found = wait_lookup(&registry, &tag, false, |v| v.len() == 2).await;
    let mut at: Vec<(&str, u16)> = found.iter().map(|i| (i.address.as_str(), i.port)).collect();
    at.sort();
    assert_eq!(at, [("10.250.0.11", PORT + 2), ("10.250.0.12", PORT + 1)]);
    assert!(http_get(&format!("10.250.0.11:{}", PORT + 2)).await.starts_with("HTTP/1"));
    // The scheduler counts that port as taken on df-1 too.
    let mut beside = ServiceSpec::new(format!("{name}_beside"), IMAGE);
    beside.networks = vec!["host".into()];
    beside.mode = "global".into();
    beside.ports = vec![ServicePort { target: PORT + 2, ..Default::default() }];
    let p = plan(&beside, &observe(&fleet, &beside.name).await.unwrap(), &PlanOptions::default()).unwrap();
    assert!(p.reasons["df-1"].contains(&format!("port {}/tcp is already in use", PORT + 2)), "{p:?}");
    assert_eq!(p.actions.len(), 2, "df-2 and df-3: {p:?}");
    df1.remove_container(&exposed, true, false).await.unwrap();
    df2.remove_container(&id, true, false).await.unwrap();
    wait_lookup(&registry, &tag, false, |v| v.is_empty()).await;
    // A fourth task has no host left.
    spec.replicas = 4;
    let p = plan(&spec, &observe(&fleet, &name).await.unwrap(), &PlanOptions::default()).unwrap();
    assert_eq!(p.unplaced.len(), 1, "{p:?}");
    assert!(p.reasons.values().all(|r| r.contains("allows one task per host")), "{p:?}");
    pump.abort();
    remove_service(&fleet, &name).await.unwrap();
}

/// The engine logs a container's `die` event before its container list stops showing it as running
/// (moby checkpoints the list's view after the event and the network cleanup), so a resync or event
/// that lists containers right after a death saw the dead container running and registered it again.
/// With a resync every 100 ms, twelve SIGKILLs in a row: every entry goes, and none ever comes back.
#[tokio::test]
async fn a_killed_container_is_never_registered_again() {
    let fleet = plain_fleet();
    let registry = EmbeddedDiscovery::new();
    let tag = unique("undead");
    let mut ids = Vec::new();
    for n in 0..12 {
        let h = fleet.host(&format!("df-{}", 1 + n % 3)).unwrap();
        let mut c = ContainerSpec::new(IMAGE);
        c.command = ["httpd", "-f", "-p", "80", "-h", "/www"].map(String::from).to_vec();
        c.labels.insert("dockfleet.test".into(), tag.clone());
        c.labels.insert("dockfleet.discovery.service".into(), tag.clone());
        c.ports = vec![PortMapping::tcp(80, 0)];
        let id = h.create_container(&c).await.unwrap();
        h.start_container(&id).await.unwrap();
        ids.push((h, id));
    }
    let options = RegistratorOptions { resync: Duration::from_millis(100), ..Default::default() };
    let reg: Arc<dyn Discovery> = Arc::new(registry.clone());
    let mut events = registrator(fleet.clone(), reg, options);
    let pump = tokio::spawn(async move {
        while let Some(e) = events.next().await {
            e.unwrap();
        }
    });
    wait_lookup(&registry, &tag, true, |v| v.len() == 12).await;

    // Every change to the service, in order, from a watch opened before the first kill.
    let mut watch = registry.watch(&tag);
    watch.next().await.unwrap().unwrap();
    let log = Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let recorder = {
        let log = log.clone();
        tokio::spawn(async move {
            while let Some(Ok(e)) = watch.next().await {
                for i in e.instances {
                    log.lock().unwrap().push((e.kind.clone(), i.metadata["container"].clone()));
                }
            }
        })
    };
    for (h, id) in &ids {
        h.kill_container(id, None).await.unwrap();
        wait_lookup(&registry, &tag, true, |v| v.iter().all(|i| &i.metadata["container"] != id)).await;
    }
    // Long enough for a dozen more resyncs.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    recorder.abort();
    pump.abort();
    let left = registry.lookup(&tag, &LookupOptions { include_unhealthy: true, ..Default::default() }).await.unwrap();
    let log = log.lock().unwrap().clone();
    for (h, id) in &ids {
        h.remove_container(id, true, false).await.unwrap();
    }
    assert!(left.is_empty(), "still registered after their deaths: {left:?}");
    for (_, id) in &ids {
        let mine: Vec<&str> = log.iter().filter(|(_, c)| c == id).map(|(k, _)| k.as_str()).collect();
        assert_eq!(mine, ["remove"], "container {id}: registered again after its death ({log:?})");
    }
}

/// A container told to stop leaves the registry at once, not when it dies: a proxy following the
/// registry drains it during its stop grace period instead of sending it new requests until the
/// SIGKILL. This one ignores SIGTERM, so it runs its whole grace period, through several resyncs,
/// deregistered; a reload signal (SIGHUP) deregisters nothing, and a restart registers it again.
#[tokio::test]
async fn a_container_told_to_stop_is_deregistered_before_it_dies() {
    let fleet = plain_fleet();
    let registry = EmbeddedDiscovery::new();
    let tag = unique("stopping");
    let h = fleet.host("df-2").unwrap();
    let mut c = ContainerSpec::new(IMAGE);
    c.command = ["sh", "-c", "trap '' TERM HUP; exec httpd -f -p 80 -h /www"].map(String::from).to_vec();
    c.labels.insert("dockfleet.test".into(), tag.clone());
    c.labels.insert("dockfleet.discovery.service".into(), tag.clone());
    c.ports = vec![PortMapping::tcp(80, 0)];
    let id = h.create_container(&c).await.unwrap();
    h.start_container(&id).await.unwrap();
    let options = RegistratorOptions { resync: Duration::from_millis(100), ..Default::default() };
    let mut events = registrator(fleet.clone(), Arc::new(registry.clone()), options);
    let pump = tokio::spawn(async move {
        while let Some(e) = events.next().await {
            e.unwrap();
        }
    });
    wait_lookup(&registry, &tag, true, |v| v.len() == 1).await;

    h.kill_container(&id, Some("SIGHUP")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = LookupOptions { include_unhealthy: true, ..Default::default() };
    assert_eq!(registry.lookup(&tag, &all).await.unwrap().len(), 1, "a SIGHUP deregistered the container");

    let stop = {
        let (h, id) = (h.clone(), id.clone());
        tokio::spawn(async move { h.stop_container(&id, Some(Duration::from_secs(4))).await })
    };
    let asked = Instant::now();
    wait_lookup(&registry, &tag, true, |v| v.is_empty()).await;
    let took = asked.elapsed();
    assert!(h.inspect_container(&id).await.unwrap().state.running, "deregistered only once it died");
    assert!(took < Duration::from_secs(2), "deregistered {took:?} after the stop, not at its SIGTERM");
    // A dozen resyncs while it still runs its grace period: none registers it again.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(h.inspect_container(&id).await.unwrap().state.running);
    assert!(registry.lookup(&tag, &all).await.unwrap().is_empty(), "a resync registered a stopping container");
    stop.await.unwrap().unwrap();
    assert!(!h.inspect_container(&id).await.unwrap().state.running);

    h.start_container(&id).await.unwrap();
    wait_lookup(&registry, &tag, true, |v| v.len() == 1).await;
    pump.abort();
    h.remove_container(&id, true, false).await.unwrap();
}

#[tokio::test]
async fn with_a_shutdown_delay_a_removed_task_leaves_discovery_while_it_still_answers() {
    let fleet = plain_fleet();
    let registry = EmbeddedDiscovery::new();
    let mut spec = web_service("drain", 2);
    spec.shutdown_delay = Duration::from_secs(4);
    let name = spec.name.clone();
    deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    let options = RegistratorOptions { resync: Duration::from_millis(200), ..Default::default() };
    let mut events = registrator(fleet.clone(), Arc::new(registry.clone()), options);
    let pump = tokio::spawn(async move {
        while let Some(e) = events.next().await {
            e.unwrap();
        }
    });
    let live = wait_lookup(&registry, &name, true, |v| v.len() == 2).await;

    // Scaled down to one: the task that goes leaves discovery first, and answers through the delay.
    let started = Instant::now();
    let scale = {
        let (fleet, down) = (fleet.clone(), ServiceSpec { replicas: 1, ..spec.clone() });
        tokio::spawn(async move { deploy(&fleet, &down, &PlanOptions::default()).await })
    };
    let left = wait_lookup(&registry, &name, true, |v| v.len() == 1).await;
    let deregistered = started.elapsed();
    let gone = live.iter().find(|i| i.id != left[0].id).unwrap();
    let (h, id) = (fleet.host(&gone.metadata["host"]).unwrap(), gone.metadata["container"].clone());
    let d = h.inspect_container(&id).await.unwrap();
    assert!(d.state.running && d.name.ends_with(".draining"), "{:?} {:?}", d.name, d.state);
    assert!(http_ok(&gone.address, gone.port).await, "a draining task still answers");
    // Resyncs meanwhile do not register it again.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let all = LookupOptions { include_unhealthy: true, ..Default::default() };
    assert_eq!(registry.lookup(&name, &all).await.unwrap().len(), 1);
    assert!(started.elapsed() < spec.shutdown_delay, "the test itself was too slow to see the delay");
    assert!(h.inspect_container(&id).await.unwrap().state.running, "stopped before its shutdown delay");
    let done = scale.await.unwrap().unwrap();
    assert_eq!(done.report.removed, [id.as_str()]);
    assert!(started.elapsed() >= spec.shutdown_delay && deregistered < Duration::from_secs(2), "{deregistered:?}");
    assert_eq!(h.inspect_container(&id).await.unwrap_err().code(), "not_found");

    // Removing the service drains its last task the same way, then stops it gracefully: SIGTERM
    // first (busybox httpd as PID 1 ignores it, so SIGKILL follows at the end of the 1 s grace).
    let last = &left[0];
    let (h, id) = (fleet.host(&last.metadata["host"]).unwrap(), last.metadata["container"].clone());
    let kills = EventOptions {
        filters: BTreeMap::from([("container".into(), vec![id.clone()]), ("event".into(), vec!["kill".into()])]),
        ..Default::default()
    };
    let signals = h.events(&kills).map(|e| e.unwrap().attributes["signal"].clone());
    let started = Instant::now();
    let removal = {
        let (fleet, name) = (fleet.clone(), name.clone());
        tokio::spawn(async move { remove_service(&fleet, &name).await })
    };
    wait_lookup(&registry, &name, true, |v| v.is_empty()).await;
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    let d = h.inspect_container(&id).await.unwrap();
    assert!(d.state.running && d.name.ends_with(".draining"), "{:?} {:?}", d.name, d.state);
    assert!(http_ok(&last.address, last.port).await, "a draining task still answers");
    assert_eq!(removal.await.unwrap().unwrap(), 1);
    assert!(started.elapsed() >= spec.shutdown_delay, "removed before its shutdown delay");
    assert_eq!(h.inspect_container(&id).await.unwrap_err().code(), "not_found");
    let signals: Vec<String> = signals.take(2).collect().await;
    assert_eq!(signals, ["15", "9"], "stopped within its grace period, not killed at once");
    pump.abort();
}

/// Docker 20.10 picks an engine-chosen port for IPv4 and for IPv6 apart, and a port published on
/// one IPv4 address moves only IPv4's pick: after one, a port published on all addresses can have
/// two numbers, and the IPv6 one refuses IPv4 clients. The container here is published that way on
/// purpose (0.0.0.0 and :: on two ports below the engine's range, so parallel tests cannot take
/// them); the registrator registers the one that answers at the host's (IPv4) address.
#[tokio::test]
async fn on_a_dual_stack_engine_the_port_registered_is_the_one_that_answers() {
    let fleet = plain_fleet();
    let registry = EmbeddedDiscovery::new();
    let tag = unique("family");
    let h = fleet.host("df-3").unwrap();
    let v4 = 20_000 + (std::process::id() % 5_000) as u16 * 2;
    let bound = |ip: &str, port: u16| PortMapping { host_ip: Some(ip.into()), ..PortMapping::tcp(80, port) };
    let mut c = ContainerSpec::new(IMAGE);
    c.command = ["httpd", "-f", "-p", "80", "-h", "/www"].map(String::from).to_vec();
    c.labels.insert("dockfleet.test".into(), tag.clone());
    c.labels.insert("dockfleet.discovery.service".into(), tag.clone());
    // IPv6 listed first, with the lower port, as the engine lists drifted ports.
    c.ports = vec![bound("::", v4 - 1), bound("0.0.0.0", v4)];
    let id = h.create_container(&c).await.unwrap();
    h.start_container(&id).await.unwrap();
    let ports = h.inspect_container(&id).await.unwrap().ports;
    assert_eq!(ports, [bound("0.0.0.0", v4), bound("::", v4 - 1)], "read back IPv4 first");

    let mut events = registrator(fleet.clone(), Arc::new(registry.clone()), RegistratorOptions::default());
    let pump = tokio::spawn(async move {
        while let Some(e) = events.next().await {
            e.unwrap();
        }
    });
    let got = wait_lookup(&registry, &tag, true, |v| v.len() == 1).await;
    pump.abort();
    let answers = http_ok(&got[0].address, got[0].port).await;
    h.remove_container(&id, true, false).await.unwrap();
    assert_eq!((got[0].address.as_str(), got[0].port), ("10.250.0.13", v4), "{ports:?}");
    assert!(answers, "the registered port does not answer: {got:?}");
}
