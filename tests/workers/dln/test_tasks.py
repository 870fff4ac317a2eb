"""Tests of the finite-D task sampler (THEORY.md §1, "Tasks")."""

from __future__ import annotations

import numpy as np
import pytest

from workers.config import TaskStats
from workers.dln.tasks import GROUP_NAMES, make_dataset

TASK = TaskStats(rho_pt=0.1, rho_ft=0.05, omega=0.5)


def test_exact_support_sizes_and_teacher_values() -> None:
    data = make_dataset(TASK, D=1000, alpha=0.3, seed=1)
    sizes = TASK.group_sizes(1000)
    assert tuple(np.bincount(data.group, minlength=4)) == sizes
    assert np.count_nonzero(data.beta_pt_star) == round(0.1 * 1000)
    assert np.count_nonzero(data.beta_ft_star) == sizes[0] + sizes[1]
    shared = data.group == GROUP_NAMES.index("shared")
    new = data.group == GROUP_NAMES.index("new")
    assert np.all(data.beta_pt_star[shared] == TASK.a_pt)
    assert np.all(data.beta_pt_star[new] == 0.0)
    assert np.all(data.beta_ft_star[data.group >= 2] == 0.0)


def test_shapes_inputs_and_labels() -> None:
    data = make_dataset(
        TASK, D=200, alpha=0.25, seed=0, n_test=300, with_pt_data=True, alpha_pt=0.5
    )
    assert data.X_ft.shape == (50, 200) and data.y_ft.shape == (50,)
    assert data.X_test.shape == (300, 200)
    assert data.X_pt is not None and data.X_pt.shape == (100, 200)
    assert data.X_ft.dtype == np.float64
    np.testing.assert_allclose(data.y_ft, data.X_ft @ data.beta_ft_star)
    np.testing.assert_allclose(data.y_pt, data.X_pt @ data.beta_pt_star)
    # x ~ N(0, I/D): squared row norms concentrate at 1.
    assert abs(np.mean(np.sum(data.X_test**2, axis=1)) - 1.0) < 0.05
    assert make_dataset(TASK, D=10, alpha=1e-6, seed=0).n_ft == 1


def test_determinism_and_independent_streams() -> None:
    a = make_dataset(TASK, D=300, alpha=0.3, seed=7)
    b = make_dataset(TASK, D=300, alpha=0.3, seed=7, n_test=10, with_pt_data=True)
    c = make_dataset(TASK, D=300, alpha=0.3, seed=8)
    np.testing.assert_array_equal(a.X_ft, b.X_ft)
    np.testing.assert_array_equal(a.beta_ft_star, b.beta_ft_star)
    assert not np.array_equal(a.X_ft, c.X_ft)


def test_default_norm_has_unit_second_moment() -> None:
    task = TaskStats(rho_pt=0.3, rho_ft=0.2, omega=0.5)
    data = make_dataset(task, D=100_000, alpha=1e-4, seed=3, n_test=1)
    assert abs(np.mean(data.beta_ft_star**2) - 1.0) < 0.05


def test_label_noise_only_on_ft_train() -> None:
    task = TaskStats(rho_pt=0.1, rho_ft=0.1, omega=0.5, sigma0=0.5)
    data = make_dataset(task, D=400, alpha=0.5, seed=0)
    noise = data.y_ft - data.X_ft @ data.beta_ft_star
    assert 0.35 < np.std(noise) < 0.65
    np.testing.assert_allclose(data.y_test, data.X_test @ data.beta_ft_star)


def test_infeasible_stats_raise() -> None:
    with pytest.raises(ValueError, match="infeasible"):
        TaskStats(rho_pt=0.05, rho_ft=0.2, omega=1.0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"D": 0}, "D"),
        ({"D": 2.5}, "D"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": -1.0}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"alpha_pt": 0.0}, "alpha_pt"),
        ({"n_test": 0}, "n_test"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs: dict[str, float], name: str) -> None:
    args = {"D": 100, "alpha": 0.3, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=rf"^{name} "):
        make_dataset(TASK, **args)


def test_exact_teacher_norm_fixes_each_groups_second_moment() -> None:
    """teacher_norm="exact": every Gaussian group's draws have empirical second moment
    exactly ft_mean² + ft_std² (here 1/rho_ft), the sampled default does not; the
    supports and PT teacher are the same draw."""
    from workers.config import TaskStats
    from workers.dln.tasks import make_dataset

    sampled = TaskStats(rho_pt=0.1, rho_ft=0.1, omega=0.5)
    exact = TaskStats(rho_pt=0.1, rho_ft=0.1, omega=0.5, teacher_norm="exact")
    a = make_dataset(sampled, D=1000, alpha=0.2, seed=3)
    b = make_dataset(exact, D=1000, alpha=0.2, seed=3)
    np.testing.assert_array_equal(a.group, b.group)
    np.testing.assert_array_equal(a.beta_pt_star, b.beta_pt_star)
    for index in (0, 1):  # shared and new: N(0, 1/rho_ft)
        members = b.group == index
        assert np.mean(b.beta_ft_star[members] ** 2) == pytest.approx(10.0, rel=1e-12)
        assert np.mean(a.beta_ft_star[members] ** 2) != pytest.approx(10.0, rel=1e-3)
    with pytest.raises(ValueError, match="teacher_norm"):
        TaskStats(rho_pt=0.1, rho_ft=0.1, omega=0.5, teacher_norm="bogus")
