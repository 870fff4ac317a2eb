"""The ``sweeps`` command line.

Server side: ``serve`` (API + dispatcher), ``worker`` (a standalone dispatcher),
``migrate`` (alembic upgrade head).  Client side, over HTTP with httpx and the shared
schemas: ``submit``, ``plan``, ``status``, ``cancel``, ``results``, ``export``, and the
paper's outputs: ``plot`` (a server-rendered figure) and ``report`` (theory vs
simulation agreement).  The
client finds the server through ``--url`` or ``SWEEPS_URL`` (default
http://127.0.0.1:8000).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"
TERMINAL = {"succeeded", "failed", "cancelled", "partial"}
RESULT_COLUMNS = (
    ("trial_id", "id", "{}"),
    ("c_pt", "c_pt", "{:.3g}"),
    ("lambda_pt", "λ_pt", "{:+.3f}"),
    ("gamma_ft", "γ_ft", "{:.3g}"),
    ("alpha", "α", "{:.3f}"),
    ("seed", "seed", "{}"),
    ("gen_error_sim", "E_gen sim", "{:.4g}"),
    ("gen_error_theory", "finite thy", "{:.4g}"),
    ("gen_error_asymptotic", "replica", "{:.4g}"),
    ("regime_theory", "regime", "{}"),
    ("regime_empirical", "emp.", "{}"),
)


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


# -- spec files ---------------------------------------------------------------------
def load_spec_file(path: str) -> dict[str, Any]:
    """Read a sweep spec from YAML or JSON (``-`` = stdin)."""
    import yaml

    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    try:
        data = yaml.safe_load(text) if not path.endswith(".json") else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise CliError(f"{path}: not valid YAML/JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CliError(f"{path}: a spec must be a mapping, got {type(data).__name__}")
    return data


# -- HTTP client --------------------------------------------------------------------
class Client:
    def __init__(self, url: str, submitter: str | None) -> None:
        import httpx

        headers = {"X-Sweeps-Submitter": submitter} if submitter else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=60.0)
        self.url = url

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the sweeps server at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise CliError(_describe_error(response))
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()


def _describe_error(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    detail = body.get("detail")
    if isinstance(detail, list):
        parts = [
            f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg')}" for item in detail
        ]
        detail = "; ".join(parts)
    return f"HTTP {response.status_code} {body.get('error', '')}: {detail}"


def _progress_line(sweep: dict[str, Any]) -> str:
    width = 30
    filled = int(round(sweep["progress"] * width))
    counts = sweep["counts"]
    eta = f" eta {sweep['eta_s']:.0f}s" if sweep.get("eta_s") is not None else ""
    rate = f" {sweep['throughput_per_s']:.1f}/s" if sweep.get("throughput_per_s") else ""
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {sweep['progress'] * 100:5.1f}% "
        f"ok {counts['succeeded']} run {counts['running']} wait {counts['pending']} "
        f"fail {counts['failed']}{rate}{eta}"
    )


def wait_for(client: Client, sweep_id: str, *, quiet: bool, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    tty = sys.stderr.isatty()
    last = ""
    while True:
        sweep = client.json("GET", f"/v1/sweeps/{sweep_id}")
        line = _progress_line(sweep)
        if not quiet and line != last:
            sys.stderr.write(("\r" + line) if tty else (line + "\n"))
            sys.stderr.flush()
            last = line
        if sweep["status"] in TERMINAL:
            if not quiet and tty:
                sys.stderr.write("\n")
            return sweep
        if time.monotonic() > deadline:
            raise CliError(f"sweep {sweep_id} did not finish within {timeout:.0f}s")
        time.sleep(0.5)


def format_table(rows: list[dict[str, Any]]) -> str:
    header = [title for _, title, _ in RESULT_COLUMNS]
    body = []
    for row in rows:
        cells = []
        for key, _, fmt in RESULT_COLUMNS:
            value = row.get(key, row.get("params", {}).get(key))
            cells.append("-" if value is None else fmt.format(value))
        body.append(cells)
    widths = [
        max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)
    ]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


def _filters(args: argparse.Namespace) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    for item in args.where or []:
        if "=" not in item:
            raise CliError(f"--where expects NAME=VALUE (e.g. lambda_pt_lt=-0.5), got {item!r}")
        name, value = item.split("=", 1)
        params.append((name.strip(), value.strip()))
    if args.sweep:
        params.append(("sweep_id", args.sweep))
    if args.regime:
        params.append(("regime_theory", args.regime))
    return params


# -- commands -----------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.app import create_app

    uvicorn.run(create_app(), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """A standalone dispatcher against the configured database and Ray."""
    import logging
    import signal
    import threading

    from service.dispatch import Dispatcher
    from service.runners import RayRunner
    from service.settings import get_settings
    from service.store.migrate import upgrade_to_head
    from service.store.session import make_engine, make_session_factory

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = get_settings()
    upgrade_to_head(settings.database_url)
    engine = make_engine(settings.database_url)
    runner = RayRunner(settings.ray)
    runner.start()
    dispatcher = Dispatcher(make_session_factory(engine), settings, runner)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    dispatcher.start()
    print(
        f"dispatcher {dispatcher.owner} running on {runner.describe()}; Ctrl-C to stop",
        file=sys.stderr,
    )
    stop.wait()
    dispatcher.stop()
    runner.shutdown()
    engine.dispose()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from service.settings import get_settings
    from service.store.migrate import upgrade_to_head

    upgrade_to_head(get_settings().database_url)
    print("database at head", file=sys.stderr)
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    client = Client(args.url, args.submitter)
    spec = load_spec_file(args.spec)
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    sweep = client.json("POST", "/v1/sweeps", json=spec, headers=headers)
    print(
        f"sweep {sweep['id']} ({sweep['name']}): {sweep['trial_count']} trials, "
        f"{sweep['cached_count']} cached",
        file=sys.stderr,
    )
    if args.wait:
        sweep = wait_for(client, sweep["id"], quiet=args.quiet, timeout=args.timeout)
    print(json.dumps({"id": sweep["id"], "status": sweep["status"]}) if args.json else sweep["id"])
    return 0 if sweep["status"] in ("succeeded", "pending", "running") else 1


def cmd_plan(args: argparse.Namespace) -> int:
    client = Client(args.url, args.submitter)
    plan = client.json("POST", "/v1/sweeps/plan", json=load_spec_file(args.spec))
    print(json.dumps(plan, indent=2))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    client = Client(args.url, args.submitter)
    if args.sweep_id:
        sweep = client.json("GET", f"/v1/sweeps/{args.sweep_id}")
        if args.json:
            print(json.dumps(sweep, indent=2))
        else:
            print(f"{sweep['id']}  {sweep['name']}  {sweep['workload']}  {sweep['status']}")
            print(_progress_line(sweep))
        return 0
    page = client.json("GET", "/v1/sweeps", params={"limit": args.limit})
    for sweep in page["items"]:
        print(
            f"{sweep['id']}  {sweep['status']:<9}  {sweep['progress'] * 100:5.1f}%  "
            f"{sweep['trial_count']:>7} trials  {sweep['workload']:<13} {sweep['name']}"
        )
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    client = Client(args.url, args.submitter)
    sweep = client.json("POST", f"/v1/sweeps/{args.sweep_id}/cancel")
    print(f"{sweep['id']}: {sweep['status']}")
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    client = Client(args.url, args.submitter)
    params = _filters(args) + [("limit", str(args.limit))]
    if args.sort:
        params.append(("sort", args.sort))
    page = client.json("GET", "/v1/results", params=params)
    if args.json:
        print(json.dumps(page, indent=2))
    else:
        print(format_table(page["items"]))
        if page.get("next_cursor"):
            print(f"… more: add --where cursor={page['next_cursor']}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    client = Client(args.url, args.submitter)
    params = _filters(args) + [("format", args.format)]
    output = Path(args.output or f"results.{args.format}")
    with client.http.stream("GET", "/v1/results/export", params=params) as response:
        if response.status_code >= 400:
            response.read()
            raise CliError(_describe_error(response))
        with output.open("wb") as handle:
            for chunk in response.iter_bytes():
                handle.write(chunk)
    print(f"wrote {output}", file=sys.stderr)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """Fetch a server-rendered figure of a sweep and write it to a file."""
    client = Client(args.url, args.submitter)
    params = {"yscale": args.yscale, "source": args.source}
    for name in ("theory_sweep", "x", "y"):
        if getattr(args, name):
            params[name] = getattr(args, name)
    path = f"/v1/sweeps/{args.sweep_id}/figures/{args.kind}.{args.format}"
    response = client.request("GET", path, params=params)
    output = Path(args.output or f"{args.sweep_id[:8]}-{args.kind}.{args.format}")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(response.content)
    print(f"wrote {output} ({len(response.content) / 1024:.0f} KiB)", file=sys.stderr)
    return 0


def _num(value: float | None, fmt: str = "{:.4g}") -> str:
    return "-" if value is None else fmt.format(value)


def format_report(report: dict[str, Any]) -> str:
    """The agreement report as text: totals, per regime, worst configs, notes."""
    fraction = report["fraction_inside"]
    lines = [
        f"sweep {report['sweep_id']} ({report['sweep_name']}): {report['configs']} configs",
        f"theory inside the simulation's 95% interval: {report['inside_95']}/"
        f"{report['compared']} compared configs = {_num(fraction, '{:.1%}')} "
        f"(target {report['target_fraction']:.0%}: "
        f"{'met' if report['meets_target'] else 'NOT met'}); over every config with an SEM: "
        f"{_num(report['fraction_inside_all'], '{:.1%}')}",
        f"regime agreement (measured label = theory label, per trial): "
        f"{_num(report['regime_agreement_rate'], '{:.1%}')}",
        "verdicts: " + ", ".join(f"{k} {v}" for k, v in report["counts"].items()),
        "",
        "regime  configs  compared  inside  fraction  stop-rule  unconverged  label-agree",
    ]
    for row in report["per_regime"]:
        lines.append(
            f"{row['regime']:>6}  {row['configs']:>7}  {row['compared']:>8}  "
            f"{row['inside_95']:>6}  {_num(row['fraction_inside'], '{:>8.1%}'):>8}  "
            f"{row['stopping_rule']:>9}  {row['not_converged']:>11}  "
            f"{_num(row['regime_agreement_rate'], '{:.1%}'):>11}"
        )
    if report["worst"]:
        lines += ["", "worst configs (largest |z|):"]
        for row in report["worst"]:
            params = row["params"]
            where = ", ".join(
                f"{k}={params[k]:g}"
                for k in ("omega", "rho_ft", "c_pt", "lambda_pt", "gamma_ft")
                if k in params
            )
            lines.append(
                f"  alpha={row['alpha']:<5g} {where}: sim {_num(row['sim_mean'])} ± "
                f"{_num(row['sim_sem'], '{:.2g}')}, theory {_num(row['theory'])}, "
                f"z {_num(row['z'], '{:+.1f}')} [{row['verdict']}, regime {row['regime_theory']}]"
            )
    if report["notes"]:
        lines += ["", "notes:"] + [f"  - {note}" for note in report["notes"]]
    return "\n".join(lines)


def cmd_report(args: argparse.Namespace) -> int:
    """Theory vs simulation agreement of a sweep (text, or the JSON of the API)."""
    client = Client(args.url, args.submitter)
    params = {"floor": args.floor, "worst": args.worst}
    report = client.json("GET", f"/v1/sweeps/{args.sweep_id}/report", params=params)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sweeps", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def client_parser(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--url", default=os.environ.get("SWEEPS_URL", DEFAULT_URL))
        p.add_argument("--submitter", default=os.environ.get("SWEEPS_SUBMITTER"))
        return p

    serve = sub.add_parser("serve", help="run the API (and its dispatcher)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("worker", help="run a standalone dispatcher").set_defaults(func=cmd_worker)
    sub.add_parser("migrate", help="alembic upgrade head").set_defaults(func=cmd_migrate)

    submit = client_parser("submit", "submit a sweep spec (YAML or JSON)")
    submit.add_argument("spec")
    submit.add_argument("--wait", action="store_true", help="show progress until it finishes")
    submit.add_argument("--idempotency-key")
    submit.add_argument("--timeout", type=float, default=3600.0)
    submit.add_argument("--quiet", action="store_true")
    submit.add_argument("--json", action="store_true")
    submit.set_defaults(func=cmd_submit)

    plan = client_parser("plan", "dry run: trial count, cache hits, cost")
    plan.add_argument("spec")
    plan.set_defaults(func=cmd_plan)

    status = client_parser("status", "one sweep's progress, or the list of sweeps")
    status.add_argument("sweep_id", nargs="?")
    status.add_argument("--limit", type=int, default=20)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    cancel = client_parser("cancel", "cancel a sweep")
    cancel.add_argument("sweep_id")
    cancel.set_defaults(func=cmd_cancel)

    for name, func in (("results", cmd_results), ("export", cmd_export)):
        p = client_parser(name, "query results" if name == "results" else "export results")
        p.add_argument("--sweep", help="only this sweep's trials")
        p.add_argument("--regime", help="theory regime(s), e.g. IV or II,IV")
        p.add_argument(
            "--where",
            action="append",
            metavar="NAME=VALUE",
            help="any /v1/results filter, e.g. lambda_pt_lt=-0.5 (repeatable)",
        )
        if name == "results":
            p.add_argument("--limit", type=int, default=50)
            p.add_argument("--sort")
            p.add_argument("--json", action="store_true")
        else:
            p.add_argument("--format", choices=("csv", "parquet"), default="csv")
            p.add_argument("--output", "-o")
        p.set_defaults(func=func)

    plot = client_parser("plot", "render a figure of a sweep (PNG or SVG)")
    plot.add_argument("sweep_id")
    plot.add_argument(
        "--kind",
        required=True,
        choices=("gen_error", "regimes", "l_order", "pd", "phase", "scatter"),
    )
    plot.add_argument("--format", choices=("png", "svg"), default="png")
    plot.add_argument("--theory-sweep", dest="theory_sweep", help="dln_theory sweep for lines")
    plot.add_argument("--x", help="maps: parameter on the x axis")
    plot.add_argument("--y", help="maps: parameter on the y axis")
    plot.add_argument("--yscale", choices=("log", "linear"), default="log")
    plot.add_argument("--source", choices=("theory", "empirical"), default="theory")
    plot.add_argument("--output", "-o", help="file to write (default <id>-<kind>.<format>)")
    plot.set_defaults(func=cmd_plot)

    report = client_parser("report", "theory vs simulation agreement of a sweep")
    report.add_argument("sweep_id")
    report.add_argument("--floor", type=float, default=1e-2, help="stopping-rule floor")
    report.add_argument("--worst", type=int, default=10, help="how many worst configs")
    report.add_argument("--json", action="store_true")
    report.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        print(f"sweeps: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
