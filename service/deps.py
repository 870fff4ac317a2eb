"""FastAPI dependencies: the request's session (its transaction) and settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from service.settings import Settings
from service.store.session import session_scope


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: commit on success, roll back on any error."""
    with session_scope(request.app.state.session_factory) as session:
        yield session


def get_submitter(
    request: Request,
    x_sweeps_submitter: Annotated[str | None, Header(max_length=128)] = None,
) -> str:
    """Who submits: the X-Sweeps-Submitter header, else the configured default.

    Authentication is not there yet; when it is, the authenticated principal replaces
    this header and the column stays the same.
    """
    return (x_sweeps_submitter or "").strip() or request.app.state.settings.default_submitter


# scope="function": commit (or roll back) *before* the response is sent.  FastAPI's
# default ends a yield dependency after the response, so a client could read 201 for a
# sweep whose commit had not happened yet (a GET right after it answered 404).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SubmitterDep = Annotated[str, Depends(get_submitter)]
