//! The core `host` module in Node: the data types of the `Host` trait and the `DockerHost` class.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dockfleet as df;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::docker::HostConfig;
use crate::embed::call_here;
use crate::{arg, call, object, stream_class, Conv, Number};

object! { out
    #[doc = "Answer to `ping()`; `latency` in milliseconds."]
    Ping => df::Ping { latency: Number<Duration>, api_version: String }
}

object! { out
    #[doc = "What an engine says about itself."]
    HostInfo => df::HostInfo {
        name: String, id: String, engine_version: String, api_version: String, os: String, os_type: String,
        arch: String, cpus: Number<u32>, memory_bytes: Number<u64>, labels: HashMap<String, String>, containers: Number<u32>,
        containers_running: Number<u32>, images: Number<u32>, storage_driver: String, runtimes: Vec<String>,
    }
}

object! { in
    #[doc = "A container port, optionally published on the host (`hostPort: 0`: the engine picks one)."]
    PortMapping => df::PortMapping { container_port: Number<u16>, host_port: Option<Number<u16>>, protocol: String, host_ip: Option<String> }
}

object! { in
    #[doc = "A bind mount (absolute `source`) or a named volume; a bind's `propagation` (`rprivate`, `rshared`, …) and SELinux relabelling (`z`, `Z`), a new volume's `noCopy`."]
    Mount => df::Mount {
        source: String, target: String, read_only: bool, propagation: Option<String>, selinux: Option<String>,
        no_copy: bool,
    }
}

object! { in
    #[doc = "`no`, `always`, `unless-stopped` or `on-failure` (with `maxRetries`)."]
    RestartPolicy => df::RestartPolicy { name: String, max_retries: Option<Number<u32>> }
}

object! { in
    #[doc = "A log driver and its options (`json-file` with `max-size`, `max-file`); an empty driver is the engine's default."]
    LogConfig => df::LogConfig { driver: String, options: HashMap<String, String> }
}

object! { in
    #[doc = "A resource limit of a container's processes (`nofile`); `-1` is unlimited."]
    Ulimit => df::Ulimit { name: String, soft: Number<i64>, hard: Number<i64> }
}

object! { in
    #[doc = "A Docker HEALTHCHECK; durations in milliseconds."]
    Healthcheck => df::Healthcheck {
        test: Vec<String>, interval: Option<Number<Duration>>, timeout: Option<Number<Duration>>, retries: Option<Number<u32>>, start_period: Option<Number<Duration>>,
    }
}

object! { in
    #[doc = "Everything needed to create one container."]
    ContainerSpec => df::ContainerSpec {
        name: Option<String>, image: String, command: Vec<String>, entrypoint: Option<Vec<String>>,
        env: HashMap<String, String>, labels: HashMap<String, String>, ports: Vec<PortMapping>, mounts: Vec<Mount>,
        restart_policy: Option<RestartPolicy>, cpus: Option<f64>, memory_bytes: Option<Number<u64>>, pids_limit: Option<Number<i64>>,
        cpu_shares: Option<Number<u64>>, cpuset_cpus: Option<String>, memory_swap_bytes: Option<Number<i64>>,
        memory_swappiness: Option<Number<u8>>, oom_kill_disable: bool, oom_score_adj: Option<Number<i32>>, runtime: Option<String>,
        healthcheck: Option<Healthcheck>, network: Option<String>, extra_networks: Vec<String>,
        network_aliases: Vec<String>, hostname: Option<String>, extra_hosts: Vec<String>, init: Option<bool>,
        read_only: bool, cap_add: Vec<String>, cap_drop: Vec<String>, logging: Option<LogConfig>, ulimits: Vec<Ulimit>,
        sysctls: HashMap<String, String>, tmpfs: Vec<String>, shm_size: Option<Number<u64>>, dns: Vec<String>,
        dns_search: Vec<String>, dns_opt: Vec<String>, working_dir: Option<String>, user: Option<String>, group_add: Vec<String>,
        stop_timeout: Option<Number<u32>>, stop_signal: Option<String>, privileged: bool,
        security_opt: Vec<String>, devices: Vec<String>, tty: bool, stdin_open: bool,
        pid: Option<String>, ipc: Option<String>,
    }
}

