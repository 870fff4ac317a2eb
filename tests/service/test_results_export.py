"""GET /v1/results/export: CSV and Parquet downloads that match the query, streamed in
keyset chunks, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from service.results_export import COLUMNS
from service.store.models import Trial
from service.store.results import EXPORT_CHUNK_ROWS
from tests.service.factories import make_sweep, make_trial, trial_values

QUERY = "regime_theory=II,IV&lambda_pt_lt=0.5"


@pytest.fixture
def trials(session_factory: sessionmaker[Session]) -> list[int]:
    with session_factory() as session:
        made = [
            make_trial(
                session,
                c_pt=10.0 ** -(i % 5),
                lambda_pt=-1 + 0.1 * i,
                seed=i % 3,
                regime_theory=("I", "II", "III", "IV")[i % 4],
                gen_error_sim=None if i == 3 else 0.01 * i,
                diverged=i == 3,
                metrics={"loss": [1.0, 0.1 * i]},
            )
            for i in range(20)
        ]
        make_trial(session, status="failed", regime_theory="II", lambda_pt=-1.0)
        sweep = make_sweep(session, made[:5])
        session.commit()
        return [t.id for t in made] + [sweep.id]


def _listed(client, query: str) -> list[dict]:
    page = client.get(f"/v1/results?{query}&limit=1000").json()
    return page["items"]


def test_csv_export_matches_the_query(app_client, trials) -> None:
    response = app_client.get(f"/v1/results/export?format=csv&{QUERY}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="results.csv"' in response.headers["content-disposition"]
    reader = csv.DictReader(io.StringIO(response.text))
    assert tuple(reader.fieldnames) == COLUMNS
    rows = list(reader)
    listed = _listed(app_client, QUERY)
    assert [int(r["trial_id"]) for r in rows] == [i["trial_id"] for i in listed]
    assert len(rows) > 3
    for row, item in zip(rows, listed, strict=True):
        assert row["regime_theory"] == item["regime_theory"] in ("II", "IV")
        assert float(row["lambda_pt"]) == item["params"]["lambda_pt"] < 0.5
        assert row["status"] == "succeeded"
        sim = item["gen_error_sim"]
        assert (row["gen_error_sim"] == "") if sim is None else float(row["gen_error_sim"]) == sim
        assert json.loads(row["metrics"]) == item["metrics"]
        assert json.loads(row["params"]) == item["params"]
        assert row["diverged"] in ("true", "false") and row["finished_at"]


def test_parquet_export_reads_back(app_client, trials) -> None:
    sweep_id = trials[-1]
    response = app_client.get(f"/v1/results/export?format=parquet&sweep_id={sweep_id}")
    assert response.status_code == 200, response.text
    assert f'filename="results-{sweep_id}.parquet"' in response.headers["content-disposition"]
    table = pq.read_table(io.BytesIO(response.content))
    assert table.column_names == list(COLUMNS)
    assert table.num_rows == 5
    assert table.column("trial_id").to_pylist() == trials[:5]
    assert str(table.schema.field("finished_at").type) == "timestamp[us, tz=UTC]"

    everything = pq.read_table(
        io.BytesIO(app_client.get(f"/v1/results/export?format=parquet&{QUERY}").content)
    )
    assert everything.num_rows == len(_listed(app_client, QUERY))
    empty = app_client.get("/v1/results/export?format=parquet&c_pt_gt=100")
    assert pq.read_table(io.BytesIO(empty.content)).num_rows == 0


def test_export_errors(app_client, trials) -> None:
    assert app_client.get("/v1/results/export?format=xlsx").status_code == 422
    assert app_client.get("/v1/results/export?lamda_pt_lt=1").status_code == 422
    assert app_client.get("/v1/results/export?cursor=abc").status_code == 422
    response = app_client.get("/v1/results/export?sweep_id=missing")
    assert response.status_code == 404 and response.json()["error"] == "SweepNotFound"


def test_export_streams_more_rows_than_one_chunk(app_client, session_factory) -> None:
    total = 2 * EXPORT_CHUNK_ROWS + 123
    values = [
        trial_values(seed=i, lambda_pt=(i % 200) / 100 - 1, regime_theory="IV")
        for i in range(total)
    ]
    with session_factory() as session:
        session.execute(insert(Trial), values)
        session.commit()

    with app_client.stream("GET", "/v1/results/export?format=csv&sort=-seed") as response:
        assert response.status_code == 200
        pieces = list(response.iter_bytes())
    rows = list(csv.DictReader(io.StringIO(b"".join(pieces).decode())))
    assert len(rows) == total
    assert [int(r["seed"]) for r in rows] == list(range(total - 1, -1, -1))
    assert len({r["trial_id"] for r in rows}) == total

    response = app_client.get("/v1/results/export?format=parquet&lambda_pt_lt=0")
    parquet = pq.ParquetFile(io.BytesIO(response.content))
    want = sum(1 for v in values if v["lambda_pt"] < 0)
    assert parquet.metadata.num_rows == want
    # One row group per keyset chunk: the table was never read in one go.
    assert parquet.metadata.num_row_groups == -(-want // EXPORT_CHUNK_ROWS) > 1
