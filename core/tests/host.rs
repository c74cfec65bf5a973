//! `DockerHost` against the testbed's real engines: every transport, the container lifecycle, events,
//! stats, images (build, export/import, host-to-host copy) and the fleet probe.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use dockfleet::*;
use futures::{StreamExt, TryStreamExt};

#[tokio::test]
async fn every_testbed_host_answers_with_its_facts() {
    let fleet = fleet();
    assert_eq!(fleet.len(), 4);
    for h in fleet.hosts() {
        let ping = h.ping().await.unwrap_or_else(|e| panic!("{}: {e}", h.name()));
        assert!(ping.api_version.starts_with("1."), "{ping:?}");
        let info = h.info().await.unwrap();
        assert!(info.cpus >= 1 && info.memory_bytes > 0, "{info:?}");
        assert_eq!(info.os_type, "linux");
        // The engine's own labels are the ones the testbed gave dockerd, the same as the fleet's.
        for (k, v) in h.labels() {
            assert_eq!(info.labels.get(k), Some(v), "{}: engine label {k}", h.name());
        }
    }
    let tls = fleet.host("df-tls").unwrap();
    assert!(tls.address().contains(":2376"));
}

#[tokio::test]
async fn unix_socket_and_env_connections_work() {
    let sock =
        DockerHost::connect(HostConfig::new("df-1-unix", "unix:///run/dockfleet-testbed/df-1.sock")).await.unwrap();
    let by_tcp = host("df-1").info().await.unwrap();
    assert_eq!(sock.info().await.unwrap().id, by_tcp.id, "same engine through both transports");

    // From the docker CLI's environment: TLS with the testbed's client certificates.
    let env = |k: &str| match k {
        "DOCKER_HOST" => Some("tcp://10.250.0.60:2376".to_string()),
        "DOCKER_TLS_VERIFY" => Some("1".to_string()),
        "DOCKER_CERT_PATH" => Some(cert("client").display().to_string()),
        _ => None,
    };
    for (k, v) in [
        ("DOCKER_HOST", env("DOCKER_HOST")),
        ("DOCKER_TLS_VERIFY", env("DOCKER_TLS_VERIFY")),
        ("DOCKER_CERT_PATH", env("DOCKER_CERT_PATH")),
    ] {
        // SAFETY: this is the only test in this binary that touches these variables.
        unsafe { std::env::set_var(k, v.unwrap()) };
    }
    let h = DockerHost::from_env("env").await.unwrap();
    assert_eq!(h.info().await.unwrap().labels.get("tls").map(String::as_str), Some("true"));
}

