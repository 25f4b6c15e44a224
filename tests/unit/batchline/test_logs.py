"""Log lines: JSON or one readable line, the same fields, never an exception's message; the
libraries' chatter and retried leader errors below the line."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from telemetry.logs import (
    JsonFormatter,
    QuietFilter,
    TextFormatter,
    logging_config,
    resolved_format,
)


def record(
    message: str, level: int = logging.INFO, name: str = "streams.finishing", **extra: object
) -> logging.LogRecord:
    made = logging.LogRecord(name, level, __file__, 1, message, None, None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def failing_record() -> logging.LogRecord:
    try:
        raise ValueError("secret-value-from-input")
    except ValueError:
        made = logging.LogRecord("api", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    return made


def test_json_and_text_carry_the_same_fields() -> None:
    line = record("batch finished", batch_id="batch_1", status="completed")
    entry = json.loads(JsonFormatter().format(line))
    assert (entry["level"], entry["logger"], entry["event"]) == (
        "info",
        "streams.finishing",
        "batch finished",
    )
    assert (entry["batch_id"], entry["status"]) == ("batch_1", "completed")
    text = TextFormatter(colour=False).format(line)
    assert text.endswith(
        "INFO  streams.finishing  batch finished  batch_id=batch_1  status=completed"
    )
    assert "\n" not in text


def test_colour_on_a_terminal_and_one_line_for_a_message_of_many() -> None:
    coloured = TextFormatter(colour=True).format(record("two\nlines", level=logging.ERROR))
    assert "\x1b[" in coloured and "\n" not in coloured


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter(colour=False)])
def test_an_exception_is_its_type_and_frames_never_its_message(
    formatter: logging.Formatter,
) -> None:
    written = formatter.format(failing_record())
    assert "ValueError" in written and "test_logs.py" in written
    assert "secret-value-from-input" not in written


def test_lifecycle_lines_and_retried_leader_errors_are_dropped_and_the_rest_kept() -> None:
    quiet = QuietFilter()
    assert not quiet.filter(record("[^--Consumer]: Starting...", name="faust.transport"))
    assert not quiet.filter(record("[^-WorkerResources]: Stopping...", name="streams.resources"))
    assert quiet.filter(record("[^Worker]: Ready", name="faust.worker"))
    assert quiet.filter(record("[^Worker]: Starting...", name="faust.worker"))
    leader = "Failed fetch offsets from 1: [Error 6] NotLeaderForPartitionError: TopicPartition"
    assert not quiet.filter(record(leader, logging.ERROR, "aiokafka.consumer.fetcher"))
    assert quiet.filter(record("Unable to connect to node", logging.ERROR, "aiokafka.conn"))
    assert quiet.filter(record("[^--Consumer]: Crashed", logging.ERROR, "faust.transport"))
    assert quiet.filter(record("batch finished"))


def test_a_retried_metadata_refresh_is_a_warning_not_an_error() -> None:
    refresh = record("Unable to update metadata from [1]", logging.ERROR, "aiokafka")
    assert QuietFilter().filter(refresh)
    assert (refresh.levelno, refresh.levelname) == (logging.WARNING, "WARNING")
    ours = record("Unable to update metadata from the store", logging.ERROR, "streams.app")
    assert QuietFilter().filter(ours) and ours.levelno == logging.ERROR


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_is_text_on_a_terminal_and_json_elsewhere() -> None:
    assert resolved_format("auto", Terminal()) == "text"
    assert resolved_format("auto", io.StringIO()) == "json"
    assert resolved_format("json", Terminal()) == "json"
    assert resolved_format("text", io.StringIO()) == "text"


def test_faust_and_mode_speak_from_warning_and_aiokafka_never_below_it() -> None:
    at_info = logging_config("INFO", "json")["loggers"]
    assert at_info["faust"]["level"] == at_info["mode"]["level"] == "WARNING"
    assert at_info["faust.worker"]["level"] == "INFO"  # its Ready line
    at_debug = logging_config("debug", "json")["loggers"]
    assert at_debug["faust"]["level"] == at_debug["mode"]["level"] == "INFO"
    # aiokafka's DEBUG lines quote every message it sends: records, personal data included.
    assert at_debug["aiokafka"]["level"] == "WARNING"
