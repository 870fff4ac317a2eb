"""The sweep specification: what a user submits (JSON over HTTP, YAML through the CLI).

A spec names a workload, fixes some parameters, and varies others along axes:

- ``axes``: a Cartesian product; each axis is an explicit list or a generator
  (``linspace``, ``logspace``, random ``uniform`` / ``loguniform`` with a seed);
- ``zip``: groups of equally long lists that vary together (one group is one axis);
- ``sobol``: a scrambled Sobol design over several parameters at once;
- ``seeds``: a count (0..n-1) or an explicit list, crossed with everything else;
- ``refine``: an adaptive search for regime boundaries over a 2-D or 3-D box
  (``api_schemas/refine.py``): an initial grid, then rounds that split only the cells
  whose points disagree (the sweep grows while it runs).

Expansion into trials happens in the service (``service/expand.py``); this module only
describes and validates the shape.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from api_schemas.refine import RefineSpec
from api_schemas.workloads import WORKLOAD_SCHEMAS, StrictModel

Scalar = float | int | str
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"


class LinspaceAxis(StrictModel):
    """``num`` evenly spaced values from ``start`` to ``stop`` inclusive."""

    kind: Literal["linspace"]
    start: float
    stop: float
    num: int = Field(ge=1, le=100_000)


class LogspaceAxis(StrictModel):
    """``num`` geometrically spaced values from ``start`` to ``stop`` (both > 0)."""

    kind: Literal["logspace"]
    start: float = Field(gt=0)
    stop: float = Field(gt=0)
    num: int = Field(ge=1, le=100_000)


class UniformAxis(StrictModel):
    """``count`` values drawn uniformly in [low, high) from ``seed`` (log-uniform: in log)."""

    kind: Literal["uniform", "loguniform"]
    low: float
    high: float
    count: int = Field(ge=1, le=100_000)
    seed: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> UniformAxis:
        if not self.low < self.high:
            raise ValueError("low must be < high")
        if self.kind == "loguniform" and self.low <= 0:
            raise ValueError("loguniform needs low > 0")
        return self


class ValuesAxis(StrictModel):
    kind: Literal["values"]
    values: list[Scalar] = Field(min_length=1)


GeneratedAxis = Annotated[
    LinspaceAxis | LogspaceAxis | UniformAxis | ValuesAxis, Field(discriminator="kind")
]
Axis = list[Scalar] | GeneratedAxis


class SobolRange(StrictModel):
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> SobolRange:
        if not self.low < self.high:
            raise ValueError("low must be < high")
        if self.log and self.low <= 0:
            raise ValueError("log ranges need low > 0")
        return self


class SobolDesign(StrictModel):
    """A scrambled Sobol design of ``count`` points over several parameter ranges."""

    count: int = Field(ge=1, le=100_000)
    seed: int = Field(default=0, ge=0)
    params: dict[str, SobolRange] = Field(min_length=1)


class SweepSpec(StrictModel):
    """A sweep: a workload, fixed parameters, axes, seeds, execution options."""

    name: str = Field(pattern=NAME_PATTERN, description="human-readable sweep name")
    workload: str = Field(description="registered workload, e.g. dln_finetune or dln_theory")
    params: dict[str, Scalar] = Field(default_factory=dict, description="fixed parameters")
    axes: dict[str, Axis] = Field(default_factory=dict, description="Cartesian-product axes")
    zip: list[dict[str, list[Scalar]]] = Field(
        default_factory=list, description="groups of equally long lists varied together"
    )
    sobol: SobolDesign | None = None
    refine: RefineSpec | None = Field(
        default=None, description="adaptive boundary search over a 2-D or 3-D box"
    )
    seeds: int | list[int] = Field(default=1, description="a count (0..n-1) or explicit seeds")
    execution: dict[str, Any] = Field(
        default_factory=dict, description="workload execution options (device, dtype, lr, …)"
    )
    priority: int = Field(default=0, ge=-100, le=100, description="higher runs first")
    priority_class: Literal["ci", "interactive", "batch"] | None = Field(
        default=None,
        description="fair-share class within the owner's queue (ci first, then interactive, "
        "then batch); default: ci for service accounts, interactive otherwise",
    )
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=32
    )

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        if self.workload not in WORKLOAD_SCHEMAS:
            known = ", ".join(sorted(WORKLOAD_SCHEMAS))
            raise ValueError(f"unknown workload {self.workload!r}; known: {known}")
        schema = WORKLOAD_SCHEMAS[self.workload]
        schema.execution_model.model_validate(self.execution)
        if isinstance(self.seeds, int):
            if not 1 <= self.seeds <= 10_000:
                raise ValueError("seeds as a count must lie in [1, 10000]")
        elif (
            not self.seeds
            or any(s < 0 for s in self.seeds)
            or len(set(self.seeds)) != len(self.seeds)
        ):
            raise ValueError("seeds as a list must be non-empty, distinct and >= 0")
        seen: dict[str, str] = {name: "params" for name in self.params}
        varied = [("axes", name) for name in self.axes]
        for index, group in enumerate(self.zip):
            lengths = {len(values) for values in group.values()}
            if not group or len(lengths) != 1 or 0 in lengths:
                raise ValueError(f"zip[{index}] must hold non-empty lists of equal length")
            varied += [(f"zip[{index}]", name) for name in group]
        if self.sobol is not None:
            varied += [("sobol", name) for name in self.sobol.params]
        for where, name in varied:
            if name in seen:
                raise ValueError(f"parameter {name!r} is set in both {seen[name]} and {where}")
            seen[name] = where
        if "seed" in seen:
            raise ValueError("set seeds with the top-level 'seeds' field, not as a parameter")
        allowed = set(schema.params_model.model_fields)
        unknown = sorted(set(seen) - allowed)
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {', '.join(unknown)} for workload {self.workload}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        return self

    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)
