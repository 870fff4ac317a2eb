"""The sweep specification: what a user submits (JSON over HTTP, YAML through the CLI).

A spec names a workload, fixes some parameters, and varies others along axes:

- ``axes``: a Cartesian product; each axis is an explicit list or a generator
  (``linspace``, ``logspace``, random ``uniform`` / ``loguniform`` with a seed);
- ``zip``: groups of equally long lists that vary together (one group is one axis);
- ``sobol``: a scrambled Sobol design over several parameters at once;
- ``seeds``: a count (0..n-1) or an explicit list, crossed with everything else;
- execution options (``lr``, ``max_steps``, ``loss_threshold``…) are set once in
  ``execution``, may be axes or zip entries like parameters (then they vary per trial),
  and may be overridden per setting by ``execution_overrides`` (``when`` the trial's
  parameters equal the given values, ``execution`` applies; later entries win).  Every
  trial's own execution enters its key, so trials that differ only in ``lr`` are
  different trials;
- ``refine``: an adaptive search for regime boundaries over a 2-D or 3-D box
  (``api_schemas/refine.py``): an initial grid, then rounds that split only the cells
  whose points disagree (the sweep grows while it runs).

Every list and mapping is capped (``spec_limits``) and checked before its items; every
error's ``loc`` is the path of the value at fault (``["axes", "lambda_pt"]``,
``["seeds", 3]``, ``["zip", 0, "D"]``).  Expansion into trials happens in the service
(``service/expand.py``); this module only describes and validates the shape.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from api_schemas import spec_limits as limits
from api_schemas.refine import RefineSpec
from api_schemas.spec_limits import raise_errors, spec_error
from api_schemas.workloads import WORKLOAD_SCHEMAS, StrictModel

Scalar = (
    Annotated[float, Field(ge=-1.7976931348623157e308, le=1.7976931348623157e308)]
    | Annotated[int, Field(ge=limits.INT64[0], le=limits.INT64[1])]
    | Annotated[str, Field(max_length=limits.MAX_STRING)]
)
ParamName = Annotated[str, Field(pattern=limits.PARAM_NAME_PATTERN)]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
WorkloadName = Literal[tuple(WORKLOAD_SCHEMAS)]  # type: ignore[valid-type]
Count = Annotated[int, Field(ge=1, le=limits.MAX_AXIS_VALUES)]
GeneratorSeed = Annotated[int, Field(ge=0, le=limits.GENERATOR_SEED_MAX)]
Finite = Annotated[float, Field(ge=-1.7976931348623157e308, le=1.7976931348623157e308)]


class LinspaceAxis(StrictModel):
    """``num`` evenly spaced values from ``start`` to ``stop`` inclusive."""

    kind: Literal["linspace"]
    start: Finite
    stop: Finite
    num: Count


class LogspaceAxis(StrictModel):
    """``num`` geometrically spaced values from ``start`` to ``stop`` (both > 0)."""

    kind: Literal["logspace"]
    start: float = Field(gt=0, le=1.7976931348623157e308)
    stop: float = Field(gt=0, le=1.7976931348623157e308)
    num: Count


class UniformAxis(StrictModel):
    """``count`` values drawn uniformly in [low, high) from ``seed`` (log-uniform: in log)."""

    kind: Literal["uniform", "loguniform"]
    low: Finite
    high: Finite
    count: Count
    seed: GeneratorSeed = 0

    @model_validator(mode="after")
    def _ordered(self) -> UniformAxis:
        if not self.low < self.high:
            raise_errors("axis", [spec_error(("high",), "low must be < high", self.high)])
        if self.kind == "loguniform" and self.low <= 0:
            raise_errors("axis", [spec_error(("low",), "loguniform needs low > 0", 0)])
        return self


class ValuesAxis(StrictModel):
    kind: Literal["values"]
    values: list[Scalar] = Field(min_length=1, max_length=limits.MAX_AXIS_VALUES)


GeneratedAxis = Annotated[
    LinspaceAxis | LogspaceAxis | UniformAxis | ValuesAxis, Field(discriminator="kind")
]
ListAxis = Annotated[list[Scalar], Field(min_length=1, max_length=limits.MAX_AXIS_VALUES)]
_LIST_AXIS: TypeAdapter[list[Any]] = TypeAdapter(ListAxis)
_GENERATED_AXIS: TypeAdapter[Any] = TypeAdapter(GeneratedAxis)


def _axis(value: Any) -> Any:
    """Validate an axis as the one form it has (list or generator), so that its errors
    are located at the value (``["axes", "c_pt", "high"]``), not at a union branch."""
    limits.check_axis_length(value)
    adapter = _LIST_AXIS if isinstance(value, list) else _GENERATED_AXIS
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        tag = value.get("kind") if isinstance(value, dict) else None
        raise_errors("axis", _prefixed((), exc, drop_tag=tag))


Axis = Annotated[ListAxis | GeneratedAxis, BeforeValidator(_axis)]
ZipGroup = Annotated[
    dict[ParamName, ListAxis], Field(min_length=1, max_length=limits.MAX_PARAMETERS)
]


class SobolRange(StrictModel):
    low: Finite
    high: Finite
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> SobolRange:
        if not self.low < self.high:
            raise_errors("range", [spec_error(("high",), "low must be < high", 0)])
        if self.log and self.low <= 0:
            raise_errors("range", [spec_error(("low",), "log ranges need low > 0", 0)])
        return self


class SobolDesign(StrictModel):
    """A scrambled Sobol design of ``count`` points over several parameter ranges."""

    model_config = ConfigDict(json_schema_extra=limits.closed_key_patterns)

    count: Count
    seed: GeneratorSeed = 0
    params: dict[ParamName, SobolRange] = Field(min_length=1, max_length=limits.MAX_PARAMETERS)


Seeds = Annotated[
    int | list[int], BeforeValidator(limits.check_seeds), WithJsonSchema(limits.SEEDS_SCHEMA)
]


class ExecutionOverride(StrictModel):
    """Execution options for the trials whose parameters match ``when`` (all equal)."""

    when: dict[ParamName, Scalar] = Field(
        min_length=1, max_length=limits.MAX_PARAMETERS, description="parameter values to match"
    )
    execution: dict[ParamName, Any] = Field(
        min_length=1,
        max_length=limits.MAX_EXECUTION_OPTIONS,
        description="execution options for the matching trials (over ``execution``)",
    )


class SweepSpec(StrictModel):
    """A sweep: a workload, fixed parameters, axes, seeds, execution options."""

    model_config = ConfigDict(json_schema_extra=limits.closed_key_patterns)

    name: str = Field(pattern=NAME_PATTERN, description="human-readable sweep name")
    workload: WorkloadName = Field(description="registered workload")
    params: dict[ParamName, Scalar] = Field(
        default_factory=dict, max_length=limits.MAX_PARAMETERS, description="fixed parameters"
    )
    axes: dict[ParamName, Axis] = Field(
        default_factory=dict,
        max_length=limits.MAX_PARAMETERS,
        description="Cartesian-product axes (each at least one value)",
    )
    zip: list[ZipGroup] = Field(
        default_factory=list,
        max_length=limits.MAX_ZIP_GROUPS,
        description="groups of equally long lists varied together",
    )
    sobol: SobolDesign | None = None
    refine: RefineSpec | None = Field(
        default=None, description="adaptive boundary search over a 2-D or 3-D box"
    )
    seeds: Seeds = 1
    execution: dict[ParamName, Any] = Field(
        default_factory=dict,
        max_length=limits.MAX_EXECUTION_OPTIONS,
        description="workload execution options (device, dtype, lr, …)",
    )
    execution_overrides: list[ExecutionOverride] = Field(
        default_factory=list,
        max_length=limits.MAX_ZIP_GROUPS,
        description="per-setting execution options (later entries win)",
    )
    priority: int = Field(default=0, ge=-100, le=100, description="higher runs first")
    priority_class: Literal["ci", "interactive", "batch"] | None = Field(
        default=None,
        description="fair-share class within the owner's queue (ci first, then interactive, "
        "then batch); default: ci for service accounts, interactive otherwise",
    )
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=limits.MAX_TAGS
    )
    on_invalid: Literal["reject", "skip"] = Field(
        default="reject",
        description="a setting the workload refuses (out of range, infeasible such as "
        "lambda_pt = -1 with gamma_ft = 0): reject the whole spec with 422 (default), or "
        "skip that setting and list it, with its reason, in the response and the sweep's "
        "status (a spec whose every setting is refused is still a 422)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        schema = WORKLOAD_SCHEMAS[self.workload]
        try:
            schema.execution_model.model_validate(self.execution)
        except ValidationError as exc:
            raise_errors("execution", _prefixed(("execution",), exc))
        for index, group in enumerate(self.zip):
            raise_errors("zip", _zip_errors(index, group))
        seen: dict[str, tuple[str | int, ...]] = {name: ("params", name) for name in self.params}
        errors = []
        for where in self.varied_locations():
            name = str(where[-1])
            if name in seen:
                first = seen[name][0]
                message = f"parameter {name!r} is set in both {first} and {where[0]}"
                errors.append(spec_error(where, message, name))
            seen.setdefault(name, where)
        if "seed" in seen:
            message = "set seeds with the top-level 'seeds' field, not as a parameter"
            errors.append(spec_error(seen["seed"], message, "seed"))
        allowed = set(schema.params_model.model_fields)
        executable = set(schema.execution_model.model_fields) - allowed
        for name in sorted(set(seen) & executable):
            if name in self.execution:
                message = f"execution option {name!r} is set in both execution and {seen[name][0]}"
                errors.append(spec_error(seen[name], message, name))
            elif seen[name][0] not in ("axes", "zip"):
                message = f"execution option {name!r} can vary in axes or zip only"
                errors.append(spec_error(seen[name], message, name))
        errors += self._override_errors(schema)
        for name in sorted(set(seen) - allowed - executable - {"seed"}):
            message = (
                f"unknown parameter {name!r} for workload {self.workload}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
            errors.append(spec_error(seen[name], message, name))
        if self.on_invalid == "skip" and self.refine is not None:
            message = "on_invalid: skip is not available with refine (its mesh needs every point)"
            errors.append(spec_error(("on_invalid",), message, self.on_invalid))
        raise_errors("SweepSpec", errors)
        return self

    def _override_errors(self, schema: Any) -> list[Any]:
        """Each override names parameters of the workload in ``when`` and its execution options
        (partially: the rest comes from ``execution``) in ``execution``."""
        errors = []
        fields = schema.execution_model.model_fields
        for index, override in enumerate(self.execution_overrides):
            for name in override.when:
                if name not in schema.params_model.model_fields:
                    message = f"execution_overrides[{index}].when: unknown parameter {name!r}"
                    where = ("execution_overrides", index, "when", name)
                    errors.append(spec_error(where, message, name))
            for name in override.execution:
                if name not in fields:
                    message = (
                        f"unknown execution option {name!r} for workload {self.workload}; "
                        f"allowed: {', '.join(sorted(fields))}"
                    )
                    where = ("execution_overrides", index, "execution", name)
                    errors.append(spec_error(where, message, name))
            merged = {**self.execution, **override.execution}
            try:
                schema.execution_model.model_validate(merged)
            except ValidationError as exc:
                prefix = ("execution_overrides", index, "execution")
                errors += [
                    e
                    for e in _prefixed(prefix, exc)
                    if tuple(e["loc"])[-1] in set(override.execution) & set(fields)
                ]
        return errors

    def execution_names(self) -> set[str]:
        """Execution options varied in ``axes`` or ``zip`` (not parameters)."""
        schema = WORKLOAD_SCHEMAS[self.workload]
        names = set(schema.execution_model.model_fields) - set(schema.params_model.model_fields)
        return {str(where[-1]) for where in self.varied_locations() if where[-1] in names}

    def varied_locations(self) -> list[tuple[str | int, ...]]:
        """Where each varied parameter is set: ``("axes", name)``, ``("zip", i, name)``…"""
        where: list[tuple[str | int, ...]] = [("axes", name) for name in self.axes]
        for index, group in enumerate(self.zip):
            where += [("zip", index, name) for name in group]
        if self.sobol is not None:
            where += [("sobol", "params", name) for name in self.sobol.params]
        return where

    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


def _prefixed(
    prefix: tuple[str | int, ...], exc: ValidationError, drop_tag: Any = None
) -> list[Any]:
    """``exc``'s errors re-located under ``prefix`` (less a leading union tag)."""
    located = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if drop_tag is not None and loc[:1] == (drop_tag,):
            loc = loc[1:]
        message = str(error["msg"]).removeprefix("Value error, ")
        located.append(spec_error((*prefix, *loc), message, error.get("input")))
    return located


def _zip_errors(index: int, group: dict[str, list[Any]]) -> list[Any]:
    lengths = {name: len(values) for name, values in group.items()}
    if len(set(lengths.values())) <= 1:
        return []
    first = next(iter(lengths.values()))
    return [
        spec_error(
            ("zip", index, name),
            f"zip[{index}] lists must be equally long: {name} has {length}, not {first}",
            length,
        )
        for name, length in lengths.items()
        if length != first
    ]
