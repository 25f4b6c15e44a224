"""The pure transform engine: pipeline specs compiled into fast, cached record transforms.

No Kafka, no HTTP, no I/O beyond reading spec files at start-up. The API validates batches with
it and the stream workers transform with it. See docs/pipelines.md for the spec language.
"""

from transforms.errors import SpecError, TransformsError, UnknownPipelineError
from transforms.outcome import CacheStats, ChunkOutcome, RowError
from transforms.pipeline import CompiledPipeline
from transforms.registry import PipelineRegistry

__all__ = [
    "CacheStats",
    "ChunkOutcome",
    "CompiledPipeline",
    "PipelineRegistry",
    "RowError",
    "SpecError",
    "TransformsError",
    "UnknownPipelineError",
]
