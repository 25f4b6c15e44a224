"""schemas.jsonio on msgspec: exact decimals, every failure a JSONDecodeError, and output
byte-identical to the simplejson codec it replaced (kept here as the reference)."""

from __future__ import annotations

import collections
import enum
import platform
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
import simplejson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import jsonio
from schemas.jsonio import JSONDecodeError

SECRET = "4111-1111-1111-1111 jane.doe@example.com"


def _isoformat(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def reference_dumps(value: Any) -> bytes:
    """The codec before msgspec, as it was: simplejson, datetimes through default=."""
    return simplejson.dumps(
        value,
        use_decimal=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_isoformat,
    ).encode()


def outcome(write: Callable[[Any], bytes], value: Any) -> bytes | type[BaseException]:
    try:
        return write(value)
    except Exception as exc:  # noqa: BLE001 - the type is what is compared
        return type(exc)


@pytest.fixture
def unlimited_int_digits() -> Iterator[None]:
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(before)


def decode_error(document: bytes | str) -> JSONDecodeError:
    with pytest.raises(JSONDecodeError) as caught:
        jsonio.loads(document)
    assert type(caught.value) is JSONDecodeError
    return caught.value


# ---------------------------------------------------------------------------------------------
# Decoding: numbers


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (b"100.50", "100.50"),
        (b"0.1", "0.1"),
        (b"1.0", "1.0"),
        (b"-0.0", "-0.0"),
        (b"1e5", "1E+5"),
        (b"1E+5", "1E+5"),
        (b"1.5e-7", "1.5E-7"),
        (b"0.10000000000000000000000000001", "0.10000000000000000000000000001"),
    ],
)
def test_numbers_with_a_fraction_or_exponent_are_exact_decimals(
    document: bytes, expected: str
) -> None:
    value = jsonio.loads(document)
    assert type(value) is Decimal
    assert str(value) == expected  # the scale of the literal is kept


@pytest.mark.parametrize(
    "literal", ["0", "-0", "7", "-9223372036854775809", "18446744073709551616", "9" * 4300]
)
def test_integers_are_ints(literal: str) -> None:
    value = jsonio.loads(literal)
    assert type(value) is int
    assert value == int(literal)


def test_money_keeps_its_scale_through_a_round_trip() -> None:
    document = b'{"amt":100.50,"s":"100.50","n":3}'
    value = jsonio.loads(document)
    assert value == {"amt": Decimal("100.50"), "s": "100.50", "n": 3}
    assert jsonio.dumps(value) == document


@pytest.mark.parametrize(
    ("document", "written"),
    [
        ("1e5", b"1E+5"),
        ("1E+5", b"1E+5"),
        ("-0.0", b"-0.0"),
        ("1e-999999999", b"1E-999999999"),
        ("1e999999999", b"1E+999999999"),
    ],
)
def test_exponent_forms_round_trip_as_simplejson_wrote_them(document: str, written: bytes) -> None:
    assert jsonio.dumps(jsonio.loads(document)) == written
    assert reference_dumps(simplejson.loads(document, use_decimal=True)) == written


@pytest.mark.parametrize("digits", [4_301, 5_000, 100_000])
@pytest.mark.parametrize("sign", ["", "-"])
def test_integers_beyond_the_int_digit_limit_are_a_decode_error(digits: int, sign: str) -> None:
    # Before msgspec this escaped as ValueError (a 500 in the API). Decoding them exactly would
    # only move the failure: str() of such an int raises the same ValueError in dumps.
    error = decode_error(f'{{"n": {sign}{"7" * digits}}}'.encode())
    assert str(error) == "Malformed JSON: integer of more than 4300 digits at an unknown position"


@pytest.mark.usefixtures("unlimited_int_digits")
@pytest.mark.parametrize("digits", [5_000, 100_000])
def test_huge_integers_are_exact_when_the_interpreter_allows_them(digits: int) -> None:
    literal = "-" + "7" * digits
    document = f'{{"a": 1.50, "n": {literal}, "s": "\\ud83d\\ude00"}}'.encode()
    value = jsonio.loads(document)
    assert value == {"a": Decimal("1.50"), "n": int(literal), "s": "\U0001f600"}
    assert type(value["n"]) is int
    assert jsonio.dumps(value) == f'{{"a":1.50,"n":{literal},"s":"\U0001f600"}}'.encode()


