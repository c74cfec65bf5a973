"""Where an engine call's time goes in each client, and what the client's own time costs it: each
client makes 100 + N sequential calls against the same testbed engine under `perf record` (system-call
tracepoints only: the request's `writev`, the answer's `recvfrom`), and for every call after the first
SKIP this splits the time per call into

- the answer's wait: from the request's `writev` to the `recvfrom` that reads the last of the answer
  (the engine's work, the network, the client's work after sending and its wake-up), and
- the turnaround: from that `recvfrom` to the next request's `writev` (the client's work between two
  calls: the answer's parsing and conversion, the event loop, the next call's start);

`perf stat` gives the client process's CPU time per call (task-clock, user and kernel, at N and 3N
calls). Then dockfleet-rust spins for a few µs before each request, or after it, in lockstep with
dockfleet-rust not spinning (benches/engine_calls.rs): what each µs of a client's own work costs in
the engine-call ratio. Driven by `benches/run_turnaround.sh`; writes its section of BENCHMARKS.md.

    python benches/turnaround_report.py ADDRESS [N]   (N: default 1000)
    python benches/turnaround_report.py --rewrite      (the section again, from the last run's figures)
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from bench_container import bench_container
from engine_calls_report import Worker, lockstep, loop_floors
from update_benchmarks import update

ROOT = Path(__file__).resolve().parents[1]
SAVED = ROOT / "target" / "turnaround.json"
SKIP = 200  # calls left out at the start: connection set-up, warm-up, JIT
TRACES = 3  # traces per client and operation, the clients taking turns
SPINS = (5, 10, 20, 40)  # µs of client work added before or after each request, for the cost curve
WHEN = ("before", "after")
ROUNDS = 40  # rounds of the cost curve, a batch of 100 calls per client and operation in each
EVENTS = "syscalls:sys_enter_writev,syscalls:sys_exit_recvfrom"
OPS = ("ping", "inspect")


def clients(address: str) -> list[tuple[str, list[str]]]:
    """Each client's command (`{n}`: the number of calls; a container ID is appended for `inspect`)."""
    py, loop = sys.executable, str(ROOT / "benches/call_loop.py")
    return [
        ("dockfleet-rust", [str(ROOT / "target/release/call-loop"), address, "{n}"]),
        ("dockfleet-python (sync)", [py, loop, address, "{n}", "sync"]),
        ("dockfleet-python", [py, loop, address, "{n}", "async"]),
        ("dockfleet-python (uvloop)", [py, loop, address, "{n}", "uvloop"]),
        ("dockfleet-node", ["node", str(ROOT / "benches/call_loop.js"), address, "{n}"]),
    ]


