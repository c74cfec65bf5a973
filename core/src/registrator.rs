//! The registrator: keeps a [`Discovery`] registry in step with what runs on a fleet's engines.
//!
//! It follows every host's container events and resyncs at start and every `resync`, with the engines
//! as the authority: a container that publishes ports is registered at its host's address and
//! published port; a container of a dockfleet service, or a task of a Swarm mode service, registers
//! under the service's name with its slot. A container is deregistered as soon as it is told to stop
//! (the engine's `kill` event for SIGTERM, SIGINT, SIGQUIT or SIGKILL, which `docker stop`, a rollout
//! and a scale-down send first): a proxy following the registry then drains it while it finishes
//! the requests it has in its stop grace period, instead of sending it new ones until it dies. It is
//! not registered again while it runs, unless it starts anew (a `start` event: `docker restart`).
//! A dockfleet task whose container is renamed `<name>.draining` (a service with a
//! `shutdown_delay`, before its tasks are stopped) is deregistered at the `rename` event, while it
//! still runs and answers, so that load balancers that reload (nginx, HAProxy) stop sending it
//! requests before it stops.
//! Containers that die, stop or go away are deregistered at once, and stay so: the engine's
//! container list still shows a container running for a moment after its `die` event, so one seen to
//! die is re-inspected rather than registered again from a list, and the event streams resume after
//! the last event handled, so a resync loses none. Entries whose
//! container is gone (a crash of the engine, of this process or of another registrator) are dropped at
//! the next resync.
//! Docker's HEALTHCHECK status is honoured, and active TCP/HTTP checks (rise/fall) can be added per
//! service. Registrations carry a TTL by default, so the registrator's own crash leaves nothing stale.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use crate::discovery::{Discovery, Instance, LookupOptions};
use crate::error::{Error, Result};
use crate::fleet::Fleet;
use crate::health::{CheckState, HealthCheck};
use crate::host::{ContainerSummary, Event, EventOptions, Host, ListContainersOptions, PortMapping, ResultStream};
use crate::reconcile::{slot_label, LABEL_SERVICE};
use crate::Later;

/// How long a resync waits for one host's container list before calling it unreachable.
const LIST_TIMEOUT: Duration = Duration::from_secs(3);

/// Metadata key marking entries made by dockfleet's registrator.
const REGISTRATOR: &str = "registrator";

/// Options of [`registrator`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegistratorOptions {
    /// Compare the registry with the engines this often (default 10 s), besides at start.
    #[serde(with = "crate::serde_ms")]
    pub resync: Duration,
    /// TTL of the registrations (default 15 s): they live while the registrator does and vanish at most
    /// this long after it stops. `None`: until deregistered.
    #[serde(with = "crate::serde_ms::option")]
    pub ttl: Option<Duration>,
    /// What happens to the entries of a host that stops answering: `remove` (default: at once) or
    /// `expire` (left to their TTL, so a short blip changes nothing).
    pub on_unreachable: String,
    /// Active health checks by service name; `*` applies to services without their own.
    pub checks: BTreeMap<String, HealthCheck>,
}

impl Default for RegistratorOptions {
    fn default() -> Self {
        RegistratorOptions {
            resync: Duration::from_secs(10),
            ttl: Some(Duration::from_secs(15)),
            on_unreachable: "remove".into(),
            checks: BTreeMap::new(),
        }
    }
}

impl RegistratorOptions {
    /// Checks the options; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if self.resync < Duration::from_millis(100) {
            return Err(Error::invalid("resync", "must be at least 100 ms"));
        }
        if self.ttl.is_some_and(|t| t < Duration::from_millis(100)) {
            return Err(Error::invalid("ttl", "must be at least 100 ms"));
        }
        if self.on_unreachable != "remove" && self.on_unreachable != "expire" {
            return Err(Error::invalid("on_unreachable", format!("{:?} is not remove or expire", self.on_unreachable)));
        }
        for (name, c) in &self.checks {
            c.validate().map_err(|e| e.with_field_prefix(&format!("checks.{name}")))?;
        }
        Ok(())
    }
}

