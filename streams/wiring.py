"""Puts a worker together: the Faust app, the resources and handlers, the agents and timers."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from schemas.settings import Settings
from streams.agents import register_agents
from streams.app import StreamsApp, build_app
from streams.resources import WorkerResources
from telemetry.metrics import CacheCollector


def build_worker(settings: Settings) -> tuple[StreamsApp, WorkerResources]:
    """The app and the service that runs beside it; loads and validates every pipeline first."""
    metrics_registry = CollectorRegistry()
    streams_app = build_app(settings, metrics_registry)
    resources = WorkerResources(settings, streams_app.metrics, streams_app.progress_table)
    metrics_registry.register(CacheCollector(resources.registry))
    register_agents(streams_app, resources)
    return streams_app, resources
