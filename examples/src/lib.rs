//! Runnable examples live beside this crate; see `cargo run -p dockfleet-examples --example demo`.
