"""E-mail and phone masking, and the general operators (mask, hash, replace, redact, ...)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from transforms import CompiledPipeline
from transforms.emails import mask_email
from transforms.invalid import Invalid
from transforms.phones import mask_phone

from .conftest import one

MakePipeline = Callable[..., CompiledPipeline]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("user@example.com", "u***r@example.com"),
        ("a.very.long.name@example.co.uk", "a***e@example.co.uk"),
        ("abc@x.io", "a***c@x.io"),
        ("ab@x.io", "a***@x.io"),
        ("a@x.io", "a***@x.io"),
        ("Ünïcødé@bücher.de", "Ü***é@bücher.de"),
        ("user+tag@Example.COM", "u***g@Example.COM"),
    ],
)
def test_email_keeps_first_and_last_of_the_local_part(raw: str, expected: str) -> None:
    assert mask_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "user",
        "@example.com",
        "user@",
        "user@example",
        "user@@example.com",
        "a@b@c.d",
        "us er@example.com",
        "user@exa mple.com",
        "user@.com",
        "user@example.",
        "user@ex..com",
        "user\n@example.com",
        "\ud800@example.com",
        "x" * 65 + "@example.com",
        42,
        None,
        ["a@b.c"],
    ],
)
def test_invalid_email_is_a_typed_error(raw: Any) -> None:
    result = mask_email(raw)
    assert isinstance(result, Invalid) and result.reason == "Invalid email format"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("555-0123", "***-0123"),
        ("+1 (555) 010-0123", "***-0123"),
        ("5550100123", "***-0123"),
        ("555.010.0123", "***-0123"),
        ("0123", "***-0123"),
        (5550100123, "***-0123"),
    ],
)
def test_phone_shows_only_the_last_four_digits(raw: Any, expected: str) -> None:
    assert mask_phone(raw) == expected


@pytest.mark.parametrize(
    "raw", ["123", "", "---", "555-CALL-NOW", "555\u00a00123", "٥٥٥٠١٢٣", -5550100, 123, True, None]
)
def test_invalid_phone_is_a_typed_error(raw: Any) -> None:
    result = mask_phone(raw)
    assert isinstance(result, Invalid) and result.reason == "Invalid phone format"


def test_character_mask_counts_from_either_end_and_skips_ignored(
    make_pipeline: MakePipeline,
) -> None:
    card = make_pipeline(
        [{"source": "card", "transform": [{"op": "mask", "char": "#", "count": 12, "ignore": "-"}]}]
    )
    assert one(card, {"card": "4111-1111-1111-1234"}) == {"card": "####-####-####-1234"}
    tail = make_pipeline(
        [{"source": "s", "transform": [{"op": "mask", "count": 2, "from_end": True}]}]
    )
    assert one(tail, {"s": "abcdef"}) == {"s": "abcd**"}
    everything = make_pipeline([{"source": "s", "transform": "mask"}])
    assert one(everything, {"s": "a.b"}) == {"s": "***"}
    assert one(everything, {"s": 1234}) == {"s": "****"}
    assert one(everything, {"s": {"x": 1}}) == ("s", "Expected a string")


def test_redact_drops_the_field_after_validating_it(make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline(
        [{"source": "id"}, {"source": "email", "transform": ["mask_email", "redact"]}]
    )
    assert one(pipeline, {"id": 1, "email": "user@example.com"}) == {"id": 1}
    assert one(pipeline, {"id": 1, "email": "nope"}) == ("email", "Invalid email format")


def test_replace_sets_a_constant(make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline([{"source": "name", "transform": {"op": "replace", "value": "[x]"}}])
    assert one(pipeline, {"name": "Alice"}) == {"name": "[x]"}


def test_keyed_hash_is_stable_keyed_and_hides_the_value(make_pipeline: MakePipeline) -> None:
    spec = [{"source": "email", "transform": ["trim", "lowercase", "hash"]}]
    pipeline = make_pipeline(spec)
    first = one(pipeline, {"email": " User@Example.com"})["email"]
    assert first == one(pipeline, {"email": "user@example.com "})["email"]
    assert len(first) == 64 and "user" not in first
    from schemas.pipeline import PipelineSpec

    other_secret = CompiledPipeline(
        PipelineSpec.model_validate({"name": "t", "version": 1, "fields": spec}),
        hash_secret=b"another",
    )
    assert one(other_secret, {"email": "user@example.com"})["email"] != first


def test_truncate_timestamp_and_round_decimal(make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline(
        [
            {
                "source": "ts",
                "parse": "timestamp",
                "transform": {"op": "truncate_timestamp", "unit": "hour"},
            },
            {
                "source": "day",
                "parse": "timestamp",
                "transform": {"op": "truncate_timestamp", "unit": "day"},
            },
            {"source": "amt", "parse": "decimal", "transform": {"op": "round", "places": 1}},
        ]
    )
    out = one(
        pipeline,
        {"ts": "2024-05-06T07:08:09.5+02:00", "day": "2024-05-06T23:59:59Z", "amt": "2.25"},
    )
    assert out == {
        "ts": "2024-05-06T05:00:00Z",
        "day": "2024-05-06T00:00:00Z",
        "amt": Decimal("2.2"),
    }


def test_trim_lowercase_uppercase(make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline(
        [
            {"source": "a", "transform": ["trim", "lowercase"]},
            {"source": "b", "transform": "uppercase"},
        ]
    )
    assert one(pipeline, {"a": "  MiXeD ", "b": "up"}) == {"a": "mixed", "b": "UP"}


def test_defaults_fill_missing_values_through_the_fields_steps(
    make_pipeline: MakePipeline,
) -> None:
    pipeline = make_pipeline(
        [
            {"source": "amt", "parse": "decimal", "default": "0.00"},
            {"source": "note", "default": None},
            {"source": "tag", "required": False},
        ]
    )
    assert one(pipeline, {}) == {"amt": Decimal("0.00"), "note": None}
    assert one(pipeline, {"amt": "1", "tag": "x"}) == {
        "amt": Decimal("1"),
        "note": None,
        "tag": "x",
    }


def test_passthrough_copies_listed_fields_unchanged(make_pipeline: MakePipeline) -> None:
    pipeline = make_pipeline([{"source": "id"}], passthrough=["meta", "flag"])
    record = {"id": 1, "meta": {"k": [1, 2]}, "flag": None, "secret": "s"}
    assert one(pipeline, record) == {"id": 1, "meta": {"k": [1, 2]}, "flag": None}
