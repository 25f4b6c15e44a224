"""The built-in default@1 reproduces the seed's example byte for byte."""

from __future__ import annotations

from decimal import Decimal

from schemas import jsonio
from transforms import CompiledPipeline, RowError

SEED_INPUT = (
    b'{"ts": "2024-01-01T00:00:00Z", "amt": "100.50", '
    b'"email": "user@example.com", "phone": "555-0123"}'
)
SEED_OUTPUT = (
    b'{"timestamp":"2024-01-01T00:00:00Z","amount":100.50,'
    b'"email":"u***r@example.com","phone":"***-0123"}'
)


def test_seed_example_gives_the_seed_result_byte_for_byte(default: CompiledPipeline) -> None:
    outcome = default.run([jsonio.loads(SEED_INPUT)])
    assert outcome.errors == [] and outcome.filtered == 0 and outcome.processed == 1
    assert outcome.results[0]["amount"] == Decimal("100.50")
    assert jsonio.dumps(outcome.results[0]) == SEED_OUTPUT


def test_default_carries_its_ref_and_digest(default: CompiledPipeline) -> None:
    assert default.ref == "default@1" and default.name == "default" and default.version == 1
    assert default.on_invalid == "reject"
    assert len(default.digest) == 64


def test_unparsable_amount_is_reported_under_the_output_field_name(
    default: CompiledPipeline,
) -> None:
    good = jsonio.loads(SEED_INPUT)
    outcome = default.run([good, {**good, "amt": "abc"}], first_row=10)
    assert outcome.result_rows == [10]
    assert outcome.errors == [RowError(11, "amount", "Invalid number format")]
    assert outcome.errors[0].as_dict() == {
        "row": 11,
        "field": "amount",
        "reason": "Invalid number format",
    }


def test_only_the_first_failing_field_in_rule_order_is_reported(default: CompiledPipeline) -> None:
    outcome = default.run([{"ts": "x", "amt": "y", "email": "z", "phone": "1"}])
    assert outcome.errors == [RowError(0, "timestamp", "Invalid timestamp format")]


def test_missing_field_and_non_object_records_are_errors(default: CompiledPipeline) -> None:
    good = jsonio.loads(SEED_INPUT)
    outcome = default.run([[1, 2], {k: v for k, v in good.items() if k != "phone"}, None, good])
    assert outcome.errors == [
        RowError(0, "$", "Record is not a JSON object"),
        RowError(1, "phone", "Missing required field"),
        RowError(2, "$", "Record is not a JSON object"),
    ]
    assert outcome.result_rows == [3]


def test_null_counts_as_missing(default: CompiledPipeline) -> None:
    good = jsonio.loads(SEED_INPUT)
    assert default.first_error([{**good, "email": None}]) == RowError(
        0, "email", "Missing required field"
    )


def test_unnamed_fields_are_dropped(default: CompiledPipeline) -> None:
    good = jsonio.loads(SEED_INPUT)
    outcome = default.run([{**good, "ssn": "123-45-6789"}])
    assert set(outcome.results[0]) == {"timestamp", "amount", "email", "phone"}


def test_first_error_is_the_lowest_row_and_matches_run(default: CompiledPipeline) -> None:
    good = jsonio.loads(SEED_INPUT)
    records = [good, good, {**good, "phone": "12"}, {**good, "amt": ""}]
    assert default.first_error(records, first_row=100) == RowError(
        102, "phone", "Invalid phone format"
    )
    assert default.run(records, first_row=100).errors[0] == default.first_error(records, 100)
    assert default.first_error([good, good]) is None


def test_reasons_never_contain_the_raw_value(default: CompiledPipeline) -> None:
    secret = "topsecret-value"
    record = {"ts": secret, "amt": secret, "email": secret, "phone": secret}
    for field in record:
        outcome = default.run([{**jsonio.loads(SEED_INPUT), field: secret}])
        assert secret not in repr(outcome.errors)
