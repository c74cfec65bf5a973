"""The dockfleet API, blocking: the same classes and methods as :mod:`dockfleet`, for scripts.

Each call blocks the calling thread until its result is there, with the GIL released meanwhile so other
threads run; no event loop is involved, so the facade works from any thread, also from code inside a
running loop (a notebook, an async web handler). Ctrl-C interrupts a waiting call. Streams are plain
iterators; ``close()`` stops one early.
"""

from __future__ import annotations

import inspect
import types
from typing import Any, Callable

from . import _native
# Data classes, streams and errors are shared with the async API.
from ._native import (
    ServiceFile as ServiceFile,
    StackFile as StackFile,
    SwarmOptions as SwarmOptions,
    SwarmNode as SwarmNode,
    LABEL_NODE_HOST as LABEL_NODE_HOST,
    Route as Route,
    ProxyOptions as ProxyOptions,
    ProxyEndpointStats as ProxyEndpointStats,
    LATENCY_BOUNDS_MS as LATENCY_BOUNDS_MS,
    RenderOptions as RenderOptions,
    RenderEvent as RenderEvent,
    RenderStream as RenderStream,
    render_config as render_config,
    default_template as default_template,
    Endpoint as Endpoint,
    BalancerOptions as BalancerOptions,
    EndpointStats as EndpointStats,
    Balancer as Balancer,
    EtcdConfig as EtcdConfig,
    Instance as Instance,
    LookupOptions as LookupOptions,
    DiscoveryEvent as DiscoveryEvent,
    DiscoveryStream as DiscoveryStream,
    HealthCheck as HealthCheck,
    RegistratorOptions as RegistratorOptions,
    RegistratorEvent as RegistratorEvent,
    RegistratorStream as RegistratorStream,
    IpamPool as IpamPool,
    NetworkOptions as NetworkOptions,
    VolumeOptions as VolumeOptions,
    NetworkSummary as NetworkSummary,
    VolumeSummary as VolumeSummary,
    Dependency as Dependency,
    StackBuild as StackBuild,
    StackService as StackService,
    Stack as Stack,
    StackOptions as StackOptions,
    ServiceStatus as ServiceStatus,
    StackDownReport as StackDownReport,
    parse_compose as parse_compose,
    load_compose as load_compose,
    load_compose_files as load_compose_files,
    LABEL_STACK as LABEL_STACK,
    MAX_COMPOSE_BYTES as MAX_COMPOSE_BYTES,
    RolloutOptions as RolloutOptions,
    RolloutEvent as RolloutEvent,
    RolloutStream as RolloutStream,
    LABEL_SPEC as LABEL_SPEC,
    LABEL_PREVIOUS_SPEC as LABEL_PREVIOUS_SPEC,
    LABEL_PREVIOUS_SPEC_HASH as LABEL_PREVIOUS_SPEC_HASH,
    LABEL_RESTARTS as LABEL_RESTARTS,
    LABEL_CPU_RESERVATION as LABEL_CPU_RESERVATION,
    LABEL_MEMORY_RESERVATION as LABEL_MEMORY_RESERVATION,
    SuperviseOptions as SuperviseOptions,
    Reconciliation as Reconciliation,
    ReconcileStream as ReconcileStream,
    ServiceLogLine as ServiceLogLine,
    ServiceExecOptions as ServiceExecOptions,
    TaskExec as TaskExec,
    TaskStats as TaskStats,
    prometheus_text as prometheus_text,
    ServiceLogStream as ServiceLogStream,
    Task as Task,
    Observed as Observed,
    Action as Action,
    Plan as Plan,
    PlanOptions as PlanOptions,
    ApplyReport as ApplyReport,
    Deployment as Deployment,
    plan as plan,
    spec_hash as spec_hash,
    task_container as task_container,
    LABEL_SERVICE as LABEL_SERVICE,
    LABEL_SLOT as LABEL_SLOT,
    LABEL_SPEC_HASH as LABEL_SPEC_HASH,
    ServicePort as ServicePort,
    Placement as Placement,
    Resources as Resources,
    ServiceRestartPolicy as ServiceRestartPolicy,
    UpdateConfig as UpdateConfig,
    ServiceSpec as ServiceSpec,
    HostState as HostState,
    Assignment as Assignment,
    Schedule as Schedule,
    ScheduleOptions as ScheduleOptions,
    schedule as schedule,
    DockfleetError as DockfleetError,
    InvalidArgumentError as InvalidArgumentError,
    InvalidAddressError as InvalidAddressError,
    InsecureError as InsecureError,
    TlsError as TlsError,
    EngineUnreachableError as EngineUnreachableError,
    TimeoutError as TimeoutError,
    NotFoundError as NotFoundError,
    ConflictError as ConflictError,
    UnauthorizedError as UnauthorizedError,
    EngineError as EngineError,
    IoError as IoError,
    CancelledError as CancelledError,
    InternalError as InternalError,
    ERROR_CODES as ERROR_CODES,
    Ping as Ping,
    HostInfo as HostInfo,
    PortMapping as PortMapping,
    Mount as Mount,
    RestartPolicy as RestartPolicy,
    Healthcheck as Healthcheck,
    LogConfig as LogConfig,
    Ulimit as Ulimit,
    ContainerSpec as ContainerSpec,
    ListContainersOptions as ListContainersOptions,
    ContainerSummary as ContainerSummary,
    ContainerState as ContainerState,
    ContainerDetails as ContainerDetails,
    LogOptions as LogOptions,
    LogLine as LogLine,
    ExecOptions as ExecOptions,
    ExecOutput as ExecOutput,
    BuildOptions as BuildOptions,
    BuildEvent as BuildEvent,
    ImageSummary as ImageSummary,
    RegistryAuth as RegistryAuth,
    PullOptions as PullOptions,
    PushOptions as PushOptions,
    ImageProgress as ImageProgress,
    ImageProgressStream as ImageProgressStream,
    docker_config_auth as docker_config_auth,
    EventOptions as EventOptions,
    Event as Event,
    Stats as Stats,
    CopyProgress as CopyProgress,
    LogStream as LogStream,
    BuildStream as BuildStream,
    EventStream as EventStream,
    StatsStream as StatsStream,
    ByteStream as ByteStream,
    TlsConfig as TlsConfig,
    HostConfig as HostConfig,
    ProbeOptions as ProbeOptions,
    HostStatus as HostStatus,
    CopyStream as CopyStream,
)

