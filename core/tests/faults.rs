//! Bad input and faults against the real testbed: each gives a clear error with its code and leaves
//! nothing behind. One test stops and restarts an engine, so this binary's tests run one at a time.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use dockfleet::*;
use futures::{StreamExt, TryStreamExt};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn engine_stopped_then_back() {
    let _g = SERIAL.lock().await;
    let h = host("df-3");
    h.ping().await.unwrap();
    testbed(&["stop-engine", "df-3"]);
    let restart = Undo(&["start-engine", "df-3"]);
    {
        let e = h.ping().await.unwrap_err();
        assert_eq!(e.code(), "engine_unreachable", "{e}");
        assert!(e.to_string().contains("df-3"), "names the host: {e}");
        assert!(!e.cause_chain().is_empty(), "keeps the cause");
        let e = h.list_containers(&ListContainersOptions::default()).await.unwrap_err();
        assert_eq!(e.code(), "engine_unreachable");
        // A fresh client to a stopped engine fails the same way on first contact.
        let fresh = DockerHost::new(HostConfig { insecure: true, ..HostConfig::new("df-3", "tcp://10.250.0.13:2375") })
            .unwrap();
        assert_eq!(fresh.info().await.unwrap_err().code(), "engine_unreachable");
    }
    drop(restart);
    // The same host object works again once the engine is back.
    h.ping().await.unwrap();
}

fn tls_host(ca: &str, cert_file: &str, key: &str, address: &str) -> Result<DockerHost> {
    DockerHost::new(HostConfig {
        tls: Some(TlsConfig { ca: cert(ca), cert: cert(cert_file), key: cert(key) }),
        connect_timeout: Duration::from_secs(3),
        ..HostConfig::new("tls-test", address)
    })
}

#[tokio::test]
async fn tls_failures_are_tls_errors() {
    let _g = SERIAL.lock().await;
    // The good certificates work.
    tls_host("ca.pem", "client-cert.pem", "client-key.pem", "tcp://10.250.0.60:2376").unwrap().ping().await.unwrap();

    // The engine's certificate is not signed by the CA we trust.
    let e = tls_host("other-ca.pem", "client-cert.pem", "client-key.pem", "tcp://10.250.0.60:2376")
        .unwrap()
        .ping()
        .await
        .unwrap_err();
    assert_eq!(e.code(), "tls", "{e}");
    assert!(e.to_string().contains("not signed by the configured CA"), "{e}");

    // Our client certificate is signed by a CA the engine does not trust.
    let e = tls_host("ca.pem", "other-client-cert.pem", "other-client-key.pem", "tcp://10.250.0.60:2376")
        .unwrap()
        .ping()
        .await
        .unwrap_err();
    assert_eq!(e.code(), "tls", "{e}");

    // Plain TCP against the TLS port.
    let plain =
        DockerHost::new(HostConfig { insecure: true, ..HostConfig::new("plain", "tcp://10.250.0.60:2376") }).unwrap();
    let e = plain.ping().await.unwrap_err();
    assert_eq!(e.code(), "tls", "{e}");
    assert!(e.to_string().contains("requires TLS"), "{e}");

    // TLS against a plain TCP port.
    let e = tls_host("ca.pem", "client-cert.pem", "client-key.pem", "tcp://10.250.0.11:2375")
        .unwrap()
        .ping()
        .await
        .unwrap_err();
    assert_eq!(e.code(), "tls", "{e}");

    // A key file that is not a key: refused before any connection, naming the field.
    let e = tls_host("ca.pem", "client-cert.pem", "client-cert.pem", "tcp://10.250.0.60:2376").unwrap_err();
    assert_eq!(e.code(), "invalid_argument");
    assert!(e.to_string().contains("tls.key"), "{e}");
}

#[tokio::test]
async fn malformed_addresses_and_insecure_tcp_are_refused_up_front() {
    for (addr, code) in [
        ("10.250.0.11:2375", "invalid_address"),
        ("tcp://10.250.0.11:notaport", "invalid_address"),
        ("ftp://10.250.0.11", "invalid_address"),
        ("tcp://10.250.0.11:2375", "insecure"),
    ] {
        let e = DockerHost::new(HostConfig::new("bad", addr)).unwrap_err();
        assert_eq!(e.code(), code, "{addr}: {e}");
        assert!(e.to_string().contains("address"), "{e}");
    }
}

