"""The nonlinear workloads on a CUDA GPU (bf16 autocast); skipped cleanly without one."""

from __future__ import annotations

import math

import pytest
import torch

from api_schemas.workloads import WORKLOAD_SCHEMAS
from workers.nets.trials import run_net_trial

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"),
]

TINY = {
    "relu_finetune": {"D": 8, "width": 16, "n_pt": 64, "n_ft": 16, "steps": 20, "pt_steps": 20},
    "transformer_modular_finetune": {
        "p": 7,
        "width": 8,
        "n_heads": 2,
        "n_ft": 10,
        "steps": 20,
        "pt_steps": 20,
    },
    "resnet_cifar_finetune": {
        "width": 2,
        "blocks_per_stage": 1,
        "n_ft": 4,
        "steps": 3,
        "pt_steps": 3,
        "pt_batch_size": 32,
    },
}


@pytest.mark.parametrize("workload", list(TINY))
def test_runs_on_cuda_with_bf16_autocast(workload: str, tiny_cifar: str) -> None:
    model = WORKLOAD_SCHEMAS[workload].params_model
    params = model.model_validate(TINY[workload]).model_dump(mode="json", exclude_none=True)
    execution = {"device": "cuda", "amp": True, "time_limit_s": 120}
    context = {"cifar100_dir": tiny_cifar}
    first = run_net_trial(workload, params, 0, execution, context)
    again = run_net_trial(workload, params, 0, execution, context)
    assert first["device"] == "cuda" and first["dtype"] == "bfloat16-autocast"
    assert first["stop_reason"] == "steps" and math.isfinite(first["gen_error_sim"])
    assert again["gen_error_sim"] == pytest.approx(first["gen_error_sim"], rel=1e-2)
