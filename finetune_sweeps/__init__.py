"""finetune-sweeps: the Python client of the sweep service.

    from finetune_sweeps import Client

    client = Client()                                     # SWEEPS_URL / SWEEPS_API_KEY
    sweep = client.submit("examples/quickstart.yaml", wait=True, progress=True)
    frame = client.results(sweep_id=sweep.id).to_pandas()

Imports httpx and ``api_schemas`` only (no Ray, torch or SQLAlchemy); pandas and pyarrow
are imported when ``to_pandas`` / ``to_arrow`` are called.
"""

__version__ = "0.1.0"

from finetune_sweeps.aio import AsyncClient  # noqa: E402
from finetune_sweeps.client import Client  # noqa: E402
from finetune_sweeps.errors import (  # noqa: E402
    ApiError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    FieldError,
    NotFound,
    ServerUnavailable,
    SpecFileError,
    SweepsError,
    ValidationFailed,
    WaitTimeout,
)
from finetune_sweeps.progress import PlainProgress  # noqa: E402
from finetune_sweeps.results import ResultSet  # noqa: E402
from finetune_sweeps.transport import RetryPolicy  # noqa: E402

__all__ = [
    "ApiError",
    "AsyncClient",
    "BadRequest",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "FieldError",
    "NotFound",
    "PlainProgress",
    "ResultSet",
    "RetryPolicy",
    "ServerUnavailable",
    "SpecFileError",
    "SweepsError",
    "ValidationFailed",
    "WaitTimeout",
    "__version__",
]
