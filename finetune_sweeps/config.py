"""Where the client finds its server and its key.

The URL: the argument, else ``SWEEPS_URL``, else the config file's ``url``, else
``http://127.0.0.1:8000``.  The API key: the argument, else ``SWEEPS_API_KEY``, else the
config file's ``api_key`` (written by ``sweeps login``).  The config file is
``$SWEEPS_CONFIG`` if set, else ``$XDG_CONFIG_HOME/finetune-sweeps/config.toml`` (default
``~/.config/finetune-sweeps/config.toml``); it holds secrets, so it is written with mode
0600 in a 0700 folder.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"
CONFIG_KEYS = ("url", "api_key", "submitter")


def config_path() -> Path:
    """The config file this process reads and ``sweeps login`` writes."""
    if os.environ.get("SWEEPS_CONFIG"):
        return Path(os.environ["SWEEPS_CONFIG"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "finetune-sweeps" / "config.toml"


def read_config(path: Path | None = None) -> dict[str, Any]:
    """The config file's values; an absent or unreadable file is an empty config."""
    path = path or config_path()
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def write_config(values: dict[str, str], path: Path | None = None) -> Path:
    """Merge ``values`` into the config file, created with mode 0600; returns its path."""
    path = path or config_path()
    merged = {**read_config(path), **values}
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # TOML basic strings accept JSON's escapes, so json.dumps quotes every value safely.
    text = "".join(f"{key} = {json.dumps(str(merged[key]))}\n" for key in sorted(merged))
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through os.open
    return path


def resolve_url(url: str | None = None) -> str:
    """The server's base URL, without a trailing slash."""
    chosen = url or os.environ.get("SWEEPS_URL") or read_config().get("url") or DEFAULT_URL
    return str(chosen).rstrip("/")


def resolve_api_key(api_key: str | None = None) -> str | None:
    """The API key to send as ``Authorization: Bearer``, or ``None`` when none is known."""
    return api_key or os.environ.get("SWEEPS_API_KEY") or read_config().get("api_key") or None


def resolve_submitter(submitter: str | None = None) -> str | None:
    """Who submits (``X-Sweeps-Submitter``): the argument, ``SWEEPS_SUBMITTER`` or the file."""
    return submitter or os.environ.get("SWEEPS_SUBMITTER") or read_config().get("submitter") or None
