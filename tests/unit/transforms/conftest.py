"""Fixtures of the transform engine's tests: the built-in registry and a spec compiler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from schemas.pipeline import PipelineSpec
from transforms import CompiledPipeline, PipelineRegistry

HASH_SECRET = b"test-secret"


@pytest.fixture(scope="session")
def registry() -> PipelineRegistry:
    return PipelineRegistry.load(None, hash_secret=HASH_SECRET)


@pytest.fixture
def default(registry: PipelineRegistry) -> CompiledPipeline:
    return registry.get("default@1")


def compile_spec(fields: list[dict[str, Any]], **extra: Any) -> CompiledPipeline:
    """Compile an in-memory spec named ``t@1``."""
    spec = PipelineSpec.model_validate({"name": "t", "version": 1, "fields": fields, **extra})
    return CompiledPipeline(spec, hash_secret=HASH_SECRET)


@pytest.fixture
def make_pipeline() -> Callable[..., CompiledPipeline]:
    return compile_spec


def one(pipeline: CompiledPipeline, record: Any) -> Any:
    """The output of one record, or its error as ``(field, reason)``."""
    outcome = pipeline.run([record])
    if outcome.errors:
        error = outcome.errors[0]
        return (error.field, error.reason)
    return outcome.results[0] if outcome.results else None
