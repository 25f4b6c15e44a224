"""HTTP bodies of the API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    kafka: Literal["ok", "unreachable"]
    store: Literal["ok", "unreachable"]
