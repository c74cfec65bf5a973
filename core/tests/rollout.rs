//! Rolling updates on the testbed's real engines: gated on health, start-first without a gap, automatic
//! rollback on a failing healthcheck, pause on a missing image, explicit rollback, and resuming a
//! rollout that was interrupted.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use dockfleet::*;
use futures::{StreamExt, TryStreamExt};

/// A service of `replicas` sleeping busybox tasks with a fast healthcheck (healthy unless
/// /tmp/unhealthy exists).
fn healthy_spec(prefix: &str, replicas: u32) -> ServiceSpec {
    let mut spec = ServiceSpec::new(unique(prefix).replace('-', "_"), IMAGE);
    spec.command = vec!["sleep".into(), "600".into()];
    spec.replicas = replicas;
    spec.stop_grace_period = Duration::from_secs(1);
    spec.healthcheck = Some(Healthcheck {
        test: vec!["CMD-SHELL".into(), "test ! -f /tmp/unhealthy".into()],
        interval: Some(Duration::from_millis(200)),
        timeout: Some(Duration::from_secs(1)),
        retries: Some(2),
        start_period: None,
    });
    spec.update_config.monitor = Duration::from_millis(300);
    spec.rollback_config.monitor = Duration::from_millis(300);
    spec
}

fn options() -> RolloutOptions {
    RolloutOptions { ready_timeout: Duration::from_secs(15), ..Default::default() }
}

async fn run(stream: ResultStream<RolloutEvent>) -> Vec<RolloutEvent> {
    stream.try_collect().await.unwrap()
}

fn kinds(events: &[RolloutEvent]) -> Vec<String> {
    events.iter().map(|e| format!("{}:{}", e.phase, e.kind)).collect()
}