_END = object()


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Calls ``fn``; a native coroutine it returns is run to its end on this thread, which blocks (with
    the GIL released) until the result is there. No event loop is involved, so this works from any
    thread, also one inside a running loop; Ctrl-C interrupts a wait and cancels the work."""
    return _finish(fn(*args, **kwargs))


_Call = _native._Call  # the type of the native coroutines engine calls return
_run_sync = _native._run_sync


def _finish(result: Any) -> Any:
    """What a native call returned, as the facade returns it: awaited here if awaitable, wrapped."""
    if type(result) is _Call or inspect.isawaitable(result):
        try:
            result = _run_sync(result)
        except StopAsyncIteration:
            return _END
    return _wrap(result)


_STREAMS = tuple(getattr(_native, name) for name in dir(_native) if name.endswith("Stream"))


def _wrap(value: Any) -> Any:
    wrap = _WRAPPERS.get(type(value))
    return value if wrap is None else wrap(value)


def _wrap_list(values: list[Any]) -> Any:
    # Most lists hold data classes only, which are returned as they are.
    if _WRAPPED.isdisjoint(map(type, values)):
        return values
    return [_wrap(v) for v in values]


def _unwrap(value: Any) -> Any:
    if isinstance(value, (DockerHost, Fleet, Swarm, Stream, Discovery)):
        return value._inner
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def _method(native_cls: type, name: str) -> Callable[..., Any]:
    """A blocking method calling ``name`` of the wrapped native object, with the native signature."""
    native = getattr(native_cls, name)
    # A plain method is called through its descriptor (no attribute lookup per call).
    direct = isinstance(inspect.getattr_static(native_cls, name), types.MethodDescriptorType)

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if args:
            args = tuple([_unwrap(a) for a in args])
        if kwargs:
            kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
        result = native(self._inner, *args, **kwargs) if direct else getattr(self._inner, name)(*args, **kwargs)
        if type(result) is _Call:
            # An engine call (most methods): run here, without `_finish`'s and `_wrap`'s frames.
            result = _run_sync(result)
            wrap = _WRAPPERS.get(type(result))
            return result if wrap is None else wrap(result)
        return _finish(result)

    method.__name__ = name
    method.__qualname__ = f"{native_cls.__name__}.{name}"
    method.__doc__ = native.__doc__
    method.__signature__ = inspect.signature(native)  # type: ignore[attr-defined]
    return method


class Stream:
    """A blocking iterator over one of the native async streams."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> Any:
        item = _call(self._inner.__anext__)
        if item is _END:
            raise StopIteration
        return item

    def close(self) -> None:
        """Stops the stream and releases its connection."""
        _call(self._inner.aclose)

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DockerHost:
    """One Docker engine, blocking. Same methods as :class:`dockfleet.DockerHost`."""

    _inner: Any

    def __init__(self, config: Any) -> None:
        self._inner = _native.DockerHost(config)

    @classmethod
    def _from_native(cls, inner: Any) -> DockerHost:
        obj = cls.__new__(cls)
        obj._inner = inner
        return obj

    @staticmethod
    def connect(config: Any) -> DockerHost:
        return _call(_native.DockerHost.connect, config)  # type: ignore[no-any-return]

    @staticmethod
    def from_env(name: str) -> DockerHost:
        return _call(_native.DockerHost.from_env, name)  # type: ignore[no-any-return]

    @property
    def name(self) -> str:
        return self._inner.name  # type: ignore[no-any-return]

    @property
    def address(self) -> str:
        return self._inner.address  # type: ignore[no-any-return]

    @property
    def labels(self) -> dict[str, str]:
        return self._inner.labels  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return repr(self._inner)


