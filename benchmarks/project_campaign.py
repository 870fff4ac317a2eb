"""Project the cost of the whole ``*_full`` campaign from measured networks.

Reads the result CSVs that ``benchmarks/paper_scale.py`` wrote (``--results``, any
number: runs of different α and settings) and uses the cost model of
``service.scheduling.calibration`` with one change, per-setting growth of the steps:

    seconds = c · steps · n · D,   c = Σ wall / Σ (steps · n · D)   (all measured networks)
    steps(setting, α) = min(max_steps, b α^q)

``b, q`` are fitted per setting of ``exp1_full.yaml`` (its ``(ω, c_PT, λ_PT, γ_FT)``) by
least squares in log–log on the median steps at each α measured (one α measured: ``q =
1``, the calibration's ``steps ∝ n``); ``max_steps`` is the spec's for that setting (its
``execution_overrides`` included).  The fit predicts every (setting, α) of the full grid,
times the seeds.  ``sweeps plan`` assumes ``q = 1`` for every setting; the rich settings
grow faster than that (q up to ~1.7 between α = 0.01 and 0.059), which the plan misses.

The regime figure (``regimes_full.yaml``) runs the init settings II, IV, I and III on
three ground truths; it is projected with the exp1 setting of the same init knobs
(II: the baseline λ = 0, γ = 0; IV: λ = −0.99; I: λ = −1, γ = 1e−6; III: γ = 10) on
ω = 0.5, ρ_FT = 0.1 — a proxy, said so in the output.

Everything past the largest α measured is an extrapolation; the table says how far each
setting's fit reaches.  One-core seconds, divided by ``--workers`` for the wall time (Ray
runs one batch per core).

    .venv/bin/python benchmarks/project_campaign.py --results \
        docs/figures/paper-scale/exp1-paper-scale_results.csv [--workers 2] \
        [--seconds-per-unit 1.1e-9]

``--holdout`` tests the step models on the measured networks instead of projecting:
per setting, fit on every α but the largest, predict the largest, with the plan's
``steps ∝ n`` as the baseline beside the power law.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

PAPER = Path(__file__).resolve().parents[1] / "examples" / "paper"
KNOBS = ("omega", "c_pt", "lambda_pt", "gamma_ft")
CHECK_EVERY = 50  # workers.dln.evaluate.TrainOptions.check_every
# Regime figure settings → the exp1 setting with the same init knobs (ω = 0.5 there).
REGIME_PROXY = {
    (0.0, 0.0): (0.5, 1e-3, 0.0, 0.0),
    (-0.99, 0.0): (0.5, 1e-3, -0.99, 0.0),
    (-1.0, 1e-6): (0.5, 1e-3, -1.0, 1e-6),
    (0.0, 10.0): (0.5, 1e-3, 0.0, 10.0),
}


def alpha_grid(spec: dict) -> list[float]:
    axis = spec["axes"]["alpha"]
    if isinstance(axis, list):
        return [float(a) for a in axis]
    return np.linspace(axis["start"], axis["stop"], axis["num"]).tolist()


def max_steps_of(spec: dict, setting: dict[str, float]) -> int:
    """The spec's step budget for one setting (later overrides win, as in expand)."""
    steps = int(spec["execution"]["max_steps"])
    for override in spec.get("execution_overrides", []):
        if all(float(setting[k]) == float(v) for k, v in override["when"].items()):
            steps = int(override["execution"].get("max_steps", steps))
    return steps