#[tokio::test]
async fn connect_timeout_is_enforced() {
    // An address on the testbed bridge that no namespace holds: ARP never resolves, so without a
    // limit the first call would hang for seconds.
    let h = DockerHost::new(HostConfig {
        insecure: true,
        connect_timeout: Duration::from_millis(300),
        ..HostConfig::new("void", "tcp://10.250.0.99:2375")
    })
    .unwrap();
    let start = Instant::now();
    let e = h.ping().await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
    // Whichever limit fires first (the first contact's or the connector's), the code is the same.
    assert_eq!(e.code(), "timeout", "{e}");
    assert!(e.to_string().contains("void") && e.to_string().contains("300ms"), "{e}");
}

#[tokio::test]
async fn a_connect_that_times_out_after_the_first_contact_is_a_timeout() {
    let _g = SERIAL.lock().await;
    let address = fleet().host("df-3").unwrap().address().to_string();
    let h = DockerHost::new(HostConfig {
        insecure: true,
        connect_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_secs(1),
        ..HostConfig::new("df-3", address)
    })
    .unwrap();
    h.ping().await.unwrap();
    testbed(&["partition", "df-3"]);
    let heal = Undo(&["heal", "df-3"]);
    // The pooled connection hangs: the request's own limit.
    let e = h.ping().await.unwrap_err();
    assert_eq!(e.code(), "timeout", "{e}");
    // A fresh connection, past the first contact: the connector's limit, reported the same way.
    let start = Instant::now();
    let e = h.ping().await.unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(900), "took {:?}", start.elapsed());
    assert_eq!(e.code(), "timeout", "{e}");
    assert!(e.to_string().contains("ping (connect) on df-3 timed out after 300ms"), "{e}");
    drop(heal);
    // Healed, the host answers again (once the link is back up).
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = h.ping().await {
        assert!(Instant::now() < deadline, "still failing after the heal: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn missing_image_and_bad_specs_create_nothing() {
    let h = host("df-1");
    let tag = unique("bad");
    let mut spec = ContainerSpec::new("dockfleet/does-not-exist:never");
    spec.labels.insert("dockfleet.test".into(), tag.clone());
    let e = h.create_container(&spec).await.unwrap_err();
    assert_eq!(e.code(), "not_found", "{e}");
    assert!(e.to_string().contains("dockfleet/does-not-exist:never"), "{e}");

    type Mutation = Box<dyn Fn(&mut ContainerSpec)>;
    let bad_specs: Vec<(&str, Mutation)> = vec![
        ("image", Box::new(|s| s.image = String::new())),
        ("name", Box::new(|s| s.name = Some("-bad name".into()))),
        ("ports[0].container_port", Box::new(|s| s.ports = vec![PortMapping::tcp(0, 80)])),
        (
            "ports[0].protocol",
            Box::new(|s| s.ports = vec![PortMapping { protocol: "icmp".into(), ..PortMapping::tcp(80, 80) }]),
        ),
        (
            "mounts[0].target",
            Box::new(|s| {
                s.mounts =
                    vec![Mount { source: "v".into(), target: "rel".into(), read_only: false, ..Default::default() }]
            }),
        ),
        ("memory_bytes", Box::new(|s| s.memory_bytes = Some(1024))),
        ("cpus", Box::new(|s| s.cpus = Some(-1.0))),
        (
            "restart_policy.name",
            Box::new(|s| s.restart_policy = Some(RestartPolicy { name: "sometimes".into(), max_retries: None })),
        ),
        (
            "healthcheck.test",
            Box::new(|s| {
                s.healthcheck = Some(Healthcheck {
                    test: vec!["CMD".into()],
                    interval: None,
                    timeout: None,
                    retries: None,
                    start_period: None,
                })
            }),
        ),
    ];
    for (field, mutate) in bad_specs {
        let mut s = ContainerSpec::new(IMAGE);
        s.labels.insert("dockfleet.test".into(), tag.clone());
        mutate(&mut s);
        let e = h.create_container(&s).await.unwrap_err();
        assert_eq!(e.code(), "invalid_argument", "{field}: {e}");
        assert!(e.to_string().contains(field), "{e} should name {field}");
    }
    assert!(tagged(&h, &tag).await.is_empty(), "nothing was created");

    // Name conflicts are conflicts, and the first container is untouched.
    let mut s = ContainerSpec::new(IMAGE);
    s.name = Some(tag.clone());
    s.labels.insert("dockfleet.test".into(), tag.clone());
    let id = h.create_container(&s).await.unwrap();
    assert_eq!(h.create_container(&s).await.unwrap_err().code(), "conflict");
    assert_eq!(tagged(&h, &tag).await.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), vec![id]);
    cleanup(&h, &tag).await;

    // Copying a missing image fails before anything is sent.
    let e = copy_image(h.clone(), host("df-2"), "dockfleet/does-not-exist:never")
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(e.code(), "not_found");
}

