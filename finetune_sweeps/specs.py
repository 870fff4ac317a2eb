"""Turning what a caller hands to ``submit`` / ``plan`` into the JSON body of the request.

A spec may be an ``api_schemas.SweepSpec``, a plain mapping, or a path to a YAML or JSON
file (``-`` reads stdin).  Mappings are sent as they are, unvalidated, so that the server
is the one judge of a spec and its 422 names the field.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from api_schemas.spec import SweepSpec
from finetune_sweeps.errors import SpecFileError

SpecLike = SweepSpec | Mapping[str, Any] | str | Path


def load_spec_file(path: str | Path) -> dict[str, Any]:
    """Read a spec mapping from YAML or JSON; ``-`` reads stdin.

    Raises ``SpecFileError`` when the file is unreadable, not YAML/JSON, or not a mapping.
    """
    name = str(path)
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
    except OSError as exc:
        raise SpecFileError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text) if name.endswith(".json") else _load_yaml(text)
    except Exception as exc:  # json.JSONDecodeError or yaml.YAMLError
        raise SpecFileError(f"{name}: not valid YAML/JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecFileError(f"{name}: a spec must be a mapping, got {type(data).__name__}")
    return data


def _load_yaml(text: str) -> Any:
    import yaml  # only for YAML files: importing the client stays httpx + api_schemas

    return yaml.safe_load(text)


def spec_body(spec: SpecLike) -> dict[str, Any]:
    """The JSON body for ``POST /v1/sweeps`` (and ``/plan``)."""
    if isinstance(spec, SweepSpec):
        return spec.model_dump(mode="json", exclude_unset=True)
    if isinstance(spec, Mapping):
        return dict(spec)
    if isinstance(spec, str | Path):
        return load_spec_file(spec)
    raise TypeError(f"a spec is a SweepSpec, a mapping or a path, not {type(spec).__name__}")
