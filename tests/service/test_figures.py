"""Every figure kind rendered from a small stored sweep (run through the dispatcher with
``InlineRunner``), as PNG and SVG, through the real app; and the error cases."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET

import pytest
from fastapi.testclient import TestClient

from api_schemas.spec import SweepSpec
from service.app import create_app
from service.dispatch import Dispatcher
from service.figures import KINDS
from service.runners import InlineRunner
from service.settings import Settings
from service.store.migrate import upgrade_to_head
from service.store.session import make_engine, make_session_factory, session_scope
from service.sweeps import submit_sweep

INIT_ZIP = {
    "omega": [0.5, 0.0, 0.5, 0.5],
    "lambda_pt": [0.0, 0.0, -0.5, 0.0],
    "gamma_ft": [0.5, 0.5, 0.5, 2.0],
}
SIM = {
    "name": "tiny-sim",
    "workload": "dln_finetune",
    "params": {"D": 60, "rho_pt": 0.1, "rho_ft": 0.1, "c_pt": 0.05, "n_test": 50},
    "zip": [INIT_ZIP],
    "axes": {"alpha": [0.3, 0.5]},
    "seeds": 3,
    "execution": {"lr": 0.2, "max_steps": 3000},
}
THEORY = {
    "name": "tiny-theory",
    "workload": "dln_theory",
    "params": {"rho_pt": 0.1, "rho_ft": 0.1, "c_pt": 0.05},
    "zip": [INIT_ZIP],
    "axes": {"alpha": {"kind": "linspace", "start": 0.05, "stop": 0.5, "num": 10}},
}
MAP = {
    "name": "tiny-map",
    "workload": "dln_theory",
    "params": {"rho_pt": 0.1, "rho_ft": 0.1, "omega": 1.0, "c_pt": 1e-3, "alpha": 0.3},
    "axes": {"lambda_pt": [-0.9, 0.0, 0.9], "gamma_ft": [0.0, 0.5, 10.0]},
}
PENDING = {**MAP, "name": "never-run", "params": {**MAP["params"], "alpha": 0.4}}


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A client on a database holding the three finished sweeps and one pending."""
    url = f"sqlite:///{tmp_path_factory.mktemp('figures') / 'sweeps.db'}"
    upgrade_to_head(url)
    settings = Settings(database_url=url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    ids = {}
    for spec in (SIM, THEORY, MAP):
        with session_scope(factory) as session:
            sweep, _ = submit_sweep(session, SweepSpec.model_validate(spec), settings, "t", None)
            ids[spec["name"]] = sweep.id
    Dispatcher(factory, settings, InlineRunner()).run_until_idle()
    with session_scope(factory) as session:
        sweep, _ = submit_sweep(session, SweepSpec.model_validate(PENDING), settings, "t", None)
        ids["pending"] = sweep.id
    engine.dispose()
    app = create_app(settings, start_dispatcher=False, migrate=False)
    with TestClient(app) as client:
        yield client, ids


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# kind -> (sweep, query)
CASES = {
    "gen_error": ("tiny-sim", {"theory_sweep": "tiny-theory"}),
    "regimes": ("tiny-sim", {"theory_sweep": "tiny-theory"}),
    "scatter": ("tiny-sim", {}),
    "l_order": ("tiny-map", {}),
    "pd": ("tiny-map", {"x": "gamma_ft", "y": "lambda_pt"}),
    "phase": ("tiny-map", {}),
}


def test_cases_cover_every_kind() -> None:
    assert set(CASES) == set(KINDS)


@pytest.mark.parametrize("fmt", ["png", "svg"])
@pytest.mark.parametrize("kind", list(CASES))
def test_renders_every_kind(stored, kind: str, fmt: str) -> None:
    client, ids = stored
    sweep, query = CASES[kind]
    params = {k: ids.get(v, v) for k, v in query.items()}
    response = client.get(f"/v1/sweeps/{ids[sweep]}/figures/{kind}.{fmt}", params=params)
    assert response.status_code == 200, response.text
    data = response.content
    assert len(data) > 8_000, f"{kind}.{fmt} is suspiciously small ({len(data)} bytes)"
    if fmt == "png":
        assert response.headers["content-type"] == "image/png"
        width, height = png_size(data)
        assert 500 <= width <= 3000 and 400 <= height <= 3000, (width, height)
    else:
        assert response.headers["content-type"].startswith("image/svg+xml")
        root = ET.fromstring(data)
        assert root.tag.endswith("svg")
        assert b"<text" in data or b"glyph" in data or b"<path" in data


def test_theory_lines_fall_back_to_stored_replica_values(stored) -> None:
    client, ids = stored
    response = client.get(f"/v1/sweeps/{ids['tiny-sim']}/figures/gen_error.png")
    assert response.status_code == 200 and png_size(response.content)[0] > 500


def test_theory_only_sweep_draws_lines(stored) -> None:
    client, ids = stored
    response = client.get(f"/v1/sweeps/{ids['tiny-theory']}/figures/gen_error.svg")
    assert response.status_code == 200
    ET.fromstring(response.content)


@pytest.mark.parametrize(
    ("path", "query", "status", "error"),
    [
        ("{sim}/figures/histogram.png", {}, 404, "UnknownFigure"),
        ("{sim}/figures/gen_error.jpg", {}, 404, "UnknownFigure"),
        ("{sim}/figures/gen_error", {}, 404, "UnknownFigure"),
        ("deadbeef/figures/gen_error.png", {}, 404, "SweepNotFound"),
        ("{sim}/figures/gen_error.png", {"theory_sweep": "deadbeef"}, 404, "SweepNotFound"),
        ("{pending}/figures/phase.png", {}, 409, "NoResultsYet"),
        ("{theory}/figures/scatter.png", {}, 409, "NoResultsYet"),
        ("{map}/figures/phase.png", {"x": "alpha"}, 422, "BadQuery"),
        ("{map}/figures/l_order.png", {"y": "bogus"}, 422, "BadQuery"),
        ("{sim}/figures/gen_error.png", {"yscale": "cubic"}, 422, "ValidationError"),
        ("{theory}/report", {}, 409, "NoResultsYet"),
    ],
)
def test_errors_are_clear_and_never_500(stored, path, query, status, error) -> None:
    client, ids = stored
    names = {"sim": "tiny-sim", "theory": "tiny-theory", "map": "tiny-map", "pending": "pending"}
    url = "/v1/sweeps/" + path.format(**{k: ids[v] for k, v in names.items()})
    response = client.get(url, params=query)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error and body["detail"]


def test_report_of_the_stored_sweep(stored) -> None:
    client, ids = stored
    body = client.get(f"/v1/sweeps/{ids['tiny-sim']}/report").json()
    assert body["configs"] == 8 and sum(body["counts"].values()) == 8
    assert all(row["n_seeds"] == 3 for row in body["rows"])
    assert body["regime_agreement_rate"] is not None
