//! Rolling updates gated on health, with automatic and explicit rollback, reported as a stream of
//! progress events.
//!
//! [`rollout`] brings a service to a new spec the way Swarm mode's updater does, per the spec's
//! [`UpdateConfig`]: tasks are replaced `parallelism` at a time, `delay` apart; each new task must be
//! running and, when it has a healthcheck (the spec's or the image's), healthy within
//! [`RolloutOptions::ready_timeout`], and then stay so for `monitor`. `start-first` starts the new task
//! beside the old one and stops the old one only once the new one is ready, so the service never drops
//! below its replica count; `stop-first` stops the old task first, and removes it once the new one
//! has started (one that cannot be created or started leaves the old one running again). When more than `max_failure_ratio` of
//! the tasks fail, `failure_action` decides: `pause` stops the rollout where it is, `continue` goes on,
//! `rollback` rolls every task back to the spec it replaced under the `rollback_config`.
//!
//! Every task records the whole spec it was made from, and the one it replaced, in its labels, so
//! [`rollback`] works from a new process and a rollout interrupted by a crash is finished by running it
//! again: tasks already at the new spec are kept, not restarted.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::fleet::Fleet;
use crate::host::{Host, ResultStream};
use crate::reconcile::{
    apply, ensure_image, observe, plan, previous_spec_labels, replace_stop_first, start_task, stop_and_remove, Action,
    Observed, PlanOptions, Task,
};
use crate::spec::{ServiceSpec, UpdateConfig};
use crate::Later;

/// Options of [`rollout`] and [`rollback`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RolloutOptions {
    /// Seed of the scheduler's tie-breaks (for tasks created while scaling).
    pub seed: u64,
    /// How long a new task may take to be running and healthy before it counts as failed (default
    /// 60 s). Without a healthcheck a task is ready once running.
    #[serde(with = "crate::serde_ms")]
    pub ready_timeout: Duration,
    /// Replace every task even if its spec is unchanged: a rolling restart, in the order and pace of
    /// the service's update config (`docker service update --force`).
    pub force: bool,
}

impl Default for RolloutOptions {
    fn default() -> Self {
        RolloutOptions { seed: 0, ready_timeout: Duration::from_secs(60), force: false }
    }
}

/// One step of a rollout, enough to draw a progress bar (`done` of `total`, per host).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutEvent {
    /// `started` (the plan is known), `image` (the image is being copied or pulled to the hosts that
    /// need it, then one per host once it is there; before any task is replaced), `task-started`,
    /// `task-updated`, `task-failed`, then one final `completed` or `paused`. A rollback starts again
    /// with `started` in phase `rollback`.
    pub kind: String,
    /// `update`, or `rollback` (automatic or explicit).
    pub phase: String,
    /// Service name.
    pub service: String,
    /// Host of the task concerned (empty for service-wide events).
    pub host: String,
    /// Slot of the task concerned.
    pub slot: u32,
    /// The new task's container (`task-updated`, and `task-failed` when it was created).
    pub id: Option<String>,
    /// Tasks replaced or failed so far in this phase.
    pub done: u32,
    /// Tasks this phase replaces.
    pub total: u32,
    /// Tasks that failed so far in this phase.
    pub failed: u32,
    /// What happened, for people.
    pub message: String,
}

/// Sends the events of one phase (of a fleet's rollout here, of a Swarm rollout in `swarm`).
pub(crate) struct Progress {
    pub(crate) tx: UnboundedSender<RolloutEvent>,
    pub(crate) service: String,
    pub(crate) phase: &'static str,
    pub(crate) done: u32,
    pub(crate) total: u32,
    pub(crate) failed: u32,
}

impl Progress {
    fn emit(&self, kind: &str, action: Option<&Action>, id: Option<String>, message: String) {
        let (host, slot) = action.map(|a| (a.host.as_str(), a.slot)).unwrap_or_default();
        self.emit_at(kind, host, slot, id, message);
    }

