"""compose/docker-compose.yml against the Compose Specification and the stack's own rules."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from tests.unit.compose.artifacts import COMPOSE_FILE, DOCKERFILE, compose_spec_schema, load_yaml

BATCHLINE_SERVICES = ("api", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(COMPOSE_FILE)
    return loaded


def test_compose_file_validates_against_the_compose_specification(
    compose: dict[str, Any],
) -> None:
    schema = compose_spec_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


def test_the_schema_rejects_a_broken_compose_file() -> None:
    # Guards against a schema that accepts anything (a wrong file, an empty object).
    schema = compose_spec_schema()
    broken: dict[str, Any] = {
        "services": {"api": {"image": "x", "depends_on": {"db": {"condition": "up"}}}}
    }
    assert not jsonschema.validators.validator_for(schema)(schema).is_valid(broken)


def test_the_stack_has_every_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {
        "kafka",
        "postgres",
        "redis",
        "api",
        "worker",
        "prometheus",
        "grafana",
    }


def test_kafka_is_a_single_kraft_node_of_the_official_image(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    assert kafka["image"].startswith("apache/kafka:")
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_batchline_services_read_the_compose_services(compose: dict[str, Any]) -> None:
    for name in BATCHLINE_SERVICES:
        env = compose["services"][name]["environment"]
        assert env["BATCHLINE_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["BATCHLINE_STORE_URL"].startswith("postgresql+asyncpg://")
        assert "@postgres:5432/" in env["BATCHLINE_STORE_URL"]
        assert env["BATCHLINE_REDIS_URL"] == "redis://redis:6379/0"


def test_the_api_listens_on_every_interface(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    assert api["command"] == ["api", "--host", "0.0.0.0", "--port", "8000"]


def test_workers_scale_and_serve_metrics_to_prometheus(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert worker["command"] == ["worker"]
    assert "ports" not in worker, "a host port mapping breaks --scale worker=N"
    assert "container_name" not in worker
    assert worker["environment"]["BATCHLINE_WORKER_METRICS_HOST"] == "0.0.0.0"
    assert worker["environment"]["BATCHLINE_WORKER_METRICS_PORT"] == "9108"


# Prometheus starts as soon as the API does: it must be up to see an unhealthy API.
STARTED_IS_ENOUGH = {("prometheus", "api")}


def test_every_service_has_a_healthcheck_and_waits_for_healthy_dependencies(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name, service in services.items():
        assert "test" in service["healthcheck"], name
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            expected = (
                "service_started" if (name, dependency) in STARTED_IS_ENOUGH else "service_healthy"
            )
            assert condition["condition"] == expected, (name, dependency)


def test_dockerfile_installs_the_project_and_runs_as_a_user() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in lines
    assert any(line.startswith("RUN") and "pip install ." in line for line in lines)
    assert "USER batchline" in lines
    assert lines[-2:] == ['ENTRYPOINT ["batchline"]', 'CMD ["--help"]']
