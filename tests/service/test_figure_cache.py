"""Figures and reports are cached per (sweep, latest event seq, request): a repeat is a
hit, and a result that lands (a new event) renders afresh."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.app import create_app
from service.dispatch import Dispatcher
from service.figures.cache import RENDERINGS, RenderCache
from service.runners import InlineRunner
from service.settings import DispatchSettings, Settings
from tests.service.factories import small_finetune_spec


def test_render_cache_is_a_bounded_lru() -> None:
    cache = RenderCache(size=2)
    calls: list[str] = []
    for key in ("a", "b", "a", "c", "b", None, None):
        cache.get_or_render(key, lambda key=key: calls.append(str(key)) or key)
    assert calls == ["a", "b", "c", "b", "None", "None"]  # "b" was evicted by "c"
    assert (cache.hits, cache.misses) == (1, 4)


def test_figure_and_report_follow_the_event_sequence(sqlite_url) -> None:
    dispatch = DispatchSettings(batch_size=2, max_inflight_batches=1)
    settings = Settings(database_url=sqlite_url, dispatch=dispatch)
    app = create_app(settings, start_dispatcher=False)
    with TestClient(app) as client:
        sweep_id = client.post("/v1/sweeps", json=small_finetune_spec()).json()["id"]
        factory = app.state.session_factory
        dispatcher = Dispatcher(factory, settings, InlineRunner())
        dispatcher.step()  # the first batch lands: there is something to draw
        url = f"/v1/sweeps/{sweep_id}/figures/scatter.png"
        first = client.get(url)
        hits = RENDERINGS.hits
        assert client.get(url).content == first.content and RENDERINGS.hits == hits + 1
        report = client.get(f"/v1/sweeps/{sweep_id}/report").json()
        dispatcher.run_until_idle()  # more results: new events, new keys
        misses = RENDERINGS.misses
        assert client.get(url).status_code == 200 and RENDERINGS.misses == misses + 1
        again = client.get(f"/v1/sweeps/{sweep_id}/report").json()
        assert again["configs"] >= report["configs"] and again != report
