"""Structured logs: one JSON object per line, on stderr, for every Batchline process.

Fields: ``ts``, ``level``, ``logger``, ``event`` (the message), then whatever the call passed
in ``extra`` (request_id, batch_id, chunk_index, duration_ms, ...). Batchline's own code never
puts a record value in a log call. Exceptions are logged by type and stack frames only: an
exception's message may quote the input it failed on (pydantic's and the database drivers'
do), so it is never written.
"""

from __future__ import annotations

import json
import logging
import logging.config
import traceback
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["error_type"] = record.exc_info[0].__name__
            frames = traceback.extract_tb(record.exc_info[2])
            entry["stack"] = [f"{f.filename}:{f.lineno} in {f.name}" for f in frames[-15:]]
        return json.dumps(entry, default=str, ensure_ascii=False)


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """A dictConfig for the root logger and the libraries' own loggers."""
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "json",
        "stream": "ext://sys.stderr",
    }
    quiet = {"level": "WARNING", "handlers": ["json"], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"json": handler},
        "root": {"level": level.upper(), "handlers": ["json"]},
        "loggers": {
            # uvicorn's access log would repeat what the HTTP metrics count; errors stay.
            "uvicorn": {"level": level.upper(), "handlers": ["json"], "propagate": False},
            "uvicorn.error": {"level": level.upper(), "handlers": ["json"], "propagate": False},
            "uvicorn.access": quiet,
            "aiokafka": quiet,
        },
    }


def configure(level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(level))
