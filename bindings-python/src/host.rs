//! The core `host` module in Python: the data types of the `Host` trait and the `DockerHost` class that
//! exposes it (constructed from a `HostConfig`, see `docker.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use dockfleet as df;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::docker::HostConfig;
use crate::Seconds;
use crate::{dto, stream_class, Conv};

dto! {
    /// Answer to `DockerHost.ping()`; `latency` in seconds.
    Ping => df::Ping { latency: Seconds, api_version: String }
}

dto! {
    /// What an engine says about itself.
    HostInfo => df::HostInfo {
        name: String, id: String, engine_version: String, api_version: String, os: String, os_type: String,
        arch: String, cpus: u32, memory_bytes: u64, labels: BTreeMap<String, String>, containers: u32,
        containers_running: u32, images: u32, storage_driver: String, runtimes: Vec<String>,
    }
}

dto! {
    /// A container port, optionally published on the host (`host_port=0`: the engine picks one).
    PortMapping => df::PortMapping { container_port: u16, host_port: Option<u16>, protocol: String, host_ip: Option<String> }
}

dto! {
    /// A bind mount (absolute `source`) or a named volume; a bind's `propagation` (`rprivate`, `rshared`,
    /// …) and SELinux relabelling (`z`, `Z`), a new volume's `no_copy`.
    Mount => df::Mount {
        source: String, target: String, read_only: bool, propagation: Option<String>, selinux: Option<String>,
        no_copy: bool,
    }
}

dto! {
    /// `no`, `always`, `unless-stopped` or `on-failure` (with `max_retries`).
    RestartPolicy => df::RestartPolicy { name: String, max_retries: Option<u32> }
}

dto! {
    /// A log driver and its options (`json-file` with `max-size`, `max-file`); an empty driver is the engine's default.
    LogConfig => df::LogConfig { driver: String, options: BTreeMap<String, String> }
}

dto! {
    /// A resource limit of a container's processes (`nofile`); `-1` is unlimited.
    Ulimit => df::Ulimit { name: String, soft: i64, hard: i64 }
}

dto! {
    /// A Docker HEALTHCHECK; durations in seconds.
    Healthcheck => df::Healthcheck {
        test: Vec<String>, interval: Option<Seconds>, timeout: Option<Seconds>, retries: Option<u32>, start_period: Option<Seconds>,
    }
}

dto! {
    /// Everything needed to create one container.
    ContainerSpec => df::ContainerSpec {
        name: Option<String>, image: String, command: Vec<String>, entrypoint: Option<Vec<String>>,
        env: BTreeMap<String, String>, labels: BTreeMap<String, String>, ports: Vec<PortMapping>, mounts: Vec<Mount>,
        restart_policy: Option<RestartPolicy>, cpus: Option<f64>, memory_bytes: Option<u64>, pids_limit: Option<i64>,
        cpu_shares: Option<u64>, cpuset_cpus: Option<String>, memory_swap_bytes: Option<i64>,
        memory_swappiness: Option<u8>, oom_kill_disable: bool, oom_score_adj: Option<i32>, runtime: Option<String>,
        healthcheck: Option<Healthcheck>, network: Option<String>, extra_networks: Vec<String>,
        network_aliases: Vec<String>, hostname: Option<String>, extra_hosts: Vec<String>, init: Option<bool>,
        read_only: bool, cap_add: Vec<String>, cap_drop: Vec<String>, logging: Option<LogConfig>, ulimits: Vec<Ulimit>,
        sysctls: BTreeMap<String, String>, tmpfs: Vec<String>, shm_size: Option<u64>, dns: Vec<String>,
        dns_search: Vec<String>, dns_opt: Vec<String>, working_dir: Option<String>, user: Option<String>, group_add: Vec<String>,
        stop_timeout: Option<u32>, stop_signal: Option<String>, privileged: bool,
        security_opt: Vec<String>, devices: Vec<String>, tty: bool, stdin_open: bool,
        pid: Option<String>, ipc: Option<String>,
    }
}

dto! {
    /// Which containers `list_containers` returns: `labels` entries are `key` or `key=value`.
    ListContainersOptions => df::ListContainersOptions { all: bool, labels: Vec<String>, name: Option<String> }
}

dto! {
    /// One container in a listing.
    ContainerSummary => df::ContainerSummary {
        id: String, name: String, image: String, state: String, status: String, labels: BTreeMap<String, String>,
        ports: Vec<PortMapping>, created: i64, network_mode: String,
    }
}

