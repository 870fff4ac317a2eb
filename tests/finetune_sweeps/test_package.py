"""The package's promises that need no server: what importing it pulls in, where the
URL and the key come from, the header the key travels in, the config file's mode."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from finetune_sweeps import Client
from finetune_sweeps.config import resolve_api_key, resolve_url, write_config

ROOT = Path(__file__).resolve().parents[2]


def test_import_pulls_in_neither_ray_torch_nor_sqlalchemy() -> None:
    code = (
        "import sys, json; from finetune_sweeps import Client, AsyncClient; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'ray','torch','sqlalchemy','fastapi','service','workers','pandas','pyarrow'})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []


def test_the_package_imports_only_httpx_api_schemas_and_stdlib() -> None:
    from tests.test_layering import imported_modules

    allowed = set(sys.stdlib_module_names) | {
        "httpx",
        "api_schemas",
        "finetune_sweeps",
        "__future__",
        "yaml",  # lazily, for YAML spec files only
        "pandas",  # lazily, inside to_pandas
        "pyarrow",  # lazily, inside to_arrow
    }
    for path in (ROOT / "finetune_sweeps").rglob("*.py"):
        assert imported_modules(path) <= allowed, (path, imported_modules(path) - allowed)


def test_url_and_key_resolution(private_config, monkeypatch) -> None:
    assert resolve_url() == "http://127.0.0.1:8000" and resolve_api_key() is None
    path = write_config({"api_key": "from-file", "url": "http://file:1/"})
    assert path == private_config
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert resolve_url() == "http://file:1" and resolve_api_key() == "from-file"
    monkeypatch.setenv("SWEEPS_API_KEY", "from-env")
    monkeypatch.setenv("SWEEPS_URL", "http://env:2")
    assert resolve_api_key() == "from-env" and resolve_url() == "http://env:2"
    assert resolve_api_key("given") == "given" and resolve_url("http://arg:3") == "http://arg:3"


def test_the_key_travels_as_a_bearer_token(private_config) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": [], "total": 0, "limit": 5, "offset": 0})

    write_config({"api_key": "s3cret"})
    with Client("http://x", transport=httpx.MockTransport(answer)) as client:
        client.sweeps(limit=5)
    assert seen[0].headers["Authorization"] == "Bearer s3cret"
    with Client("http://x", api_key="", transport=httpx.MockTransport(answer)) as client:
        private_config.unlink()
        client.sweeps()
    assert "Authorization" in seen[1].headers  # the key was read when the client was built