    /// An event about the task in `slot` on `host` (empty and 0 for service-wide events).
    pub(crate) fn emit_at(&self, kind: &str, host: &str, slot: u32, id: Option<String>, message: String) {
        let _ = self.tx.send(RolloutEvent {
            kind: kind.into(),
            phase: self.phase.into(),
            service: self.service.clone(),
            host: host.into(),
            slot,
            id,
            done: self.done,
            total: self.total,
            failed: self.failed,
            message,
        });
    }
}

/// How a phase ended.
enum Outcome {
    Completed,
    Paused,
    /// Failures asked for a rollback to this spec (if the tasks recorded one).
    Rollback(Option<Box<ServiceSpec>>),
}

/// Updates the service to `spec` per its update config, gated on health, and yields progress. The
/// stream ends after a `completed` or `paused` event; an invalid spec ends it with its error before any
/// engine call. Dropping the stream stops the rollout between engine calls; running it again resumes.
pub fn rollout(fleet: Fleet, spec: ServiceSpec, options: RolloutOptions) -> ResultStream<RolloutEvent> {
    crate::stream::from_channel(move |tx| async move {
        spec.validate()?;
        let mut p = Progress { tx, service: spec.name.clone(), phase: "update", done: 0, total: 0, failed: 0 };
        if let Outcome::Rollback(previous) = roll(&fleet, &spec, &spec.update_config, &options, &mut p).await? {
            p.phase = "rollback";
            match previous {
                Some(previous) => {
                    let previous = ServiceSpec { replicas: spec.replicas, ..*previous };
                    roll(&fleet, &previous, &spec.rollback_config, &options, &mut p).await?;
                }
                None => p.emit(
                    "paused",
                    None,
                    None,
                    "cannot roll back: the replaced tasks recorded no spec (created by another tool?)".into(),
                ),
            }
        }
        Ok(())
    })
}

/// Rolls `service` back to the spec its current tasks replaced (Swarm's `docker service rollback`), per
/// the current spec's rollback config. Fails with `not_found` when no task records a previous spec.
pub fn rollback(fleet: Fleet, service: String, options: RolloutOptions) -> ResultStream<RolloutEvent> {
    crate::stream::from_channel(move |tx| async move {
        let observed = observe(&fleet, &service).await?;
        let Some((current, mut previous)) = rollback_target(&observed) else {
            return Err(Error::NotFound {
                kind: "previous spec".into(),
                id: service,
                host: String::new(),
                message: "no running task of the service records a spec it replaced".into(),
            });
        };
        previous.replicas = current.replicas;
        let mut p = Progress { tx, service, phase: "rollback", done: 0, total: 0, failed: 0 };
        roll(&fleet, &previous, &current.rollback_config, &options, &mut p).await?;
        Ok(())
    })
}

/// The current spec (that of most running tasks) and the one those tasks replaced, if recorded.
fn rollback_target(observed: &Observed) -> Option<(ServiceSpec, ServiceSpec)> {
    let running: Vec<&Task> = observed.tasks.iter().filter(|t| t.state == "running").collect();
    let current = most_common(running.iter().map(|t| t.spec_hash.as_str()))?;
    let previous = most_common(
        running
            .iter()
            .filter(|t| t.spec_hash == current && !t.previous_spec_hash.is_empty())
            .map(|t| t.previous_spec_hash.as_str()),
    )?;
    Some((observed.specs.get(current)?.clone(), observed.specs.get(previous)?.clone()))
}

/// The most frequent item (the smallest among equals).
fn most_common<'a>(items: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for i in items {
        *count.entry(i).or_default() += 1;
    }
    count.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0))).map(|(k, _)| k)
}