#[tokio::test]
async fn references_that_would_address_another_object_are_refused_and_touch_nothing() {
    let h = host("df-1");
    let tag = unique("ref");
    let mut s = ContainerSpec::new(IMAGE);
    s.name = Some(tag.clone());
    s.labels.insert("dockfleet.test".into(), tag.clone());
    let id = h.create_container(&s).await.unwrap();
    // Unescaped in the URL's path, `../containers/NAME` as an image would be `DELETE /containers/NAME`
    // (it was: the container went), and `?`/`#` would end the path early.
    let e = h.remove_image(&format!("../containers/{tag}"), true).await.unwrap_err();
    assert_eq!(e.code(), "invalid_argument", "{e}");
    assert!(e.to_string().contains("reference"), "names the argument: {e}");
    assert_eq!(h.image_exists(&format!("../containers/{tag}")).await.unwrap_err().code(), "invalid_argument");
    for bad in [format!("{tag}?force=1"), format!("{tag}/json#"), format!("../containers/{tag}"), String::new()] {
        let e = h.remove_container(&bad, true, false).await.unwrap_err();
        assert_eq!(e.code(), "invalid_argument", "{bad:?}: {e}");
        assert!(e.to_string().contains("invalid id"), "names the argument: {e}");
        assert_eq!(h.inspect_container(&bad).await.unwrap_err().code(), "invalid_argument", "{bad:?}");
        assert_eq!(h.stop_container(&bad, None).await.unwrap_err().code(), "invalid_argument", "{bad:?}");
        let e = h.logs(&bad, &LogOptions::default()).try_collect::<Vec<_>>().await.unwrap_err();
        assert_eq!(e.code(), "invalid_argument", "{bad:?}");
    }
    assert_eq!(h.remove_volume("../containers/x", true).await.unwrap_err().code(), "invalid_argument");
    assert_eq!(h.remove_network("../containers/x").await.unwrap_err().code(), "invalid_argument");
    // The container is still there, by its name and by its ID.
    assert_eq!(h.inspect_container(&tag).await.unwrap().id, id);
    assert_eq!(tagged(&h, &tag).await.len(), 1);
    cleanup(&h, &tag).await;
}

#[tokio::test]
async fn a_panic_becomes_an_internal_error() {
    let e = catch_panic(dockfleet::error::panic_for_tests("test-only panic".into())).await.unwrap_err();
    assert_eq!(e.code(), "internal");
    assert!(e.to_string().contains("test-only panic"));
}

#[tokio::test]
async fn the_restart_policy_gives_up_after_its_attempts() {
    let _g = SERIAL.lock().await;
    let fleet = plain_fleet();
    let name = unique("crash").replace('-', "_");
    let mut spec = ServiceSpec::new(&name, IMAGE);
    spec.command = vec!["sh".into(), "-c".into(), "sleep 0.2; exit 3".into()];
    spec.stop_grace_period = Duration::from_secs(1);
    spec.restart_policy = ServiceRestartPolicy {
        condition: "on-failure".into(),
        delay: Duration::from_millis(100),
        max_attempts: 2,
        window: Duration::ZERO,
    };
    let options = SuperviseOptions { resync: Duration::from_millis(500), ..Default::default() };
    let mut passes = supervise(fleet.clone(), spec.clone(), options);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut created = 0;
    while Instant::now() < deadline {
        let Ok(pass) = tokio::time::timeout(Duration::from_secs(3), passes.try_next()).await else {
            break; // quiet for 3 s: the policy gave up
        };
        let pass = pass.unwrap().unwrap();
        assert!(pass.error.is_none(), "{pass:?}");
        created += pass.deployment.report.created.len();
    }
    drop(passes);
    assert_eq!(created, 3, "the first task and 2 restarts");
    let o = observe(&fleet, &name).await.unwrap();
    assert_eq!(o.tasks.len(), 1, "replaced tasks are removed: {:?}", o.tasks);
    let t = &o.tasks[0];
    assert_eq!((t.state.as_str(), t.exit_code, t.restarts), ("exited", Some(3), 2), "{t:?}");
    remove_service(&fleet, &name).await.unwrap();
}

