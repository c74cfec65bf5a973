//! nginx and HAProxy configurations rendered from discovery, checked and reloaded by real nginx and
//! HAProxy (Debian's packages, installed by scripts/install-deps.sh) in front of real HTTP servers,
//! and in front of a service on the testbed's engines, fed by the registrator.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use dockfleet::*;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An HTTP/1.1 server (keep-alive) that answers every request with its name.
async fn named_server(name: String) -> (u16, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else { return };
            let name = name.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let resp = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{name}", name.len());
                        if s.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    (port, task)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn get(port: u16, host: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes()).await.ok()?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out)).await.ok()?.ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// The bodies seen over `n` requests.
async fn answers(port: u16, host: &str, path: &str, n: usize) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        if let Some(b) = get(port, host, path).await {
            seen.insert(b);
        }
    }
    seen
}

async fn until_answers(port: u16, want: &[&str]) {
    let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let seen = answers(port, "any.test", "/", 12).await;
        if seen == want {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "wanted {want:?}, seen {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM, so the master stops its workers too; SIGKILL if it does not go.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        for _ in 0..50 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dockfleet-render-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn next_kind(events: &mut ResultStream<RenderEvent>) -> RenderEvent {
    tokio::time::timeout(Duration::from_secs(15), events.next()).await.expect("an event in time").unwrap().unwrap()
}

/// Events up to the next one of `kind` (which is included).
async fn until_kind(events: &mut ResultStream<RenderEvent>, kind: &str) -> Vec<RenderEvent> {
    let mut seen = Vec::new();
    loop {
        let e = next_kind(events).await;
        let done = e.kind == kind;
        seen.push(e);
        if done {
            return seen;
        }
    }
}

fn reg(service: &str, id: &str, port: u16) -> Instance {
    Instance::new(service, id, "127.0.0.1", port)
}

#[test]
fn rendering_maps_routes_strategies_and_refuses_what_cannot_map() {
    let mut instances = vec![reg("web", "w1", 8001), reg("web", "w2", 8002), reg("api", "a1", 9001)];
    instances[1].metadata.insert("weight".into(), "3".into());
    let mut sick = reg("web", "w3", 8003);
    sick.health = "critical".into();
    instances.push(sick);
    let options = RenderOptions {
        routes: vec![
            Route::new("web"),
            Route { path_prefix: "/api".into(), ..Route::new("api") },
            Route { host: Some("*.shop.test".into()), ..Route::new("api") },
        ],
        balancer: BalancerOptions { strategy: "least-connections".into(), ..Default::default() },
        ..Default::default()
    };
    let nginx = render_config(&options, &instances).unwrap();
    assert!(nginx.contains("least_conn;"), "{nginx}");
    assert!(nginx.contains("server 127.0.0.1:8002 weight=3 max_fails=3 fail_timeout=10s;"), "{nginx}");
    assert!(!nginx.contains("8003"), "critical instances are left out: {nginx}");
    assert!(nginx.contains("location = /api {") && nginx.contains("location /api/ {"), "{nginx}");
    assert!(nginx.contains("server_name *.shop.test;"), "{nginx}");
    let haproxy = render_config(&RenderOptions { kind: "haproxy".into(), ..options.clone() }, &instances).unwrap();
    assert!(haproxy.contains("balance leastconn"), "{haproxy}");
    assert!(haproxy.contains("server w2 127.0.0.1:8002 weight 3"), "{haproxy}");
    assert!(haproxy.contains("-m end -i .shop.test"), "{haproxy}");
    assert!(haproxy.contains("path_beg /api/"), "{haproxy}");
    // More specific routes are matched first.
    let host_rule = haproxy.find("_host\n").unwrap_or(0);
    assert!(
        haproxy.find("use_backend api_2").unwrap() < haproxy.find("use_backend api_1").unwrap(),
        "{host_rule} {haproxy}"
    );

    // A template of your own sees the same context.
    let custom = RenderOptions {
        template: Some(
            "{% for r in routes %}{{ r.service }}:{% for s in r.servers %} {{ s.port }}{% endfor %};{% endfor %}"
                .into(),
        ),
        ..options.clone()
    };
    assert_eq!(render_config(&custom, &instances).unwrap(), "api: 9001;api: 9001;web: 8001 8002;");

    for (bad, field) in [
        (RenderOptions { kind: "envoy".into(), ..options.clone() }, "kind"),
        (
            RenderOptions {
                balancer: BalancerOptions { strategy: "p2c-ewma".into(), ..Default::default() },
                ..options.clone()
            },
            "balancer.strategy",
        ),
        (RenderOptions { template: Some("{% for %}".into()), ..options.clone() }, "template"),
        (RenderOptions { template: Some("{{ nope.x }}".into()), ..options.clone() }, "template"),
        (RenderOptions { routes: vec![], ..options.clone() }, "routes"),
        (
            RenderOptions {
                routes: vec![Route { hash_header: Some("x-user".into()), ..Route::new("web") }],
                ..options.clone()
            },
            "routes[0].hash_header",
        ),
        (RenderOptions { listen: "nowhere".into(), ..options.clone() }, "listen"),
        // Written into the configuration as is: a `;`, a brace, a space or a line break would add
        // directives of its own (or, in HAProxy, a second path to match).
        (
            RenderOptions {
                routes: vec![Route {
                    path_prefix: "/a;\n}\nlocation /evil {\n return 200;".into(),
                    ..Route::new("web")
                }],
                ..options.clone()
            },
            "routes[0].path_prefix",
        ),
        (
            RenderOptions {
                routes: vec![Route { path_prefix: "/a /b".into(), ..Route::new("web") }],
                ..options.clone()
            },
            "routes[0].path_prefix",
        ),
    ] {
        let e = render_config(&bad, &instances).unwrap_err();
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
    // An instance the registry holds unchecked (another writer's) is refused, naming it.
    let mut injected = instances.clone();
    injected.push(Instance::new("web", "w9", "127.0.0.1;\n}\nserver { listen 80", 8009));
    let e = render_config(&options, &injected).unwrap_err();
    assert_eq!(e.code(), "invalid_argument");
    assert!(e.to_string().contains("instances[4].address"), "{e}");
    let e =
        render_config(&RenderOptions { template: Some("a\nb\n{% if %}".into()), ..options }, &instances).unwrap_err();
    assert!(e.to_string().contains("line 3"), "{e}");
}

fn nginx_main(dir: &Path, include: &Path) -> PathBuf {
    let main = dir.join("nginx.conf");
    std::fs::write(
        &main,
        format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
             include {inc};\n}}\n",
            d = dir.display(),
            inc = include.display()
        ),
    )
    .unwrap();
    main
}

