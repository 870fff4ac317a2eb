"""Tiny configurations of the nonlinear workloads (seconds on one CPU core)."""

from __future__ import annotations

import pytest
import torch

from workers.nets.training import OptimConfig

torch.set_num_threads(1)

QUICK = OptimConfig("sgd", lr=0.1, steps=30)


@pytest.fixture(scope="session")
def tiny_cifar(tmp_path_factory) -> str:
    from workers.nets.data import write_tiny_cifar100

    root = tmp_path_factory.mktemp("cifar")
    write_tiny_cifar100(root, per_class_train=4, per_class_test=2)
    return str(root)
