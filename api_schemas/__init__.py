"""Wire schemas shared by the server, the CLI and clients (pydantic + stdlib only)."""

from api_schemas.spec import SweepSpec
from api_schemas.wire import (
    ErrorBody,
    Health,
    ResultPage,
    ResultRead,
    Summary,
    SummaryRow,
    SweepPage,
    SweepPlan,
    SweepRead,
    TrialPage,
    TrialRead,
)
from api_schemas.workloads import TYPED_PARAMETERS, WORKLOAD_SCHEMAS

__all__ = [
    "TYPED_PARAMETERS",
    "WORKLOAD_SCHEMAS",
    "ErrorBody",
    "Health",
    "ResultPage",
    "ResultRead",
    "Summary",
    "SummaryRow",
    "SweepPage",
    "SweepPlan",
    "SweepRead",
    "SweepSpec",
    "TrialPage",
    "TrialRead",
]