#[tokio::test]
async fn container_lifecycle_end_to_end() {
    let h = host("df-2");
    let tag = unique("life");
    let spec = ContainerSpec {
        name: Some(tag.clone()),
        image: IMAGE.into(),
        command: vec![
            "sh".into(),
            "-c".into(),
            "echo hello-$GREETING; echo oops >&2; exec httpd -f -p 80 -h /www".into(),
        ],
        env: BTreeMap::from([("GREETING".into(), "fleet".into())]),
        labels: BTreeMap::from([("dockfleet.test".into(), tag.clone())]),
        ports: vec![PortMapping { container_port: 80, host_port: Some(0), protocol: "tcp".into(), host_ip: None }],
        restart_policy: Some(RestartPolicy { name: "on-failure".into(), max_retries: Some(2) }),
        memory_bytes: Some(64 * 1024 * 1024),
        cpus: Some(0.5),
        healthcheck: Some(Healthcheck {
            test: vec!["CMD-SHELL".into(), "test -f /www/index.html".into()],
            interval: Some(Duration::from_millis(500)),
            timeout: Some(Duration::from_secs(1)),
            retries: Some(2),
            start_period: None,
        }),
        stop_timeout: Some(2),
        ..Default::default()
    };
    let id = h.create_container(&spec).await.unwrap();
    h.start_container(&id).await.unwrap();

    let d = h.inspect_container(&id).await.unwrap();
    assert_eq!(d.name, tag);
    assert!(d.state.running);
    assert_eq!(d.labels["dockfleet.test"], tag);
    let port = d.ports.iter().find(|p| p.container_port == 80).and_then(|p| p.host_port).expect("published port");

    // The published port answers at the engine's own address.
    let body = http_get(&format!("10.250.0.12:{port}")).await;
    assert!(body.ends_with("ok\n"), "{body}");

    let listed = tagged(&h, &tag).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert!(listed[0].ports.iter().any(|p| p.host_port == Some(port)));

    let logs: Vec<LogLine> = h.logs(&id, &LogOptions::default()).try_collect().await.unwrap();
    assert!(logs.iter().any(|l| l.stream == "stdout" && l.message.contains("hello-fleet")), "{logs:?}");
    assert!(logs.iter().any(|l| l.stream == "stderr" && l.message.contains("oops")), "{logs:?}");

    let out = h
        .exec(&id, &["sh".into(), "-c".into(), "echo out; echo err >&2; exit 3".into()], &ExecOptions::default())
        .await
        .unwrap();
    assert_eq!((out.exit_code, out.stdout.as_str(), out.stderr.as_str()), (3, "out\n", "err\n"));

    // Health turns healthy within a few intervals.
    let mut health = None;
    for _ in 0..40 {
        health = h.inspect_container(&id).await.unwrap().state.health;
        if health.as_deref() == Some("healthy") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(health.as_deref(), Some("healthy"));

    let waiter = {
        let (h, id) = (h.clone(), id.clone());
        tokio::spawn(async move { h.wait_container(&id).await })
    };
    h.stop_container(&id, Some(Duration::from_secs(2))).await.unwrap();
    let code = waiter.await.unwrap().unwrap();
    assert!(!h.inspect_container(&id).await.unwrap().state.running);
    assert!(code == 0 || code == 143 || code == 137, "exit code {code}");

    h.remove_container(&id, false, true).await.unwrap();
    assert!(tagged(&h, &tag).await.is_empty());
    assert_eq!(h.inspect_container(&id).await.unwrap_err().code(), "not_found");
}

#[tokio::test]
async fn kill_and_wait_report_the_signal_exit_code() {
    let h = host("df-3");
    let tag = unique("kill");
    let mut spec = ContainerSpec::new(IMAGE);
    spec.command = vec!["sleep".into(), "300".into()];
    spec.labels.insert("dockfleet.test".into(), tag.clone());
    let id = h.create_container(&spec).await.unwrap();
    h.start_container(&id).await.unwrap();
    h.kill_container(&id, None).await.unwrap();
    assert_eq!(h.wait_container(&id).await.unwrap(), 137);
    // Killing a stopped container is a conflict, reported as such.
    assert_eq!(h.kill_container(&id, None).await.unwrap_err().code(), "conflict");
    cleanup(&h, &tag).await;
}

#[tokio::test]
async fn mounts_take_propagation_selinux_relabelling_and_no_copy() {
    let h = host("df-2");
    let tag = unique("mounts");
    let (fresh, copied) = (format!("{tag}-fresh"), format!("{tag}-copied"));
    let mut spec = ContainerSpec::new(IMAGE);
    spec.command = vec!["sleep".into(), "300".into()];
    spec.labels.insert("dockfleet.test".into(), tag.clone());
    // The testbed's /run/netns is a shared mount (`ip netns` makes it one), so an rslave bind of it
    // follows it as a slave; the image has /www/index.html, which a new volume gets unless no_copy.
    spec.mounts = vec![
        Mount {
            source: "/run/netns".into(),
            target: "/netns".into(),
            read_only: true,
            propagation: Some("rslave".into()),
            selinux: Some("z".into()),
            ..Default::default()
        },
        Mount { source: fresh.clone(), target: "/www".into(), no_copy: true, ..Default::default() },
        Mount { source: copied.clone(), target: "/copied".into(), ..Default::default() },
    ];
    let mut copying = spec.clone();
    copying.mounts = vec![Mount { source: copied.clone(), target: "/www".into(), ..Default::default() }];
    let id = h.create_container(&spec).await.unwrap();
    h.start_container(&id).await.unwrap();
    let copier = h.create_container(&copying).await.unwrap();
    h.start_container(&copier).await.unwrap();
    let sh = |cmd: &str| vec!["sh".to_string(), "-c".to_string(), cmd.to_string()];
    let out = h
        .exec(&id, &sh("grep ' /netns ' /proc/self/mountinfo; ls /www | wc -l; ls /copied"), &ExecOptions::default())
        .await
        .unwrap()
        .stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains(" master:") && lines[0].contains(" ro"), "an rslave, read-only bind: {out}");
    assert_eq!(lines[1].trim(), "0", "no_copy leaves the new volume empty: {out}");
    assert_eq!(lines.get(2), Some(&"index.html"), "a new volume gets the image's content: {out}");
    let bollard = h.as_docker().unwrap().bollard().await.unwrap();
    let binds = bollard.inspect_container(&id, None).await.unwrap().host_config.unwrap().binds.unwrap();
    assert_eq!(binds[0], "/run/netns:/netns:ro,z,rslave");
    // Bad options are refused by field before any engine call.
    let mut bad = spec.clone();
    bad.mounts[1].propagation = Some("rshared".into());
    let e = h.create_container(&bad).await.unwrap_err();
    assert!(e.code() == "invalid_argument" && e.to_string().contains("mounts[1].propagation"), "{e}");
    cleanup(&h, &tag).await;
    for v in [&fresh, &copied] {
        h.remove_volume(v, true).await.unwrap();
    }
}

