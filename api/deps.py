"""Dependency aliases the routes declare their needs with."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.state import ApiState


def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.batchline
    return state


State = Annotated[ApiState, Depends(get_state)]
