"""Spec → trials: expand axes, validate every trial, compute content-addressed keys.

Pure functions (no database): ``expand_spec`` returns :class:`PlannedTrial` records or
raises :class:`SpecRejected` with pydantic-style errors whose ``loc`` points at the
field of the spec that produced the bad value (``["body", "axes", "lambda_pt"]``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from typing import Any

import numpy as np
from pydantic import ValidationError

from api_schemas.spec import Axis, SweepSpec
from api_schemas.workloads import WORKLOAD_SCHEMAS
from service.errors import SpecRejected
from service.refine.lattice import Lattice, as_params
from service.refine.validate import refine_problems
from service.settings import LimitSettings
from workers.records import PlannedTrial, SkippedSetting
from workers.workloads import DEFAULT_GAMMA_EXT, WORKLOADS, theory_parameters

# Execution options that do not change the numbers and so stay out of the trial key.
_NON_NUMERIC_EXECUTION = ("device", "num_gpus")
# How a trial's work is cut into batches: not in its key (a trial run in legs equals
# one run straight through, tests/workers/dln/test_legs.py), but in its batch key, since
# a batch runs one execution.
_SCHEDULING_EXECUTION = ("leg_steps",)
# Workloads whose numbers do not depend on the device (numpy only): device stays out.
_DEVICE_INDEPENDENT = frozenset({"dln_theory"})


def trial_key_execution(workload: str, execution: dict[str, Any]) -> dict[str, Any]:
    """The execution options that enter a trial's key.

    ``num_gpus`` never does (a share of a GPU, not a number of the result), nor
    ``leg_steps`` (how the work is cut into batches, not what it computes).  The device
    does wherever it changes the numbers (the torch workloads: CUDA kernels, bf16
    autocast): a CUDA result is no cache hit for a CPU submission.  It is left out for
    ``cpu`` itself so that keys of CPU trials are the same as before it was added;
    ``auto`` is keyed as ``auto`` (the device it resolved to is in the envelope).
    """
    skipped = _NON_NUMERIC_EXECUTION + _SCHEDULING_EXECUTION
    keyed = {k: v for k, v in execution.items() if k not in skipped}
    device = execution.get("device", "cpu")
    if workload not in _DEVICE_INDEPENDENT and device != "cpu":
        keyed["device"] = device
    return keyed


def canonical_hash(payload: Any) -> str:
    """SHA-256 of canonical JSON (sorted keys, repr-exact floats)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def spec_hash(spec: SweepSpec) -> str:
    # A spec without ``refine``, overrides or a non-default ``on_invalid`` hashes as it
    # did before those fields existed.
    exclude = {"refine"} if spec.refine is None else set()
    if spec.on_invalid == "reject":
        exclude.add("on_invalid")
    if not spec.execution_overrides:
        exclude.add("execution_overrides")
    return canonical_hash(spec.model_dump(mode="json", exclude=exclude or None))


def axis_values(axis: Axis) -> list[Any]:
    if isinstance(axis, list):
        return list(axis)
    if axis.kind == "values":
        return list(axis.values)
    if axis.kind == "linspace":
        return np.linspace(axis.start, axis.stop, axis.num).tolist()
    if axis.kind == "logspace":
        return np.geomspace(axis.start, axis.stop, axis.num).tolist()
    rng = np.random.default_rng(axis.seed)
    if axis.kind == "uniform":
        return rng.uniform(axis.low, axis.high, axis.count).tolist()
    return np.exp(rng.uniform(math.log(axis.low), math.log(axis.high), axis.count)).tolist()


def _sobol_points(spec: SweepSpec) -> list[dict[str, float]]:
    from scipy.stats import qmc

    design = spec.sobol
    assert design is not None
    names = list(design.params)
    sampler = qmc.Sobol(d=len(names), scramble=True, seed=design.seed)
    unit = sampler.random(design.count)
    points = []
    for row in unit:
        point = {}
        for name, u in zip(names, row, strict=True):
            bounds = design.params[name]
            if bounds.log:
                low, high = math.log(bounds.low), math.log(bounds.high)
                point[name] = float(math.exp(low + u * (high - low)))
            else:
                point[name] = float(bounds.low + u * (bounds.high - bounds.low))
        points.append(point)
    return points


def count_trials(spec: SweepSpec) -> int:
    """Trial count without materializing the product (for the max-trials limit)."""
    count = 1
    for axis in spec.axes.values():
        count *= _axis_length(axis)
    for group in spec.zip:
        count *= len(next(iter(group.values())))
    if spec.sobol is not None:
        count *= spec.sobol.count
    if spec.refine is not None:
        count *= spec.refine.initial ** len(spec.refine.box)
    if WORKLOAD_SCHEMAS[spec.workload].uses_seeds:
        count *= len(spec.seed_list())
    return count


