//! The Swarm-mode backend on a real 3-node swarm formed from the testbed's engines (df-1 manager, df-2
//! and df-3 workers): lifecycle (init, join, nodes, labels, drain, leave), a service deployed, scaled,
//! updated with an automatic rollback on failed health, updated and rolled back explicitly, pinned by
//! constraints, found by the registrator, its tasks' logs, a WordPress-shaped compose stack, and specs Swarm cannot
//! express refused before any engine call.
//!
//! One test drives the whole story in order: every step needs the swarm, and two swarms cannot share the
//! engines. The swarm is dissolved at the end, also when an assertion fails.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use dockfleet::*;
use futures::TryStreamExt;

/// Dissolves the swarm when the test ends, pass or fail. It runs on a runtime of its own, with clients
/// of its own: the test's runtime is blocked in this drop and cannot drive the test's connections.
struct Dissolve;

impl Drop for Dissolve {
    fn drop(&mut self) {
        let r = std::thread::spawn(|| {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                let swarm = Swarm::connect(plain_fleet(), SwarmOptions::default()).await?;
                swarm.dissolve().await
            })
        })
        .join();
        if !matches!(r, Ok(Ok(()))) {
            eprintln!("dissolving the swarm failed: {r:?}");
        }
    }
}

fn step(what: &str) {
    eprintln!("[swarm test] {what}");
}

async fn collect(s: dockfleet::ResultStream<RolloutEvent>) -> Vec<RolloutEvent> {
    s.try_collect().await.unwrap()
}

fn last(events: &[RolloutEvent]) -> (&str, &str) {
    let e = events.last().expect("at least one event");
    (e.phase.as_str(), e.kind.as_str())
}

async fn service_version(fleet: &Fleet, name: &str) -> u64 {
    let h = fleet.host("df-1").unwrap();
    let d = h.as_docker().unwrap().bollard().await.unwrap();
    let s = d.inspect_service(name, None::<bollard::query_parameters::InspectServiceOptions>).await.unwrap();
    s.version.unwrap().index.unwrap()
}

async fn swarm_services(fleet: &Fleet) -> usize {
    let h = fleet.host("df-1").unwrap();
    let d = h.as_docker().unwrap().bollard().await.unwrap();
    d.list_services(None::<bollard::query_parameters::ListServicesOptions>).await.unwrap().len()
}

/// Reads followed lines until `n` slots have written one.
async fn one_line_per_slot(
    lines: &mut ResultStream<ServiceLogLine>,
    seen: &mut BTreeMap<u32, ServiceLogLine>,
    n: usize,
) {
    while seen.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(30), futures::StreamExt::next(lines));
        let l = next.await.expect("a line in time").expect("the stream goes on").unwrap();
        seen.insert(l.slot, l);
    }
}

fn hashes(st: &ServiceStatus) -> Vec<String> {
    let mut h: Vec<String> = st.tasks.iter().map(|t| t.spec_hash.clone()).collect();
    h.dedup();
    h
}

const STACK: &str = r#"
services:
  web:
    image: dockfleet/busybox:latest
    command: ["sh", "-c", "echo \"web $$HOSTNAME\" > /www/index.html; exec httpd -f -p 80 -h /www"]
    stop_grace_period: 1s
    ports: ["PORT:80"]
    # The testbed's /run/netns is a shared mount; an rslave bind follows it as a slave.
    volumes: ["/run/netns:/netns:ro,rslave"]
    depends_on:
      db:
        condition: service_healthy
    deploy:
      replicas: 3
  db:
    image: dockfleet/busybox:latest
    command: sh -c 'sleep 1; touch /data/ready; exec sleep 600'
    stop_grace_period: 1s
    volumes: ["db-data:/data"]
    secrets: [db_password, api_token, dotenv_token]
    configs: [{source: motd, target: /etc/motd}]
    healthcheck:
      test: test -f /data/ready
      interval: 300ms
      retries: 10
    deploy:
      endpoint_mode: dnsrr
      placement:
        constraints: [node.role == manager]
volumes:
  db-data:
    labels: {tier: data}
    driver_opts: {type: tmpfs, device: tmpfs, o: size=2m}
networks:
  default:
    ipam:
      config: [{subnet: 10.77.0.0/24}]
secrets:
  db_password: {file: ./db_password.txt}
  api_token: {environment: DOCKFLEET_SWARM_TEST_TOKEN, labels: {tier: auth}}
  dotenv_token: {environment: DOCKFLEET_SWARM_DOTENV_TOKEN}
configs:
  motd: {content: "welcome to the stack"}
"#;

