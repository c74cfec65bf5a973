//! The etcd discovery backend against a real etcd (Debian's etcd-server, started by scripts/etcd.sh):
//! the registry operations, watches, leases that outlive a registrant by at most their TTL, watches that
//! resume across an etcd restart without missing or repeating a change, clear errors while etcd is
//! down, and the registrator restoring everything into an etcd that lost its data.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use dockfleet::*;
use futures::StreamExt;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn etcd(cmd: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/etcd.sh");
    assert!(Command::new("bash").arg(script).arg(cmd).status().unwrap().success(), "etcd.sh {cmd}");
}

fn config() -> EtcdConfig {
    EtcdConfig {
        endpoints: vec!["http://127.0.0.1:23790".into()],
        prefix: format!("/dockfleet-test/{}", unique("t")),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
    }
}

async fn next(w: &mut ResultStream<DiscoveryEvent>) -> DiscoveryEvent {
    tokio::time::timeout(Duration::from_secs(10), w.next()).await.expect("a watch event").unwrap().unwrap()
}

#[tokio::test]
async fn registry_operations_watch_and_leases() {
    let _g = SERIAL.lock().await;
    etcd("up");
    let d = EtcdDiscovery::connect(config()).await.unwrap();
    assert_eq!(d.backend(), "etcd");
    let mut w = d.watch("web");
    assert_eq!(next(&mut w).await.kind, "snapshot");
    d.register(&Instance::new("web", "a", "10.0.0.1", 80)).await.unwrap();
    d.register(&Instance::new("web", "a", "10.0.0.1", 80)).await.unwrap(); // identical: no event
    d.register(&Instance { tags: vec!["canary".into()], ..Instance::new("web", "b", "10.0.0.2", 81) }).await.unwrap();
    d.set_health("web", "a", "critical").await.unwrap();
    d.register(&Instance::new("web", "b", "10.0.0.2", 82)).await.unwrap();
    assert!(d.deregister("web", "b").await.unwrap());
    assert!(!d.deregister("web", "b").await.unwrap());
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(next(&mut w).await.kind);
    }
    assert_eq!(seen, ["insert", "insert", "health", "update", "remove"]);
    assert!(d.lookup("web", &LookupOptions::default()).await.unwrap().is_empty(), "a is critical, b gone");
    let all = d.lookup("web", &LookupOptions { include_unhealthy: true, ..Default::default() }).await.unwrap();
    assert_eq!(all.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["a"]);
    assert_eq!(d.services().await.unwrap(), ["web"]);
    assert_eq!(d.set_health("web", "zz", "passing").await.unwrap_err().code(), "not_found");

    // A registrant's leased entry lives while it does and goes within TTL + 1 s after.
    let owner = d.session();
    owner
        .register(&Instance { ttl: Some(Duration::from_secs(1)), ..Instance::new("web", "leased", "10.0.0.3", 83) })
        .await
        .unwrap();
    assert_eq!(next(&mut w).await.kind, "insert");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(d.lookup("web", &LookupOptions::default()).await.unwrap().len(), 1, "kept alive for 3 TTLs");
    let dropped = Instant::now();
    drop(owner);
    let gone = next(&mut w).await;
    assert_eq!((gone.kind.as_str(), gone.instances[0].id.as_str()), ("remove", "leased"));
    assert!(dropped.elapsed() < Duration::from_secs(2) + Duration::from_millis(700), "after {:?}", dropped.elapsed());
}

