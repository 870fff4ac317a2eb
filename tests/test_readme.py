"""The README stays true: every setting documented, the two commands real, examples in sync."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic import BaseModel

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def setting_names(model: type[BaseModel], prefix: str = "SWEEPS_") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names += setting_names(annotation, f"{prefix}{name.upper()}__")
        else:
            names.append(f"{prefix}{name.upper()}")
    return names


def test_every_setting_is_documented() -> None:
    missing = [name for name in setting_names(Settings) if f"`{name}`" not in README]
    assert not missing, f"README configuration table lacks {missing}"


def test_the_two_commands_exist_and_ci_runs_the_test_command() -> None:
    assert "bash scripts/quickstart.sh" in README and "bash scripts/test.sh" in README
    assert (ROOT / "scripts" / "quickstart.sh").exists()
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


def test_quickstart_json_mirrors_yaml() -> None:
    as_yaml = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    as_json = json.loads((ROOT / "examples" / "quickstart.json").read_text())
    assert as_yaml == as_json
