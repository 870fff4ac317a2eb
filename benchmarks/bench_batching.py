"""Batch size vs wall time: whole-group batching against split (id-order) batching.

The reduced Exp 1 (examples/paper/exp1.yaml's 10 settings: ω, c_PT, λ_PT, γ_FT one at a
time; per (seed, α) eight settings share the ω = 0.5 dataset) runs through the real app
(TestClient), the real dispatcher, a real local Ray with one CPU and a real SQLite, at
batch sizes 7, 10, 64 and 512, twice each in the same process:

- **grouped** — the product: claims take whole groups, batches keep them whole and are
  sized by the cost model (``SWEEPS_DISPATCH__TARGET_BATCH_SECONDS``, default 45 s);
- **split** — the baseline (main before grouped claims): trials claimed in id order,
  ``limit`` trials at a time, a group larger than the batch size chunked, batches sized
  by count alone.  It lives only here: :func:`split_batching` swaps the claim's group
  step and the batching function for main's for the duration of a run.

Per run: wall time from POST /v1/sweeps to the sweep's end; CPU seconds of this process
and every process below it (the local Ray: raylet, workers; read from /proc, so Linux
only) over the same span, which is what the work costs whatever else loads the
machine (the dispatcher's and the client's polling add a little CPU per wall second:
0.05 s and 0.25 s intervals); Ray tasks; and dataset draws (Σ over batches of the
distinct group keys in each: the worker draws a dataset once per batch that holds its
group); and the seconds spent inside ``execute_batch`` summed over batches (the work
alone: Ray's processes also burn idle CPU in proportion to wall time, which the worker
CPU column includes).  Goal: grouped wall times within 15% of each other across the four
batch sizes.

Default size (stated in the README's table): D = 300, α ∈ {0.15, 0.3}, 14 seeds (the
paper's), n_test = 2 D (as exp1_full.yaml), 3,000 steps max = 280 trials per run: with
8 batches in flight a claim window at batch size 7 or 10 covers 56 or 80 trials, fewer
than the 14 seeds × 10 settings of one α, so split batching cuts groups as it did on
the paper's sizes.  The machine is shared, so every (batch size, batching) pair runs
``--repeats`` times, all interleaved (each repeat starting at another size, the batching
order flipped every other repeat), and the table reports the fastest and the median run
of each, and the noise floor: how far one configuration's own runs lie apart.

    .venv/bin/python benchmarks/bench_batching.py [--dim 300] [--seeds 14] [--steps 3000]
        [--repeats 2] [--sizes 7,10,64,512]
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import torch  # noqa: E402

torch.set_num_threads(1)

import warnings  # noqa: E402

# Starlette deprecates TestClient over httpx in favour of httpx2; the app is the same.
warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
from fastapi.testclient import TestClient  # noqa: E402

from service.app import create_app  # noqa: E402
from service.runners import RayRunner  # noqa: E402
from service.settings import DispatchSettings, RaySettings, Settings  # noqa: E402

EXP1_ZIP = {
    "omega": [0.5, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
    "c_pt": [1e-3, 1e-3, 1e-3, 1e-6, 1.0, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3],
    "lambda_pt": [0.0, 0.0, 0.0, 0.0, 0.0, -1.0, -0.99, 0.99, 0.0, 0.0],
    "gamma_ft": [0.0, 0.0, 0.0, 0.0, 0.0, 1e-6, 0.0, 0.0, 1.0, 10.0],
}


def exp1_spec(dim: int, seeds: int, steps: int, n_test: int) -> dict:
    """The reduced Exp 1: 10 settings × 2 α × ``seeds``."""
    return {
        "name": f"bench-exp1-D{dim}",
        "workload": "dln_finetune",
        "params": {
            "teacher_norm": "exact",
            "D": dim,
            "rho_pt": 0.1,
            "rho_ft": 0.1,
            "n_test": n_test,
        },
        "zip": [EXP1_ZIP],
        "axes": {"alpha": [0.15, 0.3]},
        "seeds": seeds,
        "execution": {"lr": 0.5, "max_steps": steps},
    }


def main_group_into_batches(trials, batch_size, **_ignored):  # noqa: ANN001, ANN201
    """main's batching: groups kept together within one claim, but a group larger than
    the batch size is chunked, and batches are sized by count alone."""
    by_batch: dict = defaultdict(dict)
    for trial in trials:
        by_batch[(trial.workload, trial.batch_key)].setdefault(trial.group_key, []).append(trial)
    batches = []
    for groups in by_batch.values():
        current: list = []
        for members in groups.values():
            if current and len(current) + len(members) > batch_size:
                batches.append(current)
                current = []
            for start in range(0, len(members), batch_size):
                chunk = members[start : start + batch_size]
                if len(chunk) == batch_size:
                    batches.append(chunk)
                else:
                    current.extend(chunk)
        if current:
            batches.append(current)
    return batches


@contextlib.contextmanager
def split_batching() -> Iterator[None]:
    """The baseline: the claim takes its candidates as they come (no whole groups) and
    the dispatcher batches as main did."""
    import service.dispatch.loop as loop
    import service.store.claims as claims

    saved = claims.whole_groups, loop.group_into_batches
    claims.whole_groups = lambda session, candidates, limit, caps, *, postgres: [
        row.id for row in candidates
    ]
    loop.group_into_batches = main_group_into_batches
    try:
        yield
    finally:
        claims.whole_groups, loop.group_into_batches = saved


class CountingRayRunner(RayRunner):
    """RayRunner that counts Ray tasks and the dataset draws they make, and sums the
    seconds the batches computed (``BatchOutput.wall_time_s``, measured inside the
    worker around ``execute_batch``: the work itself, without Ray's or the dispatcher's
    time and without the idle CPU of Ray's processes, which grows with wall time)."""

    def __init__(self, settings: RaySettings) -> None:
        super().__init__(settings)
        self.tasks = self.draws = 0
        self.compute_s = 0.0

    def result(self, handle):  # noqa: ANN001, ANN201
        output = super().result(handle)
        self.compute_s += output.wall_time_s
        return output

    def submit(self, workload, trials, theory_wanted, gpus, *, theory_only=False):  # noqa: ANN001, ANN201
        if not theory_only:
            self.tasks += 1
            self.draws += len({t.group_key for t in trials})
        return super().submit(workload, trials, theory_wanted, gpus, theory_only=theory_only)


def tree_cpu_seconds() -> tuple[float, float]:
    """User + system CPU seconds of (this process and all its live descendants, the Ray
    worker processes among them: command line ``ray::…``), read from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    children: dict[int, list[int]] = defaultdict(list)
    for pid, ppid in parent.items():
        children[ppid].append(pid)
    total = workers = 0.0
    stack = [os.getpid()]
    while stack:
        pid = stack.pop()
        total += cpu.get(pid, 0.0)
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if handle.read(5) == b"ray::":
                    workers += cpu.get(pid, 0.0)
        except OSError:
            pass
        stack += children[pid]
    return total, workers


def run(
    spec: dict, url: str, runner: CountingRayRunner, batch_size: int, grouped: bool
) -> tuple[float, float, float]:
    """(wall seconds from POST to the sweep's end, CPU seconds of the process tree and of
    the Ray workers over it)."""
    settings = Settings(
        database_url=url,
        dispatch=DispatchSettings(
            batch_size=batch_size,
            target_batch_seconds=DispatchSettings().target_batch_seconds if grouped else 0.0,
            poll_seconds=0.05,
            lease_seconds=600,
        ),
    )
    runner.tasks = runner.draws = 0
    runner.compute_s = 0.0
    app = create_app(settings, runner=runner, start_dispatcher=True)
    context = contextlib.nullcontext() if grouped else split_batching()
    with context, TestClient(app) as client:
        cpu_started = tree_cpu_seconds()
        started = time.perf_counter()
        response = client.post("/v1/sweeps", json=spec)
        response.raise_for_status()
        sweep_id = response.json()["id"]
        while True:
            sweep = client.get(f"/v1/sweeps/{sweep_id}").json()
            if sweep["status"] in ("succeeded", "failed", "partial", "cancelled"):
                break
            time.sleep(0.25)
        elapsed = time.perf_counter() - started
        cpu_ended = tree_cpu_seconds()
    if sweep["status"] != "succeeded":
        raise SystemExit(f"sweep ended {sweep['status']}: {sweep['counts']}")
    return elapsed, cpu_ended[0] - cpu_started[0], cpu_ended[1] - cpu_started[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=14)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--n-test", type=int, default=None, help="default: 2 × dim")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sizes", default="7,10,64,512")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    n_test = args.n_test or 2 * args.dim
    spec = exp1_spec(args.dim, args.seeds, args.steps, n_test)
    trials = 10 * 2 * args.seeds

    runner = CountingRayRunner(RaySettings(num_cpus=1))
    runner.start()
    times: dict[tuple[int, str], list[float]] = defaultdict(list)
    cpus: dict[tuple[int, str], list[float]] = defaultdict(list)
    worker_cpus: dict[tuple[int, str], list[float]] = defaultdict(list)
    computes: dict[tuple[int, str], list[float]] = defaultdict(list)
    counts: dict[tuple[int, str], tuple[int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up (worker start, imports), outside the timings.
        run(exp1_spec(40, 1, 50, 20), f"sqlite:///{tmp}/warm.db", runner, 512, True)
        for repeat in range(args.repeats):
            # Each repeat starts at another batch size and flips the batching order, so
            # a machine that speeds up or slows down over the minutes of a run favours
            # no size and neither batching.
            shift = repeat % len(sizes)
            for size in sizes[shift:] + sizes[:shift]:
                for grouped in (True, False) if repeat % 2 == 0 else (False, True):
                    name = "grouped" if grouped else "split"
                    # A fresh database per run: nothing is a cache hit.
                    url = f"sqlite:///{tmp}/{name}-{size}-{repeat}.db"
                    seconds, cpu, worker_cpu = run(spec, url, runner, size, grouped)
                    times[(size, name)].append(seconds)
                    cpus[(size, name)].append(cpu)
                    worker_cpus[(size, name)].append(worker_cpu)
                    computes[(size, name)].append(runner.compute_s)
                    counts[(size, name)] = (runner.tasks, runner.draws)
                    print(
                        f"  batch {size:>4} {name:>8}: {seconds:7.2f} s wall, {cpu:7.2f} s CPU"
                        f" ({worker_cpu:.2f} s in Ray workers, {runner.compute_s:.2f} s in"
                        " execute_batch)",
                        flush=True,
                    )
    runner.shutdown()

    datasets = 3 * 2 * args.seeds
    print(
        f"\nReduced Exp 1: {trials} trials (D = {args.dim}, α ∈ {{0.15, 0.3}}, {args.seeds} "
        f"seeds, ≤ {args.steps} steps, n_test {n_test}; {datasets} datasets), app + "
        f"dispatcher + local Ray (1 CPU) + SQLite; {args.repeats} interleaved runs each"
    )
    header = (
        "batch size",
        "batching",
        "fastest s",
        "median s",
        "min CPU s",
        "worker CPU",
        "compute s",
        "Ray tasks",
        "draws",
        "wall vs grp",
        "wCPU vs grp",
        "comp vs grp",
    )
    print(" | ".join(f"{h:>11}" for h in header))
    best = {key: min(values) for key, values in times.items()}
    least = {key: min(values) for key, values in cpus.items()}
    working = {key: min(values) for key, values in worker_cpus.items()}
    computing = {key: min(values) for key, values in computes.items()}
    for (size, name), values in times.items():
        tasks, draws = counts[(size, name)]
        cells = [
            str(size),
            name,
            f"{best[(size, name)]:.2f}",
            f"{statistics.median(values):.2f}",
            f"{least[(size, name)]:.2f}",
            f"{working[(size, name)]:.2f}",
            f"{computing[(size, name)]:.2f}",
            str(tasks),
            str(draws),
            f"{best[(size, name)] / best[(size, 'grouped')]:.2f}x",
            f"{working[(size, name)] / working[(size, 'grouped')]:.2f}x",
            f"{computing[(size, name)] / computing[(size, 'grouped')]:.2f}x",
        ]
        print(" | ".join(f"{c:>11}" for c in cells))
    middle = {key: statistics.median(values) for key, values in times.items()}
    tables = (
        ("wall (fastest run)", best),
        # The goal is judged here too: with a noise floor of tens of percent (one
        # configuration's own runs), the fastest run is one lucky quiet window; the
        # median of the interleaved runs is what a user waits.
        ("wall (median run)", middle),
        ("CPU (least)", least),
        ("worker CPU", working),
        ("compute in execute_batch", computing),
    )
    # The noise floor: the same configuration's runs differ only by the machine.
    spreads = {key: max(values) / min(values) for key, values in times.items()}
    if args.repeats > 1:
        worst = max(spreads, key=spreads.get)
        print(
            f"noise floor (same configuration, slowest / fastest of {args.repeats} runs): "
            f"median {statistics.median(spreads.values()):.3f}, worst {spreads[worst]:.3f} "
            f"(batch {worst[0]} {worst[1]})"
        )
    for label, table in tables:
        grouped = [table[(size, "grouped")] for size in sizes]
        split = [table[(size, "split")] for size in sizes]
        ratios = zip(sizes, grouped, split, strict=True)
        print(
            f"{label}: slowest / fastest batch size: grouped "
            f"{max(grouped) / min(grouped):.3f} (goal ≤ 1.15), split "
            f"{max(split) / min(split):.3f}; split / grouped: "
            + ", ".join(f"{size}: {b / a:.2f}x" for size, a, b in ratios)
        )


if __name__ == "__main__":
    main()
