//! Shared helpers for the integration tests: the testbed's fleet (started by `scripts/testbed.sh up`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use dockfleet::{Fleet, Host, ListContainersOptions};

pub const IMAGE: &str = "dockfleet/busybox:latest";
pub const IMAGE_HEALTH: &str = "dockfleet/busybox:health";

fn testbed_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/testbed.sh")
}

/// Runs a testbed command (`stop-engine df-3`, `partition df-2`, …), asserting it worked.
pub fn testbed(args: &[&str]) {
    let st = std::process::Command::new("bash").arg(testbed_script()).args(args).status().unwrap();
    assert!(st.success(), "testbed {args:?} failed");
}

/// Runs a testbed command when dropped (restarting or healing a host even when a test fails).
pub struct Undo(pub &'static [&'static str]);

impl Drop for Undo {
    fn drop(&mut self) {
        testbed(self.0);
    }
}

pub fn testbed_dir() -> PathBuf {
    PathBuf::from(std::env::var("DOCKFLEET_TESTBED").unwrap_or_else(|_| "/var/lib/dockfleet-testbed".into()))
}

/// The testbed's fleet. Panics (never skips) when the testbed is not up: these tests need real engines.
pub fn fleet() -> Fleet {
    let path = testbed_dir().join("fleet.toml");
    assert!(path.exists(), "{} missing: run `scripts/testbed.sh up` first", path.display());
    Fleet::from_file(&path).expect("testbed inventory loads")
}

/// The three plain engines (service tests leave df-tls alone).
pub fn plain_fleet() -> Fleet {
    let all = fleet();
    Fleet::from_hosts(all.hosts().iter().filter(|h| h.name() != "df-tls").cloned().collect()).unwrap()
}

pub fn host(name: &str) -> Arc<dyn Host> {
    fleet().host(name).unwrap()
}

pub fn cert(name: &str) -> PathBuf {
    testbed_dir().join("certs").join(name)
}

/// A label value unique to this test run and call, so parallel tests never see each other's containers.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Containers carrying `dockfleet.test=<tag>` on `host`, running or not.
pub async fn tagged(host: &Arc<dyn Host>, tag: &str) -> Vec<dockfleet::ContainerSummary> {
    host.list_containers(&ListContainersOptions {
        all: true,
        labels: vec![format!("dockfleet.test={tag}")],
        name: None,
    })
    .await
    .unwrap()
}

/// Removes every container tagged `tag` on `host`.
pub async fn cleanup(host: &Arc<dyn Host>, tag: &str) {
    for c in tagged(host, tag).await {
        let _ = host.remove_container(&c.id, true, true).await;
    }
}

/// A service of `replicas` busybox httpd tasks, each publishing port 80 on a port its engine picks.
pub fn web_service(prefix: &str, replicas: u32) -> dockfleet::ServiceSpec {
    let mut spec = dockfleet::ServiceSpec::new(unique(prefix).replace('-', "_"), IMAGE);
    spec.command = ["httpd", "-f", "-p", "80", "-h", "/www"].map(String::from).to_vec();
    spec.replicas = replicas;
    spec.stop_grace_period = std::time::Duration::from_secs(1);
    spec.ports = vec![dockfleet::ServicePort { target: 80, published: Some(0), protocol: "tcp".into(), mode: None }];
    spec
}

/// Waits (up to 30 s) until the instances of `service` (passing ones, or all with `all`) satisfy `ok`.
pub async fn wait_lookup(
    d: &dyn dockfleet::Discovery,
    service: &str,
    all: bool,
    ok: impl Fn(&[dockfleet::Instance]) -> bool,
) -> Vec<dockfleet::Instance> {
    let opts = dockfleet::LookupOptions { include_unhealthy: all, ..Default::default() };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let v = d.lookup(service, &opts).await.unwrap();
        if ok(&v) {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "{service}: condition never held; last {v:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// One HTTP/1.0 GET of `/` at `addr` (`ip:port`); the whole answer, head and body.
///
/// A task counts as started once its container runs, which can be a moment before its server listens (and a
/// published port's proxy then resets the connection), so this tries again for up to 10 s until an HTTP
/// answer arrives.
pub async fn http_get(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let attempt = async {
            let mut s = tokio::net::TcpStream::connect(addr).await?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").await?;
            let mut out = String::new();
            s.read_to_string(&mut out).await?;
            Ok::<_, std::io::Error>(out)
        };
        let last = match attempt.await {
            Ok(out) if out.starts_with("HTTP/1") => return out,
            other => other,
        };
        assert!(std::time::Instant::now() < deadline, "no HTTP answer from {addr}; last: {last:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The events of a `stack_up` (or rollout) stream that must fail, and its error; panics, with the
/// events, when the stream ends well.
pub async fn events_until_error<T: std::fmt::Debug>(
    mut stream: dockfleet::ResultStream<T>,
    what: &str,
) -> (Vec<T>, dockfleet::Error) {
    use futures::TryStreamExt;
    let mut events = Vec::new();
    loop {
        match stream.try_next().await {
            Ok(Some(e)) => events.push(e),
            Ok(None) => panic!("{what}: {events:?}"),
            Err(e) => return (events, e),
        }
    }
}

/// The testbed's registry (`scripts/testbed.sh up` starts it): its address and credentials, from the
/// `env` file the script writes. Panics (never skips) when it is missing.
pub fn registry() -> dockfleet::RegistryAuth {
    let path = testbed_dir().join("registry/env");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}: run `scripts/testbed.sh up` first", path.display()));
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} in {}", path.display()))
    };
    dockfleet::RegistryAuth {
        server: get("REGISTRY").into(),
        username: get("REGISTRY_USER").into(),
        password: get("REGISTRY_PASSWORD").into(),
        identity_token: None,
    }
}