object! { in
    #[doc = "Which containers `listContainers` returns: `labels` entries are `key` or `key=value`."]
    ListContainersOptions => df::ListContainersOptions { all: bool, labels: Vec<String>, name: Option<String> }
}

object! { out
    #[doc = "One container in a listing."]
    ContainerSummary => df::ContainerSummary {
        id: String, name: String, image: String, state: String, status: String, labels: HashMap<String, String>,
        ports: Vec<PortMapping>, created: Number<i64>, network_mode: String,
    }
}

object! { out
    #[doc = "The state part of `ContainerDetails`."]
    ContainerState => df::ContainerState {
        status: String, running: bool, exit_code: Number<i64>, pid: Number<i64>, started_at: String, finished_at: String,
        health: Option<String>, oom_killed: bool,
    }
}

object! { out
    #[doc = "What `inspectContainer` reports."]
    ContainerDetails => df::ContainerDetails {
        id: String, name: String, image: String, image_id: String, state: ContainerState,
        labels: HashMap<String, String>, ports: Vec<PortMapping>, networks: HashMap<String, String>,
        restart_count: Number<i64>, created: String, privileged: bool, security_opt: Vec<String>,
        network_mode: String, exposed_ports: Vec<PortMapping>,
    }
}

object! { in
    #[doc = "Which part of the logs to stream."]
    LogOptions => df::LogOptions { follow: bool, stdout: bool, stderr: bool, tail: Option<Number<u32>>, since: Option<Number<i64>>, timestamps: bool }
}

object! { out
    #[doc = "One chunk of container output; `stream` is `stdout`, `stderr` or `console`."]
    LogLine => df::LogLine { stream: String, message: String }
}

object! { in
    #[doc = "Options of `exec`."]
    ExecOptions => df::ExecOptions { env: HashMap<String, String>, working_dir: Option<String>, user: Option<String> }
}

object! { out
    #[doc = "Result of `exec`."]
    ExecOutput => df::ExecOutput { exit_code: Number<i64>, stdout: String, stderr: String }
}

object! { in
    #[doc = "Options of `buildImage`."]
    BuildOptions => df::BuildOptions {
        tag: String, dockerfile: Option<String>, build_args: HashMap<String, String>, labels: HashMap<String, String>,
        no_cache: bool, target: Option<String>,
    }
}

object! { out
    #[doc = "A build progress event: `kind` is `context`, `step`, `output` or `done`."]
    BuildEvent => df::BuildEvent { kind: String, message: String, image_id: Option<String> }
}

object! { in
    #[doc = "Options of `pullImage`: the registry's credentials, and a platform (`linux/arm64`) to pull for."]
    PullOptions => df::PullOptions { auth: Option<crate::registry::RegistryAuth>, platform: Option<String> }
}

object! { in
    #[doc = "Options of `pushImage`: the registry's credentials."]
    PushOptions => df::PushOptions { auth: Option<crate::registry::RegistryAuth> }
}

object! { out
    #[doc = "One progress event of a pull or push; the last has `done` and the image's `digest`."]
    ImageProgress => df::ImageProgress {
        layer: String, status: String, current: Option<Number<u64>>, total: Option<Number<u64>>, digest: Option<String>,
        done: bool,
    }
}

object! { out
    #[doc = "One image."]
    ImageSummary => df::ImageSummary { id: String, tags: Vec<String>, size_bytes: Number<u64>, created: Number<i64>, labels: HashMap<String, String> }
}

object! { in
    #[doc = "One address pool of a network: `subnet` in CIDR form, optionally the `ipRange` containers get addresses from, the `gateway`, and `auxAddresses` (name to address) left out."]
    IpamPool => df::IpamPool {
        subnet: String, ip_range: Option<String>, gateway: Option<String>, aux_addresses: HashMap<String, String>,
    }
}