dto! {
    /// The state part of `ContainerDetails`.
    ContainerState => df::ContainerState {
        status: String, running: bool, exit_code: i64, pid: i64, started_at: String, finished_at: String,
        health: Option<String>, oom_killed: bool,
    }
}

dto! {
    /// What `inspect_container` reports.
    ContainerDetails => df::ContainerDetails {
        id: String, name: String, image: String, image_id: String, state: ContainerState,
        labels: BTreeMap<String, String>, ports: Vec<PortMapping>, networks: BTreeMap<String, String>,
        restart_count: i64, created: String, privileged: bool, security_opt: Vec<String>,
        network_mode: String, exposed_ports: Vec<PortMapping>,
    }
}

dto! {
    /// Which part of the logs to stream.
    LogOptions => df::LogOptions { follow: bool, stdout: bool, stderr: bool, tail: Option<u32>, since: Option<i64>, timestamps: bool }
}

dto! {
    /// One chunk of container output; `stream` is `stdout`, `stderr` or `console`.
    LogLine => df::LogLine { stream: String, message: String }
}

dto! {
    /// Options of `exec`.
    ExecOptions => df::ExecOptions { env: BTreeMap<String, String>, working_dir: Option<String>, user: Option<String> }
}

dto! {
    /// Result of `exec`.
    ExecOutput => df::ExecOutput { exit_code: i64, stdout: String, stderr: String }
}

dto! {
    /// Options of `build_image`.
    BuildOptions => df::BuildOptions {
        tag: String, dockerfile: Option<String>, build_args: BTreeMap<String, String>, labels: BTreeMap<String, String>,
        no_cache: bool, target: Option<String>,
    }
}

dto! {
    /// A build progress event: `kind` is `context`, `step`, `output` or `done`.
    BuildEvent => df::BuildEvent { kind: String, message: String, image_id: Option<String> }
}

dto! {
    /// Options of `pull_image`: the registry's credentials, and a platform (`linux/arm64`) to pull for.
    PullOptions => df::PullOptions { auth: Option<crate::registry::RegistryAuth>, platform: Option<String> }
}

dto! {
    /// Options of `push_image`: the registry's credentials.
    PushOptions => df::PushOptions { auth: Option<crate::registry::RegistryAuth> }
}

dto! {
    /// One progress event of a pull or push; the last has `done` and the image's `digest`.
    ImageProgress => df::ImageProgress {
        layer: String, status: String, current: Option<u64>, total: Option<u64>, digest: Option<String>, done: bool,
    }
}

dto! {
    /// One image.
    ImageSummary => df::ImageSummary { id: String, tags: Vec<String>, size_bytes: u64, created: i64, labels: BTreeMap<String, String> }
}

dto! {
    /// One address pool of a network: `subnet` in CIDR form, optionally the `ip_range` containers get
    /// addresses from, the `gateway`, and `aux_addresses` (name to address) left out.
    IpamPool => df::IpamPool {
        subnet: String, ip_range: Option<String>, gateway: Option<String>, aux_addresses: BTreeMap<String, String>,
    }
}

dto! {
    /// Options of `create_network`: `driver` (`bridge` when `None`), labels, driver options,
    /// `internal` (no route out), `attachable` (Swarm overlays), `enable_ipv6` and address pools.
    NetworkOptions => df::NetworkOptions {
        driver: Option<String>, labels: BTreeMap<String, String>, driver_opts: BTreeMap<String, String>,
        internal: bool, attachable: bool, enable_ipv6: bool, ipam: Vec<IpamPool>,
    }
}

dto! {
    /// Options of `create_volume`: `driver` (`local` when `None`), labels, and the driver's options
    /// (`local` takes `type`, `device`, `o` and `size`).
    VolumeOptions => df::VolumeOptions {
        driver: Option<String>, labels: BTreeMap<String, String>, driver_opts: BTreeMap<String, String>,
    }
}

dto! {
    /// A network on one engine.
    NetworkSummary => df::NetworkSummary {
        id: String, name: String, driver: String, labels: BTreeMap<String, String>,
        driver_opts: BTreeMap<String, String>, internal: bool, attachable: bool, enable_ipv6: bool, ipam: Vec<IpamPool>,
    }
}

dto! {
    /// A named volume on one engine.
    VolumeSummary => df::VolumeSummary {
        name: String, driver: String, mountpoint: String, labels: BTreeMap<String, String>,
        driver_opts: BTreeMap<String, String>,
    }
}

dto! {
    /// Which engine events to stream; without `since_nanos` the stream starts when `events()` is called.
    EventOptions => df::EventOptions { since_nanos: Option<i64>, until_nanos: Option<i64>, filters: BTreeMap<String, Vec<String>> }
}