#[tokio::test]
async fn a_partitioned_host_keeps_its_slots_for_the_grace_then_they_move_and_return_once() {
    let _g = SERIAL.lock().await;
    let fleet = plain_fleet();
    let name = unique("part").replace('-', "_");
    let mut spec = ServiceSpec::new(&name, IMAGE);
    spec.command = vec!["sleep".into(), "600".into()];
    spec.replicas = 3;
    spec.stop_grace_period = Duration::from_secs(1);
    let grace = Duration::from_secs(4);
    let options = SuperviseOptions { resync: Duration::from_secs(1), host_grace: grace, ..Default::default() };
    let mut passes = supervise(fleet.clone(), spec.clone(), options);
    let first = passes.try_next().await.unwrap().unwrap();
    assert_eq!(first.deployment.report.created.len(), 3);
    let on_df3 = first.deployment.report.created.iter().find(|t| t.host == "df-3").expect("spread puts one on df-3");
    let (slot, df3_task) = (on_df3.slot, on_df3.id.clone());

    testbed(&["partition", "df-3"]);
    let heal = Undo(&["heal", "df-3"]);
    let cut = Instant::now();
    // Nothing moves within the grace; then the slot is placed on another host.
    let moved = loop {
        let pass =
            tokio::time::timeout(Duration::from_secs(30), passes.try_next()).await.expect("a pass").unwrap().unwrap();
        if !pass.deployment.report.created.is_empty() {
            break pass;
        }
    };
    assert!(cut.elapsed() >= grace, "moved after {:?}, within the {grace:?} grace", cut.elapsed());
    let created = &moved.deployment.report.created;
    assert_eq!(created.len(), 1, "{moved:?}");
    assert_eq!(created[0].slot, slot);
    assert_ne!(created[0].host, "df-3");

    // The host comes back with its task still running: the extra goes, each slot has one task.
    drop(heal);
    let back = loop {
        let pass =
            tokio::time::timeout(Duration::from_secs(30), passes.try_next()).await.expect("a pass").unwrap().unwrap();
        if !pass.deployment.report.removed.is_empty() {
            break pass;
        }
    };
    assert_eq!(back.deployment.report.removed, vec![df3_task]);
    assert!(back.deployment.report.created.is_empty(), "{back:?}");
    drop(passes);
    let o = observe(&fleet, &name).await.unwrap();
    let mut slots: Vec<u32> = o.tasks.iter().filter(|t| t.state == "running").map(|t| t.slot).collect();
    slots.sort();
    assert_eq!(slots, [1, 2, 3], "{:?}", o.tasks);
    assert_eq!(o.tasks.len(), 3, "no orphan left: {:?}", o.tasks);
    remove_service(&fleet, &name).await.unwrap();
}