@pytest.mark.usefixtures("unlimited_int_digits")
@pytest.mark.parametrize(
    "rest", [', "s": "\\ud800"', ', "x": NaN', ", 1", ', "s": "\\ud800", "t": 1']
)
def test_the_huge_integer_path_refuses_what_msgspec_refuses(rest: str) -> None:
    decode_error(f'{{"n": {"7" * 5_000}{rest}}}'.encode())


@pytest.mark.parametrize("document", ["1e1000000000000000000", "[1E" + "9" * 5000 + "]"])
def test_exponents_beyond_decimal_are_a_decode_error(document: str) -> None:
    # decimal.InvalidOperation (an ArithmeticError) escaped before.
    decode_error(document)


# ---------------------------------------------------------------------------------------------
# Decoding: refusals


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("NaN", "NaN is not valid JSON"),
        ("Infinity", "Infinity is not valid JSON"),
        ("-Infinity", "-Infinity is not valid JSON"),
        ('{"amt": NaN}', "NaN is not valid JSON"),
        ("[1, -Infinity]", "-Infinity is not valid JSON"),
    ],
)
def test_nan_and_infinity_are_refused(document: str, message: str) -> None:
    assert str(decode_error(document)) == message
    assert str(decode_error(document.encode())) == message


MALFORMED: list[bytes | str] = [
    b"",
    b"   ",
    b'{"a": 1,}',
    b'{"a" 1}',
    b"[1 2]",
    b'{"a": "x"',
    b'"unterminated',
    b"1 2",
    b"01",
    b"+1",
    b".5",
    b"1.",
    b"tru",
    b"{1: 2}",
    b'"\\x"',
    b'"tab\there"',
    b'"nul\x00"',
    b"\xc2\xa01",
    b'{"a": "\xff"}',
    b"\xff{}",
    b'"\xed\xa0\x80"',  # a surrogate encoded as UTF-8 is not UTF-8
    b'"\\ud800"',
    b'{"a": "\\ud800"}',
    b'["\\ud800", 1]',
    b'"\\udc00"',
    b'"\\ud800\\u0041"',
    b'"\\ud800xxxxxxxxxx"',
    '"\ud800"',  # a str holding a lone surrogate
    '[1, 2, 3, 4, 5, 6, 7, "\udfff"]',
    b"\xef\xbb\xbf\xef\xbb\xbf{}",
    b" \xef\xbb\xbf{}",
    b"[" * 100_000,
    "[" * 100_000,
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 100_000,
]


@pytest.mark.parametrize("document", MALFORMED, ids=lambda d: repr(d[:24]))
def test_malformed_documents_are_a_decode_error_naming_a_position(document: bytes | str) -> None:
    message = str(decode_error(document))
    assert message.startswith("Malformed JSON: ")
    where = message.rpartition(" at ")[2]
    assert where == "an unknown position" or (
        where.startswith("character ") and where.removeprefix("character ").isdigit()
    )


@pytest.mark.parametrize(
    "template",
    [
        '{{"card": "{}", "amt": 1,}}',
        '{{"card": "{}" "amt": 1}}',
        '{{"card": "{}", "amt": NaN}}',
        '{{"card": "{}", "amt": 1e1000000000000000000}}',
        '{{"card": "{}", "n": ' + "1" * 5000 + "}}",
        '{{"card": "{}", "s": "\\ud800"}}',
        '{{"card": "{}"',
        '{{"card": "{}", "bad": "\\q"}}',
        '[{{"card": "{}"}}, ' + "[" * 5000,
    ],
)
def test_the_error_message_never_echoes_the_document(template: str) -> None:
    document = template.format(SECRET)
    for form in (document, document.encode(), b'{"x":"\xff", ' + document.encode()[1:]):
        message = str(decode_error(form))
        assert "4111" not in message and "jane" not in message


with_surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF) | st.characters()


@settings(max_examples=400, deadline=None)
@given(
    st.binary(max_size=64)
    | st.text(max_size=64).map(str.encode)
    | st.text(with_surrogates, max_size=64)
)
def test_any_document_decodes_or_raises_a_decode_error(document: bytes | str) -> None:
    try:
        jsonio.loads(document)
    except JSONDecodeError as exc:
        assert type(exc) is JSONDecodeError


