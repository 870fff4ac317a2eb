"""The paper's size through the service: Experiment 1 and the regime figure at D = 5000.

Runs ``examples/paper/exp1_full.yaml`` (optionally only some α of its grid and some of
its settings) and ``regimes_full.yaml`` through the real app (TestClient), the real
dispatcher, a real local Ray (every CPU, and the GPUs Ray finds) and a real SQLite, then
writes into ``--out``:

- ``<name>_report.json`` — the agreement report (``GET /v1/sweeps/{id}/report``);
- ``<name>_gen_error.png``, ``<name>_scatter.png`` (and ``regimes.png`` for the regime
  figure) — the figures the README shows;
- ``<name>_results.csv`` — every result;
- ``summary.md`` — the table below and the projection.

The table: trials finished, not_converged configs, wall time from submit to the last
result, median and total seconds per network (each trial's ``wall_time_s``: its batch's
measured time shared by steps·n·D), the fraction of configs above the stopping floor with
the theory inside the simulation's 95% interval, and the regime-label agreement of the
clear trials (regimes-v2).

The projection of what the ``*_full`` campaign still lacks, on this machine: ``sweeps plan`` on the
full specs, calibrated on the results just stored (``service.scheduling.calibration``:
one-core seconds), divided by the Ray workers that run batches in parallel (CPUs, or GPUs
with ``--device cuda``); trials already stored with a result are cache hits and cost
nothing, so with ``--ledger`` it is the cost of what the campaign still lacks.  It is an
extrapolation from what ran, and says so; it means something only when what ran has the
campaign's D (a smoke run with ``--dim`` calibrates the per-step cost on tiny networks,
whose fixed costs dominate).

    .venv/bin/python benchmarks/paper_scale.py --alphas 0.01 0.059 0.108 0.157 \
        [--settings 0 1 2 ...] [--no-regimes | --no-exp1] [--device cpu|cuda|auto] \
        [--budget-s 3600] [--dim 5000] [--seeds 14] [--leg-steps N] \
        [--out docs/figures/paper-scale]

``--rereport-db URL`` reopens the database of an earlier run (``--database-url``),
recomputes the replica values stored as unreliable — through the dispatcher's own
reconcile path: the prediction rows are dropped, the trials' values cleared, and a
dispatcher computes and backfills them — and writes the reports and figures again; the
simulations are not rerun.

``--report-db URL`` writes the same outputs (and the table's rows) for every sweep of an
earlier run's database as it stands: a run stopped before its end reports what had
finished (the rest is cancelled, not run); only the theory curves are computed.

``--ledger FILE`` keeps the campaign across machines and sessions: a gzipped SQLite
snapshot of every network computed so far (``docs/figures/paper-scale/ledger.sqlite.gz``
is this repository's).  The run works on a copy restored from it and writes it back when
it ends, also when stopped (SIGINT); a trial whose key the ledger holds with a result is
a cache hit, so a run of the same sweep computes only what is missing (the trials a
stopped run left cancelled are revived).  ``--report`` writes the outputs of what the
ledger (or ``--database-url``) holds without running anything.

``--combine REPORT.json ...`` prints the agreement over the distinct configs of several
reports (a config two reports share, such as the regime figure's II setting that is an
Exp 1 setting, counts once): the issue's "≥ 85% of the configs above the stopping floor"
over Exp 1 and the regime figure together.

``--dim`` and ``--seeds`` shrink the run (a smoke check on a small machine; the default
is the paper's).  ``--budget-s`` bounds all the sweeps together: a sweep still running
when it is spent is cancelled and reported as partial, a sweep not started is not run.
``scripts/gpu_check.sh`` runs it with ``--device cuda`` when a GPU is lent.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import csv  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402

# Starlette deprecates TestClient over httpx in favour of httpx2; the app is the same.
warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
from fastapi.testclient import TestClient  # noqa: E402

from api_schemas.spec import SweepSpec  # noqa: E402
from service.app import create_app  # noqa: E402
from service.expand import axis_values  # noqa: E402
from service.runners import RayRunner  # noqa: E402
from service.settings import DispatchSettings, LimitSettings, RaySettings, Settings  # noqa: E402

PAPER = Path(__file__).resolve().parents[1] / "examples" / "paper"
FINAL = ("succeeded", "failed", "partial", "cancelled")
FIGURES = {"exp1": ["gen_error", "scatter"], "regimes": ["regimes", "scatter"]}
THEORY_SPECS = {"exp1": "exp1_theory.yaml", "regimes": "regimes_theory.yaml"}
# The plan counts a trial stored with a result as a cache hit, so with a ledger this is
# the cost of what the campaign still lacks.
PROJECTION_HEADING = (
    "Projection of what the campaign still lacks (the trials not stored with a result; "
    "calibrated on the results stored):"
)


def open_ledger(ledger: Path, folder: Path | None = None) -> Path:
    """A working SQLite file in ``folder`` (a new temporary one by default) restored from
    the gzipped ``ledger`` (a new, empty one when the ledger does not exist yet).  The run
    writes to the copy, never to the ledger."""
    folder = folder or Path(tempfile.mkdtemp(prefix="paper-scale-"))
    work = folder / "ledger.db"
    if ledger.exists():
        with gzip.open(ledger, "rb") as source, work.open("wb") as target:
            shutil.copyfileobj(source, target)
    return work


def save_ledger(work: Path, ledger: Path) -> None:
    """Write ``work`` back to ``ledger``: a consistent snapshot (``VACUUM INTO``, a read
    transaction, so a dispatcher still writing cannot tear it), gzipped with no name or time
    (the same database gives the same bytes), then moved into place in one rename."""
    snapshot = work.with_name("snapshot.db")
    snapshot.unlink(missing_ok=True)
    connection = sqlite3.connect(work)
    try:
        connection.execute("VACUUM INTO ?", (str(snapshot),))
    finally:
        connection.close()
    ledger.parent.mkdir(parents=True, exist_ok=True)
    partial = ledger.with_name(ledger.name + ".partial")
    with snapshot.open("rb") as source, partial.open("wb") as raw:
        with gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as target:
            shutil.copyfileobj(source, target)
    os.replace(partial, ledger)
    snapshot.unlink()


def load(name: str) -> dict:
    return yaml.safe_load((PAPER / name).read_text())


def decimal_alphas(spec: dict) -> list[float]:
    """The spec's α grid (the service's own expansion, ``service.expand.axis_values``) as
    the decimals it means: ``linspace(0.01, 0.5, 11)`` gives 0.059000000000000004 and
    0.15700000000000003, while ``--alphas 0.059 0.157`` gives 0.059 and 0.157, and a
    trial's key holds the float; so every run and the projection key α by the decimal (12
    significant digits), and the same α is the same trial."""
    values = axis_values(SweepSpec.model_validate(spec).axes["alpha"])
    return [float(f"{value:.12g}") for value in values]


def shaped(
    spec: dict,
    *,
    alphas: list[float] | None,
    settings: list[int] | None,
    device: str,
    dim: int | None,
    seeds: int | None,
) -> dict:
    """The spec with only these α and zip settings, on ``device``, optionally smaller."""
    spec = copy.deepcopy(spec)
    spec.setdefault("axes", {})["alpha"] = alphas if alphas is not None else decimal_alphas(spec)
    if settings is not None and spec.get("zip"):
        (group,) = spec["zip"]
        spec["zip"] = [{key: [values[i] for i in settings] for key, values in group.items()}]
    spec.setdefault("execution", {})["device"] = device
    if dim is not None:
        spec["params"]["D"] = dim
        spec["params"]["n_test"] = min(int(spec["params"].get("n_test", 2 * dim)), 2 * dim)
    if seeds is not None:
        spec["seeds"] = seeds
    return spec


def run_sweep(client: TestClient, spec: dict, budget_s: float) -> tuple[dict, float]:
    """Submit, wait until the sweep ends or the budget runs out (then cancel); the final
    sweep and the wall seconds."""
    started = time.perf_counter()
    response = client.post("/v1/sweeps", json=spec)
    response.raise_for_status()
    sweep_id = response.json()["id"]
    while True:
        sweep = client.get(f"/v1/sweeps/{sweep_id}").json()
        if sweep["status"] in FINAL:
            return sweep, time.perf_counter() - started
        if time.perf_counter() - started > budget_s:
            client.post(f"/v1/sweeps/{sweep_id}/cancel").raise_for_status()
            budget_s = float("inf")  # wait for the cancel to settle
        time.sleep(1.0)


def figures_of(sweep_name: str) -> list[str]:
    """The figures written for a sweep of this script (``<exp1|regimes>-paper-scale``)."""
    return FIGURES["regimes" if sweep_name.startswith("regimes") else "exp1"]


def theory_companion(
    client: TestClient, sweep: dict, drive: Callable[[], None] | None = None
) -> str | None:
    """The id of the sweep's replica-theory companion (``<name>-theory``: the paper's
    ``*_theory.yaml``, 80 α points), submitted now if the database has none; it draws
    the figures' theory lines over the whole α range (seconds to compute).  ``drive``
    computes it where no dispatcher runs in the background."""
    kind = sweep["name"].removesuffix("-paper-scale")
    if kind not in THEORY_SPECS:
        return None
    wanted = f"{sweep['name']}-theory"
    for other in client.get("/v1/sweeps", params={"limit": 100}).json()["items"]:
        if other["name"] == wanted and other["status"] == "succeeded":
            return other["id"]
    spec = load(THEORY_SPECS[kind])
    spec["name"] = wanted
    if drive is None:
        theory, _ = run_sweep(client, spec, 600.0)
    else:
        response = client.post("/v1/sweeps", json=spec)
        response.raise_for_status()
        drive()
        theory = client.get(f"/v1/sweeps/{response.json()['id']}").json()
    return theory["id"] if theory["status"] == "succeeded" else None


def inline_driver(app: object, settings: Settings) -> Callable[[], None]:
    """Runs the pending trials in this process until none is left (no Ray)."""
    from service.dispatch import Dispatcher
    from service.runners import InlineRunner

    def drive(timeout: float = 600.0) -> None:
        runner = InlineRunner()
        Dispatcher(app.state.session_factory, settings, runner).run_until_idle(timeout=timeout)

    return drive


def write_outputs(
    client: TestClient, sweep: dict, out: Path, figures: list[str], theory: str | None = None
) -> dict:
    """Report, figures (theory lines from the ``theory`` sweep when given) and results of
    one sweep into ``out``; the report."""
    sweep_id, name = sweep["id"], sweep["name"]
    report = client.get(f"/v1/sweeps/{sweep_id}/report").json()
    (out / f"{name}_report.json").write_text(json.dumps(report, indent=1) + "\n")
    params = {"theory_sweep": theory} if theory else {}
    for kind in figures:
        response = client.get(f"/v1/sweeps/{sweep_id}/figures/{kind}.png", params=params)
        if response.status_code == 200:
            (out / f"{name}_{kind}.png").write_bytes(response.content)
    export = client.get("/v1/results/export", params={"sweep_id": sweep_id, "format": "csv"})
    if export.status_code == 200:
        (out / f"{name}_results.csv").write_bytes(export.content)
    return report


def network_seconds(results_csv: Path) -> list[float]:
    """Each succeeded trial's ``wall_time_s`` (its share of its batch's measured time),
    from the exported results."""
    if not results_csv.exists():
        return []
    with results_csv.open(newline="") as handle:
        rows = csv.DictReader(handle)
        return [
            float(r["wall_time_s"])
            for r in rows
            if r.get("status") == "succeeded" and r.get("wall_time_s") not in (None, "")
        ]


def row(name: str, sweep: dict, wall: float, report: dict, seconds: list[float]) -> str:
    counts = sweep["counts"]
    not_converged = report.get("counts", {}).get("not_converged", 0)
    inside = report.get("fraction_inside")
    clear = report.get("regime_clear_agreement_rate")
    median = statistics.median(seconds) if seconds else float("nan")
    return (
        f"| {name} | {counts.get('succeeded', 0)}/{sweep['trial_count']} | {not_converged} | "
        f"{wall:.0f} | {median:.2f} | {sum(seconds):.0f} | "
        f"{'-' if inside is None else f'{inside:.1%}'} "
        f"({report.get('inside_95', 0)}/{report.get('compared', 0)}) | "
        f"{'-' if clear is None else f'{clear:.1%}'} "
        f"({report.get('regime_clear_trials') or 0} clear) |"
    )


SAME = ("alpha", "sim_mean", "sim_sem", "theory")  # one computation, whatever its name


def combined_agreement(reports: list[dict]) -> dict:
    """The agreement over the distinct configs of several reports (Exp 1 and the regime
    figure share configs: the figure's II setting on ω = 0 and ω = 1 is Exp 1's ω
    setting).  A config is its ``params`` (α, D and every task and init parameter); one
    that several reports hold is counted once, from the report with the most seeds.
    Returns the verdict counts and ``inside``/``compared``/``fraction_inside`` over the
    configs above the stopping floor (``agree`` + ``disagree``), and the same over the
    distinct outcomes (``*_distinct``): configs with the same α, mean, SEM and theory are
    one computation under two names (regime I's λ_PT = −1 erases the pretrained
    features, so the figure's ω = 0 and ω = 1 ground truths give the same networks on
    the same seeds) and are not independent evidence."""
    configs: dict[str, dict] = {}
    for report in reports:
        for config in report["rows"]:
            key = json.dumps(config["params"], sort_keys=True)
            held = configs.get(key)
            if held is None or config["n_seeds"] > held["n_seeds"]:
                configs[key] = config
    # Ten digits: the theory of two names of one computation differs in the last bits
    # (solver round-off); the simulation's mean and SEM are the same floats.
    outcomes = {
        tuple(f"{c[k]:.10g}" if isinstance(c.get(k), float) else str(c.get(k)) for k in SAME): c
        for c in configs.values()
    }
    verdicts = Counter(config["verdict"] for config in configs.values())
    distinct = Counter(config["verdict"] for config in outcomes.values())
    compared = verdicts["agree"] + verdicts["disagree"]
    compared_distinct = distinct["agree"] + distinct["disagree"]
    return {
        "configs": len(configs),
        "shared": sum(len(r["rows"]) for r in reports) - len(configs),
        "verdicts": dict(verdicts),
        "inside": verdicts["agree"],
        "compared": compared,
        "fraction_inside": verdicts["agree"] / compared if compared else None,
        "same_outcome_as_another": len(configs) - len(outcomes),
        "inside_distinct": distinct["agree"],
        "compared_distinct": compared_distinct,
        "fraction_inside_distinct": (
            distinct["agree"] / compared_distinct if compared_distinct else None
        ),
    }


def last_finish(results_csv: Path) -> float | None:
    """Unix time of the last result in an exported CSV (None without results)."""
    from datetime import datetime

    if not results_csv.exists():
        return None
    with results_csv.open(newline="") as handle:
        stamps = [r["finished_at"] for r in csv.DictReader(handle) if r.get("finished_at")]
    return max((datetime.fromisoformat(t).timestamp() for t in stamps), default=None)


def stored_simulation_sweeps(client: TestClient) -> list[dict]:
    """The simulation sweeps stored, the newest of each name (full records).  A campaign
    continued in several runs has one sweep per run under one name; the newest holds
    every result of the earlier ones as cache hits.  What a stopped run left unfinished is
    cancelled here, not computed."""
    sweeps = client.get("/v1/sweeps", params={"limit": 100}).json()["items"]
    simulated = [s for s in sweeps if s["workload"] == "dln_finetune"]
    for sweep in simulated:
        if sweep["status"] not in FINAL:
            # A 409: the sweep has nothing left to cancel (a newer sweep's cancel ended the
            # trials they share), or its cancel was asked before.
            response = client.post(f"/v1/sweeps/{sweep['id']}/cancel")
            if response.status_code != 409:
                response.raise_for_status()
    newest = {s["name"]: s for s in reversed(simulated)}  # listed newest first
    return [client.get(f"/v1/sweeps/{s['id']}").json() for s in newest.values()]


def report_stored(url: str, out: Path) -> None:
    """Reports, figures, results and table rows of the simulation sweeps stored at ``url``
    (``stored_simulation_sweeps``), as they stand (the wall time is from submit to the
    last result); only the theory companions are computed where missing."""
    from datetime import datetime

    settings = Settings(database_url=url, limits=LimitSettings(max_steps=1_000_000))
    app = create_app(settings, start_dispatcher=False)
    drive = inline_driver(app, settings)
    with TestClient(app) as client:
        for sweep in stored_simulation_sweeps(client):
            name = sweep["name"]
            theory = theory_companion(client, sweep, drive)
            report = write_outputs(client, sweep, out, figures_of(name), theory)
            results = out / f"{name}_results.csv"
            end = last_finish(results)
            start = datetime.fromisoformat(sweep["created_at"]).timestamp()
            wall = (end - start) if end is not None else float("nan")
            print(
                row(
                    name.removesuffix("-paper-scale"), sweep, wall, report, network_seconds(results)
                ),
                flush=True,
            )


def rereport(url: str, out: Path) -> None:
    """Recompute the unreliable replica values of a finished run, then its outputs."""
    from sqlalchemy import delete, select, update

    from service.store.models import TheoryPrediction, Trial
    from service.store.session import session_scope

    settings = Settings(database_url=url, limits=LimitSettings(max_steps=1_000_000))
    app = create_app(settings, start_dispatcher=False)
    drive = inline_driver(app, settings)
    with TestClient(app) as client:
        factory = app.state.session_factory
        with session_scope(factory) as session:
            keys = list(
                session.scalars(
                    select(TheoryPrediction.theory_key).where(
                        TheoryPrediction.reliable.is_not(True)
                    )
                )
            )
            session.execute(delete(TheoryPrediction).where(TheoryPrediction.theory_key.in_(keys)))
            session.execute(
                update(Trial)
                .where(Trial.theory_key.in_(keys))
                .values(gen_error_asymptotic=None, residual_asymptotic=None)
            )
        print(f"recomputing {len(keys)} unreliable replica values", flush=True)
        drive(3600.0)
        for sweep in stored_simulation_sweeps(client):
            theory = theory_companion(client, sweep, drive)
            report = write_outputs(client, sweep, out, figures_of(sweep["name"]), theory)
            print(
                f"{sweep['name']}: theory inside 95% {report.get('inside_95')}/"
                f"{report.get('compared')}, not_converged "
                f"{report.get('counts', {}).get('not_converged', 0)}, clear-label agreement "
                f"{report.get('regime_clear_agreement_rate')}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alphas", type=float, nargs="*", default=None)
    parser.add_argument("--settings", type=int, nargs="*", default=None)
    parser.add_argument("--no-regimes", action="store_true")
    parser.add_argument("--no-exp1", action="store_true", help="run the regime figure only")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--budget-s", type=float, default=3600.0)
    parser.add_argument("--dim", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument(
        "--leg-steps", type=int, default=None, help="run trials in legs (execution.leg_steps)"
    )
    parser.add_argument("--out", type=Path, default=Path("docs/figures/paper-scale"))
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--rereport-db", default=None)
    parser.add_argument(
        "--report-db", default=None, help="write the outputs of a stored run as it stands"
    )
    parser.add_argument(
        "--ledger",
        type=Path,
        default=None,
        help="gzipped SQLite of the campaign so far: run only what it lacks, then update it",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="write the outputs of what --ledger or --database-url holds; run nothing",
    )
    parser.add_argument(
        "--combine",
        type=Path,
        nargs="+",
        default=None,
        metavar="REPORT",
        help="print the agreement over the distinct configs of these _report.json files",
    )
    args = parser.parse_args()
    if args.combine:
        combined = combined_agreement([json.loads(path.read_text()) for path in args.combine])
        print(json.dumps(combined, indent=2))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if args.ledger and (args.database_url or args.rereport_db or args.report_db):
        # Those name their own database; restoring and saving the ledger around them would
        # rewrite it for nothing.
        parser.error("--ledger is exclusive with --database-url, --rereport-db, --report-db")
    work = open_ledger(args.ledger) if args.ledger else None
    url = f"sqlite:///{work}" if work else args.database_url
    try:
        if args.rereport_db:
            rereport(args.rereport_db, args.out)
        elif args.report_db or args.report:
            if not (args.report_db or url):
                parser.error("--report needs --ledger or --database-url")
            report_stored(args.report_db or url, args.out)
        else:
            run(args, url or f"sqlite:///{tempfile.mkdtemp()}/paper_scale.db")
    finally:
        if work is not None:
            save_ledger(work, args.ledger)


def run(args: argparse.Namespace, url: str) -> None:
    """Run the chosen sweeps at ``url`` through the service; outputs into ``args.out``."""
    settings = Settings(
        database_url=url,
        limits=LimitSettings(max_steps=1_000_000),
        dispatch=DispatchSettings(poll_seconds=0.1),
    )
    runner = RayRunner(RaySettings())
    runner.start()
    import ray

    resources = ray.cluster_resources()
    parallel = resources.get("GPU", 0) if args.device != "cpu" else resources.get("CPU", 1)
    parallel = max(1.0, float(parallel or resources.get("CPU", 1)))
    shape = {
        "device": args.device,
        "dim": args.dim,
        "seeds": args.seeds,
    }
    runs = []
    if not args.no_exp1:
        exp1 = shaped(load("exp1_full.yaml"), alphas=args.alphas, settings=args.settings, **shape)
        runs.append(("exp1", exp1, FIGURES["exp1"]))
    if not args.no_regimes:
        regimes = shaped(load("regimes_full.yaml"), alphas=args.alphas, settings=None, **shape)
        runs.append(("regimes", regimes, FIGURES["regimes"]))
    if args.leg_steps:
        for _, spec, _ in runs:
            spec["execution"]["leg_steps"] = args.leg_steps
    header = (
        "| sweep | finished | not_converged configs | wall s | median s/network | "
        "Σ network s | theory inside 95% | clear-label agreement |\n" + "|---" * 8 + "|"
    )
    lines = [
        f"Paper scale: D = {args.dim or 5000}, {args.seeds or 14} seeds, device {args.device}, "
        f"α {args.alphas or 'all of the spec'}, settings {args.settings or 'all'}"
        + (f", in legs of {args.leg_steps:,} steps; " if args.leg_steps else "; ")
        + f"{parallel:g} parallel Ray workers ({resources.get('CPU', 0):g} CPUs, "
        f"{resources.get('GPU', 0):g} GPUs)",
        "",
        header,
    ]
    print("\n".join(lines), flush=True)
    app = create_app(settings, runner=runner, start_dispatcher=True)
    deadline = time.monotonic() + args.budget_s  # for all sweeps together
    try:
        with TestClient(app) as client:
            for name, spec, figures in runs:
                spec["name"] = f"{name}-paper-scale"
                if time.monotonic() >= deadline:
                    lines.append(f"| {name} | not run: the budget was spent | | | | | | |")
                    print(lines[-1], flush=True)
                    continue
                sweep, wall = run_sweep(client, spec, deadline - time.monotonic())
                theory = theory_companion(client, sweep)
                report = write_outputs(client, sweep, args.out, figures, theory)
                seconds = network_seconds(args.out / f"{sweep['name']}_results.csv")
                line = row(name, sweep, wall, report, seconds)
                lines.append(line)
                print(line, flush=True)
            lines += ["", PROJECTION_HEADING, ""]
            total = 0.0
            for full in ("exp1_full.yaml", "regimes_full.yaml"):
                # The full spec as a run would submit it (α by its decimal, this device).
                spec = shaped(
                    load(full), alphas=None, settings=None, device=args.device, dim=None, seeds=None
                )
                plan = client.post("/v1/sweeps/plan", json=spec).json()
                seconds = plan["estimated_cost_s"]
                total += seconds
                basis = plan["estimate_basis"]
                lines.append(
                    f"- {full}: {plan['new_count']} new trials, {seconds:,.0f} one-worker s "
                    f"({basis['source']}, on {basis['calibrated_on']} results; "
                    f"{basis.get('trials_with_history', 0)} trials' settings had results) "
                    f"→ {seconds / parallel / 3600:.1f} h on {parallel:g} workers"
                )
            lines.append(f"- together: {total / parallel / 3600:.1f} h on {parallel:g} workers")
    finally:
        runner.shutdown()
    print("\n".join(lines[-4:]), flush=True)
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
