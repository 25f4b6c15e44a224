"""The result caches: counted, never confused by equal-but-different values, off when useless."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from transforms import CompiledPipeline, PipelineRegistry
from transforms.cache import MAX_SKIPPED_SLICES, SLICE_SIZE

from .conftest import HASH_SECRET

MakePipeline = Callable[..., CompiledPipeline]


def _record(index: int) -> dict[str, str]:
    return {
        "ts": f"2024-01-01T00:00:{index % 60:02d}Z",
        "amt": f"{index}.50",
        "email": f"user{index}@example.com",
        "phone": f"555-{index:04d}",
    }


def test_repeated_values_hit_and_are_counted() -> None:
    registry = PipelineRegistry.load(None, hash_secret=HASH_SECRET)
    pipeline = registry.get("default")
    records = [_record(index % 10) for index in range(1000)]
    first = pipeline.run(records)
    assert first.results == [pipeline.run([r]).results[0] for r in records[:10]] * 100
    stats = registry.cache_stats()
    assert stats.misses == 4 * 10  # ten distinct values in each of the four fields
    assert stats.hits >= 4 * 990


def test_equal_but_different_values_never_share_an_entry(make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline([{"source": "amt", "parse": "decimal", "required": False}])
    outcome = pipeline.run(
        [{"amt": "1.50"}, {"amt": Decimal("1.5")}, {"amt": "1.5"}, {"amt": 1}, {"amt": True}]
    )
    assert [str(r.get("amt")) for r in outcome.results] == ["1.50", "1.5", "1.5", "1"]
    assert outcome.errors[0].reason == "Invalid number format"  # True is not the number 1


def test_cached_invalid_results_stay_invalid(make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline([{"source": "email", "transform": "mask_email"}])
    outcome = pipeline.run([{"email": "bad"}] * 3)
    assert [error.row for error in outcome.errors] == [0, 1, 2]


def test_cache_off_gives_the_same_results() -> None:
    records = [_record(index % 7) for index in range(100)]
    cached = PipelineRegistry.load(None, hash_secret=HASH_SECRET).get("default")
    plain = PipelineRegistry.load(None, hash_secret=HASH_SECRET, cache_size=0).get("default")
    assert cached.run(records) == plain.run(records)
    assert PipelineRegistry.load(None, hash_secret=b"x", cache_size=0).cache_stats().hits == 0


def test_cache_sits_out_data_that_never_repeats_and_comes_back() -> None:
    registry = PipelineRegistry.load(None, hash_secret=HASH_SECRET)
    pipeline = registry.get("default")
    distinct = [_record(index) for index in range(SLICE_SIZE * 8)]
    pipeline.run(distinct)
    lookups = registry.cache_stats().misses
    assert lookups < len(distinct) * 4  # some slices bypassed the cache entirely
    repeated = [_record(index % 5) for index in range(SLICE_SIZE * (MAX_SKIPPED_SLICES + 4))]
    before = registry.cache_stats().hits
    pipeline.run(repeated)
    assert registry.cache_stats().hits - before > len(repeated)  # back on, and hitting
