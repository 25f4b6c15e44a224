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
        "kafka-acls",
        "postgres",
        "redis",
        "api",
        "worker",
        "prometheus",
        "grafana",
    }


def test_kafka_is_the_official_image_run_by_the_authenticating_script(
    compose: dict[str, Any],
) -> None:
    kafka, acls = compose["services"]["kafka"], compose["services"]["kafka-acls"]
    assert kafka["image"] == acls["image"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["entrypoint"] == ["/bin/bash", "/opt/batchline-kafka/broker.sh"]
    assert acls["entrypoint"] == ["/bin/bash", "/opt/batchline-kafka/grant-acls.sh"]
    for service in (kafka, acls):
        assert "./kafka:/opt/batchline-kafka:ro" in service["volumes"]
        assert set(service["environment"]) >= {
            "KAFKA_ADMIN_PASSWORD",
            "KAFKA_BATCHLINE_PASSWORD",
            "KAFKA_READER_PASSWORD",
            "KAFKA_PRODUCER_PASSWORD",
        }
    assert "--command-config /tmp/kafka-config/admin.properties" in kafka["healthcheck"]["test"][1]
    assert acls["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert acls["restart"] == "no"


def test_batchline_services_read_the_compose_services(compose: dict[str, Any]) -> None:
    for name in BATCHLINE_SERVICES:
        env = compose["services"][name]["environment"]
        assert env["BATCHLINE_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["BATCHLINE_STORE_URL"].startswith("postgresql+asyncpg://")
        assert "@postgres:5432/" in env["BATCHLINE_STORE_URL"]
        assert env["BATCHLINE_REDIS_URL"] == "redis://redis:6379/0"
        assert env["BATCHLINE_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
        assert env["BATCHLINE_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert env["BATCHLINE_KAFKA_USERNAME"] == "batchline"
        assert (
            env["BATCHLINE_KAFKA_PASSWORD"]
            == compose["services"]["kafka"]["environment"]["KAFKA_BATCHLINE_PASSWORD"]
        )
        # Only once the ACLs are granted can they use their topics.
        assert compose["services"][name]["depends_on"]["kafka-acls"] == {
            "condition": "service_completed_successfully"
        }


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
# A job that runs once and exits: what depends on it waits for its success, not its health.
ONE_SHOT = {"kafka-acls"}


def test_every_service_has_a_healthcheck_and_waits_for_healthy_dependencies(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name, service in services.items():
        assert name in ONE_SHOT or "test" in service["healthcheck"], name
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            if dependency in ONE_SHOT:
                expected = "service_completed_successfully"
            elif (name, dependency) in STARTED_IS_ENOUGH:
                expected = "service_started"
            else:
                expected = "service_healthy"
            assert condition["condition"] == expected, (name, dependency)


def test_dockerfile_installs_the_project_and_runs_as_a_user() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in lines
    assert any(line.startswith("RUN") and "pip install ." in line for line in lines)
    assert "USER batchline" in lines
    assert lines[-2:] == ['ENTRYPOINT ["batchline"]', 'CMD ["--help"]']
