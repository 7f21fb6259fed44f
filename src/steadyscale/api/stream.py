"""``/api/v1/events`` (server-sent events of node state changes and the loop's decisions,
``event:`` the kind, resumable with ``Last-Event-ID``) and ``/api/v1/history`` (the
cluster per minute, for the web page)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from steadyscale.api.context import context, reader
from steadyscale.api.demand import REFUSALS
from steadyscale.api.models import HistoryAnswer
from steadyscale.api.tokens import Caller

router = APIRouter(prefix="/api/v1", tags=["events"])
POLL_SECONDS = 0.2
KEEPALIVE_SECONDS = 15.0


@router.get(
    "/events",
    responses={**REFUSALS, 200: {"content": {"text/event-stream": {}}}},
    response_class=StreamingResponse,
)
def get_events(
    request: Request,
    caller: Annotated[Caller, Depends(reader)],
    after: Annotated[
        int | None, Query(ge=0, description="send the events after this id (default: new ones)")
    ] = None,
    seconds: Annotated[
        float | None, Query(gt=0, le=86400, description="end the stream after this long")
    ] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """A stream of events: `event:` is the kind (`node` for a node's state change, else the
    loop's: launch, terminate, capacity, ...), `data:` one JSON object."""
    hub = context(request).hub
    start = after
    if start is None and last_event_id is not None and last_event_id.strip().isdigit():
        start = int(last_event_id.strip())
    last = hub.last_id if start is None else start
    deadline = None if seconds is None else time.monotonic() + seconds

    async def stream() -> AsyncIterator[str]:
        nonlocal last
        yield ": connected\n\n"
        quiet_since = time.monotonic()
        while deadline is None or time.monotonic() < deadline:
            if await request.is_disconnected():
                return
            events = hub.after(last)
            for event in events:
                yield f"id: {event.id}\nevent: {event.kind}\ndata: {event.model_dump_json()}\n\n"
                last = event.id
            if events:
                quiet_since = time.monotonic()
                continue
            if time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
                yield ": keepalive\n\n"
                quiet_since = time.monotonic()
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.get("/history", response_model=HistoryAnswer, responses=REFUSALS)
def get_history(
    request: Request,
    caller: Annotated[Caller, Depends(reader)],
    minutes: Annotated[int, Query(ge=1, le=1440, description="how far back")] = 60,
) -> HistoryAnswer:
    """Per minute since this daemon started: nodes by status, demand, unmet demand, ready
    nodes (the last tick of each minute)."""
    return HistoryAnswer(points=context(request).samples.points(minutes))
