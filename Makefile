# The verbs: run, test, lint, fmt, bench. Each sets up what it needs on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test test-reliability lint fmt bench schemathesis kafka-jars browser services services-stop clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@# setuptools warns on every editable install that a folder named like the package could
	@# shadow it; here that folder is the package, so the warning is noise.
	PYTHONWARNINGS=ignore::UserWarning $(BIN)/pip install -q -e '.[test]'
	@touch $(STAMP)

kafka-jars: $(STAMP)
	$(BIN)/python -c "from batchline.broker import ensure_kafka_jars; print(ensure_kafka_jars())"

## make run: broker + worker + API on http://127.0.0.1:8000 (SQLite store); Ctrl-C stops all.
run: $(STAMP) kafka-jars
	$(BIN)/batchline dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

services:
	bash scripts/services.sh

services-stop:
	bash scripts/services.sh stop

## Debian's chromium, for the console's browser tests.
browser:
	@bash scripts/browser.sh >/dev/null

## make test: everything on a fresh machine; PostgreSQL and Redis it started are stopped after.
test: $(STAMP) kafka-jars browser
	@set -e; trap 'bash scripts/services.sh stop' EXIT; \
	service_urls="$$(bash scripts/services.sh)"; eval "$$service_urls"; \
	export BATCHLINE_TEST_POSTGRES_URL BATCHLINE_TEST_REDIS_URL; \
	$(MAKE) --no-print-directory lint; \
	$(BIN)/pytest tests/unit tests/integration

## make test-reliability: the fault suite (workers killed, Kafka, PostgreSQL and Redis down, the
## API restarted, generated and hostile requests, load at the limits); prints each scenario's
## figures.
test-reliability: $(STAMP) kafka-jars
	@set -e; trap 'bash scripts/services.sh stop' EXIT; \
	service_urls="$$(bash scripts/services.sh)"; eval "$$service_urls"; \
	export BATCHLINE_TEST_POSTGRES_URL BATCHLINE_TEST_REDIS_URL; \
	$(BIN)/pytest tests/reliability -p no:randomly

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[test,bench]'
	@touch $(BENCH_STAMP)

## make bench: prints the measured tables (Batchline beside a plain aiokafka loop, a plain Faust
## agent and a Quix Streams app on the same broker and data) and writes bench/results.md.
bench: $(BENCH_STAMP) kafka-jars
	$(BIN)/python -m bench

## make schemathesis: generated requests against the running API's own OpenAPI (no 5xx,
## every answer matches the published schema). Also part of make test.
schemathesis: $(STAMP) kafka-jars
	@set -e; service_urls="$$(bash scripts/services.sh)"; eval "$$service_urls"; \
	export BATCHLINE_TEST_POSTGRES_URL BATCHLINE_TEST_REDIS_URL; \
	$(BIN)/pytest -s tests/integration/api/test_openapi_fuzz.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