_HOST_METHODS = [
    "ping", "info", "create_container", "start_container", "stop_container", "kill_container",
    "rename_container", "remove_container", "inspect_container", "list_containers", "logs", "wait_container", "exec",
    "build_image", "list_images", "inspect_image", "image_exists", "remove_image", "export_image",
    "pull_image", "push_image", "tag_image",
    "import_image", "events", "stats", "stats_stream", "create_network", "remove_network", "list_networks",
    "create_volume", "remove_volume", "list_volumes",
]
for _name in _HOST_METHODS:
    setattr(DockerHost, _name, _method(_native.DockerHost, _name))


class Fleet:
    """A named set of hosts, blocking. Same methods as :class:`dockfleet.Fleet`."""

    _inner: Any

    def __init__(self) -> None:
        self._inner = _native.Fleet()

    @classmethod
    def _from_native(cls, inner: Any) -> Fleet:
        obj = cls.__new__(cls)
        obj._inner = inner
        return obj

    @staticmethod
    def from_file(path: Any) -> Fleet:
        return Fleet._from_native(_native.Fleet.from_file(path))

    @staticmethod
    def parse(text: str, format: str, base_dir: Any = None) -> Fleet:
        return Fleet._from_native(_native.Fleet.parse(text, format, base_dir))

    def __len__(self) -> int:
        return len(self._inner)


_FLEET_METHODS = ["add", "add_docker", "set_registry_auth", "remove", "hosts", "names", "host", "select", "probe"]
for _name in _FLEET_METHODS:
    setattr(Fleet, _name, _method(_native.Fleet, _name))


