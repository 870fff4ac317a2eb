"""Service overhead per trial: batched dispatch vs one Ray task per trial.

    overhead per trial = (wall time from POST /v1/sweeps to the last result stored
                          − time of the same computations called directly in one
                          process) / trial count

"The same computations called directly" is measured twice: inside the Ray worker
(``execute_batch``'s own wall time, summed over batches — the primary number, free of
run-to-run noise) and as a separate in-process run afterwards (a cross-check whose
noise, a few % of minutes of compute, can exceed the overhead itself).

measured for a ``dln_theory`` sweep (10,000 trials by default) and a ``dln_finetune``
sweep (2,000 trials), through the real app (TestClient), the real dispatcher, a real
local Ray and a real SQLite (or PostgreSQL with --database-url).  The baseline in the
same run is the same dispatcher with ``batch_size=1`` — one Ray task per trial — on a
random subset of the trials (the per-trial overhead is a per-trial quantity, and
10,000 single-trial tasks would take most of an hour on two cores).

Ray gets one CPU so the service path and the direct path use the same compute; the
driver (API + dispatcher + database writes) runs beside it on the second core.

    .venv/bin/python benchmarks/bench_dispatch.py [--theory-trials 10000]
        [--finetune-trials 2000] [--per-trial-subset 300] [--database-url URL]
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import random  # noqa: E402
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

from api_schemas.spec import SweepSpec  # noqa: E402
from service.app import create_app  # noqa: E402
from service.expand import expand_spec  # noqa: E402
from service.runners import RayRunner  # noqa: E402
from service.settings import DispatchSettings, LimitSettings, RaySettings, Settings  # noqa: E402
from workers.records import ClaimedTrial  # noqa: E402
from workers.runtime import execute_batch  # noqa: E402


def theory_spec(trials: int) -> dict:
    """``trials`` = configs × 80 α points (the paper's theory-curve resolution)."""
    configs = max(1, trials // 80)
    lambdas = max(1, configs // 5)
    return {
        "name": "bench-theory",
        "workload": "dln_theory",
        "params": {"rho_pt": 0.1, "rho_ft": 0.1, "omega": 0.5, "c_pt": 1e-3},
        "axes": {
            "lambda_pt": {"kind": "linspace", "start": -0.95, "stop": 0.9, "num": lambdas},
            "gamma_ft": {"kind": "logspace", "start": 1e-3, "stop": 10.0, "num": 5},
            "alpha": {"kind": "linspace", "start": 0.01, "stop": 0.5, "num": 80},
        },
    }


def finetune_spec(trials: int) -> dict:
    """``trials`` = 10 seeds × init configs, every config on each seed's dataset."""
    configs = max(1, trials // 10)
    return {
        "name": "bench-finetune",
        "workload": "dln_finetune",
        "params": {"D": 100, "alpha": 0.5, "rho_pt": 0.1, "rho_ft": 0.1, "omega": 0.5},
        "axes": {
            "c_pt": {"kind": "logspace", "start": 1e-3, "stop": 1.0, "num": 5},
            "lambda_pt": {"kind": "linspace", "start": -0.9, "stop": 0.9, "num": configs // 5},
            "gamma_ft": [0.5],
        },
        "seeds": 10,
        "execution": {"lr": 0.2, "max_steps": 2000},
    }


class TimedRayRunner(RayRunner):
    """RayRunner that adds up the compute time the workers report for each batch
    (``BatchOutput.wall_time_s``: ``execute_batch`` called directly in the worker)."""

    def __init__(self, settings: RaySettings) -> None:
        super().__init__(settings)
        self.compute_s = 0.0

    def result(self, handle):  # noqa: ANN001, ANN201 - same contract as RayRunner
        output = super().result(handle)
        self.compute_s += output.wall_time_s
        return output


def run_service(
    spec: dict, database_url: str, runner: TimedRayRunner, batch_size: int, inflight: int
) -> tuple[float, float]:
    """(wall time from POST to the last result stored, worker compute inside it)."""
    settings = Settings(
        database_url=database_url,
        limits=LimitSettings(max_trials=1_000_000),
        dispatch=DispatchSettings(
            batch_size=batch_size,
            max_inflight_batches=inflight,
            claim_size=max(4096, batch_size * inflight),
            poll_seconds=0.01,
            lease_seconds=600,
        ),
    )
    app = create_app(settings, runner=runner, start_dispatcher=True)
    runner.compute_s = 0.0
    with TestClient(app) as client:
        started = time.perf_counter()
        response = client.post("/v1/sweeps", json=spec)
        response.raise_for_status()
        sweep_id = response.json()["id"]
        while True:
            sweep = client.get(f"/v1/sweeps/{sweep_id}").json()
            if sweep["status"] in ("succeeded", "failed", "partial", "cancelled"):
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        if sweep["status"] != "succeeded":
            raise SystemExit(f"sweep ended {sweep['status']}: {sweep['counts']}")
    return elapsed, runner.compute_s


@contextlib.contextmanager
def one_task_per_trial() -> Iterator[None]:
    """The baseline's dispatcher: claims take trials as they come and every trial is a
    batch of its own.  The product keeps whole groups (trials sharing a dataset or a
    theory curve) in one batch whatever the batch size, so ``batch_size=1`` alone no
    longer means one task per trial."""
    import service.dispatch.loop as loop
    import service.store.claims as claims

    saved = claims.whole_groups, loop.group_into_batches
    claims.whole_groups = lambda session, candidates, limit, caps, *, postgres: [
        row.id for row in candidates
    ]
    loop.group_into_batches = lambda trials, batch_size, **_: [[trial] for trial in trials]
    try:
        yield
    finally:
        claims.whole_groups, loop.group_into_batches = saved


def claimed(trial_id: int, workload: str, planned) -> ClaimedTrial:  # noqa: ANN001
    """The record the dispatcher would send into Ray for a planned trial."""
    return ClaimedTrial(
        trial_id,
        1,
        workload,
        planned.params,
        planned.seed,
        planned.execution,
        planned.batch_key,
        planned.group_key,
        planned.theory_key,
    )


def direct_time(spec: dict, *, per_trial: bool) -> float:
    """The same computations in this process, grouped as the dispatcher would.

    As in the service, each replica prediction (theory key) is computed once and then
    shared by every seed and batch that needs it.
    """
    planned = expand_spec(SweepSpec.model_validate(spec), LimitSettings(max_trials=10**6))
    workload = spec["workload"]
    items = [claimed(i, workload, t) for i, t in enumerate(planned)]
    computed: set[str] = set()

    def wanted_for(chunk: list[ClaimedTrial]) -> dict[int, str]:
        wanted = {}
        for item in chunk:
            key = item.theory_key
            if key and (key not in computed or workload == "dln_theory"):
                wanted[item.trial_id] = key
                computed.add(key)
        return wanted

    started = time.perf_counter()
    if per_trial:
        for item in items:
            execute_batch(workload, [item], wanted_for([item]))
    else:
        groups: dict[str, list[ClaimedTrial]] = defaultdict(list)
        for item, trial in zip(items, planned, strict=True):
            groups[trial.batch_key].append(item)
        for members in groups.values():
            for start in range(0, len(members), 512):
                chunk = members[start : start + 512]
                execute_batch(workload, chunk, wanted_for(chunk))
    return time.perf_counter() - started


def subset_spec(spec: dict, size: int, seed: int = 0) -> dict:
    """About ``size`` trials of ``spec``: random configs, each with all of its seeds."""
    planned = expand_spec(SweepSpec.model_validate(spec), LimitSettings(max_trials=10**6))
    seeds = sorted({t.seed for t in planned if t.seed is not None})
    configs = {}
    for trial in planned:
        point = tuple(trial.params[name] for name in spec.get("axes", {}))
        configs.setdefault(point, trial.params)
    rng = random.Random(seed)
    chosen = rng.sample(sorted(configs), min(len(configs), max(1, size // max(1, len(seeds)))))
    names = list(spec.get("axes", {}))
    zipped = {name: [point[i] for point in chosen] for i, name in enumerate(names)}
    return {**spec, "name": spec["name"] + "-per-trial", "axes": {}, "zip": [zipped]}


def warm_up(runner: RayRunner) -> None:
    """Start the Ray worker process and import the science once, outside the timings."""
    import ray

    spec = theory_spec(80)
    planned = expand_spec(SweepSpec.model_validate(spec), LimitSettings())[:2]
    items = [claimed(i, "dln_theory", t) for i, t in enumerate(planned)]
    handle = runner.submit(
        "dln_theory", items, {i: t.theory_key for i, t in enumerate(planned)}, 0.0
    )
    ray.get(handle)
    finetune = expand_spec(SweepSpec.model_validate(finetune_spec(100)), LimitSettings())[:1]
    ray.get(runner.submit("dln_finetune", [claimed(0, "dln_finetune", finetune[0])], {}, 0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--theory-trials", type=int, default=10_000)
    parser.add_argument("--finetune-trials", type=int, default=2_000)
    parser.add_argument("--per-trial-subset", type=int, default=300)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    runner = TimedRayRunner(RaySettings(num_cpus=1))
    runner.start()
    warm_up(runner)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, spec in (
            ("dln_theory", theory_spec(args.theory_trials)),
            ("dln_finetune", finetune_spec(args.finetune_trials)),
        ):
            sub = subset_spec(spec, args.per_trial_subset)
            for mode, run_spec, batch_size, inflight in (
                ("batched", spec, 512, 4),
                ("1 task/trial", sub, 1, 64),
            ):
                count = len(
                    expand_spec(SweepSpec.model_validate(run_spec), LimitSettings(max_trials=10**6))
                )
                url = args.database_url or f"sqlite:///{tmp}/{label}-{batch_size}.db"
                baseline = one_task_per_trial() if batch_size == 1 else contextlib.nullcontext()
                with baseline:
                    e2e, compute = run_service(run_spec, url, runner, batch_size, inflight)
                direct = direct_time(run_spec, per_trial=batch_size == 1)
                rows.append(
                    (
                        label,
                        mode,
                        count,
                        e2e,
                        compute,
                        direct,
                        (e2e - compute) / count * 1e3,
                        (e2e - direct) / count * 1e3,
                    )
                )
    runner.shutdown()

    print("\nService overhead per trial: batched dispatch vs one Ray task per trial")
    header = (
        "workload",
        "dispatch",
        "trials",
        "e2e s",
        "worker s",
        "direct s",
        "ovh ms/trial",
        "vs direct",
    )
    print(" | ".join(f"{h:>12}" for h in header))
    for row in rows:
        cells = [
            row[0],
            row[1],
            str(row[2]),
            f"{row[3]:.2f}",
            f"{row[4]:.2f}",
            f"{row[5]:.2f}",
            f"{row[6]:.3f}",
            f"{row[7]:.3f}",
        ]
        print(" | ".join(f"{c:>12}" for c in cells))
    print()
    for label in ("dln_theory", "dln_finetune"):
        batched, single = (r for r in rows if r[0] == label)
        print(
            f"{label}: one task per trial costs {single[6] / batched[6]:.1f}x the batched "
            f"overhead ({single[6]:.3f} vs {batched[6]:.3f} ms/trial)"
        )
    print(
        "ovh = (e2e − worker compute) / trials; worker compute = execute_batch wall time "
        "measured inside the Ray worker.  'vs direct' = (e2e − a separate in-process run "
        "of the same computations) / trials: the same quantity, but it carries the "
        "run-to-run noise of the whole computation."
    )
    print("targets: batched overhead < 2 ms/trial; >= 10x less than one task per trial")


if __name__ == "__main__":
    main()