def _axis_length(axis: Axis) -> int:
    if isinstance(axis, list):
        return len(axis)
    if axis.kind == "values":
        return len(axis.values)
    return axis.num if axis.kind in ("linspace", "logspace") else axis.count


def _largest_factor(spec: SweepSpec) -> list[str | int]:
    """Where the biggest multiplier of the trial count is set (the first place to cut)."""
    factors: list[tuple[int, list[str | int]]] = [
        (_axis_length(axis), ["body", "axes", name]) for name, axis in spec.axes.items()
    ]
    for index, group in enumerate(spec.zip):
        factors.append((len(next(iter(group.values()))), ["body", "zip", index]))
    if spec.sobol is not None:
        factors.append((spec.sobol.count, ["body", "sobol", "count"]))
    if WORKLOAD_SCHEMAS[spec.workload].uses_seeds:
        factors.append((len(spec.seed_list()), ["body", "seeds"]))
    return max(factors, key=lambda factor: factor[0])[1] if factors else ["body", "axes"]


def parameter_origin(spec: SweepSpec) -> dict[str, list[str | int]]:
    """``{parameter: loc}``: where in the request body each parameter is set."""
    return _origin_of(spec)


def _origin_of(spec: SweepSpec) -> dict[str, list[str | int]]:
    origin: dict[str, list[str | int]] = {name: ["body", "params", name] for name in spec.params}
    origin.update({name: ["body", "axes", name] for name in spec.axes})
    for index, group in enumerate(spec.zip):
        origin.update({name: ["body", "zip", index, name] for name in group})
    if spec.sobol is not None:
        origin.update({name: ["body", "sobol", "params", name] for name in spec.sobol.params})
    if spec.refine is not None:
        origin.update({name: ["body", "refine", "box", name] for name in spec.refine.box})
    return origin


def _check_limits(spec: SweepSpec, execution: dict[str, Any], limits: LimitSettings) -> None:
    if spec.refine is not None:
        problems = refine_problems(spec, count_trials(spec), limits.max_trials)
        if problems:
            raise SpecRejected(problems)
    total = count_trials(spec)
    if total > limits.max_trials:
        raise SpecRejected(
            [
                {
                    "loc": _largest_factor(spec),
                    "msg": f"sweep expands to {total} trials; the limit is {limits.max_trials} "
                    "(SWEEPS_LIMITS__MAX_TRIALS)",
                    "type": "limit_exceeded",
                }
            ]
        )
    if int(execution.get("max_steps", 0)) > limits.max_steps:
        raise SpecRejected(
            [
                {
                    "loc": ["body", "execution", "max_steps"],
                    "msg": f"max_steps {execution['max_steps']} exceeds the limit "
                    f"{limits.max_steps} (SWEEPS_LIMITS__MAX_STEPS)",
                    "type": "limit_exceeded",
                }
            ]
        )


def _check_size(params: dict[str, Any], origin: dict, limits: LimitSettings) -> None:
    if "D" not in params:
        return
    dim = int(params["D"])
    if dim > limits.max_dimension:
        raise SpecRejected(
            [
                {
                    "loc": origin.get("D", ["body"]),
                    "msg": f"D={dim} exceeds the limit {limits.max_dimension} "
                    "(SWEEPS_LIMITS__MAX_DIMENSION)",
                    "type": "limit_exceeded",
                }
            ]
        )
    if "alpha" not in params:  # the nonlinear workloads give n_ft, not alpha
        return
    n = max(1, round(float(params["alpha"]) * dim))
    if dim * n > limits.max_d_times_n:
        raise SpecRejected(
            [
                {
                    "loc": origin.get("alpha", ["body"]),
                    "msg": f"D·n = {dim}·{n} = {dim * n} exceeds the limit "
                    f"{limits.max_d_times_n} (SWEEPS_LIMITS__MAX_D_TIMES_N)",
                    "type": "limit_exceeded",
                }
            ]
        )


def expand_spec(
    spec: SweepSpec,
    limits: LimitSettings,
    *,
    refine_points: list[dict[str, float]] | None = None,
) -> list[PlannedTrial]:
    """All trials of ``spec``, validated, keyed and ordered (axes vary slowest first).

    A refine spec expands to its initial grid, or to ``refine_points`` (one round's new
    points, from ``service/refine``), each crossed with the seeds.  With
    ``on_invalid: skip`` the settings the workload refuses are left out
    (:func:`expand_with_skips` says which).
    """
    return expand_with_skips(spec, limits, refine_points=refine_points)[0]


