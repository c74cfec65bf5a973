//! Compose stacks on the testbed's real engines: a WordPress-shaped stack (a web service replicated over
//! hosts, a db pinned to the manager with a named volume and a healthcheck the web waits for), ps,
//! down keeping the volume, and malformed files that reach no engine.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use dockfleet::*;
use futures::TryStreamExt;

// The db tier is a file of its own, included with its own directory and `.env`; the published port
// comes from the main file's `.env`.
const COMPOSE: &str = r#"
version: "3.8"
include:
  - db/compose.yaml
x-defaults: &defaults
  stop_grace_period: 1s
services:
  web:
    <<: *defaults
    image: dockfleet/busybox:latest
    # `$$` is compose's escaped `$`: the shell sees `$HOSTNAME`.
    command: ["sh", "-c", "echo \"web $$HOSTNAME\" > /www/index.html; exec httpd -f -p 80 -h /www"]
    ports: ["${WEB_PORT:?set in .env}:80"]
    env_file: web.env
    environment:
      DB_HOST: db
    links: ["db:database"]
    depends_on:
      db:
        condition: service_healthy
    deploy:
      replicas: 3
      update_config: { parallelism: 1, monitor: 500ms, failure_action: rollback }
networks:
  default:
    labels: [tier=net]
"#;

const DB_COMPOSE: &str = r#"
services:
  db:
    container_name: blog-db
    stop_grace_period: 1s
    image: dockfleet/busybox:latest
    command: sh -c 'sleep ${READY_AFTER}; touch /data/${READY_FILE}; exec sleep 600'
    volumes: ["db-data:/data"]
    healthcheck:
      test: test -f /data/${READY_FILE}
      interval: 300ms
      retries: 10
    deploy:
      placement:
        constraints: [node.role == manager]
volumes:
  db-data:
    labels: {tier: data}
"#;

fn write_compose(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("db")).unwrap();
    std::fs::write(dir.join("web.env"), "# from the env file\nGREETING=hello\n").unwrap();
    std::fs::write(dir.join(".env"), format!("WEB_PORT={port}\n")).unwrap();
    std::fs::write(dir.join("db/compose.yaml"), DB_COMPOSE).unwrap();
    std::fs::write(dir.join("db/.env"), "READY_AFTER=1\nREADY_FILE=ready\n").unwrap();
    let path = dir.join("compose.yaml");
    std::fs::write(&path, COMPOSE).unwrap();
    path
}

fn address_of(host: &str) -> String {
    format!("10.250.0.{}", 10 + host.trim_start_matches("df-").parse::<u32>().unwrap())
}