dto! {
    /// One engine event.
    Event => df::Event { host: String, kind: String, action: String, id: String, attributes: BTreeMap<String, String>, time_nanos: i64 }
}

dto! {
    /// Resource use of one container at one moment.
    Stats => df::Stats {
        id: String, cpu_percent: f64, memory_bytes: u64, memory_limit_bytes: u64, memory_percent: f64,
        network_rx_bytes: u64, network_tx_bytes: u64, block_read_bytes: u64, block_write_bytes: u64, pids: u64,
    }
}

dto! {
    /// Progress of `copy_image`.
    CopyProgress => df::CopyProgress { image: String, source: String, target: String, bytes: u64, total_bytes: Option<u64>, done: bool }
}

impl Conv<Py<PyBytes>> for bytes::Bytes {
    fn conv(self) -> Py<PyBytes> {
        Python::attach(|py| PyBytes::new(py, &self).unbind())
    }
}

stream_class!(
    /// Container output: `async for line in host.logs(id)`.
    LogStream, df::LogLine => LogLine
);
stream_class!(
    /// Build progress: `async for event in host.build_image(dir, options)`.
    BuildStream, df::BuildEvent => BuildEvent
);
stream_class!(
    /// Pull or push progress: `async for p in host.pull_image(reference, options)`.
    ImageProgressStream, df::ImageProgress => ImageProgress
);
stream_class!(
    /// Engine events: `async for event in host.events(options)`.
    EventStream, df::Event => Event
);
stream_class!(
    /// Stats samples, about one a second.
    StatsStream, df::Stats => Stats
);
stream_class!(
    /// An image archive (`docker save` format) as chunks of bytes.
    ByteStream, bytes::Bytes => Py<PyBytes>
);

/// An image archive for `import_image`: bytes, or a `ByteStream` from `export_image`.
#[derive(FromPyObject)]
pub enum Archive<'py> {
    Bytes(Vec<u8>),
    Stream(PyRef<'py, ByteStream>),
}

impl Archive<'_> {
    fn into_stream(self) -> df::ResultStream<bytes::Bytes> {
        use futures::StreamExt;
        match self {
            Archive::Bytes(b) => futures::stream::iter([Ok(bytes::Bytes::from(b))]).boxed(),
            Archive::Stream(s) => s.inner.follow(),
        }
    }
}

/// One Docker engine. Build with `DockerHost(HostConfig(...))` (validated, not contacted),
/// `await DockerHost.connect(config)` (pings it) or `await DockerHost.from_env(name)`.
#[pyclass(module = "dockfleet", frozen, from_py_object)]
#[derive(Clone)]
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

#[pymethods]
impl DockerHost {
    #[new]
    fn new(config: HostConfig) -> PyResult<Self> {
        Ok(crate::sync_call(|| df::DockerHost::new(config.conv()))?.conv())
    }

    /// Builds the host and pings it; fails when the engine cannot be used.
    #[staticmethod]
    async fn connect(config: HostConfig) -> PyResult<DockerHost> {
        crate::call(df::DockerHost::connect(config.conv())).await
    }