#[tokio::test]
async fn events_stream_filters_and_resumes_from_a_timestamp() {
    let h = host("df-1");
    let tag = unique("ev");
    let options = EventOptions {
        filters: BTreeMap::from([
            ("type".into(), vec!["container".into()]),
            ("label".into(), vec![format!("dockfleet.test={tag}")]),
        ]),
        ..Default::default()
    };
    // Not polled until after the container ran: the stream still starts at the call.
    let mut live = h.events(&options);
    let mut spec = ContainerSpec::new(IMAGE);
    spec.command = vec!["sh".into(), "-c".into(), "exit 7".into()];
    spec.labels.insert("dockfleet.test".into(), tag.clone());
    let id = h.create_container(&spec).await.unwrap();
    h.start_container(&id).await.unwrap();
    assert_eq!(h.wait_container(&id).await.unwrap(), 7);

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let e =
            tokio::time::timeout(Duration::from_secs(10), live.next()).await.expect("event in time").unwrap().unwrap();
        assert_eq!(e.host, "df-1");
        assert_eq!(e.id, id);
        seen.push(e);
    }
    let actions: Vec<&str> = seen.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["create", "start", "die"]);
    assert_eq!(seen[2].attributes.get("exitCode").map(String::as_str), Some("7"));
    drop(live);

    // Resume: replay from the second event's time up to now; nothing before it comes back.
    let replay = EventOptions {
        since_nanos: Some(seen[1].time_nanos),
        until_nanos: Some(seen[2].time_nanos + 1_000_000),
        ..options.clone()
    };
    let again: Vec<Event> = h.events(&replay).try_collect().await.unwrap();
    let actions: Vec<&str> = again.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["start", "die"]);
    cleanup(&h, &tag).await;
}