def expand_with_skips(
    spec: SweepSpec,
    limits: LimitSettings,
    *,
    refine_points: list[dict[str, float]] | None = None,
) -> tuple[list[PlannedTrial], list[SkippedSetting]]:
    """:func:`expand_spec`'s trials, and the settings left out by ``on_invalid: skip``.

    A setting is one combination of the spec's values with all its seeds.  One the
    workload's parameter model refuses (a value out of range, an infeasible combination
    such as ``lambda_pt = -1`` with ``gamma_ft = 0``) rejects the spec with 422
    (``on_invalid: reject``, the default) or is skipped with its reason and field path
    (``skip``).  Limits (trials, D, D·n, steps) always reject.  A spec whose every
    setting is refused is a 422 in both modes: it would be an empty sweep.
    """
    schema = WORKLOAD_SCHEMAS[spec.workload]
    workload = WORKLOADS[spec.workload]
    base_execution = schema.execution_model.model_validate(spec.execution).model_dump(mode="json")
    _check_limits(spec, base_execution, limits)
    origin = _origin_of(spec)
    execution_names = spec.execution_names()

    blocks: list[list[dict[str, Any]]] = [
        [{name: value} for value in axis_values(axis)] for name, axis in spec.axes.items()
    ]
    for group in spec.zip:
        names = list(group)
        blocks.append(
            [dict(zip(names, values, strict=True)) for values in zip(*group.values(), strict=True)]
        )
    if spec.sobol is not None:
        blocks.append(_sobol_points(spec))
    if spec.refine is not None:
        points = refine_points
        if points is None:
            lattice = Lattice.from_spec(spec.refine)
            points = as_params(lattice, lattice.initial_points())
        blocks.append(list(points))
    seeds: list[int | None] = list(spec.seed_list()) if schema.uses_seeds else [None]

    trials: list[PlannedTrial] = []
    validated: dict[str, dict[str, Any]] = {}
    refused: dict[str, list[dict[str, Any]]] = {}  # skipped settings: their 422 items
    skipped: list[SkippedSetting] = []
    executions: dict[str, dict[str, Any]] = {}
    for combination in itertools.product(*blocks):
        raw = dict(spec.params)
        varied_execution: dict[str, Any] = {}
        for part in combination:
            for name, value in part.items():
                (varied_execution if name in execution_names else raw)[name] = value
        cache_key = json.dumps(raw, sort_keys=True, default=str)
        if cache_key in refused:
            continue
        params = validated.get(cache_key)
        if params is None:
            try:
                params = _validate_params(schema.params_model, raw, origin, len(validated))
            except SpecRejected as exc:
                if spec.on_invalid != "skip":
                    raise
                refused[cache_key] = list(exc.detail)
                skipped.append(_skipped(raw, refused[cache_key], len(seeds)))
                continue
            _check_size(params, origin, limits)
            validated[cache_key] = params
        execution = _trial_execution(spec, params, varied_execution, executions, limits, origin)
        keyed_execution = {k: v for k, v in execution.items() if k not in _NON_NUMERIC_EXECUTION}
        trial_execution = trial_key_execution(spec.workload, execution)
        gamma_ext = float(execution.get("gamma_ext", DEFAULT_GAMMA_EXT))
        theory_key = None
        if workload.theory_fields:  # workloads without a replica theory have no key
            theory_key = canonical_hash(
                {
                    "theory": "replica",
                    "version": WORKLOADS["dln_theory"].evaluator_version,
                    "gamma_ext": gamma_ext,
                    **theory_parameters(workload, params, execution),
                }
            )
        group = {f: params.get(f) for f in workload.group_fields}
        shared_params = {k: v for k, v in params.items() if k not in workload.varying_within_group}
        # The batch key holds the trial's own execution: a batch runs one execution
        # (one lr, one step budget), so trials whose execution differs never share one.
        batch_key = canonical_hash({"workload": spec.workload, "exec": keyed_execution, **group})
        for seed in seeds:
            key = canonical_hash(
                {
                    "workload": spec.workload,
                    "version": workload.evaluator_version,
                    "params": params,
                    "seed": seed,
                    "execution": trial_execution,
                }
            )
            # Trials sharing a group key share a dataset (same task draw) or one
            # theory curve; the dispatcher keeps them in one batch.
            group_key = canonical_hash({"batch": batch_key, "seed": seed, "shared": shared_params})
            trials.append(
                PlannedTrial(key, batch_key, group_key, theory_key, params, seed, execution)
            )
    if skipped and not trials:
        # Every setting refused: nothing to run, and the user should hear why.
        seen: dict[str, dict[str, Any]] = {}
        for items in refused.values():
            for item in items:
                seen.setdefault(f"{item['loc']}|{item['msg']}", item)
        raise SpecRejected(list(seen.values()))
    return trials, skipped