#[tokio::test]
async fn an_entry_another_writer_put_in_etcd_unchecked_stays_out_of_a_rendered_config_and_the_proxy() {
    let _g = SERIAL.lock().await;
    etcd("up");
    let config = config();
    let d: Arc<dyn Discovery> = Arc::new(EtcdDiscovery::connect(config.clone()).await.unwrap());
    d.register(&Instance::new("web", "good", "10.0.0.1", 8001)).await.unwrap();
    // What a client other than dockfleet could write: an address that would add nginx directives.
    let mut raw = etcd_client::Client::connect(&config.endpoints, None).await.unwrap();
    let evil = serde_json::json!({
        "service": "web", "id": "evil", "address": "10.0.0.9:1;\n}\nserver {\n listen 81", "port": 8009,
        "health": "passing", "tags": [], "metadata": {},
    });
    raw.put(format!("{}/services/web/evil", config.prefix), evil.to_string(), None).await.unwrap();
    let dir = std::env::temp_dir().join(format!("dockfleet-etcd-render-{}", unique("r")));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("web.conf");
    let options = RenderOptions {
        routes: vec![Route::new("web")],
        path: path.clone(),
        debounce: Duration::from_millis(50),
        ..Default::default()
    };
    let mut events = sync_config(d.clone(), options);
    let first = tokio::time::timeout(Duration::from_secs(10), events.next()).await.unwrap().unwrap().unwrap();
    assert_eq!((first.kind.as_str(), first.servers), ("written", 1), "{first:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("server 10.0.0.1:8001") && !text.contains("10.0.0.9"), "{text}");
    // The built-in proxy leaves it out likewise.
    let proxy =
        Proxy::start(d.clone(), ProxyOptions { routes: vec![Route::new("web")], ..Default::default() }).await.unwrap();
    proxy.wait_ready(Duration::from_secs(10)).await.unwrap();
    let endpoints: Vec<String> = proxy.stats().into_iter().map(|s| s.endpoint.id).collect();
    assert_eq!(endpoints, ["good"]);
    proxy.shutdown(Duration::from_millis(100)).await;
    // A lookup still returns it as the registry holds it: only what is rendered or proxied is checked.
    let all = d.lookup("web", &LookupOptions::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    drop(events);
    raw.delete(format!("{}/", config.prefix), Some(etcd_client::DeleteOptions::new().with_prefix())).await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn etcd_down_gives_clear_errors_and_watches_resume_without_gaps_or_repeats() {
    let _g = SERIAL.lock().await;
    etcd("up");
    let d = EtcdDiscovery::connect(config()).await.unwrap();
    let mut w = d.watch("api");
    assert_eq!(next(&mut w).await.kind, "snapshot");
    d.register(&Instance::new("api", "one", "10.0.0.1", 1)).await.unwrap();
    assert_eq!(next(&mut w).await.instances[0].id, "one");

    struct Start;
    impl Drop for Start {
        fn drop(&mut self) {
            etcd("start");
        }
    }
    etcd("stop");
    let start = Start;
    let e = d.lookup("api", &LookupOptions::default()).await.unwrap_err();
    assert!(matches!(e.code(), "engine_unreachable" | "timeout"), "{e}");
    assert!(e.to_string().contains("etcd"), "names etcd: {e}");
    let e = d.register(&Instance::new("api", "two", "10.0.0.2", 2)).await.unwrap_err();
    assert!(matches!(e.code(), "engine_unreachable" | "timeout"), "{e}");
    let e = EtcdDiscovery::connect(config()).await.unwrap_err();
    assert!(matches!(e.code(), "engine_unreachable" | "timeout"), "{e}");
    drop(start);

    // Back: the watch resumes from where it was; the next changes arrive exactly once.
    d.register(&Instance::new("api", "two", "10.0.0.2", 2)).await.unwrap();
    d.register(&Instance::new("api", "three", "10.0.0.3", 3)).await.unwrap();
    let a = next(&mut w).await;
    let b = next(&mut w).await;
    assert_eq!((a.kind.as_str(), a.instances[0].id.as_str()), ("insert", "two"), "{a:?}");
    assert_eq!((b.kind.as_str(), b.instances[0].id.as_str()), ("insert", "three"), "{b:?}");
    let quiet = tokio::time::timeout(Duration::from_millis(700), w.next()).await;
    assert!(quiet.is_err(), "a change was repeated: {quiet:?}");
}

#[tokio::test]
async fn the_registrator_restores_an_etcd_that_lost_its_data() {
    let _g = SERIAL.lock().await;
    etcd("up");
    let fleet = plain_fleet();
    let spec = web_service("etcdreg", 2);
    deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    let d = EtcdDiscovery::connect(config()).await.unwrap();
    let options =
        RegistratorOptions { resync: Duration::from_secs(1), ttl: Some(Duration::from_secs(2)), ..Default::default() };
    let mut events = registrator(fleet.clone(), Arc::new(d.clone()), options);
    let pump = tokio::spawn(async move {
        while let Some(e) = events.next().await {
            let _ = e;
        }
    });
    let wait = |n: usize| {
        let d = d.clone();
        let name = spec.name.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(v) = d.lookup(&name, &LookupOptions::default()).await {
                    if v.len() == n {
                        return;
                    }
                }
                assert!(Instant::now() < deadline, "never {n} instances of {name}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    wait(2).await;
    etcd("down"); // etcd stops and loses everything
    etcd("up");
    wait(2).await; // restored by the registrator's resync
    pump.abort();
    remove_service(&fleet, &spec.name).await.unwrap();
}

#[tokio::test]
async fn two_registrators_over_etcd_do_not_flap() {
    let _g = SERIAL.lock().await;
    etcd("up");
    let fleet = plain_fleet();
    let spec = web_service("etcdpair", 2);
    deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();
    let config = config();
    let watcher = EtcdDiscovery::connect(config.clone()).await.unwrap();
    let options = RegistratorOptions {
        resync: Duration::from_millis(500),
        ttl: Some(Duration::from_secs(2)),
        ..Default::default()
    };
    let mut pumps = Vec::new();
    for _ in 0..2 {
        let d = EtcdDiscovery::connect(config.clone()).await.unwrap();
        let mut events = registrator(fleet.clone(), Arc::new(d), options.clone());
        pumps.push(tokio::spawn(async move {
            while let Some(e) = events.next().await {
                let _ = e;
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while watcher.lookup(&spec.name, &LookupOptions::default()).await.unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "never registered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut w = watcher.watch(&spec.name);
    assert_eq!(next(&mut w).await.kind, "snapshot");
    let quiet = tokio::time::timeout(Duration::from_secs(3), w.next()).await;
    assert!(quiet.is_err(), "entries flapped while both registrators ran: {quiet:?}");
    for p in pumps {
        p.abort();
    }
    remove_service(&fleet, &spec.name).await.unwrap();
}