/// An nginx of its own (an empty include to start with), and the options that render `service`'s
/// route into it (on a free port, returned), checked and reloaded by it, debounced by `debounce`.
fn nginx_rendering(tag: &str, service: &str, debounce: Duration) -> (Daemon, RenderOptions, u16) {
    let dir = tempdir(tag);
    let routes = dir.join("routes.conf");
    std::fs::write(&routes, "").unwrap();
    let main = nginx_main(&dir, &routes);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let (main_s, dir_s) = (main.display().to_string(), dir.display().to_string());
    let nginx = Daemon(
        Command::new("nginx").args(["-c", &main_s, "-p", &dir_s]).stderr(Stdio::null()).spawn().expect("nginx runs"),
    );
    let port = free_port();
    let options = RenderOptions {
        listen: format!("127.0.0.1:{port}"),
        routes: vec![Route::new(service)],
        path: routes,
        check_command: s(&["nginx", "-t", "-q", "-c", &main_s, "-p", &dir_s]),
        reload_command: s(&["nginx", "-s", "reload", "-c", &main_s, "-p", &dir_s]),
        debounce,
        ..Default::default()
    };
    (nginx, options, port)
}

#[tokio::test]
async fn nginx_follows_discovery_with_checked_debounced_reloads() {
    let (nginx, options, port) = nginx_rendering("nginx", "web", Duration::from_millis(300));
    let routes = options.path.clone();
    let mut servers = Vec::new();
    for name in ["s1", "s2", "s3", "s4"] {
        servers.push(named_server(name.into()).await);
    }
    let d = EmbeddedDiscovery::new();
    d.register(&reg("web", "s1", servers[0].0)).await.unwrap();
    d.register(&reg("web", "s2", servers[1].0)).await.unwrap();
    let mut events = sync_config(Arc::new(d.clone()), options.clone());
    let first = until_kind(&mut events, "reloaded").await;
    assert_eq!(first.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["written", "reloaded"], "{first:?}");
    assert_eq!(first[0].servers, 2);
    until_answers(port, &["s1", "s2"]).await;

    // A burst of changes is one render and one reload.
    d.register(&reg("web", "s3", servers[2].0)).await.unwrap();
    d.deregister("web", "s1").await.unwrap();
    d.register(&reg("web", "s4", servers[3].0)).await.unwrap();
    let burst = until_kind(&mut events, "reloaded").await;
    assert_eq!(burst.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["written", "reloaded"], "{burst:?}");
    until_answers(port, &["s2", "s3", "s4"]).await;

    // A change that leaves the output as it is writes and reloads nothing.
    let mut same = reg("web", "s2", servers[1].0);
    same.tags = vec!["x".into()];
    d.register(&same).await.unwrap();
    assert_eq!(next_kind(&mut events).await.kind, "unchanged");
    drop(events);

    // An invalid configuration is refused and the previous one stays in place and serving.
    let before = std::fs::read_to_string(&routes).unwrap();
    let mut broken = reg("web", "bad", servers[0].0);
    broken.port = 1;
    // The built-in template, extended to break the configuration when an instance is called `bad`.
    let invalid_template = format!(
        "{}{{% for r in routes %}}{{% for s in r.servers %}}{{% if s.id == 'bad' %}}bogus_directive on;{{% endif %}}{{% endfor %}}{{% endfor %}}",
        default_template("nginx", "http").unwrap()
    );
    let options = RenderOptions { template: Some(invalid_template), ..options };
    let mut events = sync_config(Arc::new(d.clone()), options);
    assert_eq!(next_kind(&mut events).await.kind, "unchanged", "the same template renders the same file");
    d.register(&broken).await.unwrap();
    let e = next_kind(&mut events).await;
    assert_eq!(e.kind, "invalid", "{e:?}");
    assert!(e.message.contains("bogus_directive") && e.message.contains("restored"), "{}", e.message);
    assert_eq!(std::fs::read_to_string(&routes).unwrap(), before, "the previous configuration is back");
    until_answers(port, &["s2", "s3", "s4"]).await;
    drop(nginx);
    for (_, t) in servers {
        t.abort();
    }
}

