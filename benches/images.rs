//! Image distribution benchmark: one image (the test image plus a layer of random bytes) brought onto
//! two testbed engines that lack it, five ways, interleaved round by round:
//!
//! - `dockfleet copy`: `distribute_image` from df-1, which has it (`docker save` streamed into `docker
//!   load`, no registry, no temporary file), to df-2 and df-3 at once;
//! - `docker save | docker load`: the same by hand, one shell pipeline per target, both at once;
//! - `dockfleet pull`: `pull_image` from the testbed's registry on df-2 and df-3 at once;
//! - `bollard pull`: bollard's `create_image` with the same credentials, on both at once;
//! - `docker pull`: the docker CLI, one process per target (logged in through a config file), at once.
//!
//! Before every measurement both targets lose the image (and with it its layers). Prints the
//! BENCHMARKS.md section on stdout, progress on stderr. Driven by `benches/run_images.sh`.
//!
//! Usage: images INVENTORY REGISTRY_ENV [ROUNDS] [MEGABYTES]

mod median;
use median::median;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use dockfleet::bollard::{self, Docker};
use dockfleet::{BuildOptions, Fleet, Host, PullOptions, PushOptions, RegistryAuth};
use futures::TryStreamExt;

const IMAGE: &str = "dockfleet/busybox:latest";
const DOCKER: &str = "/usr/bin/docker";
const TARGETS: [&str; 2] = ["df-2", "df-3"];

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn addr(fleet: &Fleet, name: &str) -> Res<String> {
    Ok(fleet.host(name)?.address().to_string())
}

