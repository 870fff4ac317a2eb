"""Pure pieces of the client: the progress printer's lines and the typed columns behind
``to_pandas`` / ``to_arrow`` (missing values, categories, parameter names)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa

from api_schemas.wire import ResultRead, SweepCounts, SweepRead
from finetune_sweeps import PlainProgress, ResultSet


def _sweep(done: int, status: str, total: int = 10) -> SweepRead:
    return SweepRead(
        id="s",
        name="n",
        workload="dln_finetune",
        submitter="me",
        priority=0,
        tags=[],
        status=status,
        created_at=datetime.now(UTC),
        trial_count=total,
        cached_count=0,
        counts=SweepCounts(succeeded=done, running=total - done),
        progress=done / total,
        throughput_per_s=2.0 if done else None,
        eta_s=(total - done) / 2.0 if done else None,
    )


def test_plain_progress_prints_one_final_line_off_a_terminal() -> None:
    stream = io.StringIO()
    printer = PlainProgress(stream, every_s=60)
    for done in range(10):
        printer(_sweep(done, "running"))
    printer(_sweep(10, "succeeded"))
    printer(_sweep(10, "succeeded"))  # a repeated final state is not a second line
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("100.0% 10/10") and "succeeded" in lines[0]

    periodic = io.StringIO()
    printer = PlainProgress(periodic, every_s=0)
    for done in (2, 2, 5):
        printer(_sweep(done, "running"))
    printer(_sweep(10, "succeeded"))
    assert len(periodic.getvalue().splitlines()) == 3  # 2/10, 5/10, then the final line
    assert "eta 0:02" in periodic.getvalue().splitlines()[1]


def _result(trial_id: int, **fields) -> ResultRead:
    base = {
        "trial_id": trial_id,
        "key": f"k{trial_id}",
        "workload": "dln_finetune",
        "status": "succeeded",
        "params": {"lambda_pt": -0.5, "D": 40, "pt_mode": "oracle", "alpha": 1},
        "seed": trial_id,
        "gen_error_sim": 0.5,
        "regime_theory": "IV",
        "metrics": {"final_train_loss": 1e-5, "steps": 100, "curve": [1, 2]},
        "finished_at": datetime.now(UTC),
    }
    return ResultRead.model_validate(base | fields)


def test_columns_keep_their_types_through_missing_values() -> None:
    results = ResultSet(
        (
            _result(1),
            _result(2, seed=None, gen_error_sim=None, regime_theory=None, diverged=True),
        )
    )
    frame = results.to_pandas()
    assert frame["seed"].dtype == "Int64" and frame["seed"].isna().tolist() == [False, True]
    assert frame["gen_error_sim"].dtype == "float64" and frame["gen_error_sim"].isna()[1]
    assert frame["alpha"].dtype == "float64"  # a typed parameter, even when sent as 1
    assert frame["D"].dtype == "int64" and frame["pt_mode"].tolist() == ["oracle", "oracle"]
    assert isinstance(frame["regime_theory"].dtype, pd.CategoricalDtype)
    assert frame["regime_theory"].isna().tolist() == [False, True]
    assert frame["diverged"].dtype == "boolean"
    assert frame["metric_final_train_loss"].dtype == "float64"
    assert frame["metric_steps"].dtype == "int64" and "metric_curve" not in frame

    table = results.to_arrow()
    assert table.column("seed").null_count == 1
    assert table.schema.field("regime_theory").type == pa.dictionary(pa.int32(), pa.string())
    assert table.column("regime_theory").to_pylist() == ["IV", None]
    assert pa.types.is_timestamp(table.schema.field("finished_at").type)
    assert results[:1].to_pandas().shape[0] == 1 and len(ResultSet(()).to_pandas()) == 0


def test_the_progress_line_counts_executing_and_queued_trials_apart() -> None:
    """``run`` is what a worker computes now; claimed trials waiting are ``queued``."""
    from api_schemas.wire import SweepRead
    from finetune_sweeps.progress import progress_text

    base = {
        "id": "s",
        "name": "n",
        "workload": "dln_finetune",
        "submitter": "me",
        "priority": 0,
        "tags": [],
        "status": "running",
        "created_at": "2026-01-01T00:00:00Z",
        "trial_count": 70,
        "cached_count": 0,
        "progress": 0.2,
        "eta_s": 65.0,
        "counts": {"pending": 0, "running": 56, "succeeded": 14},
    }
    line = progress_text(SweepRead.model_validate(base | {"executing": 7, "queued_in_batch": 49}))
    assert "ok 14 run 7 queued 49 wait 0 fail 0" in line and "eta 1:05" in line
    assert "ok 14 run 56 wait 0" in progress_text(SweepRead.model_validate(base))
