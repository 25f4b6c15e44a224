"""Pydantic models: HTTP bodies, Kafka payloads, pipeline specifications, settings."""
