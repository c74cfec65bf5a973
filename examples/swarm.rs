//! The README's Swarm example in Rust: the same compose stack deployed with dockfleet's own scheduler
//! on the fleet's plain engines, then on Docker Swarm mode formed from the same engines. Only the line
//! that picks the backend differs; `deploy` is the same code for both.
//!
//! Run: `cargo run -p dockfleet-examples --example swarm -- [INVENTORY]` (default: the testbed's, whose
//! df-1 becomes the swarm's manager and df-2, df-3 its workers; the swarm is dissolved at the end).

use std::sync::Arc;

use dockfleet::{Fleet, ServiceBackend, Stack, StackOptions, Swarm, SwarmOptions};
use futures::TryStreamExt;

// README-SNIPPET-START
/// Up, ps, down: the same calls whatever the backend.
async fn deploy(backend: Arc<dyn ServiceBackend>, stack: &Stack) -> dockfleet::Result<()> {
    let done = backend.stack_up(stack.clone(), StackOptions::default()).try_collect::<Vec<_>>().await?;
    println!("[{}] {}", backend.kind(), done.last().map(|e| e.message.as_str()).unwrap_or_default());
    for service in backend.stack_ps(&stack.name).await? {
        let placed: Vec<String> = service.tasks.iter().map(|t| format!("{}#{}", t.host, t.slot)).collect();
        println!(
            "[{}] {} {}/{} on {}",
            backend.kind(),
            service.name,
            service.running,
            service.desired,
            placed.join(" ")
        );
    }
    let down = backend.stack_down(&stack.name, true).await?;
    println!("[{}] removed {} tasks", backend.kind(), down.containers);
    Ok(())
}

async fn both(fleet: Fleet, stack: &Stack) -> dockfleet::Result<()> {
    deploy(Arc::new(fleet.clone()), stack).await?; // dockfleet's own scheduler on plain engines

    let swarm = Swarm::init(fleet, "df-1", SwarmOptions::default()).await?; // …or Docker Swarm mode
    let outcome = async {
        for host in ["df-2", "df-3"] {
            swarm.join(host, "worker").await?;
        }
        deploy(Arc::new(swarm.clone()), stack).await // the one line that changed
    }
    .await;
    swarm.dissolve().await?; // also when a join failed
    outcome
}
// README-SNIPPET-END

#[tokio::main]
async fn main() -> dockfleet::Result<()> {
    let inventory = std::env::args().nth(1).unwrap_or_else(|| "/var/lib/dockfleet-testbed/fleet.toml".into());
    let compose = concat!(env!("CARGO_MANIFEST_DIR"), "/stack/compose.yaml");
    let fleet = Fleet::from_file(&inventory)?;
    let stack = dockfleet::load_compose("shop", compose.as_ref())?;
    both(fleet, &stack).await
}
