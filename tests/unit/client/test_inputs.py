"""Reading items from JSON arrays, NDJSON and CSV: exact decimals, line numbers on errors."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest

from batchline.client.errors import InputError
from batchline.client.inputs import InputFormat, detect_format, read_items
from schemas import jsonio
from schemas.http import MAX_ITEMS

ITEM = {"ts": "2024-01-01T00:00:00Z", "amt": "100.50", "email": "user@example.com"}


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_json_array_file_gives_its_items_in_order(tmp_path: Path) -> None:
    source = write(tmp_path, "items.json", '[{"n": 1}, {"n": 2}, {"n": 3}]')
    assert read_items(source) == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_ndjson_file_gives_one_item_per_line_and_skips_blank_lines(tmp_path: Path) -> None:
    source = write(tmp_path, "items.ndjson", '{"n": 1}\n\n{"n": 2}\n   \n{"n": 3}\n')
    assert read_items(source) == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_jsonl_suffix_is_read_as_ndjson(tmp_path: Path) -> None:
    assert read_items(write(tmp_path, "items.JSONL", '{"n": 1}\n')) == [{"n": 1}]


def test_csv_file_gives_one_item_per_row_with_string_values(tmp_path: Path) -> None:
    source = write(
        tmp_path,
        "items.csv",
        'ts,amt,email\n2024-01-01T00:00:00Z,100.50,user@example.com\n"2024",7,"a,b"\n',
    )
    assert read_items(source) == [
        ITEM,
        {"ts": "2024", "amt": "7", "email": "a,b"},
    ]


def test_csv_with_a_byte_order_mark_keeps_the_first_column_name(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfamt\n1.50\n")
    assert read_items(str(path)) == [{"amt": "1.50"}]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("items.json", '[{"amt": 100.50}, {"amt": 1e-2}]'),
        ("items.ndjson", '{"amt": 100.50}\n{"amt": 1e-2}\n'),
    ],
)
def test_json_numbers_stay_exact_decimals_and_are_sent_unchanged(
    tmp_path: Path, name: str, text: str
) -> None:
    items = read_items(write(tmp_path, name, text))
    assert items == [{"amt": Decimal("100.50")}, {"amt": Decimal("1e-2")}]
    assert all(isinstance(item["amt"], Decimal) for item in items)
    # Scale and spelling survive the trip back into a request body.
    assert jsonio.dumps(items) == b'[{"amt":100.50},{"amt":0.01}]'


def test_malformed_ndjson_line_reports_its_row_from_0_and_its_line(tmp_path: Path) -> None:
    source = write(tmp_path, "items.ndjson", '{"n": 1}\n\n{"n": 2}\n{"n": \n{"n": 4}\n')
    with pytest.raises(InputError, match=r"items\.ndjson row 2 \(line 4\): Malformed JSON"):
        read_items(source)


def test_ndjson_nan_is_refused_with_its_line_number(tmp_path: Path) -> None:
    source = write(tmp_path, "items.ndjson", '{"amt": 1}\n{"amt": NaN}\n')
    with pytest.raises(InputError, match="line 2"):
        read_items(source)


def test_csv_row_with_too_few_values_reports_its_row_from_0_and_its_line(tmp_path: Path) -> None:
    source = write(tmp_path, "items.csv", "a,b\n1,2\n3\n")
    with pytest.raises(InputError, match=r"items\.csv row 1 \(line 3\): 1 values for 2 columns"):
        read_items(source)


def test_csv_header_with_a_repeated_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"line 1 \(the header\): a column name repeated"):
        read_items(write(tmp_path, "items.csv", "a,a\n1,2\n"))


def test_json_file_that_is_not_an_array_is_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="expected a JSON array.*ndjson"):
        read_items(write(tmp_path, "items.json", '{"data": []}'))


def test_malformed_json_array_is_refused_without_echoing_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="Malformed JSON") as caught:
        read_items(write(tmp_path, "items.json", '[{"email": "secret@example.com",]'))
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(("name", "text"), [("e.json", "[]"), ("e.ndjson", "\n"), ("e.csv", "a\n")])
def test_a_file_without_items_is_refused(tmp_path: Path, name: str, text: str) -> None:
    with pytest.raises(InputError, match="no items"):
        read_items(write(tmp_path, name, text))


def test_more_items_than_one_batch_holds_is_refused_early(tmp_path: Path) -> None:
    source = write(tmp_path, "big.ndjson", '{"n": 1}\n' * (MAX_ITEMS + 1))
    with pytest.raises(InputError, match=f"more than {MAX_ITEMS} items"):
        read_items(source)


def test_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_items(str(tmp_path / "absent.ndjson"))


def test_stdin_is_read_in_the_given_format() -> None:
    stdin = io.BytesIO(b'{"amt": 2.50}\n{"amt": 3}\n')
    assert read_items("-", InputFormat.ndjson, stdin) == [{"amt": Decimal("2.50")}, {"amt": 3}]


def test_stdin_without_a_format_asks_for_one() -> None:
    with pytest.raises(InputError, match="--format"):
        detect_format("-", None)


def test_unknown_suffix_asks_for_a_format() -> None:
    with pytest.raises(InputError, match="--format"):
        detect_format("items.txt", None)


def test_given_format_wins_over_the_suffix(tmp_path: Path) -> None:
    source = write(tmp_path, "items.txt", "a\nx\n")
    assert read_items(source, InputFormat.csv) == [{"a": "x"}]