def test_position_is_in_characters_of_the_document() -> None:
    comma = "Malformed JSON: trailing comma in object at character 8"
    assert str(decode_error('{"é": 1,}')) == comma
    assert str(decode_error('{"é": 1,}'.encode())) == comma  # byte 9, character 8
    assert str(decode_error(b'["ok", "\xff"]')) == "Malformed JSON: invalid UTF-8 at character 8"
    assert str(decode_error(b'{"a": ')) == "Malformed JSON: input data was truncated at character 6"


def test_duplicate_keys_keep_the_last_value_as_simplejson_did() -> None:
    document = '{"a": 1, "b": 2, "a": {"x": 3}, "b": [4]}'
    value = jsonio.loads(document)
    assert value == {"a": {"x": 3}, "b": [4]}
    assert list(value) == ["a", "b"]
    assert value == simplejson.loads(document, use_decimal=True)


@pytest.mark.parametrize("document", [b"\xef\xbb\xbf[1.50]", "\ufeff[1.50]"])
def test_one_leading_byte_order_mark_is_skipped_as_simplejson_did(
    document: bytes | str,
) -> None:
    assert jsonio.loads(document) == [Decimal("1.50")]
    assert simplejson.loads(document, use_decimal=True) == [Decimal("1.50")]


def test_documents_are_bytes_or_str() -> None:
    with pytest.raises(TypeError):
        jsonio.loads(bytearray(b"[]"))  # type: ignore[arg-type]


def test_strings_decode_with_every_character_kept() -> None:
    document = '{"é": "\U0001f600 \\ud83d\\ude00 \\u0000 \u2028"}'
    expected = {"é": "\U0001f600 \U0001f600 \x00 \u2028"}
    assert jsonio.loads(document) == expected
    assert jsonio.loads(document.encode()) == expected


# ---------------------------------------------------------------------------------------------
# Encoding


def test_dumps_is_compact_utf8_with_decimals_as_numbers() -> None:
    value = {"amount": Decimal("100.50"), "name": "Zoë \U0001f600", "list": [1, True, None]}
    written = '{"amount":100.50,"name":"Zoë \U0001f600","list":[1,true,null]}'.encode()
    assert jsonio.dumps(value) == written
    assert jsonio.dumps_str(value) == written.decode()


class Colour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


Point = collections.namedtuple("Point", "x y")
AWARE = datetime(2024, 1, 1, tzinfo=UTC)


def _general_dict() -> dict[Any, Any]:
    emptied: dict[Any, Any] = {0: 0, "a": 1}
    del emptied[0]
    return emptied


@pytest.mark.parametrize(
    "value",
    [
        AWARE,
        {"at": AWARE, "rows": [{"at": AWARE.replace(microsecond=120_000)}]},
        datetime(2024, 1, 1, 12, 30),
        datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2024, 1, 1, tzinfo=timezone(timedelta(seconds=30))),
        date(2024, 1, 1),
        [date(2024, 2, 29), {"d": date(2024, 2, 29)}],
        {"duration": 0.123457, "results": [{"amount": Decimal("1.00")}]},
        [1e16, 1e-07, 0.00001, 1.5e300, -0.0, 0.1, 5e-324, 1.7976931348623157e308],
        {"k": (1, 2), "p": Point(1, 2)},
        {"c": Colour.RED, "l": Level.HIGH, Colour.RED: 1},
        {1: "a", 1.5: "b", 1e16: "c", None: "e", Decimal("2.50"): "f", 10**30: "g"},
        {True: "t", False: "f"},
        _general_dict(),
        collections.OrderedDict(a=1),
        b"bytes",
        {"s": type("Text", (str,), {})("x"), "i": type("Number", (int,), {})(5)},
        '\x00\x1f\x7f"\\/\u2028\u2029',
        10**300,
    ],
    ids=lambda value: type(value).__name__,
)
def test_dumps_writes_what_simplejson_wrote(value: Any) -> None:
    assert jsonio.dumps(value) == reference_dumps(value)


def test_datetimes_keep_isoformat_not_msgspecs_z() -> None:
    assert jsonio.dumps({"at": AWARE}) == b'{"at":"2024-01-01T00:00:00+00:00"}'
    assert jsonio.dumps([date(2024, 1, 1)]) == b'["2024-01-01"]'