/// Counts the service's healthy tasks on every host every 50 ms; `min()` is the lowest count seen.
struct Sampler {
    min: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    fn start(fleet: &Fleet, service: &str) -> Sampler {
        let min = Arc::new(AtomicUsize::new(usize::MAX));
        let (fleet, service, m) = (fleet.clone(), service.to_string(), min.clone());
        let task = tokio::spawn(async move {
            let opts =
                ListContainersOptions { labels: vec![format!("{LABEL_SERVICE}={service}")], ..Default::default() };
            loop {
                let lists = futures::future::join_all(fleet.hosts().iter().map(|h| h.list_containers(&opts))).await;
                let healthy: usize = lists
                    .into_iter()
                    .map(|l| {
                        l.unwrap().iter().filter(|c| c.state == "running" && c.status.contains("(healthy)")).count()
                    })
                    .sum();
                m.fetch_min(healthy, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Sampler { min, task }
    }

    fn min(self) -> usize {
        self.task.abort();
        let min = self.min.load(Ordering::SeqCst);
        assert_ne!(min, usize::MAX, "the sampler never sampled");
        min
    }
}

async fn wait_healthy(fleet: &Fleet, service: &str, n: usize) {
    let opts = ListContainersOptions { labels: vec![format!("{LABEL_SERVICE}={service}")], ..Default::default() };
    for _ in 0..100 {
        let mut healthy = 0;
        for h in fleet.hosts() {
            healthy +=
                h.list_containers(&opts).await.unwrap().iter().filter(|c| c.status.contains("(healthy)")).count();
        }
        if healthy >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{service} never had {n} healthy tasks");
}

fn running(o: &Observed) -> Vec<&Task> {
    o.tasks.iter().filter(|t| t.state == "running").collect()
}

#[tokio::test]
async fn start_first_update_never_drops_a_replica_and_rollback_restores() {
    let fleet = plain_fleet();
    let mut spec = healthy_spec("sf", 3);
    spec.update_config.order = "start-first".into();
    let first = run(rollout(fleet.clone(), spec.clone(), options())).await;
    assert_eq!(kinds(&first), ["update:started", "update:completed"], "a fresh service is created: {first:?}");
    wait_healthy(&fleet, &spec.name, 3).await;
    let old_hash = spec_hash(&spec);

    let sampler = Sampler::start(&fleet, &spec.name);
    spec.env.insert("VERSION".into(), "2".into());
    let events = run(rollout(fleet.clone(), spec.clone(), options())).await;
    let lowest = sampler.min();
    let mut expected = vec!["update:started".to_string()];
    for _ in 0..3 {
        expected.extend(["update:task-started".to_string(), "update:task-updated".to_string()]);
    }
    expected.push("update:completed".into());
    assert_eq!(kinds(&events), expected, "{events:#?}");
    let progress: Vec<(u32, u32)> =
        events.iter().filter(|e| e.kind == "task-updated").map(|e| (e.done, e.total)).collect();
    assert_eq!(progress, [(1, 3), (2, 3), (3, 3)]);
    assert!(events.iter().filter(|e| e.kind.starts_with("task-")).all(|e| !e.host.is_empty() && e.slot > 0));
    assert!(lowest >= 3, "start-first dropped to {lowest} healthy replicas");

    let o = observe(&fleet, &spec.name).await.unwrap();
    assert_eq!(running(&o).len(), 3);
    assert_eq!(o.tasks.len(), 3, "old tasks are gone: {:?}", o.tasks);
    assert!(o.tasks.iter().all(|t| t.spec_hash == spec_hash(&spec) && t.previous_spec_hash == old_hash));
    assert!(o.specs.contains_key(&old_hash), "the previous spec is recorded on the tasks");

    // Explicit rollback, as from another process: only the labels say where to go back to.
    let back = run(rollback(fleet.clone(), spec.name.clone(), options())).await;
    assert_eq!(back.first().map(|e| e.phase.as_str()), Some("rollback"));
    assert_eq!(back.last().map(|e| (e.kind.as_str(), e.message.as_str())), Some(("completed", "rolled back")));
    let o = observe(&fleet, &spec.name).await.unwrap();
    assert_eq!(running(&o).len(), 3);
    assert!(o.tasks.iter().all(|t| t.spec_hash == old_hash), "{:?}", o.tasks);
    assert!(o.tasks.iter().all(|t| t.previous_spec_hash == spec_hash(&spec)), "rolling back twice toggles");
    remove_service(&fleet, &spec.name).await.unwrap();
}

#[tokio::test]
async fn a_failing_healthcheck_rolls_back_and_a_missing_image_pauses() {
    let fleet = plain_fleet();
    let mut spec = healthy_spec("fail", 3);
    spec.update_config.failure_action = "rollback".into();
    run(rollout(fleet.clone(), spec.clone(), options())).await;
    wait_healthy(&fleet, &spec.name, 3).await;
    let old_hash = spec_hash(&spec);
    let before: Vec<String> = observe(&fleet, &spec.name).await.unwrap().tasks.iter().map(|t| t.id.clone()).collect();

    // The new version turns unhealthy: the first task fails, the rollout rolls that task back.
    let sampler = Sampler::start(&fleet, &spec.name);
    let mut bad = spec.clone();
    bad.command = vec!["sh".into(), "-c".into(), "touch /tmp/unhealthy; exec sleep 600".into()];
    let events = run(rollout(fleet.clone(), bad.clone(), options())).await;
    let lowest = sampler.min();
    let k = kinds(&events);
    assert_eq!(k[..3], ["update:started", "update:task-started", "update:task-failed"], "{events:#?}");
    assert!(events[2].message.contains("unhealthy"), "{}", events[2].message);
    assert!(k.contains(&"rollback:started".to_string()), "{k:?}");
    assert_eq!(k.last().map(String::as_str), Some("rollback:completed"), "{events:#?}");
    assert!(!k.contains(&"update:task-updated".to_string()), "nothing else was updated: {k:?}");
    assert!(lowest >= 2, "availability fell to {lowest}, below replicas − parallelism");
    let o = observe(&fleet, &spec.name).await.unwrap();
    assert_eq!(running(&o).len(), 3, "{:?}", o.tasks);
    assert_eq!(o.tasks.len(), 3, "{:?}", o.tasks);
    assert!(o.tasks.iter().all(|t| t.spec_hash == old_hash));
    let kept = o.tasks.iter().filter(|t| before.contains(&t.id)).count();
    assert_eq!(kept, 2, "only the failed slot was touched");

    // An image no host has: every task fails before anything is stopped, and the rollout pauses.
    let before: Vec<String> = o.tasks.iter().map(|t| t.id.clone()).collect();
    let mut missing = spec.clone();
    missing.image = "dockfleet/does-not-exist:1".into();
    missing.update_config.failure_action = "pause".into();
    let events = run(rollout(fleet.clone(), missing, options())).await;
    assert_eq!(kinds(&events), ["update:started", "update:task-started", "update:task-failed", "update:paused"]);
    assert!(events[2].message.contains("does-not-exist"), "{}", events[2].message);
    let o = observe(&fleet, &spec.name).await.unwrap();
    let mut now: Vec<String> = o.tasks.iter().map(|t| t.id.clone()).collect();
    now.sort();
    let mut before = before;
    before.sort();
    assert_eq!(now, before, "a missing image stopped nothing");
    remove_service(&fleet, &spec.name).await.unwrap();
}

#[tokio::test]
async fn an_interrupted_rollout_resumes_without_restarting_updated_tasks() {
    let fleet = plain_fleet();
    let mut spec = healthy_spec("resume", 3);
    spec.healthcheck = None;
    spec.update_config.monitor = Duration::ZERO;
    run(rollout(fleet.clone(), spec.clone(), options())).await;
    spec.env.insert("VERSION".into(), "2".into());

    // The deploying process goes away right after the first task is updated.
    let mut stream = rollout(fleet.clone(), spec.clone(), options());
    let updated = loop {
        let e = stream.next().await.expect("events").unwrap();
        if e.kind == "task-updated" {
            break e.id.unwrap();
        }
    };
    drop(stream);

    let events = run(rollout(fleet.clone(), spec.clone(), options())).await;
    assert_eq!(events[0].total, 2, "only the two old tasks are left to update: {events:#?}");
    assert_eq!(events.last().unwrap().kind, "completed");
    let o = observe(&fleet, &spec.name).await.unwrap();
    assert_eq!(running(&o).len(), 3);
    assert!(o.tasks.iter().all(|t| t.spec_hash == spec_hash(&spec)));
    assert!(o.tasks.iter().any(|t| t.id == updated), "the task updated before the interruption was restarted");
    remove_service(&fleet, &spec.name).await.unwrap();
}

#[tokio::test]
async fn bad_input_fails_before_any_engine_call() {
    let mut spec = ServiceSpec::new("bad", IMAGE);
    spec.ports = vec![ServicePort { target: 80, published: Some(18080), protocol: "tcp".into(), mode: None }];
    spec.update_config.order = "start-first".into();
    let e = rollout(plain_fleet(), spec, options()).try_next().await.unwrap_err();
    assert_eq!(e.code(), "invalid_argument");
    assert!(e.to_string().contains("update_config.order"), "{e}");
    let e = rollback(plain_fleet(), unique("nothing"), options()).try_next().await.unwrap_err();
    assert_eq!(e.code(), "not_found", "{e}");
}

#[tokio::test]
async fn with_a_shutdown_delay_a_replaced_task_drains_beside_its_successor() {
    let fleet = plain_fleet();
    let mut spec = healthy_spec("sfdrain", 2);
    spec.update_config.order = "start-first".into();
    spec.shutdown_delay = Duration::from_secs(2);
    run(rollout(fleet.clone(), spec.clone(), options())).await;
    wait_healthy(&fleet, &spec.name, 2).await;

    spec.env.insert("VERSION".into(), "2".into());
    let started = std::time::Instant::now();
    let mut update = tokio::spawn(run(rollout(fleet.clone(), spec.clone(), options())));
    // Sampled meanwhile: tasks in service (running, not draining) never fewer than the replicas, and
    // a replaced task seen draining while it still runs.
    let (mut fewest, mut drained) = (usize::MAX, 0);
    let events = loop {
        tokio::select! {
            done = &mut update => break done.unwrap(),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                let o = observe(&fleet, &spec.name).await.unwrap();
                let draining = |t: &&Task| t.name.ends_with(".draining");
                fewest = fewest.min(running(&o).into_iter().filter(|t| !draining(t)).count());
                drained = drained.max(running(&o).into_iter().filter(draining).count());
            }
        }
    };
    assert_eq!(events.last().map(|e| e.kind.as_str()), Some("completed"), "{events:#?}");
    assert!(started.elapsed() >= 2 * spec.shutdown_delay, "two tasks, one at a time, each drained for the delay");
    assert!(drained >= 1 && fewest >= 2, "draining seen {drained}, fewest in service {fewest}");
    let o = observe(&fleet, &spec.name).await.unwrap();
    assert_eq!(o.tasks.len(), 2, "{:?}", o.tasks);
    assert!(o.tasks.iter().all(|t| t.spec_hash == spec_hash(&spec) && !t.name.ends_with(".draining")));
    remove_service(&fleet, &spec.name).await.unwrap();
}
