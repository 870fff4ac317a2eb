"""Adaptive phase diagrams vs uniform grids, against a dense reference (issue 15).

    .venv/bin/python benchmarks/bench_refine.py [--no-service] [--budgets 256,512,768,1024]

Box and task: λ_PT ∈ [−0.99, 0.99] × γ_FT ∈ [1e−3, 10] (log), the task statistics and
c_PT of ``examples/paper/phase.yaml`` (the spec ``examples/paper/phase_refine.yaml``).
Labels: the theory regime (``workers.theory.regimes.theory_regime``, THEORY.md §4).

- Reference: the labels at the centres of a 256 × 256 uniform grid of the box.
- Uniform N × N grids (N points per axis, box edges included).
- Adaptive: the refine algorithm (initial 9 × 9, at most 5 halvings: finest cell = the
  reference cell), at several trial budgets, with the (ℓ, PD) diagnostics guard (the
  service's default) and without it (labels only).

Every method's label map is evaluated at the reference cells the same way (each
position takes the nearest labelled point of its leaf cell; on a uniform grid that is
nearest-neighbour).  Errors: the fraction of reference cells labelled wrongly, and the
Hausdorff distance between the boundaries (midpoints of adjacent reference cells with
different labels) of the method's map and of the reference, in unit box coordinates
(each axis 0..1; 0.01 is 1% of the λ range or 0.04 decades of γ).

With the service check (default), the budget-1024 adaptive sweep is also run through
the real store and dispatcher (SQLite, in-process runner, ``dln_theory`` trials) and must
sample exactly the points the pure algorithm sampled.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.refine.boundary import grid_units, predict  # noqa: E402
from service.refine.labels import PointValue, comparator, label_map  # noqa: E402
from service.refine.lattice import Lattice  # noqa: E402
from service.refine.offline import refine_offline  # noqa: E402
from workers.config import InitParams, TaskStats  # noqa: E402
from workers.theory.regimes import theory_regime  # noqa: E402

SPEC = yaml.safe_load((ROOT / "examples" / "paper" / "phase_refine.yaml").read_text())
REFERENCE_CELLS = 256
UNIFORM = (16, 32, 64)


def labeller():  # noqa: ANN201 - params → PointValue
    p = SPEC["params"]
    task = TaskStats(p["rho_pt"], p["rho_ft"], p["omega"])

    def value(params: dict[str, float]) -> PointValue:
        point = theory_regime(task, InitParams(p["c_pt"], params["lambda_pt"], params["gamma_ft"]))
        return PointValue(point.label, point.l_order, point.pd)

    return value


def point_at(lattice: Lattice, unit: np.ndarray) -> dict[str, float]:
    """Parameter values at a position in unit box coordinates."""
    return {axis.name: axis.at(float(u)) for axis, u in zip(lattice.axes, unit, strict=True)}


def boundary_points(grid: np.ndarray) -> np.ndarray:
    """Midpoints between adjacent cells with different labels (unit coordinates)."""
    n = grid.shape[0]
    i, j = np.nonzero(grid[1:, :] != grid[:-1, :])
    first = np.stack([(i + 1) / n, (j + 0.5) / n], axis=1)
    i, j = np.nonzero(grid[:, 1:] != grid[:, :-1])
    second = np.stack([(i + 0.5) / n, (j + 1) / n], axis=1)
    return np.concatenate([first, second])


def hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    if not len(a) or not len(b):
        return float("inf")
    return float(max(cKDTree(a).query(b)[0].max(), cKDTree(b).query(a)[0].max()))


def score(lattice: Lattice, labels: dict, units: np.ndarray, reference: np.ndarray):
    found = np.array(predict(lattice, labels, units), dtype=object).reshape(reference.shape)
    wrong = float(np.mean(found != reference))
    return wrong, hausdorff(boundary_points(found), boundary_points(reference))


def run_service(budget: int) -> tuple[set, float]:
    """The adaptive sweep through the real store and dispatcher: its points and time."""
    from api_schemas.spec import SweepSpec
    from service.dispatch import Dispatcher
    from service.runners import InlineRunner
    from service.settings import Settings
    from service.store import refine as refine_store
    from service.store.migrate import upgrade_to_head
    from service.store.session import make_engine, make_session_factory, session_scope
    from service.sweeps import submit_sweep

    spec = dict(SPEC, refine=dict(SPEC["refine"], budget=budget))
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/sweeps.db"
        upgrade_to_head(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        settings = Settings(database_url=url)
        started = time.perf_counter()
        with session_scope(factory) as session:
            sweep, _ = submit_sweep(session, SweepSpec.model_validate(spec), settings, "b", None)
        Dispatcher(factory, settings, InlineRunner()).run_until_idle(timeout=3600)
        elapsed = time.perf_counter() - started
        with session_scope(factory) as session:
            inputs = refine_store.refine_inputs(session, sweep.id)
        engine.dispose()
    lattice = Lattice.from_spec(SPEC["refine"])
    return {lattice.locate(r["params"]) for r in inputs.records}, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="256,512,768,1024")
    parser.add_argument("--no-service", action="store_true", help="skip the service check")
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    value = labeller()
    refine = SPEC["refine"]
    units = grid_units(REFERENCE_CELLS)
    dense = Lattice.from_spec(dict(refine, initial=REFERENCE_CELLS + 1, max_depth=0))
    started = time.perf_counter()
    reference = np.array(
        [value(point_at(dense, unit)).label for unit in units], dtype=object
    ).reshape(REFERENCE_CELLS, REFERENCE_CELLS)
    counts = ", ".join(f"{k} {int(np.sum(reference == k))}" for k in ("I", "II", "III", "IV"))
    elapsed = time.perf_counter() - started
    print(f"reference: {REFERENCE_CELLS}x{REFERENCE_CELLS} theory grid in {elapsed:.1f} s; "
          f"cells per label: {counts}")  # fmt: skip
    rows = []
    for n in UNIFORM:
        lattice = Lattice.from_spec(dict(refine, initial=n, max_depth=0))
        labels = {p: value(lattice.params(p)).label for p in lattice.initial_points()}
        rows.append(
            (f"uniform {n}x{n}", len(labels), "", *score(lattice, labels, units, reference))
        )
    lattice = Lattice.from_spec(refine)
    adaptive = {}
    for guard in (True, False):
        compare = comparator(refine.get("label", "regime_theory"), guard)
        for budget in budgets:
            run = refine_offline(lattice, value, budget, compare=compare)
            if guard:
                adaptive[budget] = set(run.labels)
            labels = label_map(run.labels)
            name = f"adaptive{'' if guard else ' (labels only)'}, budget {budget}"
            detail = f"{run.rounds} rounds, {run.stop}"
            rows.append((name, len(labels), detail, *score(lattice, labels, units, reference)))
    print(f"\n{'method':<38} {'trials':>6}  {'wrong cells':>11}  {'Hausdorff':>9}  rounds")
    for name, trials, detail, wrong, distance in rows:
        print(f"{name:<38} {trials:>6}  {wrong:>11.4f}  {distance:>9.4f}  {detail}")
    target = next(r for r in rows if r[0] == "uniform 64x64")
    quarter = [r for r in rows if r[0].startswith("adaptive,") and r[1] <= target[1] // 4]
    best = [r for r in quarter if r[3] <= target[3] and r[4] <= target[4]]
    print(f"\ntarget: uniform 64x64 ({target[1]} trials): wrong {target[3]:.4f}, "
          f"Hausdorff {target[4]:.4f}; reached within a quarter of its trials by: "
          + (", ".join(f"{r[0]} ({r[1]} trials)" for r in best) or "none"))  # fmt: skip
    if not args.no_service:
        budget = max(budgets)
        points, elapsed = run_service(budget)
        same = points == adaptive[budget]
        print(f"\nservice: budget-{budget} refine sweep through store + dispatcher: "
              f"{len(points)} dln_theory trials in {elapsed:.1f} s; same points as the pure "
              f"algorithm: {same}")  # fmt: skip
        if not same:
            sys.exit(1)


if __name__ == "__main__":
    main()
