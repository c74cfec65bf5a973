"""API parity: Rust (core source), Python (the built module) and Node (the built module and its
generated index.d.ts) must expose the same classes, methods, functions and data fields, modulo case
(snake_case in Rust and Python, camelCase in Node). Deliberate differences are listed below with reasons.
"""

import json
import re
import subprocess
from pathlib import Path

import dockfleet

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "core" / "src"
NODE = ROOT / "bindings-node"

# Rust-only items, each for a reason that does not apply to the bindings.
RUST_ONLY = {
    ("DockerHost", "config"): "returns the Rust HostConfig by reference; bindings keep the config they built",
    ("DockerHost", "bollard"): "escape hatch to the bollard client, a Rust type",
    ("DockerHost", "as_docker"): "downcasts a Rust trait object; in the bindings every host is a DockerHost",
    ("Fleet", "from_hosts"): "takes Rust trait objects; bindings use Fleet() + add()",
    ("Fleet", "is_empty"): "Rust idiom beside len(); Python has len(fleet) == 0, Node fleet.length === 0",
    ("Balancer", "pick_at"): "pick at a given std::time::Instant, for simulations in Rust",
    ("Balancer", "release_at"): "release at a given std::time::Instant, for simulations in Rust",
}
# Public Rust types that are not mirrored as data types, each for a reason.
NOT_DTOS = {
    "DockerHost": "a class in every language (compared as a class above)",
    "Fleet": "a class in every language (compared as a class above)",
    "SharedStream": "the Rust handle behind the bindings' stream classes (compared as streams)",
    "Constraint": "the parsed form of a placement constraint; every language passes constraints as strings",
    "Balancer": "a class in every language (compared as a class above)",
    "Proxy": "a class in every language (compared as a class above)",
    "Swarm": "a class in every language (compared as a class above)",
    "EmbeddedDiscovery": "the embedded backend behind the bindings' Discovery class (Discovery.embedded())",
    "EmbeddedRuntime": "what the bindings drive from asyncio's and libuv's loops; Rust-only, for embedding dockfleet in another event loop",
    "EtcdDiscovery": "the etcd backend behind the bindings' Discovery class (Discovery.etcd(config))",
}
# Binding-only constructors of classes that wrap a Rust trait object, each with its Rust spelling.
BINDING_CONSTRUCTORS = {
    ("Discovery", "embedded"): "EmbeddedDiscovery::new() in Rust",
    ("Discovery", "etcd"): "EtcdDiscovery::connect(config) in Rust",
}
# Public Rust functions that are not bound, each for a reason.
RUST_ONLY_FUNCTIONS = {
    "catch_panic": "the bindings' own plumbing for turning panics into errors",
    "parse_preference": "a helper of ServiceSpec validation; bindings pass preferences as strings",
    "parse_duration": "a helper of compose parsing (1m30s); bindings' durations are numbers",
    "parse_bytes": "a helper of compose parsing (512M); bindings' sizes are numbers",
}

# ServiceBackend methods that are not functions in the bindings, each for a reason.
BACKEND_ONLY = {
    "kind": "tells a Box<dyn ServiceBackend> apart in Rust; bindings tell a Fleet from a Swarm by its class",
}

# Public Rust constants that are not bound, each for a reason.
RUST_ONLY_CONSTANTS = {
    "COPY_PROGRESS_INTERVAL": "documents copy_image's progress cadence; nothing in the bindings takes it",
}


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def block(text: str, header: str) -> str:
    """The brace-balanced block that follows `header`."""
    start = text.index(header)
    i = text.index("{", start)
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i : j + 1]
    raise AssertionError(f"unbalanced block after {header}")


