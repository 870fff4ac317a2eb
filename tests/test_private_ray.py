"""The embedded default starts its own private Ray, whatever a previous ``ray start``
left behind: a real ``ray start --head`` on a spare port (its own temp dir, token auth
off) is made the obvious cluster to join (``RAY_ADDRESS`` points at it), a bare
``ray.init()`` does join it (the control), and the service's runner does not.

Teardown stops only that head: the processes whose command line names its temp dir or
its port, by pid (``ray stop`` would stop every Ray on the machine).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))
pytestmark = pytest.mark.slow

PROBE = """
import json, ray, sys
from service.runners import RayRunner
from service.settings import RaySettings
if sys.argv[1] == "runner":
    runner = RayRunner(RaySettings(num_cpus=1))
    runner.start()
    health = runner.health(10.0)
else:
    ray.init(log_to_driver=False)
    health = None
print(json.dumps({"gcs": ray.get_runtime_context().gcs_address, "health": health}))
ray.shutdown()
"""


def spare_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _pids_naming(marks: tuple[str, ...]) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if any(mark in cmdline for mark in marks):
            pids.append(int(entry.name))
    return pids


def stop_head(temp_dir: str, port: int) -> None:
    marks = (temp_dir, f"--gcs_server_port={port}", f"127.0.0.1:{port}")
    # A moment for a clean exit, then SIGKILL (some of Ray's processes sit out a SIGTERM).
    for sig, wait_s in ((signal.SIGTERM, 3), (signal.SIGKILL, 15)):
        pids = _pids_naming(marks)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while pids and _pids_naming(marks) and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.fixture
def foreign_head() -> Iterator[str]:
    """``ray start --head`` on a spare port; yields its address."""
    port = spare_port()
    temp_dir = tempfile.mkdtemp(prefix="rayh", dir="/tmp")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    command = [RAY, "start", "--head", f"--port={port}", f"--temp-dir={temp_dir}"]
    command += ["--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats"]
    try:
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=180)
        yield f"127.0.0.1:{port}"
    finally:
        stop_head(temp_dir, port)
        shutil.rmtree(temp_dir, ignore_errors=True)


def probe(mode: str, address: str) -> dict:
    env = {**os.environ, "RAY_ADDRESS": address, "RAY_AUTH_MODE": "disabled"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_embedded_runner_never_joins_a_foreign_cluster(foreign_head: str) -> None:
    port = foreign_head.rsplit(":", 1)[1]
    assert probe("bare", foreign_head)["gcs"].endswith(f":{port}")  # the trap is real
    private = probe("runner", foreign_head)
    assert not private["gcs"].endswith(f":{port}"), private
    assert private["health"] == [True, "local: 1 node alive"]
