//! Proxy benchmark helpers, driven by `benches/run_proxy.sh` (which runs wrk, HAProxy and nginx):
//!
//! - `proxy backend PORT…`: the HTTP backends every proxy forwards to (one thread, keep-alive, a
//!   64-byte body naming the port).
//! - `proxy serve http|tcp LISTEN PORT…`: the dockfleet proxy on one thread, with the backends as
//!   the passing instances of a service in an embedded registry. Prints `ready` when it listens.
//! - `proxy propagation ROUNDS`: how long a discovery change takes to reach routing under load:
//!   an instance turning healthy → its first response; an instance removed → the last request it got.
//!   Prints a markdown table.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dockfleet::{Discovery, EmbeddedDiscovery, Instance, Proxy, ProxyOptions, Route};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn one_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Serves `GET` with a 64-byte body naming the port, until the process ends.
async fn serve_backend(listener: TcpListener) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let body = Bytes::from(format!("{:<63}\n", format!("backend {port}")));
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |_req| {
                let body = body.clone();
                async move { Ok::<_, Infallible>(hyper::Response::new(Full::new(body))) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

fn backend(ports: &[u16]) -> Res<()> {
    one_thread().block_on(async {
        for p in ports {
            let l = TcpListener::bind(("127.0.0.1", *p)).await?;
            tokio::spawn(serve_backend(l));
        }
        println!("ready");
        futures::future::pending::<()>().await;
        Ok(())
    })
}

fn serve(protocol: &str, listen: &str, ports: &[u16]) -> Res<()> {
    one_thread().block_on(async {
        let d = EmbeddedDiscovery::new();
        for p in ports {
            d.register(&Instance::new("bench", format!("b{p}"), "127.0.0.1", *p)).await?;
        }
        let options = ProxyOptions {
            listen: listen.into(),
            protocol: protocol.into(),
            routes: vec![Route::new("bench")],
            ..Default::default()
        };
        let proxy = Proxy::start(Arc::new(d), options).await?;
        proxy.wait_ready(Duration::from_secs(5)).await?;
        println!("ready");
        futures::future::pending::<()>().await;
        Ok(())
    })
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Under a steady load of 8 clients through the proxy, times how long discovery changes take to
/// reach routing.
fn propagation(rounds: usize) -> Res<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let d = EmbeddedDiscovery::new();
        let mut ports = Vec::new();
        for _ in 0..3 {
            let l = TcpListener::bind("127.0.0.1:0").await?;
            ports.push(l.local_addr()?.port());
            tokio::spawn(serve_backend(l));
        }
        d.register(&Instance::new("bench", "base", "127.0.0.1", ports[0])).await?;
        let options = ProxyOptions { routes: vec![Route::new("bench")], ..Default::default() };
        let proxy = Proxy::start(Arc::new(d.clone()), options).await?;
        proxy.wait_ready(Duration::from_secs(5)).await?;
        let url: hyper::Uri = format!("http://{}/", proxy.address()).parse()?;
        // Each response names its backend's port; clients record when each port last and first answered.
        let first_seen: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
        let last_seen: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
        let epoch = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for _ in 0..8 {
            let (url, first_seen, last_seen, stop, ports) =
                (url.clone(), first_seen.clone(), last_seen.clone(), stop.clone(), ports.clone());
            clients.push(tokio::spawn(async move {
                let c: hyper_util::client::legacy::Client<_, Full<Bytes>> =
                    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
                while !stop.load(Ordering::Relaxed) {
                    let sent = epoch.elapsed().as_nanos() as u64;
                    let Ok(resp) = c.get(url.clone()).await else { continue };
                    let Ok(body) = resp.into_body().collect().await else { continue };
                    let text = String::from_utf8_lossy(&body.to_bytes()).to_string();
                    let got = epoch.elapsed().as_nanos() as u64;
                    for (i, p) in ports.iter().enumerate() {
                        if text.contains(&format!("backend {p} ")) {
                            let _ = first_seen[i].compare_exchange(0, got, Ordering::SeqCst, Ordering::SeqCst);
                            last_seen[i].fetch_max(sent, Ordering::SeqCst);
                        }
                    }
                }
            }));
        }
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let i = 1 + round % 2;
            let id = format!("new-{round}");
            // Registered critical, then turned passing: the moment it becomes healthy is the reference.
            let mut inst = Instance::new("bench", &id, "127.0.0.1", ports[i]);
            inst.health = "critical".into();
            d.register(&inst).await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
            first_seen[i].store(0, Ordering::SeqCst);
            let t0 = epoch.elapsed().as_nanos() as u64;
            d.set_health("bench", &id, "passing").await?;
            let deadline = Instant::now() + Duration::from_secs(5);
            while first_seen[i].load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            let t1 = first_seen[i].load(Ordering::SeqCst);
            if t1 == 0 {
                return Err("a new instance never got a request".into());
            }
            up.push((t1.saturating_sub(t0)) as f64 / 1e6);
            tokio::time::sleep(Duration::from_millis(30)).await;
            let t0 = epoch.elapsed().as_nanos() as u64;
            d.deregister("bench", &id).await?;
            tokio::time::sleep(Duration::from_millis(150)).await;
            let last = last_seen[i].load(Ordering::SeqCst);
            down.push(last.saturating_sub(t0) as f64 / 1e6);
        }
        stop.store(true, Ordering::SeqCst);
        for c in clients {
            let _ = c.await;
        }
        let served: u64 = proxy.stats().iter().map(|s| s.requests).sum();
        println!("| change ({rounds} rounds, 8 clients, {served} requests) | p50 | p99 | max |");
        println!("|---|---|---|---|");
        let row = |name: &str, v: &mut Vec<f64>| {
            let max = v.iter().cloned().fold(0.0, f64::max);
            println!("| {name} | {:.2} ms | {:.2} ms | {:.2} ms |", percentile(v, 0.5), percentile(v, 0.99), max);
        };
        row("instance turns passing → its first response", &mut up);
        row("instance removed → last request sent to it (0: none after)", &mut down);
        proxy.shutdown(Duration::from_secs(1)).await;
        Ok(())
    })
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ports =
        |from: usize| -> Res<Vec<u16>> { Ok(args[from..].iter().map(|p| p.parse()).collect::<Result<_, _>>()?) };
    match args.first().map(String::as_str) {
        Some("backend") => backend(&ports(1)?),
        Some("serve") if args.len() >= 4 => serve(&args[1], &args[2], &ports(3)?),
        Some("propagation") => propagation(args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(100)),
        _ => Err("usage: proxy backend PORT… | proxy serve http|tcp LISTEN PORT… | proxy propagation [ROUNDS]".into()),
    }
}