#[tokio::test]
async fn haproxy_follows_discovery_and_keeps_the_previous_config_when_the_check_fails() {
    let dir = tempdir("haproxy");
    let main = dir.join("main.cfg");
    std::fs::write(
        &main,
        "global\n  nbthread 1\n  maxconn 256\ndefaults\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n",
    )
    .unwrap();
    let routes = dir.join("routes.cfg");
    let pidfile = dir.join("haproxy.pid");
    let port = free_port();
    let mut servers = Vec::new();
    for name in ["h1", "h2", "h3"] {
        servers.push(named_server(name.into()).await);
    }
    let d = EmbeddedDiscovery::new();
    d.register(&reg("web", "h1", servers[0].0)).await.unwrap();
    let (main_s, pid_s) = (main.display().to_string(), pidfile.display().to_string());
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let options = RenderOptions {
        kind: "haproxy".into(),
        listen: format!("127.0.0.1:{port}"),
        routes: vec![Route::new("web")],
        path: routes.clone(),
        check_command: s(&["haproxy", "-c", "-f", &main_s, "-f", "{path}"]),
        reload_command: s(&["sh", "-c", &format!("kill -USR2 $(cat {pid_s})")]),
        debounce: Duration::from_millis(200),
        ..Default::default()
    };
    // The first render has nothing to reload yet (reload_failed); then HAProxy starts on it.
    let mut events = sync_config(Arc::new(d.clone()), options.clone());
    let first = until_kind(&mut events, "reload_failed").await;
    assert_eq!(first[0].kind, "written");
    let routes_s = routes.display().to_string();
    let _haproxy = Daemon(
        Command::new("haproxy")
            .args(["-W", "-f", &main_s, "-f", &routes_s, "-p", &pid_s])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy runs"),
    );
    until_answers(port, &["h1"]).await;
    d.register(&reg("web", "h2", servers[1].0)).await.unwrap();
    let next = until_kind(&mut events, "reloaded").await;
    assert_eq!(next[0].kind, "written", "{next:?}");
    until_answers(port, &["h1", "h2"]).await;

    // An instance whose ID breaks the configuration: the candidate is checked, refused, and never
    // replaces the file.
    let before = std::fs::read_to_string(&routes).unwrap();
    let options = RenderOptions {
        template: Some(format!(
            "{}{{% if routes[0].servers | length > 2 %}}\nbackend broken\n    nonsense here\n{{% endif %}}",
            default_template("haproxy", "http").unwrap()
        )),
        ..options
    };
    drop(events);
    let mut events = sync_config(Arc::new(d.clone()), options);
    assert_eq!(next_kind(&mut events).await.kind, "unchanged");
    d.register(&reg("web", "h3", servers[2].0)).await.unwrap();
    let e = next_kind(&mut events).await;
    assert_eq!(e.kind, "invalid", "{e:?}");
    assert!(e.message.contains("nonsense"), "{}", e.message);
    assert_eq!(std::fs::read_to_string(&routes).unwrap(), before);
    assert!(std::fs::read_dir(&dir).unwrap().all(|f| !f.unwrap().file_name().to_string_lossy().ends_with(".tmp")));
    until_answers(port, &["h1", "h2"]).await;
}

