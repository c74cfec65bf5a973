//! The README's proxy example in Rust: deploy a service, register its tasks, put the built-in proxy in
//! front, see different replicas answer, render the same routes as an nginx configuration, kill a
//! replica and keep answering.
//!
//! Run: `cargo run -p dockfleet-examples --example proxy -- [INVENTORY]` (default: the testbed's).

use std::sync::Arc;
use std::time::Duration;

use dockfleet::{
    Discovery, EmbeddedDiscovery, Fleet, LookupOptions, PlanOptions, Proxy, ProxyOptions, RegistratorOptions,
    RenderOptions, Route, ServicePort, ServiceSpec,
};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One GET through the proxy; the body (a replica's host name).
async fn get(address: &str) -> std::io::Result<String> {
    let mut s = tokio::net::TcpStream::connect(address).await?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out.split_once("\r\n\r\n").map(|(_, body)| body.trim().to_string()).unwrap_or(out))
}

#[tokio::main]
async fn main() -> dockfleet::Result<()> {
    let inventory = std::env::args().nth(1).unwrap_or_else(|| "/var/lib/dockfleet-testbed/fleet.toml".into());
    let fleet = Fleet::from_file(&inventory)?;
    let mut spec = ServiceSpec::new("whoami", "dockfleet/busybox:latest");
    spec.command = ["sh", "-c", "hostname > /www/index.html; exec httpd -f -p 80 -h /www"].map(String::from).to_vec();
    spec.replicas = 3;
    spec.stop_grace_period = Duration::from_secs(1);
    spec.ports = vec![ServicePort { target: 80, published: Some(0), protocol: "tcp".into(), mode: None }];
    // README-SNIPPET-START
    dockfleet::deploy(&fleet, &spec, &PlanOptions::default()).await?;
    let registry: Arc<dyn Discovery> = Arc::new(EmbeddedDiscovery::new());
    let mut registrator = dockfleet::registrator(fleet.clone(), registry.clone(), RegistratorOptions::default());
    tokio::spawn(async move { while registrator.next().await.is_some() {} });

    let routes = vec![Route::new("whoami")];
    let proxy = Proxy::start(registry.clone(), ProxyOptions { routes: routes.clone(), ..Default::default() }).await?;
    proxy.wait_ready(Duration::from_secs(30)).await?;
    while registry.lookup("whoami", &LookupOptions::default()).await?.len() < 3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..6 {
        println!("answered by {}", get(&proxy.address()).await.map_err(|e| dockfleet::Error::Internal(e.to_string()))?);
    }
    // The same routes as an nginx configuration (sync_config keeps one up to date, checked and reloaded).
    let instances = registry.lookup("whoami", &LookupOptions::default()).await?;
    let nginx = dockfleet::render_config(&RenderOptions { routes, ..Default::default() }, &instances)?;
    println!("{}", nginx.lines().filter(|l| l.contains("server 10.")).collect::<Vec<_>>().join("\n"));

    let victim = &instances[0];
    fleet.host(&victim.metadata["host"])?.kill_container(&victim.metadata["container"], None).await?;
    let mut answered = 0;
    for _ in 0..20 {
        if get(&proxy.address()).await.is_ok_and(|b| !b.is_empty() && !b.contains("dockfleet proxy")) {
            answered += 1;
        }
    }
    println!("after killing one replica: {answered} of 20 requests answered");
    for s in proxy.stats() {
        println!(
            "{} {}: {} requests, {} errors",
            s.endpoint.id,
            if s.draining { "(draining)" } else { "" },
            s.requests,
            s.errors
        );
    }
    proxy.shutdown(Duration::from_secs(5)).await;
    // README-SNIPPET-END
    dockfleet::remove_service(&fleet, "whoami").await?;
    Ok(())
}
