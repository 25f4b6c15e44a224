"""The door of POST /batch: content types, the range of numbers, strict request fields."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from starlette.requests import Request

from api.body import may_hold_number_out_of_range, numbers_in_range, parse_json, require_json
from api.errors import ApiError
from schemas import jsonio
from schemas.http import MAX_NUMBER_DIGITS, MAX_NUMBER_EXPONENT, BatchCreate


def _request(content_type: str | None) -> Request:
    headers = [] if content_type is None else [(b"content-type", content_type.encode())]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers})


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.batch+json",
    ],
)
def test_json_or_no_declared_type_passes(content_type: str | None) -> None:
    require_json(_request(content_type))


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
        "text/json+html",
        "",
    ],
)
def test_other_content_types_get_415(content_type: str) -> None:
    with pytest.raises(ApiError) as refused:
        require_json(_request(content_type))
    assert (refused.value.status_code, refused.value.error) == (415, "unsupported_media_type")


@pytest.mark.parametrize(
    "literal",
    [
        "1e-999999999",
        "1e999999999",
        "1e101",
        "1e-101",
        "12345678901e95",
        "9" * 101,
        "-" + "9" * 101,
        "0." + "0" * 100 + "1",
        "1." + "1" * 100,
    ],
)
def test_numbers_out_of_range_get_400_without_the_number(literal: str) -> None:
    with pytest.raises(ApiError) as refused:
        parse_json(f'{{"data": [{{"amount": {literal}}}]}}'.encode())
    assert (refused.value.status_code, refused.value.error) == (400, "bad_request")
    assert refused.value.details == {
        "max_digits": MAX_NUMBER_DIGITS,
        "max_exponent": MAX_NUMBER_EXPONENT,
    }
    assert literal[:20] not in refused.value.message


@pytest.mark.parametrize(
    "literal", ["1e100", "1e-100", "9" * 100, "100.50", "0", "0.0", "-3", "6.02214076e23"]
)
def test_numbers_in_range_pass(literal: str) -> None:
    assert parse_json(f"[{literal}]".encode()) == jsonio.loads(f"[{literal}]")


def test_text_with_a_lone_surrogate_gets_400() -> None:
    for body in (b'{"data": [{"name": "\\ud800"}]}', b'{"metadata": {"k": "\\udfff"}}'):
        with pytest.raises(ApiError) as refused:
            parse_json(body)
        assert refused.value.status_code == 400
    assert parse_json(b'["\\ud83d\\ude00"]') == ["\N{GRINNING FACE}"]


numbers = st.one_of(
    st.integers(min_value=-(10**120), max_value=10**120),
    st.decimals(allow_nan=False, allow_infinity=False),
    # Near the bounds: up to 110 digits, exponents up to 120 either way.
    st.builds(
        lambda digits, exponent: Decimal(f"{digits}e{exponent}"),
        st.integers(min_value=1, max_value=10**110),
        st.integers(min_value=-120, max_value=120),
    ),
)


@given(st.lists(numbers, min_size=1, max_size=3))
def test_every_out_of_range_number_trips_the_quick_look(values: list[Any]) -> None:
    """The byte pattern that decides whether the document is walked never misses one."""
    encoded = jsonio.dumps(values)
    if not numbers_in_range(jsonio.loads(encoded)):
        assert may_hold_number_out_of_range(encoded)


# What the quick look must find, written as a pattern: a run of 90 digits and points, or a digit
# or point before an exponent of two digits or more.
_OUT_OF_RANGE_SHAPE = re.compile(rb"[\d.]{90}|[\d.][eE][+-]?\d{2}")


@given(
    st.binary(max_size=300) | st.text(alphabet="0123456789.eE+- ax", max_size=300).map(str.encode)
)
def test_the_quick_look_finds_every_shape_an_out_of_range_number_can_have(body: bytes) -> None:
    if _OUT_OF_RANGE_SHAPE.search(body):
        assert may_hold_number_out_of_range(body)


def test_the_quick_look_passes_a_body_of_ordinary_numbers_and_text() -> None:
    body = b'{"data": [{"amt": 100.50, "n": 12345678, "x": 1.5e7, "email": "e0e1@example.com"}]}'
    assert not may_hold_number_out_of_range(body)
    assert may_hold_number_out_of_range(body.replace(b"1.5e7", b"1.5e-17"))
    assert may_hold_number_out_of_range(body.replace(b"12345678", b"1" * 90))


def test_nested_numbers_are_walked() -> None:
    assert not numbers_in_range({"a": [{"b": [Decimal("1e200")]}]})
    assert numbers_in_range({"a": [{"b": [Decimal("1e20"), True, "1e200"]}]})


@pytest.mark.parametrize(
    "field",
    [
        {"batch_size": "10"},
        {"batch_size": True},
        {"batch_size": Decimal("10.0")},
        {"parallel": "true"},
        {"parallel": 1},
        {"pipeline": 7},
        {"metadata": {"k": 1}},
    ],
)
def test_request_fields_are_not_coerced(field: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        BatchCreate.model_validate({"data": [], **field})
