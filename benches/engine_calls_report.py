"""Runs every engine-call client against the same engine, one after another, and writes BENCHMARKS.md.
Called by benches/run_engine_calls.sh after the release builds."""

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from bench_container import DOCKER, bench_container
from update_benchmarks import update

ROOT = Path(__file__).resolve().parents[1]
ADDRESS = "tcp://10.250.0.11:2375"
CLI_CALLS = 100  # a process per call: fewer calls, same per-call figure
WARM_UP = 100  # unreported calls of each operation per client and process, before the rounds
SAVED = ROOT / "target" / "engine-calls.json"
ASYNCIO_FLOOR = "asyncio's floor"
NODE_FLOOR = "Node's floor"
UVLOOP_FLOOR = "uvloop's floor"
OPS = ["ping", "list", "inspect"]


def lines(cmd, **kw):
    run = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if run.returncode != 0:
        sys.stderr.write(run.stderr[-4000:])
        raise SystemExit(f"{cmd[0]} {cmd[1] if len(cmd) > 1 else ''} exited with {run.returncode}")
    return [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]


def cli(cid, rounds):
    ops = {
        "ping": [DOCKER, "-H", ADDRESS, "version", "--format", "{{.Server.APIVersion}}"],
        "list": [DOCKER, "-H", ADDRESS, "ps", "-q"],
        "inspect": [DOCKER, "-H", ADDRESS, "inspect", cid],
    }
    out = []
    for rnd in range(rounds):
        for op, cmd in ops.items():
            t = time.perf_counter()
            for _ in range(CLI_CALLS):
                subprocess.run(cmd, check=True, capture_output=True)
            out.append({"client": "docker CLI", "op": op, "round": rnd, "calls": CLI_CALLS, "seconds": time.perf_counter() - t})
    return out


class Worker:
    """One client process of benches/engine_calls.{rs,py,js}: says which clients it has, then makes a batch
    of calls per request and answers with the time the batch took."""

    def __init__(self, cmd):
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.clients = self.answer()["clients"]

    def answer(self):
        line = self.proc.stdout.readline()
        if not line.startswith("{"):
            self.proc.kill()
            raise SystemExit(f"{self.cmd[0]} {self.cmd[1]}: no answer (exit code {self.proc.wait()})")
        return json.loads(line)

    def batch(self, client, op, calls):
        self.proc.stdin.write(f"{client}\t{op}\t{calls}\n")
        self.proc.stdin.flush()
        return self.answer()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def main():
    if sys.argv[1:] == ["--rewrite"]:
        write(**json.loads(SAVED.read_text()))
        return
    if sys.argv[1:2] == ["--separate-cores"]:
        separate_cores(int(sys.argv[2]), int(sys.argv[3]))
        return
    calls, rounds = int(sys.argv[1]), int(sys.argv[2])
    with bench_container(ADDRESS, "dockfleet-bench", "--label", "dockfleet.bench=1") as cid:
        results, floor, node_floor, uvloop_floor = measure(cid, calls, rounds)
    # Kept, so that the section can be written again from the same run: engine_calls_report.py --rewrite
    SAVED.write_text(json.dumps(
        {"results": results, "calls": calls, "rounds": rounds, "floor": floor, "node_floor": node_floor,
         "uvloop_floor": uvloop_floor}))
    write(results, calls, rounds, floor, node_floor, uvloop_floor)


def engine_threads():
    """The thread ids of df-1's dockerd, from the testbed's pid file."""
    pid = int(Path("/run/dockfleet-testbed/df-1.pid").read_text())
    return [int(t) for t in os.listdir(f"/proc/{pid}/task")]


