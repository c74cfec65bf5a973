"""Type stubs of dockfleet._native (the pyo3 module). Checked against the built module by mypy.stubtest."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Generic, Sequence, TypeVar, Union, final

from typing_extensions import Self, disjoint_base

_StrPath = Union[str, "os.PathLike[str]"]
_T = TypeVar("_T")

__all__ = [
    "_shutdown_runtime",
    "_run_sync",
    "ServiceFile",
    "StackFile",
    "SwarmOptions",
    "SwarmNode",
    "Swarm",
    "LABEL_NODE_HOST",
    "scale",
    "service_status",
    "Endpoint",
    "BalancerOptions",
    "EndpointStats",
    "Balancer",
    "EtcdConfig",
    "Instance",
    "LookupOptions",
    "DiscoveryEvent",
    "DiscoveryStream",
    "Discovery",
    "HealthCheck",
    "RegistratorOptions",
    "RegistratorEvent",
    "RegistratorStream",
    "registrator",
    "IpamPool",
    "NetworkOptions",
    "VolumeOptions",
    "NetworkSummary",
    "VolumeSummary",
    "Dependency",
    "StackBuild",
    "StackService",
    "Stack",
    "StackOptions",
    "ServiceStatus",
    "StackDownReport",
    "parse_compose",
    "load_compose",
    "load_compose_files",
    "stack_up",
    "stack_ps",
    "stack_down",
    "Route",
    "ProxyOptions",
    "ProxyEndpointStats",
    "Proxy",
    "LATENCY_BOUNDS_MS",
    "RenderOptions",
    "RenderEvent",
    "RenderStream",
    "render_config",
    "default_template",
    "sync_config",
    "LABEL_STACK",
    "MAX_COMPOSE_BYTES",
    "RolloutOptions",
    "RolloutEvent",
    "RolloutStream",
    "rollout",
    "rollback",
    "LABEL_SPEC",
    "LABEL_PREVIOUS_SPEC",
    "LABEL_PREVIOUS_SPEC_HASH",
    "LABEL_RESTARTS",
    "LABEL_CPU_RESERVATION",
    "LABEL_MEMORY_RESERVATION",
    "SuperviseOptions",
    "Reconciliation",
    "ReconcileStream",
    "supervise",
    "ServiceLogLine",
    "ServiceExecOptions",
    "TaskExec",
    "service_exec",
    "TaskStats",
    "service_stats",
    "prometheus_text",
    "ServiceLogStream",
    "service_logs",
    "Task",
    "Observed",
    "Action",
    "Plan",
    "PlanOptions",
    "ApplyReport",
    "Deployment",
    "observe",
    "plan",
    "apply",
    "deploy",
    "remove_service",
    "spec_hash",
    "task_container",
    "LABEL_SERVICE",
    "LABEL_SLOT",
    "LABEL_SPEC_HASH",
    "ServicePort",
    "Placement",
    "Resources",
    "ServiceRestartPolicy",
    "UpdateConfig",
    "ServiceSpec",
    "HostState",
    "Assignment",
    "Schedule",
    "ScheduleOptions",
    "schedule",
    "__version__",
    "DockfleetError",
    "InvalidArgumentError",
    "InvalidAddressError",
    "InsecureError",
    "TlsError",
    "EngineUnreachableError",
    "TimeoutError",
    "NotFoundError",
    "ConflictError",
    "UnauthorizedError",
    "EngineError",
    "IoError",
    "CancelledError",
    "InternalError",
    "ERROR_CODES",
    "_panic_for_tests",
    "_panic_now_for_tests",
    "Ping",
    "HostInfo",
    "PortMapping",
    "Mount",
    "RestartPolicy",
    "LogConfig",
    "Ulimit",
    "Healthcheck",
    "ContainerSpec",
    "ListContainersOptions",
    "ContainerSummary",
    "ContainerState",
    "ContainerDetails",
    "LogOptions",
    "LogLine",
    "ExecOptions",
    "ExecOutput",
    "BuildOptions",
    "BuildEvent",
    "ImageSummary",
    "RegistryAuth",
    "PullOptions",
    "PushOptions",
    "ImageProgress",
    "ImageProgressStream",
    "docker_config_auth",
    "EventOptions",
    "Event",
    "Stats",
    "CopyProgress",
    "LogStream",
    "BuildStream",
    "EventStream",
    "StatsStream",
    "ByteStream",
    "DockerHost",
    "TlsConfig",
    "HostConfig",
    "ProbeOptions",
    "HostStatus",
    "Fleet",
    "CopyStream",
    "copy_image",
    "distribute_image",
]

__version__: str
ERROR_CODES: list[str]

class DockfleetError(Exception):
    """Base class of every dockfleet error; `.code` is its stable code."""

    code: str

class InvalidArgumentError(DockfleetError): ...
class InvalidAddressError(DockfleetError): ...
class InsecureError(DockfleetError): ...
class TlsError(DockfleetError): ...
class EngineUnreachableError(DockfleetError): ...
class TimeoutError(DockfleetError): ...
class NotFoundError(DockfleetError): ...
class ConflictError(DockfleetError): ...
class UnauthorizedError(DockfleetError): ...
class EngineError(DockfleetError): ...
class IoError(DockfleetError): ...
class CancelledError(DockfleetError): ...
class InternalError(DockfleetError): ...

def _shutdown_runtime() -> None: ...
def _run_sync(coroutine: Any) -> Any: ...
async def _panic_for_tests(message: str) -> None: ...
def _panic_now_for_tests(message: str) -> None: ...

@final
class TlsConfig:
    """Client certificate, key, and the CA that signed the engine's certificate (PEM files)."""

    ca: Path
    cert: Path
    key: Path
    def __new__(cls, *, ca: _StrPath = ..., cert: _StrPath = ..., key: _StrPath = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class HostConfig:
    """How to reach one engine. Timeouts in seconds. Plain TCP off loopback needs `insecure=True`."""

    name: str
    address: str
    labels: dict[str, str]
    tls: TlsConfig | None
    insecure: bool
    connect_timeout: float
    request_timeout: float
    def __new__(cls, *, name: str = ..., address: str = ..., labels: dict[str, str] = ..., tls: TlsConfig | None = ..., insecure: bool = ..., connect_timeout: float = ..., request_timeout: float = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Ping:
    """Answer to `DockerHost.ping()`; `latency` in seconds."""

    latency: float
    api_version: str
    def __new__(cls, *, latency: float = ..., api_version: str = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class HostInfo:
    """What an engine says about itself."""

    name: str
    id: str
    engine_version: str
    api_version: str
    os: str
    os_type: str
    arch: str
    cpus: int
    memory_bytes: int
    labels: dict[str, str]
    containers: int
    containers_running: int
    images: int
    storage_driver: str
    runtimes: list[str]
    def __new__(cls, *, name: str = ..., id: str = ..., engine_version: str = ..., api_version: str = ..., os: str = ..., os_type: str = ..., arch: str = ..., cpus: int = ..., memory_bytes: int = ..., labels: dict[str, str] = ..., containers: int = ..., containers_running: int = ..., images: int = ..., storage_driver: str = ..., runtimes: list[str] = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class PortMapping:
    """A container port, optionally published on the host (`host_port=0`: the engine picks one)."""

    container_port: int
    host_port: int | None
    protocol: str
    host_ip: str | None
    def __new__(cls, *, container_port: int = ..., host_port: int | None = ..., protocol: str = ..., host_ip: str | None = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Mount:
    """A bind mount (absolute `source`) or a named volume; a bind's `propagation` (`rprivate`, `rshared`, …) and SELinux relabelling (`z`, `Z`), a new volume's `no_copy`."""

    source: str
    target: str
    read_only: bool
    propagation: str | None
    selinux: str | None
    no_copy: bool
    def __new__(cls, *, source: str = ..., target: str = ..., read_only: bool = ..., propagation: str | None = ..., selinux: str | None = ..., no_copy: bool = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class RestartPolicy:
    """`no`, `always`, `unless-stopped` or `on-failure` (with `max_retries`)."""

    name: str
    max_retries: int | None
    def __new__(cls, *, name: str = ..., max_retries: int | None = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class LogConfig:
    """A log driver and its options (`json-file` with `max-size`, `max-file`); an empty driver is the engine's default."""

    driver: str
    options: dict[str, str]
    def __new__(cls, *, driver: str = ..., options: dict[str, str] = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Ulimit:
    """A resource limit of a container's processes (`nofile`); `-1` is unlimited."""

    name: str
    soft: int
    hard: int
    def __new__(cls, *, name: str = ..., soft: int = ..., hard: int = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Healthcheck:
    """A Docker HEALTHCHECK; durations in seconds."""

    test: list[str]
    interval: float | None
    timeout: float | None
    retries: int | None
    start_period: float | None
    def __new__(cls, *, test: list[str] = ..., interval: float | None = ..., timeout: float | None = ..., retries: int | None = ..., start_period: float | None = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ContainerSpec:
    """Everything needed to create one container."""

    name: str | None
    image: str
    command: list[str]
    entrypoint: list[str] | None
    env: dict[str, str]
    labels: dict[str, str]
    ports: list[PortMapping]
    mounts: list[Mount]
    restart_policy: RestartPolicy | None
    cpus: float | None
    memory_bytes: int | None
    pids_limit: int | None
    cpu_shares: int | None
    cpuset_cpus: str | None
    memory_swap_bytes: int | None
    memory_swappiness: int | None
    oom_kill_disable: bool
    oom_score_adj: int | None
    runtime: str | None
    healthcheck: Healthcheck | None
    network: str | None
    extra_networks: list[str]
    network_aliases: list[str]
    hostname: str | None
    extra_hosts: list[str]
    init: bool | None
    read_only: bool
    cap_add: list[str]
    cap_drop: list[str]
    logging: LogConfig | None
    ulimits: list[Ulimit]
    sysctls: dict[str, str]
    tmpfs: list[str]
    shm_size: int | None
    dns: list[str]
    dns_search: list[str]
    dns_opt: list[str]
    working_dir: str | None
    user: str | None
    group_add: list[str]
    stop_timeout: int | None
    stop_signal: str | None
    privileged: bool
    security_opt: list[str]
    devices: list[str]
    tty: bool
    stdin_open: bool
    pid: str | None
    ipc: str | None
    def __new__(cls, *, name: str | None = ..., image: str = ..., command: list[str] = ..., entrypoint: list[str] | None = ..., env: dict[str, str] = ..., labels: dict[str, str] = ..., ports: list[PortMapping] = ..., mounts: list[Mount] = ..., restart_policy: RestartPolicy | None = ..., cpus: float | None = ..., memory_bytes: int | None = ..., pids_limit: int | None = ..., cpu_shares: int | None = ..., cpuset_cpus: str | None = ..., memory_swap_bytes: int | None = ..., memory_swappiness: int | None = ..., oom_kill_disable: bool = ..., oom_score_adj: int | None = ..., runtime: str | None = ..., healthcheck: Healthcheck | None = ..., network: str | None = ..., extra_networks: list[str] = ..., network_aliases: list[str] = ..., hostname: str | None = ..., extra_hosts: list[str] = ..., init: bool | None = ..., read_only: bool = ..., cap_add: list[str] = ..., cap_drop: list[str] = ..., logging: LogConfig | None = ..., ulimits: list[Ulimit] = ..., sysctls: dict[str, str] = ..., tmpfs: list[str] = ..., shm_size: int | None = ..., dns: list[str] = ..., dns_search: list[str] = ..., dns_opt: list[str] = ..., working_dir: str | None = ..., user: str | None = ..., group_add: list[str] = ..., stop_timeout: int | None = ..., stop_signal: str | None = ..., privileged: bool = ..., security_opt: list[str] = ..., devices: list[str] = ..., tty: bool = ..., stdin_open: bool = ..., pid: str | None = ..., ipc: str | None = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ListContainersOptions:
    """Which containers `list_containers` returns: `labels` entries are `key` or `key=value`."""

    all: bool
    labels: list[str]
    name: str | None
    def __new__(cls, *, all: bool = ..., labels: list[str] = ..., name: str | None = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ContainerSummary:
    """One container in a listing."""

    id: str
    name: str
    image: str
    state: str
    status: str
    labels: dict[str, str]
    ports: list[PortMapping]
    created: int
    network_mode: str
    def __new__(cls, *, id: str = ..., name: str = ..., image: str = ..., state: str = ..., status: str = ..., labels: dict[str, str] = ..., ports: list[PortMapping] = ..., created: int = ..., network_mode: str = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ContainerState:
    """The state part of `ContainerDetails`."""

    status: str
    running: bool
    exit_code: int
    pid: int
    started_at: str
    finished_at: str
    health: str | None
    oom_killed: bool
    def __new__(cls, *, status: str = ..., running: bool = ..., exit_code: int = ..., pid: int = ..., started_at: str = ..., finished_at: str = ..., health: str | None = ..., oom_killed: bool = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ContainerDetails:
    """What `inspect_container` reports."""

    id: str
    name: str
    image: str
    image_id: str
    state: ContainerState
    labels: dict[str, str]
    ports: list[PortMapping]
    networks: dict[str, str]
    restart_count: int
    created: str
    privileged: bool
    security_opt: list[str]
    network_mode: str
    exposed_ports: list[PortMapping]
    def __new__(cls, *, id: str = ..., name: str = ..., image: str = ..., image_id: str = ..., state: ContainerState = ..., labels: dict[str, str] = ..., ports: list[PortMapping] = ..., networks: dict[str, str] = ..., restart_count: int = ..., created: str = ..., privileged: bool = ..., security_opt: list[str] = ..., network_mode: str = ..., exposed_ports: list[PortMapping] = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class LogOptions:
    """Which part of the logs to stream."""

    follow: bool
    stdout: bool
    stderr: bool
    tail: int | None
    since: int | None
    timestamps: bool
    def __new__(cls, *, follow: bool = ..., stdout: bool = ..., stderr: bool = ..., tail: int | None = ..., since: int | None = ..., timestamps: bool = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class LogLine:
    """One chunk of container output; `stream` is `stdout`, `stderr` or `console`."""

    stream: str
    message: str
    def __new__(cls, *, stream: str = ..., message: str = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ExecOptions:
    """Options of `exec`."""

    env: dict[str, str]
    working_dir: str | None
    user: str | None
    def __new__(cls, *, env: dict[str, str] = ..., working_dir: str | None = ..., user: str | None = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ExecOutput:
    """Result of `exec`."""

    exit_code: int
    stdout: str
    stderr: str
    def __new__(cls, *, exit_code: int = ..., stdout: str = ..., stderr: str = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class BuildOptions:
    """Options of `build_image`."""

    tag: str
    dockerfile: str | None
    build_args: dict[str, str]
    labels: dict[str, str]
    no_cache: bool
    target: str | None
    def __new__(cls, *, tag: str = ..., dockerfile: str | None = ..., build_args: dict[str, str] = ..., labels: dict[str, str] = ..., no_cache: bool = ..., target: str | None = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class BuildEvent:
    """A build progress event: `kind` is `context`, `step`, `output` or `done`."""

    kind: str
    message: str
    image_id: str | None
    def __new__(cls, *, kind: str = ..., message: str = ..., image_id: str | None = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ImageSummary:
    """One image."""

    id: str
    tags: list[str]
    size_bytes: int
    created: int
    labels: dict[str, str]
    def __new__(cls, *, id: str = ..., tags: list[str] = ..., size_bytes: int = ..., created: int = ..., labels: dict[str, str] = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class EventOptions:
    """Which engine events to stream; without `since_nanos` the stream starts when `events()` is called."""

    since_nanos: int | None
    until_nanos: int | None
    filters: dict[str, list[str]]
    def __new__(cls, *, since_nanos: int | None = ..., until_nanos: int | None = ..., filters: dict[str, list[str]] = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Event:
    """One engine event."""

    host: str
    kind: str
    action: str
    id: str
    attributes: dict[str, str]
    time_nanos: int
    def __new__(cls, *, host: str = ..., kind: str = ..., action: str = ..., id: str = ..., attributes: dict[str, str] = ..., time_nanos: int = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Stats:
    """Resource use of one container at one moment."""

    id: str
    cpu_percent: float
    memory_bytes: int
    memory_limit_bytes: int
    memory_percent: float
    network_rx_bytes: int
    network_tx_bytes: int
    block_read_bytes: int
    block_write_bytes: int
    pids: int
    def __new__(cls, *, id: str = ..., cpu_percent: float = ..., memory_bytes: int = ..., memory_limit_bytes: int = ..., memory_percent: float = ..., network_rx_bytes: int = ..., network_tx_bytes: int = ..., block_read_bytes: int = ..., block_write_bytes: int = ..., pids: int = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class CopyProgress:
    """Progress of `copy_image`."""

    image: str
    source: str
    target: str
    bytes: int
    total_bytes: int | None
    done: bool
    def __new__(cls, *, image: str = ..., source: str = ..., target: str = ..., bytes: int = ..., total_bytes: int | None = ..., done: bool = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ProbeOptions:
    """Options of `Fleet.probe`; `timeout` in seconds per host."""

    timeout: float
    def __new__(cls, *, timeout: float = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class HostStatus:
    """The outcome of probing one host."""

    name: str
    address: str
    labels: dict[str, str]
    reachable: bool
    latency: float | None
    info: HostInfo | None
    error_code: str | None
    error: str | None
    def __new__(cls, *, name: str = ..., address: str = ..., labels: dict[str, str] = ..., reachable: bool = ..., latency: float | None = ..., info: HostInfo | None = ..., error_code: str | None = ..., error: str | None = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@disjoint_base
class _Stream(Generic[_T]):
    def __aiter__(self) -> _Stream[_T]: ...
    async def __anext__(self) -> _T: ...
    async def aclose(self) -> None:
        """Stops the stream and releases its connection."""

@final
class LogStream(_Stream[LogLine]): ...

@final
class BuildStream(_Stream[BuildEvent]): ...

@final
class ImageProgressStream(_Stream[ImageProgress]): ...

@final
class EventStream(_Stream[Event]): ...

@final
class StatsStream(_Stream[Stats]): ...

@final
class ByteStream(_Stream[bytes]): ...

@final
class CopyStream(_Stream[CopyProgress]): ...

@final
@final
class DockerHost:
    """One Docker engine. `DockerHost(config)` validates without contacting it; `connect` pings it."""

    def __new__(cls, config: HostConfig) -> Self: ...
    @staticmethod
    async def connect(config: HostConfig) -> DockerHost: ...
    @staticmethod
    async def from_env(name: str) -> DockerHost: ...
    @property
    def name(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def labels(self) -> dict[str, str]: ...
    async def ping(self) -> Ping: ...
    async def info(self) -> HostInfo: ...
    async def create_container(self, spec: ContainerSpec) -> str: ...
    async def start_container(self, id: str) -> None: ...
    async def stop_container(self, id: str, grace: float | None = None) -> None: ...
    async def kill_container(self, id: str, signal: str | None = None) -> None: ...
    async def rename_container(self, id: str, name: str) -> None: ...
    async def remove_container(self, id: str, force: bool = False, volumes: bool = False) -> None: ...
    async def inspect_container(self, id: str) -> ContainerDetails: ...
    async def list_containers(self, options: ListContainersOptions | None = None) -> list[ContainerSummary]: ...
    def logs(self, id: str, options: LogOptions | None = None) -> LogStream: ...
    async def wait_container(self, id: str) -> int: ...
    async def exec(self, id: str, command: list[str], options: ExecOptions | None = None) -> ExecOutput: ...
    def build_image(self, context_dir: _StrPath, options: BuildOptions) -> BuildStream: ...
    async def list_images(self) -> list[ImageSummary]: ...
    async def inspect_image(self, reference: str) -> ImageSummary: ...
    async def image_exists(self, reference: str) -> bool: ...
    async def remove_image(self, reference: str, force: bool = False) -> None: ...
    def pull_image(self, reference: str, options: PullOptions | None = None) -> ImageProgressStream: ...
    def push_image(self, reference: str, options: PushOptions | None = None) -> ImageProgressStream: ...
    async def tag_image(self, source: str, target: str) -> None: ...
    def export_image(self, reference: str) -> ByteStream: ...
    async def create_network(self, name: str, options: NetworkOptions | None = None) -> str: ...
    async def remove_network(self, name: str) -> None: ...
    async def list_networks(self, labels: list[str] | None = None) -> list[NetworkSummary]: ...
    async def create_volume(self, name: str, options: VolumeOptions | None = None) -> VolumeSummary: ...
    async def remove_volume(self, name: str, force: bool = False) -> None: ...
    async def list_volumes(self, labels: list[str] | None = None) -> list[VolumeSummary]: ...
    async def import_image(self, archive: bytes | ByteStream) -> list[str]: ...
    def events(self, options: EventOptions | None = None) -> EventStream: ...
    async def stats(self, id: str) -> Stats: ...
    def stats_stream(self, id: str) -> StatsStream: ...

@final
@final
class Fleet:
    """A named set of hosts with labels, from an inventory file or built in code."""

    def __new__(cls) -> Self: ...
    @staticmethod
    def from_file(path: _StrPath) -> Fleet: ...
    @staticmethod
    def parse(text: str, format: str, base_dir: _StrPath | None = None) -> Fleet: ...
    def add(self, host: DockerHost) -> None: ...
    def add_docker(self, config: HostConfig) -> DockerHost: ...
    def set_registry_auth(self, auth: RegistryAuth) -> None: ...
    def remove(self, name: str) -> DockerHost: ...
    def hosts(self) -> list[DockerHost]: ...
    def names(self) -> list[str]: ...
    def host(self, name: str) -> DockerHost: ...
    def select(self, selector: list[str]) -> list[DockerHost]: ...
    def __len__(self) -> int: ...
    async def probe(self, options: ProbeOptions | None = None) -> list[HostStatus]: ...

def copy_image(source: DockerHost, target: DockerHost, reference: str) -> CopyStream: ...
def docker_config_auth(server: str, path: _StrPath | None = None) -> RegistryAuth | None: ...
async def distribute_image(source: DockerHost, targets: list[DockerHost], reference: str) -> list[str]: ...

@final
class ServicePort:
    """A port of a service: `target` in the container, optionally `published` on each host."""

    target: int
    published: int | None
    protocol: str
    mode: str | None
    def __new__(cls, *, target: int = ..., published: int | None = ..., protocol: str = ..., mode: str | None = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Placement:
    """Where tasks may go (`constraints` like `role==manager`) and how they spread."""

    constraints: list[str]
    preferences: list[str]
    max_replicas_per_host: int | None
    strategy: str
    def __new__(cls, *, constraints: list[str] = ..., preferences: list[str] = ..., max_replicas_per_host: int | None = ..., strategy: str = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Resources:
    """CPU and memory reservations and limits per task."""

    cpu_reservation: float | None
    cpu_limit: float | None
    memory_reservation: int | None
    memory_limit: int | None
    pids_limit: int | None
    cpu_shares: int | None
    cpuset_cpus: str | None
    memory_swap_limit: int | None
    memory_swappiness: int | None
    oom_kill_disable: bool
    def __new__(cls, *, cpu_reservation: float | None = ..., cpu_limit: float | None = ..., memory_reservation: int | None = ..., memory_limit: int | None = ..., pids_limit: int | None = ..., cpu_shares: int | None = ..., cpuset_cpus: str | None = ..., memory_swap_limit: int | None = ..., memory_swappiness: int | None = ..., oom_kill_disable: bool = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ServiceRestartPolicy:
    """When a stopped task is replaced; `delay` and `window` in seconds."""

    condition: str
    delay: float
    max_attempts: int
    window: float
    def __new__(cls, *, condition: str = ..., delay: float = ..., max_attempts: int = ..., window: float = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class UpdateConfig:
    """How updates and rollbacks replace tasks; `delay` and `monitor` in seconds."""

    parallelism: int
    delay: float
    order: str
    monitor: float
    failure_action: str
    max_failure_ratio: float
    def __new__(cls, *, parallelism: int = ..., delay: float = ..., order: str = ..., monitor: float = ..., failure_action: str = ..., max_failure_ratio: float = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ServiceSpec:
    """A replicated or global service."""

    name: str
    image: str
    command: list[str]
    entrypoint: list[str] | None
    working_dir: str | None
    user: str | None
    group_add: list[str]
    stop_signal: str | None
    hostname: str | None
    extra_hosts: list[str]
    init: bool | None
    read_only: bool
    cap_add: list[str]
    cap_drop: list[str]
    logging: LogConfig | None
    ulimits: list[Ulimit]
    sysctls: dict[str, str]
    tmpfs: list[str]
    shm_size: int | None
    dns: list[str]
    dns_search: list[str]
    dns_opt: list[str]
    env: dict[str, str]
    labels: dict[str, str]
    ports: list[ServicePort]
    volumes: list[Mount]
    mode: str
    replicas: int
    placement: Placement
    resources: Resources
    restart_policy: ServiceRestartPolicy
    healthcheck: Healthcheck | None
    update_config: UpdateConfig
    rollback_config: UpdateConfig
    stop_grace_period: float
    shutdown_delay: float
    networks: list[str]
    network_aliases: list[str]
    endpoint_mode: str | None
    privileged: bool
    security_opt: list[str]
    devices: list[str]
    tty: bool
    stdin_open: bool
    pid: str | None
    ipc: str | None
    oom_score_adj: int | None
    runtime: str | None
    pull_policy: str | None
    allow_privileged: bool
    allow_host_mounts: bool
    secrets: list[ServiceFile]
    configs: list[ServiceFile]
    def __new__(cls, *, name: str = ..., image: str = ..., command: list[str] = ..., entrypoint: list[str] | None = ..., working_dir: str | None = ..., user: str | None = ..., group_add: list[str] = ..., stop_signal: str | None = ..., hostname: str | None = ..., extra_hosts: list[str] = ..., init: bool | None = ..., read_only: bool = ..., cap_add: list[str] = ..., cap_drop: list[str] = ..., logging: LogConfig | None = ..., ulimits: list[Ulimit] = ..., sysctls: dict[str, str] = ..., tmpfs: list[str] = ..., shm_size: int | None = ..., dns: list[str] = ..., dns_search: list[str] = ..., dns_opt: list[str] = ..., env: dict[str, str] = ..., labels: dict[str, str] = ..., ports: list[ServicePort] = ..., volumes: list[Mount] = ..., mode: str = ..., replicas: int = ..., placement: Placement = ..., resources: Resources = ..., restart_policy: ServiceRestartPolicy = ..., healthcheck: Healthcheck | None = ..., update_config: UpdateConfig = ..., rollback_config: UpdateConfig = ..., stop_grace_period: float = ..., shutdown_delay: float = ..., networks: list[str] = ..., network_aliases: list[str] = ..., endpoint_mode: str | None = ..., privileged: bool = ..., security_opt: list[str] = ..., devices: list[str] = ..., tty: bool = ..., stdin_open: bool = ..., pid: str | None = ..., ipc: str | None = ..., oom_score_adj: int | None = ..., runtime: str | None = ..., pull_policy: str | None = ..., allow_privileged: bool = ..., allow_host_mounts: bool = ..., secrets: list[ServiceFile] = ..., configs: list[ServiceFile] = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class HostState:
    """A host as the scheduler sees it; `used_ports` like `"8080/tcp"`; `services`, those running a task there (what `node.runs` constraints look at); `runtimes`, its engine's (empty: unknown, any)."""

    name: str
    labels: dict[str, str]
    available: bool
    cpus: float
    memory_bytes: int
    reserved_cpus: float
    reserved_memory_bytes: int
    used_ports: set[str]
    tasks: int
    service_tasks: int
    services: set[str]
    runtimes: set[str]
    def __new__(cls, *, name: str = ..., labels: dict[str, str] = ..., available: bool = ..., cpus: float = ..., memory_bytes: int = ..., reserved_cpus: float = ..., reserved_memory_bytes: int = ..., used_ports: set[str] = ..., tasks: int = ..., service_tasks: int = ..., services: set[str] = ..., runtimes: set[str] = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Assignment:
    """Where one slot goes."""

    slot: int
    host: str
    def __new__(cls, *, slot: int = ..., host: str = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Schedule:
    """The scheduler's answer: placements, unplaced slots, and why hosts took no (more) tasks."""

    assignments: list[Assignment]
    unplaced: list[int]
    reasons: dict[str, str]
    def __new__(cls, *, assignments: list[Assignment] = ..., unplaced: list[int] = ..., reasons: dict[str, str] = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ScheduleOptions:
    """Options of `schedule`: the seed of tie-breaks and of the random strategy."""

    seed: int
    def __new__(cls, *, seed: int = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

def schedule(spec: ServiceSpec, hosts: list[HostState], slots: list[int], options: ScheduleOptions | None = None) -> Schedule: ...

@final
class Task:
    """One task container as observed on an engine."""

    host: str
    id: str
    name: str
    slot: int
    spec_hash: str
    state: str
    status: str
    exit_code: int | None
    restarts: int
    restarts_since_ms: int
    previous_spec_hash: str
    def __new__(cls, *, host: str = ..., id: str = ..., name: str = ..., slot: int = ..., spec_hash: str = ..., state: str = ..., status: str = ..., exit_code: int | None = ..., restarts: int = ..., restarts_since_ms: int = ..., previous_spec_hash: str = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Observed:
    """What `observe` saw: the hosts, the service's tasks, tasks held by hosts within their grace, the specs recorded on the tasks (by hash) and the time (ms since the epoch)."""

    hosts: list[HostState]
    tasks: list[Task]
    held: list[Task]
    specs: dict[str, ServiceSpec]
    time_ms: int
    def __new__(cls, *, hosts: list[HostState] = ..., tasks: list[Task] = ..., held: list[Task] = ..., specs: dict[str, ServiceSpec] = ..., time_ms: int = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Action:
    """One step of a plan: `kind` is `create`, `remove` or `update`."""

    kind: str
    host: str
    slot: int
    id: str | None
    reason: str
    restarts: int
    restarts_since_ms: int
    def __new__(cls, *, kind: str = ..., host: str = ..., slot: int = ..., id: str | None = ..., reason: str = ..., restarts: int = ..., restarts_since_ms: int = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Plan:
    """What `apply` would do, and why hosts took no (more) tasks."""

    service: str
    spec_hash: str
    actions: list[Action]
    unplaced: list[int]
    reasons: dict[str, str]
    def __new__(cls, *, service: str = ..., spec_hash: str = ..., actions: list[Action] = ..., unplaced: list[int] = ..., reasons: dict[str, str] = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class PlanOptions:
    """Options of `plan` and `deploy`; `force` replaces every running task (a rolling restart)."""

    seed: int
    force: bool
    def __new__(cls, *, seed: int = ..., force: bool = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ApplyReport:
    """What `apply` did."""

    created: list[Task]
    removed: list[str]
    def __new__(cls, *, created: list[Task] = ..., removed: list[str] = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Deployment:
    """What `deploy` did: the plan it carried out and the report."""

    plan: Plan
    report: ApplyReport
    def __new__(cls, *, plan: Plan = ..., report: ApplyReport = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

async def observe(fleet: Fleet, service: str) -> Observed: ...
def plan(spec: ServiceSpec, observed: Observed, options: PlanOptions | None = None) -> Plan: ...
async def apply(fleet: Fleet, spec: ServiceSpec, plan: Plan) -> ApplyReport: ...
async def deploy(fleet: Fleet, spec: ServiceSpec, options: PlanOptions | None = None) -> Deployment: ...
async def remove_service(backend: Fleet | Swarm, service: str) -> int: ...
def spec_hash(spec: ServiceSpec) -> str: ...
def task_container(spec: ServiceSpec, slot: int) -> ContainerSpec: ...

LABEL_SERVICE: str
LABEL_SLOT: str
LABEL_SPEC_HASH: str
LABEL_SPEC: str
LABEL_PREVIOUS_SPEC: str
LABEL_PREVIOUS_SPEC_HASH: str
LABEL_RESTARTS: str
LABEL_CPU_RESERVATION: str
LABEL_MEMORY_RESERVATION: str

@final
class SuperviseOptions:
    """Options of `supervise`: `resync`, `debounce` and `host_grace` in seconds; `inventory`, a file read again at every pass (hosts joining and leaving)."""

    resync: float
    debounce: float
    seed: int
    host_grace: float
    inventory: Path | None
    def __new__(cls, *, resync: float = ..., debounce: float = ..., seed: int = ..., host_grace: float = ..., inventory: _StrPath | None = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Reconciliation:
    """One pass of `supervise` that changed something or failed (`error_code`, `error`)."""

    trigger: str
    deployment: Deployment
    error_code: str | None
    error: str | None
    def __new__(cls, *, trigger: str = ..., deployment: Deployment = ..., error_code: str | None = ..., error: str | None = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ReconcileStream(_Stream[Reconciliation]): ...

def supervise(fleet: Fleet, spec: ServiceSpec, options: SuperviseOptions | None = None) -> ReconcileStream: ...

@final
class ServiceLogLine:
    """One chunk of a service's output (`service_logs`), with the task that wrote it."""

    host: str
    id: str
    name: str
    slot: int
    stream: str
    message: str
    def __new__(cls, *, host: str = ..., id: str = ..., name: str = ..., slot: int = ..., stream: str = ..., message: str = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ServiceLogStream(_Stream[ServiceLogLine]): ...

def service_logs(backend: Fleet | Swarm, service: str, options: LogOptions | None = None) -> ServiceLogStream: ...

async def service_exec(backend: Fleet | Swarm, service: str, command: list[str], options: ServiceExecOptions | None = None) -> list[TaskExec]: ...
async def service_stats(backend: Fleet | Swarm, service: str) -> list[TaskStats]: ...
def prometheus_text(samples: list[TaskStats]) -> str: ...

@final
class RolloutOptions:
    """Options of `rollout` and `rollback`: `ready_timeout` in seconds; `force` replaces every task even if its spec is unchanged (a rolling restart)."""

    seed: int
    ready_timeout: float
    force: bool
    def __new__(cls, *, seed: int = ..., ready_timeout: float = ..., force: bool = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class RolloutEvent:
    """One step of a rollout: `kind` is `started`, `image`, `task-started`, `task-updated`, `task-failed`, then `completed` or `paused`; `done` of `total` for a progress bar; `phase` is `update` or `rollback`."""

    kind: str
    phase: str
    service: str
    host: str
    slot: int
    id: str | None
    done: int
    total: int
    failed: int
    message: str
    def __new__(cls, *, kind: str = ..., phase: str = ..., service: str = ..., host: str = ..., slot: int = ..., id: str | None = ..., done: int = ..., total: int = ..., failed: int = ..., message: str = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class RolloutStream(_Stream[RolloutEvent]): ...

def rollout(backend: Fleet | Swarm, spec: ServiceSpec, options: RolloutOptions | None = None) -> RolloutStream: ...
def rollback(backend: Fleet | Swarm, service: str, options: RolloutOptions | None = None) -> RolloutStream: ...

LABEL_STACK: str
MAX_COMPOSE_BYTES: int

def parse_compose(name: str, text: str, base_dir: _StrPath | None = None) -> Stack: ...
def load_compose(name: str, path: _StrPath) -> Stack: ...
def load_compose_files(name: str, paths: Sequence[_StrPath]) -> Stack: ...
def stack_up(backend: Fleet | Swarm, stack: Stack, options: StackOptions | None = None) -> RolloutStream: ...
async def stack_ps(backend: Fleet | Swarm, stack: str) -> list[ServiceStatus]: ...
async def stack_down(backend: Fleet | Swarm, stack: str, remove_volumes: bool = False) -> StackDownReport: ...

@final
class IpamPool:
    """One address pool of a network: `subnet` in CIDR form, optionally the `ip_range` containers get addresses from, the `gateway`, and `aux_addresses` (name to address) left out."""

    subnet: str
    ip_range: str | None
    gateway: str | None
    aux_addresses: dict[str, str]
    def __new__(cls, *, subnet: str = ..., ip_range: str | None = ..., gateway: str | None = ..., aux_addresses: dict[str, str] = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class NetworkOptions:
    """Options of `create_network`: `driver` (`bridge` when `None`), labels, driver options, `internal` (no route out), `attachable` (Swarm overlays), `enable_ipv6` and address pools."""

    driver: str | None
    labels: dict[str, str]
    driver_opts: dict[str, str]
    internal: bool
    attachable: bool
    enable_ipv6: bool
    ipam: list[IpamPool]
    def __new__(cls, *, driver: str | None = ..., labels: dict[str, str] = ..., driver_opts: dict[str, str] = ..., internal: bool = ..., attachable: bool = ..., enable_ipv6: bool = ..., ipam: list[IpamPool] = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class VolumeOptions:
    """Options of `create_volume`: `driver` (`local` when `None`), labels, and the driver's options (`local` takes `type`, `device`, `o` and `size`)."""

    driver: str | None
    labels: dict[str, str]
    driver_opts: dict[str, str]
    def __new__(cls, *, driver: str | None = ..., labels: dict[str, str] = ..., driver_opts: dict[str, str] = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class NetworkSummary:
    """A network on one engine."""

    id: str
    name: str
    driver: str
    labels: dict[str, str]
    driver_opts: dict[str, str]
    internal: bool
    attachable: bool
    enable_ipv6: bool
    ipam: list[IpamPool]
    def __new__(cls, *, id: str = ..., name: str = ..., driver: str = ..., labels: dict[str, str] = ..., driver_opts: dict[str, str] = ..., internal: bool = ..., attachable: bool = ..., enable_ipv6: bool = ..., ipam: list[IpamPool] = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class VolumeSummary:
    """A named volume on one engine."""

    name: str
    driver: str
    mountpoint: str
    labels: dict[str, str]
    driver_opts: dict[str, str]
    def __new__(cls, *, name: str = ..., driver: str = ..., mountpoint: str = ..., labels: dict[str, str] = ..., driver_opts: dict[str, str] = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Dependency:
    """A dependency of a stack service: `condition` is `service_started`, `service_healthy` or `service_completed_successfully`; `restart` restarts the dependent when a deploy replaces the dependency; `required=False` skips a dependency the stack lacks or that misses its condition."""

    service: str
    condition: str
    restart: bool
    required: bool
    def __new__(cls, *, service: str = ..., condition: str = ..., restart: bool = ..., required: bool = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class StackBuild:
    """How a stack service's image is built (compose's `build:`)."""

    context: Path
    dockerfile: str | None
    args: dict[str, str]
    target: str | None
    labels: dict[str, str]
    no_cache: bool
    def __new__(cls, *, context: _StrPath = ..., dockerfile: str | None = ..., args: dict[str, str] = ..., target: str | None = ..., labels: dict[str, str] = ..., no_cache: bool = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class StackService:
    """One service of a stack: its compose name, spec, dependencies and build."""

    name: str
    spec: ServiceSpec
    depends_on: list[Dependency]
    build: StackBuild | None
    def __new__(cls, *, name: str = ..., spec: ServiceSpec = ..., depends_on: list[Dependency] = ..., build: StackBuild | None = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Stack:
    """A stack: services, and the networks, volumes, secrets and configs it creates."""

    name: str
    services: list[StackService]
    networks: list[str]
    volumes: list[str]
    network_options: dict[str, NetworkOptions]
    volume_options: dict[str, VolumeOptions]
    secrets: list[StackFile]
    configs: list[StackFile]
    def __new__(cls, *, name: str = ..., services: list[StackService] = ..., networks: list[str] = ..., volumes: list[str] = ..., network_options: dict[str, NetworkOptions] = ..., volume_options: dict[str, VolumeOptions] = ..., secrets: list[StackFile] = ..., configs: list[StackFile] = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class StackOptions:
    """Options of `stack_up`: `dependency_timeout` in seconds; `prune` removes services no longer in the stack."""

    rollout: RolloutOptions
    dependency_timeout: float
    prune: bool
    def __new__(cls, *, rollout: RolloutOptions = ..., dependency_timeout: float = ..., prune: bool = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ServiceStatus:
    """One service of a stack as `stack_ps` sees it."""

    name: str
    desired: int
    running: int
    tasks: list[Task]
    def __new__(cls, *, name: str = ..., desired: int = ..., running: int = ..., tasks: list[Task] = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class StackDownReport:
    """What `stack_down` removed."""

    services: list[str]
    containers: int
    networks: int
    volumes: int
    secrets: int
    configs: int
    def __new__(cls, *, services: list[str] = ..., containers: int = ..., networks: int = ..., volumes: int = ..., secrets: int = ..., configs: int = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class DiscoveryStream(_Stream[DiscoveryEvent]): ...

@final
class Discovery:
    """A service registry. `Discovery.embedded()` keeps it in this process."""

    @staticmethod
    def embedded() -> Discovery: ...
    @staticmethod
    async def etcd(config: EtcdConfig) -> Discovery: ...
    @property
    def backend(self) -> str: ...
    async def register(self, instance: Instance) -> None: ...
    async def deregister(self, service: str, id: str) -> bool: ...
    async def set_health(self, service: str, id: str, health: str) -> None: ...
    async def lookup(self, service: str, options: LookupOptions | None = None) -> list[Instance]: ...
    async def services(self) -> list[str]: ...
    def watch(self, service: str) -> DiscoveryStream: ...
    def session(self) -> Discovery: ...

@final
class RegistratorStream(_Stream[RegistratorEvent]): ...

def registrator(fleet: Fleet, discovery: Discovery, options: RegistratorOptions | None = None) -> RegistratorStream: ...

@final
class Instance:
    """One instance of a service; `ttl` in seconds (kept alive while its registrant lives), `health` is `passing`, `warning` or `critical`."""

    service: str
    id: str
    address: str
    port: int
    tags: list[str]
    metadata: dict[str, str]
    ttl: float | None
    health: str
    def __new__(cls, *, service: str = ..., id: str = ..., address: str = ..., port: int = ..., tags: list[str] = ..., metadata: dict[str, str] = ..., ttl: float | None = ..., health: str = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class LookupOptions:
    """Which instances `lookup` returns (passing ones unless `include_unhealthy`)."""

    include_unhealthy: bool
    tag: str | None
    def __new__(cls, *, include_unhealthy: bool = ..., tag: str | None = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class DiscoveryEvent:
    """One change of a watched service: `snapshot` (all instances), `insert`, `update`, `health` or `remove`."""

    kind: str
    service: str
    instances: list[Instance]
    def __new__(cls, *, kind: str = ..., service: str = ..., instances: list[Instance] = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class HealthCheck:
    """An active check: `kind` `tcp` or `http` (GET `path`, status within `min_status`..`max_status`), every `interval`, each within `timeout`; `rise` passes or `fall` failures in a row flip it."""

    kind: str
    path: str
    min_status: int
    max_status: int
    interval: float
    timeout: float
    rise: int
    fall: int
    def __new__(cls, *, kind: str = ..., path: str = ..., min_status: int = ..., max_status: int = ..., interval: float = ..., timeout: float = ..., rise: int = ..., fall: int = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class RegistratorOptions:
    """Options of `registrator`: `resync` and `ttl` in seconds; `on_unreachable` is `remove` or `expire`; `checks` by service name (`*` for the rest)."""

    resync: float
    ttl: float | None
    on_unreachable: str
    checks: dict[str, HealthCheck]
    def __new__(cls, *, resync: float = ..., ttl: float | None = ..., on_unreachable: str = ..., checks: dict[str, HealthCheck] = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class RegistratorEvent:
    """Something the registrator did: `register`, `deregister`, `health`, `resync`, `unreachable` or `error`."""

    kind: str
    host: str
    service: str
    id: str
    message: str
    def __new__(cls, *, kind: str = ..., host: str = ..., service: str = ..., id: str = ..., message: str = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class EtcdConfig:
    """Where etcd is (`endpoints` like `http://127.0.0.1:2379`), the key `prefix`, and the timeouts."""

    endpoints: list[str]
    prefix: str
    connect_timeout: float
    request_timeout: float
    def __new__(cls, *, endpoints: list[str] = ..., prefix: str = ..., connect_timeout: float = ..., request_timeout: float = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Balancer:
    """Picks endpoints for requests: `pick()` then `release(id, ok, latency)`."""

    def __new__(cls, options: BalancerOptions | None = None) -> Self: ...
    @property
    def options(self) -> BalancerOptions: ...
    def set_endpoints(self, endpoints: list[Endpoint]) -> None: ...
    def pick(self, key: str | None = None) -> Endpoint | None: ...
    def release(self, id: str, ok: bool, latency: float = 0.0) -> None: ...
    def stats(self) -> list[EndpointStats]: ...

@final
class Endpoint:
    """One endpoint requests can go to; `weight` for `weighted` and `consistent-hash`."""

    id: str
    address: str
    port: int
    weight: int
    def __new__(cls, *, id: str = ..., address: str = ..., port: int = ..., weight: int = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class BalancerOptions:
    """How a `Balancer` chooses (`strategy`) and when it ejects (`max_fails` within `fail_window`, for `ejection`; seconds)."""

    strategy: str
    seed: int
    max_fails: int
    fail_window: float
    ejection: float
    virtual_nodes: int
    def __new__(cls, *, strategy: str = ..., seed: int = ..., max_fails: int = ..., fail_window: float = ..., ejection: float = ..., virtual_nodes: int = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class EndpointStats:
    """An endpoint's counters; `ewma_ms` is the latency EWMA of successful requests."""

    endpoint: Endpoint
    requests: int
    failures: int
    in_flight: int
    ewma_ms: float
    ejected: bool
    ejections: int
    ejections_refused: int
    def __new__(cls, *, endpoint: Endpoint = ..., requests: int = ..., failures: int = ..., in_flight: int = ..., ewma_ms: float = ..., ejected: bool = ..., ejections: int = ..., ejections_refused: int = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Route:
    """Where requests for one service come from: `host` (`api.example.com` or `*.example.com`) and `path_prefix` (HTTP), `tag` filter, `hash_header` for `consistent-hash`."""

    service: str
    host: str | None
    path_prefix: str
    tag: str | None
    hash_header: str | None
    def __new__(cls, *, service: str = ..., host: str | None = ..., path_prefix: str = ..., tag: str | None = ..., hash_header: str | None = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ProxyOptions:
    """How a `Proxy` listens (`listen`, `protocol` `http` or `tcp`), routes and retries; times in seconds."""

    listen: str
    protocol: str
    routes: list[Route]
    balancer: BalancerOptions
    connect_timeout: float
    connect_attempts: int
    response_timeout: float
    retry_idempotent: bool
    sticky_cookie: str | None
    idle_timeout: float
    drain_timeout: float
    max_idle_per_endpoint: int
    def __new__(cls, *, listen: str = ..., protocol: str = ..., routes: list[Route] = ..., balancer: BalancerOptions = ..., connect_timeout: float = ..., connect_attempts: int = ..., response_timeout: float = ..., retry_idempotent: bool = ..., sticky_cookie: str | None = ..., idle_timeout: float = ..., drain_timeout: float = ..., max_idle_per_endpoint: int = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ProxyEndpointStats:
    """One endpoint's counters in a `Proxy`; `latency_counts` per bucket of `LATENCY_BOUNDS_MS`."""

    service: str
    endpoint: Endpoint
    draining: bool
    ejected: bool
    requests: int
    errors: int
    in_flight: int
    latency_counts: list[int]
    latency_p50_ms: float
    latency_p99_ms: float
    def __new__(cls, *, service: str = ..., endpoint: Endpoint = ..., draining: bool = ..., ejected: bool = ..., requests: int = ..., errors: int = ..., in_flight: int = ..., latency_counts: list[int] = ..., latency_p50_ms: float = ..., latency_p99_ms: float = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class RenderOptions:
    """What to render (`kind` `nginx` or `haproxy`, `protocol`, `listen`, `routes`, `balancer`, an optional minijinja `template`), where (`path`) and how to check and reload it; times in seconds."""

    kind: str
    protocol: str
    listen: str
    routes: list[Route]
    balancer: BalancerOptions
    template: str | None
    path: Path
    check_command: list[str]
    reload_command: list[str]
    debounce: float
    command_timeout: float
    def __new__(cls, *, kind: str = ..., protocol: str = ..., listen: str = ..., routes: list[Route] = ..., balancer: BalancerOptions = ..., template: str | None = ..., path: _StrPath = ..., check_command: list[str] = ..., reload_command: list[str] = ..., debounce: float = ..., command_timeout: float = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class RenderEvent:
    """One step of `sync_config`: `written`, `unchanged`, `invalid`, `reloaded`, `reload_failed` or `error`."""

    kind: str
    path: str
    routes: int
    servers: int
    message: str
    def __new__(cls, *, kind: str = ..., path: str = ..., routes: int = ..., servers: int = ..., message: str = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

LATENCY_BOUNDS_MS: list[float]

@final
class Proxy:
    """A running proxy: `await Proxy.start(discovery, options)`; `await proxy.shutdown(grace)` stops it."""

    @staticmethod
    async def start(discovery: Discovery, options: ProxyOptions) -> Proxy: ...
    def address(self) -> str: ...
    def port(self) -> int: ...
    async def wait_ready(self, timeout: float = 10.0) -> None: ...
    def stats(self) -> list[ProxyEndpointStats]: ...
    async def shutdown(self, grace: float = 10.0) -> None: ...

@final
class RenderStream(_Stream[RenderEvent]): ...

def render_config(options: RenderOptions, instances: list[Instance]) -> str: ...
def default_template(kind: str, protocol: str) -> str: ...
def sync_config(discovery: Discovery, options: RenderOptions) -> RenderStream: ...

@final
class SwarmOptions:
    """Options of a `Swarm`: `publish_mode` is `host` (default) or `ingress`; `poll_interval` and `timeout` in seconds; `port` is Swarm's cluster port (2377)."""

    publish_mode: str
    poll_interval: float
    timeout: float
    port: int
    def __new__(cls, *, publish_mode: str = ..., poll_interval: float = ..., timeout: float = ..., port: int = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class SwarmNode:
    """One node of a swarm; `host` is the fleet host it is (empty when not in the fleet)."""

    id: str
    host: str
    hostname: str
    role: str
    availability: str
    state: str
    address: str
    leader: bool
    reachability: str
    labels: dict[str, str]
    engine_version: str
    def __new__(cls, *, id: str = ..., host: str = ..., hostname: str = ..., role: str = ..., availability: str = ..., state: str = ..., address: str = ..., leader: bool = ..., reachability: str = ..., labels: dict[str, str] = ..., engine_version: str = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

LABEL_NODE_HOST: str

@final
class Swarm:
    """A Docker Swarm formed by (some of) a fleet's engines; pass it wherever a `Fleet` deploys services."""

    @staticmethod
    async def init(fleet: Fleet, manager: str, options: SwarmOptions | None = None) -> Swarm: ...
    @staticmethod
    async def connect(fleet: Fleet, options: SwarmOptions | None = None) -> Swarm: ...
    def fleet(self) -> Fleet: ...
    def options(self) -> SwarmOptions: ...
    async def join(self, host: str, role: str) -> SwarmNode: ...
    async def leave(self, host: str, force: bool = False) -> None: ...
    async def dissolve(self) -> None: ...
    async def nodes(self) -> list[SwarmNode]: ...
    async def set_node_labels(self, host: str, labels: dict[str, str]) -> SwarmNode: ...
    async def set_availability(self, host: str, availability: str) -> SwarmNode: ...
    async def set_role(self, host: str, role: str) -> SwarmNode: ...
    async def create_secret(self, name: str, data: bytes, labels: dict[str, str] | None = None) -> str: ...
    async def remove_secret(self, name: str) -> None: ...
    async def create_config(self, name: str, data: bytes, labels: dict[str, str] | None = None) -> str: ...
    async def remove_config(self, name: str) -> None: ...

async def scale(backend: Fleet | Swarm, service: str, replicas: int) -> ServiceStatus: ...
async def service_status(backend: Fleet | Swarm, service: str) -> ServiceStatus: ...

@final
class ServiceFile:
    """A Swarm secret or config mounted into a service's tasks: `target` is a file name under `/run/secrets/` for a secret (default `source`), an absolute path for a config (default `/source`)."""

    source: str
    target: str
    mode: int
    def __new__(cls, *, source: str = ..., target: str = ..., mode: int = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class StackFile:
    """A secret or config a stack creates (Swarm backend): its full name, where its content comes from (exactly one of `file`, `environment`, read when the stack is deployed from this process's environment or else `env_files`, and for a config `content`) and its labels."""

    name: str
    file: Path | None
    environment: str | None
    content: str | None
    labels: dict[str, str]
    env_files: list[Path]
    def __new__(cls, *, name: str = ..., file: _StrPath | None = ..., environment: str | None = ..., content: str | None = ..., labels: dict[str, str] = ..., env_files: list[_StrPath] = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class TaskStats:
    """One running task's resource use, with where it runs (`service_stats`)."""

    service: str
    host: str
    name: str
    slot: int
    stats: Stats
    def __new__(cls, *, service: str = ..., host: str = ..., name: str = ..., slot: int = ..., stats: Stats = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ServiceExecOptions:
    """Options of `service_exec`: the command's `env`, `working_dir` and `user`; only one `slot`'s task; `parallelism` tasks at once, in slot order (0: all at once)."""

    env: dict[str, str]
    working_dir: str | None
    user: str | None
    slot: int | None
    parallelism: int
    def __new__(cls, *, env: dict[str, str] = ..., working_dir: str | None = ..., user: str | None = ..., slot: int | None = ..., parallelism: int = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class TaskExec:
    """One task's run of `service_exec`: its exit code and output, or its error (`error_code`, `error`)."""

    host: str
    id: str
    name: str
    slot: int
    exit_code: int | None
    stdout: str
    stderr: str
    error_code: str | None
    error: str | None
    def __new__(cls, *, host: str = ..., id: str = ..., name: str = ..., slot: int = ..., exit_code: int | None = ..., stdout: str = ..., stderr: str = ..., error_code: str | None = ..., error: str | None = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class RegistryAuth:
    """Credentials for a registry, sent to the engine with a pull or push; `repr` hides the password."""

    server: str
    username: str
    password: str
    identity_token: str | None
    def __new__(cls, *, server: str = ..., username: str = ..., password: str = ..., identity_token: str | None = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class PullOptions:
    """Options of `pull_image`: the registry's credentials, and a platform (`linux/arm64`) to pull for."""

    auth: RegistryAuth | None
    platform: str | None
    def __new__(cls, *, auth: RegistryAuth | None = ..., platform: str | None = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class PushOptions:
    """Options of `push_image`: the registry's credentials."""

    auth: RegistryAuth | None
    def __new__(cls, *, auth: RegistryAuth | None = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ImageProgress:
    """One progress event of a pull or push; the last has `done` and the image's `digest`."""

    layer: str
    status: str
    current: int | None
    total: int | None
    digest: str | None
    done: bool
    def __new__(cls, *, layer: str = ..., status: str = ..., current: int | None = ..., total: int | None = ..., digest: str | None = ..., done: bool = ...) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...