object! { in
    #[doc = "Options of `createNetwork`: `driver` (`bridge` when unset), labels, driver options, `internal` (no route out), `attachable` (Swarm overlays), `enableIpv6` and address pools."]
    NetworkOptions => df::NetworkOptions {
        driver: Option<String>, labels: HashMap<String, String>, driver_opts: HashMap<String, String>,
        internal: bool, attachable: bool, enable_ipv6: bool, ipam: Vec<IpamPool>,
    }
}

object! { in
    #[doc = "Options of `createVolume`: `driver` (`local` when unset), labels, and the driver's options (`local` takes `type`, `device`, `o` and `size`)."]
    VolumeOptions => df::VolumeOptions {
        driver: Option<String>, labels: HashMap<String, String>, driver_opts: HashMap<String, String>,
    }
}

object! { out
    #[doc = "A network on one engine."]
    NetworkSummary => df::NetworkSummary {
        id: String, name: String, driver: String, labels: HashMap<String, String>,
        driver_opts: HashMap<String, String>, internal: bool, attachable: bool, enable_ipv6: bool, ipam: Vec<IpamPool>,
    }
}

object! { out
    #[doc = "A named volume on one engine."]
    VolumeSummary => df::VolumeSummary {
        name: String, driver: String, mountpoint: String, labels: HashMap<String, String>,
        driver_opts: HashMap<String, String>,
    }
}

object! { in
    #[doc = "Which engine events to stream (times are `bigint` nanoseconds); without `sinceNanos` the stream starts when `events()` is called."]
    EventOptions => df::EventOptions { since_nanos: Option<BigInt>, until_nanos: Option<BigInt>, filters: HashMap<String, Vec<String>> }
}

object! { out
    #[doc = "One engine event; `timeNanos` is a `bigint` (nanoseconds do not fit in a JS number)."]
    Event => df::Event { host: String, kind: String, action: String, id: String, attributes: HashMap<String, String>, time_nanos: BigInt }
}

object! { out
    #[doc = "Resource use of one container at one moment."]
    Stats => df::Stats {
        id: String, cpu_percent: f64, memory_bytes: Number<u64>, memory_limit_bytes: Number<u64>, memory_percent: f64,
        network_rx_bytes: Number<u64>, network_tx_bytes: Number<u64>, block_read_bytes: Number<u64>, block_write_bytes: Number<u64>, pids: Number<u64>,
    }
}

object! { out
    #[doc = "Progress of `copyImage`."]
    CopyProgress => df::CopyProgress { image: String, source: String, target: String, bytes: Number<u64>, total_bytes: Option<Number<u64>>, done: bool }
}

impl Conv<Buffer> for bytes::Bytes {
    fn conv(self) -> Buffer {
        Buffer::from(self.to_vec())
    }
}

impl Conv<Vec<String>> for Vec<Vec<String>> {
    fn conv(self) -> Vec<String> {
        self.into_iter().flatten().collect()
    }
}

stream_class!(
    #[doc = "Container output: `for await (const line of host.logs(id))`."]
    LogStream, df::LogLine => LogLine
);
stream_class!(
    #[doc = "Build progress: `for await (const e of host.buildImage(dir, options))`."]
    BuildStream, df::BuildEvent => BuildEvent
);
stream_class!(
    #[doc = "Pull or push progress: `for await (const p of host.pullImage(reference, options))`."]
    ImageProgressStream, df::ImageProgress => ImageProgress
);
stream_class!(
    #[doc = "Engine events: `for await (const e of host.events(options))`."]
    EventStream, df::Event => Event
);
stream_class!(
    #[doc = "Stats samples, about one a second."]
    StatsStream, df::Stats => Stats
);
stream_class!(
    #[doc = "An image archive (`docker save` format) as Buffers."]
    ByteStream, bytes::Bytes => Buffer
);

/// One Docker engine. `new DockerHost(config)` validates without contacting it;
/// `await DockerHost.connect(config)` also pings it.
#[napi]
pub struct DockerHost {
    pub(crate) inner: Arc<dyn df::Host>,
}

impl Conv<DockerHost> for Arc<dyn df::Host> {
    fn conv(self) -> DockerHost {
        DockerHost { inner: self }
    }
}

