"""The reproducibility envelope every result carries (DESIGN.md)."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Package version, plus the git SHA of the checkout when there is one."""
    try:
        version = metadata.version("finetune-sweeps")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{version}+g{sha}" if sha else version


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("numpy", "scipy", "torch"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions


def resolve_device(requested: str) -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``cpu``; others pass through."""
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def envelope(device: str, dtype: str) -> dict[str, str]:
    device_name = device
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            device_name = f"{device} ({torch.cuda.get_device_name(0)})"
    return {
        "code_version": code_version(),
        **library_versions(),
        "device": device_name,
        "dtype": dtype,
        "host": platform.node(),
    }
