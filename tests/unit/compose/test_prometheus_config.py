"""compose/prometheus: the scrape configuration and the alert rules."""

from __future__ import annotations

from typing import Any

import jsonschema
import promql_parser
import pytest

from tests.unit.compose.artifacts import (
    ALERT_RULES,
    PROMETHEUS_CONFIG,
    load_yaml,
    rule_exprs,
    schemastore_schema,
)


def _schema_errors(schema_name: str, document: Any) -> list[str]:
    schema = schemastore_schema(schema_name)
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(PROMETHEUS_CONFIG)
    return loaded


@pytest.fixture(scope="module")
def rules() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(ALERT_RULES)
    return loaded


def test_config_validates_against_the_schemastore_schema(config: dict[str, Any]) -> None:
    assert _schema_errors("prometheus.json", config) == []


def test_rules_validate_against_the_schemastore_schema(rules: dict[str, Any]) -> None:
    assert _schema_errors("prometheus.rules.json", rules) == []


def test_the_config_loads_the_rules_file(config: dict[str, Any]) -> None:
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]


def test_the_api_is_scraped_on_its_port(config: dict[str, Any]) -> None:
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["api"]["static_configs"] == [{"targets": ["api:8000"]}]
    assert jobs["api"]["metrics_path"] == "/metrics"


def test_every_worker_replica_is_found_by_dns(config: dict[str, Any]) -> None:
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["worker"]["dns_sd_configs"] == [
        {"names": ["worker"], "type": "A", "port": 9108, "refresh_interval": "15s"}
    ]


def test_every_rule_expression_parses(rules: dict[str, Any]) -> None:
    for expr in rule_exprs(rules):
        promql_parser.parse(expr)


def test_alerts_cover_error_rate_lag_and_missing_workers(rules: dict[str, Any]) -> None:
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    assert "batch_processing_errors_total" in alerts["BatchlineHighErrorRate"]["expr"]
    assert "batch_processed_total" in alerts["BatchlineHighErrorRate"]["expr"]
    assert "batch_consumer_lag_messages" in alerts["BatchlineConsumerLagHigh"]["expr"]
    assert "deriv(batch_consumer_lag_messages" in alerts["BatchlineConsumerLagGrowing"]["expr"]
    assert alerts["BatchlineNoWorkerUp"]["expr"] == 'absent(up{job="worker"} == 1)'
    for name, alert in alerts.items():
        assert {"summary", "description"} <= set(alert["annotations"]), name
        assert alert["labels"]["severity"] in {"warning", "critical"}, name


def test_the_parser_rejects_broken_promql() -> None:
    with pytest.raises(ValueError, match="parenthesis"):
        promql_parser.parse("sum(rate(batch_processed_total[5m])")
