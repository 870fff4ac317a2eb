"""Spec expansion: axes, zips, Sobol, seeds, keys and the errors that point at fields."""

from __future__ import annotations

import math

import pytest

from api_schemas.spec import SweepSpec
from service.errors import SpecRejected
from service.expand import count_trials, expand_spec
from service.settings import LimitSettings

BASE = {
    "name": "t",
    "workload": "dln_finetune",
    "params": {"D": 50, "alpha": 0.5, "rho_pt": 0.1, "rho_ft": 0.1, "omega": 0.5, "c_pt": 1e-2},
}


def spec(**overrides) -> SweepSpec:
    data = {**BASE, **overrides}
    return SweepSpec.model_validate(data)


def test_cartesian_product_with_seeds_and_unique_keys() -> None:
    s = spec(axes={"lambda_pt": [-0.5, 0.0, 0.5], "gamma_ft": [0.1, 1.0]}, seeds=3)
    trials = expand_spec(s, LimitSettings())
    assert len(trials) == count_trials(s) == 18
    assert len({t.key for t in trials}) == 18
    assert {t.seed for t in trials} == {0, 1, 2}
    # Same seed, different init params: one dataset group; different seeds: different groups.
    groups = {(t.seed, t.group_key) for t in trials}
    assert len({g for _, g in groups}) == 3


def test_keys_are_content_addressed_and_stable() -> None:
    a = expand_spec(
        spec(params={**BASE["params"], "lambda_pt": 0.0, "gamma_ft": 1.0}), LimitSettings()
    )
    b = expand_spec(
        spec(name="other", params={**BASE["params"], "gamma_ft": 1.0}, axes={"lambda_pt": [0]}),
        LimitSettings(),
    )
    assert [t.key for t in a] == [t.key for t in b]  # name and int/float spelling don't matter
    c = expand_spec(
        spec(params={**BASE["params"], "lambda_pt": 0.0, "gamma_ft": 1.0}, execution={"lr": 0.1}),
        LimitSettings(),
    )
    assert c[0].key != a[0].key  # execution options that change numbers change the key


def test_generated_axes_zip_and_sobol() -> None:
    fixed = {k: v for k, v in BASE["params"].items() if k not in ("c_pt", "alpha", "D")}
    s = spec(
        params={**fixed, "gamma_ft": 0.5},
        axes={
            "lambda_pt": {"kind": "linspace", "start": -0.5, "stop": 0.5, "num": 3},
            "c_pt": {"kind": "logspace", "start": 1e-3, "stop": 1e-1, "num": 3},
        },
        zip=[{"alpha": [0.2, 0.4], "D": [40, 60]}],
    )
    trials = expand_spec(s, LimitSettings())
    assert len(trials) == 3 * 3 * 2
    assert sorted({t.params["c_pt"] for t in trials}) == pytest.approx([1e-3, 1e-2, 1e-1])
    assert {(t.params["alpha"], t.params["D"]) for t in trials} == {(0.2, 40), (0.4, 60)}

    sobol = SweepSpec.model_validate(
        {
            **BASE,
            "params": {k: v for k, v in BASE["params"].items() if k != "c_pt"},
            "sobol": {
                "count": 8,
                "seed": 1,
                "params": {
                    "c_pt": {"low": 1e-4, "high": 1.0, "log": True},
                    "lambda_pt": {"low": -0.9, "high": 0.9},
                    "gamma_ft": {"low": 0.0, "high": 2.0},
                },
            },
        }
    )
    points = expand_spec(sobol, LimitSettings())
    assert len(points) == 8
    assert all(1e-4 <= t.params["c_pt"] <= 1.0 for t in points)
    logs = sorted(math.log10(t.params["c_pt"]) for t in points)
    assert logs[0] < -2.5 and logs[-1] > -1.5  # spread over the decades, not clumped


def test_random_axes_are_reproducible() -> None:
    axis = {"kind": "loguniform", "low": 1e-4, "high": 1.0, "count": 5, "seed": 7}
    fixed = {k: v for k, v in BASE["params"].items() if k != "c_pt"}
    data = {**BASE, "params": {**fixed, "lambda_pt": 0, "gamma_ft": 1}, "axes": {"c_pt": axis}}
    one = expand_spec(SweepSpec.model_validate(data), LimitSettings())
    two = expand_spec(SweepSpec.model_validate(data), LimitSettings())
    assert [t.key for t in one] == [t.key for t in two]
    assert len({t.params["c_pt"] for t in one}) == 5


def test_bad_value_points_at_the_axis() -> None:
    s = spec(params={**BASE["params"], "gamma_ft": 1.0}, axes={"lambda_pt": [0.0, 1.5]})
    with pytest.raises(SpecRejected) as err:
        expand_spec(s, LimitSettings())
    assert err.value.detail[0]["loc"] == ["body", "axes", "lambda_pt"]


