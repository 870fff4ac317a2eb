"""GET /v1/results: filters, sorting, keyset pagination and errors, on SQLite and
PostgreSQL, through the real app."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api_schemas.wire import REGIMES
from tests.service.factories import make_sweep, make_trial, trial_values

C_PT = (1e-4, 1e-2, 1.0)
LAMBDA_PT = (-0.8, 0.0, 0.6)
SEEDS = (0, 1, 2)


@pytest.fixture
def dataset(session_factory: sessionmaker[Session]) -> list[dict[str, Any]]:
    """27 succeeded dln trials on a (c_pt, lambda_pt, seed) grid — one of them diverged —
    plus a pending, a failed and a succeeded relu_mlp trial.  Returns the column values
    with their ids."""
    rng = np.random.default_rng(7)
    specs: list[dict[str, Any]] = []
    for ci, c_pt in enumerate(C_PT):
        for li, lambda_pt in enumerate(LAMBDA_PT):
            for seed in SEEDS:
                diverged = (ci, li, seed) == (2, 2, 2)
                specs.append(
                    dict(
                        c_pt=c_pt,
                        lambda_pt=lambda_pt,
                        seed=seed,
                        gamma_ft=0.5 + ci,
                        alpha=0.25 * (1 + li),
                        D=100 if li == 0 else 200,
                        regime_theory=REGIMES[(ci + li) % 4],
                        regime_empirical=REGIMES[(ci + li + seed) % 4],
                        gen_error_sim=None if diverged else float(rng.uniform(0.1, 1.0)),
                        diverged=diverged,
                        gen_error_theory=0.1 * (1 + ci) + 0.01 * li + 0.001 * seed,
                        gen_error_asymptotic=0.1 * (1 + ci) + 0.01 * li,
                        l_order_theory=float(rng.uniform(0, 1)),
                        pd_theory=float(rng.uniform(0, 1)),
                    )
                )
    nothing = dict(
        gen_error_sim=None,
        gen_error_theory=None,
        gen_error_asymptotic=None,
        regime_theory=None,
        regime_empirical=None,
        finished_at=None,
    )
    specs.append(dict(status="pending", **nothing))
    specs.append(dict(status="failed", error="boom", **nothing))
    specs.append(dict(workload="relu_mlp", c_pt=None, lambda_pt=None, regime_theory="II"))
    rows = []
    with session_factory() as session:
        for spec in specs:
            values = trial_values(**spec)
            trial = make_trial(session, **values)
            rows.append(values | {"id": trial.id})
        session.commit()
    return rows


def ids(client: TestClient, query: str) -> list[int]:
    response = client.get(f"/v1/results?{query}")
    assert response.status_code == 200, response.text
    return [item["trial_id"] for item in response.json()["items"]]


def expected(rows: list[dict[str, Any]], predicate, status: str = "succeeded") -> list[int]:
    return [r["id"] for r in rows if (status is None or r["status"] == status) and predicate(r)]


def walk(client: TestClient, query: str) -> list[int]:
    """Every id of a paginated query, following next_cursor."""
    seen: list[int] = []
    cursor = None
    for _ in range(100):
        url = f"/v1/results?{query}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [item["trial_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("pagination did not end")


def test_default_is_succeeded_in_id_order_with_full_records(app_client, dataset) -> None:
    page = app_client.get("/v1/results").json()
    assert [i["trial_id"] for i in page["items"]] == expected(dataset, lambda r: True)
    assert page["next_cursor"] is None
    first, row = page["items"][0], dataset[0]
    assert first["params"]["c_pt"] == row["c_pt"] and first["seed"] == row["seed"]
    for name in (
        "gen_error_sim",
        "gen_error_theory",
        "gen_error_asymptotic",
        "residual_theory",
        "residual_asymptotic",
        "l_order_theory",
        "pd_theory",
        "regime_theory",
        "regime_empirical",
        "diverged",
        "stop_reason",
        "metrics",
        "envelope",
    ):
        assert first[name] == row[name], name
    assert first["finished_at"] is not None and first["status"] == "succeeded"

    assert ids(app_client, "status=any") == [r["id"] for r in dataset]
    assert ids(app_client, "status=pending,failed") == expected(
        dataset, lambda r: r["status"] in ("pending", "failed"), status=None
    )
    assert ids(app_client, "workload=relu_mlp") == [dataset[-1]["id"]]
    assert ids(app_client, "workload=dln&workload=relu_mlp") == expected(dataset, lambda r: True)


def test_regime_filters(app_client, dataset) -> None:
    for regime in REGIMES:
        assert ids(app_client, f"regime_theory={regime}") == expected(
            dataset, lambda r, g=regime: r["regime_theory"] == g
        )
    both = expected(dataset, lambda r: r["regime_theory"] in ("II", "IV"))
    assert ids(app_client, "regime_theory=II,IV") == both
    assert ids(app_client, "regime_theory=II&regime_theory=IV") == both
    assert ids(app_client, "regime_theory=III&regime_empirical=I,IV") == expected(
        dataset, lambda r: r["regime_theory"] == "III" and r["regime_empirical"] in ("I", "IV")
    )


RANGE_CASES = [
    ("lambda_pt_lt=-0.5&c_pt_ge=1e-3", lambda r: r["lambda_pt"] < -0.5 and r["c_pt"] >= 1e-3),
    ("c_pt_gt=1e-4&c_pt_le=0.01", lambda r: 1e-4 < r["c_pt"] <= 0.01),
    ("lambda_pt_eq=0", lambda r: r["lambda_pt"] == 0.0),
    ("lambda_pt_ge=0&gamma_ft_lt=2", lambda r: r["lambda_pt"] >= 0 and r["gamma_ft"] < 2),
    ("D_eq=100&seed_le=1", lambda r: r["dim"] == 100 and r["seed"] <= 1),
    ("alpha_gt=0.3&seed_ge=2", lambda r: r["alpha"] > 0.3 and r["seed"] >= 2),
    ("gen_error_sim_lt=0.5", lambda r: r["gen_error_sim"] is not None and r["gen_error_sim"] < 0.5),
    (
        "gen_error_theory_ge=0.2&pd_theory_lt=0.5&l_order_theory_gt=0.1",
        lambda r: (
            r["gen_error_theory"] >= 0.2 and r["pd_theory"] < 0.5 and r["l_order_theory"] > 0.1
        ),
    ),
    (
        "gen_error_asymptotic_le=0.2&regime_theory=II",
        lambda r: r["gen_error_asymptotic"] <= 0.2 and r["regime_theory"] == "II",
    ),
    ("c_pt_ge=2", lambda r: False),
]


def test_range_filters(app_client, dataset) -> None:
    for query, predicate in RANGE_CASES:
        dln = [r for r in dataset if r["workload"] == "dln"]
        want = expected(dln, predicate)
        assert ids(app_client, query) == want, query
    # NULL params (the relu_mlp trial has no c_pt) never match a range.
    assert dataset[-1]["id"] not in ids(app_client, "c_pt_ge=0&limit=1000")


def test_sweep_filter_and_unknown_sweep(app_client, dataset, session_factory) -> None:
    members = [r["id"] for r in dataset[3:9]] + [dataset[-3]["id"]]  # one of them pending
    with session_factory() as session:
        sweep = make_sweep(session, members)
        make_sweep(session, [r["id"] for r in dataset[:3]])
        session.commit()
    assert ids(app_client, f"sweep_id={sweep.id}") == [r["id"] for r in dataset[3:9]]
    assert ids(app_client, f"sweep_id={sweep.id}&status=any&regime_theory=I") == [
        r["id"] for r in dataset[3:9] if r["regime_theory"] == "I"
    ]
    response = app_client.get("/v1/results?sweep_id=nope")
    assert response.status_code == 404
    assert response.json()["error"] == "SweepNotFound"


def _sort_key(column: str, descending: bool):
    def key(row: dict[str, Any]):
        value = row[column]
        # NULL counts as larger than any value; ties by id in the sort's direction.
        if descending:
            return (value is not None, -(value or 0), -row["id"])
        return (value is None, value or 0, row["id"])

    return key


@pytest.mark.parametrize(
    ("sort", "column", "descending", "status"),
    [
        ("-id", "id", True, "succeeded"),
        ("c_pt", "c_pt", False, "succeeded"),
        ("-lambda_pt", "lambda_pt", True, "succeeded"),
        ("-gen_error_sim", "gen_error_sim", True, "any"),
        ("gen_error_sim", "gen_error_sim", False, "any"),
    ],
)
def test_sort_and_keyset_pagination_visit_every_row_once(
    app_client, dataset, sort, column, descending, status
) -> None:
    rows = [r for r in dataset if status == "any" or r["status"] == "succeeded"]
    want = [r["id"] for r in sorted(rows, key=_sort_key(column, descending))]
    assert ids(app_client, f"sort={sort}&status={status}&limit=1000") == want
    for limit in (1, 4, 7):
        walked = walk(app_client, f"sort={sort}&status={status}&limit={limit}")
        assert walked == want, limit


def test_keyset_pagination_with_filters(app_client, dataset) -> None:
    query = "regime_theory=II,III&lambda_pt_ge=-0.5&limit=2&sort=-c_pt"
    walked = walk(app_client, query)
    rows = [
        r
        for r in dataset[:-1]
        if r["regime_theory"] in ("II", "III")
        and r["lambda_pt"] >= -0.5
        and r["status"] == "succeeded"
    ]
    assert walked == [r["id"] for r in sorted(rows, key=_sort_key("c_pt", True))]
    assert len(walked) == len(set(walked)) > 2


def test_page_cap_and_limit(app_client, dataset) -> None:
    page = app_client.get("/v1/results?limit=5").json()
    assert len(page["items"]) == 5 and page["next_cursor"]
    response = app_client.get("/v1/results?limit=1001")
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "limit"] and "page cap of 1000" in error["msg"]
    assert app_client.get("/v1/results?limit=0").status_code == 422


def test_bad_cursors_are_400(app_client, dataset) -> None:
    cursor = app_client.get("/v1/results?limit=2&sort=c_pt").json()["next_cursor"]
    assert app_client.get(f"/v1/results?limit=2&sort=c_pt&cursor={cursor}").status_code == 200
    forged = base64.urlsafe_b64encode(json.dumps({"s": "id"}).encode()).decode()

    def position(value, last_id) -> str:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        raw.update(v=value, i=last_id)
        return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")

    garbled = app_client.get("/v1/results?sort=c_pt&cursor=garbage!!")
    assert garbled.status_code == 422
    assert garbled.json()["detail"][0]["loc"] == ["query", "cursor"]
    for bad, words in [
        ("eyJub3QiOiAianNvbg", "not valid"),
        (forged, "not valid"),
        (position(0.5, 10**30), "outside what the columns hold"),
        (position(0.5, 1e30), "not valid"),
        (position(0.5, -1), "outside what the columns hold"),
        (position(10**19, 3), "outside what the columns hold"),
    ]:
        response = app_client.get(f"/v1/results?sort=c_pt&cursor={bad}")
        assert response.status_code == 400, bad
        assert response.json()["error"] == "BadCursor" and words in response.json()["detail"]
    response = app_client.get(f"/v1/results?sort=-c_pt&cursor={cursor}")
    assert response.status_code == 400 and "sort=c_pt, not sort=-c_pt" in response.json()["detail"]
    response = app_client.get(f"/v1/results?sort=c_pt&regime_theory=I&cursor={cursor}")
    assert response.status_code == 400 and "different filters" in response.json()["detail"]


@pytest.mark.parametrize(
    ("query", "name", "words"),
    [
        ("lamda_pt_lt=-0.5", "lamda_pt_lt", "did you mean 'lambda_pt_lt'"),
        ("regime=II", "regime", "unknown query parameter"),
        ("c_pt_between=1", "c_pt_between", "unknown query parameter"),
        ("regime_theory=V", "regime_theory", "'V' not in I, II, III, IV"),
        ("regime_empirical=II,iv", "regime_empirical", "'iv' not in"),
        ("c_pt_lt=abc", "c_pt_lt", "must be a number"),
        ("c_pt_lt=nan", "c_pt_lt", "finite"),
        ("seed_eq=1.5", "seed_eq", "must be an integer"),
        ("status=done", "status", "'done' not in"),
        ("sort=colour", "sort", "pick one of"),
        ("limit=ten", "limit", "must be an integer"),
        ("sweep_id=a&sweep_id=b", "sweep_id", "give it once"),
    ],
)
def test_bad_queries_are_422_naming_the_parameter(app_client, query, name, words) -> None:
    response = app_client.get(f"/v1/results?{query}")
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "BadQuery"
    [error] = body["detail"]
    assert error["loc"] == ["query", name] and words in error["msg"], error


def test_summary_matches_numpy(app_client, dataset) -> None:
    response = app_client.get("/v1/results/summary?group_by=c_pt,lambda_pt&workload=dln")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["group_by"] == ["c_pt", "lambda_pt"]
    assert [(r["group"]["c_pt"], r["group"]["lambda_pt"]) for r in body["rows"]] == [
        (c, lam) for c in C_PT for lam in LAMBDA_PT
    ]
    for row in body["rows"]:
        members = [
            r
            for r in dataset
            if r["status"] == "succeeded"
            and r["workload"] == "dln"
            and r["c_pt"] == row["group"]["c_pt"]
            and r["lambda_pt"] == row["group"]["lambda_pt"]
        ]
        sims = np.array([r["gen_error_sim"] for r in members if r["gen_error_sim"] is not None])
        assert row["count"] == len(members) == 3
        assert row["count_sim"] == len(sims)
        assert row["gen_error_sim_mean"] == pytest.approx(sims.mean(), rel=1e-12)
        sem = sims.std(ddof=1) / math.sqrt(len(sims))
        assert row["gen_error_sim_sem"] == pytest.approx(sem, rel=1e-9)
        theory = np.mean([r["gen_error_theory"] for r in members])
        assert row["gen_error_theory_mean"] == pytest.approx(theory, rel=1e-12)
        assert row["gen_error_asymptotic"] == pytest.approx(members[0]["gen_error_asymptotic"])
        assert row["regime_theory"] == members[0]["regime_theory"]


def test_summary_small_groups_filters_and_errors(app_client, dataset) -> None:
    body = app_client.get(
        "/v1/results/summary?group_by=c_pt,lambda_pt,seed&regime_theory=I&c_pt_lt=0.5"
    ).json()
    want = [
        r
        for r in dataset
        if r["regime_theory"] == "I"
        and r["status"] == "succeeded"
        and r["c_pt"] is not None
        and r["c_pt"] < 0.5
    ]
    assert sum(row["count"] for row in body["rows"]) == len(want) > 0
    assert all(row["count"] == 1 and row["gen_error_sim_sem"] is None for row in body["rows"])
    # Mode of the theory regime over a coarser group (c_pt alone spans three regimes).
    body = app_client.get("/v1/results/summary?group_by=c_pt").json()
    for row in body["rows"]:
        regimes = [
            r["regime_theory"]
            for r in dataset
            if r["status"] == "succeeded" and r["c_pt"] == row["group"]["c_pt"]
        ]
        counts = {g: regimes.count(g) for g in set(regimes)}
        top = max(counts.values())
        assert row["regime_theory"] == min(g for g, n in counts.items() if n == top)
    assert body["rows"][-1]["group"] == {"c_pt": None}  # relu_mlp: NULL groups last

    for query, name in [
        ("", "group_by"),
        ("group_by=c_pt,colour", "group_by"),
        ("group_by=c_pt&limit=3", "limit"),
    ]:
        response = app_client.get(f"/v1/results/summary?{query}")
        assert response.status_code == 422, query
        assert response.json()["detail"][0]["loc"] == ["query", name]
    assert app_client.get("/v1/results/summary?group_by=c_pt&sweep_id=x").status_code == 404


def test_openapi_documents_the_grammar(app_client) -> None:
    spec = app_client.get("/openapi.json").json()
    listing = spec["paths"]["/v1/results"]["get"]
    assert listing["operationId"] == "list_results"
    names = {p["name"] for p in listing["parameters"]}
    assert {"regime_theory", "lambda_pt_lt", "D_eq", "sort", "cursor", "limit"} <= names
    assert spec["paths"]["/v1/results/summary"]["get"]["operationId"] == "summarize_results"
    assert spec["paths"]["/v1/results/export"]["get"]["operationId"] == "export_results"


def test_eq_on_a_real_column_matches_to_twelve_digits(app_client, session_factory) -> None:
    """``linspace(0.01, 0.5, 11)`` stores α = 0.059000000000000004: ``alpha_eq=0.059`` finds
    it (and an exact 0.059), a value 1e-9 away does not; integer columns stay exact."""
    grid = np.linspace(0.01, 0.5, 11)
    assert repr(float(grid[1])) == "0.059000000000000004"  # the float a sweep stores
    alphas = (float(grid[1]), 0.059, 0.059 + 1e-9, float(grid[2]), -0.059, 0.0)
    with session_factory() as session:
        made = [make_trial(session, **trial_values(alpha=a, lambda_pt=-a)).id for a in alphas]
        session.commit()
    assert ids(app_client, "alpha_eq=0.059") == made[:2]
    assert ids(app_client, "alpha_eq=0.0590000010") == [made[2]]
    assert ids(app_client, "alpha_eq=0.108") == [made[3]]
    assert ids(app_client, "alpha_eq=-0.059") == [made[4]]
    assert ids(app_client, "alpha_eq=0") == [made[5]]
    assert ids(app_client, "lambda_pt_eq=-0.059") == made[:2]  # negative: the same window
    assert ids(app_client, "alpha_eq=1.7976931348623157e308") == []  # no overflow at the edge
