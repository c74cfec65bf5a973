//! Engine-call benchmark, Rust side: raw bollard (the baseline) and dockfleet's `DockerHost`, each doing
//! N sequential `ping`, `list containers` and `inspect` calls against one engine, for several rounds.
//! dockfleet is measured twice: on a current-thread runtime (every call's I/O on the calling thread) and
//! as `#[tokio::main]` runs code by default (the calls on the main thread, the connections' tasks on a
//! multi-thread runtime's workers). Prints one JSON line per (client, op, round). Driven by `benches/run_engine_calls.sh`, which runs the
//! Python, Node and CLI clients in the same run and writes BENCHMARKS.md.
//!
//! Each `NAME=MICROSECONDS` argument adds a run of dockfleet (current-thread) that spins for that long
//! before every call, reported as `dockfleet-rust + NAME`: what a binding would take whose only cost per
//! call is its event loop's own (the report passes asyncio's and Node's floors, measured in the same run).
//!
//! Usage: engine-calls ADDRESS CONTAINER_ID [CALLS] [ROUNDS] [WARM_UP] [NAME=MICROSECONDS ...]

use std::time::{Duration, Instant};

use dockfleet::bollard::{self, Docker};
use dockfleet::{DockerHost, Host, HostConfig, ListContainersOptions};

fn report(client: &str, op: &str, round: usize, calls: usize, seconds: f64) {
    println!(r#"{{"client":"{client}","op":"{op}","round":{round},"calls":{calls},"seconds":{seconds}}}"#);
}

type Res = Result<(), Box<dyn std::error::Error>>;

fn main() -> Res {
    let current = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    current.block_on(bench(true))?;
    let multi = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    multi.block_on(bench(false))
}

/// Every round; raw bollard only with `with_raw` (on the current-thread runtime).
async fn bench(with_raw: bool) -> Res {
    let me = if with_raw { "dockfleet-rust" } else { "dockfleet-rust (multi-thread)" };
    let args: Vec<String> = std::env::args().collect();
    let address = args.get(1).ok_or("usage: engine-calls ADDRESS CONTAINER_ID [CALLS] [ROUNDS] [WARM_UP]")?;
    let id = args.get(2).ok_or("missing CONTAINER_ID")?;
    let calls: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let rounds: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(5);
    // Unreported calls of each operation per client before the rounds (the Python and Node sides too).
    let warm_up: usize = args.get(5).map(|s| s.parse()).transpose()?.unwrap_or(100);
    let mut pauses = Vec::new();
    for a in args.iter().skip(6) {
        let (name, us) = a.split_once('=').ok_or("a pause is NAME=MICROSECONDS")?;
        pauses.push((format!("dockfleet-rust + {name}"), Duration::from_secs_f64(us.parse::<f64>()? / 1e6)));
    }

    let raw = Docker::connect_with_http(address, 60, bollard::API_DEFAULT_VERSION)?.negotiate_version().await?;
    let host = DockerHost::connect(HostConfig { insecure: true, ..HostConfig::new("bench", address.clone()) }).await?;
    let list = ListContainersOptions::default();

    // Warm-up, not reported: every client's first calls in a process (connections, lazy set-up, cold
    // caches) would otherwise land on whichever is measured first.
    for _ in 0..warm_up {
        if with_raw {
            raw.ping().await?;
            raw.list_containers(None::<bollard::query_parameters::ListContainersOptions>).await?;
            raw.inspect_container(id, None::<bollard::query_parameters::InspectContainerOptions>).await?;
        }
        host.ping().await?;
        host.list_containers(&list).await?;
        host.inspect_container(id).await?;
    }

    for round in 0..rounds {
        if with_raw {
            let t = Instant::now();
            for _ in 0..calls {
                raw.ping().await?;
            }
            report("bollard", "ping", round, calls, t.elapsed().as_secs_f64());
        }
        let t = Instant::now();
        for _ in 0..calls {
            host.ping().await?;
        }
        report(me, "ping", round, calls, t.elapsed().as_secs_f64());

        if with_raw {
            let t = Instant::now();
            for _ in 0..calls {
                raw.list_containers(None::<bollard::query_parameters::ListContainersOptions>).await?;
            }
            report("bollard", "list", round, calls, t.elapsed().as_secs_f64());
        }
        let t = Instant::now();
        for _ in 0..calls {
            host.list_containers(&list).await?;
        }
        report(me, "list", round, calls, t.elapsed().as_secs_f64());

        if with_raw {
            let t = Instant::now();
            for _ in 0..calls {
                raw.inspect_container(id, None::<bollard::query_parameters::InspectContainerOptions>).await?;
            }
            report("bollard", "inspect", round, calls, t.elapsed().as_secs_f64());
        }
        let t = Instant::now();
        for _ in 0..calls {
            host.inspect_container(id).await?;
        }
        report(me, "inspect", round, calls, t.elapsed().as_secs_f64());

        for (client, pause) in pauses.iter().filter(|_| with_raw) {
            let t = Instant::now();
            for _ in 0..calls {
                spin(*pause);
                host.ping().await?;
            }
            report(client, "ping", round, calls, t.elapsed().as_secs_f64());
            let t = Instant::now();
            for _ in 0..calls {
                spin(*pause);
                host.list_containers(&list).await?;
            }
            report(client, "list", round, calls, t.elapsed().as_secs_f64());
            let t = Instant::now();
            for _ in 0..calls {
                spin(*pause);
                host.inspect_container(id).await?;
            }
            report(client, "inspect", round, calls, t.elapsed().as_secs_f64());
        }
    }
    Ok(())
}

/// Keeps the thread busy for `d`, as an event loop's own work between two calls does.
fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}
