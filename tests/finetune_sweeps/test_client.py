"""``finetune_sweeps.Client`` against the real app over real HTTP (uvicorn, SQLite)."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from api_schemas.report import AgreementReport
from api_schemas.spec import SweepSpec
from api_schemas.wire import SweepPlan, SweepRead
from finetune_sweeps import Client, Conflict, NotFound, ValidationFailed
from tests.service.factories import small_finetune_spec

SPEC = small_finetune_spec(name="client", axes={"lambda_pt": [-0.5, 0.0, 0.5]})


@pytest.fixture
def client(live_url):
    with Client(live_url) as client:
        yield client


@pytest.fixture
def finished(client) -> SweepRead:
    seen: list[SweepRead] = []
    sweep = client.submit(SPEC, wait=True, progress=seen.append, poll_s=0.05)
    assert seen and seen[-1] == sweep
    assert sweep.status == "succeeded" and sweep.counts.succeeded == 6
    return sweep


def test_plan_submit_sweep_sweeps_trials(client, tmp_path: Path) -> None:
    plan = client.plan(SPEC)
    assert isinstance(plan, SweepPlan) and plan.trial_count == 6 and plan.new_count == 6

    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(SPEC))
    sweep = client.submit(spec_file, idempotency_key="same")
    assert isinstance(sweep, SweepRead) and sweep.trial_count == 6
    # The same key with the same spec: the same sweep; a SweepSpec model works too.
    assert client.submit(SweepSpec.model_validate(SPEC), idempotency_key="same").id == sweep.id
    with pytest.raises(Conflict) as conflict:
        client.submit({**SPEC, "seeds": 3}, idempotency_key="same")
    assert conflict.value.status_code == 409 and conflict.value.error == "IdempotencyConflict"

    done = client.wait(sweep.id, timeout=60, poll_s=0.05)
    assert client.sweep(sweep.id).status == done.status == "succeeded"
    page = client.sweeps(limit=10)
    assert [s.id for s in page.items] == [sweep.id] and page.total == 1
    assert client.sweeps(status="failed").items == []
    trials = client.trials(sweep.id)
    assert len(trials) == 6 and {t.status for t in trials} == {"succeeded"}
    assert client.health().status == "ok"


def test_results_iterate_every_page(client, finished) -> None:
    pages = []
    cursor = None
    while True:
        page = client.result_page(sweep_id=finished.id, limit=2, cursor=cursor)
        pages.append(page)
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(pages) >= 3  # 6 results, two per page

    results = client.results(sweep_id=finished.id, page_size=2)
    assert [r.trial_id for r in results] == [r.trial_id for p in pages for r in p.items]
    assert len({r.trial_id for r in results}) == 6
    by_sort = client.results(sweep_id=finished.id, page_size=4, sort="-lambda_pt")
    lambdas = [r.params["lambda_pt"] for r in by_sort]
    assert lambdas == sorted(lambdas, reverse=True) and len(lambdas) == 6
    negative = client.results(sweep_id=finished.id, lambda_pt_lt=0, page_size=1)
    assert len(negative) == 2 and all(r.params["lambda_pt"] < 0 for r in negative)
    regimes = {r.regime_theory for r in results}
    some = sorted(regimes)[0]
    only = client.results(sweep_id=finished.id, regime_theory=[some])
    assert {r.regime_theory for r in only} == {some}


def test_dataframe_and_arrow_dtypes(client, finished) -> None:
    results = client.results(sweep_id=finished.id, page_size=3)
    frame = results.to_pandas()
    assert len(frame) == 6
    for column in ("gen_error_sim", "gen_error_theory", "lambda_pt", "c_pt", "alpha"):
        assert frame[column].dtype == "float64", column
    assert frame["trial_id"].dtype == "int64" and frame["D"].dtype == "int64"
    assert frame["seed"].dtype == "int64"
    for column in ("regime_theory", "regime_empirical", "status"):
        assert isinstance(frame[column].dtype, __import__("pandas").CategoricalDtype)
    assert list(frame["regime_theory"].cat.categories) == ["I", "II", "III", "IV"]
    assert str(frame["finished_at"].dtype).startswith("datetime64")
    assert frame.groupby("regime_theory", observed=True)["gen_error_sim"].mean().notna().all()

    table = results.to_arrow()
    assert table.num_rows == 6
    assert table.schema.field("gen_error_sim").type == pa.float64()
    assert pa.types.is_dictionary(table.schema.field("regime_theory").type)
    assert table.schema.field("D").type == pa.int64()


def test_summary_export_figure_report_cancel(client, finished, tmp_path: Path) -> None:
    summary = client.summary("lambda_pt", sweep_id=finished.id)
    assert summary.group_by == ["lambda_pt"] and len(summary.rows) == 3
    assert all(row.count == 2 for row in summary.rows)

    csv_path = client.export(tmp_path / "r.csv", sweep_id=finished.id)
    assert len(csv_path.read_text().strip().splitlines()) == 1 + 6
    parquet = client.export(tmp_path / "r.parquet", format="parquet", sweep_id=finished.id)
    assert pq.read_table(parquet).num_rows == 6
    assert not list(tmp_path.glob("*.part"))

    png = client.figure(finished.id, "scatter", path=tmp_path / "fig" / "s.png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "fig" / "s.png").read_bytes() == png
    svg = client.figure(finished.id, "scatter", format="svg", yscale="linear")
    assert io.BytesIO(svg).read().lstrip().startswith(b"<?xml")

    report = client.report(finished.id, worst=2)
    assert isinstance(report, AgreementReport) and report.sweep_id == finished.id

    big = client.submit({**SPEC, "name": "big", "seeds": 60})  # 180 trials: still pending
    cancelled = client.cancel(big.id)
    assert cancelled.id == big.id and cancelled.counts.cancelled > 0


def test_typed_errors_carry_name_status_and_field_path(client) -> None:
    with pytest.raises(ValidationFailed) as bad:
        client.submit({**SPEC, "axes": {"lambda_pt": [3.0]}})
    assert bad.value.status_code == 422
    assert bad.value.field_path == "body.axes.lambda_pt"
    assert "body.axes.lambda_pt" in str(bad.value)

    with pytest.raises(ValidationFailed) as typo:
        client.results(lamda_pt_lt=0)
    assert typo.value.status_code == 422 and "lamda_pt_lt" in str(typo.value)

    with pytest.raises(NotFound) as missing:
        client.sweep("nope")
    assert missing.value.error == "SweepNotFound" and missing.value.status_code == 404
    assert missing.value.field_path is None
