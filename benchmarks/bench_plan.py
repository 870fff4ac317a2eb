"""``sweeps plan`` estimates against measured wall time, on one core.

    .venv/bin/python benchmarks/bench_plan.py [--seeds-calibrate 1] [--seeds-predict 1]
        [--full-alphas 0.01 0.059] [--full-settings 0 8 9]

Through the real app (TestClient), a real SQLite and the real dispatcher running each
batch in-process (``InlineRunner``: one core, torch pinned to one thread):

1. **calibrate**: the reduced Exp 1 (``examples/paper/exp1.yaml``, D = 1000, its 10
   settings × 4 α) for the calibration seeds runs for real; its results are stored;
2. **reduced**: the same spec with *other* seeds is planned (calibrated on step 1,
   nothing of it is cached) and then run: estimate vs measured;
3. **full-size sample**: trials of the paper's full size (``exp1_full.yaml``: D = 5000,
   n_test = 10,000, max_steps 200,000) for a few α values and settings, planned with the
   same calibration (from D = 1000 results only) and then run: estimate vs measured;
4. **full sweep**: the estimate for the whole ``exp1_full.yaml`` (1,540 trials) and the
   default constants' estimate beside it.  It is *not* measured here (hours of one
   core); step 3 is the measured sample it extrapolates from, and only those trials are
   compared.

The measured time is the wall time from the submit to the last result stored (dispatch
and writes included); the estimate is ``SweepPlan.estimated_cost_s`` (one core).  The
baseline in the same run is the uncalibrated estimate (default constants: the plan
before step 1).
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import yaml  # noqa: E402

torch.set_num_threads(1)

import warnings  # noqa: E402

# Starlette deprecates TestClient over httpx in favour of httpx2; the app is the same.
warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
from fastapi.testclient import TestClient  # noqa: E402

from service.app import create_app  # noqa: E402
from service.dispatch import Dispatcher  # noqa: E402
from service.runners import InlineRunner  # noqa: E402
from service.settings import LimitSettings, Settings  # noqa: E402
from service.store.migrate import upgrade_to_head  # noqa: E402

PAPER = Path(__file__).resolve().parents[1] / "examples" / "paper"


def load(name: str) -> dict:
    return yaml.safe_load((PAPER / name).read_text())


def subset(spec: dict, settings: list[int] | None) -> dict:
    """The spec with only the zip entries at ``settings`` (all when None)."""
    spec = copy.deepcopy(spec)
    if settings is not None:
        (group,) = spec["zip"]
        spec["zip"] = [{k: [v[i] for i in settings] for k, v in group.items()}]
    return spec


def plan(client: TestClient, spec: dict) -> dict:
    response = client.post("/v1/sweeps/plan", json=spec)
    response.raise_for_status()
    return response.json()


def run(client: TestClient, spec: dict) -> float:
    """Submit and run to the end in-process; the wall seconds."""
    app = client.app
    started = time.perf_counter()
    response = client.post("/v1/sweeps", json=spec)
    response.raise_for_status()
    Dispatcher(app.state.session_factory, app.state.settings, InlineRunner()).run_until_idle()
    elapsed = time.perf_counter() - started
    status = client.get(f"/v1/sweeps/{response.json()['id']}").json()["status"]
    assert status == "succeeded", status
    return elapsed


def row(label: str, trials: int, estimate: float, measured: float | None, basis: dict) -> str:
    ratio = f"{estimate / measured:.2f}" if measured else "-"
    shown = f"{measured:.1f}" if measured else "not run"
    source = basis["source"]
    if source == "calibrated":
        source = f"calibrated on {basis['calibrated_on']}"
    return f"| {label} | {trials} | {estimate:.1f} | {shown} | {ratio} | {source} |"


class Table(list):
    """Rows printed as they come (a full-size sample can take long)."""

    def append(self, line: str) -> None:
        super().append(line)
        print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds-calibrate", type=int, default=1)
    parser.add_argument("--seeds-predict", type=int, default=1)
    parser.add_argument("--full-alphas", type=float, nargs="*", default=[0.01, 0.059])
    parser.add_argument(
        "--full-settings",
        type=int,
        nargs="*",
        default=[0, 8, 9],
        help="zip indices of exp1_full's settings to run at full size",
    )
    args = parser.parse_args()
    url = f"sqlite:///{tempfile.mkdtemp()}/bench_plan.db"
    upgrade_to_head(url)
    settings = Settings(database_url=url, limits=LimitSettings(max_steps=1_000_000))
    app = create_app(settings, start_dispatcher=False, migrate=False)
    lines = Table()
    lines.append("| run | trials | estimate s | measured s | estimate / measured | basis |")
    lines.append("|---|---|---|---|---|---|")
    with TestClient(app) as client:
        reduced = load("exp1.yaml")
        calibrate = dict(reduced, seeds=list(range(args.seeds_calibrate)))
        predict = dict(
            reduced,
            seeds=list(range(args.seeds_calibrate, args.seeds_calibrate + args.seeds_predict)),
        )
        full = load("exp1_full.yaml")
        sample = subset(full, args.full_settings)
        sample["axes"] = {"alpha": args.full_alphas}
        sample["seeds"] = 1
        default_reduced = plan(client, predict)
        default_sample = plan(client, sample)
        default_full = plan(client, full)

        measured = run(client, calibrate)
        planned = plan(client, calibrate | {"seeds": [999]})
        lines.append(
            f"| calibration run (exp1 reduced, {args.seeds_calibrate} seed) | "
            f"{planned['new_count']} | - | {measured:.1f} | - | - |"
        )
        estimate = plan(client, predict)
        measured = run(client, predict)
        for label, made in (("default constants", default_reduced), ("calibrated", estimate)):
            lines.append(
                row(
                    f"exp1 reduced, new seeds: {label}",
                    made["new_count"],
                    made["estimated_cost_s"],
                    measured,
                    made["estimate_basis"],
                )
            )
        estimate = plan(client, sample)
        measured = run(client, sample)
        for label, made in (("default constants", default_sample), ("calibrated", estimate)):
            lines.append(
                row(
                    f"exp1 full size (D 5000) sample, α {args.full_alphas}, settings "
                    f"{args.full_settings}: {label}",
                    made["new_count"],
                    made["estimated_cost_s"],
                    measured,
                    made["estimate_basis"],
                )
            )
        estimate = plan(client, full)
        for label, made in (("default constants", default_full), ("calibrated", estimate)):
            lines.append(
                row(
                    f"exp1 full size, whole sweep: {label}",
                    made["new_count"],
                    made["estimated_cost_s"],
                    None,
                    made["estimate_basis"],
                )
            )


if __name__ == "__main__":
    main()
