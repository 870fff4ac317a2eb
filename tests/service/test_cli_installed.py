"""The installed ``sweeps`` command (``.venv/bin/sweeps``) against a live server: its
output, its one progress line, its exit codes (0 ok, 1 the sweep failed, 2 usage or
HTTP error), ``--json``, ``watch``, ``login``, quiet pipes and shell completion."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.live_server import live_app_url
from tests.service.factories import small_finetune_spec

SWEEPS = str(Path(sys.executable).with_name("sweeps"))
SPEC = small_finetune_spec(name="installed", axes={"lambda_pt": [-0.5, 0.5]})


@pytest.fixture
def env(sqlite_url, tmp_path) -> Iterator[dict[str, str]]:
    with live_app_url(sqlite_url) as url:
        variables = {k: v for k, v in os.environ.items() if not k.startswith("SWEEPS_")}
        variables.pop("COLUMNS", None)
        yield variables | {"SWEEPS_URL": url, "SWEEPS_CONFIG": str(tmp_path / "config.toml")}


def sweeps(env: dict[str, str], *args: str, pipe_to: str | None = None):
    """Run the installed command (stdout and stderr are pipes, never a terminal)."""
    if pipe_to is None:
        return subprocess.run([SWEEPS, *args], env=env, capture_output=True, text=True)
    line = " ".join([SWEEPS, *args]) + f" | {pipe_to}"
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", line], env=env, capture_output=True, text=True
    )


def spec_file(tmp_path: Path, spec: dict) -> str:
    path = tmp_path / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def progress_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "%" in line]


def test_submit_wait_prints_one_progress_line_and_the_id(env, tmp_path: Path) -> None:
    done = sweeps(env, "submit", spec_file(tmp_path, SPEC), "--wait", "--interval", "0.05")
    assert done.returncode == 0, done.stderr
    sweep_id = done.stdout.strip()
    assert len(sweep_id) == 32
    assert len(progress_lines(done.stderr)) == 1, done.stderr
    final = progress_lines(done.stderr)[0]
    assert "100.0%" in final and "4/4" in final and "succeeded" in final
    assert "trials/s" in final or "took" in final

    status = sweeps(env, "status", sweep_id)
    assert status.returncode == 0 and "succeeded" in status.stdout and "%" not in status.stderr
    assert json.loads(sweeps(env, "status", sweep_id, "--json").stdout)["status"] == "succeeded"
    listing = sweeps(env, "status")
    assert listing.stdout.splitlines()[0].split()[:3] == ["id", "status", "done"]
    assert sweep_id in listing.stdout
    assert json.loads(sweeps(env, "status", "--json").stdout)["total"] == 1

    watch = sweeps(env, "watch", sweep_id, "--interval", "0.05")
    assert watch.returncode == 0 and len(progress_lines(watch.stderr)) == 1

    table = sweeps(env, "results", "--sweep", sweep_id, "--sort", "lambda_pt")
    lines = table.stdout.splitlines()
    assert table.returncode == 0 and "E_gen sim" in lines[0] and len(lines) == 1 + 4
    as_json = json.loads(sweeps(env, "results", "--sweep", sweep_id, "--json").stdout)
    assert len(as_json["items"]) == 4 and as_json["next_cursor"] is None
    paged = sweeps(env, "results", "--sweep", sweep_id, "--limit", "3")
    assert len(paged.stdout.splitlines()) == 1 + 3 and "--where cursor=" in paged.stderr
    cursor = paged.stderr.split("--where cursor=")[1].split()[0]
    rest = sweeps(
        env, "results", "--sweep", sweep_id, "--limit", "3", "--where", f"cursor={cursor}"
    )
    assert rest.returncode == 0 and len(rest.stdout.splitlines()) == 1 + 1
    every = sweeps(env, "results", "--sweep", sweep_id, "--limit", "3", "--all")
    assert len(every.stdout.splitlines()) == 1 + 4

    plan = sweeps(env, "plan", spec_file(tmp_path, SPEC))
    assert plan.returncode == 0 and "0 new, 4 cached" in plan.stdout
    assert (
        json.loads(sweeps(env, "plan", spec_file(tmp_path, SPEC), "--json").stdout)["cached_count"]
        == 4
    )
    report = sweeps(env, "report", sweep_id)
    assert report.returncode == 0 and "95% interval" in report.stdout
    assert "per_regime" in json.loads(sweeps(env, "report", sweep_id, "--json").stdout)

    target = tmp_path / "out.parquet"
    export = sweeps(env, "export", "--sweep", sweep_id, "--format", "parquet", "-o", str(target))
    assert export.returncode == 0 and target.read_bytes()[:4] == b"PAR1"
    plot = sweeps(env, "plot", sweep_id, "--kind", "scatter", "-o", str(tmp_path / "s.png"))
    assert plot.returncode == 0 and (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_narrow_terminals_get_fewer_columns_and_pipes_close_quietly(env, tmp_path) -> None:
    sweep_id = sweeps(env, "submit", spec_file(tmp_path, SPEC), "--wait", "-q").stdout.strip()
    narrow = sweeps({**env, "COLUMNS": "60"}, "results", "--sweep", sweep_id)
    assert narrow.returncode == 0
    assert all(len(line) <= 60 for line in narrow.stdout.splitlines())
    assert "E_gen sim" in narrow.stdout and "columns hidden" in narrow.stderr

    many = sweeps(env, "results", "--sweep", sweep_id, "--json", pipe_to="head -c 10")
    assert many.returncode == 0 and many.stderr == "" and len(many.stdout) == 10
    table = sweeps(env, "results", "--sweep", sweep_id, pipe_to="head -1")
    assert table.returncode == 0 and table.stderr == "" and "E_gen sim" in table.stdout


def test_every_command_piped_into_a_closed_reader_exits_quietly(env, tmp_path) -> None:
    """``| head`` (reads a line, then leaves) and ``| true`` / ``| head -0`` (gone before
    the first write): exit 0 under ``pipefail``, nothing on stderr, whichever layer met
    the closed pipe (our output, Typer around the command, Rich rendering the help)."""
    spec = spec_file(tmp_path, SPEC)
    commands = [
        ("plan", spec),
        ("plan", spec, "--json"),
        ("status",),
        ("status", "--json"),
        ("--help",),
        ("plan", "--help"),
    ]
    cases = [(args, reader) for args in commands for reader in ("head -1", "head -0", "true")]
    # Two at a time: each is a fresh interpreter whose start-up is most of its time.
    with ThreadPoolExecutor(max_workers=2) as pool:
        piped = list(pool.map(lambda case: sweeps(env, *case[0], pipe_to=case[1]), cases))
    for (args, reader), result in zip(cases, piped, strict=True):
        assert (result.returncode, result.stderr) == (0, ""), (args, reader, result.stderr)
    first = sweeps(env, "plan", spec, pipe_to="head -1")
    assert first.stdout.startswith("workload")


def test_exit_codes(env, tmp_path: Path) -> None:
    bad = sweeps(env, "submit", spec_file(tmp_path, {**SPEC, "axes": {"lambda_pt": [3.0]}}))
    assert bad.returncode == 2 and "422" in bad.stderr and "body.axes.lambda_pt" in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = sweeps(env, "status", "nope")
    assert missing.returncode == 2 and "SweepNotFound" in missing.stderr
    usage = sweeps(env, "results", "--no-such-flag")
    assert usage.returncode == 2 and "no-such-flag" in usage.stderr
    down = sweeps({**env, "SWEEPS_URL": "http://127.0.0.1:9"}, "status")
    assert down.returncode == 2 and "cannot reach" in down.stderr

    # A sweep that ends cancelled: the thing asked for failed, exit 1.
    big = {**SPEC, "name": "big", "seeds": 60}
    sweep_id = sweeps(env, "submit", spec_file(tmp_path, big)).stdout.strip()
    assert sweeps(env, "cancel", sweep_id).returncode == 0
    watch = sweeps(env, "watch", sweep_id, "--interval", "0.05", "--json")
    assert watch.returncode == 1 and json.loads(watch.stdout)["status"] in ("cancelled", "partial")


def test_login_writes_a_private_config_the_client_uses(env, tmp_path: Path) -> None:
    done = sweeps(env, "login", "--key", "k-123", "--url", env["SWEEPS_URL"])
    assert done.returncode == 0, done.stderr
    config = Path(env["SWEEPS_CONFIG"])
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert 'api_key = "k-123"' in config.read_text()
    from_stdin = subprocess.run(
        [SWEEPS, "login"], env=env, input="k-456\n", capture_output=True, text=True
    )
    assert from_stdin.returncode == 0 and 'api_key = "k-456"' in config.read_text()
    # The URL now comes from the config file as well.
    no_url = {k: v for k, v in env.items() if k != "SWEEPS_URL"}
    assert sweeps(no_url, "status").returncode == 0


def test_shell_completion(env) -> None:
    words = {"_SWEEPS_COMPLETE": "complete_bash", "COMP_WORDS": "sweeps su", "COMP_CWORD": "1"}
    assert set(sweeps({**env, **words}).stdout.split()) == {"submit"}
    kinds = {**words, "COMP_WORDS": "sweeps plot x --kind ", "COMP_CWORD": "4"}
    assert "gen_error" in sweeps({**env, **kinds}).stdout.split()
    script = sweeps(env, "--show-completion", "bash")
    assert script.returncode == 0 and "_SWEEPS_COMPLETE" in script.stdout
