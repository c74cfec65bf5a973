//! End to end on the testbed's engines: a service deployed by dockfleet, registered by the
//! registrator, served through the built-in proxy, with a load client running throughout. A
//! start-first rolling update of every replica fails no request; a SIGKILLed replica fails at most
//! the requests in flight on it (the test prints how many).

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use dockfleet::*;
use futures::{StreamExt, TryStreamExt};
use http_body_util::{BodyExt, Full};

/// Clients sending GETs through the proxy until stopped; counts answers and failures.
struct Load {
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    /// What each failed request got, with the time since the load started.
    errors: Arc<std::sync::Mutex<Vec<String>>>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(address: String, clients: usize) -> Load {
        let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop, rx) = tokio::sync::watch::channel(false);
        let t0 = std::time::Instant::now();
        let tasks = (0..clients)
            .map(|_| {
                let (ok, failed, rx, url) = (ok.clone(), failed.clone(), rx.clone(), format!("http://{address}/"));
                let errors = errors.clone();
                tokio::spawn(async move {
                    let c: hyper_util::client::legacy::Client<_, Full<Bytes>> =
                        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
                    let fail = |e: String| {
                        failed.fetch_add(1, Ordering::Relaxed);
                        errors.lock().unwrap().push(format!("at {:?}: {e}", t0.elapsed()));
                    };
                    while !*rx.borrow() {
                        let answer = async {
                            let r = c.get(url.parse().unwrap()).await.map_err(|e| e.to_string())?;
                            let status = r.status();
                            let body = r.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
                            if status == 200 {
                                Ok(())
                            } else {
                                Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
                            }
                        };
                        match tokio::time::timeout(Duration::from_secs(10), answer).await {
                            Ok(Ok(())) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(Err(e)) => fail(e),
                            Err(_) => fail("no answer within 10 s".into()),
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            })
            .collect();
        Load { ok, failed, errors, stop, tasks }
    }

    fn counts(&self) -> (u64, u64) {
        (self.ok.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }

    fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }

    async fn finish(mut self) -> (u64, u64, Vec<String>) {
        self.stop.send_replace(true);
        for t in std::mem::take(&mut self.tasks) {
            t.await.unwrap();
        }
        let (ok, failed) = self.counts();
        (ok, failed, self.errors())
    }
}

#[tokio::test]
async fn rolling_updates_through_the_proxy_drop_nothing_and_a_kill_fails_only_what_was_in_flight() {
    let fleet = plain_fleet();
    let registry = EmbeddedDiscovery::new();
    let name = unique("e2e").replace('-', "_");
    // Three web tasks answering with their container's host name, healthy per the image's
    // HEALTHCHECK; updates start the new task first.
    let mut spec = ServiceSpec::new(&name, IMAGE_HEALTH);
    spec.command = ["sh", "-c", "hostname > /www/index.html; exec httpd -f -p 80 -h /www"].map(String::from).to_vec();
    spec.replicas = 3;
    spec.stop_grace_period = Duration::from_secs(1);
    spec.ports = vec![ServicePort { target: 80, published: Some(0), protocol: "tcp".into(), mode: None }];
    spec.update_config.order = "start-first".into();
    spec.update_config.monitor = Duration::from_millis(300);
    deploy(&fleet, &spec, &PlanOptions::default()).await.unwrap();

    let mut registrator = registrator(fleet.clone(), Arc::new(registry.clone()), RegistratorOptions::default());
    let pump = tokio::spawn(async move { while registrator.next().await.is_some() {} });
    wait_lookup(&registry, &name, false, |v| v.len() == 3).await;
    let proxy = Proxy::start(
        Arc::new(registry.clone()),
        ProxyOptions { routes: vec![Route::new(&name)], ..Default::default() },
    )
    .await
    .unwrap();
    proxy.wait_ready(Duration::from_secs(10)).await.unwrap();
    let load = Load::start(proxy.address(), 4);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(load.counts().0 > 0, "the service answers through the proxy");

    // A start-first rolling update of every replica (a new environment makes every task outdated).
    spec.env.insert("VERSION".into(), "2".into());
    let events: Vec<RolloutEvent> = rollout(
        fleet.clone(),
        spec.clone(),
        RolloutOptions { ready_timeout: Duration::from_secs(30), ..Default::default() },
    )
    .try_collect()
    .await
    .unwrap();
    assert_eq!(events.last().map(|e| e.kind.as_str()), Some("completed"), "{events:?}");
    assert_eq!(events.iter().filter(|e| e.kind == "task-updated").count(), 3, "{events:?}");
    // The new tasks serve: wait until discovery holds exactly the three new ones.
    let new_ids: Vec<String> = observe(&fleet, &name).await.unwrap().tasks.iter().map(|t| t.id.clone()).collect();
    let is_new = |i: &Instance| {
        let c = i.metadata.get("container").cloned().unwrap_or_default();
        !c.is_empty() && new_ids.iter().any(|n| n.starts_with(&c) || c.starts_with(n.as_str()))
    };
    wait_lookup(&registry, &name, false, |v| v.len() == 3 && v.iter().all(is_new)).await;
    let (ok_update, failed_update) = load.counts();
    eprintln!("rolling update: {ok_update} requests answered, {failed_update} failed");
    assert_eq!(
        failed_update,
        0,
        "a start-first rolling update through the proxy dropped requests: {:?}\nrollout: {events:?}",
        load.errors()
    );

    // SIGKILL one replica's process from outside Docker.
    let o = observe(&fleet, &name).await.unwrap();
    let victim = &o.tasks[0];
    let vh = fleet.host(&victim.host).unwrap();
    let pid = vh.inspect_container(&victim.id).await.unwrap().state.pid;
    assert!(std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap().success());
    wait_lookup(&registry, &name, false, |v| v.len() == 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok, failed, errors) = load.finish().await;
    let in_kill = failed - failed_update;
    eprintln!(
        "SIGKILL of one replica: {in_kill} requests failed (at most those in flight on it), {ok} answered in all"
    );
    assert!(in_kill <= 4, "more failures than requests in flight (4 clients): {errors:?}");
    assert!(ok > ok_update, "the service kept answering after the kill");
    // The proxy's endpoints follow the registry, which already lists only the two live replicas: the
    // killed one must be gone from them promptly (propagation is measured in the ~ms; 5 s is slack for
    // a loaded machine) and must not come back.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stats = proxy.stats();
        if stats.iter().filter(|s| !s.draining).count() == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{stats:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let stats = proxy.stats();
    assert_eq!(stats.iter().filter(|s| !s.draining).count(), 2, "the killed replica came back: {stats:?}");

    proxy.shutdown(Duration::from_secs(2)).await;
    pump.abort();
    remove_service(&fleet, &name).await.unwrap();
}