def separate_cores(calls, rounds):
    """The same lockstep rounds with the engine on core 0 and every client (and the loops' floors) on
    core 1: what the ratios come to on a machine where the engine does not share the client's core."""
    cores = os.sched_getaffinity(0)
    if len(cores) < 2:
        raise SystemExit("--separate-cores needs two cores")
    engine_core, client_core = sorted(cores)[:2]
    with bench_container(ADDRESS, "dockfleet-bench", "--label", "dockfleet.bench=1") as cid:
        threads = engine_threads()
        try:
            for t in threads:
                os.sched_setaffinity(t, {engine_core})
            os.sched_setaffinity(0, {client_core})  # the client processes inherit it
            results, floor, node_floor, uvloop_floor = measure(cid, calls, rounds, with_cli=False)
        finally:
            os.sched_setaffinity(0, cores)
            for t in engine_threads():
                os.sched_setaffinity(t, cores)
    write_separate_cores(results, calls, rounds, floor, node_floor, uvloop_floor)


def loop_floors():
    """Each event loop's own time to resume code awaiting an I/O completion, in µs, with no dockfleet and
    no engine: asyncio's default loop, uvloop's, Node's."""
    py = [sys.executable, str(ROOT / "benches/asyncio_floor.py"), "20000", "5"]
    cmds = {"asyncio": py, "uvloop": py + ["uvloop"], "Node": ["node", str(ROOT / "benches/node_floor.js")]}
    return {name: lines(cmd)[0]["us_per_await"] for name, cmd in cmds.items()}


def lockstep(owner, calls, rounds, warm_up, ops=OPS):
    """Batches of `calls` calls by every client of `owner` (client name -> its Worker), after `warm_up`
    unreported calls of each operation per client. In each round every client makes one batch of each
    operation, the clients one after the other (their order rotating from round to round), so that each
    binding's batch and dockfleet-rust's ran within a second of each other, under the same spell of this
    shared machine. One result per batch, with its round."""
    order = list(owner)
    for op in ops:
        for client in order:
            owner[client].batch(client, op, warm_up)
    results = []
    for rnd in range(rounds):
        print(f"[bench] round {rnd + 1}/{rounds}", file=sys.stderr)
        turn = order[rnd % len(order):] + order[:rnd % len(order)]
        for op in ops:
            for client in turn:
                results.append({**owner[client].batch(client, op, calls), "round": rnd})
    return results


def measure(cid, calls, rounds, with_cli=True):
    """Every client's batches (in lockstep), then the docker CLI's; and the three loops' floors."""
    workers = []
    try:
        # Each loop's own cost per awaited I/O completion, measured first: the Rust worker also runs
        # dockfleet spinning that long before every call (what a binding costing nothing else would take).
        floors = loop_floors()
        floor, node_floor, uvloop_floor = floors["asyncio"], floors["Node"], floors["uvloop"]
        pauses = [f"{ASYNCIO_FLOOR}={floor}", f"{NODE_FLOOR}={node_floor}", f"{UVLOOP_FLOOR}={uvloop_floor}"]
        for cmd in ([str(ROOT / "target/release/engine-calls"), ADDRESS, cid, *pauses],
                    [sys.executable, str(ROOT / "benches/engine_calls.py"), ADDRESS, cid],
                    [sys.executable, str(ROOT / "benches/engine_calls.py"), ADDRESS, cid, "uvloop"],
                    ["node", str(ROOT / "benches/engine_calls.js"), ADDRESS, cid]):
            workers.append(Worker(cmd))
        results = lockstep({client: w for w in workers for client in w.clients}, calls, rounds, WARM_UP)
        for w in workers:
            w.close()
        if with_cli:
            print("[bench] docker CLI", file=sys.stderr)
            results += cli(cid, min(rounds, 3))
    finally:
        for w in workers:
            w.proc.kill()
    return results, floor, node_floor, uvloop_floor


BOUND = {"dockfleet-python": f"dockfleet-rust + {ASYNCIO_FLOOR}", "dockfleet-node": f"dockfleet-rust + {NODE_FLOOR}",
         "dockfleet-python (uvloop)": f"dockfleet-rust + {UVLOOP_FLOOR}"}
GOALS_HEAD = """| op | binding | ÷ dockfleet-rust | per batch: median (quartiles) | ≤ 1.10× | bound: loop floor alone | vs peer |
|---|---|---|---|---|---|---|"""


