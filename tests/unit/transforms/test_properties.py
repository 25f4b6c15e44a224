"""Property-based tests: any JSON record yields an output or a typed error, never an exception."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import jsonio
from schemas.pipeline import PipelineSpec
from transforms import CompiledPipeline, PipelineRegistry, RowError
from transforms.emails import mask_email
from transforms.phones import mask_phone

from .conftest import HASH_SECRET

DEFAULT = PipelineRegistry.load(None, hash_secret=HASH_SECRET).get("default@1")
RICH = CompiledPipeline(
    PipelineSpec.model_validate(
        {
            "name": "rich",
            "version": 1,
            "on_invalid": "skip",
            "fields": [
                {
                    "source": "ts",
                    "parse": {"op": "timestamp", "timezone": "Asia/Kolkata"},
                    "transform": {"op": "truncate_timestamp", "unit": "hour"},
                    "required": False,
                },
                {
                    "source": "amt",
                    "parse": "decimal",
                    "transform": {"op": "round", "places": 2},
                    "default": "0",
                },
                {"source": "name", "transform": ["trim", "lowercase", "hash"], "required": False},
                {
                    "source": "card",
                    "transform": {"op": "mask", "count": 4, "from_end": True},
                    "required": False,
                },
                {"source": "s", "parse": "string", "required": False},
            ],
            "passthrough": ["keep"],
            "filters": [
                {"op": "empty", "field": "keep"},
                {"op": "gt", "field": "amt", "value": "1000000"},
                {"op": "in", "field": "s", "values": ["a", "b"]},
                {"op": "duplicate", "key": ["ts", "amt"]},
            ],
        }
    ),
    hash_secret=HASH_SECRET,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
likely_values = json_values | st.sampled_from(
    ["2024-01-01T00:00:00Z", "100.50", "$1,234.56", "user@example.com", "555-0123", "", "a"]
)
records = (
    st.dictionaries(
        st.sampled_from(["ts", "amt", "email", "phone", "name", "card", "s", "keep", "other"]),
        likely_values,
        max_size=9,
    )
    | json_values
)


def _check_outcome(pipeline: CompiledPipeline, batch: list[Any]) -> None:
    outcome = pipeline.run(batch, first_row=7)
    assert outcome.processed + outcome.filtered + len(outcome.errors) == len(batch)
    assert all(isinstance(error, RowError) for error in outcome.errors)
    assert [e.row for e in outcome.errors] == sorted(e.row for e in outcome.errors)
    assert pipeline.first_error(batch, 7) == (outcome.errors[0] if outcome.errors else None)
    for result in outcome.results:
        jsonio.dumps(result)  # every output serializes
        assert not any(isinstance(value, float) for value in result.values())


@settings(max_examples=300, deadline=None)
@given(st.lists(records, max_size=6))
def test_default_never_raises(batch: list[Any]) -> None:
    _check_outcome(DEFAULT, batch)


@settings(max_examples=300, deadline=None)
@given(st.lists(records, max_size=6))
def test_rich_spec_never_raises(batch: list[Any]) -> None:
    _check_outcome(RICH, batch)


@given(st.text(min_size=1, max_size=70), st.text(min_size=1, max_size=30))
def test_masked_email_shows_only_first_and_last_of_the_local_part(local: str, domain: str) -> None:
    result = mask_email(f"{local}@{domain}")
    if isinstance(result, str):
        # The whole output is determined by local[0], local[-1] and the domain: nothing else leaks.
        shown_tail = local[-1] if len(local) > 2 else ""
        assert result == local[0] + "***" + shown_tail + "@" + domain


@given(st.text(alphabet="0123456789 +-().x", max_size=40) | st.integers())
def test_masked_phone_never_shows_more_than_four_digits(raw: Any) -> None:
    result = mask_phone(raw)
    if isinstance(result, str):
        assert result.startswith("***-")
        assert sum(ch.isdigit() for ch in result) == 4


@given(
    st.decimals(
        allow_nan=False, allow_infinity=False, places=4, max_value=10**12, min_value=-(10**12)
    )
)
def test_money_keeps_value_and_scale(number: Decimal) -> None:
    out = DEFAULT.run([{"ts": 0, "amt": str(number), "email": "a@b.co", "phone": "1234"}])
    assert str(out.results[0]["amount"]) == str(number)
