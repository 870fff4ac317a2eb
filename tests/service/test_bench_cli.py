"""``run_bench`` (``sweeps bench run``) against the real app: exit codes, the table, the
JSON file, and JUnit XML that validates against the reporters' schema.  One run waits
on the app's own dispatcher thread.

``tests/data/junit-10.xsd`` is the JUnit schema of Jenkins' xUnit plugin (Gregory
Boissinot, MIT licence, kept verbatim), the one pytest's own ``--junitxml`` tests
validate against (pytest 8.3.4 sdist, ``testing/example_scripts/junit-10.xsd``)."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from service.app import create_app
from service.bench_cli import git_from_env, main, run_bench
from service.bench_report import junit_xml
from service.runners import InlineRunner
from tests.service.bench_support import bench_settings, byo_body, git, make_client

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).parents[1] / "data" / "junit-10.xsd")))


def validate(path: Path) -> etree._ElementTree:
    document = etree.parse(str(path))
    SCHEMA.assertValid(document)
    return document


def bench(client, tmp_path: Path, suite: str, results: dict | None, commit: str, **kw) -> int:
    results_path = None
    if results is not None:
        results_path = tmp_path / f"{commit}.json"
        results_path.write_text(json.dumps(results))
    return run_bench(
        "http://testserver",
        None,
        suite,
        client=client,
        git=git(commit),
        machine="noise-model",
        results_path=str(results_path) if results_path else None,
        json_path=str(tmp_path / "verdict.json"),
        junit_path=str(tmp_path / "junit.xml"),
        poll_s=0.05,
        timeout_s=120,
        out=kw.pop("out", io.StringIO()),
        **kw,
    )


def test_exit_codes_json_and_junit(migrated_url: str, tmp_path: Path) -> None:
    rng = random.Random(9)
    with make_client(bench_settings(migrated_url)) as client:

        def results(wall: float = 1.0) -> dict:
            return byo_body(client, "smoke", rng, "x", wall=wall)["results"]

        assert bench(client, tmp_path, "smoke", results(), "c1") == 3  # no baseline yet
        junit = validate(tmp_path / "junit.xml")
        assert junit.getroot()[0].get("skipped") == "1"
        assert bench(client, tmp_path, "smoke", results(), "c2", inconclusive_ok=True) == 0
        assert bench(client, tmp_path, "smoke", results(), "c3") == 0
        out = io.StringIO()
        assert bench(client, tmp_path, "smoke", results(wall=1.3), "c4", out=out) == 1
        assert "FAIL" in out.getvalue() and "wall_time_per_trial_s" in out.getvalue()
        verdict = json.loads((tmp_path / "verdict.json").read_text())
        assert verdict["status"] == "fail"
        junit = validate(tmp_path / "junit.xml")
        cases = junit.getroot().findall(".//testcase")
        assert len(cases) == len(verdict["metrics"])  # one test case per metric
        failed = [c.get("name") for c in cases if c.find("failure") is not None]
        assert failed == ["wall_time_per_trial_s"]
        missing = results()
        missing["configs"].pop("smoke/lambda_pt=0.0")
        assert bench(client, tmp_path, "smoke", missing, "c5") == 2  # 422 → error
        assert bench(client, tmp_path, "nope", results(), "c6") == 2


def test_run_here_waits_on_the_dispatcher(migrated_url: str, tmp_path: Path) -> None:
    settings = bench_settings(migrated_url)
    app = create_app(settings, runner=InlineRunner(), start_dispatcher=True, migrate=False)
    with TestClient(app) as client:
        assert bench(client, tmp_path, "smoke", None, "r1") == 3
        validate(tmp_path / "junit.xml")
        assert json.loads((tmp_path / "verdict.json").read_text())["mode"] == "run_here"


def test_an_errored_run_is_one_junit_error(tmp_path: Path) -> None:
    verdict = {
        "id": "r",
        "suite": "smoke",
        "suite_version": 1,
        "status": "error",
        "reason": "sweep s: 1 failed",
        "metrics": [],
        "git": {},
        "created_at": "now",
    }
    path = tmp_path / "junit.xml"
    path.write_text(junit_xml(verdict))
    root = validate(path).getroot()
    assert root.get("errors") == "1" and root.find(".//error").get("message") == verdict["reason"]


def test_git_context_from_github_actions() -> None:
    env = {
        "GITHUB_REPOSITORY": "lab/x",
        "GITHUB_SHA": "abc",
        "GITHUB_REF": "refs/pull/42/merge",
        "GITHUB_HEAD_REF": "topic",
        "SWEEPS_BENCH_BASE_COMMIT": "def",
    }
    assert git_from_env(env) == {
        "repository": "lab/x",
        "commit": "abc",
        "branch": "topic",
        "base_commit": "def",
        "pr_number": 42,
    }


def test_argparse_entry_point_reports_an_unreachable_service(capsys) -> None:
    code = main(["run", "smoke", "--url", "http://127.0.0.1:9", "--timeout", "1"])
    assert code == 2 and "cannot reach" in capsys.readouterr().out


@pytest.mark.parametrize("status,code", [("pass", 0), ("fail", 1), ("error", 2)])
def test_exit_code_table(status: str, code: int) -> None:
    from service.bench_cli import EXIT_CODES

    assert EXIT_CODES[status] == code and EXIT_CODES["inconclusive"] == 3


def test_sweeps_bench_run_is_mounted_in_the_cli(capsys) -> None:
    """``sweeps bench run`` hands its arguments to the benchmark CLI unchanged."""
    from service.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["bench", "run", "--help"])
    assert stopped.value.code == 0
    assert "--junit" in capsys.readouterr().out