/// Runs shell commands at once and waits for all; any failure is an error.
fn shells(commands: &[String], config_dir: &str) -> Res<()> {
    let children: Vec<_> = commands
        .iter()
        .map(|c| {
            Command::new("bash")
                .args(["-o", "pipefail", "-c", c])
                .env("DOCKER_CONFIG", config_dir)
                .stdout(Stdio::null())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    for (mut child, c) in children.into_iter().zip(commands) {
        if !child.wait()?.success() {
            return Err(format!("{c} failed").into());
        }
    }
    Ok(())
}

async fn drop_from_targets(fleet: &Fleet, image: &str) -> Res<()> {
    for t in TARGETS {
        let h = fleet.host(t)?;
        if h.image_exists(image).await? {
            h.remove_image(image, true).await?;
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let inventory = args.get(1).ok_or("usage: images INVENTORY REGISTRY_ENV [ROUNDS] [MEGABYTES]")?;
    let env = std::fs::read_to_string(args.get(2).ok_or("REGISTRY_ENV missing")?)?;
    let rounds: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(5);
    let megabytes: u32 = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(32);
    let get = |k: &str| env.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).unwrap_or_default().to_string();
    let auth = RegistryAuth {
        server: get("REGISTRY"),
        username: get("REGISTRY_USER"),
        password: get("REGISTRY_PASSWORD"),
        identity_token: None,
    };
    let fleet = Fleet::from_file(inventory)?;
    let source = fleet.host("df-1")?;
    let image = format!("{}/dockfleet-bench/images:{megabytes}m-{}", auth.server, std::process::id());

    // The image: the test image and a layer of random bytes, built on df-1 and pushed once.
    let dir = std::env::temp_dir().join(format!("dockfleet-bench-images-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN dd if=/dev/urandom of=/blob bs=1048576 count={megabytes} 2>/dev/null\n"),
    )?;
    source
        .build_image(&dir, &BuildOptions { tag: image.clone(), ..Default::default() })
        .try_collect::<Vec<_>>()
        .await?;
    std::fs::remove_dir_all(&dir)?;
    let size = source.inspect_image(&image).await?.size_bytes;
    source.push_image(&image, &PushOptions { auth: Some(auth.clone()) }).try_collect::<Vec<_>>().await?;
    eprintln!("[images] {image}: {:.1} MB", size as f64 / 1e6);

    // The docker CLI's login, as a config file of its own.
    let config_dir = std::env::temp_dir().join(format!("dockfleet-bench-docker-{}", std::process::id()));
    std::fs::create_dir_all(&config_dir)?;
    let token = {
        use std::io::Write;
        let mut out = Command::new("base64").arg("-w0").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        out.stdin.take().ok_or("stdin")?.write_all(format!("{}:{}", auth.username, auth.password).as_bytes())?;
        String::from_utf8(out.wait_with_output()?.stdout)?
    };
    std::fs::write(
        config_dir.join("config.json"),
        format!(r#"{{"auths": {{"{}": {{"auth": "{token}"}}}}}}"#, auth.server),
    )?;
    let config = config_dir.to_string_lossy().to_string();

    let targets: Vec<Arc<dyn Host>> = TARGETS.iter().map(|t| fleet.host(t)).collect::<Result<_, _>>()?;
    let raw: Vec<Docker> = TARGETS
        .iter()
        .map(|t| {
            Docker::connect_with_http(&addr(&fleet, t)?.replace("tcp://", "http://"), 120, bollard::API_DEFAULT_VERSION)
                .map_err(Into::into)
        })
        .collect::<Res<_>>()?;
    let methods = ["dockfleet copy", "docker save | docker load", "dockfleet pull", "bollard pull", "docker pull"];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); methods.len()];
    let (repo, tag) = image.rsplit_once(':').ok_or("tag")?;
    // One unreported round first, then ROUNDS, the methods' order rotating.
    for round in 0..=rounds {
        for k in 0..methods.len() {
            let m = (k + round) % methods.len();
            drop_from_targets(&fleet, &image).await?;
            let t0 = Instant::now();
            match m {
                0 => {
                    dockfleet::distribute_image(source.clone(), &targets, &image).await?;
                }
                1 => {
                    let from = addr(&fleet, "df-1")?;
                    let cmds: Vec<String> = TARGETS
                        .iter()
                        .map(|t| Ok(format!("{DOCKER} -H {from} save {image} | {DOCKER} -H {} load", addr(&fleet, t)?)))
                        .collect::<Res<_>>()?;
                    shells(&cmds, &config)?;
                }
                2 => {
                    let options = PullOptions { auth: Some(auth.clone()), ..Default::default() };
                    let pulls = targets.iter().map(|h| h.pull_image(&image, &options).try_collect::<Vec<_>>());
                    for r in futures::future::join_all(pulls).await {
                        r?;
                    }
                }
                3 => {
                    let creds = bollard::auth::DockerCredentials {
                        username: Some(auth.username.clone()),
                        password: Some(auth.password.clone()),
                        serveraddress: Some(auth.server.clone()),
                        ..Default::default()
                    };
                    let pulls = raw.iter().map(|d| {
                        let q = bollard::query_parameters::CreateImageOptions {
                            from_image: Some(repo.to_string()),
                            tag: Some(tag.to_string()),
                            ..Default::default()
                        };
                        d.create_image(Some(q), None, Some(creds.clone())).try_collect::<Vec<_>>()
                    });
                    for r in futures::future::join_all(pulls).await {
                        r?;
                    }
                }
                _ => {
                    let cmds: Vec<String> = TARGETS
                        .iter()
                        .map(|t| Ok(format!("{DOCKER} -H {} pull -q {image}", addr(&fleet, t)?)))
                        .collect::<Res<_>>()?;
                    shells(&cmds, &config)?;
                }
            }
            let secs = t0.elapsed().as_secs_f64();
            for t in &targets {
                if !t.image_exists(&image).await? {
                    return Err(format!("{}: {} left no image on {}", methods[m], image, t.name()).into());
                }
            }
            if round > 0 {
                times[m].push(secs);
            }
            eprintln!("[images] round {round} {}: {secs:.3} s", methods[m]);
        }
    }
    drop_from_targets(&fleet, &image).await?;
    source.remove_image(&image, true).await?;
    std::fs::remove_dir_all(&config_dir)?;

    let medians: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
    let mb = size as f64 / 1e6;
    println!("## Images: one image onto two engines (copy, pull, and the docker CLI)\n");
    println!(
        "One image of {mb:.1} MB (the test image and a layer of {megabytes} MiB of random bytes) brought onto df-2 and df-3,"
    );
    println!("which lack it (each loses it, and its layers, before every measurement), five ways in one run, {rounds} rounds");
    println!(
        "after one unreported round, the order rotating: from df-1, which has it, by dockfleet's `distribute_image`"
    );
    println!(
        "(`docker save` streamed into `docker load`, both targets at once) and by hand (`docker save | docker load`,"
    );
    println!(
        "one pipeline per target, at once); from the testbed's registry (TLS, basic auth) by dockfleet's `pull_image`,"
    );
    println!("by bollard's `create_image` and by `docker pull`, both targets at once. Medians of the rounds.\n");
    println!("| way | time | MB/s per target | ÷ its by-hand peer |");
    println!("|---|---|---|---|");
    let peer = [1, 1, 4, 4, 4];
    for (m, name) in methods.iter().enumerate() {
        let name = name.replace('|', "\\|");
        println!("| {name} | {:.3} s | {:.0} | {:.2}× |", medians[m], mb / medians[m], medians[m] / medians[peer[m]]);
    }
    println!(
        "\nThe copy's peer is the `docker save | docker load` pipeline, the pulls' the docker CLI's `docker pull`.\n\
         Copy against pull, in this run: `dockfleet copy` took {:.2}× the time of `dockfleet pull`. A copy's bytes\n\
         go from df-1's engine through the copying process to each target, and df-1 writes the archive once per\n\
         target; a pull's go from the registry to each engine, which fetches layers in parallel. Here the registry\n\
         is on the same machine as the engines; a registry across a slower network moves that balance towards\n\
         the copy, which needs no registry at all.\n",
        medians[0] / medians[2]
    );
    Ok(())
}