/// Something the registrator did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistratorEvent {
    /// `register`, `deregister`, `health`, `resync`, `unreachable` or `error`.
    pub kind: String,
    /// Host concerned.
    pub host: String,
    /// Service concerned (empty for host-wide events).
    pub service: String,
    /// Instance ID concerned.
    pub id: String,
    /// Details.
    pub message: String,
}

/// The address clients use to reach a host's published ports: the host part of its engine address
/// (`tcp://10.0.0.5:2376` → `10.0.0.5`), loopback for a local socket.
pub(crate) fn host_address(address: &str) -> String {
    match address.split_once("://") {
        Some(("tcp" | "http" | "https", rest)) => {
            let hostport = rest.split('/').next().unwrap_or(rest);
            match hostport.rsplit_once(':') {
                Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']').to_string(),
                None => hostport.to_string(),
            }
        }
        _ => "127.0.0.1".into(),
    }
}

/// The instances a running container stands for.
fn instances_of(host: &str, address: &str, c: &ContainerSummary, ttl: Option<Duration>) -> Vec<Instance> {
    if c.labels.contains_key(LABEL_SERVICE) && crate::reconcile::is_draining(&c.name) {
        // A dockfleet task on its way out (`ServiceSpec::shutdown_delay`): no new requests for it.
        return Vec::new();
    }
    // One port per container port and protocol: the one bound in the address's family (an engine with
    // IPv6 binds both families, maybe on different port numbers, and an IPv6-only one refuses IPv4).
    let v6 = address.contains(':');
    // A task on the host network has no ports the engine reports: its label names them.
    let ports = crate::reconcile::host_ports(c);
    let mut published: Vec<_> = ports.iter().filter(|p| p.host_port.is_some_and(|hp| hp != 0)).collect();
    published.sort_by_key(|p| (p.container_port, p.protocol.clone(), p.is_ipv6() != v6));
    published.dedup_by_key(|p| (p.container_port, p.protocol.clone()));
    if published.is_empty() {
        return Vec::new();
    }
    let health = if matches!(c.health(), Some("unhealthy" | "starting")) { "critical" } else { "passing" };
    let mut metadata = BTreeMap::from([
        ("host".to_string(), host.to_string()),
        ("container".to_string(), c.id.clone()),
        ("container_name".to_string(), c.name.clone()),
        (REGISTRATOR.to_string(), "dockfleet".to_string()),
    ]);
    let base = Instance { address: address.into(), ttl, health: health.into(), ..Default::default() };
    // A dockfleet task, or a Swarm mode task (whose slot is the middle of its task name, `svc.3.ID`).
    let swarm_service = c.labels.get("com.docker.swarm.service.name");
    if let Some(service) = c.labels.get(LABEL_SERVICE).or(swarm_service) {
        if let Some(slot) = slot_label(&c.labels) {
            metadata.insert("slot".into(), slot.to_string());
        }
        if let Some(task) = c.labels.get("com.docker.swarm.task.id") {
            metadata.insert("swarm_task".into(), task.clone());
        }
        let p = published[0];
        return vec![Instance {
            service: service.clone(),
            id: c.name.clone(),
            port: p.host_port.unwrap_or_default(),
            tags: vec![p.protocol.clone()],
            metadata,
            ..base
        }];
    }
    // Any other container: registrator's convention, the image's name (and the port when several).
    let image = c.image.rsplit('/').next().unwrap_or(&c.image);
    let image = image.split([':', '@']).next().unwrap_or(image);
    let name = c.labels.get("dockfleet.discovery.service").cloned().unwrap_or_else(|| image.to_string());
    published
        .iter()
        .map(|p| Instance {
            service: if published.len() > 1 { format!("{name}-{}", p.container_port) } else { name.clone() },
            id: format!("{host}:{}:{}", c.name, p.host_port.unwrap_or_default()),
            port: p.host_port.unwrap_or_default(),
            tags: vec![p.protocol.clone()],
            metadata: metadata.clone(),
            ..base.clone()
        })
        .collect()
}