#[tokio::test]
async fn an_engine_stopped_mid_deploy_converges_on_the_others_and_returns_without_duplicates() {
    let _g = SERIAL.lock().await;
    let fleet = plain_fleet();
    let name = unique("middeploy").replace('-', "_");
    let mut spec = ServiceSpec::new(&name, IMAGE);
    spec.command = vec!["sleep".into(), "600".into()];
    spec.replicas = 6;
    spec.stop_grace_period = Duration::from_secs(1);
    spec.restart_policy.delay = Duration::from_millis(100);
    // The engine goes away while the deploy is creating tasks; the deploy may fail part way.
    let deploying = tokio::spawn({
        let (fleet, spec) = (fleet.clone(), spec.clone());
        async move { deploy(&fleet, &spec, &PlanOptions::default()).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    testbed(&["stop-engine", "df-3"]);
    let restart = Undo(&["start-engine", "df-3"]);
    let _ = deploying.await.unwrap();

    // Supervision converges on the two engines left.
    let options = SuperviseOptions {
        resync: Duration::from_millis(500),
        host_grace: Duration::from_millis(500),
        ..Default::default()
    };
    let mut passes = supervise(fleet.clone(), spec.clone(), options);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let o = observe(&fleet, &name).await.unwrap();
        let running: Vec<&Task> = o.tasks.iter().filter(|t| t.state == "running").collect();
        if running.len() == 6 && running.iter().all(|t| t.host != "df-3") {
            break;
        }
        assert!(Instant::now() < deadline, "never converged on df-1 and df-2: {:?}", o.tasks);
        let _ = tokio::time::timeout(Duration::from_secs(2), passes.try_next()).await;
    }
    // The engine returns (its containers stopped with it): nothing is duplicated, nothing left behind.
    drop(restart);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let _ = tokio::time::timeout(Duration::from_secs(2), passes.try_next()).await;
        let o = observe(&fleet, &name).await.unwrap();
        let mut slots: Vec<u32> = o.tasks.iter().filter(|t| t.state == "running").map(|t| t.slot).collect();
        slots.sort();
        if slots == [1, 2, 3, 4, 5, 6] && o.tasks.len() == 6 {
            break;
        }
        assert!(Instant::now() < deadline, "duplicates or leftovers after df-3 returned: {:?}", o.tasks);
    }
    drop(passes);
    // No container of the service without its labels, anywhere.
    for h in fleet.hosts() {
        let all = h.list_containers(&ListContainersOptions { all: true, ..Default::default() }).await.unwrap();
        assert!(all.iter().all(|c| !c.name.starts_with(&format!("{name}.")) || c.labels.contains_key(LABEL_SLOT)));
    }
    remove_service(&fleet, &name).await.unwrap();
}

#[tokio::test]
async fn the_registrator_drops_a_cut_off_host_and_a_crashed_engine_leaves_nothing_stale() {
    let _g = SERIAL.lock().await;
    let fleet = plain_fleet();
    let registry = EmbeddedDiscovery::new();
    let spec = web_service("regfault", 3);
    let name = spec.name.clone();
    deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    let options = RegistratorOptions { resync: Duration::from_secs(1), ..Default::default() };
    let mut events = registrator(fleet.clone(), std::sync::Arc::new(registry.clone()), options);
    let pump = tokio::spawn(async move {
        while let Some(e) = events.next().await {
            e.unwrap();
        }
    });
    wait_lookup(&registry, &name, false, |v| v.len() == 3).await;

    // Cut off: its entry goes at the next resync; healed: it comes back.
    testbed(&["partition", "df-3"]);
    let heal = Undo(&["heal", "df-3"]);
    wait_lookup(&registry, &name, false, |v| v.len() == 2 && v.iter().all(|i| i.metadata["host"] != "df-3")).await;
    drop(heal);
    wait_lookup(&registry, &name, false, |v| v.len() == 3).await;

    // The engine crashes and comes back empty-handed (its containers stopped with it): nothing stale.
    testbed(&["stop-engine", "df-3"]);
    let restart = Undo(&["start-engine", "df-3"]);
    wait_lookup(&registry, &name, false, |v| v.len() == 2).await;
    drop(restart);
    tokio::time::sleep(Duration::from_secs(2)).await; // more than one resync with df-3 back
    let v = wait_lookup(&registry, &name, false, |v| v.len() == 2).await;
    assert!(v.iter().all(|i| i.metadata["host"] != "df-3"), "a stale df-3 entry: {v:?}");
    pump.abort();
    remove_service(&fleet, &name).await.unwrap();
}

#[tokio::test]
async fn a_cut_off_host_does_not_hold_up_a_service_s_logs_or_stats() {
    let _g = SERIAL.lock().await;
    let fleet = plain_fleet();
    let name = unique("cutlogs").replace('-', "_");
    let mut spec = ServiceSpec::new(&name, IMAGE);
    spec.command = ["sh", "-c", "echo hello from $(hostname); exec sleep 600"].map(String::from).to_vec();
    spec.replicas = 3;
    spec.stop_grace_period = Duration::from_secs(1);
    let tasks = deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap().report.created;
    assert!(tasks.iter().any(|t| t.host == "df-3"), "{tasks:?}");
    // The fleet's connections to df-3 are open and kept alive; cut off, df-3 answers nothing on them.
    assert_eq!(service_stats(&fleet, &name).await.unwrap().len(), 3);

    testbed(&["partition", "df-3"]);
    let heal = Undo(&["heal", "df-3"]);
    let t = Instant::now();
    let lines: Vec<ServiceLogLine> = service_logs(&fleet, &name, &LogOptions::default()).try_collect().await.unwrap();
    let mut hosts: Vec<&str> = lines.iter().map(|l| l.host.as_str()).collect();
    hosts.sort();
    assert_eq!(hosts, ["df-1", "df-2"], "{lines:?}");
    let samples = service_stats(&fleet, &name).await.unwrap();
    assert_eq!(samples.iter().map(|s| s.host.as_str()).collect::<BTreeSet<_>>(), BTreeSet::from(["df-1", "df-2"]));
    assert!(t.elapsed() < Duration::from_secs(20), "held up {:?} (a request timeout is 60 s)", t.elapsed());
    drop(heal);
    remove_service(&fleet, &name).await.unwrap();
}