impl Conv<DockerHost> for df::DockerHost {
    fn conv(self) -> DockerHost {
        DockerHost { inner: Arc::new(self) }
    }
}

#[napi]
impl DockerHost {
    #[napi(constructor, catch_unwind)]
    pub fn new(env: Env, config: HostConfig) -> Result<Self> {
        df::DockerHost::new(config.conv()).map(Conv::conv).map_err(|e| crate::error::js_error(&env, e))
    }

    /// Builds the host and pings it; rejects when the engine cannot be used.
    #[napi(writable = true, catch_unwind)]
    pub fn connect<'env>(env: &'env Env, config: HostConfig) -> Result<PromiseRaw<'env, DockerHost>> {
        call(env, df::DockerHost::connect(config.conv()))
    }

    /// From `DOCKER_HOST`, `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`, as the docker CLI reads them.
    #[napi(writable = true, catch_unwind)]
    pub fn from_env<'env>(env: &'env Env, name: String) -> Result<PromiseRaw<'env, DockerHost>> {
        call(env, df::DockerHost::from_env(name))
    }

    #[napi(getter, catch_unwind)]
    pub fn name(&self) -> String {
        self.inner.name().to_string()
    }

    #[napi(getter, catch_unwind)]
    pub fn address(&self) -> String {
        self.inner.address().to_string()
    }

    #[napi(getter, catch_unwind)]
    pub fn labels(&self) -> HashMap<String, String> {
        self.inner.labels().clone().into_iter().collect()
    }

    #[napi(catch_unwind)]
    pub fn ping<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Ping>> {
        let h = self.inner.clone();
        call_here(env, async move { h.ping().await })
    }

    #[napi(catch_unwind)]
    pub fn info<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, HostInfo>> {
        let h = self.inner.clone();
        call_here(env, async move { h.info().await })
    }

    #[napi(catch_unwind)]
    pub fn create_container<'env>(&self, env: &'env Env, spec: ContainerSpec) -> Result<PromiseRaw<'env, String>> {
        let h = self.inner.clone();
        let spec: df::ContainerSpec = spec.conv();
        call_here(env, async move { h.create_container(&spec).await })
    }

    #[napi(catch_unwind)]
    pub fn start_container<'env>(&self, env: &'env Env, id: String) -> Result<PromiseRaw<'env, ()>> {
        let h = self.inner.clone();
        call_here(env, async move { h.start_container(&id).await })
    }

    /// `grace` in milliseconds (the engine's default when omitted).
    #[napi(catch_unwind)]
    pub fn stop_container<'env>(&self, env: &'env Env, id: String, grace: Option<f64>) -> Result<PromiseRaw<'env, ()>> {
        let grace = grace.map(|g| arg("grace", g)).transpose()?;
        let h = self.inner.clone();
        call_here(env, async move { h.stop_container(&id, grace).await })
    }

    #[napi(catch_unwind)]
    pub fn kill_container<'env>(
        &self,
        env: &'env Env,
        id: String,
        signal: Option<String>,
    ) -> Result<PromiseRaw<'env, ()>> {
        let h = self.inner.clone();
        call_here(env, async move { h.kill_container(&id, signal.as_deref()).await })
    }

    #[napi(catch_unwind)]
    pub fn rename_container<'env>(&self, env: &'env Env, id: String, name: String) -> Result<PromiseRaw<'env, ()>> {
        let h = self.inner.clone();
        call_here(env, async move { h.rename_container(&id, &name).await })
    }

    #[napi(catch_unwind)]
    pub fn remove_container<'env>(
        &self,
        env: &'env Env,
        id: String,
        force: Option<bool>,
        volumes: Option<bool>,
    ) -> Result<PromiseRaw<'env, ()>> {
        let h = self.inner.clone();
        call_here(env, async move { h.remove_container(&id, force.unwrap_or(false), volumes.unwrap_or(false)).await })
    }

    #[napi(catch_unwind)]
    pub fn inspect_container<'env>(&self, env: &'env Env, id: String) -> Result<PromiseRaw<'env, ContainerDetails>> {
        let h = self.inner.clone();
        call_here(env, async move { h.inspect_container(&id).await })
    }

    #[napi(catch_unwind)]
    pub fn list_containers<'env>(
        &self,
        env: &'env Env,
        options: Option<ListContainersOptions>,
    ) -> Result<PromiseRaw<'env, Vec<ContainerSummary>>> {
        let h = self.inner.clone();
        let o: df::ListContainersOptions = options.conv().unwrap_or_default();
        call_here(env, async move { h.list_containers(&o).await })
    }

    #[napi(catch_unwind)]
    pub fn logs(&self, id: String, options: Option<LogOptions>) -> LogStream {
        let o: df::LogOptions = options.conv().unwrap_or_default();
        LogStream::new(self.inner.logs(&id, &o))
    }

    #[napi(catch_unwind)]
    pub fn wait_container<'env>(&self, env: &'env Env, id: String) -> Result<PromiseRaw<'env, Number<i64>>> {
        let h = self.inner.clone();
        call_here(env, async move { h.wait_container(&id).await })
    }

    #[napi(catch_unwind)]
    pub fn exec<'env>(
        &self,
        env: &'env Env,
        id: String,
        command: Vec<String>,
        options: Option<ExecOptions>,
    ) -> Result<PromiseRaw<'env, ExecOutput>> {
        let h = self.inner.clone();
        let o: df::ExecOptions = options.conv().unwrap_or_default();
        call_here(env, async move { h.exec(&id, &command, &o).await })
    }

    #[napi(catch_unwind)]
    pub fn build_image(&self, context_dir: String, options: BuildOptions) -> BuildStream {
        BuildStream::new(self.inner.build_image(std::path::Path::new(&context_dir), &options.conv()))
    }

    #[napi(catch_unwind)]
    pub fn list_images<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Vec<ImageSummary>>> {
        let h = self.inner.clone();
        call_here(env, async move { h.list_images().await })
    }

    #[napi(catch_unwind)]
    pub fn inspect_image<'env>(&self, env: &'env Env, reference: String) -> Result<PromiseRaw<'env, ImageSummary>> {
        let h = self.inner.clone();
        call_here(env, async move { h.inspect_image(&reference).await })
    }

    #[napi(catch_unwind)]
    pub fn image_exists<'env>(&self, env: &'env Env, reference: String) -> Result<PromiseRaw<'env, bool>> {
        let h = self.inner.clone();
        call_here(env, async move { h.image_exists(&reference).await })
    }

    /// Pulls an image from its registry (`:latest` without a tag or digest), with the engine's progress.
    #[napi(catch_unwind)]
    pub fn pull_image(&self, reference: String, options: Option<PullOptions>) -> ImageProgressStream {
        let o: df::PullOptions = options.conv().unwrap_or_default();
        ImageProgressStream::new(self.inner.pull_image(&reference, &o))
    }

    /// Pushes an image, tagged with its registry, with the engine's progress.
    #[napi(catch_unwind)]
    pub fn push_image(&self, reference: String, options: Option<PushOptions>) -> ImageProgressStream {
        let o: df::PushOptions = options.conv().unwrap_or_default();
        ImageProgressStream::new(self.inner.push_image(&reference, &o))
    }

    /// Gives the image `source` the further name `target`.
    #[napi(catch_unwind)]
    pub fn tag_image<'env>(&self, env: &'env Env, source: String, target: String) -> Result<PromiseRaw<'env, ()>> {
        let h = self.inner.clone();
        call_here(env, async move { h.tag_image(&source, &target).await })
    }

    #[napi(catch_unwind)]
    pub fn remove_image<'env>(
        &self,
        env: &'env Env,
        reference: String,
        force: Option<bool>,
    ) -> Result<PromiseRaw<'env, ()>> {
        let h = self.inner.clone();
        call_here(env, async move { h.remove_image(&reference, force.unwrap_or(false)).await })
    }

    /// Creates a network (a bridge unless `options.driver` says otherwise); resolves to its ID
    /// (`conflict` when the name is taken).
    #[napi(catch_unwind)]
    pub fn create_network<'env>(
        &self,
        env: &'env Env,
        name: String,
        options: Option<NetworkOptions>,
    ) -> Result<PromiseRaw<'env, String>> {
        let h = self.inner.clone();
        let options: df::NetworkOptions = options.map(Conv::conv).unwrap_or_default();
        call_here(env, async move { h.create_network(&name, &options).await })
    }

    /// Removes a network.
    #[napi(catch_unwind)]
    pub fn remove_network<'env>(&self, env: &'env Env, name: String) -> Result<PromiseRaw<'env, ()>> {
        let h = self.inner.clone();
        call_here(env, async move { h.remove_network(&name).await })
    }

    /// Networks carrying every label given (`key` or `key=value`).
    #[napi(catch_unwind)]
    pub fn list_networks<'env>(
        &self,
        env: &'env Env,
        labels: Option<Vec<String>>,
    ) -> Result<PromiseRaw<'env, Vec<NetworkSummary>>> {
        let h = self.inner.clone();
        call_here(env, async move { h.list_networks(&labels.unwrap_or_default()).await })
    }

    /// Creates a named volume, or resolves to the existing one of that name (which keeps the
    /// options it was created with).
    #[napi(catch_unwind)]
    pub fn create_volume<'env>(
        &self,
        env: &'env Env,
        name: String,
        options: Option<VolumeOptions>,
    ) -> Result<PromiseRaw<'env, VolumeSummary>> {
        let h = self.inner.clone();
        let options: df::VolumeOptions = options.map(Conv::conv).unwrap_or_default();
        call_here(env, async move { h.create_volume(&name, &options).await })
    }

    /// Removes a named volume (`conflict` while in use, unless `force`).
    #[napi(catch_unwind)]
    pub fn remove_volume<'env>(
        &self,
        env: &'env Env,
        name: String,
        force: Option<bool>,
    ) -> Result<PromiseRaw<'env, ()>> {
        let h = self.inner.clone();
        call_here(env, async move { h.remove_volume(&name, force.unwrap_or(false)).await })
    }

    /// Volumes carrying every label given (`key` or `key=value`).
    #[napi(catch_unwind)]
    pub fn list_volumes<'env>(
        &self,
        env: &'env Env,
        labels: Option<Vec<String>>,
    ) -> Result<PromiseRaw<'env, Vec<VolumeSummary>>> {
        let h = self.inner.clone();
        call_here(env, async move { h.list_volumes(&labels.unwrap_or_default()).await })
    }

    #[napi(catch_unwind)]
    pub fn export_image(&self, reference: String) -> ByteStream {
        ByteStream::new(self.inner.export_image(&reference))
    }

    /// Loads an archive given as a Buffer or as the `ByteStream` of another host's `exportImage`.
    #[napi(catch_unwind)]
    pub fn import_image<'env>(
        &self,
        env: &'env Env,
        archive: Either<Buffer, &ByteStream>,
    ) -> Result<PromiseRaw<'env, Vec<String>>> {
        use futures::StreamExt;
        let stream: df::ResultStream<bytes::Bytes> = match archive {
            Either::A(buf) => futures::stream::iter([Ok(bytes::Bytes::from(buf.to_vec()))]).boxed(),
            Either::B(s) => s.inner.follow(),
        };
        let h = self.inner.clone();
        call(env, async move { h.import_image(stream).await })
    }

    #[napi(catch_unwind)]
    pub fn events(&self, options: Option<EventOptions>) -> EventStream {
        let o: df::EventOptions = options.conv().unwrap_or_default();
        EventStream::new(self.inner.events(&o))
    }

    #[napi(catch_unwind)]
    pub fn stats<'env>(&self, env: &'env Env, id: String) -> Result<PromiseRaw<'env, Stats>> {
        let h = self.inner.clone();
        call_here(env, async move { h.stats(&id).await })
    }

    #[napi(catch_unwind)]
    pub fn stats_stream(&self, id: String) -> StatsStream {
        StatsStream::new(self.inner.stats_stream(&id))
    }
}
