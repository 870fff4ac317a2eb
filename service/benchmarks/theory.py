"""The theory beside bring-your-own results: the replica generalization error and the
theory regime of each config, from the same pure functions the workers run
(``workers.workloads.theory_curves``, ``workers.theory.regimes.theory_regime``)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from workers.workloads import DEFAULT_GAMMA_EXT, task_and_init, theory_curves


@lru_cache(maxsize=4096)
def _prediction(params_json: str) -> tuple[float | None, str | None]:
    from workers.theory.regimes import theory_regime

    params = json.loads(params_json)
    task, init = task_and_init(params)
    value = theory_curves({"k": (task, init, float(params["alpha"]), DEFAULT_GAMMA_EXT)})["k"]
    return value.gen_error, theory_regime(task, init).label


def replica_theory(params: dict[str, Any]) -> tuple[float | None, str | None]:
    """(replica E_gen at the config's α, theory regime label) of one config."""
    return _prediction(json.dumps(params, sort_keys=True))
