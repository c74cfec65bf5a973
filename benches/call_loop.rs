//! One client's engine calls and nothing else, for `benches/run_instructions.sh`: connects to ADDRESS,
//! makes 100 unreported calls, then N more on a current-thread runtime (as `dockfleet-rust` in the
//! engine-call benchmark does): `ping`, or `inspect_container(ID)` when a container ID is given. Run
//! under callgrind at two values of N, the difference in instructions divided by the difference in N is
//! what one call costs the client in user space.
//!
//! Usage: call-loop ADDRESS N [CONTAINER_ID]

use dockfleet::{DockerHost, Host, HostConfig};

type Res = Result<(), Box<dyn std::error::Error>>;

fn main() -> Res {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: call-loop ADDRESS N [CONTAINER_ID]";
    let address = args.get(1).ok_or(usage)?.clone();
    let n: usize = args.get(2).ok_or(usage)?.parse()?;
    let inspect = args.get(3);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let host = DockerHost::connect(HostConfig { insecure: true, ..HostConfig::new("call-loop", address) }).await?;
        for _ in 0..100 + n {
            match inspect {
                Some(id) => drop(host.inspect_container(id).await?),
                None => drop(host.ping().await?),
            }
        }
        Ok(())
    })
}