/// One phase: brings the service to `target`, replacing tasks per `cfg`.
async fn roll(
    fleet: &Fleet,
    target: &ServiceSpec,
    cfg: &UpdateConfig,
    options: &RolloutOptions,
    p: &mut Progress,
) -> Result<Outcome> {
    let observed = observe(fleet, &target.name).await?;
    let mut planned = plan(target, &observed, &PlanOptions { seed: options.seed, force: options.force })?;
    let (updates, others): (Vec<Action>, Vec<Action>) = planned.actions.drain(..).partition(|a| a.kind == "update");
    // The spec the updated tasks were made from: what a rollback returns to. Tasks restarted on
    // the same spec keep the one they replaced.
    let updated: Vec<&Task> =
        updates.iter().filter_map(|a| observed.tasks.iter().find(|t| Some(&t.id) == a.id.as_ref())).collect();
    let replaced =
        most_common(updated.iter().filter(|t| t.spec_hash != planned.spec_hash).map(|t| t.spec_hash.as_str()))
            .or_else(|| most_common(updated.iter().map(|t| t.previous_spec_hash.as_str()).filter(|h| !h.is_empty())));
    let previous = replaced.and_then(|h| observed.specs.get(h)).cloned().map(Box::new);
    (p.done, p.total, p.failed) = (0, updates.len() as u32, 0);
    p.emit(
        "started",
        None,
        None,
        format!(
            "{} task(s) to replace with spec {} ({}, {} at a time); {} other action(s)",
            updates.len(),
            planned.spec_hash,
            cfg.order,
            if cfg.parallelism == 0 { "all".to_string() } else { cfg.parallelism.to_string() },
            others.len()
        ),
    );
    if !others.is_empty() {
        planned.actions = others;
        apply(fleet, target, &planned).await?;
    }
    // The image goes to every host first: a missing image then fails tasks before any is stopped.
    let image_error = if updates.is_empty() {
        None
    } else {
        let note = |host: &str, message: String| p.emit_at("image", host, 0, None, message);
        ensure_image(fleet, target, updates.iter().map(|a| a.host.as_str()), &note).await.err().map(|e| e.to_string())
    };
    let batch = if cfg.parallelism == 0 { updates.len().max(1) } else { cfg.parallelism as usize };
    for (i, chunk) in updates.chunks(batch).enumerate() {
        if i > 0 && !cfg.delay.is_zero() {
            tokio::time::sleep(cfg.delay).await;
        }
        for a in chunk {
            let old = a.id.as_deref().unwrap_or_default();
            p.emit("task-started", Some(a), None, format!("replacing {} ({})", &old[..old.len().min(12)], cfg.order));
        }
        let results: Vec<std::result::Result<Task, (Option<String>, String)>> = match &image_error {
            Some(e) => chunk.iter().map(|_| Err((None, e.clone()))).collect(),
            None => futures::future::join_all(chunk.iter().map(|a| replace(fleet, target, a, cfg, options))).await,
        };
        for (a, r) in chunk.iter().zip(results) {
            p.done += 1;
            match r {
                Ok(t) => p.emit("task-updated", Some(a), Some(t.id), "ready".into()),
                Err((id, why)) => {
                    p.failed += 1;
                    tracing::warn!(service = %target.name, host = %a.host, slot = a.slot, %why, "task failed to update");
                    p.emit("task-failed", Some(a), id, why);
                }
            }
        }
        if f64::from(p.failed) > cfg.max_failure_ratio * f64::from(p.total) {
            let why = format!(
                "{} of {} task(s) failed, above the max failure ratio {}",
                p.failed, p.total, cfg.max_failure_ratio
            );
            match cfg.failure_action.as_str() {
                "continue" => {}
                "rollback" if p.phase == "update" => {
                    p.emit("task-failed", None, None, format!("{why}: rolling back"));
                    return Ok(Outcome::Rollback(previous));
                }
                _ => {
                    p.emit("paused", None, None, format!("{why}: paused"));
                    return Ok(Outcome::Paused);
                }
            }
        }
    }
    let message = match (p.phase, p.failed) {
        ("rollback", 0) => "rolled back".to_string(),
        (_, 0) => "updated".to_string(),
        (_, n) => format!("finished with {n} failed task(s) (failure action continue)"),
    };
    p.emit("completed", None, None, message);
    Ok(Outcome::Completed)
}

