//! Bad input and faults against the real testbed: each gives a clear error with its code and leaves
//! nothing behind. One test stops and restarts an engine, so this binary's tests run one at a time.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use dockfleet::*;
use futures::TryStreamExt;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn testbed_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/testbed.sh")
}

fn testbed(args: &[&str]) {
    let st = Command::new("bash").arg(testbed_script()).args(args).status().unwrap();
    assert!(st.success(), "testbed {args:?} failed");
}

#[tokio::test]
async fn engine_stopped_then_back() {
    let _g = SERIAL.lock().await;
    let h = host("df-3");
    h.ping().await.unwrap();
    struct Restart;
    impl Drop for Restart {
        fn drop(&mut self) {
            testbed(&["start-engine", "df-3"]);
        }
    }
    testbed(&["stop-engine", "df-3"]);
    let restart = Restart;
    {
        let e = h.ping().await.unwrap_err();
        assert_eq!(e.code(), "engine_unreachable", "{e}");
        assert!(e.to_string().contains("df-3"), "names the host: {e}");
        assert!(!e.cause_chain().is_empty(), "keeps the cause");
        let e = h.list_containers(&ListContainersOptions::default()).await.unwrap_err();
        assert_eq!(e.code(), "engine_unreachable");
        // A fresh client to a stopped engine fails the same way on first contact.
        let fresh = DockerHost::new(HostConfig { insecure: true, ..HostConfig::new("df-3", "tcp://10.250.0.13:2375") })
            .unwrap();
        assert_eq!(fresh.info().await.unwrap_err().code(), "engine_unreachable");
    }
    drop(restart);
    // The same host object works again once the engine is back.
    h.ping().await.unwrap();
}

fn tls_host(ca: &str, cert_file: &str, key: &str, address: &str) -> Result<DockerHost> {
    DockerHost::new(HostConfig {
        tls: Some(TlsConfig { ca: cert(ca), cert: cert(cert_file), key: cert(key) }),
        connect_timeout: Duration::from_secs(3),
        ..HostConfig::new("tls-test", address)
    })
}

#[tokio::test]
async fn tls_failures_are_tls_errors() {
    let _g = SERIAL.lock().await;
    // The good certificates work.
    tls_host("ca.pem", "client-cert.pem", "client-key.pem", "tcp://10.250.0.60:2376").unwrap().ping().await.unwrap();

    // The engine's certificate is not signed by the CA we trust.
    let e = tls_host("other-ca.pem", "client-cert.pem", "client-key.pem", "tcp://10.250.0.60:2376")
        .unwrap()
        .ping()
        .await
        .unwrap_err();
    assert_eq!(e.code(), "tls", "{e}");
    assert!(e.to_string().contains("not signed by the configured CA"), "{e}");

    // Our client certificate is signed by a CA the engine does not trust.
    let e = tls_host("ca.pem", "other-client-cert.pem", "other-client-key.pem", "tcp://10.250.0.60:2376")
        .unwrap()
        .ping()
        .await
        .unwrap_err();
    assert_eq!(e.code(), "tls", "{e}");

    // Plain TCP against the TLS port.
    let plain =
        DockerHost::new(HostConfig { insecure: true, ..HostConfig::new("plain", "tcp://10.250.0.60:2376") }).unwrap();
    let e = plain.ping().await.unwrap_err();
    assert_eq!(e.code(), "tls", "{e}");
    assert!(e.to_string().contains("requires TLS"), "{e}");

    // TLS against a plain TCP port.
    let e = tls_host("ca.pem", "client-cert.pem", "client-key.pem", "tcp://10.250.0.11:2375")
        .unwrap()
        .ping()
        .await
        .unwrap_err();
    assert_eq!(e.code(), "tls", "{e}");

    // A key file that is not a key: refused before any connection, naming the field.
    let e = tls_host("ca.pem", "client-cert.pem", "client-cert.pem", "tcp://10.250.0.60:2376").unwrap_err();
    assert_eq!(e.code(), "invalid_argument");
    assert!(e.to_string().contains("tls.key"), "{e}");
}