def measured(paths: list[Path]) -> tuple[float, dict[tuple, dict[float, float]]]:
    """(c: seconds per step·n·D over every network; {setting: {α: median steps}})."""
    wall = work = 0.0
    steps: dict[tuple, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for path in paths:
        with path.open() as handle:
            for row in csv.DictReader(handle):
                if row["status"] != "succeeded" or not row["wall_time_s"]:
                    continue
                ran = int(json.loads(row["metrics"])["steps"])
                dim = int(row["D"])
                alpha = float(row["alpha"])
                wall += float(row["wall_time_s"])
                work += max(ran, 1) * max(1, round(alpha * dim)) * dim
                setting = tuple(round(float(row[k]), 12) for k in KNOBS)
                steps[setting][round(alpha, 6)].append(ran)
    medians = {s: {a: statistics.median(v) for a, v in by.items()} for s, by in steps.items()}
    return wall / work, medians


def fit(points: dict[float, float]) -> tuple[float, float]:
    """(b, q) of steps = b α^q."""
    alphas = sorted(points)
    if len(alphas) == 1:
        (alpha,) = alphas
        return points[alpha] / alpha, 1.0
    q, log_b = np.polyfit(np.log(alphas), np.log([points[a] for a in alphas]), 1)
    return float(math.exp(log_b)), float(q)


def network_s(c: float, b: float, q: float, cap: int, alpha: float, dim: int) -> float:
    n = max(1, round(alpha * dim))
    return c * predicted_steps(b, q, cap, alpha) * n * dim


def predicted_steps(b: float, q: float, cap: int, alpha: float) -> float:
    # At least one stopping check (every 50 steps): a lazy setting whose steps fall
    # with α (γ_FT = 10) is not extrapolated below what any run takes.
    return min(cap, max(CHECK_EVERY, b * alpha**q))


def holdout(medians: dict[tuple, dict[float, float]]) -> None:
    """Each setting measured at three α or more: both step models fitted on all but its
    largest α, then asked for the largest.  The baseline is ``sweeps plan``'s model, steps
    ∝ n with one slope per setting (``Σ steps / Σ n``, here over the medians: ``b = Σ
    steps_α / Σ α``); the other is this script's power law ``b α^q``.  Prints each setting's
    measured median and both predictions, then the total steps predicted over measured
    and the spread of the per-setting ratios."""
    print("| ω | c_PT | λ_PT | γ_FT | α held out | measured | steps ∝ n | ratio | b α^q | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    held: list[tuple[float, float, float]] = []  # (measured, steps ∝ n, power law)
    for setting, points in sorted(medians.items()):
        if len(points) < 3:
            continue
        last = max(points)
        known = {alpha: steps for alpha, steps in points.items() if alpha != last}
        # Both floored at one stopping check, as the projection is (predicted_steps).
        linear = max(CHECK_EVERY, sum(known.values()) / sum(known) * last)
        b, q = fit(known)
        power = predicted_steps(b, q, math.inf, last)
        actual = points[last]
        held.append((actual, linear, power))
        cells = " | ".join(f"{v:g}" for v in setting)
        print(
            f"| {cells} | {last:g} | {actual:,.0f} | {linear:,.0f} | {linear / actual:.2f} | "
            f"{power:,.0f} (q {q:.2f}) | {power / actual:.2f} |"
        )
    measured_total = sum(actual for actual, _, _ in held)
    for name, model in (("steps ∝ n (the plan, baseline)", 1), ("power law b α^q", 2)):
        total = sum(row[model] for row in held)
        ratios = [row[model] / row[0] for row in held]
        print(
            f"- {name}: Σ predicted / Σ measured {total / measured_total:.2f}; per setting "
            f"median {statistics.median(ratios):.2f}, range {min(ratios):.2f}–{max(ratios):.2f} "
            f"({len(ratios)} settings)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, nargs="+", required=True)
    parser.add_argument("--workers", type=float, default=2.0)
    parser.add_argument(
        "--seconds-per-unit",
        type=float,
        default=None,
        help="the machine constant c (s per step·n·D on one core) to use instead of the "
        "results' own, e.g. when the measured run shared its cores with other work",
    )
    parser.add_argument(
        "--holdout",
        action="store_true",
        help="test the step models instead: per setting, fit on every α but the largest and "
        "predict the largest (the plan's steps ∝ n as the baseline, then the power law)",
    )
    args = parser.parse_args()
    c, medians = measured(args.results)
    if args.holdout:
        holdout(medians)
        return
    if args.seconds_per_unit is not None:
        print(f"c measured in the results: {c:.3g}; using {args.seconds_per_unit:.3g}")
        c = args.seconds_per_unit
    fits = {s: (fit(points), max(points)) for s, points in medians.items()}

    exp1 = yaml.safe_load((PAPER / "exp1_full.yaml").read_text())
    (group,) = exp1["zip"]
    dim = int(exp1["params"]["D"])
    grid, seeds = alpha_grid(exp1), int(exp1["seeds"])
    print(
        f"exp1_full.yaml: {len(group['omega'])} settings × {len(grid)} α × {seeds} seeds, "
        f"D = {dim}; c = {c:.3g} s per step·n·D"
    )
    print(
        "| ω | c_PT | λ_PT | γ_FT | α measured to | q | steps at α = 0.5 | s/network at 0.5 | Σ s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    totals = {"exp1_full.yaml": 0.0, "regimes_full.yaml": 0.0}
    for i in range(len(group["omega"])):
        values = {k: float(group[k][i]) for k in KNOBS}
        key = tuple(round(values[k], 12) for k in KNOBS)
        cells = " | ".join(f"{values[k]:g}" for k in KNOBS)
        if key not in fits:
            print(f"| {cells} | not measured | | | | |")
            continue
        (b, q), reach = fits[key]
        cap = max_steps_of(exp1, values)
        total = seeds * sum(network_s(c, b, q, cap, alpha, dim) for alpha in grid)
        totals["exp1_full.yaml"] += total
        print(
            f"| {cells} | {reach:g} | {q:.2f} | {predicted_steps(b, q, cap, 0.5):,.0f} | "
            f"{network_s(c, b, q, cap, 0.5, dim):,.0f} | {total:,.0f} |"
        )
    regimes = yaml.safe_load((PAPER / "regimes_full.yaml").read_text())
    init, truths = regimes["zip"]
    r_grid, r_seeds = alpha_grid(regimes), int(regimes["seeds"])
    r_dim = int(regimes["params"]["D"])
    for lam, gamma in zip(init["lambda_pt"], init["gamma_ft"], strict=True):
        proxy = REGIME_PROXY[(float(lam), float(gamma))]
        key = tuple(round(v, 12) for v in proxy)
        if key not in fits:
            continue
        (b, q), _ = fits[key]
        cap = max_steps_of(regimes, {"lambda_pt": lam, "gamma_ft": gamma})
        totals["regimes_full.yaml"] += (
            len(truths["omega"])
            * r_seeds
            * sum(network_s(c, b, q, cap, alpha, r_dim) for alpha in r_grid)
        )
    for name, seconds in totals.items():
        hours = seconds / args.workers / 3600
        print(f"- {name}: {seconds:,.0f} one-core s → {hours:,.1f} h on {args.workers:g} cores")
    together = sum(totals.values()) / args.workers / 3600
    print(
        f"- together: {together:,.1f} h on {args.workers:g} cores (regime figure: the exp1 "
        "settings of the same init knobs as proxies)"
    )


if __name__ == "__main__":
    main()
