"""Compile record-level filters: conditions that drop a record from the output.

``empty`` filters look at the raw input and run before validation, so a record they drop never
produces a validation error. Comparison, membership and duplicate filters look at parsed values
(after ``parse``, before masking) and run, in the order written, on records that validated.
A comparison or membership filter never matches a record that lacks the field.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Final

import simplejson

from schemas.pipeline import CompareFilter, DuplicateFilter, EmptyFilter, Filter, MemberFilter
from transforms.errors import SpecError
from transforms.invalid import Invalid
from transforms.steps import ANY, FieldPlan, Step

Record = dict[str, Any]
PostFilter = Callable[[Record, int], bool]

_ORDERING: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


@dataclass(frozen=True, slots=True)
class FieldRef:
    """Where a filter finds a field: its input name and how to parse it."""

    source: str
    parse: Step
    kind: str


def _frozen(value: Any) -> Any:
    # A hashable stand-in that keeps JSON's distinctions: true is not 1; arrays compare by content.
    if value.__class__ is bool:
        return ("bool", value)
    if isinstance(value, dict | list):
        return ("json", simplejson.dumps(value, use_decimal=True, sort_keys=True))
    return value


def _json_equal(left: Any, right: Any) -> bool:
    return bool(_frozen(left) == _frozen(right))


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, dict | list) and not value


class CompiledFilters:
    """The filters of one pipeline, ready to run."""

    __slots__ = ("_dedupe_key", "_post", "has_dedupe", "pre")

    def __init__(self, specs: Sequence[Filter], refs: dict[str, FieldRef]) -> None:
        empties = [refs[f.field].source for f in specs if isinstance(f, EmptyFilter)]
        self.pre: Callable[[Record], bool] | None = None
        if empties:
            self.pre = lambda record: any(_is_empty(record.get(name)) for name in empties)
        self._post: list[PostFilter | None] = []  # None marks the duplicate filter's position
        self._dedupe_key: Callable[[Record], tuple[Any, ...] | None] | None = None
        for index, spec in enumerate(specs):
            try:
                if isinstance(spec, CompareFilter | MemberFilter):
                    self._post.append(_compile_condition(spec, refs[spec.field]))
                elif isinstance(spec, DuplicateFilter):
                    self._post.append(None)
                    self._dedupe_key = _compile_key([refs[name] for name in spec.key])
            except SpecError as exc:
                raise SpecError(f"filters[{index}]: {exc}") from None
        self.has_dedupe = self._dedupe_key is not None

    def for_run(
        self, duplicate_rows: Collection[int] | None, dropped: list[int] | None
    ) -> PostFilter | None:
        """The post-validation filters of one run, with fresh duplicate state.

        With ``duplicate_rows`` the duplicate filter drops exactly those rows (computed over a
        whole batch by the caller); without, it remembers the keys it has seen in this run. The
        rows it drops are appended to ``dropped`` when given.
        """
        if not self._post:
            return None
        stages = [stage or self._dedupe(duplicate_rows, dropped) for stage in self._post]

        def post(record: Record, row: int) -> bool:
            return any(stage(record, row) for stage in stages)

        return post

    def _dedupe(
        self, duplicate_rows: Collection[int] | None, dropped: list[int] | None
    ) -> PostFilter:
        if duplicate_rows is not None:
            return lambda _record, row: row in duplicate_rows
        key_of = self._dedupe_key
        assert key_of is not None  # noqa: S101 - a None stage exists only with a duplicate filter
        seen: set[tuple[Any, ...]] = set()

        def is_duplicate(record: Record, row: int) -> bool:
            key = key_of(record)
            if key is None:
                return False
            if key in seen:
                if dropped is not None:
                    dropped.append(row)
                return True
            seen.add(key)
            return False

        return is_duplicate


def _parsed_constant(ref: FieldRef, value: Any) -> Any:
    if ref.kind == ANY:
        return value
    parsed = ref.parse(value)
    if parsed.__class__ is Invalid:
        raise SpecError(
            f"the value does not parse as a {ref.kind} ({parsed.reason}); fix the value"
        )
    return parsed


def _compile_condition(spec: CompareFilter | MemberFilter, ref: FieldRef) -> PostFilter:
    source, parse = ref.source, ref.parse
    test: Callable[[Any], bool]
    if isinstance(spec, MemberFilter):
        constants = [_parsed_constant(ref, value) for value in spec.values]
        members = frozenset(_frozen(value) for value in constants)
        test = (
            (lambda v: _frozen(v) in members)
            if spec.op == "in"
            else (lambda v: _frozen(v) not in members)
        )
    elif spec.op in ("equals", "not_equals"):
        constant = _parsed_constant(ref, spec.value)
        test = (
            (lambda v: _json_equal(v, constant))
            if spec.op == "equals"
            else (lambda v: not _json_equal(v, constant))
        )
    else:
        if ref.kind == ANY:
            raise SpecError(
                f"{spec.op!r} needs an ordered value; give the field `parse: decimal`, "
                "`parse: timestamp` or `parse: string`"
            )
        bound = _parsed_constant(ref, spec.value)
        compare = _ORDERING[spec.op]
        test = lambda v: compare(v, bound)  # noqa: E731 - one expression, named for mypy

    def condition(record: Record, _row: int) -> bool:
        raw = record.get(source)
        if raw is None:
            return False
        value = parse(raw)
        return value.__class__ is not Invalid and test(value)

    return condition


def _compile_key(refs: list[FieldRef]) -> Callable[[Record], tuple[Any, ...] | None]:
    def key_of(record: Record) -> tuple[Any, ...] | None:
        parts = []
        for ref in refs:
            raw = record.get(ref.source)
            if raw is None:
                # A record without its key is never a duplicate: losing data is worse.
                return None
            parts.append(_frozen(ref.parse(raw)))
        return tuple(parts)

    return key_of


def field_refs(plans: Sequence[FieldPlan], passthrough: Sequence[str]) -> dict[str, FieldRef]:
    """The fields a filter may name: every target (parsed by its rule) and every pass-through."""
    refs = {name: FieldRef(name, lambda value: value, ANY) for name in passthrough}
    refs.update({p.target: FieldRef(p.source, p.parse, p.parsed_kind) for p in plans})
    return refs