    /// From `DOCKER_HOST`, `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`, as the docker CLI reads them.
    #[staticmethod]
    async fn from_env(name: String) -> PyResult<DockerHost> {
        crate::call(df::DockerHost::from_env(name)).await
    }

    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_string()
    }

    #[getter]
    fn address(&self) -> String {
        self.inner.address().to_string()
    }

    #[getter]
    fn labels(&self) -> BTreeMap<String, String> {
        self.inner.labels().clone()
    }

    fn __repr__(&self) -> String {
        format!("DockerHost(name={:?}, address={:?})", self.inner.name(), self.inner.address())
    }

    fn ping(&self) -> crate::embed::Call {
        let h = self.inner.clone();
        crate::call_here::<_, Ping, _>(async move { h.ping().await })
    }

    fn info(&self) -> crate::embed::Call {
        let h = self.inner.clone();
        crate::call_here::<_, HostInfo, _>(async move { h.info().await })
    }

    fn create_container(&self, spec: ContainerSpec) -> crate::embed::Call {
        let h = self.inner.clone();
        crate::call_here::<_, String, _>(async move { h.create_container(&spec.conv()).await })
    }

    fn start_container(&self, id: String) -> crate::embed::Call {
        let h = self.inner.clone();
        crate::call_here::<_, (), _>(async move { h.start_container(&id).await })
    }

    #[pyo3(signature = (id, grace=None))]
    fn stop_container(&self, id: String, grace: Option<f64>) -> PyResult<crate::embed::Call> {
        let grace = grace.map(|g| crate::seconds("grace", g)).transpose()?;
        let h = self.inner.clone();
        Ok(crate::call_here::<_, (), _>(async move { h.stop_container(&id, grace).await }))
    }

    #[pyo3(signature = (id, signal=None))]
    fn kill_container(&self, id: String, signal: Option<String>) -> crate::embed::Call {
        let h = self.inner.clone();
        crate::call_here::<_, (), _>(async move { h.kill_container(&id, signal.as_deref()).await })
    }

    fn rename_container(&self, id: String, name: String) -> crate::embed::Call {
        let h = self.inner.clone();
        crate::call_here::<_, (), _>(async move { h.rename_container(&id, &name).await })
    }

    #[pyo3(signature = (id, force=false, volumes=false))]
    fn remove_container(&self, id: String, force: bool, volumes: bool) -> crate::embed::Call {
        let h = self.inner.clone();
        crate::call_here::<_, (), _>(async move { h.remove_container(&id, force, volumes).await })
    }

    fn inspect_container(&self, id: String) -> crate::embed::Call {
        let h = self.inner.clone();
        crate::call_here::<_, ContainerDetails, _>(async move { h.inspect_container(&id).await })
    }

    #[pyo3(signature = (options=None))]
    fn list_containers(&self, options: Option<ListContainersOptions>) -> crate::embed::Call {
        let h = self.inner.clone();
        let o: df::ListContainersOptions = options.conv().unwrap_or_default();
        crate::call_here::<_, Vec<ContainerSummary>, _>(async move { h.list_containers(&o).await })
    }

    #[pyo3(signature = (id, options=None))]
    fn logs(&self, id: String, options: Option<LogOptions>) -> PyResult<LogStream> {
        let o: df::LogOptions = options.conv().unwrap_or_default();
        LogStream::open(|| self.inner.logs(&id, &o))
    }

    fn wait_container(&self, id: String) -> crate::embed::Call {
        let h = self.inner.clone();
        crate::call_here::<_, i64, _>(async move { h.wait_container(&id).await })
    }

    #[pyo3(signature = (id, command, options=None))]
    fn exec(&self, id: String, command: Vec<String>, options: Option<ExecOptions>) -> crate::embed::Call {
        let h = self.inner.clone();
        let o: df::ExecOptions = options.conv().unwrap_or_default();
        crate::call_here::<_, ExecOutput, _>(async move { h.exec(&id, &command, &o).await })
    }

    fn build_image(&self, context_dir: std::path::PathBuf, options: BuildOptions) -> PyResult<BuildStream> {
        BuildStream::open(|| self.inner.build_image(&context_dir, &options.conv()))
    }

    fn list_images(&self) -> crate::embed::Call {
        let h = self.inner.clone();
        crate::call_here::<_, Vec<ImageSummary>, _>(async move { h.list_images().await })
    }

    fn inspect_image(&self, reference: String) -> crate::embed::Call {
        let h = self.inner.clone();
        crate::call_here::<_, ImageSummary, _>(async move { h.inspect_image(&reference).await })
    }

    fn image_exists(&self, reference: String) -> crate::embed::Call {
        let h = self.inner.clone();
        crate::call_here::<_, bool, _>(async move { h.image_exists(&reference).await })
    }

    #[pyo3(signature = (reference, options=None))]
    fn pull_image(&self, reference: String, options: Option<PullOptions>) -> PyResult<ImageProgressStream> {
        let o: df::PullOptions = options.conv().unwrap_or_default();
        ImageProgressStream::open(|| self.inner.pull_image(&reference, &o))
    }

    #[pyo3(signature = (reference, options=None))]
    fn push_image(&self, reference: String, options: Option<PushOptions>) -> PyResult<ImageProgressStream> {
        let o: df::PushOptions = options.conv().unwrap_or_default();
        ImageProgressStream::open(|| self.inner.push_image(&reference, &o))
    }

    fn tag_image(&self, source: String, target: String) -> crate::embed::Call {
        let h = self.inner.clone();
        crate::call_here::<_, (), _>(async move { h.tag_image(&source, &target).await })
    }

    #[pyo3(signature = (reference, force=false))]
    fn remove_image(&self, reference: String, force: bool) -> crate::embed::Call {
        let h = self.inner.clone();
        crate::call_here::<_, (), _>(async move { h.remove_image(&reference, force).await })
    }

    #[pyo3(signature = (name, options=None))]
    fn create_network(&self, name: String, options: Option<NetworkOptions>) -> crate::embed::Call {
        let h = self.inner.clone();
        let options: df::NetworkOptions = options.map(Conv::conv).unwrap_or_default();
        crate::call_here::<_, String, _>(async move { h.create_network(&name, &options).await })
    }

    fn remove_network(&self, name: String) -> crate::embed::Call {
        let h = self.inner.clone();
        crate::call_here::<_, (), _>(async move { h.remove_network(&name).await })
    }

    #[pyo3(signature = (labels=None))]
    fn list_networks(&self, labels: Option<Vec<String>>) -> crate::embed::Call {
        let h = self.inner.clone();
        crate::call_here::<_, Vec<NetworkSummary>, _>(async move { h.list_networks(&labels.unwrap_or_default()).await })
    }

    #[pyo3(signature = (name, options=None))]
    fn create_volume(&self, name: String, options: Option<VolumeOptions>) -> crate::embed::Call {
        let h = self.inner.clone();
        let options: df::VolumeOptions = options.map(Conv::conv).unwrap_or_default();
        crate::call_here::<_, VolumeSummary, _>(async move { h.create_volume(&name, &options).await })
    }

    #[pyo3(signature = (name, force=false))]
    fn remove_volume(&self, name: String, force: bool) -> crate::embed::Call {
        let h = self.inner.clone();
        crate::call_here::<_, (), _>(async move { h.remove_volume(&name, force).await })
    }

    #[pyo3(signature = (labels=None))]
    fn list_volumes(&self, labels: Option<Vec<String>>) -> crate::embed::Call {
        let h = self.inner.clone();
        crate::call_here::<_, Vec<VolumeSummary>, _>(async move { h.list_volumes(&labels.unwrap_or_default()).await })
    }

    fn export_image(&self, reference: String) -> PyResult<ByteStream> {
        ByteStream::open(|| self.inner.export_image(&reference))
    }

    async fn import_image(&self, archive: Py<PyAny>) -> PyResult<Vec<String>> {
        let h = self.inner.clone();
        let s = Python::attach(|py| archive.bind(py).extract::<Archive<'_>>().map(Archive::into_stream))?;
        crate::call(async move { h.import_image(s).await }).await
    }

    #[pyo3(signature = (options=None))]
    fn events(&self, options: Option<EventOptions>) -> PyResult<EventStream> {
        let o: df::EventOptions = options.conv().unwrap_or_default();
        EventStream::open(|| self.inner.events(&o))
    }

    fn stats(&self, id: String) -> crate::embed::Call {
        let h = self.inner.clone();
        crate::call_here::<_, Stats, _>(async move { h.stats(&id).await })
    }

    fn stats_stream(&self, id: String) -> PyResult<StatsStream> {
        StatsStream::open(|| self.inner.stats_stream(&id))
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Ping>()?;
    m.add_class::<HostInfo>()?;
    m.add_class::<PortMapping>()?;
    m.add_class::<Mount>()?;
    m.add_class::<RestartPolicy>()?;
    m.add_class::<Healthcheck>()?;
    m.add_class::<LogConfig>()?;
    m.add_class::<Ulimit>()?;
    m.add_class::<ContainerSpec>()?;
    m.add_class::<ListContainersOptions>()?;
    m.add_class::<ContainerSummary>()?;
    m.add_class::<ContainerState>()?;
    m.add_class::<ContainerDetails>()?;
    m.add_class::<LogOptions>()?;
    m.add_class::<LogLine>()?;
    m.add_class::<ExecOptions>()?;
    m.add_class::<ExecOutput>()?;
    m.add_class::<BuildOptions>()?;
    m.add_class::<BuildEvent>()?;
    m.add_class::<PullOptions>()?;
    m.add_class::<PushOptions>()?;
    m.add_class::<ImageProgress>()?;
    m.add_class::<ImageProgressStream>()?;
    m.add_class::<ImageSummary>()?;
    m.add_class::<IpamPool>()?;
    m.add_class::<NetworkOptions>()?;
    m.add_class::<VolumeOptions>()?;
    m.add_class::<NetworkSummary>()?;
    m.add_class::<VolumeSummary>()?;
    m.add_class::<EventOptions>()?;
    m.add_class::<Event>()?;
    m.add_class::<Stats>()?;
    m.add_class::<CopyProgress>()?;
    m.add_class::<LogStream>()?;
    m.add_class::<BuildStream>()?;
    m.add_class::<EventStream>()?;
    m.add_class::<StatsStream>()?;
    m.add_class::<ByteStream>()?;
    m.add_class::<DockerHost>()?;
    Ok(())
}
