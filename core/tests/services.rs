//! Services on the testbed's real engines: deploy, adopt, heal, update, scale, constrain, remove.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use dockfleet::*;
use futures::TryStreamExt;

fn per_host(o: &Observed) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for t in o.tasks.iter().filter(|t| t.state == "running") {
        *m.entry(t.host.clone()).or_default() += 1;
    }
    m
}

#[tokio::test]
async fn deploy_adopt_heal_update_scale_and_remove() {
    let fleet = plain_fleet();
    let df1 = fleet.host("df-1").unwrap();
    let name = unique("svc").replace('-', "_").to_lowercase();
    // An image only df-1 has: apply must carry it to the others.
    let image = format!("dockfleet/svc-test:{name}");
    let dir = std::env::temp_dir().join(unique("svc-img"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {IMAGE}\nCMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n"),
    )
    .unwrap();
    df1.build_image(&dir, &BuildOptions { tag: image.clone(), ..Default::default() })
        .try_collect::<Vec<_>>()
        .await
        .unwrap();

    let mut spec = ServiceSpec::new(&name, &image);
    spec.replicas = 6;
    spec.stop_grace_period = Duration::from_secs(1);
    let Deployment { plan: p, report } = deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    assert_eq!(p.actions.iter().filter(|a| a.kind == "create").count(), 6);
    assert_eq!(report.created.len(), 6);
    let o = observe(&fleet, &name).await.unwrap();
    assert_eq!(per_host(&o).values().copied().collect::<Vec<_>>(), vec![2, 2, 2], "{:?}", per_host(&o));
    let mut slots: Vec<u32> = o.tasks.iter().map(|t| t.slot).collect();
    slots.sort();
    assert_eq!(slots, vec![1, 2, 3, 4, 5, 6]);

    // Unchanged spec: nothing planned, and no engine event for the service while re-applying.
    let watch = EventOptions {
        filters: BTreeMap::from([("label".into(), vec![format!("{LABEL_SERVICE}={name}")])]),
        ..Default::default()
    };
    let events = df1.events(&watch);
    let Deployment { plan: p, report } = deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    assert!(p.actions.is_empty() && report.created.is_empty() && report.removed.is_empty(), "{p:?}");
    let quiet = tokio::time::timeout(Duration::from_millis(500), Box::pin(events).try_next()).await;
    assert!(quiet.is_err(), "re-applying an unchanged spec touched the engine: {quiet:?}");

    // SIGKILL one task's process from outside Docker (as the OOM killer or an operator would): only
    // it is replaced, the others keep their IDs.
    let victim = o.tasks[0].clone();
    let before: Vec<String> = o.tasks.iter().map(|t| t.id.clone()).filter(|id| *id != victim.id).collect();
    let vh = fleet.host(&victim.host).unwrap();
    let pid = vh.inspect_container(&victim.id).await.unwrap().state.pid;
    assert!(pid > 0);
    let st = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(st.success());
    for _ in 0..100 {
        if !vh.inspect_container(&victim.id).await.unwrap().state.running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let p = deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap().plan;
    assert_eq!(p.actions.iter().map(|a| a.kind.as_str()).collect::<Vec<_>>(), ["remove", "create"], "{p:?}");
    let o = observe(&fleet, &name).await.unwrap();
    assert_eq!(o.tasks.iter().filter(|t| t.state == "running").count(), 6);
    for id in &before {
        assert!(o.tasks.iter().any(|t| &t.id == id), "task {id} was restarted");
    }
    assert!(o.tasks.iter().any(|t| t.slot == victim.slot && t.id != victim.id));

    // A changed spec updates every task in its slot.
    spec.env.insert("VERSION".into(), "2".into());
    let p = deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap().plan;
    assert_eq!(p.actions.iter().filter(|a| a.kind == "update").count(), 6);
    let o = observe(&fleet, &name).await.unwrap();
    assert!(o.tasks.iter().all(|t| t.spec_hash == spec_hash(&spec) && t.state == "running"));
    assert_eq!(o.tasks.len(), 6);

    // Scale down to 3: one per host remains.
    spec.replicas = 3;
    deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    let o = observe(&fleet, &name).await.unwrap();
    assert_eq!(per_host(&o).values().copied().collect::<Vec<_>>(), vec![1, 1, 1]);

    assert_eq!(remove_service(&fleet, &name).await.unwrap(), 3);
    assert!(observe(&fleet, &name).await.unwrap().tasks.is_empty());
    for h in fleet.hosts() {
        let _ = h.remove_image(&image, true).await;
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn constraints_pin_and_bad_specs_change_nothing() {
    let fleet = plain_fleet();
    let name = unique("db").replace('-', "_").to_lowercase();
    let mut spec = ServiceSpec::new(&name, IMAGE);
    spec.command = vec!["sleep".into(), "600".into()];
    spec.replicas = 2;
    spec.stop_grace_period = Duration::from_secs(1);
    spec.placement.constraints = vec!["role==manager".into()];
    deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    let o = observe(&fleet, &name).await.unwrap();
    assert_eq!(per_host(&o), BTreeMap::from([("df-1".to_string(), 2)]));

    // A bind of the host's root: refused before any engine call, nothing created or removed.
    let mut bad = spec.clone();
    bad.replicas = 5;
    bad.volumes = vec![Mount { source: "/".into(), target: "/host".into(), read_only: true, ..Default::default() }];
    let e = deploy(&fleet, &bad, &PlanOptions::default()).await.unwrap_err();
    assert_eq!(e.code(), "invalid_argument");
    assert!(e.to_string().contains("volumes[0].source"));
    let again = observe(&fleet, &name).await.unwrap();
    assert_eq!(again.tasks, o.tasks);

    // A hostname filled with a host's name that is no hostname (a fleet may name a host by its
    // address): refused for the plan as a whole, before the tasks on the other hosts are created.
    let mut hosts: Vec<Arc<dyn Host>> = fleet.hosts().iter().filter(|h| h.name() != "df-3").cloned().collect();
    let df3 = HostConfig { insecure: true, ..HostConfig::new("df-3:2375", "tcp://10.250.0.13:2375") };
    hosts.push(Arc::new(DockerHost::new(df3).unwrap()));
    let renamed = Fleet::from_hosts(hosts).unwrap();
    let mut named = ServiceSpec::new(format!("{name}_named"), IMAGE);
    named.replicas = 3;
    named.hostname = Some("{{.Node.Hostname}}".into());
    let e = deploy(&renamed, &named, &PlanOptions::default()).await.unwrap_err();
    assert!(e.code() == "invalid_argument" && e.to_string().contains("on host df-3:2375"), "{e}");
    assert!(observe(&renamed, &named.name).await.unwrap().tasks.is_empty(), "nothing created");

    // Unplaceable: more tasks than hosts with a published port, each host explained.
    let mut ported = spec.clone();
    ported.placement.constraints.clear();
    ported.ports = vec![ServicePort { target: 80, published: Some(18555), protocol: "tcp".into(), mode: None }];
    ported.replicas = 5;
    let p = plan(&ported, &observe(&fleet, &name).await.unwrap(), &PlanOptions::default()).unwrap();
    assert_eq!(p.unplaced.len(), 2, "{p:?}");
    assert_eq!(p.reasons.len(), 3);

    // The platform each engine reports: the testbed's are linux on x86_64, none is an arm64 host.
    let mut platform = ServiceSpec::new(format!("{name}_platform"), IMAGE);
    platform.replicas = 3;
    platform.placement.constraints = vec!["node.platform.os==linux".into(), "node.platform.arch==x86_64".into()];
    let observed = observe(&fleet, &platform.name).await.unwrap();
    let p = plan(&platform, &observed, &PlanOptions::default()).unwrap();
    assert!(p.unplaced.is_empty() && p.actions.len() == 3, "{p:?}");
    platform.placement.constraints = vec!["node.platform.arch==aarch64".into()];
    let p = plan(&platform, &observed, &PlanOptions::default()).unwrap();
    assert_eq!(p.unplaced.len(), 3, "{p:?}");
    remove_service(&fleet, &name).await.unwrap();
}

#[tokio::test]
async fn supervise_heals_a_killed_task_and_keeps_the_others() {
    let fleet = plain_fleet();
    let name = unique("heal").replace('-', "_").to_lowercase();
    let mut spec = ServiceSpec::new(&name, IMAGE);
    spec.command = vec!["sleep".into(), "600".into()];
    spec.replicas = 3;
    spec.stop_grace_period = Duration::from_secs(1);
    spec.restart_policy.delay = Duration::from_millis(200);
    // A dead task serves nothing: it is replaced without waiting out the shutdown delay.
    spec.shutdown_delay = Duration::from_secs(30);
    let options = SuperviseOptions { resync: Duration::from_secs(30), ..Default::default() };
    let mut passes = supervise(fleet.clone(), spec.clone(), options);
    let first = passes.try_next().await.unwrap().unwrap();
    assert_eq!(first.trigger, "start");
    assert_eq!(first.deployment.report.created.len(), 3);

    let victim = first.deployment.report.created[0].clone();
    let others: Vec<String> = first.deployment.report.created[1..].iter().map(|t| t.id.clone()).collect();
    fleet.host(&victim.host).unwrap().kill_container(&victim.id, None).await.unwrap();
    // Healed by the event, long before the 30 s resync.
    let healed = tokio::time::timeout(Duration::from_secs(10), passes.try_next())
        .await
        .expect("healed in time")
        .unwrap()
        .unwrap();
    assert!(healed.trigger.starts_with("event: "), "{}", healed.trigger);
    assert!(healed.trigger.contains(&victim.name), "{}", healed.trigger);
    assert_eq!(healed.deployment.report.removed, vec![victim.id.clone()]);
    assert_eq!(healed.deployment.report.created.len(), 1);
    assert_eq!(healed.deployment.report.created[0].slot, victim.slot);
    drop(passes);

    let o = observe(&fleet, &name).await.unwrap();
    assert_eq!(o.tasks.iter().filter(|t| t.state == "running").count(), 3);
    for id in &others {
        assert!(o.tasks.iter().any(|t| &t.id == id), "task {id} was touched");
    }
    // Removal, too, waits out the delay only for running tasks: killed first, they go at once.
    for t in &o.tasks {
        fleet.host(&t.host).unwrap().kill_container(&t.id, None).await.unwrap();
    }
    let started = std::time::Instant::now();
    assert_eq!(remove_service(&fleet, &name).await.unwrap(), 3);
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

#[tokio::test]
async fn supervise_refuses_an_invalid_spec_before_any_engine_call() {
    let mut spec = ServiceSpec::new("bad", IMAGE);
    spec.privileged = true;
    let e = supervise(plain_fleet(), spec, SuperviseOptions::default()).try_next().await.unwrap_err();
    assert_eq!(e.code(), "invalid_argument");
    assert!(e.to_string().contains("privileged"));
}

/// The testbed's inventory reduced to the named hosts.
fn inventory_of(hosts: &[&str]) -> String {
    let text = std::fs::read_to_string(testbed_dir().join("fleet.toml")).unwrap();
    let mut parts = text.split("[[hosts]]");
    let mut out = parts.next().unwrap().to_string();
    for block in parts {
        if hosts.iter().any(|h| block.contains(&format!("name = \"{h}\""))) {
            out.push_str("[[hosts]]");
            out.push_str(block);
        }
    }
    out
}

#[tokio::test]
async fn a_global_service_follows_hosts_joining_the_inventory() {
    let name = unique("glob").replace('-', "_");
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let inventory = dir.join("fleet.toml");
    std::fs::write(&inventory, inventory_of(&["df-1", "df-2"])).unwrap();
    let mut spec = ServiceSpec::new(&name, IMAGE);
    spec.mode = "global".into();
    spec.command = vec!["sleep".into(), "600".into()];
    spec.stop_grace_period = Duration::from_secs(1);
    let options = SuperviseOptions {
        resync: Duration::from_millis(300),
        inventory: Some(inventory.clone()),
        ..Default::default()
    };
    let start = Fleet::from_file(&inventory).unwrap();
    let mut passes = supervise(start, spec.clone(), options);
    let first = passes.try_next().await.unwrap().unwrap();
    let mut hosts: Vec<String> = first.deployment.report.created.iter().map(|t| t.host.clone()).collect();
    hosts.sort();
    assert_eq!(hosts, ["df-1", "df-2"]);

    // A host joins the inventory: the next pass gives it a task.
    std::fs::write(&inventory, inventory_of(&["df-1", "df-2", "df-3"])).unwrap();
    let joined =
        tokio::time::timeout(Duration::from_secs(10), passes.try_next()).await.expect("a pass").unwrap().unwrap();
    assert_eq!(joined.deployment.report.created.iter().map(|t| t.host.as_str()).collect::<Vec<_>>(), ["df-3"]);

    // A broken inventory is reported, and the last good fleet stays.
    std::fs::write(&inventory, "[[hosts]]\nname = 1\n").unwrap();
    let broken =
        tokio::time::timeout(Duration::from_secs(10), passes.try_next()).await.expect("a pass").unwrap().unwrap();
    assert_eq!(broken.error_code.as_deref(), Some("invalid_argument"), "{broken:?}");
    assert!(broken.error.as_deref().unwrap_or_default().contains("inventory"), "{broken:?}");
    drop(passes);
    let o = observe(&plain_fleet(), &name).await.unwrap();
    assert_eq!(o.tasks.iter().filter(|t| t.state == "running").count(), 3);
    remove_service(&plain_fleet(), &name).await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

/// The fleet as a [`ServiceBackend`]: the trait's rollout, scale, status and removal, through a trait
/// object as code that also drives Swarm mode holds it.
#[tokio::test]
async fn the_fleet_as_a_service_backend() {
    let backend: std::sync::Arc<dyn ServiceBackend> = std::sync::Arc::new(plain_fleet());
    assert_eq!(backend.kind(), "fleet");
    let mut spec = web_service("backend", 1);
    spec.ports.clear();
    let events: Vec<RolloutEvent> = backend.rollout(spec.clone(), Default::default()).try_collect().await.unwrap();
    assert_eq!(events.last().unwrap().kind, "completed", "{events:?}");
    let st = backend.scale(&spec.name, 3).await.unwrap();
    assert_eq!((st.desired, st.running, st.tasks.len()), (3, 3, 3), "{st:?}");
    let mut slots: Vec<u32> = st.tasks.iter().map(|t| t.slot).collect();
    slots.sort();
    assert_eq!(slots, [1, 2, 3]);
    let st = backend.scale(&spec.name, 2).await.unwrap();
    assert_eq!((st.desired, st.running), (2, 2), "{st:?}");
    let again = backend.service_status(&spec.name).await.unwrap();
    let ids = |s: &ServiceStatus| s.tasks.iter().map(|t| t.id.clone()).collect::<Vec<_>>();
    assert_eq!((again.desired, again.running, ids(&again)), (2, 2, ids(&st)));
    assert_eq!(backend.remove_service(&spec.name).await.unwrap(), 2);
    let st = backend.service_status(&spec.name).await.unwrap();
    assert_eq!((st.desired, st.running, st.tasks.len()), (0, 0, 0), "a fleet knows no service without tasks");
    assert_eq!(backend.scale(&spec.name, 1).await.unwrap_err().code(), "not_found");
    assert_eq!(backend.service_status("Bad Name").await.unwrap_err().code(), "invalid_argument");
}

#[tokio::test]
async fn service_logs_merge_every_task_with_where_it_runs() {
    use futures::StreamExt;
    let fleet = plain_fleet();
    let name = unique("logs").replace('-', "_").to_lowercase();
    let mut spec = ServiceSpec::new(&name, IMAGE);
    spec.command = ["sh", "-c", "echo hello from $(hostname); echo oops >&2; sleep 2; echo late; exec sleep 600"]
        .map(String::from)
        .to_vec();
    spec.replicas = 3;
    spec.stop_grace_period = Duration::from_secs(1);
    let tasks = deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap().report.created;

    // Followed: every task's lines, the later ones included, each with its task.
    let follow = LogOptions { follow: true, ..Default::default() };
    let mut lines = service_logs(&fleet, &name, &follow);
    let mut seen = Vec::new();
    while seen.iter().filter(|l: &&ServiceLogLine| l.message.trim() == "late").count() < 3 {
        let next = tokio::time::timeout(Duration::from_secs(15), lines.next()).await.expect("a line in time");
        seen.push(next.expect("the stream goes on").unwrap());
    }
    // A task started later (here by a scale-up) is taken in by the followed stream.
    let four = ServiceSpec { replicas: 4, ..spec.clone() };
    let added = deploy(&fleet, &four, &PlanOptions::default()).await.unwrap().report.created;
    assert_eq!(added.len(), 1);
    let hello = format!("hello from {}", &added[0].id[..12]);
    loop {
        let next = tokio::time::timeout(Duration::from_secs(15), lines.next()).await.expect("the new task's line");
        let l = next.expect("the stream goes on").unwrap();
        // (The engine copies stdout and stderr apart: their order is not kept between the two.)
        if l.id == added[0].id && l.stream == "stdout" {
            assert_eq!((l.message.trim(), l.slot, l.host.as_str()), (hello.as_str(), 4, added[0].host.as_str()));
            break;
        }
        seen.push(l);
    }
    drop(lines);
    for t in &tasks {
        let of = |stream: &str| -> Vec<&str> {
            seen.iter().filter(|l| l.id == t.id && l.stream == stream).map(|l| l.message.trim()).collect()
        };
        let hello = format!("hello from {}", &t.id[..12]);
        assert_eq!(of("stdout"), [hello.as_str(), "late"], "task {}", t.name);
        assert_eq!(of("stderr"), ["oops"], "task {}", t.name);
        let l = seen.iter().find(|l| l.id == t.id).unwrap();
        assert_eq!((l.host.as_str(), l.slot, l.name.as_str()), (t.host.as_str(), t.slot, t.name.as_str()));
    }

    // Not followed, the last line of each task: the stream ends by itself.
    let last = LogOptions { tail: Some(1), ..Default::default() };
    let all: Vec<ServiceLogLine> = service_logs(&fleet, &name, &last).try_collect().await.unwrap();
    let mut slots: Vec<u32> = all.iter().map(|l| l.slot).collect();
    slots.sort();
    assert_eq!(slots, [1, 2, 3, 4], "one line per task: {all:?}");
    remove_service(&fleet, &name).await.unwrap();
    assert!(service_logs(&fleet, &name, &last).try_collect::<Vec<_>>().await.unwrap().is_empty());
    let e = service_logs(&fleet, "no/such", &last).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(e.code() == "invalid_argument" && e.to_string().contains("service"), "{e}");
}

#[tokio::test]
async fn entrypoint_working_dir_and_user_reach_every_task() {
    let fleet = plain_fleet();
    let name = unique("ep").replace('-', "_").to_lowercase();
    let mut spec = ServiceSpec::new(&name, IMAGE);
    spec.entrypoint = Some(vec!["/bin/sh".into(), "-c".into()]);
    spec.command = vec!["echo dir=$(pwd) id=$(id -u):$(id -g); exec sleep 600".into()];
    spec.working_dir = Some("/srv/work".into());
    spec.user = Some("65534:65534".into());
    spec.replicas = 2;
    spec.stop_grace_period = Duration::from_secs(1);
    let tasks = deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap().report.created;
    assert_eq!(tasks.len(), 2);
    let follow = LogOptions { follow: true, ..Default::default() };
    let mut lines = service_logs(&fleet, &name, &follow);
    let mut seen = BTreeMap::new();
    while seen.len() < 2 {
        use futures::StreamExt;
        let l = tokio::time::timeout(Duration::from_secs(15), lines.next()).await.expect("a line").unwrap().unwrap();
        seen.insert(l.id.clone(), l.message.trim().to_string());
    }
    drop(lines);
    for t in &tasks {
        assert_eq!(seen[&t.id], "dir=/srv/work id=65534:65534", "task {}", t.name);
    }
    // Unchanged specs keep their hash (the hash of their JSON): a field left unset is not written, so
    // services deployed before these fields existed are not rolled.
    let json = serde_json::to_string(&ServiceSpec::new("web", IMAGE)).unwrap();
    assert!(!["entrypoint", "working_dir", "user", "stop_signal"].iter().any(|f| json.contains(f)), "{json}");
    remove_service(&fleet, &name).await.unwrap();
}

#[tokio::test]
async fn a_task_is_stopped_with_its_stop_signal() {
    let fleet = plain_fleet();
    let name = unique("sig").replace('-', "_").to_lowercase();
    let mut spec = ServiceSpec::new(&name, IMAGE);
    // Exits 42 on SIGUSR1 at once. SIGTERM, the default, a shell running as PID 1 ignores: it would be
    // killed when the grace period ran out (137, after 5 s).
    spec.command =
        ["sh", "-c", "trap 'exit 42' USR1; echo ready; while :; do sleep 0.1; done"].map(String::from).to_vec();
    spec.stop_signal = Some("SIGUSR1".into());
    spec.stop_grace_period = Duration::from_secs(5);
    let task = deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap().report.created.remove(0);
    let host = fleet.host(&task.host).unwrap();
    let started = std::time::Instant::now();
    while !host
        .logs(&task.id, &LogOptions::default())
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .iter()
        .any(|l| l.message.contains("ready"))
    {
        assert!(started.elapsed() < Duration::from_secs(15), "the task never got ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let t0 = std::time::Instant::now();
    host.stop_container(&task.id, None).await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(4), "stopped by the signal, not killed after the grace period");
    assert_eq!(host.inspect_container(&task.id).await.unwrap().state.exit_code, 42);
    remove_service(&fleet, &name).await.unwrap();
}

#[tokio::test]
async fn service_stats_sample_every_running_task_where_it_runs() {
    let fleet = plain_fleet();
    let name = unique("stats").replace('-', "_").to_lowercase();
    let mut spec = ServiceSpec::new(&name, IMAGE);
    // Each task holds 8 MiB in a shell variable; slot 1 is then given a loop that keeps a CPU busy.
    spec.command =
        ["sh", "-c", "x=$(head -c 8388608 /dev/zero | tr '\\0' a); touch /tmp/ready; while :; do sleep 600; done"]
            .map(String::from)
            .to_vec();
    spec.replicas = 3;
    spec.stop_grace_period = Duration::from_secs(1);
    deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    let status = fleet.service_status(&name).await.unwrap();
    let task = |slot: u32| status.tasks.iter().find(|t| t.slot == slot).unwrap();
    for t in &status.tasks {
        let ready = ["sh", "-c", "while [ ! -e /tmp/ready ]; do sleep 0.1; done"].map(String::from);
        fleet.host(&t.host).unwrap().exec(&t.id, &ready, &ExecOptions::default()).await.unwrap();
    }
    let spin = ["sh", "-c", "while :; do :; done > /dev/null 2>&1 &"].map(String::from);
    fleet.host(&task(1).host).unwrap().exec(&task(1).id, &spin, &ExecOptions::default()).await.unwrap();

    let samples = service_stats(&fleet, &name).await.unwrap();
    assert_eq!(samples.iter().map(|s| s.slot).collect::<Vec<_>>(), [1, 2, 3], "{samples:?}");
    for s in &samples {
        let t = task(s.slot);
        assert_eq!(
            (s.service.as_str(), s.host.as_str(), s.name.as_str()),
            (name.as_str(), t.host.as_str(), t.name.as_str())
        );
        assert_eq!(s.stats.id, t.id);
        assert!(s.stats.memory_bytes > 8 << 20, "the 8 MiB held: {s:?}");
        assert!(s.stats.memory_limit_bytes >= s.stats.memory_bytes && s.stats.pids >= 1, "{s:?}");
    }
    assert!(samples[0].stats.cpu_percent > 20.0, "the busy task: {:?}", samples[0].stats);
    assert!(samples[1].stats.cpu_percent < samples[0].stats.cpu_percent, "{samples:?}");

    let text = prometheus_text(&samples);
    let busy = format!(
        r#"dockfleet_task_cpu_percent{{host="{}",id="{}",name="{}",service="{name}",slot="1"}} "#,
        samples[0].host, samples[0].stats.id, samples[0].name
    );
    assert!(text.contains(&busy), "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("dockfleet_task_memory_bytes{")).count(), 3);

    // Through the backend trait, the same; a stopped task is not sampled; removed, nothing.
    let backend: &dyn ServiceBackend = &fleet;
    let h = fleet.host(&samples[2].host).unwrap();
    h.stop_container(&samples[2].stats.id, Some(Duration::from_secs(1))).await.unwrap();
    let after = backend.service_stats(&name).await.unwrap();
    assert_eq!(after.iter().map(|s| s.slot).collect::<Vec<_>>(), [1, 2]);
    remove_service(&fleet, &name).await.unwrap();
    assert!(service_stats(&fleet, &name).await.unwrap().is_empty());
    assert_eq!(service_stats(&fleet, "no/such").await.unwrap_err().code(), "invalid_argument");
}

/// A service of `replicas` tasks that sleep, stopped within a second.
fn sleeping(prefix: &str, replicas: u32) -> ServiceSpec {
    let mut spec = ServiceSpec::new(unique(prefix).replace('-', "_").to_lowercase(), IMAGE);
    spec.command = ["sleep", "600"].map(String::from).to_vec();
    spec.replicas = replicas;
    spec.stop_grace_period = Duration::from_secs(1);
    spec
}

/// The span of one task's `cat /proc/uptime; sleep; cat /proc/uptime` (one kernel, one clock for all).
fn span(out: &TaskExec) -> (f64, f64) {
    let t: Vec<f64> = out.stdout.lines().map(|l| l.split(' ').next().unwrap().parse().unwrap()).collect();
    assert_eq!(t.len(), 2, "{out:?}");
    (t[0], t[1])
}

#[tokio::test]
async fn service_exec_runs_in_every_task_or_one_slot_at_the_parallelism_asked() {
    let fleet = plain_fleet();
    let spec = sleeping("exec", 3);
    let name = spec.name.clone();
    deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    let status = fleet.service_status(&name).await.unwrap();
    let sh = |script: &str| ["sh".to_string(), "-c".into(), script.into()];

    // Every task, in slot order, each with its own output, exit code and environment.
    let options = ServiceExecOptions { env: BTreeMap::from([("GREETING".into(), "hi".into())]), ..Default::default() };
    let all = service_exec(&fleet, &name, &sh("echo $GREETING from $(hostname); echo oops >&2; exit 3"), &options)
        .await
        .unwrap();
    assert_eq!(all.iter().map(|r| r.slot).collect::<Vec<_>>(), [1, 2, 3]);
    for r in &all {
        let t = status.tasks.iter().find(|t| t.slot == r.slot).unwrap();
        assert_eq!(
            (r.host.as_str(), r.id.as_str(), r.name.as_str()),
            (t.host.as_str(), t.id.as_str(), t.name.as_str())
        );
        assert_eq!(
            (r.exit_code, r.stdout.trim(), r.stderr.trim()),
            (Some(3), format!("hi from {}", &t.id[..12]).as_str(), "oops")
        );
        assert_eq!(r.error_code, None);
    }

    // One slot; a slot no task holds is not_found; no command is invalid; nothing ran for either.
    let two = ServiceExecOptions { slot: Some(2), ..Default::default() };
    let one = service_exec(&fleet, &name, &sh("hostname"), &two).await.unwrap();
    assert_eq!((one.len(), one[0].slot), (1, 2));
    let nine = ServiceExecOptions { slot: Some(9), ..Default::default() };
    assert_eq!(service_exec(&fleet, &name, &sh("hostname"), &nine).await.unwrap_err().code(), "not_found");
    let e = service_exec(&fleet, &name, &[], &ServiceExecOptions::default()).await.unwrap_err();
    assert!(e.code() == "invalid_argument" && e.to_string().contains("command"), "{e}");

    // Parallelism 1: one task after another; the default: all at once.
    let timed = sh("cat /proc/uptime; sleep 1; cat /proc/uptime");
    let serial = ServiceExecOptions { parallelism: 1, ..Default::default() };
    let spans: Vec<(f64, f64)> = service_exec(&fleet, &name, &timed, &serial).await.unwrap().iter().map(span).collect();
    assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "overlapping: {spans:?}");
    let spans: Vec<(f64, f64)> =
        service_exec(&fleet, &name, &timed, &ServiceExecOptions::default()).await.unwrap().iter().map(span).collect();
    let last_start = spans.iter().map(|s| s.0).fold(0.0, f64::max);
    assert!(spans.iter().all(|s| s.1 > last_start), "not all at once: {spans:?}");

    // Through the backend trait: once the service is removed, no task and nothing run.
    let backend: &dyn ServiceBackend = &fleet;
    remove_service(&fleet, &name).await.unwrap();
    assert!(backend.service_exec(&name, &sh("true"), &ServiceExecOptions::default()).await.unwrap().is_empty());
}

#[tokio::test]
async fn tasks_join_every_network_answer_to_their_names_there_and_are_privileged_when_asked() {
    let fleet = plain_fleet();
    let h = fleet.host("df-2").unwrap();
    let name = unique("nets").replace('-', "_").to_lowercase();
    let (front, back) = (format!("{name}-front"), format!("{name}-back"));
    for n in [&front, &back] {
        h.create_network(n, &NetworkOptions::default()).await.unwrap();
    }
    let mut spec = ServiceSpec::new(&name, IMAGE);
    spec.command = ["sleep", "600"].map(String::from).to_vec();
    spec.networks = vec![front.clone(), back.clone()];
    spec.network_aliases = vec!["db".into()];
    spec.placement.constraints = vec!["node.hostname==df-2".into()];
    spec.stop_grace_period = Duration::from_secs(1);
    let task = deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap().report.created.remove(0);
    let details = h.inspect_container(&task.id).await.unwrap();
    let mut nets: Vec<&String> = details.networks.keys().collect();
    nets.sort();
    let mut want = vec![&back, &front];
    want.sort();
    assert_eq!(nets, want, "the task is on both networks");
    // A client on the second network finds the task by the alias and by the service's name.
    let client = ContainerSpec {
        name: Some(format!("{name}-client")),
        command: ["sleep", "600"].map(String::from).to_vec(),
        network: Some(back.clone()),
        ..ContainerSpec::new(IMAGE)
    };
    let cid = h.create_container(&client).await.unwrap();
    h.start_container(&cid).await.unwrap();
    let run = |id: &str, cmd: &[&str]| {
        let (h, id, cmd) = (h.clone(), id.to_string(), cmd.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        async move { h.exec(&id, &cmd, &ExecOptions::default()).await.unwrap() }
    };
    for dns_name in ["db", name.as_str()] {
        let out = run(&cid, &["nslookup", dns_name]).await;
        assert!(out.stdout.contains(&details.networks[&back]), "{dns_name} resolves to the task: {out:?}");
    }
    assert!(!h.inspect_container(&cid).await.unwrap().privileged);
    h.remove_container(&cid, true, false).await.unwrap();
    remove_service(&fleet, &name).await.unwrap();

    // A privileged task's container is made privileged. (It cannot start here: the testbed's engines
    // lack CAP_SYS_RESOURCE, which a privileged container is given.)
    spec.privileged = true;
    spec.allow_privileged = true;
    let id = h.create_container(&task_container(&spec, 1)).await.unwrap();
    assert!(h.inspect_container(&id).await.unwrap().privileged, "privileged reaches the engine");
    h.remove_container(&id, true, false).await.unwrap();

    // A network that cannot be joined fails the task's start (the engine checks networks then), and
    // leaves no container behind.
    spec.privileged = false;
    spec.networks = vec![front.clone(), format!("{name}-missing")];
    let e = deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap_err();
    assert_eq!(e.code(), "not_found");
    assert!(e.to_string().starts_with(&format!("network \"{name}-missing\" not found on df-2")), "{e}");
    let left =
        ListContainersOptions { all: true, labels: vec![format!("dockfleet.service={name}")], ..Default::default() };
    assert!(h.list_containers(&left).await.unwrap().is_empty(), "the half-made task was removed");
    for n in [&front, &back] {
        h.remove_network(n).await.unwrap();
    }
}

#[tokio::test]
async fn hostname_placeholders_extra_hosts_init_read_only_and_capabilities_reach_every_task() {
    let fleet = plain_fleet();
    let name = unique("hn").replace('-', "_").to_lowercase();
    let mut spec = ServiceSpec::new(&name, IMAGE);
    spec.command = ["sleep", "600"].map(String::from).to_vec();
    spec.replicas = 2;
    spec.hostname = Some("{{.Service.Name}}-{{.Task.Slot}}".into());
    spec.env = BTreeMap::from([("AT".into(), "{{.Task.Slot}} on {{ .Node.Hostname }}".into())]);
    spec.extra_hosts = vec!["db.internal:10.1.2.3".into(), "gw:host-gateway".into()];
    spec.init = Some(true);
    spec.read_only = true;
    spec.cap_add = vec!["NET_ADMIN".into()];
    spec.cap_drop = vec!["CHOWN".into()];
    spec.stop_grace_period = Duration::from_secs(1);
    let tasks = deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap().report.created;
    assert_eq!(tasks.len(), 2);
    let script = "hostname; grep -E 'db.internal|gw' /etc/hosts; cat /proc/1/comm; grep CapEff /proc/self/status; \
                  touch /x 2>/dev/null && echo writable || echo read-only; echo $AT";
    for t in &tasks {
        let h = fleet.host(&t.host).unwrap();
        let cmd = ["sh".to_string(), "-c".into(), script.into()];
        let out = h.exec(&t.id, &cmd, &ExecOptions::default()).await.unwrap();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines[0], format!("{name}-{}", t.slot), "{out:?}");
        assert_eq!(lines[1], "10.1.2.3\tdb.internal", "{out:?}");
        assert!(lines[2].ends_with("\tgw") && !lines[2].starts_with("host-gateway"), "the engine's address: {out:?}");
        assert_eq!(lines[3], "docker-init", "{out:?}");
        let caps = u64::from_str_radix(lines[4].trim_start_matches("CapEff:").trim(), 16).unwrap();
        assert_eq!((caps >> 12 & 1, caps & 1), (1, 0), "NET_ADMIN (12) added, CHOWN (0) dropped: {out:?}");
        assert_eq!(lines[5], "read-only", "{out:?}");
        assert_eq!(lines[6], format!("{} on {}", t.slot, t.host), "placeholders in the environment: {out:?}");
    }
    remove_service(&fleet, &name).await.unwrap();
}

#[tokio::test]
async fn logging_ulimits_sysctls_tmpfs_dns_shm_size_pids_limit_and_groups_reach_every_task() {
    let fleet = plain_fleet();
    let name = unique("rt").replace('-', "_").to_lowercase();
    let mut spec = ServiceSpec::new(&name, IMAGE);
    spec.command = ["sh", "-c", "echo started; exec sleep 600"].map(String::from).to_vec();
    spec.logging = Some(LogConfig {
        driver: "json-file".into(),
        options: BTreeMap::from([("max-size".into(), "1k".into()), ("max-file".into(), "2".into())]),
    });
    spec.ulimits = vec![Ulimit { name: "nofile".into(), soft: 1000, hard: 2000 }];
    spec.sysctls = BTreeMap::from([("net.core.somaxconn".into(), "77".into())]);
    spec.read_only = true;
    spec.tmpfs = vec!["/scratch:size=1m".into()];
    // Only written into resolv.conf (the task looks nothing up); a testbed address all the same.
    spec.dns = vec!["10.250.0.11".into()];
    spec.dns_search = vec!["example.internal".into()];
    spec.dns_opt = vec!["ndots:2".into()];
    spec.shm_size = Some(2 << 20);
    spec.resources.pids_limit = Some(64);
    spec.group_add = vec!["1234".into()];
    spec.stop_grace_period = Duration::from_secs(1);
    let task = deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap().report.created.remove(0);
    let h = fleet.host(&task.host).unwrap();
    // The limits of the task's own process: an exec'd shell's are not the container's on every engine.
    let script = "awk '/Max open files/{print $4; print $5}' /proc/1/limits; cat /proc/sys/net/core/somaxconn; \
                  echo hi > /scratch/f && cat /scratch/f; df -k /scratch | tail -1; \
                  grep -E '^(nameserver|search|options)' /etc/resolv.conf | sort; df -k /dev/shm | awk 'NR==2{print $2}'; \
                  cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; id -G";
    let cmd = ["sh".to_string(), "-c".into(), script.into()];
    let out = h.exec(&task.id, &cmd, &ExecOptions::default()).await.unwrap();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[..4], ["1000", "2000", "77", "hi"], "{out:?}");
    assert!(lines[4].starts_with("tmpfs") && lines[4].split_whitespace().nth(1) == Some("1024"), "1 MiB: {out:?}");
    assert_eq!(lines[5..8], ["nameserver 10.250.0.11", "options ndots:2", "search example.internal"], "{out:?}");
    assert_eq!(lines[8], "2048", "a 2 MiB /dev/shm: {out:?}");
    assert_eq!(lines[9..11], ["64", "0 1234"], "the process limit and the added group: {out:?}");
    // The log driver keeps at most 2 files of 1 KiB: 10 KiB of output leave about 2 KiB behind.
    let noisy = ["sh".to_string(), "-c".into(), "for i in $(seq 100); do echo 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789 > /proc/1/fd/1; done".into()];
    h.exec(&task.id, &noisy, &ExecOptions::default()).await.unwrap();
    let logs: Vec<LogLine> = h.logs(&task.id, &LogOptions::default()).try_collect().await.unwrap();
    let bytes: usize = logs.iter().map(|l| l.message.len()).sum();
    assert!(bytes < 4096 && !logs.iter().any(|l| l.message.contains("started")), "rotated: {bytes} bytes kept");
    remove_service(&fleet, &name).await.unwrap();
}

#[tokio::test]
async fn security_options_reach_every_task() {
    let fleet = plain_fleet();
    let base = unique("so").replace('-', "_").to_lowercase();
    let service = |suffix: &str, opts: Vec<String>| {
        let mut spec = ServiceSpec::new(format!("{base}_{suffix}"), IMAGE);
        spec.command = ["sleep", "600"].map(String::from).to_vec();
        spec.security_opt = opts;
        spec.allow_privileged = true;
        spec.stop_grace_period = Duration::from_secs(1);
        spec
    };
    let loose = service(
        "loose",
        ["no-new-privileges:true", "seccomp:unconfined", "systempaths=unconfined", "label=type:web_t"]
            .map(String::from)
            .to_vec(),
    );
    // Allows every call but mkdir, which fails with EPERM.
    let profile =
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#;
    let filtered = service("filtered", vec![format!("seccomp={profile}")]);
    let script = "grep -E '^(NoNewPrivs|Seccomp):' /proc/1/status | tr -d '\\t '; \
                  grep -cE ' /proc/(sys|keys) ' /proc/self/mountinfo; mkdir /tmp/d 2>&1 && echo made";
    let mut seen = Vec::new();
    for spec in [&loose, &filtered] {
        let task = deploy(&fleet, spec, &PlanOptions::default()).await.unwrap().report.created.remove(0);
        let h = fleet.host(&task.host).unwrap();
        let cmd = ["sh".to_string(), "-c".into(), script.into()];
        let out = h.exec(&task.id, &cmd, &ExecOptions::default()).await.unwrap();
        seen.push((out.stdout.lines().take(3).collect::<Vec<_>>().join(" "), out.stdout.contains("made")));
        seen.push((h.inspect_container(&task.id).await.unwrap().security_opt.join(" "), false));
    }
    assert_eq!(
        seen,
        [
            // no_new_privs set, no seccomp filter, /proc/sys writable and /proc/keys unmasked; mkdir works.
            ("NoNewPrivs:1 Seccomp:0 0".into(), true),
            ("no-new-privileges=true seccomp=unconfined label=type:web_t".into(), false),
            // The engine's defaults but the profile: a filter, /proc/sys read-only and /proc/keys
            // masked; mkdir refused.
            ("NoNewPrivs:0 Seccomp:2 2".into(), false),
            (format!("seccomp={profile}"), false),
        ]
    );
    for spec in [&loose, &filtered] {
        remove_service(&fleet, &spec.name).await.unwrap();
    }
}

/// A device reaches every task at the path and with the permissions asked, the engine's device
/// cgroup enforcing them (`/dev/fuse` is outside the engine's default allowances, unlike `/dev/null`);
/// a host that lacks the device fails the task's create with the engine's word, and the service's
/// running tasks stay.
#[tokio::test]
async fn devices_reach_every_task_with_their_permissions() {
    let fleet = plain_fleet();
    let mut spec = sleeping("dev", 2);
    let name = spec.name.clone();
    // The device cgroup allows by device number, so each device appears once.
    spec.devices = vec!["/dev/fuse:/dev/reader:r".into(), "/dev/null:/dev/writer".into()];
    let d = deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    assert_eq!(d.report.created.len(), 2, "{:?}", d.report);
    let script = "for d in reader writer; do ls -l /dev/$d | cut -c1; (: < /dev/$d) 2>/dev/null && echo $d read; \
                  (: > /dev/$d) 2>/dev/null && echo $d write || echo $d refused; done";
    for task in &d.report.created {
        let h = fleet.host(&task.host).unwrap();
        let out = h.exec(&task.id, &["sh".into(), "-c".into(), script.into()], &ExecOptions::default()).await.unwrap();
        assert_eq!(out.stdout, "c\nreader read\nreader refused\nc\nwriter read\nwriter write\n", "on {}", task.host);
    }
    // A device the hosts lack: the engine refuses to start the new task with its word. A deploy
    // replaces stop-first: each old task, drained and stopped, runs again under its own name, and
    // nothing else is left.
    let mut missing = spec.clone();
    missing.devices = vec!["/dev/dockfleet-no-such-device".into()];
    missing.shutdown_delay = Duration::from_millis(300);
    let err = deploy(&fleet, &missing, &PlanOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("dockfleet-no-such-device"), "{err}");
    let o = observe(&fleet, &name).await.unwrap();
    let kept =
        |o: &Observed| o.tasks.iter().map(|t| (t.id.clone(), t.name.clone(), t.state.clone())).collect::<BTreeSet<_>>();
    let expected = d.report.created.iter().map(|t| (t.id.clone(), t.name.clone(), "running".to_string())).collect();
    assert_eq!(kept(&o), expected, "{o:?}");
    // A rollout that rolls back on failure brings the service back as it was.
    missing.update_config.failure_action = "rollback".into();
    let options = RolloutOptions { ready_timeout: Duration::from_secs(15), ..Default::default() };
    let events: Vec<RolloutEvent> = rollout(fleet.clone(), missing, options).try_collect().await.unwrap();
    let failed = events.iter().find(|e| e.kind == "task-failed").expect("a task failed");
    assert!(failed.message.contains("dockfleet-no-such-device"), "{}", failed.message);
    assert_eq!(events.last().map(|e| (e.phase.as_str(), e.kind.as_str())), Some(("rollback", "completed")));
    let o = observe(&fleet, &name).await.unwrap();
    let running: Vec<_> = o.tasks.iter().filter(|t| t.state == "running").collect();
    assert!(running.len() == 2 && running.iter().all(|t| t.spec_hash == spec_hash(&spec)), "{o:?}");
    remove_service(&fleet, &name).await.unwrap();
}

/// An update whose old task was removed after the plan was made (by hand, by another tool) starts
/// the new task all the same.
#[tokio::test]
async fn an_update_whose_old_task_vanished_starts_the_new_one() {
    let fleet = plain_fleet();
    let spec = sleeping("vanish", 2);
    deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    let mut changed = spec.clone();
    changed.env.insert("V".into(), "2".into());
    let p = plan(&changed, &observe(&fleet, &spec.name).await.unwrap(), &PlanOptions::default()).unwrap();
    let gone = p.actions.iter().find(|a| a.kind == "update").unwrap();
    fleet.host(&gone.host).unwrap().remove_container(gone.id.as_deref().unwrap(), true, false).await.unwrap();
    let report = apply(&fleet, &changed, &p).await.unwrap();
    assert_eq!(report.created.len(), 2, "{report:?}");
    let o = observe(&fleet, &spec.name).await.unwrap();
    assert!(
        o.tasks.len() == 2 && o.tasks.iter().all(|t| t.state == "running" && t.spec_hash == spec_hash(&changed)),
        "{o:?}"
    );
    remove_service(&fleet, &spec.name).await.unwrap();
}

/// A CPU weight, a CPU set, swap and OOM settings reach every task: the engine holds them, the
/// kernel runs a task pinned to CPU 0 on that one CPU, and its memory cgroup and OOM score say so. A
/// CPU set naming CPUs a host lacks places nothing there, and says why.
#[tokio::test]
async fn cpu_weights_cpu_sets_swap_and_oom_settings_reach_every_task() {
    let fleet = plain_fleet();
    let mut spec = sleeping("tuned", 2);
    let name = spec.name.clone();
    spec.resources = Resources {
        cpu_shares: Some(512),
        cpuset_cpus: Some("0".into()),
        memory_limit: Some(64 << 20),
        memory_swap_limit: Some(128 << 20),
        memory_swappiness: Some(0),
        oom_kill_disable: true,
        ..Default::default()
    };
    spec.oom_score_adj = Some(500);
    let d = deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    assert_eq!(d.report.created.len(), 2, "{:?}", d.report);
    for task in &d.report.created {
        let h = fleet.host(&task.host).unwrap();
        let script = "nproc; cat /proc/1/oom_score_adj /sys/fs/cgroup/memory/memory.swappiness; \
                      head -1 /sys/fs/cgroup/memory/memory.oom_control";
        let out = h.exec(&task.id, &["sh".into(), "-c".into(), script.into()], &ExecOptions::default()).await.unwrap();
        assert_eq!(out.stdout, "1\n500\n0\noom_kill_disable 1\n", "on {}", task.host);
        let bollard = h.as_docker().unwrap().bollard().await.unwrap();
        let hc = bollard.inspect_container(&task.id, None).await.unwrap().host_config.unwrap();
        assert_eq!(
            (hc.cpu_shares, hc.cpuset_cpus.as_deref(), hc.memory, hc.memory_swap),
            (Some(512), Some("0"), Some(64 << 20), Some(128 << 20)),
            "on {}",
            task.host
        );
    }
    // The testbed's hosts have 2 CPUs: none has CPU 7.
    let mut wide = spec.clone();
    wide.resources.cpuset_cpus = Some("0,7".into());
    let p = plan(&wide, &observe(&fleet, &name).await.unwrap(), &PlanOptions::default()).unwrap();
    assert_eq!(p.unplaced.len(), 2, "{p:?}");
    assert!(p.reasons.values().all(|r| r.contains("resources.cpuset_cpus names CPU 7")), "{p:?}");
    remove_service(&fleet, &name).await.unwrap();
}

/// A runtime reaches every task, and places tasks only on hosts whose engine has it (the engine
/// lists its runtimes in its info).
#[tokio::test]
async fn a_runtime_reaches_every_task_and_places_them_where_the_engine_has_it() {
    let fleet = plain_fleet();
    let info = fleet.host("df-1").unwrap().info().await.unwrap();
    assert!(info.runtimes.contains(&"runc".to_string()), "{:?}", info.runtimes);
    let mut spec = sleeping("runtime", 2);
    spec.runtime = Some("runc".into());
    let d = deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    for task in &d.report.created {
        let h = fleet.host(&task.host).unwrap();
        let bollard = h.as_docker().unwrap().bollard().await.unwrap();
        let hc = bollard.inspect_container(&task.id, None).await.unwrap().host_config.unwrap();
        assert_eq!(hc.runtime.as_deref(), Some("runc"), "on {}", task.host);
    }
    // No testbed engine has gVisor: the tasks have nowhere to go, and each host says why.
    spec.runtime = Some("runsc".into());
    let p = plan(&spec, &observe(&fleet, &spec.name).await.unwrap(), &PlanOptions::default()).unwrap();
    assert_eq!(p.unplaced.len(), 2, "{p:?}");
    assert!(p.reasons.values().all(|r| r.contains("its engine has no runtime runsc (it has ")), "{p:?}");
    remove_service(&fleet, &spec.name).await.unwrap();
}

/// `ipc: host` runs a task in its host's IPC namespace (this machine's, whose processes the testbed's
/// engines share it with), `ipc: none` gives it no shared memory mount at all.
#[tokio::test]
async fn the_hosts_ipc_namespace_or_none_reaches_every_task() {
    let fleet = plain_fleet();
    let ours = std::fs::read_link("/proc/self/ns/ipc").unwrap().to_string_lossy().into_owned();
    let script = "readlink /proc/self/ns/ipc; grep -c ' /dev/shm ' /proc/self/mounts";
    for (mode, same, shm) in [(None, false, "1"), (Some("host"), true, "1"), (Some("none"), false, "0")] {
        let mut spec = sleeping(&format!("ipc-{}", mode.unwrap_or("default")), 1);
        spec.ipc = mode.map(String::from);
        spec.allow_privileged = mode == Some("host");
        let d = deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
        let task = &d.report.created[0];
        let h = fleet.host(&task.host).unwrap();
        let out = h.exec(&task.id, &["sh".into(), "-c".into(), script.into()], &ExecOptions::default()).await.unwrap();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!((lines[0] == ours, lines.get(1).copied()), (same, Some(shm)), "ipc {mode:?}: {out:?} (ours {ours})");
        remove_service(&fleet, &spec.name).await.unwrap();
    }
}

/// `tty` gives every task a terminal; `stdin_open` keeps its standard input open, so a task reading
/// it waits (as under `docker run -i`) instead of reading end-of-file and exiting.
#[tokio::test]
async fn a_terminal_and_an_open_standard_input_reach_every_task() {
    let fleet = plain_fleet();
    let base = unique("tty").replace('-', "_").to_lowercase();
    let service = |suffix: &str, tty: bool, stdin_open: bool| {
        let mut spec = ServiceSpec::new(format!("{base}_{suffix}"), IMAGE);
        spec.command = ["sh", "-c", "tty; cat; echo stdin closed"].map(String::from).to_vec();
        spec.stop_grace_period = Duration::from_secs(1);
        spec.restart_policy.condition = "none".into();
        spec.tty = tty;
        spec.stdin_open = stdin_open;
        spec
    };
    // (spec, whether cat still waits, the output so far, its stream)
    let cases = [
        (service("both", true, true), true, "/dev/pts/0\n", "console"),
        (service("input", false, true), true, "not a tty\n", "stdout"),
        (service("neither", false, false), false, "not a tty\nstdin closed\n", "stdout"),
    ];
    for (spec, waits, output, stream) in &cases {
        let task = deploy(&fleet, spec, &PlanOptions::default()).await.unwrap().report.created.remove(0);
        let h = fleet.host(&task.host).unwrap();
        if *waits {
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert!(h.inspect_container(&task.id).await.unwrap().state.running, "{}: cat waits", spec.name);
        } else {
            assert_eq!(h.wait_container(&task.id).await.unwrap(), 0);
        }
        let lines: Vec<_> = h.logs(&task.id, &LogOptions::default()).try_collect().await.unwrap();
        let text: String = lines.iter().map(|l| l.message.replace('\r', "")).collect();
        assert_eq!(&text, output, "{}: {lines:?}", spec.name);
        assert!(lines.iter().all(|l| l.stream == *stream), "{}: {lines:?}", spec.name);
    }
    for (spec, ..) in &cases {
        remove_service(&fleet, &spec.name).await.unwrap();
    }
}

/// `pid: host` runs every task in its host's process namespace: the task sees its engine's
/// `dockerd` among the processes, which a task of its own namespace does not.
#[tokio::test]
async fn a_task_in_the_hosts_process_namespace_sees_the_hosts_processes() {
    let fleet = plain_fleet();
    let mut spec = sleeping("pid", 2);
    let name = spec.name.clone();
    let script = "cat /proc/1/comm; cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^dockerd$'";
    let mut seen = Vec::new();
    for pid in [None, Some("host")] {
        spec.pid = pid.map(String::from);
        spec.allow_privileged = pid.is_some();
        let d = deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
        for task in &d.report.created {
            let h = fleet.host(&task.host).unwrap();
            let out =
                h.exec(&task.id, &["sh".into(), "-c".into(), script.into()], &ExecOptions::default()).await.unwrap();
            let mut lines = out.stdout.lines();
            let (init, engines) = (lines.next().unwrap_or_default(), lines.next().unwrap_or_default());
            seen.push((pid, init == "sleep", engines.parse::<u32>().unwrap_or(0) > 0));
        }
    }
    // In its own namespace the task's command is PID 1 and no engine is in sight; in the host's,
    // PID 1 is the host's init and the testbed's engines are there.
    let expected = [(None, true, false), (None, true, false), (Some("host"), false, true), (Some("host"), false, true)];
    assert_eq!(seen, expected);
    remove_service(&fleet, &name).await.unwrap();
}

/// `node.runs`: a service placed where another runs (`==`, service affinity) or where it does not
/// (`!=`), which Swarm mode cannot express (moby/swarmkit#1442); when the other one moves, a new
/// deploy moves the tasks that no longer fit after it.
#[tokio::test]
async fn node_runs_places_a_service_by_where_another_runs() {
    let fleet = plain_fleet();
    let mut db = sleeping("aff-db", 1);
    db.placement.constraints = vec!["node.hostname==df-2".into()];
    deploy(&fleet, &db, &PlanOptions::default()).await.unwrap();
    let mut web = sleeping("aff-web", 2);
    web.placement.constraints = vec![format!("node.runs=={}", db.name)];
    let mut cache = sleeping("aff-cache", 2);
    cache.placement.constraints = vec![format!("node.runs!={}", db.name)];
    let hosts_of = |name: String| {
        let fleet = fleet.clone();
        async move {
            let o = observe(&fleet, &name).await.unwrap();
            let mut hosts: Vec<String> =
                o.tasks.iter().filter(|t| t.state == "running").map(|t| t.host.clone()).collect();
            hosts.sort();
            hosts
        }
    };
    deploy(&fleet, &web, &PlanOptions::default()).await.unwrap();
    deploy(&fleet, &cache, &PlanOptions::default()).await.unwrap();
    assert_eq!(hosts_of(web.name.clone()).await, ["df-2", "df-2"]);
    assert_eq!(hosts_of(cache.name.clone()).await, ["df-1", "df-3"]);
    // db moves to df-3: web follows it, cache leaves it, each at its next deploy.
    db.placement.constraints = vec!["node.hostname==df-3".into()];
    deploy(&fleet, &db, &PlanOptions::default()).await.unwrap();
    deploy(&fleet, &web, &PlanOptions::default()).await.unwrap();
    deploy(&fleet, &cache, &PlanOptions::default()).await.unwrap();
    assert_eq!(hosts_of(db.name.clone()).await, ["df-3"]);
    assert_eq!(hosts_of(web.name.clone()).await, ["df-3", "df-3"]);
    assert_eq!(hosts_of(cache.name.clone()).await, ["df-1", "df-2"]);
    for s in [&web, &cache, &db] {
        remove_service(&fleet, &s.name).await.unwrap();
    }
}

/// Builds an image on `host` whose `/marker` reads `marker`, pushes it as `remote` and removes it there.
async fn push_marked(host: &Arc<dyn Host>, auth: &RegistryAuth, remote: &str, marker: &str) -> String {
    let dir = std::env::temp_dir().join(unique("pull-img"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), format!("FROM {IMAGE}\nRUN echo {marker} > /marker\n")).unwrap();
    host.build_image(&dir, &BuildOptions { tag: remote.into(), ..Default::default() })
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    std::fs::remove_dir_all(dir).unwrap();
    let id = host.inspect_image(remote).await.unwrap().id;
    host.push_image(remote, &PushOptions { auth: Some(auth.clone()) }).try_collect::<Vec<_>>().await.unwrap();
    host.remove_image(remote, true).await.unwrap();
    id
}

#[tokio::test]
async fn services_pull_their_image_from_a_registry_as_their_pull_policy_says() {
    let auth = registry();
    let mut fleet = plain_fleet();
    let name = unique("pull").replace('-', "_").to_lowercase();
    let remote = format!("{}/dockfleet-test/{name}:1", auth.server);
    let first = push_marked(&fleet.host("df-1").unwrap(), &auth, &remote, "first").await;
    let images = |fleet: &Fleet| {
        let fleet = fleet.clone();
        let name = name.clone();
        async move {
            let mut ids = Vec::new();
            for t in observe(&fleet, &name).await.unwrap().tasks {
                ids.push(fleet.host(&t.host).unwrap().inspect_container(&t.id).await.unwrap().image_id);
            }
            ids
        }
    };
    let mut spec = ServiceSpec::new(&name, &remote);
    spec.command = ["sleep", "300"].map(String::from).to_vec();
    spec.replicas = 3;
    spec.stop_grace_period = Duration::from_secs(1);
    spec.update_config.parallelism = 0;
    spec.update_config.monitor = Duration::from_millis(200);

    // No host has it, and the spec does not pull: not_found, which says how to pull; nothing is created.
    let e = deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap_err();
    assert_eq!(e.code(), "not_found", "{e}");
    assert!(e.to_string().contains("pull_policy"), "{e}");
    // It pulls, but the fleet has no credentials for the registry: unauthorized, and still nothing.
    spec.pull_policy = Some("missing".into());
    let e = deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap_err();
    assert_eq!(e.code(), "unauthorized", "{e}");
    assert!(observe(&fleet, &name).await.unwrap().tasks.is_empty());
    assert_eq!(
        fleet.set_registry_auth(RegistryAuth { server: "".into(), ..auth.clone() }).unwrap_err().code(),
        "invalid_argument"
    );

    fleet.set_registry_auth(auth.clone()).unwrap();
    let d = deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    assert_eq!(d.report.created.len(), 3);
    assert_eq!(images(&fleet).await, vec![first.clone(); 3], "every host pulled it");
    for h in fleet.hosts() {
        assert!(h.image_exists(&remote).await.unwrap(), "{}", h.name());
    }

    // The tag moves. With `missing` an update keeps the image the hosts have; with `always` it pulls.
    let second = push_marked(&fleet.host("df-2").unwrap(), &auth, &remote, "second").await;
    assert_ne!(first, second);
    // df-2's build took the tag there and its removal dropped it: the update copies the first image
    // back to df-2 from a host that has it.
    spec.env.insert("ROUND".into(), "2".into());
    deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    assert_eq!(images(&fleet).await, vec![first.clone(); 3]);
    spec.env.insert("ROUND".into(), "3".into());
    spec.pull_policy = Some("always".into());
    deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    assert_eq!(images(&fleet).await, vec![second.clone(); 3], "each host pulled the moved tag");
    // A rollout tells of the pulls, and of copies, as `image` events before any task is replaced.
    let image_events = |events: Vec<RolloutEvent>| {
        let first_task = events.iter().position(|e| e.kind.starts_with("task-")).unwrap();
        assert!(events[first_task..].iter().all(|e| e.kind != "image"), "{events:?}");
        let mut notes: Vec<(String, String)> =
            events.into_iter().filter(|e| e.kind == "image").map(|e| (e.host, e.message)).collect();
        notes.sort();
        notes
    };
    spec.env.insert("ROUND".into(), "4".into());
    let notes =
        image_events(rollout(fleet.clone(), spec.clone(), RolloutOptions::default()).try_collect().await.unwrap());
    assert_eq!(notes.len(), 4, "{notes:?}");
    assert_eq!(notes[0], (String::new(), format!("pulling {remote} on df-1, df-2, df-3")));
    for (note, host) in notes[1..].iter().zip(["df-1", "df-2", "df-3"]) {
        assert!(note.0 == host && note.1.starts_with(&format!("pulled {remote} (sha256:")), "{note:?}");
    }
    // A fleet without the credentials: the updates fail as `task-failed` events naming the refusal,
    // the rollout pauses, and every task still runs the image it had.
    spec.env.insert("ROUND".into(), "4b".into());
    let events: Vec<RolloutEvent> =
        rollout(plain_fleet(), spec.clone(), RolloutOptions::default()).try_collect().await.unwrap();
    let failed: Vec<&RolloutEvent> = events.iter().filter(|e| e.kind == "task-failed").collect();
    assert_eq!(failed.len(), 3, "{events:?}");
    assert!(failed.iter().all(|e| e.message.contains(&format!("registry {} refused", auth.server))), "{failed:?}");
    assert_eq!(events.last().unwrap().kind, "paused");
    assert_eq!(images(&fleet).await, vec![second.clone(); 3]);
    spec.pull_policy = Some("never".into());
    fleet.host("df-3").unwrap().remove_image(&remote, true).await.unwrap();
    spec.env.insert("ROUND".into(), "5".into());
    let notes =
        image_events(rollout(fleet.clone(), spec.clone(), RolloutOptions::default()).try_collect().await.unwrap());
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(notes[0].1, format!("copying {remote} from df-1 to df-3"));
    assert!(notes[1].0 == "df-3" && notes[1].1.starts_with(&format!("copied {remote} from df-1 (")), "{notes:?}");
    assert_eq!(images(&fleet).await, vec![second.clone(); 3]);
    // The policy is not part of what a task is: changing it alone replaces nothing.
    spec.pull_policy = Some("missing".into());
    let d = deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    assert!(d.plan.actions.is_empty(), "{:?}", d.plan.actions);
    spec.pull_policy = Some("sometimes".into());
    match deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap_err() {
        Error::InvalidArgument { field, .. } => assert_eq!(field, "pull_policy"),
        e => panic!("{e}"),
    }

    assert_eq!(remove_service(&fleet, &name).await.unwrap(), 3);
    for h in fleet.hosts() {
        for id in [&first, &second] {
            let _ = h.remove_image(id, true).await;
        }
    }
}