def _cycle() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        [float("inf")],
        {"a": -float("inf")},
        Decimal("NaN"),
        [Decimal("-Infinity")],
        Decimal("sNaN"),
        {float("nan"): 1},
        {1, 2},
        time(1, 2),
        uuid.UUID(int=1),
        object(),
        "\ud800",
        {"\udfff": 1},
        10**5000,
        _cycle(),
        {(1,): 2},
    ],
    ids=lambda value: type(value).__name__,
)
def test_dumps_refuses_what_simplejson_refused(value: Any) -> None:
    refused = outcome(reference_dumps, value)
    assert isinstance(refused, type)
    with pytest.raises(refused):
        jsonio.dumps(value)


def test_result_rows_take_the_msgspec_path_and_datetimes_do_not() -> None:
    rows = [
        {"timestamp": "2024-01-01T00:00:00Z", "amount": Decimal("100.50"), "email": "u***r@x.com"}
        for _ in range(3)
    ]
    assert jsonio._written_alike(rows)
    assert jsonio._written_alike({"duration": 0.5, "results": rows, "n": None})
    assert not jsonio._written_alike({"results": rows, "at": AWARE})
    assert not jsonio._written_alike([{"a": [1, {"b": date(2024, 1, 1)}]}])
    assert not jsonio._written_alike({"duration": 1e-05})
    assert not jsonio._written_alike([{1: "a"}])


@pytest.mark.skipif(platform.python_implementation() != "CPython", reason="CPython gc detail")
def test_the_one_call_child_listing_is_in_use_on_cpython() -> None:
    assert jsonio._gc_lists_children()
    assert jsonio._children is jsonio._children_by_gc


# ---------------------------------------------------------------------------------------------
# Properties against the reference


non_bmp = st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF)
texts = st.text(st.characters(exclude_categories=["Cs"])) | st.text(non_bmp, max_size=8)
integers = st.integers(min_value=-(10**300), max_value=10**300) | st.integers()
decimals = st.decimals(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | integers | decimals | texts,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(texts, children, max_size=5),
    max_leaves=30,
)
# What dumps is also given: floats, datetimes and dates (pydantic models in python mode).
written_values = st.recursive(
    st.none()
    | st.booleans()
    | integers
    | decimals
    | texts
    | st.floats()
    | st.datetimes(timezones=st.none() | st.timezones())
    | st.dates(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(texts, children, max_size=5),
    max_leaves=30,
)
CHILD_LISTINGS = [jsonio._children_by_gc, jsonio._children_by_type]


@pytest.mark.parametrize("children", CHILD_LISTINGS, ids=lambda f: f.__name__)
@settings(max_examples=400, deadline=None)
@given(json_values)
def test_dumps_is_simplejson_byte_for_byte_and_loads_reverses_it(
    children: Callable[[list[Any]], list[Any] | None], value: Any
) -> None:
    with mock.patch.object(jsonio, "_children", children):
        written = jsonio.dumps(value)
    reference = simplejson.dumps(
        value,
        use_decimal=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    ).encode()
    assert written == reference
    assert jsonio.loads(written) == value
    assert jsonio.loads(written.decode()) == value


@pytest.mark.parametrize("children", CHILD_LISTINGS, ids=lambda f: f.__name__)
@settings(max_examples=400, deadline=None)
@given(written_values)
def test_dumps_matches_the_reference_on_floats_and_datetimes_too(
    children: Callable[[list[Any]], list[Any] | None], value: Any
) -> None:
    with mock.patch.object(jsonio, "_children", children):
        assert outcome(jsonio.dumps, value) == outcome(reference_dumps, value)


@settings(max_examples=400, deadline=None)
@given(json_values, st.integers(min_value=0), st.binary(max_size=4), st.integers(0, 4))
def test_corrupted_documents_decode_or_raise_a_decode_error(
    value: Any, where: int, inserted: bytes, removed: int
) -> None:
    written = jsonio.dumps(value)
    cut = where % (len(written) + 1)
    document = written[:cut] + inserted + written[cut + removed :]
    try:
        decoded = jsonio.loads(document)
    except JSONDecodeError as exc:
        assert type(exc) is JSONDecodeError
    else:
        # Whatever still parses agrees with the reference decoder.
        assert decoded == simplejson.loads(document, use_decimal=True)


def test_decimals_as_strings_on_request_and_as_numbers_by_default() -> None:
    page = {"results": [{"amount": Decimal("100.50"), "n": 1, "tags": [Decimal("1E+2")]}]}
    assert jsonio.decimals_as("number", page) is page
    assert jsonio.dumps(jsonio.decimals_as("string", page)) == (
        b'{"results":[{"amount":"100.50","n":1,"tags":["1E+2"]}]}'
    )