class Swarm:
    """A Docker Swarm over a fleet's engines, blocking. Same methods as :class:`dockfleet.Swarm`."""

    _inner: Any

    @classmethod
    def _from_native(cls, inner: Any) -> Swarm:
        obj = cls.__new__(cls)
        obj._inner = inner
        return obj

    @staticmethod
    def init(fleet: Fleet, manager: str, options: SwarmOptions | None = None) -> Swarm:
        return Swarm._from_native(_call(_native.Swarm.init, fleet._inner, manager, options))

    @staticmethod
    def connect(fleet: Fleet, options: SwarmOptions | None = None) -> Swarm:
        return Swarm._from_native(_call(_native.Swarm.connect, fleet._inner, options))

    def fleet(self) -> Fleet:
        return Fleet._from_native(self._inner.fleet())

    def options(self) -> SwarmOptions:
        return self._inner.options()  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return repr(self._inner)


for _name in [
    "join", "leave", "dissolve", "nodes", "set_node_labels", "set_availability", "set_role",
    "create_secret", "remove_secret", "create_config", "remove_config",
]:
    setattr(Swarm, _name, _method(_native.Swarm, _name))


def copy_image(source: DockerHost, target: DockerHost, reference: str) -> Stream:
    """Streams an image from one host to another; iterate for progress."""
    return Stream(_native.copy_image(source._inner, target._inner, reference))


def distribute_image(source: DockerHost, targets: list[DockerHost], reference: str) -> list[str]:
    """Copies an image to every target that lacks it; returns their names."""
    return _call(_native.distribute_image, source._inner, [t._inner for t in targets], reference)  # type: ignore[no-any-return]


def observe(fleet: Fleet, service: str) -> Observed:
    """Reads the fleet and the service's tasks."""
    return _call(_native.observe, fleet._inner, service)  # type: ignore[no-any-return]


def apply(fleet: Fleet, spec: ServiceSpec, plan: Plan) -> ApplyReport:
    """Carries out a plan."""
    return _call(_native.apply, fleet._inner, spec, plan)  # type: ignore[no-any-return]


def deploy(fleet: Fleet, spec: ServiceSpec, options: PlanOptions | None = None) -> Deployment:
    """Observes, plans and applies: brings the service to `spec`."""
    return _call(_native.deploy, fleet._inner, spec, options)  # type: ignore[no-any-return]


def remove_service(backend: Fleet | Swarm, service: str) -> int:
    """Removes the service and every task of it; returns how many tasks went."""
    return _call(_native.remove_service, backend._inner, service)  # type: ignore[no-any-return]


def service_logs(backend: Fleet | Swarm, service: str, options: LogOptions | None = None) -> Stream:
    """The output of every task of `service`, merged as it arrives, each chunk with its task."""
    return Stream(_native.service_logs(backend._inner, service, options))


def supervise(fleet: Fleet, spec: ServiceSpec, options: SuperviseOptions | None = None) -> Stream:
    """Keeps `spec` running on `fleet`; iterate for each pass that changed something, close() to stop."""
    return Stream(_native.supervise(fleet._inner, spec, options))


def rollout(backend: Fleet | Swarm, spec: ServiceSpec, options: RolloutOptions | None = None) -> Stream:
    """Creates the service or updates it to `spec`, gated on health; iterate for progress."""
    return Stream(_native.rollout(backend._inner, spec, options))


def rollback(backend: Fleet | Swarm, service: str, options: RolloutOptions | None = None) -> Stream:
    """Rolls `service` back to the spec it had before its last update; iterate for progress."""
    return Stream(_native.rollback(backend._inner, service, options))


def scale(backend: Fleet | Swarm, service: str, replicas: int) -> ServiceStatus:
    """Sets the replica count of a replicated service; returns its status once that many tasks run."""
    return _call(_native.scale, backend._inner, service, replicas)  # type: ignore[no-any-return]


def service_status(backend: Fleet | Swarm, service: str) -> ServiceStatus:
    """The service's desired and running task counts and its current tasks."""
    return _call(_native.service_status, backend._inner, service)  # type: ignore[no-any-return]