/// Replaces one task per `cfg.order`, waits until the new one is ready, then monitors it. A failure
/// carries the new container's ID when there is one.
async fn replace(
    fleet: &Fleet,
    spec: &ServiceSpec,
    a: &Action,
    cfg: &UpdateConfig,
    options: &RolloutOptions,
) -> std::result::Result<Task, (Option<String>, String)> {
    let fail = |e: Error| (None, e.to_string());
    let host = fleet.host(&a.host).map_err(fail)?;
    let host = host.as_ref();
    let old = a.id.as_deref().unwrap_or_default();
    let extra = previous_spec_labels(host, old, spec).await;
    let new = if cfg.order == "start-first" {
        let t = start_task(fleet, spec, &a.host, a.slot, extra).await.map_err(fail)?;
        if let Err(why) = wait_ready(host, &t.id, options.ready_timeout).await {
            // The old task still serves: take the failed one away.
            let _ = host.remove_container(&t.id, true, false).await;
            return Err((Some(t.id), why));
        }
        stop_and_remove(host, old, spec).await.map_err(|e| (Some(t.id.clone()), e.to_string()))?;
        t
    } else {
        let t = replace_stop_first(fleet, spec, a, extra).await.map_err(fail)?;
        wait_ready(host, &t.id, options.ready_timeout).await.map_err(|why| (Some(t.id.clone()), why))?;
        t
    };
    monitor(host, &new.id, cfg.monitor).await.map_err(|why| (Some(new.id.clone()), why))?;
    Ok(new)
}

/// Waits until a container runs and, if it has a healthcheck, is healthy.
async fn wait_ready(host: &dyn Host, id: &str, timeout: Duration) -> std::result::Result<(), String> {
    let deadline = Instant::now().later(timeout);
    loop {
        let d = host.inspect_container(id).await.map_err(|e| e.to_string())?;
        if !d.state.running {
            return Err(format!("exited with code {} before it was ready", d.state.exit_code));
        }
        match d.state.health.as_deref() {
            None | Some("healthy") => return Ok(()),
            Some("unhealthy") => return Err("unhealthy: its healthcheck failed".into()),
            _ => {}
        }
        if Instant::now() >= deadline {
            return Err(format!("not healthy within {:?}", timeout));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Watches a ready container for `period`: it must keep running and not turn unhealthy.
async fn monitor(host: &dyn Host, id: &str, period: Duration) -> std::result::Result<(), String> {
    let end = Instant::now().later(period);
    loop {
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        tokio::time::sleep((end - now).min(Duration::from_millis(200))).await;
        let d = host.inspect_container(id).await.map_err(|e| e.to_string())?;
        if !d.state.running {
            return Err(format!("exited with code {} within the monitor period", d.state.exit_code));
        }
        if d.state.health.as_deref() == Some("unhealthy") {
            return Err("turned unhealthy within the monitor period".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(slot: u32, hash: &str, previous: &str) -> Task {
        Task {
            host: "h1".into(),
            id: format!("c{slot}"),
            slot,
            spec_hash: hash.into(),
            previous_spec_hash: previous.into(),
            state: "running".into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_rollback_target_is_what_most_current_tasks_replaced() {
        let a = ServiceSpec::new("web", "img:a");
        let b = ServiceSpec::new("web", "img:b");
        let observed = Observed {
            tasks: vec![task(1, "B", "A"), task(2, "B", "A"), task(3, "A", "")],
            specs: BTreeMap::from([("A".to_string(), a.clone()), ("B".to_string(), b.clone())]),
            ..Default::default()
        };
        assert_eq!(rollback_target(&observed), Some((b, a)));
        let none = Observed { tasks: vec![task(1, "A", "")], ..observed };
        assert_eq!(rollback_target(&none), None, "nothing recorded: nothing to roll back to");
    }

    #[test]
    fn most_common_breaks_ties_by_the_smallest() {
        assert_eq!(most_common(["b", "a", "b", "a"].into_iter()), Some("a"));
        assert_eq!(most_common(["b", "a", "b"].into_iter()), Some("b"));
        assert_eq!(most_common(std::iter::empty()), None);
    }
}
