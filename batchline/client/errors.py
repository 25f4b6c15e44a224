"""What can go wrong between the command line and a Batchline API, each with a fix to try."""

from __future__ import annotations

from typing import Any

from batchline.errors import BatchlineError


class ClientError(BatchlineError):
    """Root of the client's errors; ``str()`` is the one line the command prints."""

    exit_code = 1


class InputError(ClientError):
    """The command's input (the file to submit, a batch id) is unusable."""


class ServerUnreachable(ClientError):
    """No HTTP answer at all: nothing listens there, or the connection broke."""

    exit_code = 2


class BadServerUrl(ClientError):
    """--url (or BATCHLINE_URL) is not an http(s) URL."""

    exit_code = 2


class ApiResponseError(ClientError):
    """The API answered with a 4xx or 5xx status."""

    def __init__(
        self,
        status_code: int,
        error: str,
        message: str,
        details: dict[str, Any] | None = None,
        hint: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.retry_after_s = retry_after_s
        self.error = error
        self.message = message
        self.details = details
        self.hint = hint
        super().__init__(self.line())

    def line(self) -> str:
        """One line: ``404 not_found: Batch job not found``, with a short reading of the details."""
        text = f"{self.status_code} {self.error}: {_one_line(self.message)}"
        summary = _summarise(self.details)
        if summary:
            text = f"{text} ({summary})"
        if self.hint:
            text = f"{text}; {self.hint}"
        return text


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _summarise(details: dict[str, Any] | None) -> str:
    # The API never echoes input values in details, so what is shown here is safe to print.
    if not details:
        return ""
    if {"row", "field", "reason"} <= details.keys():
        return _one_line(f"row {details['row']}, field {details['field']}: {details['reason']}")
    problems = details.get("errors")
    if isinstance(problems, list) and problems and isinstance(problems[0], dict):
        first = problems[0]
        where = ".".join(str(part) for part in first.get("loc", []))
        text = f"{where}: {first.get('msg', '')}" if where else str(first.get("msg", ""))
        if len(problems) > 1:
            text = f"{text}; and {len(problems) - 1} more"
        return _one_line(text)
    if "request_id" in details:
        return f"request ID {details['request_id']}"
    return ""


class WaitTimedOut(ClientError):
    """The batch was still unfinished when the caller's time ran out; ``status`` is the last
    one read (empty when the key's request rate left none to read)."""

    exit_code = 124

    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status
        super().__init__(f"still {status.get('status', 'unfinished')} when the wait ran out")