/// What a shutdown delay is for: nginx, fed by the registrator through a debounced render and reload,
/// drops a task that is being removed while the task still runs, instead of after it has stopped.
#[tokio::test]
async fn a_shutdown_delay_lets_nginx_drop_a_task_before_it_stops() {
    let fleet = common::plain_fleet();
    let registry = EmbeddedDiscovery::new();
    let mut spec = common::web_service("ngxdrain", 2);
    spec.shutdown_delay = Duration::from_secs(5);
    let name = spec.name.clone();
    deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    let mut registrations = registrator(fleet.clone(), Arc::new(registry.clone()), RegistratorOptions::default());
    let pump = tokio::spawn(async move {
        while let Some(e) = registrations.next().await {
            e.unwrap();
        }
    });
    common::wait_lookup(&registry, &name, false, |v| v.len() == 2).await;

    // A setup that batches changes: the configuration follows a removal a second or more late.
    let (nginx, options, port) = nginx_rendering("nginx-drain", &name, Duration::from_secs(1));
    let mut events = sync_config(Arc::new(registry.clone()), options);
    let first = until_kind(&mut events, "reloaded").await;
    assert_eq!(first.last().unwrap().servers, 2, "{first:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while get(port, "any.test", "/").await.is_none() {
        assert!(std::time::Instant::now() < deadline, "nginx does not serve the service");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let scale = {
        let (fleet, down) = (fleet.clone(), ServiceSpec { replicas: 1, ..spec.clone() });
        tokio::spawn(async move { deploy(&fleet, &down, &PlanOptions::default()).await })
    };
    let reload = until_kind(&mut events, "reloaded").await;
    assert_eq!(reload.last().unwrap().servers, 1, "{reload:?}");
    let tasks = observe(&fleet, &name).await.unwrap().tasks;
    let draining: Vec<_> = tasks.iter().filter(|t| t.name.ends_with(".draining")).collect();
    assert_eq!(draining.len(), 1, "{tasks:?}");
    assert_eq!(draining[0].state, "running", "nginx was reloaded without the task only after it stopped");
    for _ in 0..20 {
        assert!(get(port, "any.test", "/").await.is_some(), "nginx failed a request during the scale-down");
    }
    let done = scale.await.unwrap().unwrap();
    assert_eq!(done.report.removed, [draining[0].id.as_str()]);
    drop(events);
    drop(nginx);
    pump.abort();
    remove_service(&fleet, &name).await.unwrap();
}