def medians(results):
    """Each (client, op)'s times per call, their medians, and each batch's time per call by round."""
    per_call = {}
    by_round = {}
    for r in results:
        per_call.setdefault((r["client"], r["op"]), []).append(r["seconds"] / r["calls"])
        by_round[(r["client"], r["op"], r["round"])] = r["seconds"] / r["calls"]
    return per_call, {k: statistics.median(v) for k, v in per_call.items()}, by_round


def goal_rows(med, by_round, rounds):
    """The goal table's rows (GOALS_HEAD): each binding's ratio to dockfleet-rust per operation."""

    def paired(b, op):
        # Each round's batch of the binding ÷ dockfleet-rust's (run within a second of each other): the
        # median and the quartiles of those ratios say how far one run's cell can be trusted.
        ratios = [by_round[(b, op, i)] / by_round[("dockfleet-rust", op, i)] for i in range(rounds)]
        q1, q2, q3 = statistics.quantiles(ratios, n=4)
        return f"{q2:.2f}× ({q1:.2f}-{q3:.2f})"

    goals = []
    for op in OPS:
        rust = med[("dockfleet-rust", op)]
        for b, peer in (("dockfleet-python", "docker-py"), ("dockfleet-python (uvloop)", "docker-py"),
                        ("dockfleet-python (sync)", "docker-py"), ("dockfleet-node", "dockerode")):
            if (b, op) not in med:
                continue  # a run from before the client was measured (--rewrite)
            floor_row = med.get((BOUND.get(b), op))
            goals.append(
                f"| {op} | {b} | {med[(b, op)] / rust:.2f}× | {paired(b, op)} | {'met' if med[(b, op)] / rust <= 1.10 else 'missed'} "
                f"| {f'{floor_row / rust:.2f}×' if floor_row else '—'} "
                f"| {med[(peer, op)] / med[(b, op)]:.2f}× faster than {peer} |"
            )
    return goals


def write_separate_cores(results, calls, rounds, floor, node_floor, uvloop_floor):
    _, med, by_round = medians(results)
    rust = "/".join(f"{med[('dockfleet-rust', op)] * 1e6:.0f}" for op in OPS)
    section = f"""## Engine calls with the engine on a core of its own

The same lockstep rounds as above ({rounds} rounds of {calls:,} calls per client and operation, no docker
CLI), with `df-1`'s dockerd pinned to one of this machine's two cores and every client process, the loops'
floors included, to the other (`sched_setaffinity`; restored afterwards). On this 2-core machine the
engine otherwise shares a core with the client: work a client does while the engine answers, and
the client's wake-ups, then cost the engine time too (see `Client time per call` below). Pinned,
that share goes away; what remains is each binding's own time per call and its loop's. The engine
has one core instead of sharing two, so every client is a little slower than in the run above
(it is not a machine with cores to spare either). dockfleet-rust took {rust} µs per ping/list/inspect in this run. The loop
floors: asyncio {floor:.1f} µs, uvloop {uvloop_floor:.1f} µs, Node {node_floor:.1f} µs.

{GOALS_HEAD}
{chr(10).join(goal_rows(med, by_round, rounds))}

Measured {date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}. Reproduce with:

```sh
bash benches/run_engine_calls.sh {calls} {rounds} separate-cores
```
"""
    update(section)
    print(section)


