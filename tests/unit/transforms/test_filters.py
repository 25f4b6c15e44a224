"""Record-level filters: empty, comparisons, membership and duplicates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from transforms import CompiledPipeline, RowError, SpecError

MakePipeline = Callable[..., CompiledPipeline]

FIELDS: list[dict[str, Any]] = [
    {"source": "id", "parse": "string"},
    {"source": "amt", "target": "amount", "parse": "decimal"},
    {"source": "ts", "target": "timestamp", "parse": "timestamp", "required": False},
    {"source": "status", "required": False},
]


def _rows(pipeline: CompiledPipeline, records: list[Any]) -> tuple[list[int], int]:
    outcome = pipeline.run(records)
    return outcome.result_rows, outcome.filtered


def test_empty_drops_missing_null_blank_and_empty_values(make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline(FIELDS, filters=[{"op": "empty", "field": "status"}])
    statuses: list[Any] = ["ok", None, " ", [], {}, 0]
    records: list[Any] = [{"id": "a", "amt": 1, "status": value} for value in statuses]
    records.append({"id": "b", "amt": 1})
    assert _rows(pipeline, records) == ([0, 5], 5)


def test_empty_runs_before_validation(make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline(FIELDS, filters=[{"op": "empty", "field": "amount"}])
    outcome = pipeline.run([{"id": "a"}, {"id": "b", "amt": "x"}])
    assert outcome.filtered == 1
    assert outcome.errors == [RowError(1, "amount", "Invalid number format")]
    assert pipeline.first_error([{"id": "a"}]) is None


def test_comparisons_use_the_parsed_value(make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline(
        FIELDS,
        filters=[
            {"op": "lt", "field": "amount", "value": "0"},
            {"op": "gte", "field": "timestamp", "value": "2030-01-01"},
            {"op": "equals", "field": "status", "value": "test"},
        ],
    )
    records = [
        {"id": "a", "amt": "$1,000.00"},
        {"id": "b", "amt": "-0.01"},
        {"id": "c", "amt": "5", "ts": 1893456000},  # 2030-01-01T00:00:00Z
        {"id": "d", "amt": "5", "ts": "2029-12-31T23:59:59Z"},
        {"id": "e", "amt": "5", "status": "test"},
        {"id": "f", "amt": "5", "status": "live"},
    ]
    assert _rows(pipeline, records) == ([0, 3, 5], 3)


def test_equality_of_decimals_ignores_scale_but_json_true_is_not_one(
    make_pipeline: MakePipeline,
) -> None:
    pipeline = make_pipeline(
        FIELDS,
        filters=[
            {"op": "equals", "field": "amount", "value": 100.5},
            {"op": "equals", "field": "status", "value": 1},
        ],
    )
    records = [{"id": "a", "amt": "100.50"}, {"id": "b", "amt": 1, "status": True}]
    assert _rows(pipeline, records) == ([1], 1)


def test_in_and_not_in(make_pipeline: MakePipeline) -> None:
    keep_live = make_pipeline(
        FIELDS, filters=[{"op": "not_in", "field": "status", "values": ["live", "beta"]}]
    )
    drop_ids = make_pipeline(FIELDS, filters=[{"op": "in", "field": "id", "values": ["x", "y"]}])
    records = [
        {"id": "x", "amt": 1, "status": "live"},
        {"id": "z", "amt": 1, "status": "test"},
        {"id": "y", "amt": 1},
    ]
    # A record without the field never matches a comparison, so row 2 is kept by not_in.
    assert _rows(keep_live, records) == ([0, 2], 1)
    assert _rows(drop_ids, records) == ([1], 2)


def test_not_equals(make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline(
        FIELDS, filters=[{"op": "not_equals", "field": "status", "value": "live"}]
    )
    records = [{"id": "a", "amt": 1, "status": "live"}, {"id": "b", "amt": 1, "status": "x"}]
    assert _rows(pipeline, records) == ([0], 1)


def test_duplicates_within_the_batch_are_dropped_by_key(make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline(
        FIELDS, filters=[{"op": "duplicate", "key": ["id", "amount"]}], on_invalid="skip"
    )
    records = [
        {"id": "a", "amt": "1.0"},
        {"id": "a", "amt": "1.00"},  # the same amount: a duplicate
        {"id": "a", "amt": "x"},  # invalid, so it is neither kept nor a duplicate
        {"id": "a", "amt": "2"},
        {"amt": "1.0"},  # no key: invalid here (id is required)
        {"id": "a", "amt": 2},
    ]
    outcome = pipeline.run(records, first_row=50)
    assert outcome.result_rows == [50, 53]
    assert outcome.filtered == 2
    assert [error.row for error in outcome.errors] == [52, 54]
    assert pipeline.duplicate_rows(records, first_row=50) == frozenset({51, 55})


def test_given_duplicate_rows_replace_local_detection(make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline(FIELDS, filters=[{"op": "duplicate", "key": ["id"]}])
    batch = [{"id": "a", "amt": 1}, {"id": "b", "amt": 1}, {"id": "a", "amt": 1}]
    rows = pipeline.duplicate_rows(batch)
    assert rows == frozenset({2})
    second_chunk = pipeline.run(batch[2:], first_row=2, duplicate_rows=rows)
    assert (second_chunk.processed, second_chunk.filtered) == (0, 1)


def test_no_duplicate_filter_means_no_duplicate_rows(make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline(FIELDS)
    assert pipeline.duplicate_rows([{"id": "a", "amt": 1}] * 3) == frozenset()


def test_ordering_on_unparsed_field_is_a_spec_error(make_pipeline: MakePipeline) -> None:
    with pytest.raises(SpecError, match=r"filters\[0\].*'gt' needs an ordered value"):
        make_pipeline(FIELDS, filters=[{"op": "gt", "field": "status", "value": 1}])


def test_constant_that_does_not_parse_is_a_spec_error(make_pipeline: MakePipeline) -> None:
    with pytest.raises(SpecError, match=r"filters\[0\].*does not parse as a decimal"):
        make_pipeline(FIELDS, filters=[{"op": "gt", "field": "amount", "value": "lots"}])