/// What the registrator knows about one instance it registered.
struct Known {
    /// As registered (health included).
    instance: Instance,
    /// Docker's verdict (HEALTHCHECK), before active checks.
    docker_health: String,
    check: CheckState,
    /// Whether the active check currently fails.
    check_failing: bool,
    next_check: Option<Instant>,
}

struct State {
    fleet: Fleet,
    discovery: Arc<dyn Discovery>,
    options: RegistratorOptions,
    tx: UnboundedSender<RegistratorEvent>,
    /// One registry session per host, so `expire` can let a host's entries lapse on their own.
    sessions: BTreeMap<String, Arc<dyn Discovery>>,
    known: BTreeMap<String, BTreeMap<(String, String), Known>>,
    /// Per host, the containers seen to die (`die`, `stop`, `destroy`) that a container list may still
    /// show running: see [`State::without_the_dead`].
    dead: BTreeMap<String, BTreeSet<String>>,
    /// Per host, the running containers told to stop (a terminating signal's `kill` event): left out
    /// of every list until they no longer run, or start again.
    stopping: BTreeMap<String, BTreeSet<String>>,
    /// Per host, the exposed ports of the running containers on the host network that name none in a
    /// label (read once per container: see [`State::with_exposed_ports`]).
    exposed: BTreeMap<String, BTreeMap<String, Vec<PortMapping>>>,
}

/// Whether a `kill` event's signal tells the container to go away (a stop, not a reload or a poke).
fn terminating(e: &Event) -> bool {
    // SIGINT, SIGQUIT (nginx's stop signal), SIGKILL, SIGTERM; an engine may also name them.
    matches!(
        e.attributes.get("signal").map(String::as_str),
        Some("2" | "3" | "9" | "15" | "SIGINT" | "SIGQUIT" | "SIGKILL" | "SIGTERM" | "INT" | "QUIT" | "KILL" | "TERM")
    )
}

impl State {
    fn emit(&self, kind: &str, host: &str, service: &str, id: &str, message: String) {
        let _ = self.tx.send(RegistratorEvent {
            kind: kind.into(),
            host: host.into(),
            service: service.into(),
            id: id.into(),
            message,
        });
    }

    fn session(&mut self, host: &str) -> Arc<dyn Discovery> {
        let d = &self.discovery;
        self.sessions.entry(host.to_string()).or_insert_with(|| d.session()).clone()
    }

    fn check_for(&self, service: &str) -> Option<HealthCheck> {
        self.options.checks.get(service).or_else(|| self.options.checks.get("*")).cloned()
    }

