//! One client's engine calls and nothing else, for `benches/run_instructions.sh`: connects to ADDRESS,
//! makes 100 unreported pings, then N more on a current-thread runtime (as `dockfleet-rust` in the
//! engine-call benchmark does). Run under callgrind at two values of N, the difference in instructions
//! divided by the difference in N is what one ping costs the client in user space.
//!
//! Usage: ping-loop ADDRESS N

use dockfleet::{DockerHost, Host, HostConfig};

type Res = Result<(), Box<dyn std::error::Error>>;

fn main() -> Res {
    let args: Vec<String> = std::env::args().collect();
    let address = args.get(1).ok_or("usage: ping-loop ADDRESS N")?.clone();
    let n: usize = args.get(2).ok_or("usage: ping-loop ADDRESS N")?.parse()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let host = DockerHost::connect(HostConfig { insecure: true, ..HostConfig::new("ping-loop", address) }).await?;
        for _ in 0..100 + n {
            host.ping().await?;
        }
        Ok(())
    })
}
