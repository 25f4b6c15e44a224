"""A compiled pipeline: a spec turned once into closures, then run over chunks of records.

Per record the engine only walks a tuple of compiled fields; nothing of the spec is looked up or
interpreted. Fields whose steps are costly get a bounded LRU of whole results keyed by the raw
value. Each compiled pipeline owns its caches, so the key is in effect (spec digest, field, value)
and an edited spec, which compiles anew, can never be served a stale entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import Any, Literal

import simplejson

from schemas.pipeline import PipelineSpec
from transforms.cache import SLICE_SIZE, AdaptiveCache
from transforms.errors import SpecError
from transforms.filters import CompiledFilters, field_refs
from transforms.invalid import NOT_AN_OBJECT_REASON, OMIT, Invalid
from transforms.outcome import CacheStats, ChunkOutcome, RowError
from transforms.steps import FieldPlan, Step, compile_field

# (source, target, cache or cached compute or None, compute, output when missing)
_Field = tuple[str, str, Any, Step, Any]


def spec_digest(spec: PipelineSpec) -> str:
    """SHA-256 hex of the spec's canonical JSON: equal specs, equal digests, whatever the file."""
    canonical = simplejson.dumps(
        spec.model_dump(), use_decimal=True, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class CompiledPipeline:
    """A pipeline spec compiled for speed; ``run`` is pure apart from its result caches."""

    __slots__ = (
        "_caches",
        "_fields",
        "_filters",
        "_passthrough",
        "digest",
        "name",
        "on_invalid",
        "ref",
        "spec",
        "version",
    )

    def __init__(self, spec: PipelineSpec, *, hash_secret: bytes, cache_size: int = 65536) -> None:
        self.spec = spec
        self.name = spec.name
        self.version = spec.version
        self.ref = spec.ref
        self.digest = spec_digest(spec)
        self.on_invalid: Literal["reject", "skip"] = spec.on_invalid
        plans: list[FieldPlan] = []
        for index, rule in enumerate(spec.fields):
            try:
                plans.append(compile_field(rule, hash_secret))
            except SpecError as exc:
                raise SpecError(f"fields[{index}] ({rule.target}): {exc}") from None
        self._caches: list[Any] = []
        self._fields: tuple[_Field, ...] = tuple(
            (plan.source, plan.target, self._cached(plan, cache_size), plan.compute, plan.missing)
            for plan in plans
        )
        self._passthrough = tuple(spec.passthrough)
        self._filters = CompiledFilters(spec.filters, field_refs(plans, spec.passthrough))

    def _cached(self, plan: FieldPlan, cache_size: int) -> AdaptiveCache | None:
        if not plan.cacheable or cache_size <= 0:
            return None
        cache = AdaptiveCache(plan.compute, cache_size)
        self._caches.append(cache)
        return cache

    def _slice_fields(self) -> tuple[_Field, ...]:
        return tuple(
            (source, target, None if cache is None else cache.for_slice(), compute, missing)
            for source, target, cache, compute, missing in self._fields
        )

    def cache_stats(self) -> CacheStats:
        """Hits and misses of this pipeline's result caches since it was compiled."""
        infos = [cache.lookup.cache_info() for cache in self._caches]
        return CacheStats(sum(i.hits for i in infos), sum(i.misses for i in infos))

    def run(
        self,
        records: Sequence[Any],
        first_row: int = 0,
        duplicate_rows: Collection[int] | None = None,
    ) -> ChunkOutcome:
        """Transform a chunk: kept outputs, the filtered count, one error per invalid record.

        ``first_row`` is the batch row of ``records[0]``. ``duplicate_rows`` are the absolute rows a
        batch-wide dedupe marked; None detects duplicates within ``records``.
        """
        return self._run(records, first_row, duplicate_rows, None)

    def duplicate_rows(self, records: Sequence[Any], first_row: int = 0) -> frozenset[int]:
        """Absolute rows the duplicate filter drops as repeats of an earlier kept row."""
        if not self._filters.has_dedupe:
            return frozenset()
        dropped: list[int] = []
        self._run(records, first_row, None, dropped)
        return frozenset(dropped)

    def first_error(self, records: Sequence[Any], first_row: int = 0) -> RowError | None:
        """The lowest-row validation error of the chunk, or None; stops at the first one."""
        fields = tuple(
            (source, target, None if cache is None else cache.current(), compute, missing)
            for source, target, cache, compute, missing in self._fields
        )
        pre = self._filters.pre
        for index, record in enumerate(records):
            if record.__class__ is not dict and not isinstance(record, dict):
                return RowError(first_row + index, "$", NOT_AN_OBJECT_REASON)
            if pre is not None and pre(record):
                continue
            for source, target, cached, compute, missing in fields:
                raw = record.get(source)
                if raw is None:
                    value = missing
                elif cached is not None and (raw.__class__ is str or raw.__class__ is int):
                    value = cached(raw)
                else:
                    value = compute(raw)
                if value.__class__ is Invalid:
                    return RowError(first_row + index, target, value.reason)
        return None

    def _run(
        self,
        records: Sequence[Any],
        first_row: int,
        duplicate_rows: Collection[int] | None,
        dropped: list[int] | None,
    ) -> ChunkOutcome:
        passthrough = self._passthrough
        pre = self._filters.pre
        post = self._filters.for_run(duplicate_rows, dropped)
        results: list[dict[str, Any]] = []
        result_rows: list[int] = []
        errors: list[RowError] = []
        filtered = 0
        row = first_row - 1
        # Slices let the caches decide, between slices, whether they pay for themselves.
        for start in range(0, len(records), SLICE_SIZE):
            fields = self._slice_fields()
            for record in records[start : start + SLICE_SIZE]:
                row += 1
                if record.__class__ is not dict and not isinstance(record, dict):
                    errors.append(RowError(row, "$", NOT_AN_OBJECT_REASON))
                    continue
                if pre is not None and pre(record):
                    filtered += 1
                    continue
                out: dict[str, Any] = {}
                # The hot path: one tuple walk per record, no spec lookups.
                for source, target, cached, compute, missing in fields:
                    raw = record.get(source)
                    if raw is None:
                        value = missing
                    elif cached is not None and (raw.__class__ is str or raw.__class__ is int):
                        value = cached(raw)
                    else:
                        value = compute(raw)
                    if value.__class__ is Invalid:
                        errors.append(RowError(row, target, value.reason))
                        break
                    if value is not OMIT:
                        out[target] = value
                else:
                    for name in passthrough:
                        if name in record:
                            kept = record[name]
                            # Never a float on the way out, even from a caller that made one.
                            out[name] = Decimal(repr(kept)) if kept.__class__ is float else kept
                    if post is not None and post(record, row):
                        filtered += 1
                        continue
                    results.append(out)
                    result_rows.append(row)
            for cache in self._caches:
                cache.review()
        return ChunkOutcome(results, result_rows, filtered, errors)