def _skipped(raw: dict[str, Any], errors: list[dict[str, Any]], seeds: int) -> SkippedSetting:
    """The record of a refused setting: every reason, the first error's field and type."""
    # The parameters are listed beside the reason: no need to repeat them in it.
    messages = (re.sub(r" \(in the trial with .*\)$", "", str(e["msg"])) for e in errors)
    reasons = "; ".join(dict.fromkeys(messages))
    first = errors[0]
    return SkippedSetting(
        params=dict(raw),
        reason=reasons,
        loc=tuple(first["loc"]),
        kind=str(first["type"]),
        trials=seeds,
    )


def _trial_execution(
    spec: SweepSpec,
    params: dict[str, Any],
    varied: dict[str, Any],
    cache: dict[str, dict[str, Any]],
    limits: LimitSettings,
    origin: dict[str, list[str | int]],
) -> dict[str, Any]:
    """One trial's execution: ``execution``, then its axis/zip execution values, then every
    matching override in order; validated (a bad value is a 422 at the field that set it)."""
    raw = dict(spec.execution)
    where: dict[str, list[str | int]] = {name: ["body", "execution", name] for name in raw}
    raw.update(varied)
    where.update({name: origin[name] for name in varied})
    for index, override in enumerate(spec.execution_overrides):
        if all(_matches(params.get(name), value) for name, value in override.when.items()):
            raw.update(override.execution)
            for name in override.execution:
                where[name] = ["body", "execution_overrides", index, "execution", name]
    text = json.dumps(raw, sort_keys=True, default=str)
    if text in cache:
        return cache[text]
    model = WORKLOAD_SCHEMAS[spec.workload].execution_model
    try:
        execution = model.model_validate(raw).model_dump(mode="json")
    except ValidationError as exc:
        errors = []
        for error in exc.errors(include_url=False, include_context=False):
            field = str(error["loc"][0]) if error["loc"] else None
            loc = where.get(field, ["body", "execution"]) if field else ["body", "execution"]
            message = str(error["msg"]).removeprefix("Value error, ")
            errors.append({"loc": loc, "msg": message, "type": error["type"]})
        raise SpecRejected(errors) from None
    if int(execution.get("max_steps", 0)) > limits.max_steps:
        raise SpecRejected(
            [
                {
                    "loc": where.get("max_steps", ["body", "execution", "max_steps"]),
                    "msg": f"max_steps {execution['max_steps']} exceeds the limit "
                    f"{limits.max_steps} (SWEEPS_LIMITS__MAX_STEPS)",
                    "type": "limit_exceeded",
                }
            ]
        )
    cache[text] = execution
    return execution


def _matches(actual: Any, wanted: Any) -> bool:
    """``when`` equality: numbers compare as numbers (``-1`` matches ``-1.0``)."""
    if isinstance(actual, int | float) and isinstance(wanted, int | float):
        return not isinstance(actual, bool) and float(actual) == float(wanted)
    return actual == wanted


def _named_field(message: str, origin: dict[str, list[str | int]]) -> str | None:
    """The parameter a model-level rule (feasibility, architecture) is about: of the
    parameters the message names, the first one that is varied, else the first fixed."""
    named = sorted(
        (match.start(), name)
        for name in origin
        if (match := re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message))
    )
    varied = [name for _, name in named if origin[name][1] != "params"]
    if varied:
        return varied[0]
    return named[0][1] if named else None


def _validate_params(
    model: type, raw: dict[str, Any], origin: dict[str, list[str | int]], index: int
) -> dict[str, Any]:
    try:
        return model.model_validate(raw).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        errors = []
        for error in exc.errors(include_url=False, include_context=False):
            field = str(error["loc"][0]) if error["loc"] else None
            message = str(error["msg"]).removeprefix("Value error, ")
            if field is None:
                field = _named_field(message, origin)
            loc = origin.get(field, ["body", "params", field]) if field else ["body", "params"]
            if not error["loc"]:
                # A model-level rule (feasibility): name every value that fed it.
                detail = ", ".join(f"{k}={v}" for k, v in sorted(raw.items()))
                message = f"{message} (in the trial with {detail})"
            errors.append({"loc": loc, "msg": message, "type": error["type"]})
        raise SpecRejected(errors) from None