def rust_api():
    host = (CORE / "host.rs").read_text()
    docker = (CORE / "docker.rs").read_text()
    fleet = (CORE / "fleet.rs").read_text()
    classes = {
        "DockerHost": set(re.findall(r"\n    (?:async )?fn (\w+)", block(host, "pub trait Host")))
        | set(re.findall(r"\n    pub (?:async )?fn (\w+)", block(docker, "impl DockerHost {"))),
        "Fleet": set(re.findall(r"\n    pub (?:async )?fn (\w+)", block(fleet, "impl Fleet {"))),
        "Balancer": set(re.findall(r"\n    pub (?:async )?fn (\w+)", block((CORE / "balancer.rs").read_text(), "impl Balancer {"))),
        "Discovery": set(re.findall(r"\n    (?:async )?fn (\w+)", block((CORE / "discovery.rs").read_text(), "pub trait Discovery"))),
        "Proxy": set(re.findall(r"\n    pub (?:async )?fn (\w+)", block((CORE / "proxy.rs").read_text(), "impl Proxy {"))),
        "Swarm": set(re.findall(r"\n    pub (?:async )?fn (\w+)", block((CORE / "swarm.rs").read_text(), "impl Swarm {"))),
    }
    for (cls, name) in BINDING_CONSTRUCTORS:
        classes[cls].add(name)
    for (cls, name) in RUST_ONLY:
        classes[cls].discard(name)
    for names in classes.values():
        names.discard("new")  # the constructor: DockerHost(config) in Python, new DockerHost(config) in Node
    dtos = {}
    for f in sorted(CORE.glob("*.rs")):
        text = f.read_text()
        for m in re.finditer(r"\npub struct (\w+)(?:<[^>]*>)? \{", text):
            if m.group(1) in NOT_DTOS:
                continue
            dtos[m.group(1)] = set(re.findall(r"\n    pub (\w+):", block(text, m.group(0))))
    lib = (CORE / "lib.rs").read_text()
    exported = set()
    for body in re.findall(r"pub use \w+::\{([^}]*)\}", lib) + re.findall(r"pub use \w+::(\w+);", lib):
        exported |= {n.strip() for n in body.split(",") if n.strip()}
    functions = {f for f in exported if f.islower() and f not in RUST_ONLY_FUNCTIONS}
    # The service backend trait's methods are functions in every binding, taking the backend (a Fleet or a
    # Swarm) first, beside the Fleet-only free functions of the same names in Rust.
    trait = block((CORE / "backend.rs").read_text(), "pub trait ServiceBackend")
    functions |= set(re.findall(r"\n    (?:async )?fn (\w+)", trait)) - set(BACKEND_ONLY)
    return classes, dtos, functions


def python_api():
    def public(cls):
        names = {n for n in dir(cls) if not n.startswith("_")}
        if hasattr(cls, "__len__"):
            names.add("len")
        return names

    classes = {c: public(getattr(dockfleet, c)) for c in ("DockerHost", "Fleet", "Discovery", "Balancer", "Proxy", "Swarm")}
    dtos = {}
    for name in dir(dockfleet):
        obj = getattr(dockfleet, name)
        if isinstance(obj, type) and not issubclass(obj, BaseException) and name not in classes and not name.endswith("Stream"):
            dtos[name] = public(obj)
    functions = {n for n in dir(dockfleet) if callable(getattr(dockfleet, n)) and n.islower() and not n.startswith("_")}
    streams = {n for n in dir(dockfleet) if n.endswith("Stream")}
    return classes, dtos, functions, streams


NODE_DUMP = r"""
const m = require(process.argv[1]);
const out = { classes: {}, functions: [], streams: [] };
for (const [name, v] of Object.entries(m)) {
  if (typeof v !== 'function') continue;
  const proto = Object.getOwnPropertyNames(v.prototype || {}).filter((n) => n !== 'constructor');
  const statics = Object.getOwnPropertyNames(v).filter((n) => !['length', 'name', 'prototype', 'arguments', 'caller'].includes(n));
  if (proto.length || statics.length) out.classes[name] = [...proto, ...statics];
  else out.functions.push(name);
  if (name.endsWith('Stream')) out.streams.push(name);
}
console.log(JSON.stringify(out));
"""


