"""Client instructions per call, counted by callgrind: each client makes 100 + N calls (`ping`, then
`inspect` of one container) against the same testbed engine for two values of N, and the difference
in instructions its process executed (user space, every thread), divided by the difference in N, is
one call's cost. Unlike time, the count barely moves with what else the machine does, so small
differences between clients show. Driven by `benches/run_instructions.sh`; writes its section of
BENCHMARKS.md.

    python benches/instructions_report.py ADDRESS [N1] [N2]
"""

import platform
import re
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from bench_container import bench_container
from update_benchmarks import update

ROOT = Path(__file__).resolve().parents[1]
# V8 draws its hash seed at start-up (a prime search whose length varies): fixed, so that start-up
# costs the same in both runs and does not land in the difference.
NODE = ["node", "--hash-seed=1", "--random-seed=1"]
OPS = ("ping", "inspect")


def clients(address: str) -> list[tuple[str, list[str], tuple[str, ...]]]:
    """Each client's command (`{n}`: the number of calls; a container ID is appended for `inspect`) and
    the operations it is counted for."""
    py = sys.executable
    loop = str(ROOT / "benches/call_loop.py")
    return [
        ("dockfleet-rust", [str(ROOT / "target/release/call-loop"), address, "{n}"], OPS),
        ("dockfleet-python (sync)", [py, loop, address, "{n}", "sync"], OPS),
        ("dockfleet-python", [py, loop, address, "{n}", "async"], OPS),
        ("dockfleet-python (uvloop)", [py, loop, address, "{n}", "uvloop"], OPS),
        ("dockfleet-node", [*NODE, str(ROOT / "benches/call_loop.js"), address, "{n}"], OPS),
        ("docker-py", [py, loop, address, "{n}", "docker-py"], OPS),
        ("asyncio alone", [py, str(ROOT / "benches/asyncio_floor.py"), "{n}", "1"], ("ping",)),
        ("uvloop alone", [py, str(ROOT / "benches/asyncio_floor.py"), "{n}", "1", "uvloop"], ("ping",)),
        ("Node alone", [*NODE, str(ROOT / "benches/node_floor.js"), "{n}", "1"], ("ping",)),
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
    per: dict[tuple[str, str], float] = {}
    with bench_container(address, "dockfleet-instructions") as cid:
        for name, cmd, ops in clients(address):
            for op in ops:
                full = cmd + [cid] if op == "inspect" else cmd
                a, b = instructions(full, n1), instructions(full, n2)
                per[(name, op)] = (b - a) / (n2 - n1)
                print(f"[instructions] {name} {op}: {per[(name, op)]:,.0f} per call", file=sys.stderr, flush=True)
    write(address, per, n1, n2)


def write(address: str, per: dict[tuple[str, str], float], n1: int, n2: int) -> None:
    """Writes the section of BENCHMARKS.md for the counts `per` (client, operation)."""
    rows = []
    for name, _, ops in clients(address):
        cells = []
        for op in OPS:
            v = per.get((name, op)) if op in ops else None
            rust = per[("dockfleet-rust", op)]
            cells.append(f"{v / 1000:,.1f}k | {v / rust:.2f}" if v else "— | —")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    section = f"""## Client instructions per call: ping and inspect

What one call costs each client process in user space, in instructions (callgrind; kernel work,
the same system calls for every dockfleet client but the awaited ones' waits in their event loop, is not
counted): each client makes 100 + N calls against `df-1` for N = {n1} and N = {n2} (`ping`, then
`inspect` of one running container), and the difference in its process's instruction total is divided
by {n2 - n1}. `asyncio alone` is `benches/asyncio_floor.py` under the same count, per awaited I/O
completion (no dockfleet, no engine): what asyncio's default loop executes to resume a task that a
reader callback woke; `uvloop alone` the same on uvloop's loop, which `dockfleet-python (uvloop)` awaits
on. `Node alone` is `benches/node_floor.js` likewise: a Promise that a native
`uv_poll` callback resolves (the binding's `_ioFloor()`, no runtime tick, no engine), the path an
engine call's completion takes in Node. Node runs with a
fixed hash seed (`--hash-seed=1 --random-seed=1`): V8 draws it at start-up by a prime search of
varying length, which otherwise lands in the difference. The counts of the blocking clients barely
move between runs or with the machine's load, unlike times; those of the awaited ones (Python, Node)
move by a few thousand: how many times the loop parks and looks again depends on whether the
engine's answer is already there when it looks. An instruction of Python or JavaScript code costs
more time than one of Rust's (fewer retire per cycle), so time ratios come out above these.

| client | ping | ÷ dockfleet-rust | inspect | ÷ dockfleet-rust |
|---|---|---|---|---|
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