/// One test at a time: the malformed-file test asserts that no engine sees a create.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn a_wordpress_shaped_stack_up_ps_down() {
    let _g = SERIAL.lock().await;
    let fleet = plain_fleet();
    let name = unique("blog").replace('_', "-");
    let dir = std::env::temp_dir().join(&name);
    let port = 18100 + (std::process::id() % 500) as u16;
    let stack = load_compose(&name, &write_compose(&dir, port)).unwrap();
    // The included file's variables came from its own `.env`.
    let db_spec = &stack.services.iter().find(|s| s.name == "db").unwrap().spec;
    assert!(db_spec.command.join(" ").contains("sleep 1; touch /data/ready;"), "{:?}", db_spec.command);
    let options = StackOptions {
        rollout: RolloutOptions { ready_timeout: Duration::from_secs(20), ..Default::default() },
        ..Default::default()
    };

    let events: Vec<RolloutEvent> =
        stack_up(fleet.clone(), stack.clone(), options.clone()).try_collect().await.unwrap();
    let order: Vec<String> = events
        .iter()
        .filter(|e| e.kind == "started" || e.phase == "stack")
        .map(|e| format!("{}:{}", e.service, e.kind))
        .collect();
    let (db, web) = (format!("{name}_db"), format!("{name}_web"));
    let pos = |s: &str| order.iter().position(|x| x == s).unwrap_or_else(|| panic!("{s} missing from {order:?}"));
    assert!(pos(&format!("{db}:started")) < pos(&format!("{name}:waiting")), "{order:?}");
    assert!(pos(&format!("{name}:waiting")) < pos(&format!("{web}:started")), "web waits for a healthy db: {order:?}");
    assert_eq!(order.last().map(String::as_str), Some(format!("{name}:completed").as_str()));

    // Placement: db on the manager only, web on every host, each answering on the published port.
    let ps = stack_ps(&fleet, &name).await.unwrap();
    let by_name: BTreeMap<&str, &ServiceStatus> = ps.iter().map(|s| (s.name.as_str(), s)).collect();
    assert_eq!(by_name.len(), 2, "{ps:?}");
    assert_eq!((by_name[db.as_str()].running, by_name[db.as_str()].desired), (1, 1));
    assert_eq!(by_name[db.as_str()].tasks[0].host, "df-1");
    let web_tasks = &by_name[web.as_str()].tasks;
    assert_eq!(by_name[web.as_str()].running, 3);
    let mut hosts: Vec<&str> = web_tasks.iter().map(|t| t.host.as_str()).collect();
    hosts.sort();
    assert_eq!(hosts, ["df-1", "df-2", "df-3"]);
    for t in web_tasks {
        let body = http_get(&format!("{}:{port}", address_of(&t.host))).await;
        assert!(body.starts_with("HTTP/1.1 200 OK") && body.contains("\r\n\r\nweb "), "{}: {body}", t.host);
    }
    // The env file and the environment both reached the container.
    let df1 = fleet.host("df-1").unwrap();
    let web1 = web_tasks.iter().find(|t| t.host == "df-1").unwrap();
    let env = df1.exec(&web1.id, &["env".into()], &ExecOptions::default()).await.unwrap().stdout;
    assert!(env.contains("GREETING=hello") && env.contains("DB_HOST=db"), "{env}");
    // On the host they share, web reaches db by its name in the file, as under compose.
    let db_task = &by_name[db.as_str()].tasks[0];
    assert_eq!(db_task.host, "df-1");
    let db_ip = df1.inspect_container(&db_task.id).await.unwrap().networks[&format!("{name}_default")].clone();
    // And by its container_name, and the alias web's link gives it.
    for n in ["db", "blog-db", "database"] {
        let lookup = df1.exec(&web1.id, &["nslookup".into(), n.into()], &ExecOptions::default()).await.unwrap();
        assert!(lookup.stdout.contains(&db_ip), "{n} is {db_ip}: {lookup:?}");
    }
    // Networks and the volume carry the stack's label, and their own from the file.
    let label = [format!("{LABEL_STACK}={name}")];
    for h in fleet.hosts() {
        let nets = h.list_networks(&label).await.unwrap();
        assert_eq!(nets.iter().map(|n| n.name.clone()).collect::<Vec<_>>(), [format!("{name}_default")]);
        assert_eq!(nets[0].labels.get("tier").map(String::as_str), Some("net"), "on {}", h.name());
    }
    let vols = df1.list_volumes(&label).await.unwrap();
    assert_eq!(vols.iter().map(|v| v.name.clone()).collect::<Vec<_>>(), [format!("{name}_db-data")]);
    assert_eq!(vols[0].labels.get("tier").map(String::as_str), Some("data"));

    // Up again unchanged: nothing is replaced.
    let again: Vec<RolloutEvent> = stack_up(fleet.clone(), stack.clone(), options.clone()).try_collect().await.unwrap();
    assert!(again.iter().all(|e| !e.kind.starts_with("task-")), "{again:?}");

    // Down keeps the volume and its data; up finds the data again; down --volumes removes it.
    let db_id = &by_name[db.as_str()].tasks[0].id;
    df1.exec(db_id, &["sh".into(), "-c".into(), "echo kept > /data/file".into()], &ExecOptions::default())
        .await
        .unwrap();
    let down = stack_down(&fleet, &name, false).await.unwrap();
    assert_eq!((down.containers, down.networks, down.volumes), (4, 3, 0), "{down:?}");
    assert!(stack_ps(&fleet, &name).await.unwrap().is_empty());
    assert_eq!(df1.list_volumes(&label).await.unwrap().len(), 1, "the volume outlives down");
    stack_up(fleet.clone(), stack.clone(), options.clone()).try_collect::<Vec<_>>().await.unwrap();
    let ps = stack_ps(&fleet, &name).await.unwrap();
    let db_task = &ps.iter().find(|s| s.name == db).unwrap().tasks[0];
    let out = df1.exec(&db_task.id, &["cat".into(), "/data/file".into()], &ExecOptions::default()).await.unwrap();
    assert_eq!(out.stdout.trim(), "kept");
    let down = stack_down(&fleet, &name, true).await.unwrap();
    assert_eq!(down.volumes, 3, "one volume per host: {down:?}");
    assert!(df1.list_volumes(&label).await.unwrap().is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn malformed_compose_files_reach_no_engine() {
    let _g = SERIAL.lock().await;
    let fleet = plain_fleet();
    let watch = EventOptions {
        filters: BTreeMap::from([
            ("type".into(), vec!["container".into(), "network".into(), "volume".into()]),
            ("event".into(), vec!["create".into()]),
        ]),
        ..Default::default()
    };
    let mut events = futures::stream::select_all(fleet.hosts().iter().map(|h| h.events(&watch)));
    let dir = std::env::temp_dir().join(unique("badcompose"));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: &[(&str, &str)] = &[
        ("services:\n  web:\n    image: x\n    hostnam: h\n", "services.web"),
        ("services:\n  web:\n    image: x\n    hostname: '{{.Node.ID}}'\n", "services.web.hostname"),
        ("services:\n  web:\n    image: x\n    deploy: {replicas: -1}\n", "services.web.deploy.replicas"),
        ("services:\n  web:\n    image: x\n    volumes: ['/:/host']\n", "services.web.volumes[0].source"),
        ("services:\n  web:\n    image: x\n    volumes: ['/var/run/docker.sock:/s']\n", "services.web.volumes[0].source"),
        ("a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\nservices: {}\n", "compose"),
    ];
    for (i, (text, field)) in cases.iter().enumerate() {
        let path = dir.join(format!("c{i}.yaml"));
        std::fs::write(&path, text).unwrap();
        let e = load_compose("bad", &path).unwrap_err();
        assert_eq!(e.code(), "invalid_argument", "{text}");
        assert!(e.to_string().contains(field), "{e} should name {field}");
    }
    // A stack built in code is validated by stack_up before any engine call.
    let mut stack = parse_compose("bad", "services:\n  web: {image: dockfleet/busybox:latest}\n", &dir).unwrap();
    stack.services[0].spec.privileged = true;
    stack.volumes.push("bad_data".into());
    let e = stack_up(fleet.clone(), stack, StackOptions::default()).try_next().await.unwrap_err();
    assert!(e.to_string().contains("services.web.privileged"), "{e}");
    let quiet = tokio::time::timeout(Duration::from_millis(700), events.try_next()).await;
    assert!(quiet.is_err(), "an engine saw a create: {quiet:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_service_with_a_build_section_is_built_once_and_carried_to_the_hosts() {
    let _g = SERIAL.lock().await;
    let fleet = plain_fleet();
    let name = unique("built").replace('_', "-");
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(dir.join("app")).unwrap();
    // Two stages: the target stops at the first, which reads the build argument.
    std::fs::write(
        dir.join("app/Dockerfile"),
        format!(
            "FROM {IMAGE} AS base\nARG GREETING\nRUN echo built $GREETING > /built\nCMD [\"sleep\", \"600\"]\n\
             FROM base AS debug\nRUN echo debug > /built\n"
        ),
    )
    .unwrap();
    let compose = "services:\n  app:\n    build: {context: ./app, target: base, args: {GREETING: hi}, labels: {team: shop}}\n    \
                   stop_grace_period: 1s\n    deploy: {replicas: 3}\n";
    let stack = parse_compose(&name, compose, &dir).unwrap();
    assert_eq!(stack.services[0].spec.image, format!("{name}_app:latest"));
    let events: Vec<RolloutEvent> =
        stack_up(fleet.clone(), stack, StackOptions::default()).try_collect().await.unwrap();
    assert_eq!(events.iter().filter(|e| e.kind == "build").count(), 1, "{events:?}");
    let ps = stack_ps(&fleet, &name).await.unwrap();
    assert_eq!(ps[0].running, 3);
    for t in &ps[0].tasks {
        let h = fleet.host(&t.host).unwrap();
        let out = h.exec(&t.id, &["cat".into(), "/built".into()], &ExecOptions::default()).await.unwrap();
        assert_eq!(out.stdout.trim(), "built hi", "the base stage, on {}", t.host);
        let image = h.inspect_image(&format!("{name}_app:latest")).await.unwrap();
        assert_eq!((image.labels["team"].as_str(), image.labels[LABEL_STACK].as_str()), ("shop", name.as_str()));
    }
    stack_down(&fleet, &name, true).await.unwrap();
    for h in fleet.hosts() {
        let _ = h.remove_image(&format!("{name}_app:latest"), true).await;
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_shutdown_delay_from_x_dockfleet_drains_the_tasks_when_the_stack_goes_down() {
    let fleet = plain_fleet();
    let name = unique("drained").replace('_', "-");
    let compose = format!(
        "services:\n  web:\n    image: {IMAGE}\n    command: sleep 600\n    stop_grace_period: 1s\n    \
         x-dockfleet: {{shutdown_delay: 2s}}\n    deploy: {{replicas: 3}}\n"
    );
    let stack = parse_compose(&name, &compose, &std::env::temp_dir()).unwrap();
    assert_eq!(stack.services[0].spec.shutdown_delay, Duration::from_secs(2));
    let _: Vec<RolloutEvent> = stack_up(fleet.clone(), stack, StackOptions::default()).try_collect().await.unwrap();
    let ps = stack_ps(&fleet, &name).await.unwrap();
    assert_eq!(ps[0].running, 3);

    let started = std::time::Instant::now();
    let down = {
        let (fleet, name) = (fleet.clone(), name.clone());
        tokio::spawn(async move { stack_down(&fleet, &name, true).await })
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for t in &ps[0].tasks {
        let d = fleet.host(&t.host).unwrap().inspect_container(&t.id).await.unwrap();
        assert!(d.state.running && d.name.ends_with(".draining"), "{} {:?}", d.name, d.state);
    }
    assert!(started.elapsed() < Duration::from_secs(2), "the test itself was too slow to see the delay");
    assert_eq!(down.await.unwrap().unwrap().containers, 3);
    // One delay for the three tasks, then the 1 s grace (sleep as PID 1 ignores SIGTERM).
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(3) && took < Duration::from_secs(8), "{took:?}");
    assert!(stack_ps(&fleet, &name).await.unwrap().is_empty());
}

#[tokio::test]
async fn network_and_volume_options_reach_every_host_and_a_change_to_them_is_refused() {
    let _g = SERIAL.lock().await;
    let fleet = plain_fleet();
    let name = unique("opts").replace('_', "-");
    let compose = |size: &str| {
        format!(
            "services:\n  app:\n    image: {IMAGE}\n    command: sleep 600\n    stop_grace_period: 1s\n    \
             networks: [back]\n    volumes: ['scratch:/scratch']\n    deploy: {{replicas: 3}}\n\
             networks:\n  back:\n    internal: true\n    driver_opts: {{com.docker.network.driver.mtu: 1400}}\n    \
             ipam:\n      config:\n        - {{subnet: 10.78.77.0/24, ip_range: 10.78.77.128/25, gateway: 10.78.77.1}}\n\
             volumes:\n  scratch:\n    driver_opts: {{type: tmpfs, device: tmpfs, o: 'size={size}'}}\n"
        )
    };
    let stack = parse_compose(&name, &compose("1m"), &std::env::temp_dir()).unwrap();
    let _: Vec<RolloutEvent> =
        stack_up(fleet.clone(), stack.clone(), StackOptions::default()).try_collect().await.unwrap();
    let ps = stack_ps(&fleet, &name).await.unwrap();
    assert_eq!(ps[0].running, 3);
    let back = format!("{name}_back");
    let sh = |cmd: &str| vec!["sh".to_string(), "-c".to_string(), cmd.to_string()];
    for t in &ps[0].tasks {
        let h = fleet.host(&t.host).unwrap();
        let net = h.list_networks(&[format!("{LABEL_STACK}={name}")]).await.unwrap().remove(0);
        assert!(net.internal, "on {}", t.host);
        assert_eq!(net.driver_opts["com.docker.network.driver.mtu"], "1400");
        assert_eq!(net.ipam[0].subnet, "10.78.77.0/24");
        assert_eq!(net.ipam[0].gateway.as_deref(), Some("10.78.77.1"));
        let vol = h.list_volumes(&[format!("{LABEL_STACK}={name}")]).await.unwrap().remove(0);
        assert_eq!(vol.driver_opts["o"], "size=1m");
        // In the task: an address from the range, the MTU and a 1 MiB tmpfs. (That an internal network
        // has no way out is the engine's iptables rules, which the testbed's engines run without.)
        let ip = h.inspect_container(&t.id).await.unwrap().networks[&back].clone();
        let last: u8 = ip.strip_prefix("10.78.77.").unwrap_or_else(|| panic!("{ip}")).parse().unwrap();
        assert!(last >= 128, "{ip} is outside the ip_range");
        let out = h
            .exec(&t.id, &sh("cat /sys/class/net/eth0/mtu; grep ' /scratch ' /proc/mounts"), &ExecOptions::default())
            .await
            .unwrap()
            .stdout;
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "an MTU and one mount: {out}");
        assert_eq!(lines[0], "1400");
        assert!(lines[1].starts_with("tmpfs /scratch tmpfs") && lines[1].contains("size=1024k"), "{out}");
    }

    // The file changes an option an engine cannot change: refused before any task is touched.
    let ids = |ps: &[ServiceStatus]| ps[0].tasks.iter().map(|t| t.id.clone()).collect::<Vec<_>>();
    let before = ids(&ps);
    let bigger = parse_compose(&name, &compose("2m"), &std::env::temp_dir()).unwrap();
    let e = stack_up(fleet.clone(), bigger, StackOptions::default()).try_collect::<Vec<_>>().await.unwrap_err();
    assert_eq!(e.code(), "conflict", "{e}");
    assert!(e.to_string().contains(&format!("volume {name}_scratch")) && e.to_string().contains("size=2m"), "{e}");
    let mut open = stack.clone();
    open.network_options.get_mut(&back).unwrap().internal = false;
    let e = stack_up(fleet.clone(), open, StackOptions::default()).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(e.to_string().contains(&format!("network {back}")) && e.to_string().contains("internal is true"), "{e}");
    assert_eq!(ids(&stack_ps(&fleet, &name).await.unwrap()), before);

    let down = stack_down(&fleet, &name, true).await.unwrap();
    assert_eq!((down.containers, down.networks, down.volumes), (3, 3, 3), "{down:?}");
}

#[tokio::test]
async fn a_network_no_engine_can_create_undoes_what_the_deploy_created() {
    let _g = SERIAL.lock().await;
    let fleet = plain_fleet();
    let name = unique("undo").replace('_', "-");
    // df-2 already has a network with the subnet the file gives `two`: creating it fails there, after
    // df-1 got `one`, `two` and the volume, and df-2 got `one`.
    let df2 = fleet.host("df-2").unwrap();
    let pool = IpamPool { subnet: "10.78.78.0/24".into(), ..Default::default() };
    let squatter = format!("{name}-squatter");
    df2.create_network(&squatter, &NetworkOptions { ipam: vec![pool], ..Default::default() }).await.unwrap();
    // A volume of the stack's name that df-1 already has (not the stack's) must outlive the undo.
    let df1 = fleet.host("df-1").unwrap();
    let kept = format!("{name}_kept");
    df1.create_volume(&kept, &VolumeOptions::default()).await.unwrap();
    let compose = |subnet: &str| {
        format!(
            "services:\n  app: {{image: {IMAGE}, command: sleep 600, stop_grace_period: 1s, networks: [one, two], \
             volumes: ['data:/data', 'kept:/kept']}}\n\
             networks:\n  one: {{}}\n  two:\n    ipam: {{config: [{{subnet: {subnet}}}]}}\n\
             volumes:\n  data: {{}}\n  kept: {{}}\n"
        )
    };
    let stack = parse_compose(&name, &compose("10.78.78.0/24"), &std::env::temp_dir()).unwrap();
    let up = stack_up(fleet.clone(), stack, StackOptions::default());
    let (events, e) = events_until_error(up, "deployed over a clashing subnet").await;
    assert!(e.to_string().contains("10.78.78.0/24") || e.to_string().contains("overlap"), "{e}");
    let undone: Vec<&str> = events.iter().filter(|e| e.kind == "undone").map(|e| e.message.as_str()).collect();
    assert_eq!(undone.len(), 4, "one on df-2, data, two and one on df-1: {undone:?}");
    assert!(undone.iter().all(|m| m.starts_with("removed ")), "{undone:?}");
    assert!(undone[0].starts_with(&format!("removed network {name}_one on df-2")), "newest first: {undone:?}");
    for h in fleet.hosts() {
        let label = [format!("{LABEL_STACK}={name}")];
        assert_eq!(h.list_networks(&label).await.unwrap(), vec![], "on {}", h.name());
        assert_eq!(h.list_volumes(&label).await.unwrap(), vec![], "on {}", h.name());
    }
    assert!(df1.list_volumes(&[]).await.unwrap().iter().any(|v| v.name == kept), "a volume it found is kept");

    // The corrected file deploys: nothing the failed deploy created stands in its way.
    let stack = parse_compose(&name, &compose("10.78.79.0/24"), &std::env::temp_dir()).unwrap();
    let _: Vec<RolloutEvent> = stack_up(fleet.clone(), stack, StackOptions::default()).try_collect().await.unwrap();
    assert_eq!(stack_ps(&fleet, &name).await.unwrap()[0].running, 1);
    stack_down(&fleet, &name, true).await.unwrap();
    df2.remove_network(&squatter).await.unwrap();
    let _ = df1.remove_volume(&kept, false).await;
}

/// A build that fails, and a `stack_up` dropped while it builds, leave no network or volume behind:
/// those the deploy created are removed again (reported as `undone` for the failure; in a task of the
/// runtime for the drop).
#[tokio::test]
async fn a_failed_or_abandoned_build_undoes_the_networks_and_volumes_it_created() {
    let _g = SERIAL.lock().await;
    let fleet = plain_fleet();
    let name = unique("unbuilt").replace('_', "-");
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(dir.join("app")).unwrap();
    let compose = "services:\n  app:\n    build: ./app\n    networks: [back]\n    volumes: ['data:/data']\n\
                   networks:\n  back: {}\nvolumes:\n  data: {}\n";
    let label = [format!("{LABEL_STACK}={name}")];
    let leftovers = || async {
        let mut n = 0;
        for h in fleet.hosts() {
            n += h.list_networks(&label).await.unwrap().len() + h.list_volumes(&label).await.unwrap().len();
        }
        n
    };
    // The build fails: every network and volume created (one each on three hosts) is removed again.
    std::fs::write(dir.join("app/Dockerfile"), format!("FROM {IMAGE}\nRUN echo no such luck; false\n")).unwrap();
    let stack = parse_compose(&name, compose, &dir).unwrap();
    let up = stack_up(fleet.clone(), stack, StackOptions::default());
    let (events, e) = events_until_error(up, "deployed without its image").await;
    assert!(e.code() == "engine" && e.to_string().contains("no such luck; false"), "{e}");
    let undone: Vec<&str> = events.iter().filter(|e| e.kind == "undone").map(|e| e.message.as_str()).collect();
    assert_eq!(undone.len(), 6, "{events:?}");
    assert!(undone.iter().all(|m| m.starts_with("removed ")), "{undone:?}");
    assert_eq!(leftovers().await, 0);
    // The stream is dropped while the build runs: the same, once the runtime has run the removal.
    std::fs::write(dir.join("app/Dockerfile"), format!("FROM {IMAGE}\nRUN sleep 20\n")).unwrap();
    let stack = parse_compose(&name, compose, &dir).unwrap();
    let mut up = stack_up(fleet.clone(), stack, StackOptions::default());
    while let Some(e) = up.try_next().await.unwrap() {
        if e.kind == "build" {
            break;
        }
    }
    assert_eq!(leftovers().await, 6);
    drop(up);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while leftovers().await > 0 {
        assert!(std::time::Instant::now() < deadline, "the networks and volumes stayed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_dependency_with_restart_restarts_its_dependents_and_one_not_required_is_deployed_past() {
    let _g = SERIAL.lock().await;
    let fleet = plain_fleet();
    let name = unique("deps").replace('_', "-");
    // `flaky` never completes; `web` waits for it only as long as the dependency timeout, then goes
    // on. `metrics` is not in the file at all.
    let compose = |db_version: &str| {
        format!(
            "x-task: &task\n  image: {IMAGE}\n  command: sleep 600\n  stop_grace_period: 1s\n\
             services:\n  db:\n    <<: *task\n    environment: {{VERSION: '{db_version}'}}\n\
             \x20 flaky:\n    <<: *task\n\
             \x20 web:\n    <<: *task\n    deploy: {{replicas: 2}}\n    depends_on:\n\
             \x20     db: {{condition: service_started, restart: true}}\n\
             \x20     flaky: {{condition: service_completed_successfully, required: false}}\n\
             \x20     metrics: {{required: false}}\n"
        )
    };
    let options = StackOptions {
        dependency_timeout: Duration::from_secs(2),
        rollout: RolloutOptions { ready_timeout: Duration::from_secs(20), ..Default::default() },
        ..Default::default()
    };
    let up = |version: &str| {
        let stack = parse_compose(&name, &compose(version), &std::env::temp_dir()).unwrap();
        stack_up(fleet.clone(), stack, options.clone()).try_collect::<Vec<RolloutEvent>>()
    };
    let web = format!("{name}_web");
    let web_ids = || async {
        let ps = stack_ps(&fleet, &name).await.unwrap();
        let mut ids: Vec<String> =
            ps.iter().find(|s| s.name == web).unwrap().tasks.iter().map(|t| t.id.clone()).collect();
        ids.sort();
        ids
    };
    let events = up("1").await.unwrap();
    let kinds: Vec<&str> = events.iter().filter(|e| e.phase == "stack").map(|e| e.kind.as_str()).collect();
    assert!(kinds.contains(&"not-required") && kinds.last() == Some(&"completed"), "{kinds:?}");
    let first = web_ids().await;
    assert_eq!(first.len(), 2);

    // The same file: nothing is replaced, so web is not restarted.
    let again = up("1").await.unwrap();
    assert!(!again.iter().any(|e| e.kind == "restart"), "{again:?}");
    assert_eq!(web_ids().await, first);

    // db changes: its task is replaced, and web's tasks with it though web's spec is the same.
    let changed = up("2").await.unwrap();
    assert!(changed.iter().any(|e| e.kind == "restart" && e.message.contains(&web)), "{changed:?}");
    let restarted = web_ids().await;
    assert_eq!(restarted.len(), 2);
    assert!(restarted.iter().all(|id| !first.contains(id)), "{first:?} → {restarted:?}");

    stack_down(&fleet, &name, true).await.unwrap();
}
