"""Time the replica curve (THEORY.md §3): an 80-point alpha curve per configuration.

    .venv/bin/python benchmarks/bench_replica.py [--skip-baseline] [--repeat 3]

Pinned to one thread.  The baseline is the original code's approach -- the same
fixed-point equations with Monte-Carlo expectations over 80,000 fixed samples (seed 0)
and the root-solved prox -- timed on one alpha point and multiplied by 80.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workers.config import InitParams, TaskStats  # noqa: E402
from workers.theory import _fixed_point  # noqa: E402
from workers.theory._prox import Mixture, MonteCarloExpectation  # noqa: E402
from workers.theory.asymptotics import generalization_curve, task_mixture  # noqa: E402

ALPHAS = np.linspace(0.01, 0.5, 80)
CONFIGS = {
    "reference (rho .1/.1, omega .5, lambda 0)": (
        TaskStats(0.1, 0.1, 0.5),
        InitParams(1e-3, 0.0, 0.0),
    ),
    "regime IV (lambda -0.99, rho_ft .01)": (
        TaskStats(0.1, 0.01, 1.0),
        InitParams(1e-3, -0.99, 0.0),
    ),
    "rich (lambda -1, gamma 1e-6)": (TaskStats(0.1, 0.1, 0.0), InitParams(1e-3, -1.0, 1e-6)),
    "lazy (gamma 10)": (TaskStats(0.1, 0.1, 0.5), InitParams(1e-3, 0.0, 10.0)),
}
MC_SAMPLES = 80_000


def monte_carlo_point(mix: Mixture, alpha: float) -> tuple[float, float]:
    """(seconds, E_gen) of one alpha solved with the original's Monte-Carlo expectations."""
    expectation = MonteCarloExpectation(mix, MC_SAMPLES, 0, root_solved=True)
    ch = _fixed_point.Channel(expectation, 0.0, 1e-6, 0.0)
    start = time.perf_counter()
    fp = _fixed_point.solve_fixed_point(
        alpha, ch, (mix.second_moment / alpha, 1.0), tol=1e-6, max_iter=900, damping=0.25
    )
    return time.perf_counter() - start, fp.error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of this many curve runs")
    parser.add_argument(
        "--skip-baseline",
        action="store_true",
        help="skip the Monte-Carlo baseline (minutes per configuration)",
    )
    args = parser.parse_args()
    print(
        f"{'configuration':44s} {'curve s':>8s} {'MC x80 s':>9s} {'speed-up':>9s} "
        f"{'reliable':>8s} {'E(.2) quad':>10s} {'E(.2) MC':>9s}"
    )
    for name, (task, init) in CONFIGS.items():
        generalization_curve(task, init, ALPHAS[:3])  # warm caches / imports
        # Best of `repeat`: the machine is shared.
        seconds = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            curve = generalization_curve(task, init, ALPHAS)
            seconds = min(seconds, time.perf_counter() - start)
        quad = generalization_curve(task, init, [0.2]).gen_error[0]
        if args.skip_baseline:
            mc_seconds, mc_error = float("nan"), float("nan")
        else:
            mc_seconds, mc_error = monte_carlo_point(task_mixture(task, init), 0.2)
        print(
            f"{name:44s} {seconds:8.2f} {80 * mc_seconds:9.1f} {80 * mc_seconds / seconds:8.0f}x "
            f"{int(curve.reliable.sum()):5d}/80 {quad:10.4f} {mc_error:9.4f}"
        )


if __name__ == "__main__":
    main()
