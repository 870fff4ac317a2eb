"""Structural checks of the shared deployment (docker-compose.yml, Dockerfile).

No Docker engine is needed: the files are parsed, never built or run.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
CLI = ROOT / "service" / "cli"  # the package; its command modules register the names

REQUIRED = ("postgres", "migrate", "ray-head", "ray-worker", "api")
RAY_SERVICES = ("ray-head", "ray-worker", "ray-worker-gpu", "api")
SECRET_KEY = re.compile(r"PASSWORD|TOKEN|SECRET|API_KEY|PRIVATE_KEY", re.IGNORECASE)
REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?:(?::?[-?+]).*)?\}$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}


def command(service: dict[str, Any]) -> str:
    raw = service.get("command", "")
    return " ".join(raw) if isinstance(raw, list) else str(raw)


def depends(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {name: "service_started" for name in raw}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def test_required_services(services):
    assert set(REQUIRED) <= set(services)


def test_postgres(services):
    pg = services["postgres"]
    assert pg["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(map(str, pg["healthcheck"]["test"]))
    variables = env(pg)
    assert {"POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD"} <= set(variables)
    assert variables["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_postgres_data_on_named_volume(compose):
    named = set(compose.get("volumes") or {})
    mounts = compose["services"]["postgres"]["volumes"]
    assert any(str(m).split(":")[0] in named for m in mounts)


def test_migrate_is_one_shot_after_postgres(services):
    migrate = services["migrate"]
    assert depends(migrate)["postgres"] == "service_healthy"
    assert shlex.split(command(migrate)) == ["sweeps", "migrate"]
    assert str(migrate["restart"]) == "no"


def test_api_depends_on_database_and_migration(services):
    api = services["api"]
    deps = depends(api)
    assert deps["postgres"] == "service_healthy"
    assert deps["migrate"] == "service_completed_successfully"
    assert "ray-head" in deps
    assert "sweeps serve" in command(api)
    assert any(str(p).endswith("8000:8000") for p in api["ports"])
    assert "/healthz" in " ".join(map(str, api["healthcheck"]["test"]))


def test_api_database_url_is_postgres_psycopg(services):
    url = env(services["api"])["SWEEPS_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://")
    assert env(services["api"])["SWEEPS_ENVIRONMENT"] == "production"
    assert env(services["migrate"])["SWEEPS_DATABASE_URL"] == url


def test_never_port_6379(services):
    assert "6379" not in yaml.safe_dump(services)  # comments may mention it, config may not
    head = command(services["ray-head"])
    match = re.search(r"--port[= ](\d+)", head)
    assert match and match.group(1) != "6379"
    for name in ("ray-worker", "ray-worker-gpu", "api"):
        assert f"ray-head:{match.group(1)}" in command(services[name]) + str(env(services[name]))
    for service in services.values():
        for port in service.get("ports", []):
            assert "6379" not in str(port)


def test_no_literal_secrets(services):
    for name, service in services.items():
        for key, value in env(service).items():
            if SECRET_KEY.search(key):
                assert REFERENCE.match(value), f"{name}.{key} is not a ${{VAR}} reference"
            for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", value):
                assert REFERENCE.match(password), f"{name}.{key} embeds a literal password"


def test_ray_token_auth_everywhere(services):
    for name in RAY_SERVICES:
        variables = env(services[name])
        assert variables.get("RAY_AUTH_MODE") == "token", name
        assert variables.get("RAY_AUTH_TOKEN", "").startswith("${RAY_AUTH_TOKEN"), name


def test_ray_cluster_commands(services):
    assert "ray start --head" in command(services["ray-head"])
    assert "--block" in command(services["ray-head"])
    worker = services["ray-worker"]
    assert "ray start --address=ray-head:" in command(worker)
    assert "ray-head" in depends(worker)
    # scalable: no fixed container name and no host ports
    assert "container_name" not in worker and not worker.get("ports")


def test_gpu_worker_reserves_nvidia_device(services):
    gpu = services["ray-worker-gpu"]
    assert "gpu" in gpu["profiles"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(
        d["driver"] == "nvidia" and d["count"] == 1 and "gpu" in d["capabilities"] for d in devices
    )
    for name in REQUIRED:  # CPU-only hosts must not need the GPU profile
        assert not services[name].get("profiles"), name
        assert "deploy" not in services[name] or "devices" not in str(services[name]["deploy"])


# click/typer style: @app.command() (no explicit name) above `def name(`
DECORATED = re.compile(
    r"@\w+(?:\.\w+)*\.command\((?!\s*(?:name\s*=\s*)?[\"'])[^)]*\)\s*\n"
    r"(?:@.*\n)*\s*def (\w+)"
)


def _cli_subcommands(text: str) -> set[str]:
    names = set(re.findall(r"add_parser\(\s*[\"']([\w-]+)[\"']", text))
    names |= set(re.findall(r"\.command\(\s*(?:name\s*=\s*)?[\"']([\w-]+)[\"']", text))
    names |= {n.replace("_", "-") for n in DECORATED.findall(text)}
    return names


def test_compose_uses_real_cli_subcommands(services):
    used = {
        sub
        for service in services.values()
        for sub in re.findall(r"(?:^|[\s\"'])sweeps\s+([a-z][\w-]*)", command(service))
    }
    assert {"migrate", "serve"} <= used
    if not CLI.exists():
        pytest.skip("service/cli/ not written yet: subcommand names not checked")
    known = _cli_subcommands("\n".join(p.read_text() for p in sorted(CLI.glob("*.py"))))
    assert known, "no subcommands found in service/cli/"
    assert used <= known, f"compose uses unknown subcommands: {sorted(used - known)}"


def _is_setting(name: str) -> bool:
    model: type[BaseModel] = Settings
    parts = name.removeprefix("SWEEPS_").lower().split("__")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        last = i == len(parts) - 1
        is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if last:
            return True
        if not is_model:
            return False
        model = annotation
    return False


def test_sweeps_variables_are_settings(services):
    used = {key for s in services.values() for key in env(s) if key.startswith("SWEEPS_")}
    used |= set(re.findall(r"\bSWEEPS_[A-Z0-9_]+", COMPOSE.read_text()))
    assert {"SWEEPS_DATABASE_URL", "SWEEPS_RAY_ADDRESS", "SWEEPS_ENVIRONMENT"} <= used
    unknown = sorted(name for name in used if not _is_setting(name))
    assert not unknown, f"not fields of service.settings.Settings: {unknown}"


def test_compose_environment_builds_valid_settings(services, monkeypatch):
    for key, value in env(services["api"]).items():
        if key.startswith("SWEEPS_"):
            value = re.sub(r"\$\{([A-Za-z_]\w*)(?::?[-?][^}]*)?\}", "x", value)
            value = "true" if key == "SWEEPS_DISPATCH__ENABLED" else value
            monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.ray.address == "ray-head:6380"
    assert settings.environment == "production"


def test_dockerfile_installs_torch_before_project():
    text = DOCKERFILE.read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert lines[next(i for i, line in enumerate(lines) if line.startswith("FROM"))].startswith(
        "FROM python:3.11-slim"
    )
    torch = next(i for i, line in enumerate(lines) if re.search(r"pip install .*torch==", line))
    project = next(i for i, line in enumerate(lines) if re.search(r"pip install \.(\s|$)", line))
    assert torch < project
    assert "download.pytorch.org/whl/" in lines[torch]
    assert re.search(r"^ARG TORCH_VARIANT", text, re.MULTILINE)
    assert re.search(r"^USER (?!root\b)\w+", text, re.MULTILINE), "image must not run as root"
    assert re.search(r"^WORKDIR ", text, re.MULTILINE)
    assert not SECRET_KEY.search(
        "\n".join(x for x in lines if x.startswith(("ENV", "ARG", "CMD", "ENTRYPOINT")))
    )


def test_dockerignore_keeps_secrets_and_venv_out():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", ".env"} <= ignored
    assert "README.md" not in ignored  # pyproject's readme is needed by `pip install .`


def test_shared_deployment_has_auth_on_and_the_api_on_loopback(services):
    api = services["api"]
    assert env(api)["SWEEPS_AUTH__ENABLED"] == "true"
    assert env(api)["SWEEPS_ENVIRONMENT"] == "production"
    (port,) = api["ports"]
    assert str(port).startswith("${API_BIND:-127.0.0.1}:")
