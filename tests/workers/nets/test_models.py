"""The three networks: shapes, seeded determinism, the init knobs, the task splits."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from workers.nets.common import empirical_regime, layer_scales
from workers.nets.pipeline import run_finetune
from workers.nets.relu_mlp import ReluConfig, ReluProblem, make_teachers
from workers.nets.resnet_cifar import CifarConfig, CifarProblem
from workers.nets.transformer_modadd import ModularConfig, ModularProblem

from .conftest import QUICK

RELU = ReluConfig(D=10, width=32, depth=2, n_pt=64, n_ft=16, n_test=64)
MODULAR = ModularConfig(p=7, width=8, n_heads=2, n_ft=10, n_test=30)


def test_layer_scales_follow_the_lambda_convention() -> None:
    early, late = layer_scales(1.0, 0.0)
    assert early == late == 1.0
    early, late = layer_scales(4.0, 0.6)
    assert early / late == pytest.approx(math.sqrt(1.6 / 0.4))
    assert early * late == pytest.approx(4.0 * math.sqrt(1 - 0.36))
    with pytest.raises(ValueError):
        layer_scales(1.0, -1.0)


def test_relu_knobs_scale_the_init_as_documented() -> None:
    base = ReluProblem(RELU, 0, QUICK, QUICK).build_pt_model()
    scaled = ReluProblem(replace(RELU, c_pt=4.0, lambda_pt=0.6), 0, QUICK, QUICK).build_pt_model()
    early, late = layer_scales(4.0, 0.6)
    for index in range(2):
        ratio = scaled.hidden[index].weight / base.hidden[index].weight
        assert torch.allclose(ratio, torch.full_like(ratio, early))
    assert torch.allclose(scaled.head.weight, base.head.weight * late)
    assert base(torch.randn(5, 10)).shape == (5,)


def test_relu_finetune_start_rescales_and_reinits_the_head() -> None:
    problem = ReluProblem(replace(RELU, pt_rescale=0.5, gamma_ft=0.0), 0, QUICK, QUICK)
    pt = problem.build_pt_model()
    ft = problem.build_ft_model(pt.state_dict())
    assert torch.allclose(ft.hidden[0].weight, 0.5 * pt.hidden[0].weight)
    assert torch.count_nonzero(ft.head.weight) == 0


@pytest.mark.parametrize("task", ["subset", "correlated", "new"])
def test_relu_teachers(task: str) -> None:
    config = replace(RELU, k_pt=4, k_ft=2, ft_task=task, q=0.3)
    u_pt, a_pt, u_ft, a_ft = make_teachers(config, 1)
    assert u_pt.shape == (4, 10) and u_ft.shape == (2, 10)
    assert torch.allclose(u_ft.norm(dim=1), torch.ones(2))
    overlap = (u_ft * u_pt[:2]).sum(1)
    if task == "subset":
        assert torch.allclose(overlap, torch.ones(2))
    elif task == "correlated":
        assert torch.allclose(overlap, torch.full((2,), 0.3), atol=1e-5)
    assert set(a_pt.tolist()) <= {-1.0, 1.0}


def test_relu_trial_is_reproducible_by_seed() -> None:
    first = run_finetune(ReluProblem(RELU, 3, QUICK, QUICK), store=None, time_limit_s=None)
    again = run_finetune(ReluProblem(RELU, 3, QUICK, QUICK), store=None, time_limit_s=None)
    other = run_finetune(ReluProblem(RELU, 4, QUICK, QUICK), store=None, time_limit_s=None)
    assert first["test_loss"] == again["test_loss"]
    assert first["weight_change"] == again["weight_change"]
    assert first["test_loss"] != other["test_loss"]
    assert set(first["weight_change"]) == {"layer1", "layer2", "head"}
    assert first["regime"] in {"I", "II", "III", "IV"}
    assert 1.0 <= first["l_order"] <= 2.0 and -1.0 <= first["pd"] <= 0.0
    assert 0 <= first["teacher_coverage_pt"] <= 1 and first["unit_alignment_pt"] <= 1


def test_transformer_shapes_splits_and_group_scales() -> None:
    problem = ModularProblem(MODULAR, 0, QUICK, QUICK)
    model = problem.build_pt_model()
    assert model(problem.x_ft).shape == (10, 7)
    assert len(problem.y_pt) == 49 and len(problem.y_test) == 30
    assert torch.equal(problem.y_ft, (problem.x_ft[:, 0] - problem.x_ft[:, 1]) % 7)
    scaled = ModularProblem(replace(MODULAR, scale_mlp=3.0), 0, QUICK, QUICK).build_pt_model()
    fc = scaled.blocks[0].fc1.weight / model.blocks[0].fc1.weight
    assert torch.allclose(fc, torch.full_like(fc, 3.0))
    assert torch.equal(scaled.tok.weight, model.tok.weight)
    held = ModularProblem(replace(MODULAR, ft_split="heldout"), 0, QUICK, QUICK)
    assert int(held.x_pt[:, 0].max()) < int(held.x_ft[:, 0].min())


def test_transformer_trial_reports_accuracy_and_group_changes() -> None:
    metrics = run_finetune(ModularProblem(MODULAR, 0, QUICK, QUICK), store=None, time_limit_s=None)
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["test_loss"] > 0
    assert {"embed_attn", "mlp", "head"} <= set(metrics["weight_change"])


def test_resnet_shapes_and_binary_finetuning(tiny_cifar: str) -> None:
    config = CifarConfig(data_dir=tiny_cifar, width=2, blocks_per_stage=1, n_ft=4)
    optim = replace(QUICK, steps=3, batch_size=32)
    problem = CifarProblem(config, 0, optim, optim)
    assert problem.n_pt_classes == 98 and len(problem.y_pt) == 98 * 4
    assert sorted(problem.y_ft.tolist()) == [0, 0, 1, 1] and len(problem.y_test) == 4
    model = problem.build_pt_model()
    assert model(problem.x_ft).shape == (4, 98)
    metrics = run_finetune(problem, store=None, time_limit_s=None)
    assert metrics["stop_reason"] == "steps" and 0 <= metrics["test_accuracy"] <= 1
    assert {"stem", "stage1", "stage4", "head"} <= set(metrics["weight_change"])


def test_resnet_rejects_more_finetuning_images_than_exist(tiny_cifar: str) -> None:
    config = CifarConfig(data_dir=tiny_cifar, width=2, blocks_per_stage=1, n_ft=20)
    with pytest.raises(ValueError, match="n_ft=20 needs 10 training images"):
        CifarProblem(config, 0, QUICK, QUICK)


def test_empirical_regime_corners() -> None:
    assert empirical_regime(10.0, 10.0, 0.0).label == "I"  # FT rewrites what PT learned
    assert empirical_regime(0.001, 10.0, 1.0).label == "II"  # lazy FT on learned features
    assert empirical_regime(0.001, 0.0001, 1.0).label == "III"  # PT itself was lazy
    assert empirical_regime(0.1, 1.0, 0.7).label == "IV"
    assert empirical_regime(None, 1.0, 1.0) is None