#[tokio::test]
async fn stats_one_shot_and_streaming() {
    let h = host("df-1");
    let tag = unique("stats");
    let mut spec = ContainerSpec::new(IMAGE);
    spec.command = vec!["sh".into(), "-c".into(), "while :; do :; done".into()];
    spec.labels.insert("dockfleet.test".into(), tag.clone());
    spec.cpus = Some(0.5);
    let id = h.create_container(&spec).await.unwrap();
    h.start_container(&id).await.unwrap();
    let s = h.stats(&id).await.unwrap();
    assert!(s.id.starts_with(&id[..12]));
    assert!(s.memory_bytes > 0 && s.memory_limit_bytes >= s.memory_bytes, "{s:?}");
    assert!(s.pids >= 1, "{s:?}");
    assert!(s.cpu_percent > 5.0 && s.cpu_percent < 90.0, "a busy loop capped at half a CPU: {s:?}");
    let samples: Vec<Stats> = h.stats_stream(&id).take(2).try_collect().await.unwrap();
    assert_eq!(samples.len(), 2);
    cleanup(&h, &tag).await;
}

#[tokio::test]
async fn build_list_export_import_and_remove_images() {
    let h = host("df-2");
    let tag = format!("dockfleet/test-build:{}", unique("b"));
    let dir = tempdir("build");
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {IMAGE}\nCOPY hello.txt /hello.txt\nRUN echo built > /built\n"),
    )
    .unwrap();
    std::fs::write(dir.join("hello.txt"), "hi\n").unwrap();
    let events: Vec<BuildEvent> =
        h.build_image(&dir, &BuildOptions { tag: tag.clone(), ..Default::default() }).try_collect().await.unwrap();
    assert_eq!(events.first().unwrap().kind, "context");
    assert!(events.iter().filter(|e| e.kind == "step").count() >= 3, "{events:?}");
    let done = events.last().unwrap();
    assert_eq!(done.kind, "done");
    let image_id = done.image_id.clone().unwrap();
    assert!(image_id.starts_with("sha256:"));
    assert!(h.image_exists(&tag).await.unwrap());
    assert!(h.list_images().await.unwrap().iter().any(|i| i.tags.contains(&tag)));

    // A failing build is an error, not a "done".
    std::fs::write(dir.join("Dockerfile"), format!("FROM {IMAGE}\nRUN exit 4\n")).unwrap();
    let err = h
        .build_image(&dir, &BuildOptions { tag: format!("{tag}-bad"), ..Default::default() })
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(err.code(), "engine");

    // Export then import on the same engine after removal round-trips the image.
    let archive: Vec<bytes::Bytes> = h.export_image(&tag).try_collect().await.unwrap();
    let size: usize = archive.iter().map(|b| b.len()).sum();
    assert!(size > 1_000_000, "archive of {size} bytes");
    h.remove_image(&tag, true).await.unwrap();
    assert!(!h.image_exists(&tag).await.unwrap());
    let loaded = h.import_image(futures::stream::iter(archive.into_iter().map(Ok)).boxed()).await.unwrap();
    assert_eq!(loaded, vec![tag.clone()]);
    assert_eq!(h.inspect_image(&tag).await.unwrap().id, image_id);
    h.remove_image(&tag, true).await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempdir(prefix: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(unique(&format!("dockfleet-{prefix}")));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn copy_image_between_hosts_with_progress() {
    let fleet = fleet();
    let (src, dst) = (fleet.host("df-1").unwrap(), fleet.host("df-3").unwrap());
    let tag = format!("dockfleet/test-copy:{}", unique("c"));
    let dir = tempdir("copy");
    std::fs::write(dir.join("Dockerfile"), format!("FROM {IMAGE}\nRUN echo {tag} > /marker\n")).unwrap();
    src.build_image(&dir, &BuildOptions { tag: tag.clone(), ..Default::default() })
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert!(!dst.image_exists(&tag).await.unwrap());

    let events: Vec<CopyProgress> = copy_image(src.clone(), dst.clone(), &tag).try_collect().await.unwrap();
    assert!(events.len() >= 2);
    assert_eq!(events[0].bytes, 0);
    assert!(events.windows(2).all(|w| w[0].bytes <= w[1].bytes), "progress never goes back");
    let last = events.last().unwrap();
    assert!(last.done && last.bytes > 1_000_000, "{last:?}");
    assert!(events[..events.len() - 1].iter().all(|e| !e.done));
    assert_eq!((last.source.as_str(), last.target.as_str()), ("df-1", "df-3"));

    // The copy runs on the destination.
    let t = unique("copyrun");
    let mut spec = ContainerSpec::new(&tag);
    spec.command = vec!["cat".into(), "/marker".into()];
    spec.labels.insert("dockfleet.test".into(), t.clone());
    let id = dst.create_container(&spec).await.unwrap();
    dst.start_container(&id).await.unwrap();
    assert_eq!(dst.wait_container(&id).await.unwrap(), 0);
    let out: Vec<LogLine> = dst.logs(&id, &LogOptions::default()).try_collect().await.unwrap();
    assert_eq!(out.iter().map(|l| l.message.as_str()).collect::<String>(), format!("{tag}\n"));
    cleanup(&dst, &t).await;

    // distribute_image copies only where missing.
    let copied = distribute_image(src.clone(), fleet.hosts(), &tag).await.unwrap();
    let mut copied = copied;
    copied.sort();
    assert_eq!(copied, vec!["df-2", "df-tls"]);
    for h in fleet.hosts() {
        h.remove_image(&tag, true).await.unwrap();
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn fleet_probe_reports_each_host_without_failing_as_a_whole() {
    let mut fleet = fleet();
    // One more host where nothing listens: an address of the testbed bridge with a closed port.
    fleet.add_docker(HostConfig { insecure: true, ..HostConfig::new("ghost", "tcp://10.250.0.13:2399") }).unwrap();
    let statuses = fleet.probe(&ProbeOptions { timeout: Duration::from_secs(5) }).await;
    assert_eq!(
        statuses.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["df-1", "df-2", "df-3", "df-tls", "ghost"]
    );
    for s in &statuses[..4] {
        assert!(s.reachable, "{s:?}");
        assert!(s.latency.is_some() && s.info.as_ref().unwrap().cpus > 0);
    }
    let ghost = &statuses[4];
    assert!(!ghost.reachable && ghost.info.is_none());
    assert_eq!(ghost.error_code.as_deref(), Some("engine_unreachable"), "{ghost:?}");
    assert_eq!(fleet.select(&["role=manager"]).iter().map(|h| h.name().to_string()).collect::<Vec<_>>(), ["df-1"]);
}

/// Sockets (any state, TIME-WAIT included) from this machine to `addr:port`, from /proc/net/tcp.
fn sockets_to(addr: [u8; 4], port: u16) -> usize {
    let want = format!("{:02X}{:02X}{:02X}{:02X}:{:04X}", addr[3], addr[2], addr[1], addr[0], port);
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some(&want))
        .count()
}

#[tokio::test]
async fn connections_are_pooled_and_reused() {
    let h = DockerHost::connect(HostConfig { insecure: true, ..HostConfig::new("pool", "tcp://10.250.0.12:2375") })
        .await
        .unwrap();
    let before = sockets_to([10, 250, 0, 12], 2375);
    for _ in 0..300 {
        h.ping().await.unwrap();
    }
    let after = sockets_to([10, 250, 0, 12], 2375);
    // One connection per request (bollard's own transports) would leave ~300 sockets in TIME-WAIT.
    assert!(after < before + 30, "300 pings opened {} sockets", after.saturating_sub(before));
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A host shared by runtimes: each runtime gets connections of its own, so a request made on one never
/// waits on a connection served by another runtime that is not running (or is gone).
#[test]
fn a_host_shared_by_runtimes_never_waits_on_another_runtime() {
    let ping = |rt: &tokio::runtime::Runtime, h: &DockerHost, what: &str| {
        rt.block_on(async { tokio::time::timeout(std::time::Duration::from_secs(5), h.ping()).await })
            .unwrap_or_else(|_| panic!("{what}: the ping did not finish in 5 s"))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
    };
    let a = current_thread();
    let h = a
        .block_on(DockerHost::connect(HostConfig { insecure: true, ..HostConfig::new("rt", "tcp://10.250.0.13:2375") }))
        .unwrap();
    // Leaves an idle keep-alive connection whose task lives on `a`, which nothing drives from here on.
    ping(&a, &h, "first runtime");
    let b = current_thread();
    ping(&b, &h, "second runtime while the first is idle");
    ping(&a, &h, "first runtime again");
    drop(a);
    ping(&b, &h, "second runtime after the first is gone");
    let c = std::thread::spawn(move || ping(&current_thread(), &h, "a runtime on another thread"));
    c.join().unwrap();
}

/// Many runtimes at once (a thread pool calling through Python's blocking facade, say) each keep
/// their connection: taking turns on one host does not open a connection per call.
#[test]
fn many_runtimes_taking_turns_keep_their_connections() {
    const THREADS: usize = 16;
    const ROUNDS: usize = 10;
    let rt = current_thread();
    let h = rt
        .block_on(DockerHost::connect(HostConfig {
            insecure: true,
            ..HostConfig::new("rts", "tcp://10.250.0.13:2375")
        }))
        .unwrap();
    let before = sockets_to([10, 250, 0, 13], 2375);
    let turn = std::sync::Arc::new(std::sync::Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (h, turn) = (h.clone(), turn.clone());
            std::thread::spawn(move || {
                let rt = current_thread();
                for _ in 0..ROUNDS {
                    turn.wait();
                    rt.block_on(h.ping()).unwrap();
                }
                // Alive until every thread is done, so no runtime's pool goes away early.
                turn.wait();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let opened = sockets_to([10, 250, 0, 13], 2375).saturating_sub(before);
    assert!(opened <= THREADS + 4, "{} pings from {THREADS} runtimes opened {opened} connections", THREADS * ROUNDS);
}

#[tokio::test]
async fn push_and_pull_through_a_registry_with_credentials_and_progress() {
    let fleet = fleet();
    let (src, dst) = (fleet.host("df-1").unwrap(), fleet.host("df-2").unwrap());
    let auth = registry();
    let run = unique("reg");
    let dir = tempdir("registry");
    let local = format!("dockfleet/test-registry:{run}");
    std::fs::write(dir.join("Dockerfile"), format!("FROM {IMAGE}\nRUN echo {run} > /marker\n")).unwrap();
    src.build_image(&dir, &BuildOptions { tag: local.clone(), ..Default::default() })
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let remote = format!("{}/dockfleet-test/app:{run}", auth.server);
    src.tag_image(&local, &remote).await.unwrap();
    assert_eq!(src.inspect_image(&remote).await.unwrap().id, src.inspect_image(&local).await.unwrap().id);

    // Without credentials, and with a wrong password, the registry refuses: `unauthorized`, naming it.
    let e = src.push_image(&remote, &PushOptions::default()).try_collect::<Vec<_>>().await.unwrap_err();
    assert_eq!(e.code(), "unauthorized", "{e}");
    let wrong = RegistryAuth { password: "wrong".into(), ..auth.clone() };
    let e =
        src.push_image(&remote, &PushOptions { auth: Some(wrong.clone()) }).try_collect::<Vec<_>>().await.unwrap_err();
    assert_eq!(e.code(), "unauthorized", "{e}");
    assert!(e.to_string().contains(&auth.server), "{e}");

    let pushed: Vec<ImageProgress> =
        src.push_image(&remote, &PushOptions { auth: Some(auth.clone()) }).try_collect().await.unwrap();
    let last = pushed.last().unwrap();
    assert!(last.done && last.digest.as_deref().is_some_and(|d| d.starts_with("sha256:")), "{last:?}");
    assert!(pushed[..pushed.len() - 1].iter().all(|p| !p.done));

    // df-2 has never had it; the pull fails without the right credentials and changes nothing.
    assert!(!dst.image_exists(&remote).await.unwrap());
    for bad in [None, Some(wrong)] {
        let e = dst.pull_image(&remote, &PullOptions { auth: bad, ..Default::default() }).try_collect::<Vec<_>>().await;
        assert_eq!(e.unwrap_err().code(), "unauthorized");
    }
    assert!(!dst.image_exists(&remote).await.unwrap());

    let pulled: Vec<ImageProgress> = dst
        .pull_image(&remote, &PullOptions { auth: Some(auth.clone()), ..Default::default() })
        .try_collect()
        .await
        .unwrap();
    let last = pulled.last().unwrap();
    assert!(last.done, "{last:?}");
    assert_eq!(last.digest, pushed.last().unwrap().digest, "the digest pushed is the one pulled");
    // Layer events with byte counts, each below its layer's size.
    let bytes: Vec<&ImageProgress> = pulled.iter().filter(|p| p.total.is_some()).collect();
    assert!(!bytes.is_empty() && bytes.iter().all(|p| !p.layer.is_empty() && p.current <= p.total), "{pulled:?}");
    assert!(pulled.iter().any(|p| p.status == "Pull complete"), "{pulled:?}");
    assert_eq!(dst.inspect_image(&remote).await.unwrap().id, src.inspect_image(&local).await.unwrap().id);

    // What was pulled runs.
    let t = unique("pullrun");
    let mut spec = ContainerSpec::new(&remote);
    spec.command = vec!["cat".into(), "/marker".into()];
    spec.labels.insert("dockfleet.test".into(), t.clone());
    let id = dst.create_container(&spec).await.unwrap();
    dst.start_container(&id).await.unwrap();
    assert_eq!(dst.wait_container(&id).await.unwrap(), 0);
    let out: Vec<LogLine> = dst.logs(&id, &LogOptions::default()).try_collect().await.unwrap();
    assert_eq!(out.iter().map(|l| l.message.as_str()).collect::<String>(), format!("{run}\n"));
    cleanup(&dst, &t).await;

    // A tag the registry lacks is `not_found`; a pull by digest works; bad input is refused first.
    let e = dst
        .pull_image(
            &format!("{}/dockfleet-test/app:nosuch", auth.server),
            &PullOptions { auth: Some(auth.clone()), ..Default::default() },
        )
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(e.code(), "not_found", "{e}");
    dst.remove_image(&remote, true).await.unwrap();
    let by_digest = format!("{}/dockfleet-test/app@{}", auth.server, last.digest.as_deref().unwrap());
    let pulled: Vec<ImageProgress> = dst
        .pull_image(&by_digest, &PullOptions { auth: Some(auth.clone()), ..Default::default() })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pulled.last().unwrap().status, format!("pulled {by_digest}"));
    assert!(dst.image_exists(&by_digest).await.unwrap());
    let e = dst.push_image(&by_digest, &PushOptions::default()).try_collect::<Vec<_>>().await.unwrap_err();
    assert_eq!(e.code(), "invalid_argument", "{e}");
    for (reference, options, field) in [
        ("../x", PullOptions::default(), "reference"),
        (
            remote.as_str(),
            PullOptions { auth: Some(RegistryAuth { server: "a/b".into(), ..auth.clone() }), ..Default::default() },
            "options.auth.server",
        ),
        (
            remote.as_str(),
            PullOptions { platform: Some("linux/../x".into()), ..Default::default() },
            "options.platform",
        ),
    ] {
        match dst.pull_image(reference, &options).try_collect::<Vec<_>>().await.unwrap_err() {
            Error::InvalidArgument { field: f, .. } => assert_eq!(f, field),
            e => panic!("{e}"),
        }
    }
    assert_eq!(src.tag_image(&local, "x/y@sha256:00").await.unwrap_err().code(), "invalid_argument");
    assert_eq!(src.tag_image("dockfleet/nosuch:1", "x/y:1").await.unwrap_err().code(), "not_found");

    dst.remove_image(&by_digest, true).await.unwrap();
    src.remove_image(&remote, true).await.unwrap();
    src.remove_image(&local, true).await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}
