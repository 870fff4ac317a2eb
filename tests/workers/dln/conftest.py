"""Make ``workers`` resolve to the source package, not the ``tests/workers`` test folder.

Same fix as ``tests/workers/theory/conftest.py`` (see there): the repo root goes first on
sys.path and a namespace-package ``workers`` imported before is forgotten.  Torch and
BLAS run on one thread: the test machine is small and shared.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import torch  # noqa: E402

torch.set_num_threads(1)

_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
_loaded = sys.modules.get("workers")
if _loaded is not None and getattr(_loaded, "__file__", None) is None:
    for _name in [m for m in sys.modules if m == "workers" or m.startswith("workers.")]:
        del sys.modules[_name]
