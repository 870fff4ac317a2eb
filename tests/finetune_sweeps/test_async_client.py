"""``finetune_sweeps.AsyncClient``: the same methods as ``Client``, over real HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from finetune_sweeps import AsyncClient, NotFound, ValidationFailed
from tests.finetune_sweeps.test_client import SPEC


def test_every_method_awaits(live_url, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with AsyncClient(live_url) as client:
            assert (await client.health()).status == "ok"
            assert (await client.plan(SPEC)).trial_count == 6
            polls = []
            sweep = await client.submit(SPEC, wait=True, progress=polls.append, poll_s=0.05)
            assert sweep.status == "succeeded" and polls[-1].status == "succeeded"
            assert (await client.sweep(sweep.id)).id == sweep.id
            assert (await client.sweeps()).total == 1
            assert len(await client.trials(sweep.id)) == 6

            results = await client.results(sweep_id=sweep.id, page_size=2)
            assert len(results) == 6 and results.to_pandas()["alpha"].dtype == "float64"
            first = await client.result_page(sweep_id=sweep.id, limit=2)
            assert first.next_cursor and len(first.items) == 2
            summary = await client.summary(["lambda_pt"], sweep_id=sweep.id)
            assert len(summary.rows) == 3
            csv = await client.export(tmp_path / "r.csv", sweep_id=sweep.id)
            assert len(csv.read_text().splitlines()) == 7
            png = await client.figure(sweep.id, "scatter")
            assert png.startswith(b"\x89PNG")
            assert (await client.report(sweep.id)).sweep_id == sweep.id
            big = await client.submit({**SPEC, "name": "big", "seeds": 60})
            cancelled = await client.cancel(big.id)
            assert cancelled.id == big.id and cancelled.counts.cancelled > 0

            with pytest.raises(ValidationFailed) as bad:
                await client.plan({**SPEC, "axes": {"lambda_pt": [3.0]}})
            assert bad.value.field_path == "body.axes.lambda_pt"
            with pytest.raises(NotFound):
                await client.report("nope")

    asyncio.run(scenario())