#[tokio::test]
async fn swarm_backend_end_to_end() {
    let mut fleet = plain_fleet();
    fleet.set_registry_auth(registry()).unwrap();
    let options = SwarmOptions { timeout: Duration::from_secs(120), ..Default::default() };

    step("bad options and a missing manager are refused");
    let e = Swarm::init(fleet.clone(), "df-1", SwarmOptions { publish_mode: "mesh".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("publish_mode"), "{e}");
    let e = Swarm::connect(fleet.clone(), options.clone()).await.unwrap_err();
    assert_eq!(e.code(), "not_found", "no swarm yet: {e}");

    step("init on df-1, join df-2 and df-3 as workers");
    let swarm = Swarm::init(fleet.clone(), "df-1", options.clone()).await.unwrap();
    let _dissolve = Dissolve;
    for h in ["df-2", "df-3"] {
        let node = swarm.join(h, "worker").await.unwrap();
        assert_eq!((node.host.as_str(), node.role.as_str()), (h, "worker"));
    }
    assert_eq!(swarm.join("df-2", "worker").await.unwrap().host, "df-2", "joining again changes nothing");
    assert_eq!(swarm.join("df-2", "boss").await.unwrap_err().code(), "invalid_argument");
    let nodes = swarm.nodes().await.unwrap();
    let view: Vec<(&str, &str, &str)> =
        nodes.iter().map(|n| (n.host.as_str(), n.role.as_str(), n.availability.as_str())).collect();
    assert_eq!(view, [("df-1", "manager", "active"), ("df-2", "worker", "active"), ("df-3", "worker", "active")]);
    assert!(nodes[0].leader);
    assert_eq!(nodes[2].labels.get("zone").map(String::as_str), Some("b"), "fleet labels became node labels");
    assert_eq!(nodes[2].labels.get(LABEL_NODE_HOST).map(String::as_str), Some("df-3"));
    let n = swarm
        .set_node_labels("df-3", BTreeMap::from([("zone".into(), "b".into()), ("disk".into(), "ssd".into())]))
        .await
        .unwrap();
    assert_eq!(n.labels.get("disk").map(String::as_str), Some("ssd"));
    assert_eq!(n.labels.get(LABEL_NODE_HOST).map(String::as_str), Some("df-3"), "kept");
    let backend: Arc<dyn ServiceBackend> = Arc::new(Swarm::connect(fleet.clone(), options.clone()).await.unwrap());
    assert_eq!(backend.kind(), "swarm");

    step("what Swarm cannot express is refused before any engine call");
    let before = swarm_services(&fleet).await;
    let mut bad = web_service("sw-bad", 2);
    bad.placement.strategy = "binpack".into();
    let e = backend.rollout(bad.clone(), Default::default()).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(e.code() == "invalid_argument" && e.to_string().contains("placement.strategy"), "{e}");
    bad.placement.strategy = "spread".into();
    bad.ports[0].target = 0;
    let e = backend.rollout(bad, Default::default()).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(e.to_string().contains("ports[0].target"), "{e}");
    assert_eq!(swarm_services(&fleet).await, before, "nothing was created");

    step("deploy 3 replicas, found by the registrator and answering on their nodes");
    let mut spec = web_service("sw-web", 3);
    spec.update_config.monitor = Duration::from_secs(2);
    spec.update_config.failure_action = "rollback".into();
    spec.rollback_config.monitor = Duration::from_secs(1);
    let name = spec.name.clone();
    let events = collect(backend.rollout(spec.clone(), Default::default())).await;
    assert_eq!(last(&events), ("update", "completed"), "{events:?}");
    assert_eq!(events.iter().filter(|e| e.kind == "task-updated").count(), 3, "{events:?}");
    let st = backend.service_status(&name).await.unwrap();
    assert_eq!((st.desired, st.running, st.tasks.len()), (3, 3, 3), "{st:?}");
    let first_hash = spec_hash(&spec);
    assert_eq!(hashes(&st), vec![first_hash.clone()]);
    let mut hosts: Vec<&str> = st.tasks.iter().map(|t| t.host.as_str()).collect();
    hosts.sort();
    assert_eq!(hosts, ["df-1", "df-2", "df-3"], "spread over the nodes, named by their fleet hosts");
    let discovery = Arc::new(EmbeddedDiscovery::new());
    let reg = registrator(fleet.clone(), discovery.clone(), RegistratorOptions::default());
    let reg = tokio::spawn(reg.try_collect::<Vec<_>>());
    let found = wait_lookup(discovery.as_ref(), &name, false, |v| v.len() == 3).await;
    for i in &found {
        assert!(i.metadata.contains_key("swarm_task") && i.metadata.contains_key("slot"), "{i:?}");
        let body = http_get(&format!("{}:{}", i.address, i.port)).await;
        assert!(body.starts_with("HTTP/1.1 200 OK"), "{i:?}: {body}");
    }

    step("the same spec again changes nothing");
    let v = service_version(&fleet, &name).await;
    let events = collect(backend.rollout(spec.clone(), Default::default())).await;
    assert_eq!(last(&events).1, "completed");
    assert!(events.iter().all(|e| !e.kind.starts_with("task-")), "{events:?}");
    assert_eq!(service_version(&fleet, &name).await, v, "no update was sent");

    step("scale 3 → 5 → 2");
    assert_eq!(backend.scale(&name, 5).await.unwrap().running, 5);
    let st = backend.scale(&name, 2).await.unwrap();
    assert_eq!((st.desired, st.running), (2, 2));
    assert_eq!(hashes(&st), vec![first_hash.clone()], "scaling replaces nothing");
    wait_lookup(discovery.as_ref(), &name, false, |v| v.len() == 2).await;

    step("a service on the host network: one task per node, found at the nodes' own addresses");
    let mut agent = web_service("sw-agent", 3);
    let agent_port = 18800 + (std::process::id() % 90) as u16;
    agent.networks = vec!["host".into()];
    agent.command = ["httpd", "-f", "-p", &agent_port.to_string(), "-h", "/www"].map(String::from).to_vec();
    agent.ports = vec![ServicePort { target: agent_port, ..Default::default() }];
    let events = collect(backend.rollout(agent.clone(), Default::default())).await;
    assert_eq!(last(&events).1, "completed", "{events:?}");
    let st = backend.service_status(&agent.name).await.unwrap();
    let mut hosts: Vec<&str> = st.tasks.iter().map(|t| t.host.as_str()).collect();
    hosts.sort();
    assert_eq!((st.running, hosts), (3, vec!["df-1", "df-2", "df-3"]), "{st:?}");
    let found = wait_lookup(discovery.as_ref(), &agent.name, false, |v| v.len() == 3).await;
    let mut at: Vec<(String, u16)> = found.iter().map(|i| (i.address.clone(), i.port)).collect();
    at.sort();
    assert_eq!(at, (1..=3).map(|n| (format!("10.250.0.1{n}"), agent_port)).collect::<Vec<_>>());
    for (address, port) in &at {
        assert!(http_get(&format!("{address}:{port}")).await.starts_with("HTTP/1"), "{address}:{port}");
    }
    assert_eq!(backend.remove_service(&agent.name).await.unwrap(), 3);

    step("an update whose tasks never get healthy is rolled back automatically");
    let mut broken = spec.clone();
    broken.replicas = 2;
    broken.healthcheck = Some(Healthcheck {
        test: vec!["CMD-SHELL".into(), "exit 1".into()],
        interval: Some(Duration::from_millis(500)),
        timeout: Some(Duration::from_secs(1)),
        retries: Some(1),
        start_period: None,
    });
    let events = collect(backend.rollout(broken.clone(), Default::default())).await;
    assert_eq!(last(&events), ("rollback", "completed"), "{events:?}");
    assert!(events.iter().any(|e| e.phase == "rollback" && e.kind == "started"), "{events:?}");
    let st = backend.service_status(&name).await.unwrap();
    assert_eq!((st.running, hashes(&st)), (2, vec![first_hash.clone()]), "back on the first spec: {st:?}");

    step("a good update, then an explicit rollback");
    let mut v2 = spec.clone();
    v2.replicas = 2;
    v2.env.insert("VERSION".into(), "2".into());
    let events = collect(backend.rollout(v2.clone(), Default::default())).await;
    assert_eq!(last(&events), ("update", "completed"), "{events:?}");
    assert_eq!(events.iter().filter(|e| e.kind == "task-updated").count(), 2, "{events:?}");
    assert_eq!(hashes(&backend.service_status(&name).await.unwrap()), [spec_hash(&v2)]);
    let events = collect(backend.rollback(&name, Default::default())).await;
    assert_eq!(last(&events), ("rollback", "completed"), "{events:?}");
    let st = backend.service_status(&name).await.unwrap();
    assert_eq!((st.running, hashes(&st)), (2, vec![first_hash.clone()]), "{st:?}");

    step("a forced rollout restarts every task of an unchanged spec");
    let before: BTreeSet<String> = st.tasks.iter().map(|t| t.id.clone()).collect();
    let same = ServiceSpec { replicas: 2, ..spec.clone() };
    let unforced = collect(backend.rollout(same.clone(), Default::default())).await;
    assert_eq!(last(&unforced), ("update", "completed"), "{unforced:?}");
    let ids = |st: &ServiceStatus| st.tasks.iter().map(|t| t.id.clone()).collect::<BTreeSet<_>>();
    assert_eq!(ids(&backend.service_status(&name).await.unwrap()), before, "unforced: no task replaced");
    let forced = RolloutOptions { force: true, ..Default::default() };
    let events = collect(backend.rollout(same, forced)).await;
    assert_eq!(last(&events), ("update", "completed"), "{events:?}");
    assert_eq!(events.iter().filter(|e| e.kind == "task-updated").count(), 2, "{events:?}");
    let st = backend.service_status(&name).await.unwrap();
    assert_eq!((st.running, hashes(&st)), (2, vec![first_hash.clone()]), "{st:?}");
    assert!(ids(&st).is_disjoint(&before), "{before:?} → {st:?}");

    step("drain df-2: its task moves; active again");
    let st = backend.scale(&name, 3).await.unwrap();
    assert!(st.tasks.iter().any(|t| t.host == "df-2"), "{st:?}");
    assert_eq!(swarm.set_availability("df-2", "drain").await.unwrap().availability, "drain");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let st = backend.service_status(&name).await.unwrap();
        if st.running == 3 && st.tasks.iter().all(|t| t.host != "df-2") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "tasks never left df-2: {st:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(swarm.set_availability("df-2", "gone").await.unwrap_err().code(), "invalid_argument");
    swarm.set_availability("df-2", "active").await.unwrap();

    step("constraints: a fleet host name, the platform and a node label");
    let mut pinned = web_service("sw-pin", 2);
    pinned.placement.constraints =
        vec!["node.hostname==df-3".into(), "node.platform.os==linux".into(), "node.platform.arch==x86_64".into()];
    let events = collect(backend.rollout(pinned.clone(), Default::default())).await;
    assert_eq!(last(&events).1, "completed", "{events:?}");
    let st = backend.service_status(&pinned.name).await.unwrap();
    assert!(st.running == 2 && st.tasks.iter().all(|t| t.host == "df-3"), "{st:?}");
    assert_eq!(backend.remove_service(&pinned.name).await.unwrap(), 2);
    // A port's own mode overrides the swarm's (host here): Swarm publishes that one through the
    // routing mesh, the other in host mode.
    let mut meshed = web_service("sw-mesh", 1);
    let mesh_port = 18900 + (std::process::id() % 90) as u16;
    meshed.ports.push(ServicePort {
        target: 80,
        published: Some(mesh_port),
        mode: Some("ingress".into()),
        ..Default::default()
    });
    assert_eq!(last(&collect(backend.rollout(meshed.clone(), Default::default())).await).1, "completed");
    let manager = fleet.host("df-1").unwrap();
    let d = manager.as_docker().unwrap().bollard().await.unwrap();
    let inspected = d.inspect_service(&meshed.name, None::<bollard::query_parameters::InspectServiceOptions>).await;
    let ports = inspected.unwrap().endpoint.unwrap().ports.unwrap();
    let modes: Vec<(Option<i64>, String)> = ports
        .iter()
        .map(|p| (p.published_port.filter(|p| *p == i64::from(mesh_port)), p.publish_mode.unwrap().to_string()))
        .collect();
    assert_eq!(modes.len(), 2, "{ports:?}");
    assert!(modes.contains(&(Some(i64::from(mesh_port)), "ingress".into())), "{ports:?}");
    assert!(modes.contains(&(None, "host".into())), "{ports:?}");
    backend.remove_service(&meshed.name).await.unwrap();
    let mut ssd = web_service("sw-ssd", 1);
    ssd.placement.constraints = vec!["disk==ssd".into()];
    collect(backend.rollout(ssd.clone(), Default::default())).await;
    assert_eq!(backend.service_status(&ssd.name).await.unwrap().tasks[0].host, "df-3");
    backend.remove_service(&ssd.name).await.unwrap();

    step("service logs, stats and exec: every task's output, resource use and a command run in it");
    let logs_name = unique("sw-logs").replace('_', "-");
    let mut talker = ServiceSpec::new(&logs_name, IMAGE);
    // The entrypoint, working directory and user reach Swarm's tasks (as its Command, Dir and User).
    talker.entrypoint = Some(vec!["sh".into(), "-c".into()]);
    talker.command = vec!["echo hello from $(hostname) in $(pwd) as $(id -u); exec sleep 600".into()];
    talker.working_dir = Some("/srv".into());
    talker.user = Some("65534".into());
    // So do the hostname (Swarm fills the placeholders), /etc/hosts entries, init and a read-only root.
    talker.hostname = Some("{{.Service.Name}}-{{.Task.Slot}}".into());
    talker.env = BTreeMap::from([("SLOT".into(), "slot {{ .Task.Slot }}".into())]);
    talker.extra_hosts = vec!["db.internal:10.1.2.3".into()];
    talker.init = Some(true);
    talker.read_only = true;
    // And the log driver, ulimits, sysctls and tmpfs.
    talker.logging =
        Some(LogConfig { driver: "json-file".into(), options: BTreeMap::from([("max-size".into(), "1m".into())]) });
    talker.ulimits = vec![Ulimit { name: "nofile".into(), soft: 1000, hard: 2000 }];
    talker.sysctls = BTreeMap::from([("net.core.somaxconn".into(), "77".into())]);
    talker.tmpfs = vec!["/scratch:size=1m".into()];
    talker.dns_search = vec!["example.internal".into()];
    talker.dns_opt = vec!["ndots:2".into()];
    talker.shm_size = Some(2 << 20);
    talker.resources.pids_limit = Some(64);
    talker.group_add = vec!["1234".into()];
    talker.replicas = 2;
    talker.stop_grace_period = Duration::from_secs(1);
    // SELinux labels reach the tasks; the other security options are refused before any engine call
    // (Swarm takes them from API 1.44), and nothing is created.
    let unswarmable = ServiceSpec { security_opt: vec!["no-new-privileges".into()], ..talker.clone() };
    let e = backend.rollout(unswarmable, Default::default()).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(e.code() == "invalid_argument" && e.to_string().contains("security_opt[0]"), "{e}");
    assert_eq!(backend.service_status(&logs_name).await.unwrap_err().code(), "not_found");
    talker.security_opt = vec!["label=level:s0:c1,c2".into()];
    assert_eq!(last(&collect(backend.rollout(talker.clone(), Default::default())).await).1, "completed");
    let mut lines = backend.service_logs(&logs_name, &LogOptions { follow: true, ..Default::default() });
    let mut seen: BTreeMap<u32, ServiceLogLine> = BTreeMap::new();
    one_line_per_slot(&mut lines, &mut seen, 2).await;
    assert_eq!(backend.scale(&logs_name, 3).await.unwrap().running, 3);
    one_line_per_slot(&mut lines, &mut seen, 3).await;
    drop(lines);
    let st = backend.service_status(&logs_name).await.unwrap();
    for t in &st.tasks {
        let l = &seen[&t.slot];
        assert_eq!((l.host.as_str(), l.id.as_str()), (t.host.as_str(), t.id.as_str()), "{l:?}");
        assert!(l.name.starts_with(&format!("{}.", t.name)), "the task's container, {l:?} of {t:?}");
        let hello = format!("hello from {logs_name}-{} in /srv as 65534", t.slot);
        assert_eq!((l.stream.as_str(), l.message.trim()), ("stdout", hello.as_str()));
    }
    let samples = backend.service_stats(&logs_name).await.unwrap();
    let mut want: Vec<(u32, &str, &str)> = st.tasks.iter().map(|t| (t.slot, t.host.as_str(), t.id.as_str())).collect();
    want.sort();
    let got: Vec<(u32, &str, &str)> = samples.iter().map(|s| (s.slot, s.host.as_str(), s.stats.id.as_str())).collect();
    assert_eq!(got, want, "a sample of each task, on its node");
    assert!(samples.iter().all(|s| s.stats.pids >= 1 && s.stats.memory_bytes > 0), "{samples:?}");
    for t in &st.tasks {
        let details = fleet.host(&t.host).unwrap().inspect_container(&t.id).await.unwrap();
        assert_eq!(details.security_opt, ["label=level:s0:c1,c2"], "{t:?}");
    }
    // (The user, 65534, could not write to / anyway: the error tells which refusal it met.)
    let script = "grep db.internal /etc/hosts; cat /proc/1/comm; touch /x 2>&1 | grep -o 'Read-only file system'; \
                  awk '/Max open files/{print $4}' /proc/1/limits; cat /proc/sys/net/core/somaxconn; df -k /scratch | awk 'NR==2{print $1, $2}'; echo $SLOT; \
                  grep -o 'search example.internal\\|ndots:2' /etc/resolv.conf | sort -u; \
                  df -k /dev/shm | awk 'NR==2{print $2}'; cat /sys/fs/cgroup/pids/pids.max; id -G";
    let hostname = ["sh".to_string(), "-c".into(), format!("hostname; {script}")];
    let runs = backend.service_exec(&logs_name, &hostname, &ServiceExecOptions::default()).await.unwrap();
    let got: Vec<(u32, &str, String)> =
        runs.iter().map(|r| (r.slot, r.host.as_str(), r.stdout.trim().into())).collect();
    let want: Vec<(u32, &str, String)> = want
        .iter()
        .map(|(s, h, _)| {
            (
                *s,
                *h,
                format!(
                    "{logs_name}-{s}\n10.1.2.3\tdb.internal\ndocker-init\nRead-only file system\n1000\n77\ntmpfs 1024\nslot {s}\nndots:2\nsearch example.internal\n2048\n64\n0 1234"
                ),
            )
        })
        .collect();
    assert_eq!(got, want, "run in each task, on its node: {runs:?}");
    let tail = LogOptions { tail: Some(1), ..Default::default() };
    let all: Vec<ServiceLogLine> = backend.service_logs(&logs_name, &tail).try_collect().await.unwrap();
    assert_eq!(all.len(), 3, "one line per task, and the stream ends: {all:?}");
    backend.remove_service(&logs_name).await.unwrap();
    let e = backend.service_logs(&logs_name, &tail).try_collect::<Vec<_>>().await.unwrap_err();
    assert_eq!(e.code(), "not_found", "{e}");
    assert_eq!(backend.service_stats(&logs_name).await.unwrap_err().code(), "not_found");
    let e = backend.service_exec(&logs_name, &hostname, &ServiceExecOptions::default()).await.unwrap_err();
    assert_eq!(e.code(), "not_found");

    step("secrets and configs: created, mounted into the tasks, refused by the fleet, removed");
    let pw = unique("sw-pw");
    let conf = unique("sw-conf");
    swarm.create_secret(&pw, b"hunter2", BTreeMap::new()).await.unwrap();
    assert_eq!(swarm.create_secret(&pw, b"again", BTreeMap::new()).await.unwrap_err().code(), "conflict");
    swarm.create_config(&conf, b"answer = 42", BTreeMap::new()).await.unwrap();
    let mut with_files = web_service("sw-files", 1);
    with_files.ports.clear();
    with_files.secrets = vec![ServiceFile { target: "db_password".into(), mode: 0o400, ..ServiceFile::new(&pw) }];
    with_files.configs = vec![ServiceFile { target: "/etc/app.conf".into(), ..ServiceFile::new(&conf) }];
    let e = fleet.rollout(with_files.clone(), Default::default()).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(e.code() == "invalid_argument" && e.to_string().contains("secrets"), "{e}");
    assert_eq!(last(&collect(backend.rollout(with_files.clone(), Default::default())).await).1, "completed");
    let task = backend.service_status(&with_files.name).await.unwrap().tasks.remove(0);
    let h = fleet.host(&task.host).unwrap();
    let cat = ["cat".to_string(), "/run/secrets/db_password".into(), "/etc/app.conf".into()];
    let out = h.exec(&task.id, &cat, &ExecOptions::default()).await.unwrap();
    assert_eq!(out.stdout, "hunter2answer = 42", "{out:?}");
    assert_eq!(swarm.remove_secret(&pw).await.unwrap_err().code(), "conflict", "in use");
    backend.remove_service(&with_files.name).await.unwrap();
    swarm.remove_secret(&pw).await.unwrap();
    swarm.remove_config(&conf).await.unwrap();
    assert_eq!(swarm.remove_config(&conf).await.unwrap_err().code(), "not_found");
    let mut missing = with_files.clone();
    missing.configs.clear();
    let e = backend.rollout(missing, Default::default()).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(e.to_string().contains("secrets[0].source"), "a secret the swarm lacks: {e}");

    step("an image only the registry has: the nodes pull it, with the fleet's credentials");
    let auth = registry();
    let pulled_name = unique("sw-pull").replace('_', "-");
    let remote = format!("{}/dockfleet-test/{pulled_name}:1", auth.server);
    let df1 = fleet.host("df-1").unwrap();
    df1.tag_image(IMAGE, &remote).await.unwrap();
    df1.push_image(&remote, &PushOptions { auth: Some(auth.clone()) }).try_collect::<Vec<_>>().await.unwrap();
    df1.remove_image(&remote, false).await.unwrap();
    let mut pulling = ServiceSpec::new(&pulled_name, &remote);
    pulling.command = vec!["sleep".into(), "600".into()];
    pulling.replicas = 3;
    pulling.stop_grace_period = Duration::from_secs(1);
    let e = backend.rollout(pulling.clone(), Default::default()).try_collect::<Vec<_>>().await.unwrap_err();
    assert_eq!(e.code(), "not_found", "no node has it, and the spec does not pull: {e}");
    pulling.pull_policy = Some("missing".into());
    let events = collect(backend.rollout(pulling.clone(), Default::default())).await;
    assert_eq!(last(&events).1, "completed");
    let pulls: Vec<(&str, &str)> =
        events.iter().filter(|e| e.kind == "image").map(|e| (e.host.as_str(), e.message.as_str())).collect();
    assert_eq!(pulls.len(), 4, "one as the pulls start, one per node: {pulls:?}");
    assert_eq!(pulls[0], ("", format!("pulling {remote} on df-1, df-2, df-3").as_str()));
    for h in fleet.hosts() {
        assert!(h.image_exists(&remote).await.unwrap(), "{}", h.name());
    }
    assert_eq!(backend.service_status(&pulled_name).await.unwrap().tasks.len(), 3);
    backend.remove_service(&pulled_name).await.unwrap();

    step("remove: the tasks go, and so do their registrations");
    assert_eq!(backend.remove_service(&name).await.unwrap(), 3);
    for h in fleet.hosts() {
        let left = h
            .list_containers(&ListContainersOptions {
                all: true,
                labels: vec![format!("com.docker.swarm.service.name={name}")],
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(left.is_empty(), "{}: {left:?}", h.name());
    }
    wait_lookup(discovery.as_ref(), &name, true, |v| v.is_empty()).await;
    assert_eq!(backend.service_status(&name).await.unwrap_err().code(), "not_found");
    reg.abort();

    step("a WordPress-shaped stack: db pinned to the manager with a volume, web waits for it");
    let stack_name = unique("swblog").replace('_', "-");
    let dir = std::env::temp_dir().join(&stack_name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("db_password.txt"), "s3cret").unwrap();
    // A secret's variable that only the project's .env sets, as compose reads it.
    std::fs::write(dir.join(".env"), "DOCKFLEET_SWARM_DOTENV_TOKEN=\"fr0m ${DOCKFLEET_SWARM_DOTENV_MISSING:-.env}\"\n")
        .unwrap();
    let port = 18600 + (std::process::id() % 300) as u16;
    let stack = parse_compose(&stack_name, &STACK.replace("PORT", &port.to_string()), &dir).unwrap();
    // Read when the stack is deployed, not when it is parsed; the only test in this binary sets it.
    std::env::set_var("DOCKFLEET_SWARM_TEST_TOKEN", "t0ken");
    let events = collect(backend.stack_up(stack.clone(), StackOptions::default())).await;
    let order: Vec<String> = events
        .iter()
        .filter(|e| e.kind == "started" || e.phase == "stack")
        .map(|e| format!("{}:{}", e.service, e.kind))
        .collect();
    let (db, web) = (format!("{stack_name}_db"), format!("{stack_name}_web"));
    let pos = |s: &str| order.iter().position(|x| x == s).unwrap_or_else(|| panic!("{s} missing from {order:?}"));
    assert!(pos(&format!("{db}:started")) < pos(&format!("{stack_name}:waiting")), "{order:?}");
    assert!(pos(&format!("{stack_name}:waiting")) < pos(&format!("{web}:started")), "{order:?}");
    assert_eq!(order.last().map(String::as_str), Some(format!("{stack_name}:completed").as_str()));
    let ps = backend.stack_ps(&stack_name).await.unwrap();
    let by_name: BTreeMap<&str, &ServiceStatus> = ps.iter().map(|s| (s.name.as_str(), s)).collect();
    assert_eq!(by_name.len(), 2, "{ps:?}");
    assert_eq!(by_name[db.as_str()].tasks[0].host, "df-1", "{ps:?}");
    let mut web_hosts: Vec<&str> = by_name[web.as_str()].tasks.iter().map(|t| t.host.as_str()).collect();
    web_hosts.sort();
    assert_eq!(web_hosts, ["df-1", "df-2", "df-3"]);
    for n in 1..=3 {
        let body = http_get(&format!("10.250.0.{}:{port}", 10 + n)).await;
        assert!(body.contains("\r\n\r\nweb "), "df-{n}: {body}");
    }
    let df1 = fleet.host("df-1").unwrap();
    let db_task = &by_name[db.as_str()].tasks[0];
    let files = ["/run/secrets/db_password", "/run/secrets/api_token", "/run/secrets/dotenv_token", "/etc/motd"];
    let cat: Vec<String> = std::iter::once("cat").chain(files).map(String::from).collect();
    assert_eq!(
        df1.exec(&db_task.id, &cat, &ExecOptions::default()).await.unwrap().stdout,
        "s3crett0kenfr0m .envwelcome to the stack"
    );
    // web finds db by its name in the file (the alias the stack sets) and by the service's name.
    let web_task = by_name[web.as_str()].tasks.iter().find(|t| t.host == "df-1").unwrap();
    let grep = ["grep".to_string(), " /netns ".into(), "/proc/self/mountinfo".into()];
    let mountinfo = df1.exec(&web_task.id, &grep, &ExecOptions::default()).await.unwrap().stdout;
    assert!(mountinfo.contains(" master:") && mountinfo.contains(" ro"), "{mountinfo}");
    // db is dnsrr: its names resolve to its task's own address; web is vip: its name resolves to one
    // virtual address, none of its tasks'.
    let network = format!("{stack_name}_default");
    let address_of = |id: String| {
        let h = df1.clone();
        let network = network.clone();
        async move { h.inspect_container(&id).await.unwrap().networks[&network].clone() }
    };
    let db_address = address_of(db_task.id.clone()).await;
    assert!(db_address.starts_with("10.77.0."), "the network's subnet: {db_address}");
    let mounts = ["grep".to_string(), " /data ".into(), "/proc/mounts".into()];
    let mount = df1.exec(&db_task.id, &mounts, &ExecOptions::default()).await.unwrap().stdout;
    assert!(mount.starts_with("tmpfs /data tmpfs") && mount.contains("size=2048k"), "{mount}");
    // The service's mount carries the volume's driver, options and labels, for a node that joins later.
    let bollard = df1.as_docker().unwrap().bollard().await.unwrap();
    let service = bollard.inspect_service(&db, None).await.unwrap();
    let mount = service.spec.unwrap().task_template.unwrap().container_spec.unwrap().mounts.unwrap().remove(0);
    let volume_options = mount.volume_options.unwrap();
    let driver = volume_options.driver_config.unwrap();
    assert_eq!((driver.name.as_deref(), driver.options.unwrap()["o"].as_str()), (Some("local"), "size=2m"));
    assert_eq!(volume_options.labels.unwrap()["tier"], "data");
    let token = bollard.inspect_secret(&format!("{stack_name}_api_token")).await.unwrap();
    let token_labels = token.spec.unwrap().labels.unwrap();
    assert_eq!((token_labels["tier"].as_str(), token_labels[LABEL_STACK].as_str()), ("auth", stack_name.as_str()));
    let resolve = |name: String| {
        let h = df1.clone();
        let id = web_task.id.clone();
        async move {
            let lookup = ["nslookup".to_string(), name.clone()];
            let out = h.exec(&id, &lookup, &ExecOptions::default()).await.unwrap();
            assert_eq!(out.exit_code, 0, "{name}: {out:?}");
            let answer = out.stdout.split_once("Name:").map(|(_, a)| a).unwrap_or("");
            answer.lines().filter_map(|l| l.strip_prefix("Address:")).map(|a| a.trim().to_string()).collect::<Vec<_>>()
        }
    };
    for name in ["db", db.as_str()] {
        assert_eq!(resolve(name.to_string()).await, std::slice::from_ref(&db_address), "{name}");
    }
    let vip = resolve(web.clone()).await;
    let mut web_addresses = Vec::new();
    for t in by_name[web.as_str()].tasks.iter() {
        let h = fleet.host(&t.host).unwrap();
        web_addresses.push(h.inspect_container(&t.id).await.unwrap().networks[&network].clone());
    }
    assert!(vip.len() == 1 && !web_addresses.contains(&vip[0]), "{vip:?}, tasks at {web_addresses:?}");
    // The same files again: the secret is kept and no task is replaced. A changed file is refused by
    // field (Swarm cannot change a secret), before anything is touched.
    let again = collect(backend.stack_up(stack.clone(), StackOptions::default())).await;
    assert_eq!(again.last().map(|e| e.kind.as_str()), Some("completed"), "{again:?}");
    assert!(!again.iter().any(|e| e.kind == "secret"), "{again:?}");
    // A changed volume option is refused before anything is touched.
    let mut bigger = stack.clone();
    bigger
        .volume_options
        .get_mut(&format!("{stack_name}_db-data"))
        .unwrap()
        .driver_opts
        .insert("o".into(), "size=3m".into());
    let e = backend.stack_up(bigger, StackOptions::default()).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(e.code() == "conflict" && e.to_string().contains("size=3m"), "{e}");
    std::env::set_var("DOCKFLEET_SWARM_TEST_TOKEN", "changed");
    let e = backend.stack_up(stack.clone(), StackOptions::default()).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(e.to_string().contains("secrets.api_token.environment"), "{e}");
    std::env::set_var("DOCKFLEET_SWARM_TEST_TOKEN", "t0ken");
    std::fs::write(dir.join("db_password.txt"), "changed").unwrap();
    let e = backend.stack_up(stack.clone(), StackOptions::default()).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(e.code() == "invalid_argument" && e.to_string().contains("secrets.db_password.file"), "{e}");
    // An empty secret is past Swarm's limits: refused by field, before any engine call creates one.
    std::fs::write(dir.join("db_password.txt"), "").unwrap();
    let e = backend.stack_up(stack.clone(), StackOptions::default()).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(e.to_string().contains("secrets.db_password.file") && e.to_string().contains("holds 0 bytes"), "{e}");
    let ps = backend.stack_ps(&stack_name).await.unwrap();
    let ids =
        |ps: &[&ServiceStatus]| ps.iter().flat_map(|s| s.tasks.iter().map(|t| t.id.clone())).collect::<BTreeSet<_>>();
    assert_eq!(
        ids(&ps.iter().collect::<Vec<_>>()),
        ids(&by_name.values().copied().collect::<Vec<_>>()),
        "nothing replaced"
    );
    let label = [format!("{LABEL_STACK}={stack_name}")];
    let volumes = df1.list_volumes(&label).await.unwrap();
    assert_eq!(volumes.len(), 1);
    assert_eq!(volumes[0].labels.get("tier").map(String::as_str), Some("data"), "the file's label too");
    let down = backend.stack_down(&stack_name, true).await.unwrap();
    assert_eq!(
        (down.services.len(), down.containers, down.networks, down.secrets, down.configs),
        (2, 4, 1, 3, 1),
        "{down:?}"
    );
    assert!(down.volumes >= 1, "{down:?}");
    assert!(backend.stack_ps(&stack_name).await.unwrap().is_empty());
    assert!(df1.list_volumes(&label).await.unwrap().is_empty());
    std::fs::remove_dir_all(dir).unwrap();

    step("a volume no node can create: the config and the network the deploy created are removed again");
    let undo_name = unique("undo").replace('_', "-");
    let text = format!(
        "services:\n  app: {{image: {IMAGE}, command: sleep 600, networks: [net], volumes: ['quota:/q'], \
         configs: [greeting]}}\nnetworks:\n  net: {{}}\nvolumes:\n  quota:\n    driver_opts: {{size: 10m}}\n\
         configs:\n  greeting: {{content: hello}}\n"
    );
    let stack = parse_compose(&undo_name, &text, &std::env::temp_dir()).unwrap();
    let up = backend.stack_up(stack, StackOptions::default());
    let (events, e) = events_until_error(up, "a quota volume was created without quota support").await;
    assert!(e.to_string().contains("quota"), "{e}");
    let undone: Vec<&str> = events.iter().filter(|e| e.kind == "undone").map(|e| e.message.as_str()).collect();
    assert_eq!(undone.len(), 2, "{undone:?}");
    assert!(undone[0].starts_with(&format!("removed overlay network {undo_name}_net")), "{undone:?}");
    assert!(undone[1].starts_with(&format!("removed config {undo_name}_greeting")), "{undone:?}");
    let d = df1.as_docker().unwrap().bollard().await.unwrap();
    let by_label = HashMap::from([("label".to_string(), vec![format!("{LABEL_STACK}={undo_name}")])]);
    let configs =
        d.list_configs(Some(bollard::query_parameters::ListConfigsOptions { filters: Some(by_label.clone()) }));
    assert_eq!(configs.await.unwrap(), vec![]);
    assert_eq!(df1.list_networks(&[format!("{LABEL_STACK}={undo_name}")]).await.unwrap(), vec![]);
    step("an image that fails to build: the same");
    let dir = std::env::temp_dir().join(&undo_name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), format!("FROM {IMAGE}\nRUN false\n")).unwrap();
    let text = "services:\n  app: {build: ., networks: [net], configs: [greeting]}\nnetworks:\n  net: {}\n\
                configs:\n  greeting: {content: hello}\n";
    let stack = parse_compose(&undo_name, text, &dir).unwrap();
    let (events, e) = events_until_error(backend.stack_up(stack, StackOptions::default()), "built").await;
    assert!(e.to_string().contains("RUN false") || e.to_string().contains("non-zero code"), "{e}");
    let undone: Vec<&str> = events.iter().filter(|e| e.kind == "undone").map(|e| e.message.as_str()).collect();
    assert_eq!(undone.len(), 2, "{events:?}");
    assert!(undone[0].starts_with(&format!("removed overlay network {undo_name}_net")), "{undone:?}");
    assert_eq!(df1.list_networks(&[format!("{LABEL_STACK}={undo_name}")]).await.unwrap(), vec![]);
    std::fs::remove_dir_all(dir).unwrap();

    step("three managers (df-2 promoted by joining again, df-3 re-joined as one); df-1's engine, the leader, stops and the swarm is driven through the others; it comes back");
    assert_eq!(swarm.join("df-2", "manager").await.unwrap().role, "manager", "joining again as a manager promotes");
    assert_eq!(swarm.set_role("df-2", "boss").await.unwrap_err().code(), "invalid_argument");
    swarm.leave("df-3", false).await.unwrap();
    assert_eq!(swarm.join("df-3", "manager").await.unwrap().role, "manager");
    let mut ha = web_service("sw-ha", 2);
    ha.ports.clear();
    ha.placement.constraints = vec!["node.hostname!=df-1".into()];
    assert_eq!(last(&collect(backend.rollout(ha.clone(), Default::default())).await).1, "completed");
    testbed(&["stop-engine", "df-1"]);
    let restart = Undo(&["start-engine", "df-1"]);
    let t0 = Instant::now();
    let st = backend.scale(&ha.name, 3).await.unwrap();
    eprintln!(
        "[swarm test] scaled through another manager {:.1} s after the leader's engine stopped",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!((st.desired, st.running), (3, 3), "{st:?}");
    assert!(st.tasks.iter().all(|t| t.host == "df-2" || t.host == "df-3"), "{st:?}");
    let nodes = swarm.nodes().await.unwrap();
    let leader: Vec<&str> = nodes.iter().filter(|n| n.leader).map(|n| n.host.as_str()).collect();
    assert!(leader == ["df-2"] || leader == ["df-3"], "a new leader: {nodes:?}");
    drop(restart);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let nodes = swarm.nodes().await.unwrap();
        let df1 = nodes.iter().find(|n| n.host == "df-1").expect("df-1 is still a node");
        if df1.state == "ready" && df1.reachability == "reachable" {
            break;
        }
        assert!(Instant::now() < deadline, "df-1 did not come back as a manager: {df1:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(backend.remove_service(&ha.name).await.unwrap(), 3);
    // Another process (a Swarm of its own, talking to df-1) demotes df-2 and df-3; `swarm` still
    // reads through the one of them it used last, without asking it first: its answer ("not a swarm
    // manager") sends the read to df-1.
    let other = Swarm::connect(fleet.clone(), options.clone()).await.unwrap();
    for h in ["df-2", "df-3"] {
        assert_eq!(other.set_role(h, "worker").await.unwrap().role, "worker");
    }
    let roles: Vec<(String, String)> = swarm.nodes().await.unwrap().into_iter().map(|n| (n.host, n.role)).collect();
    assert_eq!(roles, [("df-1", "manager"), ("df-2", "worker"), ("df-3", "worker")].map(|(h, r)| (h.into(), r.into())));

    step("df-3 leaves; the swarm lists two nodes");
    swarm.leave("df-3", false).await.unwrap();
    let hosts: Vec<String> = swarm.nodes().await.unwrap().into_iter().map(|n| n.host).collect();
    assert_eq!(hosts, ["df-1", "df-2"]);
}
