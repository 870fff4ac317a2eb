"""The agreement report of a paper spec, evaluated in-process (no server, no database).

Expands ``examples/paper/<spec>.yaml`` with the service's own ``expand_spec``, runs every
trial through the ``dln_finetune`` workload exactly as a worker would (batches of one
batch key, at most ``--batch`` trials), asks for the replica value of every theory key,
and feeds the records to ``service.report.agreement_report`` once per regime classifier
version.  It is the README's "Measured agreement" table without ``sweeps serve``: the
same expansion, evaluation and report code, minus the dispatcher and the store.

    nice -n 10 .venv/bin/python benchmarks/regime_agreement.py examples/paper/exp1.yaml \
        --out /tmp/exp1.jsonl
    .venv/bin/python benchmarks/regime_agreement.py --records /tmp/exp1.jsonl

``--out`` takes a ``.jsonl`` path: one record per line, appended batch by batch;
``--defer lambda_pt=-1.0`` runs the slow regime-I batches last.  ``--records`` re-reports
stored records (``.jsonl``, even of an interrupted run) (the classifier is a function of the stored
(ℓ, PD), so a new classifier version needs no new runs).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml


def run_spec(
    path: Path,
    batch: int,
    seeds: int | None,
    defer: dict[str, float] | None = None,
    out: Path | None = None,
) -> list[dict[str, Any]]:
    """Every trial of the spec evaluated; records shaped like ``figures.sweep_records``.

    Batches whose parameters match every ``defer`` entry run last; with ``out`` each
    batch's records are appended to ``out`` as JSON lines as soon as it finishes, so an
    interrupted run still leaves every finished batch behind."""
    import torch

    from api_schemas.spec import SweepSpec
    from service.expand import expand_spec
    from service.settings import LimitSettings
    from workers.records import ClaimedTrial
    from workers.workloads import WORKLOADS

    torch.set_num_threads(1)
    raw = yaml.safe_load(path.read_text())
    if seeds is not None:
        raw["seeds"] = seeds
    spec = SweepSpec.model_validate(raw)
    planned = expand_spec(spec, LimitSettings())
    workload = WORKLOADS[spec.workload]
    by_batch: dict[str, list[Any]] = defaultdict(list)
    for trial in planned:
        by_batch[trial.batch_key].append(trial)
    records: list[dict[str, Any]] = []
    done, started = 0, time.perf_counter()
    defer = defer or {}

    def deferred(members: list[Any]) -> bool:
        params = members[0].params
        return bool(defer) and all(params.get(k) == v for k, v in defer.items())

    ordered = sorted(by_batch.values(), key=deferred)
    for members in ordered:
        for lo in range(0, len(members), batch):
            chunk = members[lo : lo + batch]
            claimed = [
                ClaimedTrial(
                    trial_id=i,
                    attempt=1,
                    workload=spec.workload,
                    params=t.params,
                    seed=t.seed,
                    execution=t.execution,
                    batch_key=t.batch_key,
                    group_key=t.group_key,
                    theory_key=t.theory_key,
                )
                for i, t in enumerate(chunk)
            ]
            wanted = {c.trial_id: c.theory_key for c in claimed if c.theory_key}
            output = workload.run(claimed, wanted)
            for c, outcome in zip(claimed, output.outcomes, strict=True):
                record = {"params": dict(c.params), "workload": spec.workload, "seed": c.seed}
                record.update({k: v for k, v in outcome.columns().items() if k != "metrics"})
                value = output.theory.get(c.theory_key) if c.theory_key else None
                record["gen_error_asymptotic"] = value.gen_error if value else None
                records.append(record)
                if out is not None:
                    with out.open("a") as sink:
                        sink.write(json.dumps(record) + "\n")
            done += len(chunk)
            print(
                f"{done}/{len(planned)} trials, {time.perf_counter() - started:.0f} s",
                flush=True,
            )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", type=Path)
    parser.add_argument("--records", type=Path, help="re-report stored records instead")
    parser.add_argument("--out", type=Path, help="write the records here (JSON)")
    parser.add_argument("--batch", type=int, default=14)
    parser.add_argument("--seeds", type=int, default=None, help="override the spec's seeds")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    parser.add_argument(
        "--defer",
        action="append",
        default=[],
        metavar="PARAM=VALUE",
        help="run batches with these parameter values last (e.g. lambda_pt=-1.0)",
    )
    args = parser.parse_args()

    if args.records is not None:
        text = args.records.read_text()
        if args.records.suffix == ".jsonl":  # a (possibly interrupted) --out of a run
            name = args.records.stem
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            payload = json.loads(text)
            name, records = payload["name"], payload["records"]
    else:
        if args.spec is None:
            parser.error("give a spec or --records")
        started = time.perf_counter()
        defer = {k: float(v) for k, v in (item.split("=", 1) for item in args.defer)}
        if args.out is not None:
            args.out.write_text("")
        records = run_spec(args.spec, args.batch, args.seeds, defer, args.out)
        name = args.spec.stem
        print(f"evaluated {len(records)} trials in {time.perf_counter() - started:.0f} s")
    from service.cli.render import report_text
    from service.report import agreement_report
    from workers.theory.regimes import CLASSIFIER_VERSIONS

    for version in reversed(CLASSIFIER_VERSIONS):
        report = agreement_report(
            records,
            sweep_id="in-process",
            sweep_name=name,
            workload="dln_finetune",
            classifier_version=version,
        )
        if args.json:
            print(report.model_dump_json(indent=1))
        else:
            print(f"=== classifier {version} ===")
            print(report_text(report))


if __name__ == "__main__":
    main()
