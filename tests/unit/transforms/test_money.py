"""Money parsing: exact decimals that keep the input's scale."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from schemas import jsonio
from transforms.invalid import Invalid
from transforms.money import make_round, parse_decimal


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("100.50", "100.50"),
        (Decimal("100.5"), "100.5"),
        (100.5, "100.5"),
        (7, "7"),
        ("-3", "-3"),
        ("+3", "3"),
        ("1,234.56", "1234.56"),
        ("$1,234.56", "1234.56"),
        ("-$1,234.56", "-1234.56"),
        ("$-5", "-5"),
        ("€12.00", "12.00"),
        ("£ 7", "7"),
        ("100 €", "100"),
        ("¥1,000", "1000"),
        (" 42 ", "42"),
        (".5", "0.5"),
        ("1234567.891", "1234567.891"),
    ],
)
def test_accepted_numbers_keep_their_scale(raw: Any, expected: str) -> None:
    result = parse_decimal(raw)
    assert isinstance(result, Decimal)
    assert str(result) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "abc",
        "NaN",
        "Infinity",
        "-Infinity",
        "",
        " ",
        "1,2,3",
        "12,50",
        "1e3",
        "1_000",
        "1-2",
        "$$1",
        "١٢٣",
        True,
        None,
        [1],
        {"a": 1},
        Decimal("NaN"),
        Decimal("Infinity"),
        float("nan"),
    ],
)
def test_rejected_numbers_say_invalid_number_format(raw: Any) -> None:
    result = parse_decimal(raw)
    assert isinstance(result, Invalid) and result.reason == "Invalid number format"


def test_absurdly_large_numbers_are_out_of_range() -> None:
    for raw in ("9" * 60, Decimal("1E+50")):
        result = parse_decimal(raw)
        assert isinstance(result, Invalid) and result.reason == "Number out of range"


def test_output_bytes_keep_the_scale() -> None:
    assert jsonio.dumps({"amount": parse_decimal("100.50")}) == b'{"amount":100.50}'


def test_round_fixes_the_scale() -> None:
    assert str(make_round(2, "half_up")(Decimal("2.345"))) == "2.35"
    assert str(make_round(2, "half_even")(Decimal("2.345"))) == "2.34"
    assert str(make_round(2, "half_even")(Decimal("7"))) == "7.00"
    assert str(make_round(0, "floor")(Decimal("-1.5"))) == "-2"
    assert str(make_round(2, "down")(Decimal("9" * 35 + ".999"))) == "9" * 35 + ".99"
