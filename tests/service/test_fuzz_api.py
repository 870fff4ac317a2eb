"""Property-based test of the whole HTTP API with schemathesis, against the real app
(no dispatcher, so no Ray) on SQLite and on PostgreSQL.

Every phase runs (examples, coverage, fuzzing, stateful over the OpenAPI links) with
every check on, ``positive_data_acceptance`` and ``negative_data_rejection`` included;
the run must end with no failure and no error.  Two deliberate, documented allowances
(both in ``schemathesis.toml``, which the command-line ``schemathesis run`` reads too):

- ``create_sweep`` / ``plan_sweep`` may answer a schema-valid spec with 422: the rules
  across fields (every required parameter set somewhere in params/axes/zip/sobol,
  feasibility such as ω·ρ_FT ≤ ρ_PT, low < high) cannot be written in JSON Schema.
- the paged listings may answer a well-formed cursor with 400: a cursor is an opaque
  token, and only the ones the server issued mean anything.

CI uses a fixed seed and ``FUZZ_SECONDS`` per backend (35 s: about 80 s each with start-up); a
release runs longer with a random seed (README, "Fuzzing the API"):
``SWEEPS_FUZZ_SECONDS=900 SWEEPS_FUZZ_SEED=random pytest tests/service/test_fuzz_api.py``.
"""

from __future__ import annotations

import os
import random
import tomllib
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema

from service.app import create_app
from service.auth.bootstrap import create_user_with_key
from service.settings import AuthSettings, LimitSettings, Settings

FUZZ_SECONDS = int(os.environ.get("SWEEPS_FUZZ_SECONDS", "35"))
_SEED = os.environ.get("SWEEPS_FUZZ_SEED", "20261202")
FUZZ_SEED = random.SystemRandom().getrandbits(64) if _SEED == "random" else int(_SEED)
CONFIG = Path(__file__).resolve().parents[2] / "schemathesis.toml"
STATELESS = ("examples", "coverage", "fuzzing")
ALL_PHASES = (*STATELESS, "stateful")

pytestmark = pytest.mark.slow


def fuzz_config(
    seed: int, seconds: int, phases: tuple[str, ...], key: str | None = None
) -> SchemathesisConfig:
    """The project's ``schemathesis.toml`` (every check, the allowances) with this run's
    seed, time budget and phases, and no state from earlier runs (no replayed crashes:
    the seed alone decides the run)."""
    data = tomllib.loads(CONFIG.read_text())
    data |= {"seed": seed, "max-time": seconds, "cache": {"enabled": False}}
    if key is not None:  # the API's security scheme, filled with a real admin key
        data["auth"] = {"openapi": {"ApiKey": {"bearer": key}}}
    data["phases"] = {phase: {"enabled": phase in phases} for phase in ALL_PHASES}
    return SchemathesisConfig.from_dict(data)


def run_schemathesis(
    app, seed: int, seconds: int, phases: tuple[str, ...], key: str | None = None
) -> tuple[Counter, list[str], set[str]]:
    """(failures by phase/operation/check, errors, phases that ran) of one engine run."""
    config = fuzz_config(seed, seconds, phases, key)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    failures: Counter = Counter()
    samples: dict[tuple, str] = {}
    errors: list[str] = []
    phases: set[str] = set()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            phases.add(event.phase.value)
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.status.value != "failure":
                        continue
                    key = (event.phase.value, event.label, check.name)
                    failures[key] += 1
                    interaction = event.recorder.interactions.get(case_id)
                    if key not in samples and interaction is not None and interaction.response:
                        response = interaction.response
                        samples[key] = f"{interaction.request.method} {interaction.request.uri}"
                        samples[key] += f" -> {response.status_code} {response.content[:200]!r}"
                        if check.failure_info is not None:  # what was sent, to reproduce it
                            failure = check.failure_info.failure
                            samples[key] += f"\n{failure.title}: {failure.message[:600]}"
                            samples[key] += f"\n{check.failure_info.code_sample[:1500]}"
        elif isinstance(event, events.NonFatalError | events.FatalError):
            errors.append(str(getattr(event, "info", event))[:500])
    report = [f"{count} × {key}: {samples.get(key, '')}" for key, count in failures.items()]
    return failures, errors + report, phases


def test_api_survives_schemathesis(migrated_url: str) -> None:
    # Auth on, as a shared deployment runs it: the auth checks (a request without a valid
    # key must be refused) are part of the run, and every other request carries a key.
    settings = Settings(
        database_url=migrated_url,
        limits=LimitSettings(max_trials=2000),
        auth=AuthSettings(enabled=True),
    )
    key = create_user_with_key(settings, "fuzzer", admin=True).key
    app = create_app(settings, start_dispatcher=False, migrate=False)
    failures: Counter = Counter()
    problems: list[str] = []
    ran: set[str] = set()
    with TestClient(app):
        # Two budgets, so that the stateful phase always gets its share of the time.
        for phases, share in ((STATELESS, 0.6), (("stateful",), 0.4)):
            found, seen, phases_ran = run_schemathesis(
                app, FUZZ_SEED, max(1, round(FUZZ_SECONDS * share)), phases, key
            )
            failures += found
            problems += seen
            ran |= phases_ran
    assert set(ALL_PHASES) <= ran, ran
    assert not failures and not problems, f"seed {FUZZ_SEED}:\n" + "\n".join(problems)
