"""Batchline's Python client (sync and async), which the `batchline` command is built on."""

from batchline.client.aio import AsyncBatchlineClient
from batchline.client.errors import (
    ApiResponseError,
    BadServerUrl,
    ClientError,
    InputError,
    ServerUnreachable,
    WaitTimedOut,
)
from batchline.client.http import BatchlineClient

__all__ = [
    "ApiResponseError",
    "AsyncBatchlineClient",
    "BadServerUrl",
    "BatchlineClient",
    "ClientError",
    "InputError",
    "ServerUnreachable",
    "WaitTimedOut",
]