#[tokio::test]
async fn malformed_addresses_and_insecure_tcp_are_refused_up_front() {
    for (addr, code) in [
        ("10.250.0.11:2375", "invalid_address"),
        ("tcp://10.250.0.11:notaport", "invalid_address"),
        ("ftp://10.250.0.11", "invalid_address"),
        ("tcp://10.250.0.11:2375", "insecure"),
    ] {
        let e = DockerHost::new(HostConfig::new("bad", addr)).unwrap_err();
        assert_eq!(e.code(), code, "{addr}: {e}");
        assert!(e.to_string().contains("address"), "{e}");
    }
}

#[tokio::test]
async fn connect_timeout_is_enforced() {
    // An address on the testbed bridge that no namespace holds: ARP never resolves, so without a
    // limit the first call would hang for seconds.
    let h = DockerHost::new(HostConfig {
        insecure: true,
        connect_timeout: Duration::from_millis(300),
        ..HostConfig::new("void", "tcp://10.250.0.99:2375")
    })
    .unwrap();
    let start = Instant::now();
    let e = h.ping().await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
    assert!(e.code() == "timeout" || e.code() == "engine_unreachable", "{e}");
}

#[tokio::test]
async fn missing_image_and_bad_specs_create_nothing() {
    let h = host("df-1");
    let tag = unique("bad");
    let mut spec = ContainerSpec::new("dockfleet/does-not-exist:never");
    spec.labels.insert("dockfleet.test".into(), tag.clone());
    let e = h.create_container(&spec).await.unwrap_err();
    assert_eq!(e.code(), "not_found", "{e}");
    assert!(e.to_string().contains("dockfleet/does-not-exist:never"), "{e}");

    type Mutation = Box<dyn Fn(&mut ContainerSpec)>;
    let bad_specs: Vec<(&str, Mutation)> = vec![
        ("image", Box::new(|s| s.image = String::new())),
        ("name", Box::new(|s| s.name = Some("-bad name".into()))),
        ("ports[0].container_port", Box::new(|s| s.ports = vec![PortMapping::tcp(0, 80)])),
        (
            "ports[0].protocol",
            Box::new(|s| s.ports = vec![PortMapping { protocol: "icmp".into(), ..PortMapping::tcp(80, 80) }]),
        ),
        (
            "mounts[0].target",
            Box::new(|s| s.mounts = vec![Mount { source: "v".into(), target: "rel".into(), read_only: false }]),
        ),
        ("memory_bytes", Box::new(|s| s.memory_bytes = Some(1024))),
        ("cpus", Box::new(|s| s.cpus = Some(-1.0))),
        (
            "restart_policy.name",
            Box::new(|s| s.restart_policy = Some(RestartPolicy { name: "sometimes".into(), max_retries: None })),
        ),
        (
            "healthcheck.test",
            Box::new(|s| {
                s.healthcheck = Some(Healthcheck {
                    test: vec!["CMD".into()],
                    interval: None,
                    timeout: None,
                    retries: None,
                    start_period: None,
                })
            }),
        ),
    ];
    for (field, mutate) in bad_specs {
        let mut s = ContainerSpec::new(IMAGE);
        s.labels.insert("dockfleet.test".into(), tag.clone());
        mutate(&mut s);
        let e = h.create_container(&s).await.unwrap_err();
        assert_eq!(e.code(), "invalid_argument", "{field}: {e}");
        assert!(e.to_string().contains(field), "{e} should name {field}");
    }
    assert!(tagged(&h, &tag).await.is_empty(), "nothing was created");

    // Name conflicts are conflicts, and the first container is untouched.
    let mut s = ContainerSpec::new(IMAGE);
    s.name = Some(tag.clone());
    s.labels.insert("dockfleet.test".into(), tag.clone());
    let id = h.create_container(&s).await.unwrap();
    assert_eq!(h.create_container(&s).await.unwrap_err().code(), "conflict");
    assert_eq!(tagged(&h, &tag).await.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), vec![id]);
    cleanup(&h, &tag).await;

    // Copying a missing image fails before anything is sent.
    let e = copy_image(h.clone(), host("df-2"), "dockfleet/does-not-exist:never")
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(e.code(), "not_found");
}

#[tokio::test]
async fn a_panic_becomes_an_internal_error() {
    let e = catch_panic(dockfleet::error::panic_for_tests("test-only panic".into())).await.unwrap_err();
    assert_eq!(e.code(), "internal");
    assert!(e.to_string().contains("test-only panic"));
}
