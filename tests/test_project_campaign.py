"""benchmarks/project_campaign.py --holdout: the two step models asked for an α they
were not fitted on.  Synthetic medians whose steps follow ``b α^1.5`` exactly: the power
law recovers the held-out α, the plan's steps ∝ n (fitted through the smaller α) falls
short by a computable factor."""

from __future__ import annotations

import pytest

from benchmarks.project_campaign import fit, holdout

GROWING = {0.01: 1e5 * 0.01**1.5, 0.05: 1e5 * 0.05**1.5, 0.1: 1e5 * 0.1**1.5, 0.2: 1e5 * 0.2**1.5}


def test_fit_recovers_a_power_law() -> None:
    b, q = fit(GROWING)
    assert b == pytest.approx(1e5) and q == pytest.approx(1.5)


def test_holdout_reports_both_models_on_the_largest_alpha(capsys) -> None:
    flat = {0.01: 7000.0, 0.05: 7000.0, 0.1: 7000.0, 0.2: 7000.0}  # regime I's shape
    holdout({(0.5, 1e-3, 0.0, 0.0): GROWING, (0.5, 1e-3, -1.0, 1e-6): flat})
    out = capsys.readouterr().out
    known = [a for a in GROWING if a != 0.2]
    linear_growing = sum(GROWING[a] for a in known) / sum(known) * 0.2 / GROWING[0.2]
    linear_flat = 7000.0 * 3 / sum(known) * 0.2 / 7000.0  # the slope of small α: too steep
    lines = [line for line in out.splitlines() if line.startswith("- ")]
    linear_total = (linear_growing * GROWING[0.2] + linear_flat * 7000.0) / (GROWING[0.2] + 7000)
    assert lines[0].startswith(
        f"- steps ∝ n (the plan, baseline): Σ predicted / Σ measured {linear_total:.2f};"
    )
    assert (
        f"range {min(linear_growing, linear_flat):.2f}–{max(linear_growing, linear_flat):.2f}"
        in lines[0]
    )
    # the power law is exact on both (q = 1.5 and q = 0)
    assert lines[1] == (
        "- power law b α^q: Σ predicted / Σ measured 1.00; per setting median 1.00, "
        "range 1.00–1.00 (2 settings)"
    )
