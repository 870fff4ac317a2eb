"""The ``sweeps`` CLI against a real server (uvicorn on a free port, real SQLite)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
import yaml

from service.app import create_app
from service.cli import main
from service.runners import InlineRunner
from service.settings import DispatchSettings, Settings
from tests.service.factories import small_finetune_spec

SPEC = small_finetune_spec(name="cli", axes={"lambda_pt": [-0.5, 0.5]})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server_url(sqlite_url):
    """The real app with its dispatcher; batches run in-process (Ray is covered by
    tests/test_e2e.py and would add seconds of start-up here)."""
    settings = Settings(database_url=sqlite_url, dispatch=DispatchSettings(poll_seconds=0.05))
    app = create_app(settings, runner=InlineRunner(), start_dispatcher=True)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(10)


def test_submit_wait_status_results_export(server_url, tmp_path: Path, capsys) -> None:
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(SPEC))
    assert main(["submit", str(spec_path), "--wait", "--url", server_url]) == 0
    out = capsys.readouterr()
    sweep_id = out.out.strip()
    assert len(sweep_id) == 32 and "100.0%" in out.err

    assert main(["status", sweep_id, "--url", server_url]) == 0
    assert "succeeded" in capsys.readouterr().out

    assert (
        main(["results", "--sweep", sweep_id, "--where", "lambda_pt_lt=0", "--url", server_url])
        == 0
    )
    table = capsys.readouterr().out.splitlines()
    assert "E_gen sim" in table[0] and len(table) == 1 + 2  # header + 2 seeds

    target = tmp_path / "out.csv"
    assert main(["export", "--sweep", sweep_id, "-o", str(target), "--url", server_url]) == 0
    assert len(target.read_text().strip().splitlines()) == 1 + 4

    # Same Idempotency-Key, same spec: the same sweep comes back.
    assert main(["submit", str(spec_path), "--idempotency-key", "k", "--url", server_url]) == 0
    first = capsys.readouterr().out.strip()
    assert main(["submit", str(spec_path), "--idempotency-key", "k", "--url", server_url]) == 0
    assert capsys.readouterr().out.strip() == first


def test_errors_are_one_line_with_exit_2(server_url, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**SPEC, "axes": {"lambda_pt": [3.0]}}))
    assert main(["submit", str(bad), "--url", server_url]) == 2
    err = capsys.readouterr().err
    assert "422" in err and "body.axes.lambda_pt" in err

    assert main(["status", "nope", "--url", server_url]) == 2
    assert "SweepNotFound" in capsys.readouterr().err

    assert main(["status", "--url", "http://127.0.0.1:9"]) == 2
    assert "cannot reach" in capsys.readouterr().err

    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("- just\n- a list\n")
    assert main(["submit", str(garbage), "--url", server_url]) == 2
    assert "mapping" in capsys.readouterr().err
