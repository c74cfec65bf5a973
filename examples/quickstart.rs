//! The README's Rust snippet: connect to one engine, look at it, run a container, read its output.
//! Run: `cargo run -p dockfleet-examples --example quickstart` (uses the testbed's df-1 by default,
//! or DOCKFLEET_EXAMPLE_HOST=tcp://…).

use dockfleet::{ContainerSpec, DockerHost, Host, HostConfig, LogOptions};
use futures::TryStreamExt;

#[tokio::main]
async fn main() -> dockfleet::Result<()> {
    let address = std::env::var("DOCKFLEET_EXAMPLE_HOST").unwrap_or_else(|_| "tcp://10.250.0.11:2375".into());
    // README-SNIPPET-START
    let host = DockerHost::connect(HostConfig { insecure: true, ..HostConfig::new("df-1", address) }).await?;
    let info = host.info().await?;
    println!("{} runs Docker {} with {} CPUs", host.name(), info.engine_version, info.cpus);

    let mut spec = ContainerSpec::new("dockfleet/busybox:latest");
    spec.command = vec!["echo".into(), "hello from dockfleet".into()];
    let id = host.create_container(&spec).await?;
    host.start_container(&id).await?;
    let code = host.wait_container(&id).await?;
    let logs: Vec<_> = host.logs(&id, &LogOptions::default()).try_collect().await?;
    println!("exit {code}: {}", logs.iter().map(|l| l.message.as_str()).collect::<String>().trim());
    host.remove_container(&id, true, true).await?;
    // README-SNIPPET-END
    Ok(())
}
