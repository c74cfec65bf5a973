//! Engine-call benchmark, Rust side: raw bollard (the baseline) and dockfleet's `DockerHost`, as a
//! worker that `benches/engine_calls_report.py` drives in lockstep with the Python and Node workers.
//! dockfleet is measured on a current-thread runtime (every call's I/O on the calling thread) and as
//! `#[tokio::main]` runs code by default (the calls on the main thread, the connections' tasks on a
//! multi-thread runtime's workers).
//!
//! Each `NAME=MICROSECONDS` argument adds a client `dockfleet-rust + NAME`: dockfleet (current-thread)
//! spinning that long before every call, what a binding would take whose only cost per call is its
//! event loop's own (the report passes asyncio's and Node's floors, measured in the same run). With
//! `NAME=MICROSECONDS/after`, it spins right after the request is sent instead, while the engine works
//! (`benches/turnaround_report.py` measures what both cost).
//!
//! Protocol: prints `{"clients": [...]}` once connected, then reads lines `CLIENT<TAB>OP<TAB>CALLS`
//! (OP is `ping`, `list` or `inspect`) and answers each with one JSON line after making CALLS
//! sequential calls: `{"client", "op", "calls", "seconds"}`. Ends at end of input.
//!
//! Usage: engine-calls ADDRESS CONTAINER_ID [NAME=MICROSECONDS[/after] ...]

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use dockfleet::bollard::{self, Docker};
use dockfleet::{DockerHost, Host, HostConfig, ListContainersOptions};
use tokio::runtime::Runtime;

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

const CURRENT: &str = "dockfleet-rust";
const MULTI: &str = "dockfleet-rust (multi-thread)";

fn main() -> Res {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: engine-calls ADDRESS CONTAINER_ID [NAME=MICROSECONDS[/after] ...]";
    let address = args.get(1).ok_or(usage)?.clone();
    let id = args.get(2).ok_or(usage)?.clone();
    let mut pauses = Vec::new();
    for a in args.iter().skip(3) {
        let (name, us) = a.split_once('=').ok_or("a pause is NAME=MICROSECONDS")?;
        let (us, after) = match us.strip_suffix("/after") {
            Some(us) => (us, true),
            None => (us, false),
        };
        pauses.push((format!("{CURRENT} + {name}"), Duration::from_secs_f64(us.parse::<f64>()? / 1e6), after));
    }

    let current = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let multi = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let raw = current.block_on(async {
        Docker::connect_with_http(&address, 60, bollard::API_DEFAULT_VERSION)?.negotiate_version().await
    })?;
    let config = HostConfig { insecure: true, ..HostConfig::new("bench", address.clone()) };
    let on_current = current.block_on(DockerHost::connect(config.clone()))?;
    let on_multi = multi.block_on(DockerHost::connect(config))?;

    let mut clients = vec!["bollard".to_string(), CURRENT.to_string(), MULTI.to_string()];
    clients.extend(pauses.iter().map(|(name, _, _)| name.clone()));
    println!("{{\"clients\":[{}]}}", clients.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(","));
    std::io::stdout().flush()?;

    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let mut parts = line.split('\t');
        let (client, op, calls) = match (parts.next(), parts.next(), parts.next()) {
            (Some(c), Some(o), Some(n)) => (c, o, n.parse::<usize>()?),
            _ => return Err(format!("bad request {line:?}").into()),
        };
        let seconds = if client == "bollard" {
            timed(&current, calls, || raw_call(&raw, op, &id))?
        } else if client == MULTI {
            timed(&multi, calls, || call(&on_multi, op, &id, Duration::ZERO))?
        } else {
            let pause = pauses.iter().find(|(name, _, _)| name == client).map(|(_, d, after)| (*d, *after));
            let (pause, after) = match (client == CURRENT, pause) {
                (true, _) => (Duration::ZERO, false),
                (false, Some(p)) => p,
                (false, None) => return Err(format!("no client {client:?}").into()),
            };
            if after {
                timed(&current, calls, || async {
                    // Polled after the call's first poll, which hands the request to the connection
                    // task; the yield lets that task write it before the spin.
                    let spin_after = async {
                        tokio::task::yield_now().await;
                        spin(pause);
                        Ok(())
                    };
                    tokio::try_join!(call(&on_current, op, &id, Duration::ZERO), spin_after).map(drop)
                })?
            } else {
                timed(&current, calls, || call(&on_current, op, &id, pause))?
            }
        };
        println!(r#"{{"client":{client:?},"op":"{op}","calls":{calls},"seconds":{seconds}}}"#);
        std::io::stdout().flush()?;
    }
    Ok(())
}

/// Seconds taken by `calls` sequential calls made by `call` on `rt`.
fn timed<F, Fut>(rt: &Runtime, calls: usize, call: F) -> Res<f64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Res>,
{
    rt.block_on(async {
        let t = Instant::now();
        for _ in 0..calls {
            call().await?;
        }
        Ok(t.elapsed().as_secs_f64())
    })
}

/// One dockfleet call, after spinning for `pause`.
async fn call(host: &DockerHost, op: &str, id: &str, pause: Duration) -> Res {
    spin(pause);
    match op {
        "ping" => drop(host.ping().await?),
        "list" => drop(host.list_containers(&ListContainersOptions::default()).await?),
        "inspect" => drop(host.inspect_container(id).await?),
        _ => return Err(format!("no op {op:?}").into()),
    }
    Ok(())
}

/// One raw bollard call.
async fn raw_call(raw: &Docker, op: &str, id: &str) -> Res {
    match op {
        "ping" => drop(raw.ping().await?),
        "list" => drop(raw.list_containers(None::<bollard::query_parameters::ListContainersOptions>).await?),
        "inspect" => drop(raw.inspect_container(id, None::<bollard::query_parameters::InspectContainerOptions>).await?),
        _ => return Err(format!("no op {op:?}").into()),
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
