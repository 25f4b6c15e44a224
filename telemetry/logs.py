"""Logs of every Batchline process, on stderr: readable lines on a terminal, JSON lines otherwise.

JSON fields: ``ts``, ``level``, ``logger``, ``event`` (the message), then whatever the call
passed in ``extra`` (request_id, batch_id, chunk_index, duration_ms, ...). On a terminal (or
with ``BATCHLINE_LOG_FORMAT=text``) the same fields make one coloured line:
``17:16:44.020 INFO  streams.finishing  batch finished  batch_id=batch_… status=completed``.

Batchline's own code never puts a record value in a log call. Exceptions are logged by type and
stack frames only: an exception's message may quote the input it failed on (pydantic's and the
database drivers' do), so it is never written.

Quiet by default: Faust's and mode's start-up and rebalance chatter, per-service
"Starting..." lines and aiokafka's retried leader errors (a broker still electing leaders) are
below the line, and its retried metadata refreshes are warnings; warnings and errors of every
library still show.
"""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import Any, Literal

from rich.console import Console
from rich.text import Text

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
# mode's services announce every step of their life at INFO ("[^--Consumer]: Starting...").
_LIFECYCLE = re.compile(r"^\[\^[-]*[^\]]*\]: (Starting|Stopping|Stopped|Shutting down|Restarting)")
# The worker's own "[^Worker]: Ready" line stays: scripts and tests wait for it.
_KEPT_LIFECYCLE = ("[^Worker]",)
# aiokafka logs these at ERROR and then retries them itself, and a broker that has just
# created a topic answers them until it has elected the partitions' leaders.
_RETRIED = re.compile(
    r"NotLeaderForPartitionError|LeaderNotAvailableError|NotCoordinatorForGroupError"
    r"|CoordinatorLoadInProgressError|UnknownTopicOrPartitionError"
)
# aiokafka logs a failed metadata refresh at ERROR and tries again after its retry backoff: one
# that a busy broker answered late is a warning. A broker that stays away shows in the
# connection errors (still ERROR), in /health and in the API's 503s.
_RETRIED_METADATA = "Unable to update metadata from"
LEVEL_STYLES = {
    "DEBUG": "dim",
    "INFO": "green",
    "WARNING": "yellow",
    "ERROR": "bold red",
    "CRITICAL": "bold white on red",
}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD and not key.startswith("_") and key != "color_message"
    }


def _error_fields(record: logging.LogRecord) -> dict[str, Any]:
    if not record.exc_info or record.exc_info[0] is None:
        return {}
    frames = traceback.extract_tb(record.exc_info[2])
    return {
        "error_type": record.exc_info[0].__name__,
        "stack": [f"{f.filename}:{f.lineno} in {f.name}" for f in frames[-15:]],
    }


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **_extras(record),
            **_error_fields(record),
        }
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """One line a record, coloured with rich when ``colour`` (on a terminal)."""

    def __init__(self, colour: bool = True) -> None:
        super().__init__()
        self._colour = colour

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S.%f")[:-3]
        line = Text(no_wrap=True)
        line.append(f"{at} ", style="dim")
        line.append(f"{record.levelname:<5} ", style=LEVEL_STYLES.get(record.levelname, ""))
        line.append(f"{record.name}  ", style="cyan")
        line.append(record.getMessage().replace("\n", " "))
        fields = {**_extras(record), **_error_fields(record)}
        for key, value in fields.items():
            shown = value if isinstance(value, str) else json.dumps(value, default=str)
            line.append(f"  {key}=", style="dim")
            line.append(str(shown))
        if not self._colour:
            return line.plain
        buffer = io.StringIO()
        Console(file=buffer, force_terminal=True, width=1_000_000, soft_wrap=True).print(
            line, end=""
        )
        return buffer.getvalue()


class QuietFilter(logging.Filter):
    """Drops the lifecycle and retried-error lines described in the module docstring."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.levelno <= logging.INFO and _LIFECYCLE.match(message):
            return message.startswith(_KEPT_LIFECYCLE)
        if record.name.startswith("aiokafka"):
            if _RETRIED.search(message):
                return False
            if record.levelno > logging.WARNING and message.startswith(_RETRIED_METADATA):
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def resolved_format(log_format: str, stream: Any = None) -> Literal["json", "text"]:
    """``auto``: text when the stream (stderr) is a terminal, else JSON."""
    if log_format in ("json", "text"):
        return log_format  # type: ignore[return-value]
    stream = stream if stream is not None else sys.stderr
    is_terminal = getattr(stream, "isatty", None)
    return "text" if is_terminal is not None and is_terminal() else "json"


def logging_config(level: str = "INFO", log_format: str = "auto") -> dict[str, Any]:
    """A dictConfig for the root logger and the libraries' own loggers."""
    chosen = resolved_format(log_format)
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if chosen == "json" else {"()": TextFormatter, "colour": True}
    )
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "main",
        "filters": ["quiet"],
        "stream": "ext://sys.stderr",
    }
    level = level.upper()
    own = {"level": level, "handlers": ["main"], "propagate": False}
    # Faust's and mode's start-up and rebalance steps: shown only when DEBUG is asked for, and
    # then at INFO at most. aiokafka stays at WARNING whatever the level: its DEBUG lines quote
    # every message it sends, records included.
    chatty = {
        "level": "INFO" if level == "DEBUG" else "WARNING",
        "handlers": ["main"],
        "propagate": False,
    }
    never_below_warning = {"level": "WARNING", "handlers": ["main"], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": formatter},
        "filters": {"quiet": {"()": QuietFilter}},
        "handlers": {"main": handler},
        "root": {"level": level, "handlers": ["main"]},
        "loggers": {
            # uvicorn's access log would repeat what the HTTP metrics count; errors stay.
            "uvicorn": own,
            "uvicorn.error": own,
            "uvicorn.access": never_below_warning,
            "aiokafka": never_below_warning,
            "faust": chatty,
            "mode": chatty,
            "faust.worker": own,  # its "[^Worker]: Ready" line
        },
    }


def configure(level: str = "INFO", log_format: str = "auto") -> None:
    logging.config.dictConfig(logging_config(level, log_format))
