"""Serving the page: ``/`` (the single page), ``/static/*`` (its assets) and
``/ui/config.json`` (the column lists the page builds its filters and sort keys from, so
they come from the one result-column definition instead of a copy in JavaScript)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api_schemas.result_columns import PAGE_COLUMNS
from api_schemas.wire import REGIMES, TRIAL_STATUSES
from service.figures import KINDS
from service.store.result_filters import (
    INTEGER_COLUMNS,
    PARAM_COLUMNS,
    RANGE_COLUMNS,
    SORT_COLUMNS,
)

STATIC = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    """The page."""
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/ui/config.json")
def ui_config() -> dict[str, Any]:
    """Columns, operators and figure kinds the page offers."""
    return {
        "range_columns": list(RANGE_COLUMNS),
        "param_columns": list(PARAM_COLUMNS),
        "integer_columns": sorted(INTEGER_COLUMNS),
        "sort_columns": list(SORT_COLUMNS),
        "page_columns": [
            {"name": c.name, "kind": c.kind, "title": c.title or c.name, "help": c.description}
            for c in PAGE_COLUMNS
            if c.kind != "json"
        ],
        "regimes": list(REGIMES),
        "statuses": list(TRIAL_STATUSES),
        "figures": KINDS,
    }


def mount(app: FastAPI) -> None:
    """Add the page's routes and static files to ``app``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
