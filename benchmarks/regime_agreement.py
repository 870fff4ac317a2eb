"""The agreement report of a paper spec, evaluated in-process (no server, no database).

Expands ``examples/paper/<spec>.yaml`` with the service's own ``expand_spec``, runs every
trial through the ``dln_finetune`` workload exactly as a worker would (batches of one
batch key, at most ``--batch`` trials), asks for the replica value of every theory key,
and feeds the records to ``service.report.agreement_report`` once per regime classifier
version.  It is the README's "Measured agreement" table without ``sweeps serve``: the
same expansion, evaluation and report code, minus the dispatcher and the store.

    nice -n 10 .venv/bin/python benchmarks/regime_agreement.py examples/paper/exp1.yaml \
        --out /tmp/exp1_records.json
    .venv/bin/python benchmarks/regime_agreement.py --records /tmp/exp1_records.json

``--records`` re-reports stored records (the classifier is a function of the stored
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


def run_spec(path: Path, batch: int, seeds: int | None) -> list[dict[str, Any]]:
    """Every trial of the spec evaluated; records shaped like ``figures.sweep_records``."""
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
    for members in by_batch.values():
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
                record.update(
                    {k: v for k, v in outcome.columns().items() if k != "metrics"}
                )
                value = output.theory.get(c.theory_key) if c.theory_key else None
                record["gen_error_asymptotic"] = value.gen_error if value else None
                records.append(record)
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
    args = parser.parse_args()

    if args.records is not None:
        payload = json.loads(args.records.read_text())
        name, records = payload["name"], payload["records"]
    else:
        if args.spec is None:
            parser.error("give a spec or --records")
        started = time.perf_counter()
        records = run_spec(args.spec, args.batch, args.seeds)
        name = args.spec.stem
        print(f"evaluated {len(records)} trials in {time.perf_counter() - started:.0f} s")
        if args.out is not None:
            args.out.write_text(json.dumps({"name": name, "records": records}))
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