def node_api():
    raw = subprocess.run(["node", "-e", NODE_DUMP, str(NODE / "dockfleet.js")], capture_output=True, text=True, check=True)
    dump = json.loads(raw.stdout)
    classes = {c: {snake(n) for n in dump["classes"][c] if not n.startswith("_")} for c in ("DockerHost", "Fleet", "Discovery", "Balancer", "Proxy", "Swarm")}
    classes["Fleet"] = {("len" if n == "length" else n) for n in classes["Fleet"]}
    dts = (NODE / "index.d.ts").read_text()
    dtos = {}
    for m in re.finditer(r"export interface (\w+) \{\n(.*?)\n\}", dts, re.S):
        fields = set(re.findall(r"^  (\w+)\??:", m.group(2), re.M))
        if fields:
            dtos[m.group(1)] = {snake(f) for f in fields}
    functions = {snake(f) for f in dump["functions"] if not f.startswith("_")}
    return classes, dtos, functions, set(dump["streams"])


def test_classes_and_methods_match():
    rust, _, _ = rust_api()
    py, _, _, _ = python_api()
    node, _, _, _ = node_api()
    for cls in rust:
        assert rust[cls] == py[cls], f"{cls}: Rust-only {sorted(rust[cls] - py[cls])}, Python-only {sorted(py[cls] - rust[cls])}"
        assert rust[cls] == node[cls], f"{cls}: Rust-only {sorted(rust[cls] - node[cls])}, Node-only {sorted(node[cls] - rust[cls])}"


def test_data_types_and_fields_match():
    _, rust, _ = rust_api()
    _, py, _, _ = python_api()
    _, node, _, _ = node_api()
    assert set(rust) == set(py), f"Rust-only {sorted(set(rust) - set(py))}, Python-only {sorted(set(py) - set(rust))}"
    missing_node = set(rust) - set(node)
    assert not missing_node, f"types missing from Node: {sorted(missing_node)}"
    for name, fields in rust.items():
        assert fields == py[name], f"{name}: Rust {sorted(fields)} vs Python {sorted(py[name])}"
        assert fields == node[name], f"{name}: Rust {sorted(fields)} vs Node {sorted(node[name])}"


def test_functions_streams_and_error_codes_match():
    _, _, rust = rust_api()
    _, _, py, py_streams = python_api()
    _, _, node, node_streams = node_api()
    assert rust == py - {"error_codes"} == node - {"error_codes"}, (rust, py, node)
    assert py_streams == node_streams
    codes = subprocess.run(
        ["node", "-e", "console.log(JSON.stringify(require(process.argv[1]).errorCodes()))", str(NODE / "dockfleet.js")],
        capture_output=True, text=True, check=True,
    )
    listed = re.search(r"pub const CODES[^=]*= &\[(.*?)\];", (CORE / "error.rs").read_text(), re.S).group(1)
    rust_codes = re.findall(r'"(\w+)"', listed)
    assert dockfleet.ERROR_CODES == json.loads(codes.stdout) == rust_codes


def test_constants_match():
    lib = (CORE / "lib.rs").read_text()
    exported = set()
    for body in re.findall(r"pub use \w+::\{([^}]*)\}", lib) + re.findall(r"pub use \w+::(\w+);", lib):
        exported |= {n.strip() for n in body.split(",") if n.strip()}
    rust = {n for n in exported if n.isupper()} - set(RUST_ONLY_CONSTANTS)
    py = {n for n in dir(dockfleet) if n.isupper() and not n.startswith("_")} - {"ERROR_CODES"}
    dump = subprocess.run(
        ["node", "-e", "const m = require(process.argv[1]); console.log(JSON.stringify(Object.fromEntries("
         "Object.entries(m).filter(([k, v]) => typeof v !== 'function' && k === k.toUpperCase()))))",
         str(NODE / "dockfleet.js")],
        capture_output=True, text=True, check=True,
    )
    node = json.loads(dump.stdout)
    assert rust == py == set(node), (sorted(rust), sorted(py), sorted(node))
    for name in rust:
        assert getattr(dockfleet, name) == node[name], name
