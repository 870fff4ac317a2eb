"""Thin Ray adapters around the pure workload functions.

``execute_batch`` is the whole contract: frozen items in, a :class:`BatchOutput` out,
no database, no HTTP.  ``run_batch_remote`` is the same function as a Ray task.  Torch
is pinned to one thread per worker process: on small machines its OpenMP threads
spin-wait and stall when another process holds the other core (10–100× slowdowns), so
we parallelize across Ray workers instead.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from workers.envelope import envelope
from workers.workloads import WORKLOADS, BatchOutput, TrialItem

# Set before torch/numpy import in a fresh worker process.
THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}


def pin_threads() -> None:
    for name, value in THREAD_ENV.items():
        os.environ.setdefault(name, value)
    try:
        import torch

        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass


def execute_batch(
    workload: str, items: Sequence[TrialItem], theory_wanted: dict[int, str]
) -> BatchOutput:
    """Evaluate one batch of trials of one workload; stamp each record's envelope.

    An exception here means the *batch* failed (the dispatcher splits and retries);
    per-trial numerical trouble (divergence, NaN) comes back as a flagged record.
    """
    pin_threads()
    started = time.perf_counter()
    output = WORKLOADS[workload].run(items, theory_wanted)
    for record in output.records:
        record["envelope"] = envelope(record.get("device") or "cpu", record.get("dtype") or "")
        record["code_version"] = record["envelope"]["code_version"]
    output.wall_time_s = time.perf_counter() - started
    return output


def make_remote(num_gpus: float = 0.0):  # noqa: ANN201 - returns a Ray remote function
    """The Ray task for ``execute_batch``, asking for ``num_gpus`` when on CUDA."""
    import ray

    return ray.remote(num_cpus=1, num_gpus=num_gpus, max_retries=0)(execute_batch)
