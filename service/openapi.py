"""The OpenAPI document, completed with what only the running app knows.

FastAPI builds the document from the routes; the settings-dependent bounds (the page
cap of ``GET /v1/results``) are filled in here, so the document states the limits the
server enforces, not the defaults.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service.settings import Settings


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Replace ``app.openapi`` by a cached builder that applies the settings."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            _set_limit_maximum(document, settings.limits.page_limit)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def _set_limit_maximum(document: dict[str, Any], page_limit: int) -> None:
    operation = document.get("paths", {}).get("/v1/results", {}).get("get", {})
    for parameter in operation.get("parameters", []):
        if parameter.get("name") == "limit":
            parameter["schema"] = {**parameter["schema"], "maximum": page_limit}
