#![no_main]
//! Arbitrary bytes through the built-in HTTP proxy, both ways: the first two bytes give the length of
//! what a client sends to the proxy; the proxy's one backend (a loopback listener) answers whatever
//! reaches it with the rest of the input. The proxy must never panic (a panic in any task aborts the
//! process, which libFuzzer reports); timeouts are short so that each input takes milliseconds.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use dockfleet::{Discovery, EmbeddedDiscovery, Instance, Proxy, ProxyOptions, Route};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct World {
    rt: tokio::runtime::Runtime,
    proxy: String,
    answer: Arc<Mutex<Vec<u8>>>,
    _p: Proxy,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        std::panic::set_hook(Box::new(|info| {
            eprintln!("PANIC: {info}");
            std::process::abort();
        }));
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let answer = Arc::new(Mutex::new(Vec::new()));
        let (proxy, p) = rt.block_on(async {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = l.local_addr().unwrap().port();
            let a = answer.clone();
            tokio::spawn(async move {
                loop {
                    let (mut s, _) = l.accept().await.unwrap();
                    let a = a.clone();
                    tokio::spawn(async move {
                        let mut buf = [0u8; 4096];
                        loop {
                            match tokio::time::timeout(Duration::from_millis(20), s.read(&mut buf)).await {
                                Ok(Ok(n)) if n > 0 => {
                                    let bytes = a.lock().unwrap().clone();
                                    let _ = s.write_all(&bytes).await;
                                }
                                Ok(_) => return,
                                Err(_) => {}
                            }
                        }
                    });
                }
            });
            let d = EmbeddedDiscovery::new();
            d.register(&Instance::new("fz", "b1", "127.0.0.1", port)).await.unwrap();
            let d: Arc<dyn Discovery> = Arc::new(d);
            let p = Proxy::start(
                d,
                ProxyOptions {
                    listen: "127.0.0.1:0".into(),
                    routes: vec![Route::new("fz")],
                    response_timeout: Duration::from_millis(50),
                    idle_timeout: Duration::from_millis(40),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            p.wait_ready(Duration::from_secs(5)).await.unwrap();
            (p.address(), p)
        });
        World { rt, proxy, answer, _p: p }
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let w = world();
    let n = (u16::from_le_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
    let (request, answer) = data[2..].split_at(n);
    *w.answer.lock().unwrap() = answer.to_vec();
    w.rt.block_on(async {
        let mut s = TcpStream::connect(&w.proxy).await.unwrap();
        let _ = s.write_all(request).await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_millis(100), s.read_to_end(&mut out)).await;
    });
});
