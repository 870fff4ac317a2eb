"""Pure rendering for the CLI: schema models in, Rich renderables or text out.

Nothing here talks to a server or reads the terminal; commands pass in the models and
the width available, and print what comes back.  Tables are borderless, right-aligned
columns separated by two spaces: one header line, then one line per row, so they read
well in a terminal and still split cleanly with ``awk`` or ``cut``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from api_schemas.report import AgreementReport, param_pairs, varying_params
from api_schemas.result_columns import RESULT_COLUMNS as DEFINED_RESULT_COLUMNS
from api_schemas.wire import ResultRead, SkippedSettingRead, SweepPlan, SweepRead
from finetune_sweeps.progress import format_duration, progress_text

GAP = 2


@dataclass(frozen=True)
class Column:
    """A table column: the field it shows, its header, its format, and how readily it is
    dropped when the terminal is too narrow (lower ``keep`` goes first)."""

    field: str
    title: str
    fmt: str = "{}"
    keep: int = 9
    justify: str = "right"  # numbers right, words left


# How readily a result column is dropped on a narrow terminal (titles and formats come
# from the one column definition, api_schemas.result_columns).
_RESULT_KEEP = {
    "gen_error_sim": 9,
    "gen_error_theory": 5,
    "gen_error_asymptotic": 4,
    "regime_theory": 8,
    "regime_empirical": 2,
}
RESULT_COLUMNS: tuple[Column, ...] = (
    Column("trial_id", "id"),
    Column("c_pt", "c_pt", "{:.3g}", 6),
    Column("lambda_pt", "λ_pt", "{:+.3f}", 7),
    Column("gamma_ft", "γ_ft", "{:.3g}", 7),
    Column("alpha", "α", "{:.3f}", 8),
    Column("seed", "seed", "{}", 3),
    *(
        Column(c.name, c.title, c.fmt, _RESULT_KEEP.get(c.name, 3))
        for c in DEFINED_RESULT_COLUMNS
        if c.title is not None
    ),
)
SWEEP_COLUMNS: tuple[Column, ...] = (
    Column("id", "id", justify="left"),
    Column("status", "status", justify="left"),
    Column("progress", "done", "{:.1%}", 8),
    Column("trial_count", "trials", "{}", 7),
    Column("workload", "workload", "{}", 5, "left"),
    Column("name", "name", "{}", 6, "left"),
    Column("created_at", "created", "{:%Y-%m-%d %H:%M}", 3, "left"),
)


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def fit_columns(columns: Sequence[Column], widths: Sequence[int], available: int) -> list[int]:
    """Indexes of the columns to show: all of them if they fit in ``available``
    characters, else drop the lowest ``keep`` first until they do (never the last one)."""
    shown = list(range(len(columns)))
    while len(shown) > 1:
        total = sum(widths[i] for i in shown) + GAP * (len(shown) - 1)
        if total <= available:
            break
        shown.remove(min(shown, key=lambda i: (columns[i].keep, -i)))
    return shown


def table(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], available: int | None
) -> tuple[Table, int]:
    """A borderless table of the columns that fit; also returns how many were hidden."""
    widths = [max([len(c.title), *(len(row[i]) for row in rows)]) for i, c in enumerate(columns)]
    shown = fit_columns(columns, widths, available) if available else list(range(len(columns)))
    grid = Table(box=None, show_edge=False, pad_edge=False, padding=(0, GAP // 2), expand=False)
    for i in shown:
        grid.add_column(
            columns[i].title, justify=columns[i].justify, no_wrap=True, header_style="bold"
        )
    for row in rows:
        grid.add_row(*(row[i] for i in shown))
    return grid, len(columns) - len(shown)


def result_rows(results: Sequence[ResultRead]) -> list[list[str]]:
    """Cells of the results table; parameters come from ``params``."""
    rows = []
    for result in results:
        values = result.model_dump()
        rows.append(
            [_cell(values.get(c.field, result.params.get(c.field)), c.fmt) for c in RESULT_COLUMNS]
        )
    return rows


def results_table(results: Sequence[ResultRead], available: int | None) -> tuple[Table, int]:
    return table(RESULT_COLUMNS, result_rows(results), available)


def sweeps_table(sweeps: Sequence[SweepRead], available: int | None) -> tuple[Table, int]:
    rows = [[_cell(getattr(s, c.field), c.fmt) for c in SWEEP_COLUMNS] for s in sweeps]
    return table(SWEEP_COLUMNS, rows, available)


def sweep_detail(sweep: SweepRead) -> str:
    """One sweep as aligned ``key  value`` lines (no progress bar: ``watch`` draws that)."""
    counts = sweep.counts
    lines = [
        ("sweep", sweep.id),
        ("name", sweep.name),
        ("workload", sweep.workload),
        ("status", sweep.status),
        ("submitter", sweep.submitter),
        ("trials", f"{sweep.trial_count} ({sweep.cached_count} cached at submission)"),
        (
            "counts",
            f"ok {counts.succeeded} · running {counts.running} · pending {counts.pending} · "
            f"failed {counts.failed} · cancelled {counts.cancelled}",
        ),
        ("done", f"{sweep.progress:.1%}"),
        ("rate", "-" if not sweep.throughput_per_s else f"{sweep.throughput_per_s:.2f} trials/s"),
        ("eta", format_duration(sweep.eta_s)),
        ("created", f"{sweep.created_at:%Y-%m-%d %H:%M:%S}"),
        (
            "finished",
            "-" if sweep.finished_at is None else f"{sweep.finished_at:%Y-%m-%d %H:%M:%S}",
        ),
    ]
    if sweep.tags:
        lines.append(("tags", ", ".join(sweep.tags)))
    for trial in sweep.running[:5]:
        info = trial.progress or {}
        step = f"step {info['step']}/{info.get('steps', '?')}" if "step" in info else ""
        lines.append(("running", f"trial {trial.trial_id} {info.get('phase', '')} {step}".strip()))
    lines += [("skipped", skipped_text(item)) for item in sweep.skipped]
    width = max(len(key) for key, _ in lines)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in lines)


def skipped_text(item: SkippedSettingRead) -> str:
    """A skipped setting on one line: where, the values that differ, and why."""
    where = ".".join(str(part) for part in item.loc if part != "body")
    return f"{where}: {_setting(item.params)}: {item.reason} ({item.trials} trials)"


def _setting(params: dict) -> str:
    return " ".join(f"{key}={value}" for key, value in params.items())


def submitted_line(sweep: SweepRead) -> str:
    line = f"sweep {sweep.id} ({sweep.name}): {sweep.trial_count} trials, "
    line += f"{sweep.cached_count} cached"
    if sweep.skipped:
        count = len(sweep.skipped)
        line += f"; {count} setting{'s' if count != 1 else ''} skipped (sweeps status {sweep.id})"
    return line


def final_line(sweep: SweepRead, elapsed_s: float | None = None) -> str:
    """The line a finished ``submit --wait`` / ``watch`` leaves behind."""
    return progress_text(sweep, elapsed_s)


def plan_text(plan: SweepPlan) -> str:
    lines = [
        f"workload        {plan.workload}",
        f"trials          {plan.trial_count} ({plan.new_count} new, {plan.cached_count} cached)",
        f"Ray batches     {plan.batch_count}",
        f"estimated cost  {plan.estimated_cost_s:.3g} s of one core "
        f"({format_duration(plan.estimated_cost_s)})",
    ]
    basis = plan.estimate_basis
    if basis is not None:
        if basis.source == "calibrated":
            lines.append(
                f"estimate basis  calibrated on {basis.calibrated_on} stored results "
                f"({basis.trials_with_history} of {plan.new_count} new trials with a "
                "stored setting)"
            )
        else:
            lines.append("estimate basis  default constants (no stored results to calibrate on)")
    samples = plan.sample_params
    if samples:
        fixed = {k: v for k, v in samples[0].items() if all(s.get(k) == v for s in samples)}
        lines.append("fixed           " + " ".join(f"{k}={v}" for k, v in fixed.items()))
        lines.append(f"first {len(samples)} trials:")
        for params in samples:
            varied = {k: v for k, v in params.items() if k not in fixed}
            lines.append("  " + (" ".join(f"{k}={v}" for k, v in varied.items()) or "-"))
    if plan.skipped:
        lines.append(f"skipped {len(plan.skipped)} settings (on_invalid: skip):")
        lines += [f"  {skipped_text(item)}" for item in plan.skipped]
    return "\n".join(lines)


def _clear_cell(rate: float | None, trials: int | None) -> str:
    if trials is None:
        return "-"
    return f"{_num(rate, '{:.0%}')}/{trials}"


def _num(value: float | None, fmt: str = "{:.4g}") -> str:
    return "-" if value is None else fmt.format(value)


def _clear_lines(report: AgreementReport) -> list[str]:
    """The regimes-v2 line: agreement among trials clear of the thresholds, boundary."""
    if report.regime_clear_trials is None:
        return []
    return [
        f"  clear of every threshold by more than the seeds' 95% half-widths (converged): "
        f"{_num(report.regime_clear_agreement_rate, '{:.1%}')} of {report.regime_clear_trials}"
        f" trials agree, {report.regime_clear_boundary} boundary, {report.regime_clear_wrong}"
        f" wrong; labelled boundary overall: {report.regime_boundary_trials}; in unconverged "
        f"configs: {report.regime_unconverged_trials}"
    ]


# The knobs of the paper's figures, named in every worst-config line.
_FIGURE_KEYS = ("omega", "rho_ft", "c_pt", "lambda_pt", "gamma_ft")


def _config_keys(report: AgreementReport) -> list[str]:
    """The figure's knobs, then every other parameter that differs between the report's
    configs (``D`` in a sweep over D): without it two worst-config lines can read alike."""
    varying = [key for key in varying_params(report.rows) if key not in _FIGURE_KEYS]
    return [*_FIGURE_KEYS, *varying]


def report_text(report: AgreementReport) -> str:
    """The agreement report as text: totals, per regime, worst configs, notes."""
    lines = [
        f"sweep {report.sweep_id} ({report.sweep_name}): {report.configs} configs",
        f"theory inside the simulation's 95% interval: {report.inside_95}/"
        f"{report.compared} compared configs = {_num(report.fraction_inside, '{:.1%}')} "
        f"(target {report.target_fraction:.0%}: "
        f"{'met' if report.meets_target else 'NOT met'}); over every config with an SEM: "
        f"{_num(report.fraction_inside_all, '{:.1%}')}",
        f"regime agreement (classifier {report.classifier}; measured label = theory label, "
        f"per trial): {_num(report.regime_agreement_rate, '{:.1%}')} of "
        f"{report.regime_labelled_trials}",
        *_clear_lines(report),
        "verdicts: " + ", ".join(f"{k} {v}" for k, v in report.counts.items()),
        "",
        "regime  configs  compared  inside  fraction  stop-rule  unconverged  label-agree"
        "  clear-agree  boundary",
    ]
    for row in report.per_regime:
        lines.append(
            f"{row.regime:>6}  {row.configs:>7}  {row.compared:>8}  "
            f"{row.inside_95:>6}  {_num(row.fraction_inside, '{:>8.1%}'):>8}  "
            f"{row.stopping_rule:>9}  {row.not_converged:>11}  "
            f"{_num(row.regime_agreement_rate, '{:.1%}'):>11}  "
            f"{_clear_cell(row.clear_agreement_rate, row.clear_trials):>11}  "
            f"{'-' if row.boundary_trials is None else row.boundary_trials:>8}"
        )
    if report.worst:
        lines += ["", "worst configs (largest |z|):"]
        shown = _config_keys(report)
        for row in report.worst:
            where = param_pairs(row.params, shown)
            lines.append(
                f"  alpha={row.alpha:<5g} {where}: sim {_num(row.sim_mean)} ± "
                f"{_num(row.sim_sem, '{:.2g}')}, theory {_num(row.theory)}, "
                f"z {_num(row.z, '{:+.1f}')} [{row.verdict}, regime {row.regime_theory}]"
            )
    if report.notes:
        lines += ["", "notes:"] + [f"  - {note}" for note in report.notes]
    return "\n".join(lines)