def service_exec(
    backend: Fleet | Swarm, service: str, command: list[str], options: ServiceExecOptions | None = None
) -> list[TaskExec]:
    """Runs `command` in every running task of the service (or one slot's); one result per task."""
    return _call(_native.service_exec, backend._inner, service, command, options)  # type: ignore[no-any-return]


def service_stats(backend: Fleet | Swarm, service: str) -> list[TaskStats]:
    """One resource sample of every running task of the service, taken on all its hosts at once."""
    return _call(_native.service_stats, backend._inner, service)  # type: ignore[no-any-return]


def stack_up(backend: Fleet | Swarm, stack: Stack, options: StackOptions | None = None) -> Stream:
    """Deploys or updates a stack; iterate for the stack's steps and its services' rollout events."""
    return Stream(_native.stack_up(backend._inner, stack, options))


def stack_ps(backend: Fleet | Swarm, stack: str) -> list[ServiceStatus]:
    """The stack's services and their tasks."""
    return _call(_native.stack_ps, backend._inner, stack)  # type: ignore[no-any-return]


def stack_down(backend: Fleet | Swarm, stack: str, remove_volumes: bool = False) -> StackDownReport:
    """Removes the stack's services and networks (and volumes when asked)."""
    return _call(_native.stack_down, backend._inner, stack, remove_volumes)  # type: ignore[no-any-return]


class Discovery:
    """A service registry, blocking. Same methods as :class:`dockfleet.Discovery`."""

    _inner: Any

    @classmethod
    def _from_native(cls, inner: Any) -> Discovery:
        obj = cls.__new__(cls)
        obj._inner = inner
        return obj

    @staticmethod
    def embedded() -> Discovery:
        return Discovery._from_native(_native.Discovery.embedded())

    @staticmethod
    def etcd(config: EtcdConfig) -> Discovery:
        return _call(_native.Discovery.etcd, config)  # type: ignore[no-any-return]

    @property
    def backend(self) -> str:
        return self._inner.backend  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return repr(self._inner)


for _name in ["register", "deregister", "set_health", "lookup", "services", "watch", "session"]:
    setattr(Discovery, _name, _method(_native.Discovery, _name))


def registrator(fleet: Fleet, discovery: Discovery, options: RegistratorOptions | None = None) -> Stream:
    """Registers the fleet's containers into `discovery` and keeps them in step; iterate for what it does."""
    return Stream(_native.registrator(fleet._inner, discovery._inner, options))


class Proxy:
    """A running proxy, blocking. Same methods as :class:`dockfleet.Proxy`."""

    _inner: Any

    @staticmethod
    def start(discovery: Discovery, options: ProxyOptions) -> Proxy:
        obj = Proxy.__new__(Proxy)
        obj._inner = _call(_native.Proxy.start, discovery._inner, options)
        return obj

    def address(self) -> str:
        return self._inner.address()  # type: ignore[no-any-return]

    def port(self) -> int:
        return self._inner.port()  # type: ignore[no-any-return]

    def stats(self) -> list[ProxyEndpointStats]:
        return self._inner.stats()  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return repr(self._inner)


for _name in ["wait_ready", "shutdown"]:
    setattr(Proxy, _name, _method(_native.Proxy, _name))


def sync_config(discovery: Discovery, options: RenderOptions) -> Stream:
    """Keeps `options.path` rendered from `discovery`, checked and reloaded; iterate for what it does."""
    return Stream(_native.sync_config(discovery._inner, options))


# What the facade wraps, by the exact type a native call returns.
_WRAPPERS: dict[type, Callable[[Any], Any]] = {
    _native.DockerHost: DockerHost._from_native,
    _native.Fleet: Fleet._from_native,
    _native.Discovery: Discovery._from_native,
    list: _wrap_list,
    **{t: Stream for t in _STREAMS},
}
_WRAPPED = frozenset(_WRAPPERS)
