"""``sweeps bench run SUITE`` for CI: start a benchmark run, wait for its verdict, print
a table, write ``--json`` / ``--junit`` files, and exit with the verdict's code.

Exit codes: 0 pass, 1 fail, 2 error (also: the service unreachable, a refused request,
no verdict before ``--timeout``), 3 inconclusive (0 with ``--inconclusive-ok``).

Depends on httpx, ``api_schemas`` and the standard library only, so it runs in a CI job
without the server's dependencies.  Runnable today as
``python -m service.bench_cli run SUITE …``; the Typer CLI wires :func:`run_bench` in.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import uuid
from pathlib import Path
from typing import Any, TextIO

import httpx

from service.bench_report import junit_xml, table

EXIT_CODES = {"pass": 0, "fail": 1, "error": 2, "inconclusive": 3}


def git_from_env(env: dict[str, str] | None = None) -> dict[str, Any]:
    """Git context from GitHub Actions' variables (empty fields elsewhere)."""
    env = dict(os.environ if env is None else env)
    ref = env.get("GITHUB_REF", "")
    pr = ref.split("/")[2] if ref.startswith("refs/pull/") else None
    return {
        "repository": env.get("GITHUB_REPOSITORY") or None,
        "commit": env.get("GITHUB_SHA") or None,
        "branch": env.get("GITHUB_HEAD_REF") or env.get("GITHUB_REF_NAME") or None,
        "base_commit": env.get("SWEEPS_BENCH_BASE_COMMIT") or None,
        "pr_number": int(pr) if pr and pr.isdigit() else None,
    }


def machine_info() -> dict[str, Any]:
    return {
        "os": platform.system(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "runner": os.environ.get("RUNNER_NAME"),
    }


def run_bench(
    url: str,
    api_key: str | None,
    suite: str,
    *,
    wait: bool = True,
    json_path: str | None = None,
    junit_path: str | None = None,
    inconclusive_ok: bool = False,
    results_path: str | None = None,
    git: dict[str, Any] | None = None,
    machine: str | None = None,
    baseline: str = "auto",
    baseline_run_id: str | None = None,
    idempotency_key: str | None = None,
    timeout_s: float = 1800.0,
    poll_s: float = 2.0,
    client: httpx.Client | None = None,
    out: TextIO | None = None,
) -> int:
    """Start a run of ``suite`` (bring-your-own when ``results_path`` names a JSON file of
    ``{"configs": …, "metrics": …}``), wait for the verdict, report it; returns the exit code."""
    out = out or sys.stdout
    headers = {"Idempotency-Key": idempotency_key or f"bench-{uuid.uuid4().hex}"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    body: dict[str, Any] = {
        "git": git if git is not None else git_from_env(),
        "machine": {"fingerprint": machine, "info": machine_info()},
        "baseline": baseline,
        "baseline_run_id": baseline_run_id,
    }
    if results_path:
        body.update(
            mode="byo",
            results=json.loads(Path(results_path).read_text()),
            source=os.environ.get("SWEEPS_BENCH_SOURCE"),
        )
    http = client or httpx.Client(base_url=url, timeout=60.0)
    try:
        response = http.post(f"/v1/benchmarks/{suite}/runs", json=body, headers=headers)
        if response.status_code not in (200, 201):
            out.write(f"error: {response.status_code} {response.text}\n")
            return EXIT_CODES["error"]
        verdict = response.json()
        deadline = time.monotonic() + timeout_s
        while wait and verdict["status"] == "running":
            if time.monotonic() > deadline:
                out.write(f"error: run {verdict['id']} gave no verdict within {timeout_s:g}s\n")
                return EXIT_CODES["error"]
            time.sleep(poll_s)
            response = http.get(f"/v1/benchmarks/runs/{verdict['id']}", headers=headers)
            if response.status_code != 200:
                out.write(f"error: {response.status_code} {response.text}\n")
                return EXIT_CODES["error"]
            verdict = response.json()
    except httpx.HTTPError as exc:
        out.write(f"error: cannot reach {url}: {exc}\n")
        return EXIT_CODES["error"]
    finally:
        if client is None:
            http.close()
    out.write(table(verdict) + "\n")
    if json_path:
        Path(json_path).write_text(json.dumps(verdict, indent=2, sort_keys=True))
    if junit_path:
        Path(junit_path).write_text(junit_xml(verdict))
    if verdict["status"] == "running":
        return 0  # --no-wait: started, not judged
    code = EXIT_CODES.get(verdict["status"], EXIT_CODES["error"])
    return 0 if code == 3 and inconclusive_ok else code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sweeps bench", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a suite and exit with its verdict")
    run.add_argument("suite")
    run.add_argument("--url", default=os.environ.get("SWEEPS_URL", "http://127.0.0.1:8000"))
    run.add_argument("--api-key", default=os.environ.get("SWEEPS_API_KEY"))
    run.add_argument("--results", help="bring-your-own results (JSON file)")
    run.add_argument("--machine", default=os.environ.get("SWEEPS_BENCH_MACHINE"))
    run.add_argument(
        "--baseline", default="auto", choices=["auto", "base_commit", "default_branch", "pinned"]
    )
    run.add_argument("--baseline-run")
    run.add_argument("--idempotency-key")
    for name in ("repository", "commit", "branch", "base-commit"):
        run.add_argument(f"--{name}")
    run.add_argument("--pr", type=int)
    run.add_argument("--no-wait", action="store_true")
    run.add_argument("--timeout", type=float, default=1800.0)
    run.add_argument("--json", dest="json_path")
    run.add_argument("--junit", dest="junit_path")
    run.add_argument("--inconclusive-ok", action="store_true", help="exit 0 when inconclusive")
    args = parser.parse_args(argv)
    git = git_from_env()
    for field in ("repository", "commit", "branch"):
        git[field] = getattr(args, field) or git[field]
    git["base_commit"] = args.base_commit or git["base_commit"]
    git["pr_number"] = args.pr or git["pr_number"]
    return run_bench(
        args.url,
        args.api_key,
        args.suite,
        wait=not args.no_wait,
        json_path=args.json_path,
        junit_path=args.junit_path,
        inconclusive_ok=args.inconclusive_ok,
        results_path=args.results,
        git=git,
        machine=args.machine,
        baseline=args.baseline,
        baseline_run_id=args.baseline_run,
        idempotency_key=args.idempotency_key,
        timeout_s=args.timeout,
    )


if __name__ == "__main__":
    sys.exit(main())