def write(results, calls, rounds, floor, node_floor, uvloop_floor=None):
    per_call, med, by_round = medians(results)
    clients = ["bollard", "dockfleet-rust", "dockfleet-rust (multi-thread)", *BOUND.values(), "dockfleet-python",
               "dockfleet-python (uvloop)",
               "dockfleet-python (sync)", "dockfleet-node", "docker-py", "dockerode", "docker CLI"]
    ops = OPS
    rows = []
    for c in clients:
        cells = []
        for op in ops:
            v = med.get((c, op))
            cells.append(f"{v * 1e6:,.0f} µs ({v / med[('bollard', op)]:.2f}×)" if v else "—")
        rows.append(f"| {c} | " + " | ".join(cells) + " |")
    goals = goal_rows(med, by_round, rounds)
    def fastest():
        best = {k: min(v) for k, v in per_call.items()}
        cells = []
        for b in ("dockfleet-rust", "dockfleet-python (sync)", "dockfleet-python", "dockfleet-python (uvloop)", "dockfleet-node"):
            if (b, "ping") not in best:
                continue
            t = "/".join(f"{best[(b, op)] * 1e6:.0f}" for op in ops)
            r = "" if b == "dockfleet-rust" else " (" + "/".join(f"{best[(b, op)] / best[('dockfleet-rust', op)]:.2f}" for op in ops) + "×)"
            cells.append(f"{b} {t} µs{r}")
        return "ping/list/inspect, " + ", ".join(cells)

    uv = f"{uvloop_floor:.1f} µs" if uvloop_floor else "—"

    def bound_range(binding):
        if (BOUND[binding], "ping") not in med:
            return "—"
        r = [med[(BOUND[binding], op)] / med[("dockfleet-rust", op)] for op in ops]
        return f"{min(r):.2f}-{max(r):.2f}×"

    section = f"""## Engine calls: ping, list containers, inspect

Every client makes {rounds} batches of {calls:,} sequential calls per operation ({rounds * calls:,} calls
each; the docker CLI: {CLI_CALLS} calls, {min(rounds, 3)} times, one process per call), all against the same
testbed engine (`df-1`, Docker 20.10 over plain TCP on the testbed bridge), in one run and in lockstep:
the Rust, Python and Node processes stay up for the whole run, and in each round every client makes
one batch of each operation in turn (the clients' order rotating from round to round), so that a
binding's batch and dockfleet-rust's ran within about a second of each other, under the same spell of
this shared machine. Before the rounds, every client makes {WARM_UP} unreported calls of each
operation. Each cell is the median over batches
of the time per call, and its ratio to raw bollard. `dockfleet-rust` runs on a current-thread runtime
(a call's I/O on the calling thread); `dockfleet-rust (multi-thread)` is the same code as
`#[tokio::main]` runs it by default (the calls on the main thread, the connections served by the
runtime's worker threads). `dockfleet-python` is the Python binding awaited on asyncio's default
loop, `dockfleet-python (uvloop)` the same on uvloop's (PyPI `uvloop`, libuv's loop for asyncio), in a
process of its own, and `dockfleet-python (sync)` its blocking facade. `dockfleet-rust + {ASYNCIO_FLOOR}`,
`+ {UVLOOP_FLOOR}` and `+ {NODE_FLOOR}` are `dockfleet-rust` spinning before every call for as long as
asyncio ({floor:.1f} µs), uvloop ({uv}) or Node ({node_floor:.1f} µs) takes, with no dockfleet and no
engine, to resume code awaiting a future (a Promise) that an I/O callback completes
(`benches/asyncio_floor.py`, `benches/node_floor.js`, measured first in this run): about what a binding
would take whose only cost per call were its event loop's own (a little more: each floor also counts
one socket write and read of its own).

| client | ping | list containers | inspect |
|---|---|---|---|
{chr(10).join(rows)}

Goals (issue 2): each binding within 1.10× of dockfleet in Rust, and faster than its language's peer.
`÷ dockfleet-rust` divides the medians above; `per batch` is the median of the ratios of each
binding's batch to dockfleet-rust's batch of the same round and operation, with their first and third
quartiles: how much a cell moves with this machine's noise. The bound column is `dockfleet-rust +` the
binding's loop's floor (asyncio's, uvloop's or Node's) ÷ dockfleet-rust: about the best an awaited call could do on that event loop, before any
work of the binding's own (the blocking facade has no loop).

{GOALS_HEAD}
{chr(10).join(goals)}

Reading the figures:
- dockfleet-rust is faster than raw bollard because dockfleet gives bollard a pooled keep-alive
  transport; bollard's own opens a TCP connection per request (and a long run of calls exhausts the
  ephemeral ports: 30,000 sequential calls did).
- Every binding's `DockerHost` calls do their I/O on the calling thread, as `dockfleet-rust` does,
  with no hand-off to another thread and back. `dockfleet-python` and `dockfleet-node` run them on
  a runtime of the event loop's own thread (`dockfleet::embed`), which the loop drives: asyncio
  watches the runtime's epoll descriptor with `add_reader`, libuv with a `uv_poll`, and each ticks
  the runtime when it turns readable. Before, the I/O ran on dockfleet's (napi's) tokio threads and
  each call paid a thread wake-up there and back (on this VM a wake-up of a sleeping thread costs
  tens of µs, against a round trip to the engine of 100-150 µs): the async bindings were 1.9-2.8x
  the Rust loop then. The same hand-off is what `dockfleet-rust (multi-thread)` pays.
- `dockfleet-python (sync)` is the blocking facade: the call runs on the same per-thread runtime,
  blocked on with the GIL released (strace: one `writev`, one blocking `epoll_wait`, one `recvfrom`
  and no `futex` per call, as dockfleet-rust; until 2026-12-06 one more `epoll_wait` after the answer
  was read, see below). Since 2026-12-06 it runs an engine call's future directly instead of driving
  its coroutine (no `send`, no `StopIteration`), and wraps results by a lookup of their exact type:
  callgrind counted 79.8k instructions per ping in the client before and 60.8k after, against
  dockfleet-rust's 51.8k (`bash benches/run_instructions.sh` counts them for every client). Awaited calls add the event loop's own work per call. In Python the call is a
  coroutine of dockfleet's whose asyncio future the loop's reader callback completes (no
  `call_soon_threadsafe`); asyncio alone, with no dockfleet and no engine, takes {floor:.1f} µs to
  complete such a future from a reader callback and resume the awaiting task
  (`benches/asyncio_floor.py`, in this run), {floor / (med[("dockfleet-rust", "ping")] * 1e6):.0%} of a
  dockfleet-rust ping before any of the call's own work. In Node it is a Promise and its reaction.
  Setting a call's request timeout wakes nothing (the embedded runtime keeps a timer set a second
  ahead, so a 60 s timeout is never tokio's earliest; until 2026-12-03 each awaited call cost one
  more `write` to the runtime's eventfd and one more event for the loop). Since 2026-12-06 (later
  the same day) an awaited call and the connection it uses are tasks of a local task set that the
  embedded runtime polls directly, outside tokio's scheduler: starting a call writes its request
  with no `block_on` and no look at the drivers, and the tick that completes it looks at the drivers
  (a non-blocking `epoll_wait`) once. Per call, between one request and the next, strace now shows
  the request's `writev`, the loop's own wait, one `epoll_wait` of tokio's and the answer's
  `recvfrom`: Node 5 system calls instead of 7 (2 tokio looks fewer), awaited Python 5 instead of
  6-7, and no system call at all between reading an answer and writing the next request. The
  blocking facade's `block_on` polls the caller's future again as soon as the connection task wakes
  it, instead of after one more look at the drivers. callgrind, per ping: Node 84.8k instructions
  before, 81.5-81.6k after; awaited Python 110.1k and 105.7-105.8k; on uvloop 75.9k and 71.0-71.9k;
  the facade 60.4k and 60.8k (one system call fewer; it also keeps one signal-check timer per
  thread instead of registering and removing a 100 ms timeout per call). The engine-call ratios
  did not move beyond this machine's noise with it.
- Node builds each result object with a JS function of the type's shape (an object literal, one
  napi call) since 2026-12-06; napi-rs defined the properties one by one, and V8 decoded and interned
  every key each time and took its slow path through the object's map transitions. callgrind, per
  `inspectContainer` in the Node process: 278k instructions before, 244-253k after (dockfleet-rust:
  194k).
- Where a Node ping's 71k instructions on the JS thread go (callgrind, inclusive, per call,
  2026-12-06, after the local task set; V8's optimizing compiler on its own thread adds about 10k
  to the 81.5k above while the loop warms up): the call's and its connection's tasks 52.7k
  (dockfleet-rust's whole ping, its `block_on` loop included, is 51.7k), the one look at the drivers
  2.3k; napi-rs's method call 4k, about 2.5k of it napi-rs's own bookkeeping of borrowed class
  instances (a global mutex and hash map per call); settling the Promise about 7k (callback scope,
  resolution, the result object, the microtasks); libuv's loop 2k. Before, the runtime's ticks
  entered tokio's `block_on` twice per call and looked at the drivers three times: 61k for the same
  tasks.
- The bound column says how much of a gap is the event loop's: `dockfleet-rust` spinning for its
  loop's floor before each call gives {bound_range("dockfleet-python")} (asyncio), {bound_range("dockfleet-python (uvloop)")}
  (uvloop) and {bound_range("dockfleet-node")} (Node) in this run; what a binding takes beyond that is its own. Node's floor is the binding's
  `_ioFloor()`: a Promise that a native `uv_poll` callback resolves, the path an engine call's
  completion takes (8k instructions per await; until 2026-12-06 it was a `net.Socket`'s data event,
  118-126k, more than a whole dockfleet-node ping, which overstated the floor about 2.5 times in
  time). Node's own floor is small: most of the Node binding's gap is its own (napi-rs's
  method call, settling the Promise, the call's task; see above). A few µs of client work between
  calls come back larger: the engine's threads go idle between requests and answer a client that
  paused later than one that did not. The section `Client time per call` below measures both: each
  client's own work per call, and what each added µs of it costs dockfleet-rust in this ratio
  (`bash benches/run_turnaround.sh`). Per awaited Python call the loop runs exactly its
  floor's two iterations (a blocking `select` that the runtime's descriptor ends, and a `select(0)`
  to resume the task: counted on `loop._selector`); the client process's CPU per ping, from
  `getrusage`, was about 18 µs for a bare blocking socket, 55-70 µs for the blocking facade and
  95 µs awaited (before the facade's fast path). In instructions (callgrind), an awaited ping costs
  the Python client 89-112k against the facade's 60-62k and Rust's 52k, and asyncio alone executes
  about 41k per awaited I/O completion: most of the awaited path's extra is asyncio's own loop
  (Python code: `_run_once`, `select`, the handles), which the spinning floor above, measured with
  hot caches, undercounts. The rest is a few thousand instructions of the binding's own (the
  coroutine, the asyncio future, the call's task) and, until the local task set, the runtime's extra
  non-blocking `epoll_wait`s.
- uvloop (measured since 2026-12-06) does far less work per awaited completion than asyncio's default
  loop: 12.7k instructions against 40-41k, and the awaited ping on it 71-72k against 106k (callgrind,
  `bash benches/run_instructions.sh`), about 20 µs less CPU per call. Its calls still take about as
  long as on the default loop here: their turnaround stays 15-20 µs over dockfleet-rust's (`Client
  time per call` below), and a µs there costs more than one spent while the engine answers (the
  spin curves there).
- In each client's fastest batch, when the machine was quietest, the bindings stand further from
  dockfleet-rust than in the medians: {fastest()}. The machine's noise adds
  time to every client alike, which pulls a ratio of medians towards 1; the goals are read on the
  medians all the same, as the issue asks.
- On this 2-core machine the engine shares a core with the client; the next section runs the same
  rounds with the engine and the clients on cores of their own (`separate-cores`), as on a machine
  with cores to spare.
- Runs are noisy on this shared 2-core machine (whole runs have come out 3x slower than others, raw
  bollard included, and close pairs swap places between runs): read the ratios of one run, not single
  cells across runs.

Measured {date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}; the
`docker CLI` ping column is `docker version` (a `/_ping` plus `/version`). Reproduce with:

```sh
bash benches/run_engine_calls.sh {calls} {rounds}   # [CALLS per batch] [ROUNDS], default 100 50
```
"""
    update(section)
    print(section)


if __name__ == "__main__":
    main()
