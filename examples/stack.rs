//! The README's stack example in Rust: deploy a compose stack across the fleet, show where its tasks
//! run, roll an update of the web tier, and take the stack down.
//!
//! Run: `cargo run -p dockfleet-examples --example stack -- [INVENTORY]` (default: the testbed's).

use dockfleet::{Fleet, RolloutOptions, StackOptions};
use futures::TryStreamExt;

#[tokio::main]
async fn main() -> dockfleet::Result<()> {
    let inventory = std::env::args().nth(1).unwrap_or_else(|| "/var/lib/dockfleet-testbed/fleet.toml".into());
    let compose = concat!(env!("CARGO_MANIFEST_DIR"), "/stack/compose.yaml");
    // README-SNIPPET-START
    let fleet = Fleet::from_file(&inventory)?;
    let stack = dockfleet::load_compose("shop", compose.as_ref())?;
    let mut events = dockfleet::stack_up(fleet.clone(), stack.clone(), StackOptions::default());
    while let Some(e) = events.try_next().await? {
        if e.phase == "stack" || e.kind == "started" {
            println!("{}: {} {}", e.service, e.kind, e.message);
        }
    }
    for service in dockfleet::stack_ps(&fleet, "shop").await? {
        let placed: Vec<String> = service.tasks.iter().map(|t| format!("{}#{}", t.host, t.slot)).collect();
        println!("{} {}/{} on {}", service.name, service.running, service.desired, placed.join(" "));
    }

    let mut web = stack.services.iter().find(|s| s.name == "web").expect("web").spec.clone();
    web.env.insert("VERSION".into(), "2".into());
    let mut rollout = dockfleet::rollout(fleet.clone(), web, RolloutOptions::default());
    while let Some(e) = rollout.try_next().await? {
        if e.kind.starts_with("task-updated") || e.kind.starts_with("task-failed") || e.kind == "completed" {
            println!("{} {}/{} {} {}", e.kind, e.done, e.total, e.host, e.message);
        }
    }
    let down = dockfleet::stack_down(&fleet, "shop", true).await?;
    println!("removed {} containers", down.containers);
    // README-SNIPPET-END
    Ok(())
}
