"""Content-addressed pretraining checkpoints (with their lock) and the CIFAR-100 format."""

from __future__ import annotations

import pickle
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from workers.nets.checkpoints import CheckpointStore
from workers.nets.data import cifar100_problem, load_cifar100, write_tiny_cifar100
from workers.nets.pipeline import pretrain_key, run_finetune
from workers.nets.relu_mlp import ReluConfig, ReluProblem

from .conftest import QUICK

CONFIG = ReluConfig(D=8, width=16, n_pt=64, n_ft=16, n_test=64)


def test_trials_differing_in_finetuning_knobs_share_one_pretraining(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    first = ReluProblem(CONFIG, 0, QUICK, QUICK)
    other_ft = ReluProblem(
        ReluConfig(**{**CONFIG.__dict__, "gamma_ft": 0.1, "pt_rescale": 0.5, "n_ft": 8}),
        0,
        QUICK,
        QUICK,
    )
    other_pt = ReluProblem(ReluConfig(**{**CONFIG.__dict__, "lambda_pt": -0.5}), 0, QUICK, QUICK)
    assert pretrain_key(first) == pretrain_key(other_ft) != pretrain_key(other_pt)
    assert pretrain_key(first) != pretrain_key(ReluProblem(CONFIG, 1, QUICK, QUICK))
    a = run_finetune(first, store=store, time_limit_s=None)
    b = run_finetune(other_ft, store=store, time_limit_s=None)
    assert a["pretrained_here"] and not b["pretrained_here"]
    assert a["pretrain"] == b["pretrain"]
    assert store.path(pretrain_key(first)).is_file()
    # Reusing the checkpoint gives the same numbers as pretraining again.
    fresh = run_finetune(ReluProblem(CONFIG, 0, QUICK, QUICK), store=None, time_limit_s=None)
    again = run_finetune(ReluProblem(CONFIG, 0, QUICK, QUICK), store=store, time_limit_s=None)
    assert fresh["test_loss"] == pytest.approx(again["test_loss"], rel=1e-6)


def test_concurrent_requests_build_once_under_the_lock(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    builds, waits, results = [], [], []

    def build():
        builds.append(1)
        time.sleep(0.3)
        return {"state": {"w": torch.ones(2)}, "meta": {"ok": True}}, True

    def worker() -> None:
        results.append(store.get_or_create("ab" * 32, build, on_wait=lambda: waits.append(1)))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1 and sorted(built for _, built in results) == [False, False, True]
    assert all(torch.equal(payload["state"]["w"], torch.ones(2)) for payload, _ in results)
    assert len(waits) >= 1


def test_incomplete_pretraining_is_not_stored(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    payload, built = store.get_or_create("cd" * 32, lambda: ({"meta": {}}, False))
    assert built and store.load("cd" * 32) is None


def test_tiny_cifar_round_trip_in_the_python_pickle_format(tmp_path: Path) -> None:
    target = write_tiny_cifar100(tmp_path, per_class_train=3, per_class_test=1, seed=1)
    assert target.name == "cifar-100-python"
    with (target / "train").open("rb") as stream:
        raw = pickle.load(stream, encoding="bytes")
    assert set(raw) == {b"data", b"fine_labels", b"coarse_labels", b"filenames", b"batch_label"}
    assert raw[b"data"].dtype == np.uint8 and raw[b"data"].shape == (300, 3072)
    data = load_cifar100(tmp_path)  # the parent directory works too
    assert data.x_train.shape == (300, 3, 32, 32) and data.x_test.shape == (100, 3, 32, 32)
    assert np.array_equal(data.x_train.reshape(300, -1), raw[b"data"])
    assert data.y_train.tolist() == raw[b"fine_labels"]
    assert data.label_names[:2] == ("class_00", "class_01")
    assert load_cifar100(target).y_test.tolist() == data.y_test.tolist()


def test_missing_dataset_is_explained(tmp_path: Path) -> None:
    assert "no CIFAR-100 directory is configured" in cifar100_problem(None)
    assert "does not exist" in cifar100_problem(str(tmp_path / "nope"))
    assert "train, test, meta" in cifar100_problem(str(tmp_path))
    write_tiny_cifar100(tmp_path, per_class_train=1, per_class_test=1)
    assert cifar100_problem(str(tmp_path)) is None


def test_nets_package_is_pure() -> None:
    """No Ray, database or web code in workers/nets (DESIGN.md: math is pure)."""
    import ast

    forbidden = {"ray", "sqlalchemy", "fastapi", "service", "httpx", "starlette", "alembic"}
    root = Path(__file__).resolve().parents[3] / "workers" / "nets"
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        assert not names & forbidden, (path, names & forbidden)
