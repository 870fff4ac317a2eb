"""Operational visibility: Prometheus metrics at ``/metrics``."""