    /// Registers what `desired` holds for `host` and drops what it registered there before and no
    /// longer holds (with `only`, just among the entries of those containers).
    async fn apply(&mut self, host: &str, desired: Vec<Instance>, only: Option<&BTreeSet<String>>) -> Result<()> {
        let session = self.session(host);
        let wanted: BTreeMap<(String, String), Instance> =
            desired.into_iter().map(|i| ((i.service.clone(), i.id.clone()), i)).collect();
        let known = self.known.entry(host.to_string()).or_default();
        let stale: Vec<(String, String)> = known
            .iter()
            .filter(|(k, v)| {
                !wanted.contains_key(*k) && only.is_none_or(|ids| ids.contains(&v.instance.metadata["container"]))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in &stale {
            known.remove(k);
        }
        for k in stale {
            session.deregister(&k.0, &k.1).await?;
            self.emit("deregister", host, &k.0, &k.1, "container gone".into());
        }
        for (k, mut i) in wanted {
            let check = self.check_for(&i.service);
            let known = self.known.entry(host.to_string()).or_default();
            let docker_health = i.health.clone();
            let prev = known.remove(&k);
            let (state, failing, next) = match &prev {
                Some(p) => (p.check.clone(), p.check_failing, p.next_check),
                None => (CheckState::default(), check.is_some(), check.as_ref().map(|_| Instant::now())),
            };
            if failing {
                i.health = "critical".into();
            }
            let changed = prev.as_ref().is_none_or(|p| p.instance != i);
            if changed {
                session.register(&i).await?;
                let kind = if prev.is_some() { "health" } else { "register" };
                self.emit(kind, host, &i.service, &i.id, format!("{}:{} {}", i.address, i.port, i.health));
            }
            self.known.entry(host.to_string()).or_default().insert(
                k,
                Known { instance: i, docker_health, check: state, check_failing: failing, next_check: next },
            );
        }
        Ok(())
    }

    /// Leaves out of a host's container list the containers it lists as running but that died. The
    /// engine logs `die` before it updates the view its container list reads (moby checkpoints it
    /// after the event and the network cleanup), so for a moment after a death the list still shows the
    /// container running, and registering from it would bring the dead back. A container seen to die is
    /// inspected instead, which reads its live state, until the list no longer shows it running (or it
    /// runs again: a restart). Containers told to stop are left out while they run.
    async fn without_the_dead(&mut self, h: &Arc<dyn Host>, list: Vec<ContainerSummary>) -> Vec<ContainerSummary> {
        let running: BTreeSet<&str> = list.iter().filter(|c| c.state == "running").map(|c| c.id.as_str()).collect();
        let stopping = self.stopping.entry(h.name().to_string()).or_default();
        stopping.retain(|id| running.contains(id.as_str()));
        let dead = self.dead.entry(h.name().to_string()).or_default();
        dead.retain(|id| running.contains(id.as_str()));
        let mut out = Vec::with_capacity(list.len());
        for c in list {
            if stopping.contains(&c.id) {
                continue;
            }
            if dead.contains(&c.id) {
                match h.inspect_container(&c.id).await {
                    Ok(d) if d.state.running => {
                        dead.remove(&c.id);
                    }
                    // Not running (or already gone): the list is behind.
                    _ => continue,
                }
            }
            out.push(c);
        }
        out
    }

    /// A host's container list as the registrator reads it: [`State::without_the_dead`], then
    /// [`State::with_exposed_ports`].
    async fn running_view(&mut self, h: &Arc<dyn Host>, list: Vec<ContainerSummary>) -> Vec<ContainerSummary> {
        let list = self.without_the_dead(h, list).await;
        self.with_exposed_ports(h, list).await
    }

    /// Gives each running container on the host network that no label names ports for (one run by
    /// hand, or by another tool) the ports it exposes (its image's `EXPOSE`, `--expose`), each bound
    /// on its host at its own number, as gliderlabs' registrator does. The engine lists no port for
    /// such a container, so each is inspected, once: a container's exposed ports never change.
    async fn with_exposed_ports(
        &mut self,
        h: &Arc<dyn Host>,
        mut list: Vec<ContainerSummary>,
    ) -> Vec<ContainerSummary> {
        let cache = self.exposed.entry(h.name().to_string()).or_default();
        cache.retain(|id, _| list.iter().any(|c| &c.id == id));
        for c in list.iter_mut().filter(|c| crate::reconcile::listens_unnamed(c)) {
            if !cache.contains_key(&c.id) {
                match h.inspect_container(&c.id).await {
                    Ok(d) => {
                        cache.insert(c.id.clone(), d.exposed_ports);
                    }
                    // (Gone meanwhile: its event follows.)
                    Err(_) => continue,
                }
            }
            c.ports = crate::reconcile::exposed_on_host(&cache[&c.id]);
        }
        list
    }

    /// Compares one host with the registry; the engine is the authority.
    async fn resync_host(&mut self, h: &Arc<dyn Host>, list: Result<Vec<ContainerSummary>>) -> Result<()> {
        let name = h.name().to_string();
        let address = host_address(h.address());
        let list = match list {
            Ok(l) => self.running_view(h, l).await,
            Err(e) => {
                self.unreachable(&name, &e).await?;
                return Ok(());
            }
        };
        let desired: Vec<Instance> =
            list.iter().flat_map(|c| instances_of(&name, &address, c, self.options.ttl)).collect();
        let ids: BTreeSet<(String, String)> = desired.iter().map(|i| (i.service.clone(), i.id.clone())).collect();
        // The registry, not this process's memory, is compared with the engine: entries whose container
        // is gone go (whoever made them), and entries that are missing or differ (expired with another
        // registrator, say) are registered again.
        let mut present: BTreeMap<(String, String), Instance> = BTreeMap::new();
        for service in self.discovery.services().await? {
            let all = LookupOptions { include_unhealthy: true, ..Default::default() };
            for i in self.discovery.lookup(&service, &all).await? {
                let ours = i.metadata.get(REGISTRATOR).map(String::as_str) == Some("dockfleet")
                    && i.metadata.get("host") == Some(&name);
                if ours && ids.contains(&(i.service.clone(), i.id.clone())) {
                    present.insert((i.service.clone(), i.id.clone()), i);
                } else if ours {
                    self.discovery.deregister(&i.service, &i.id).await?;
                    if let Some(k) = self.known.get_mut(&name) {
                        k.remove(&(i.service.clone(), i.id.clone()));
                    }
                    self.emit("deregister", &name, &i.service, &i.id, "stale: its container is gone".into());
                }
            }
        }
        if let Some(known) = self.known.get_mut(&name) {
            known.retain(|k, v| present.get(k).is_some_and(|p| *p == v.instance));
        }
        let n = desired.len();
        self.apply(&name, desired, None).await?;
        self.emit("resync", &name, "", "", format!("{n} instance(s)"));
        Ok(())
    }

    async fn unreachable(&mut self, host: &str, e: &Error) -> Result<()> {
        let known = self.known.remove(host).unwrap_or_default();
        if known.is_empty() && !self.sessions.contains_key(host) {
            return Ok(());
        }
        self.emit("unreachable", host, "", "", format!("{e}; {} entries {}", known.len(), self.options.on_unreachable));
        let session = self.sessions.remove(host);
        if self.options.on_unreachable == "remove" {
            if let Some(s) = session {
                for (service, id) in known.keys() {
                    s.deregister(service, id).await?;
                    self.emit("deregister", host, service, id, "host unreachable".into());
                }
            }
        }
        // `expire`: the host's session is dropped, so its TTL'd entries lapse on their own.
        Ok(())
    }

    /// Re-reads one container after an event about it.
    async fn container_changed(&mut self, h: &Arc<dyn Host>, id: &str, gone: bool) -> Result<()> {
        let name = h.name().to_string();
        let mut desired = Vec::new();
        if gone {
            self.dead.entry(name.clone()).or_default().insert(id.to_string());
        } else {
            let filter = ListContainersOptions { all: false, labels: Vec::new(), name: None };
            let list = h.list_containers(&filter).await?;
            let list = self.running_view(h, list).await;
            if let Some(c) = list.iter().find(|c| c.id == id) {
                desired = instances_of(&name, &host_address(h.address()), c, self.options.ttl);
            }
        }
        // Keep the host's other entries: only this container's are replaced.
        let mut keep: Vec<Instance> = self
            .known
            .get(&name)
            .map(|k| k.values().filter(|v| v.instance.metadata["container"] != id).map(with_docker_health).collect())
            .unwrap_or_default();
        keep.extend(desired);
        self.apply(&name, keep, Some(&BTreeSet::from([id.to_string()]))).await
    }

    /// Runs the active checks that are due; returns when the next one is.
    async fn run_checks(&mut self) -> Result<Option<Instant>> {
        let now = Instant::now();
        let mut due = Vec::new();
        for (host, k) in &self.known {
            for (key, v) in k {
                if v.next_check.is_some_and(|t| t <= now) {
                    if let Some(c) = self.check_for(&key.0) {
                        due.push((host.clone(), key.clone(), v.instance.address.clone(), v.instance.port, c));
                    }
                }
            }
        }
        let results = futures::future::join_all(due.into_iter().map(|(host, key, addr, port, c)| async move {
            let r = c.probe(&addr, port).await;
            (host, key, c, r)
        }))
        .await;
        for (host, key, c, r) in results {
            let Some(v) = self.known.get_mut(&host).and_then(|k| k.get_mut(&key)) else { continue };
            v.next_check = Some(Instant::now().later(c.interval));
            let Some(passing) = v.check.feed(r.is_ok(), &c) else { continue };
            v.check_failing = !passing;
            let health = if passing { v.docker_health.clone() } else { "critical".to_string() };
            if health != v.instance.health {
                v.instance.health = health.clone();
                let session = self.session(&host);
                session.set_health(&key.0, &key.1, &health).await?;
                let why = r.err().unwrap_or_else(|| "check passed".into());
                self.emit("health", &host, &key.0, &key.1, format!("{health}: {why}"));
            }
        }
        Ok(self.known.values().flat_map(|k| k.values().filter_map(|v| v.next_check)).min())
    }
}

fn with_docker_health(v: &Known) -> Instance {
    Instance { health: v.docker_health.clone(), ..v.instance.clone() }
}

/// Keeps `discovery` in step with the containers of every host of `fleet` until the stream is
/// dropped; yields what it did. Invalid options end the stream with their error before anything else.
pub fn registrator(
    fleet: Fleet,
    discovery: Arc<dyn Discovery>,
    options: RegistratorOptions,
) -> ResultStream<RegistratorEvent> {
    crate::stream::from_channel(move |tx| async move {
        options.validate()?;
        let mut st = State {
            fleet,
            discovery,
            options,
            tx,
            sessions: BTreeMap::new(),
            known: BTreeMap::new(),
            dead: BTreeMap::new(),
            stopping: BTreeMap::new(),
            exposed: BTreeMap::new(),
        };
        let filters = BTreeMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "event".to_string(),
                ["start", "kill", "die", "stop", "destroy", "health_status", "rename"].map(String::from).to_vec(),
            ),
        ]);
        // Per host, where its next event stream starts: just after the last event handled from it. A
        // resync breaks off the streams, and events they had delivered but not yet handled are
        // replayed, not lost (a lost `die` would leave its container registered until the next resync).
        let mut resume: BTreeMap<String, i64> = BTreeMap::new();
        loop {
            let now = crate::host::now_nanos();
            let hosts: Vec<Arc<dyn Host>> = st.fleet.hosts().to_vec();
            for h in &hosts {
                resume.entry(h.name().to_string()).or_insert(now);
            }
            // Every host at once, each bounded: a host cut off the network must not stall the others.
            let lists = futures::future::join_all(hosts.iter().map(|h| async move {
                let all = ListContainersOptions::default();
                match tokio::time::timeout(LIST_TIMEOUT, h.list_containers(&all)).await {
                    Ok(r) => r,
                    Err(_) => Err(Error::Timeout {
                        host: h.name().into(),
                        operation: "list containers".into(),
                        after: LIST_TIMEOUT,
                    }),
                }
            }))
            .await;
            for (h, list) in hosts.iter().zip(lists) {
                if let Err(e) = st.resync_host(h, list).await {
                    st.emit("error", h.name(), "", "", e.to_string());
                }
            }
            let mut events = futures::stream::select_all(hosts.iter().enumerate().map(|(i, h)| {
                let since = resume[h.name()];
                let opts = EventOptions { since_nanos: Some(since), until_nanos: None, filters: filters.clone() };
                h.events(&opts).map(move |e| (i, e))
            }));
            let resync_at = Instant::now().later(st.options.resync);
            let mut next_check = st.run_checks().await?;
            loop {
                let wake = next_check.map_or(resync_at, |c| c.min(resync_at));
                tokio::select! {
                    _ = tokio::time::sleep_until(wake) => {
                        if Instant::now() >= resync_at {
                            break;
                        }
                        next_check = st.run_checks().await?;
                    }
                    ev = events.next() => match ev {
                        Some((i, Ok(e))) => {
                            if let Some(t) = resume.get_mut(hosts[i].name()) {
                                // The engine's own clock, which is what `since` is read against.
                                *t = e.time_nanos.saturating_add(1);
                            }
                            let stopping = st.stopping.entry(hosts[i].name().to_string()).or_default();
                            let gone = match e.action.as_str() {
                                "kill" if !terminating(&e) => continue,
                                "kill" => {
                                    stopping.insert(e.id.clone());
                                    true
                                }
                                "start" => {
                                    stopping.remove(&e.id);
                                    false
                                }
                                action => matches!(action, "die" | "stop" | "destroy"),
                            };
                            if let Err(err) = st.container_changed(&hosts[i], &e.id, gone).await {
                                st.emit("error", hosts[i].name(), "", &e.id, err.to_string());
                            }
                            next_check = st.run_checks().await?;
                        }
                        // A host's event stream failed: the next resync looks at it again.
                        Some((_, Err(_))) => {}
                        None => {
                            tokio::time::sleep_until(resync_at).await;
                            break;
                        }
                    },
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::LABEL_SLOT;

    fn container(name: &str, labels: &[(&str, &str)], ports: &[(u16, u16)], status: &str) -> ContainerSummary {
        ContainerSummary {
            id: format!("id-{name}"),
            name: name.into(),
            image: "registry.local/team/web:1.2".into(),
            state: "running".into(),
            status: status.into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ports: ports.iter().map(|(c, h)| PortMapping::tcp(*c, *h)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn what_a_container_stands_for() {
        let svc = container(
            "api.2.abc",
            &[(LABEL_SERVICE, "api"), (LABEL_SLOT, "2")],
            &[(80, 8080)],
            "Up 3 seconds (healthy)",
        );
        let i = instances_of("df-1", "10.0.0.1", &svc, None);
        assert_eq!(i.len(), 1);
        assert_eq!((i[0].service.as_str(), i[0].id.as_str(), i[0].port), ("api", "api.2.abc", 8080));
        assert_eq!(i[0].metadata["slot"], "2");
        assert_eq!(i[0].health, "passing");
        let draining = container(
            "api.2.abc.draining",
            &[(LABEL_SERVICE, "api"), (LABEL_SLOT, "2")],
            &[(80, 8080)],
            "Up 9 seconds (healthy)",
        );
        assert!(instances_of("df-1", "10.0.0.1", &draining, None).is_empty(), "on its way out");
        let plain = container("web1", &[], &[(80, 8081), (443, 8443)], "Up 1 second (health: starting)");
        let i = instances_of("df-2", "10.0.0.2", &plain, Some(Duration::from_secs(5)));
        assert_eq!(i.iter().map(|x| x.service.as_str()).collect::<Vec<_>>(), ["web-80", "web-443"]);
        assert_eq!(i[0].id, "df-2:web1:8081");
        assert!(i.iter().all(|x| x.health == "critical" && x.ttl == Some(Duration::from_secs(5))));
        assert!(instances_of("df-1", "a", &container("quiet", &[], &[], "Up"), None).is_empty());
        let task = container(
            "blog_web.3.x1y2",
            &[
                ("com.docker.swarm.service.name", "blog_web"),
                ("com.docker.swarm.task.name", "blog_web.3.x1y2"),
                ("com.docker.swarm.task.id", "x1y2"),
            ],
            &[(80, 30001)],
            "Up 2 seconds",
        );
        let i = instances_of("df-3", "10.0.0.3", &task, None);
        assert_eq!((i[0].service.as_str(), i[0].port, i[0].address.as_str()), ("blog_web", 30001, "10.0.0.3"));
        assert_eq!((i[0].metadata["slot"].as_str(), i[0].metadata["swarm_task"].as_str()), ("3", "x1y2"));
    }

    /// A task on the host network has no port the engine reports; it is registered at its host's
    /// address on its lowest port, as a task with published ports is, from its container's label.
    #[test]
    fn a_task_on_the_host_network_is_found_at_its_hosts_port() {
        let mut spec = crate::ServiceSpec::new("agent", "busybox");
        spec.networks = vec!["host".into()];
        spec.ports = vec![
            crate::ServicePort { target: 9100, ..Default::default() },
            crate::ServicePort { target: 9101, protocol: "udp".into(), ..Default::default() },
        ];
        let created = crate::reconcile::task_container(&spec, 2);
        assert!(created.ports.iter().all(|p| p.host_port.is_none()), "the engine would only warn");
        assert_eq!(created.labels[crate::reconcile::LABEL_HOST_PORTS], "9100/tcp,9101/udp");
        let mut c = container("agent.2.abc", &[], &[], "Up 1 second");
        c.labels = created.labels.clone().into_iter().collect();
        for address in ["10.0.0.1", "fd00::1"] {
            let i = instances_of("df-1", address, &c, None);
            assert_eq!(i.len(), 1);
            assert_eq!((i[0].service.as_str(), i[0].port, i[0].address.as_str()), ("agent", 9100, address));
        }
        let mut swarm = container("blog_agent.1.x1", &[("com.docker.swarm.service.name", "blog_agent")], &[], "Up");
        swarm.labels.insert(crate::reconcile::LABEL_HOST_PORTS.into(), "9100/tcp".into());
        assert_eq!(instances_of("df-2", "10.0.0.2", &swarm, None)[0].port, 9100);
        // A container that is no dockfleet task, run on the host network by hand, names its ports alike.
        let agent = container("exporter", &[(crate::reconcile::LABEL_HOST_PORTS, "9100/tcp")], &[], "Up");
        let i = instances_of("df-3", "10.0.0.3", &agent, None);
        assert_eq!((i.len(), i[0].service.as_str(), i[0].port), (1, "web", 9100), "its image's name");
        c.labels.remove(crate::reconcile::LABEL_HOST_PORTS);
        assert!(instances_of("df-1", "10.0.0.1", &c, None).is_empty(), "no port, nothing to reach");
    }

    /// A dual-stack engine lists a published port once per family, maybe with two port numbers
    /// (Docker 20.10 does, and only the IPv6 listener has the lower one): the instance gets the port
    /// of its address's family, whatever order the engine lists them in.
    #[test]
    fn the_port_registered_is_the_one_bound_in_the_addresses_family() {
        let bound = |port: u16, ip: &str| PortMapping { host_ip: Some(ip.into()), ..PortMapping::tcp(80, port) };
        for order in [[bound(32849, "::"), bound(32850, "0.0.0.0")], [bound(32850, "0.0.0.0"), bound(32849, "::")]] {
            let mut c = container("api.1.x", &[(LABEL_SERVICE, "api"), (LABEL_SLOT, "1")], &[], "Up 1 second");
            c.ports = order.to_vec();
            assert_eq!(instances_of("df-1", "10.0.0.1", &c, None)[0].port, 32850, "{order:?}");
            assert_eq!(instances_of("df-1", "fd00::1", &c, None)[0].port, 32849, "{order:?}");
            c.labels.clear();
            let other = instances_of("df-1", "10.0.0.1", &c, None);
            assert_eq!(other.iter().map(|i| i.port).collect::<Vec<_>>(), [32850], "{order:?}");
        }
    }

    #[test]
    fn host_addresses() {
        assert_eq!(host_address("tcp://10.250.0.11:2375"), "10.250.0.11");
        assert_eq!(host_address("tcp://[::1]:2376"), "::1");
        assert_eq!(host_address("unix:///var/run/docker.sock"), "127.0.0.1");
    }

    #[test]
    fn options_are_checked() {
        let bad = RegistratorOptions { on_unreachable: "forget".into(), ..Default::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("on_unreachable"));
        let bad = RegistratorOptions {
            checks: BTreeMap::from([("web".to_string(), HealthCheck { rise: 0, ..Default::default() })]),
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("checks.web.rise"));
    }
}
