"""Command line: run one fine-tuning trial and print its record as one JSON object.

    python -m workers.dln run '{"D": 200, "alpha": 0.3, "rho_pt": 0.1, "rho_ft": 0.05,
        "omega": 0.5, "c_pt": 1e-2, "lambda_pt": -0.5, "gamma_ft": 0.3, "seed": 0}'

The JSON comes from the argument, or from stdin when it is absent or ``-``.  Keys:
task (``rho_pt``, ``rho_ft`` + ``omega`` or ``rho_ft_shared`` + ``rho_ft_new``,
``a_pt``, ``ft_norm``, ``q``, ``sigma0``, ``teacher_norm``), init (``c_pt``,
``lambda_pt``, ``gamma_ft``, ``readout_convention``), trial (``D``, ``alpha``, ``seed``,
``alpha_pt``, ``n_test``) and GD (``lr``, ``lr_stability_fraction``, ``max_steps``,
``loss_threshold``, ``pt_mode``, ``dtype``, ``device``).
Unknown keys and invalid values exit with status 2 and one line on stderr.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

INT_KEYS = ("D", "seed", "max_steps", "n_test")
FLOAT_KEYS = (
    "alpha",
    "rho_pt",
    "rho_ft",
    "omega",
    "rho_ft_shared",
    "rho_ft_new",
    "a_pt",
    "q",
    "sigma0",
    "c_pt",
    "lambda_pt",
    "gamma_ft",
    "lr",
    "loss_threshold",
    "alpha_pt",
    "lr_stability_fraction",
)
STR_KEYS = ("ft_norm", "teacher_norm", "readout_convention", "pt_mode", "dtype", "device")
REQUIRED = ("D", "alpha", "rho_pt", "c_pt", "lambda_pt", "gamma_ft")


class UsageError(ValueError):
    """Bad input; the message is the one line printed on stderr."""


def _typed(spec: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise UsageError("input must be a JSON object")
    for key in spec:
        if key not in INT_KEYS + FLOAT_KEYS + STR_KEYS:
            raise UsageError(f"unknown key {key!r}")
    for key in REQUIRED:
        if key not in spec:
            raise UsageError(f"missing required key {key!r}")
    for key, value in spec.items():
        if key in INT_KEYS and (isinstance(value, bool) or not isinstance(value, int)):
            raise UsageError(f"{key} must be an integer, got {value!r}")
        if key in FLOAT_KEYS and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise UsageError(f"{key} must be a number, got {value!r}")
        if key in STR_KEYS and not isinstance(value, str):
            raise UsageError(f"{key} must be a string, got {value!r}")
    paper = ("rho_ft_shared" in spec, "rho_ft_new" in spec)
    direct = ("rho_ft" in spec, "omega" in spec)
    if any(paper) and any(direct):
        raise UsageError("give either rho_ft and omega or rho_ft_shared and rho_ft_new")
    if any(paper) and not all(paper):
        missing = "rho_ft_new" if paper[0] else "rho_ft_shared"
        raise UsageError(f"missing required key {missing!r}")
    if not any(paper) and not all(direct):
        raise UsageError(f"missing required key {'rho_ft' if not direct[0] else 'omega'!r}")
    return spec


def build_trial(spec: dict[str, Any]) -> tuple[Any, Any]:
    """JSON object -> (FinetuneTrial, TrainOptions); ``ValueError`` names the bad key."""
    from workers.config import InitParams, TaskStats
    from workers.dln.evaluate import FinetuneTrial, TrainOptions

    spec = _typed(spec)
    task_extra = {
        k: spec[k] for k in ("a_pt", "ft_norm", "q", "sigma0", "teacher_norm") if k in spec
    }
    if "rho_ft_shared" in spec:
        task = TaskStats.from_paper_parameterization(
            spec["rho_pt"], spec["rho_ft_shared"], spec["rho_ft_new"], **task_extra
        )
    else:
        task = TaskStats(
            rho_pt=spec["rho_pt"], rho_ft=spec["rho_ft"], omega=spec["omega"], **task_extra
        )
    init = InitParams(
        c_pt=spec["c_pt"],
        lambda_pt=spec["lambda_pt"],
        gamma_ft=spec["gamma_ft"],
        readout_convention=spec.get("readout_convention", "per_path_sqrt2"),
    )
    trial_extra = {k: spec[k] for k in ("alpha_pt", "n_test") if k in spec}
    trial = FinetuneTrial(
        task=task,
        init=init,
        D=spec["D"],
        alpha=spec["alpha"],
        seed=spec.get("seed", 0),
        **trial_extra,
    )
    gd = (
        "lr",
        "lr_stability_fraction",
        "max_steps",
        "loss_threshold",
        "pt_mode",
        "dtype",
        "device",
    )
    options = TrainOptions(**{k: spec[k] for k in gd if k in spec})
    return trial, options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.dln", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one fine-tuning trial, print its JSON record")
    run.add_argument("spec", nargs="?", default="-", help="JSON object, or - for stdin")
    args = parser.parse_args(argv)
    text = sys.stdin.read() if args.spec == "-" else args.spec
    try:
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"invalid JSON: {exc}") from exc
        trial, options = build_trial(spec)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    import torch

    torch.set_num_threads(1)
    from workers.dln.evaluate import evaluate_finetune_batch

    (outcome,) = evaluate_finetune_batch([trial], options)
    print(json.dumps(outcome.to_record()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
