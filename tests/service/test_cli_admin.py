"""``sweeps admin create-user`` (the installed command): the first admin's key works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import AuthSettings, Settings

SWEEPS = Path(sys.executable).with_name("sweeps")


def test_create_user_prints_a_working_admin_key(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    done = subprocess.run(
        [str(SWEEPS), "admin", "create-user", "ada", "--admin"],
        env={**os.environ, "SWEEPS_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip()
    assert key.startswith("fts_") and "ada" in done.stderr and "shown once" in done.stderr
    app = create_app(
        Settings(database_url=url, auth=AuthSettings(enabled=True)), start_dispatcher=False
    )
    with TestClient(app) as client:
        me = client.get("/v1/me", headers={"Authorization": f"Bearer {key}"}).json()
        assert me["name"] == "ada" and me["admin"] is True
        audit = client.get("/v1/audit", headers={"Authorization": f"Bearer {key}"}).json()
        assert audit["items"][-1]["action"] == "user.create"
    again = subprocess.run(
        [str(SWEEPS), "admin", "create-user", "ada"],
        env={**os.environ, "SWEEPS_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode != 0 and "exists" in (again.stderr + again.stdout)