def phases(cmd: list[str]) -> tuple[list[float], list[float]]:
    """The answer's wait and the turnaround, in µs, of each call `cmd` makes after the first SKIP."""
    with tempfile.TemporaryDirectory() as tmp:
        data = f"{tmp}/perf.data"
        subprocess.run(["perf", "record", "-q", "-o", data, "-e", EVENTS, *cmd],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        script = subprocess.run(["perf", "script", "-i", data, "-F", "time,event,trace"],
                                check=True, capture_output=True, text=True).stdout
    wait, turn = [], []
    sent = received = None
    for line in script.splitlines():
        fields = line.split()
        t = float(fields[0].rstrip(":"))
        if "sys_enter_writev" in fields[1]:
            if sent is not None and received is not None:
                wait.append(received - sent)
                turn.append(t - received)
            sent, received = t, None
        elif "sys_exit_recvfrom" in fields[1] and 0 < int(fields[-1], 16) < 1 << 63:
            received = t  # the last successful read before the next request
    if len(wait) <= SKIP:
        raise SystemExit(f"{cmd[0]}: only {len(wait)} calls traced")
    return [w * 1e6 for w in wait[SKIP:]], [t * 1e6 for t in turn[SKIP:]]


def cpu_ms(cmd: list[str]) -> float:
    """The process's CPU time (task-clock, every thread, user and kernel), in ms."""
    run = subprocess.run(["perf", "stat", "-x", ",", "-e", "task-clock", *cmd],
                         check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return next(float(line.split(",")[0]) for line in run.stderr.splitlines() if "task-clock" in line)


def cost_curve(address: str, cid: str) -> dict[tuple[str, int, str], float]:
    """Per (before|after, spin, operation), the median ratio of dockfleet-rust spinning that many µs
    before or after each request to dockfleet-rust not spinning, over batches of 100 calls in lockstep."""
    specs = [f"{when} {s}={s}{'/after' if when == 'after' else ''}" for when in WHEN for s in SPINS]
    w = Worker([str(ROOT / "target/release/engine-calls"), address, cid, *specs])
    try:
        names = ["dockfleet-rust", *(f"dockfleet-rust + {when} {s}" for when in WHEN for s in SPINS)]
        results = lockstep({c: w for c in names}, 100, ROUNDS, 100)
        w.close()
    finally:
        w.proc.kill()
    per = {(r["client"], r["op"], r["round"]): r["seconds"] for r in results}
    return {
        (when, s, op): statistics.median(
            per[(f"dockfleet-rust + {when} {s}", op, rnd)] / per[("dockfleet-rust", op, rnd)] for rnd in range(ROUNDS))
        for when in WHEN for s in SPINS for op in OPS
    }


def trace(address: str, cid: str, n: int) -> dict[tuple[str, str], tuple[float, float, float]]:
    """Per (client, operation): the median answer's wait, turnaround and CPU time per call, in µs."""
    traced: dict[tuple[str, str], tuple[list[float], list[float], list[float]]] = {}
    # The clients take turns, TRACES times each, so that a slow spell of the machine lands on all.
    for rnd in range(TRACES):
        for name, cmd in clients(address):
            for op in OPS:
                def full(calls: int) -> list[str]:
                    return [a.format(n=calls) for a in cmd] + ([cid] if op == "inspect" else [])
                wait, turn = phases(full(n))
                cpu = (cpu_ms(full(3 * n)) - cpu_ms(full(n))) * 1e3 / (2 * n)
                pooled = traced.setdefault((name, op), ([], [], []))
                pooled[0].extend(wait)
                pooled[1].extend(turn)
                pooled[2].append(cpu)
                print(f"[turnaround] {rnd + 1}/{TRACES} {name} {op}: wait {statistics.median(wait):.0f} µs, "
                      f"turnaround {statistics.median(turn):.0f} µs, CPU {cpu:.0f} µs", file=sys.stderr, flush=True)
    return {k: (statistics.median(w), statistics.median(t), statistics.median(c)) for k, (w, t, c) in traced.items()}


def main() -> None:
    if sys.argv[1:] == ["--rewrite"]:
        saved = json.loads(SAVED.read_text())
        write({tuple(k.split("|")): tuple(v) for k, v in saved["per"].items()},
              {(k.split("|")[0], int(k.split("|")[1]), k.split("|")[2]): v for k, v in saved["curve"].items()},
              saved["floors"], saved["n"])
        return
    address = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    with bench_container(address, "dockfleet-turnaround") as cid:
        per = trace(address, cid, n)
        print("[turnaround] cost curve: dockfleet-rust spinning before or after each request", file=sys.stderr,
              flush=True)
        curve = cost_curve(address, cid)
    loops = loop_floors()
    # Kept, so that the section can be written again from the same run: turnaround_report.py --rewrite
    SAVED.write_text(json.dumps({"n": n, "per": {"|".join(k): v for k, v in per.items()}, "floors": loops,
                                 "curve": {f"{w}|{s}|{op}": v for (w, s, op), v in curve.items()}}))
    write(per, curve, loops, n)


def write(per: dict[tuple[str, str], tuple[float, float, float]], curve: dict[tuple[str, int, str], float],
          loops: dict[str, float], n: int) -> None:
    rows = []
    for name, _ in clients(""):
        cells = []
        for op in OPS:
            wait, turn, cpu = per[(name, op)]
            rw, rt, rc = per[("dockfleet-rust", op)]
            cells.append(f"{wait + turn:.0f} µs | {wait:.0f} µs ({wait - rw:+.0f}) | {turn:.0f} µs ({turn - rt:+.0f}) "
                         f"| {cpu:.0f} µs ({cpu - rc:+.0f})")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    spin_rows = "\n".join(
        f"| {s} µs | " + " | ".join(f"{curve[(when, s, op)]:.2f}×" for op in OPS for when in WHEN) + " |"
        for s in SPINS)

    def slope(when: str, op: str) -> float:
        # Least squares through 1.00x at no spin: the ratio added per µs of client work.
        return sum(t * (curve[(when, t, op)] - 1) for t in SPINS) / sum(t * t for t in SPINS)

    def rates(when: str) -> str:
        pct = {op: f"{slope(when, op) * 100:.1f}".replace("-0.0", "0.0") for op in OPS}
        return f"{pct['ping']}% to a `ping` and {pct['inspect']}% to an `inspect`"

    def budget(op: str) -> str:
        k = slope("before", op)
        return f"about {0.10 / k:.0f} µs" if k > 0 else "more than the curve shows"

    section = f"""## Client time per call: turnaround, CPU, and what they cost

Each client makes 100 + {n:,} sequential calls against `df-1` (`ping`, then `inspect` of one running
container), {TRACES} times, the clients taking turns, under `perf record`, which traces only two system
calls: the request's `writev` and the answer's `recvfrom`. For every call after the first {SKIP}, a
call's time splits into the answer's wait (from the request's `writev` to the `recvfrom` that reads the
last of the answer: the engine's work, the network, the client's work after sending, its wake-up) and
the client's turnaround (from that `recvfrom` to the next request's `writev`: parsing and converting
the answer, the event loop, starting the next call). Medians over all traced calls. `CPU` is the
client process's CPU time per call, user and kernel (`perf stat` task-clock at {n:,} and {3 * n:,}
calls, the difference per call; the kernel's part includes sending and receiving on the network).
In brackets, the difference to dockfleet-rust. Tracing adds a few µs to every call alike, and the
traces are not in lockstep: the turnaround and the CPU, the client's own work, are the steadier
columns.

| client | ping: call | answer's wait | turnaround | CPU | inspect: call | answer's wait | turnaround | CPU |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

What a client's own work costs it, measured: dockfleet-rust spinning for a few µs before each request
(a longer turnaround) or right after sending it (work while the engine answers), in batches of 100
calls in lockstep with dockfleet-rust not spinning, {ROUNDS} rounds (`benches/engine_calls.rs`); the
median of the per-batch ratios:

| added work | ping, before | ping, after | inspect, before | inspect, after |
|---|---|---|---|---|
{spin_rows}

Each µs of work added before a request (a longer turnaround) adds about {rates("before")};
after it, about {rates("after")} (least-squares lines through 1.00× at none). At the first rate,
1.10× of dockfleet-rust leaves a binding {budget("ping")} of turnaround beyond dockfleet-rust's per
`ping` and {budget("inspect")} per `inspect`, its event loop included. The loops alone, with no dockfleet and no engine, take
{loops["asyncio"]:.1f} µs (asyncio), {loops["uvloop"]:.1f} µs (uvloop) and {loops["Node"]:.1f} µs (Node) to resume code awaiting
a future that an I/O callback completes (`benches/asyncio_floor.py`, `benches/node_floor.js`, in this
run). Spinning stands for a binding's work only roughly: it touches no memory,
while a binding's work allocates, converts and runs an event loop on the core the engine also needs.

Measured {date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}. Reproduce with:

```sh
bash benches/run_turnaround.sh          # [N], default 1000
```
"""
    update(section)
    print(section)


if __name__ == "__main__":
    main()