def test_infeasible_statistics_named() -> None:
    s = spec(params={**BASE["params"], "lambda_pt": 0, "gamma_ft": 1, "omega": 1.0, "rho_ft": 0.5})
    with pytest.raises(SpecRejected) as err:
        expand_spec(s, LimitSettings())
    assert "omega*rho_ft <= rho_pt" in err.value.detail[0]["msg"]


def test_missing_parameter_is_named() -> None:
    s = spec(axes={"lambda_pt": [0.0]})
    with pytest.raises(SpecRejected) as err:
        expand_spec(s, LimitSettings())
    assert ["body", "params", "gamma_ft"] in [e["loc"] for e in err.value.detail]


def test_limits() -> None:
    s = spec(
        params={**BASE["params"], "gamma_ft": 1.0},
        axes={"lambda_pt": {"kind": "linspace", "start": -0.5, "stop": 0.5, "num": 100}},
        seeds=20,
    )
    with pytest.raises(SpecRejected, match="2000 trials"):
        expand_spec(s, LimitSettings(max_trials=1000))
    big = spec(params={**BASE["params"], "lambda_pt": 0, "gamma_ft": 1, "D": 5000, "alpha": 1})
    with pytest.raises(SpecRejected, match="D·n"):
        expand_spec(big, LimitSettings(max_d_times_n=1_000_000))
    with pytest.raises(SpecRejected, match="D=5000"):
        expand_spec(big, LimitSettings(max_dimension=1000))


@pytest.mark.parametrize(
    "bad, loc, fragment",
    [
        ({"workload": "nope"}, ("workload",), "Input should be 'dln_finetune'"),
        ({"axes": {"c_pt": [1.0]}}, ("axes", "c_pt"), "both params and axes"),
        ({"axes": {"bogus": [1.0]}}, ("axes", "bogus"), "unknown parameter 'bogus'"),
        ({"axes": {"lambda_pt": []}}, ("axes", "lambda_pt"), "at least one value"),
        ({"zip": [{"alpha": [0.1, 0.2], "D": [10]}]}, ("zip", 0, "D"), "equally long"),
        ({"zip": [{}]}, ("zip", 0), "at least 1 item"),
        ({"seeds": [1, 1]}, ("seeds", 1), "distinct"),
        ({"seeds": [0, 2**31]}, ("seeds", 1), "[0, 2147483647]"),
        ({"seeds": 0}, ("seeds",), "[1, 10000]"),
        ({"seeds": list(range(10_001))}, ("seeds",), "at most 10000 seeds"),
        ({"execution": {"lr": -1}}, ("execution", "lr"), "greater than 0"),
        (
            {"axes": {"lambda_pt": {"kind": "uniform", "low": 1, "high": 0, "count": 2}}},
            ("axes", "lambda_pt", "high"),
            "low must be < high",
        ),
    ],
)
def test_spec_shape_errors_point_at_the_field(bad: dict, loc: tuple, fragment: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as err:
        SweepSpec.model_validate({**BASE, **bad})
    [error] = err.value.errors()
    assert error["loc"] == loc and fragment in error["msg"], error


def test_expansion_errors_point_at_the_field() -> None:
    feasible = {**BASE["params"], "lambda_pt": 0, "gamma_ft": 1}
    fixed = {k: v for k, v in feasible.items() if k != "omega"}
    infeasible = spec(params={**fixed, "rho_ft": 0.5}, axes={"omega": [0.1, 1.0]})
    with pytest.raises(SpecRejected) as err:
        expand_spec(infeasible, LimitSettings())
    assert err.value.detail[0]["loc"] == ["body", "axes", "omega"]
    assert "omega*rho_ft <= rho_pt" in err.value.detail[0]["msg"]
    fixed_only = spec(params={**feasible, "omega": 1.0, "rho_ft": 0.5})
    with pytest.raises(SpecRejected) as err:
        expand_spec(fixed_only, LimitSettings())
    assert err.value.detail[0]["loc"] == ["body", "params", "omega"]
    many = spec(
        params={k: v for k, v in feasible.items() if k != "lambda_pt"},
        axes={"lambda_pt": {"kind": "linspace", "start": -0.5, "stop": 0.5, "num": 30}},
        seeds=40,
    )
    with pytest.raises(SpecRejected) as err:
        expand_spec(many, LimitSettings(max_trials=1000))
    assert err.value.detail == [
        {
            "loc": ["body", "seeds"],
            "msg": "sweep expands to 1200 trials; the limit is 1000 (SWEEPS_LIMITS__MAX_TRIALS)",
            "type": "limit_exceeded",
        }
    ]
