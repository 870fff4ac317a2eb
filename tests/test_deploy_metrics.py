"""The metrics deployment: Prometheus (profile ``metrics``) scrapes the api's /metrics,
and the Grafana dashboard charts every metric the service exports."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.service.test_metrics import EXPECTED

ROOT = Path(__file__).resolve().parents[1]


def test_prometheus_service_scrapes_the_api() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    prometheus = services["prometheus"]
    assert prometheus["profiles"] == ["metrics"] and "grafana" in services
    mounted = {str(v).split(":")[0] for v in prometheus["volumes"]}
    assert "./deploy/prometheus.yml" in mounted
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["dns_sd_configs"][0]["names"] == ["api"] and job["dns_sd_configs"][0]["port"] == 8000


def test_grafana_dashboard_charts_every_metric() -> None:
    path = ROOT / "deploy" / "grafana" / "dashboards" / "finetune-sweeps.json"
    dashboard = json.loads(path.read_text())
    expressions = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    missing = [name for name in EXPECTED if name not in expressions]
    assert not missing, f"the dashboard does not chart {missing}"
