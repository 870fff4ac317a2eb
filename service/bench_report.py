"""A benchmark verdict (the JSON of ``GET /v1/benchmarks/runs/{id}``) as a text table and
as JUnit XML, one test case per metric: a regression is a ``<failure>``, an error an
``<error>``, too little data ``<skipped>``; an acknowledged regression passes with a note.
Standard library only."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any


def _num(value: Any, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def table(verdict: dict[str, Any]) -> str:
    """The verdict's status line and one row per metric."""
    git = verdict.get("git") or {}
    lines = [
        f"suite {verdict['suite']} v{verdict['suite_version']}  run {verdict['id']}  "
        f"commit {git.get('commit') or '-'}  status {verdict['status'].upper()}",
    ]
    if verdict.get("reason"):
        lines.append(f"  {verdict['reason']}")
    baseline = verdict.get("baseline")
    if baseline:
        lines.append(f"  baseline: {baseline['strategy']}, {len(baseline['runs'])} runs")
    rows = [("metric", "outcome", "value", "baseline", "change%", "stat", "limits")]
    for m in verdict.get("metrics", []):
        base = m["baseline"].get(
            "mean", m["baseline"].get("median", m["contender"].get("reference"))
        )
        limits = m.get("limits") or {}
        bounds = f"[{_num(limits.get('lower'))}, {_num(limits.get('upper'))}]" if limits else "-"
        outcome = m["outcome"] + (" (ack)" if m.get("acknowledged") else "")
        rows.append(
            (
                m["metric"],
                outcome,
                _num(m["contender"].get("value")),
                _num(base),
                _num(m.get("change_pct"), "+.1f"),
                _num(m.get("statistic"), ".3g"),
                bounds,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def _message(m: dict[str, Any]) -> str:
    parts = [f"{m['test']}: {m['outcome']}", f"value {_num(m['contender'].get('value'))}"]
    if m.get("statistic") is not None:
        parts.append(f"statistic {_num(m['statistic'], '.3g')}")
    if m.get("change_pct") is not None:
        parts.append(f"change {_num(m['change_pct'], '+.1f')}%")
    if m.get("reason"):
        parts.append(m["reason"])
    return "; ".join(parts)


def junit_xml(verdict: dict[str, Any]) -> str:
    """JUnit XML of the verdict (``testsuites`` > ``testsuite`` > one ``testcase`` per metric;
    a run that errored before any metric was judged is one ``run`` case with an error)."""
    metrics = verdict.get("metrics", [])
    suite_name = f"bench.{verdict['suite']}"
    cases: list[ET.Element] = []
    counts = {"failures": 0, "errors": 0, "skipped": 0}
    for m in metrics:
        case = ET.Element(
            "testcase", name=m["metric"], classname=f"{suite_name}.{m['kind']}", time="0"
        )
        if m["outcome"] == "regression" and not m.get("acknowledged"):
            ET.SubElement(case, "failure", message=_message(m), type="regression").text = _message(
                m
            )
            counts["failures"] += 1
        elif m["outcome"] == "error":
            ET.SubElement(case, "error", message=_message(m), type="error")
            counts["errors"] += 1
        elif m["outcome"] == "insufficient_data":
            ET.SubElement(case, "skipped", message=m.get("reason") or "insufficient data")
            counts["skipped"] += 1
        else:
            ET.SubElement(case, "system-out").text = _message(m)
        cases.append(case)
    if not metrics and verdict["status"] == "error":
        case = ET.Element("testcase", name="run", classname=suite_name, time="0")
        ET.SubElement(case, "error", message=verdict.get("reason") or "error", type="error")
        cases.append(case)
        counts["errors"] += 1
    tests = str(len(cases))
    root = ET.Element(
        "testsuites",
        name="sweeps-bench",
        tests=tests,
        failures=str(counts["failures"]),
        errors=str(counts["errors"]),
        time="0",
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        name=suite_name,
        tests=tests,
        failures=str(counts["failures"]),
        errors=str(counts["errors"]),
        skipped=str(counts["skipped"]),
        time="0",
        timestamp=str(verdict.get("created_at", "")),
    )
    properties = ET.SubElement(suite, "properties")
    git = verdict.get("git") or {}
    for name, value in (
        ("run_id", verdict["id"]),
        ("status", verdict["status"]),
        ("commit", git.get("commit")),
        ("branch", git.get("branch")),
        ("baseline", (verdict.get("baseline") or {}).get("strategy")),
    ):
        ET.SubElement(properties, "property", name=name, value=str(value or ""))
    suite.extend(cases)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
