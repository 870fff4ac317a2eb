"""The CUDA path of the simulator: same results as the CPU within float64 rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workers.config import InitParams, TaskStats
from workers.dln.evaluate import FinetuneTrial, TrainOptions, evaluate_finetune_batch
from workers.dln.simulate import GDOptions

HAS_CUDA = torch.cuda.is_available()


@pytest.mark.skipif(HAS_CUDA, reason="checks the error raised when CUDA is absent")
def test_cuda_request_without_cuda_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="cuda"):
        GDOptions(device="cuda")
    with pytest.raises(ValueError, match="cuda"):
        TrainOptions(device="cuda:0")


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="torch.cuda.is_available() is False: no CUDA GPU")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cuda_batch_matches_cpu(dtype: str) -> None:
    task = TaskStats(rho_pt=0.1, rho_ft=0.1, omega=0.5)
    trials = [
        FinetuneTrial(task=task, init=InitParams(c, lam, g), D=100, alpha=0.5, seed=seed)
        for c, lam, g in [(1e-2, -0.5, 0.3), (1e-3, 0.0, 0.0), (0.3, 0.5, 1.0)]
        for seed in (0, 1)
    ]
    results = {
        device: evaluate_finetune_batch(
            trials, TrainOptions(lr=0.3, max_steps=3000, dtype=dtype, device=device)
        )
        for device in ("cpu", "cuda")
    }
    tol = 1e-8 if dtype == "float64" else 1e-3
    for cpu, gpu in zip(results["cpu"], results["cuda"], strict=True):
        assert gpu.device == "cuda" and gpu.stop_reason == cpu.stop_reason
        np.testing.assert_allclose(gpu.beta_sim, cpu.beta_sim, rtol=0, atol=tol)
