"""The client half of `batchline`: submit files of items to a Batchline API and read back."""

from batchline.client.errors import (
    ApiResponseError,
    BadServerUrl,
    ClientError,
    InputError,
    ServerUnreachable,
)
from batchline.client.http import BatchlineClient

__all__ = [
    "ApiResponseError",
    "BadServerUrl",
    "BatchlineClient",
    "ClientError",
    "InputError",
    "ServerUnreachable",
]
