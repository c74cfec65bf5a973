//! The README's discovery example in Rust: deploy a service, let the registrator register its tasks,
//! print the live instances, kill one and watch it leave the registry.
//!
//! Run: `cargo run -p dockfleet-examples --example discovery -- [INVENTORY]` (default: the testbed's).

use std::sync::Arc;
use std::time::Duration;

use dockfleet::{
    Discovery, EmbeddedDiscovery, Fleet, Instance, LookupOptions, PlanOptions, RegistratorOptions, ServicePort,
    ServiceSpec,
};
use futures::StreamExt;

#[tokio::main]
async fn main() -> dockfleet::Result<()> {
    let inventory = std::env::args().nth(1).unwrap_or_else(|| "/var/lib/dockfleet-testbed/fleet.toml".into());
    let fleet = Fleet::from_file(&inventory)?;
    let mut spec = ServiceSpec::new("hello", "dockfleet/busybox:latest");
    spec.command = ["httpd", "-f", "-p", "80", "-h", "/www"].map(String::from).to_vec();
    spec.replicas = 3;
    spec.stop_grace_period = Duration::from_secs(1);
    spec.ports = vec![ServicePort { target: 80, published: Some(0), protocol: "tcp".into(), mode: None }];
    // README-SNIPPET-START
    dockfleet::deploy(&fleet, &spec, &PlanOptions::default()).await?;
    let registry = EmbeddedDiscovery::new();
    let mut registrator =
        dockfleet::registrator(fleet.clone(), Arc::new(registry.clone()), RegistratorOptions::default());
    tokio::spawn(async move { while registrator.next().await.is_some() {} });
    // Anything can register, not only containers: a database outside the fleet, say.
    registry.register(&Instance::new("legacy-db", "db-1", "10.250.0.11", 5432)).await?;
    let db = registry.lookup("legacy-db", &LookupOptions::default()).await?;
    println!("legacy-db at {}:{}", db[0].address, db[0].port);

    let mut watch = registry.watch("hello");
    let mut live = Vec::new();
    while live.len() < 3 {
        let event = watch.next().await.expect("the watch runs")?;
        println!("{} {:?}", event.kind, event.instances.iter().map(|i| &i.id).collect::<Vec<_>>());
        live = registry.lookup("hello", &LookupOptions::default()).await?;
    }
    for i in &live {
        println!("hello at {}:{} (slot {} on {})", i.address, i.port, i.metadata["slot"], i.metadata["host"]);
    }
    let victim = &live[0];
    fleet.host(&victim.metadata["host"])?.kill_container(&victim.metadata["container"], None).await?;
    loop {
        let event = watch.next().await.expect("the watch runs")?;
        if event.kind == "remove" {
            println!("removed {} (killed on {})", event.instances[0].id, victim.metadata["host"]);
            break;
        }
    }
    // README-SNIPPET-END
    dockfleet::remove_service(&fleet, "hello").await?;
    Ok(())
}
