"""Throughput of the nonlinear workloads and the saving from shared pretraining.

Three measurements (torch pinned to one thread per process, as in the Ray workers):

1. ``throughput``: samples per second (training examples through forward+backward, PT
   and FT together) for one trial of each workload at the test/example sizes, run
   in-process on ``--device``;
2. ``sharing``: a ``relu_finetune`` sweep of 20 fine-tuning configs (5 γ × 4 post-PT
   rescales) over one pretraining config, run trial by trial with and without the
   checkpoint store: how many pretrainings ran, and the wall-time ratio;
3. ``--sweep``: a small sweep of each workload through the real service path
   (dispatcher + Ray, a temporary SQLite file): trials/s and samples/s end to end.

    python benchmarks/bench_nets.py                      # 1 and 2 on CPU
    python benchmarks/bench_nets.py --device cuda --sweep  # all three on a GPU
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from workers.nets.data import write_tiny_cifar100  # noqa: E402
from workers.nets.trials import run_net_trial  # noqa: E402

TRAIN = {"optimizer": "sgd", "lr": 0.1}
SIZES: dict[str, dict[str, Any]] = {
    "relu_finetune": {
        **TRAIN,
        "D": 16,
        "width": 64,
        "n_pt": 256,
        "n_ft": 32,
        "n_test": 512,
        "pt_steps": 300,
        "steps": 200,
    },
    "transformer_modular_finetune": {
        "optimizer": "adamw",
        "lr": 0.01,
        "p": 23,
        "width": 32,
        "n_heads": 4,
        "n_ft": 150,
        "pt_steps": 300,
        "steps": 150,
    },
    "resnet_cifar_finetune": {
        **TRAIN,
        "lr": 0.05,
        "momentum": 0.9,
        "width": 4,
        "blocks_per_stage": 1,
        "n_ft": 8,
        "pt_steps": 30,
        "pt_batch_size": 64,
        "steps": 20,
    },
}
SHARING = {
    **TRAIN,
    "lr": 0.02,  # gradients of the first layer scale with ‖x‖² = D
    "D": 32,
    "width": 128,
    "n_pt": 2000,
    "n_ft": 32,
    "n_test": 512,
    "pt_steps": 400,
    "steps": 100,
}


def defaults(workload: str, params: dict[str, Any]) -> dict[str, Any]:
    from api_schemas.workloads import WORKLOAD_SCHEMAS

    model = WORKLOAD_SCHEMAS[workload].params_model
    return model.model_validate(params).model_dump(mode="json", exclude_none=True)


def throughput(device: str, cifar: str, repeats: int) -> list[tuple[str, float, float, float]]:
    rows = []
    for workload, params in SIZES.items():
        full = defaults(workload, params)
        execution = {"device": device, "amp": True, "time_limit_s": 600}
        context = {"cifar100_dir": cifar, "checkpoint_dir": None}
        run_net_trial(workload, full, 0, execution, context)  # warm-up (data, kernels)
        best = None
        for seed in range(repeats):
            started = time.perf_counter()
            record = run_net_trial(workload, full, seed, execution, context)
            wall = time.perf_counter() - started
            if record["stop_reason"] != "steps":
                raise RuntimeError(f"{workload} stopped early: {record['stop_reason']}")
            samples = record["metrics"]["samples_trained"]
            if best is None or wall < best[1]:
                best = (samples, wall)
        samples, wall = best
        rows.append((workload, samples, wall, samples / wall))
    return rows


def sharing(device: str) -> dict[str, float]:
    configs = [
        {"gamma_ft": gamma, "pt_rescale": rescale}
        for gamma in (0.0, 0.1, 0.3, 1.0, 3.0)
        for rescale in (0.25, 0.5, 1.0, 2.0)
    ]
    execution = {"device": device, "amp": True, "time_limit_s": 600}
    out: dict[str, float] = {}
    for label in ("without", "with"):
        with tempfile.TemporaryDirectory() as tmp:
            context = {"checkpoint_dir": tmp if label == "with" else None}
            started = time.perf_counter()
            pretrained = 0
            for config in configs:
                params = defaults("relu_finetune", {**SHARING, **config})
                record = run_net_trial("relu_finetune", params, 0, execution, context)
                if record["stop_reason"] != "steps":
                    raise RuntimeError(f"benchmark trial stopped early: {record['stop_reason']}")
                pretrained += int(record["metrics"]["pretrained_here"])
            out[f"{label}_s"] = time.perf_counter() - started
            out[f"{label}_pretrainings"] = pretrained
    out["configs"] = len(configs)
    out["speedup"] = out["without_s"] / out["with_s"]
    return out


def service_sweeps(device: str, cifar: str) -> list[tuple[str, int, float, float]]:
    """A small sweep of each workload through dispatcher + Ray (4 FT configs × 2 seeds)."""
    from api_schemas.spec import SweepSpec
    from service.dispatch import Dispatcher
    from service.runners import RayRunner
    from service.settings import CheckpointSettings, DataSettings, RaySettings, Settings
    from service.store.migrate import upgrade_to_head
    from service.store.models import Trial
    from service.store.session import make_engine, make_session_factory, session_scope
    from service.sweeps import submit_sweep

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite:///{tmp}/bench.db",
            data=DataSettings(cifar100_dir=cifar),
            checkpoints=CheckpointSettings(dir=f"{tmp}/checkpoints"),
        )
        upgrade_to_head(settings.database_url)
        engine = make_engine(settings.database_url)
        factory = make_session_factory(engine)
        runner = RayRunner(RaySettings(num_cpus=os.cpu_count() or 1))
        runner.start()
        try:
            for workload, params in SIZES.items():
                spec = SweepSpec.model_validate(
                    {
                        "name": f"bench-{workload}",
                        "workload": workload,
                        "params": params,
                        "axes": {"gamma_ft": [0.1, 1.0], "pt_rescale": [0.5, 1.0]},
                        "seeds": 2,
                        "execution": {
                            "device": device,
                            "num_gpus": 0.25 if device == "cuda" else 1,
                        },
                    }
                )
                with session_scope(factory) as session:
                    submit_sweep(session, spec, settings, "bench", None)
                started = time.perf_counter()
                Dispatcher(factory, settings, runner).run_until_idle(timeout=600)
                wall = time.perf_counter() - started
                with session_scope(factory) as session:
                    trials = session.query(Trial).filter(Trial.workload == workload).all()
                    samples = sum((t.metrics or {}).get("samples_trained", 0) for t in trials)
                    ok = sum(t.status == "succeeded" for t in trials)
                rows.append((workload, ok, ok / wall, samples / wall))
        finally:
            runner.shutdown()
            engine.dispose()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sweep", action="store_true", help="also run sweeps through Ray")
    parser.add_argument("--skip-sharing", action="store_true")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench_nets: --device cuda but torch sees no GPU", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    name = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu, 1 torch thread"
    with tempfile.TemporaryDirectory() as tmp:
        cifar = str(write_tiny_cifar100(Path(tmp) / "cifar", per_class_train=5).parent)
        print(f"device: {name}")
        print("\n## throughput, one trial in-process (PT + FT, best of repeats)")
        print(f"{'workload':<30} {'samples':>10} {'wall s':>8} {'samples/s':>11}")
        for workload, samples, wall, rate in throughput(args.device, cifar, args.repeats):
            print(f"{workload:<30} {samples:>10} {wall:>8.2f} {rate:>11,.0f}")
        if not args.skip_sharing:
            share = sharing(args.device)
            print(f"\n## shared pretraining: {share['configs']} FT configs over one PT config")
            print(f"{'':<22} {'pretrainings':>12} {'wall s':>8}")
            for label in ("without", "with"):
                print(
                    f"{label + ' checkpoint store':<22} "
                    f"{share[label + '_pretrainings']:>12.0f} {share[label + '_s']:>8.2f}"
                )
            print(f"saving: {share['speedup']:.1f}x less wall time")
        if args.sweep:
            print("\n## sweeps through dispatcher + Ray (8 trials each)")
            print(f"{'workload':<30} {'ok':>4} {'trials/s':>9} {'samples/s':>11}")
            for workload, ok, trial_rate, sample_rate in service_sweeps(args.device, cifar):
                print(f"{workload:<30} {ok:>4} {trial_rate:>9.2f} {sample_rate:>11,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
