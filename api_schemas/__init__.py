"""Wire schemas shared by the server, the CLI and clients (pydantic + stdlib only).

Names are imported lazily (PEP 562), so ``import api_schemas.statuses`` or
``api_schemas.result_columns`` (standard library only) does not pull in pydantic: the
records that cross into Ray workers use those two.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SweepSpec": "api_schemas.spec",
    "ErrorBody": "api_schemas.wire",
    "Health": "api_schemas.wire",
    "ResultPage": "api_schemas.wire",
    "ResultRead": "api_schemas.wire",
    "Summary": "api_schemas.wire",
    "SummaryRow": "api_schemas.wire",
    "SweepPage": "api_schemas.wire",
    "SweepPlan": "api_schemas.wire",
    "SweepRead": "api_schemas.wire",
    "TrialPage": "api_schemas.wire",
    "TrialRead": "api_schemas.wire",
    "TYPED_PARAMETERS": "api_schemas.workloads",
    "WORKLOAD_SCHEMAS": "api_schemas.workloads",
    "TrialStatus": "api_schemas.statuses",
    "SweepStatus": "api_schemas.statuses",
    "RESULT_COLUMNS": "api_schemas.result_columns",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'api_schemas' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
