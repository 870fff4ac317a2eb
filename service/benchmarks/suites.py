"""Benchmark suites: named, versioned YAML files listing sweep specs and the metrics to
judge, each with its policy.  Read from ``SWEEPS_BENCHMARKS__SUITES_DIR`` or, unset, the
repository's ``benchmarks/suites/``.

A suite's *configs* are its sweeps' parameter sets with seeds pooled; each is named by a
label ``<sweep name>/<k=v,…>`` over the parameters that vary inside that sweep (just the
sweep name when it has one config).  Bring-your-own results are keyed by these labels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api_schemas.benchmarks import MetricPolicy
from api_schemas.spec import SweepSpec
from service.errors import NotFound, SpecRejected
from service.expand import expand_spec
from service.settings import LimitSettings, Settings

REPO_SUITES = Path(__file__).resolve().parents[2] / "benchmarks" / "suites"
CONFIG_MEASURES = ("config_theory_z", "config_golden")
SUITE_MEASURES = ("fraction_inside", "regime_agreement")
PERFORMANCE_MEASURES = (
    "wall_time_per_trial_s",
    "throughput_trials_per_s",
    "dispatch_overhead_s",
    "query_latency_ms",
)


class SuiteMetric(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: Literal["scientific", "performance"] = "scientific"
    measure: Literal[CONFIG_MEASURES + SUITE_MEASURES + PERFORMANCE_MEASURES]  # type: ignore[valid-type]
    theory: Literal["replica", "finite"] = Field(
        default="replica", description="which theory a config is judged against"
    )
    golden: dict[str, float] = Field(default_factory=dict, description="label → golden value")
    policy: MetricPolicy = Field(default_factory=MetricPolicy)


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    version: int = Field(ge=1)
    description: str = ""
    sweeps: list[SweepSpec] = Field(min_length=1)
    metrics: list[SuiteMetric] = Field(min_length=1)


@dataclass(frozen=True)
class Config:
    label: str
    sweep: str
    params: dict[str, Any]


def suites_dir(settings: Settings) -> Path:
    return Path(settings.benchmarks.suites_dir) if settings.benchmarks.suites_dir else REPO_SUITES


def load_suite(settings: Settings, name: str) -> Suite:
    """The suite ``name`` (404 when no such file, 422 when it does not validate)."""
    path = suites_dir(settings) / f"{name}.yaml"
    if "/" in name or not path.is_file():
        raise NotFound(f"no benchmark suite {name!r} in {suites_dir(settings)}")
    try:
        return Suite.model_validate(yaml.safe_load(path.read_text()))
    except ValidationError as exc:
        errors = [
            {"loc": ["suite", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()
        ]
        raise SpecRejected(errors) from exc


def list_suites(settings: Settings) -> list[str]:
    return sorted(path.stem for path in suites_dir(settings).glob("*.yaml"))


def params_key(params: dict[str, Any]) -> str:
    """A parameter set's canonical string, seed dropped."""
    return json.dumps({k: v for k, v in params.items() if k != "seed"}, sort_keys=True)


def suite_configs(suite: Suite, limits: LimitSettings) -> list[Config]:
    """Every config of the suite in spec order, labelled (see the module docstring)."""
    out: list[Config] = []
    for spec in suite.sweeps:
        seen: dict[str, dict[str, Any]] = {}
        for trial in expand_spec(spec, limits):
            params = {k: v for k, v in trial.params.items() if k != "seed"}
            seen.setdefault(params_key(params), params)
        sets = list(seen.values())
        varying = [k for k in sets[0] if len({json.dumps(p.get(k)) for p in sets}) > 1]
        for params in sets:
            tail = ",".join(f"{k}={params[k]}" for k in varying)
            label = f"{spec.name}/{tail}" if tail else spec.name
            out.append(Config(label, spec.name, params))
    return out
