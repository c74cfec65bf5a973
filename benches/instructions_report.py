"""Client instructions per ping, counted by callgrind: each client makes 100 + N pings against the same
testbed engine for two values of N, and the difference in instructions its process executed (user
space, every thread), divided by the difference in N, is one ping's cost. Unlike time, the count
barely moves with what else the machine does, so small differences between clients show.
Driven by `benches/run_instructions.sh`; writes its section of BENCHMARKS.md.

    python benches/instructions_report.py ADDRESS [N1] [N2]
"""

import os
import platform
import re
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from update_benchmarks import update

ROOT = Path(__file__).resolve().parents[1]


def clients(address: str) -> list[tuple[str, list[str], str]]:
    py = sys.executable
    return [
        ("dockfleet-rust", [str(ROOT / "target/release/ping-loop"), address, "{n}"], "ping"),
        ("dockfleet-python (sync)", [py, str(ROOT / "benches/ping_loop.py"), address, "{n}", "sync"], "ping"),
        ("dockfleet-python", [py, str(ROOT / "benches/ping_loop.py"), address, "{n}", "async"], "ping"),
        ("dockfleet-node", ["node", str(ROOT / "benches/ping_loop.js"), address, "{n}"], "ping"),
        ("docker-py", [py, str(ROOT / "benches/ping_loop.py"), address, "{n}", "docker-py"], "ping"),
        ("asyncio alone", [py, str(ROOT / "benches/asyncio_floor.py"), "{n}", "1"], "awaited I/O completion"),
        ("Node alone", ["node", str(ROOT / "benches/node_floor.js"), "{n}", "1"], "awaited I/O completion"),
    ]


def instructions(cmd: list[str], n: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--smc-check=all-non-file", f"--callgrind-out-file={tmp}/cg.%p"]
            + [a.format(n=n) for a in cmd],
            capture_output=True, text=True, check=True,
        )
    counts = [int(m) for m in re.findall(r"Collected : (\d+)", out.stderr)]
    if not counts:
        raise SystemExit(f"no callgrind total for {cmd}: {out.stderr[-2000:]}")
    return sum(counts)


def main() -> None:
    address = sys.argv[1]
    n1 = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    n2 = int(sys.argv[3]) if len(sys.argv) > 3 else 1300
    per = {}
    for name, cmd, unit in clients(address):
        a, b = instructions(cmd, n1), instructions(cmd, n2)
        per[name] = (b - a) / (n2 - n1)
        print(f"[instructions] {name}: {per[name]:,.0f} per {unit}", file=sys.stderr, flush=True)
    write(address, per, n1, n2)


def write(address: str, per: dict[str, float], n1: int, n2: int) -> None:
    """Writes the section of BENCHMARKS.md for the counts `per` client."""
    rust = per["dockfleet-rust"]
    rows = [
        f"| {name} | {per[name] / 1000:.1f}k | {per[name] / rust:.2f} |"
        for name, _, _ in clients(address)
    ]
    section = f"""## Client instructions per ping

What one `ping` costs each client process in user space, in instructions (callgrind; kernel work,
the same system calls for every dockfleet client but the awaited ones' extra `epoll_wait`s, is not
counted): each client makes 100 + N pings against `df-1` for N = {n1} and N = {n2}, and the difference
in its process's instruction total is divided by {n2 - n1}. `asyncio alone` is `benches/asyncio_floor.py`
under the same count, per awaited I/O completion (no dockfleet, no engine): what asyncio's default loop
executes to resume a task that a reader callback woke. `Node alone` is `benches/node_floor.js` likewise
(a Promise that a `net.Socket`'s data callback resolves): more than a whole dockfleet-node ping, since
Node's socket streams do far more per read than the binding's `uv_poll` callback, so the time floor
the engine-call benchmark spins for Node overstates what Node itself costs the binding per call.
The counts of the blocking clients barely move
between runs or with the machine's load, unlike times. Those of the awaited ones (Python, Node) move
by up to a fifth: how many times the loop parks and looks again depends on whether the engine's answer
is already there when it looks (two counts on 2026-12-06: Python 111.5k and 88.9k, Node 97.5k and
83.9k). An instruction of Python or JavaScript code costs more time
than one of Rust's (fewer retire per cycle), so time ratios come out above these.

| client | instructions per ping | ÷ dockfleet-rust |
|---|---|---|
{chr(10).join(rows)}

Counted {date.today().isoformat()} on {platform.machine()}, Linux {platform.release()}. Reproduce with:

```sh
bash benches/run_instructions.sh          # [N1] [N2], default 300 1300
```
"""
    update(section)
    print(section)


if __name__ == "__main__":
    main()
