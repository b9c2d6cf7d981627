"""The live channel: a project's feed over SSE, and builds and projects over one WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, WebSocket, WebSocketDisconnect
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from api.deps import CtxDep, HubDep
from api.errors import error_responses
from api.routes.builds import build_follower, sse_response
from orchestrator import service
from orchestrator.context import Context
from orchestrator.errors import ErrorCode, KilnError
from orchestrator.live import protocol
from orchestrator.live.events import Event
from orchestrator.live.feed import check_project, project_key, read_feed_archive
from orchestrator.live.follow import follow_feed, guarded
from orchestrator.live.hub import Hub
from orchestrator.live.logbus import check_event_id

router = APIRouter(prefix="/api/v1", tags=["live"])


def feed_follower(ctx: Context, hub: Hub, project: str, after: str | None) -> AsyncIterator[Event]:
    """A project's feed after ``after``: its archive and stream, then live."""
    return follow_feed(
        hub,
        project_key(project),
        after=after,
        archive=lambda: read_feed_archive(ctx.bus.feed_archive(project)),
    )


PROJECT_EVENTS_DOC: dict[str, Any] = {
    "description": (
        '`text/event-stream`, never ending. `event: build`, data `{"id", "status", '
        '"phase"}` when a build of the project is submitted or changes state; '
        "`event: build_end`, data: the build's body (BuildPublic); the dev session's "
        "`status`, `hmr` and `error` events. Every event has an `id:`; `Last-Event-ID` (or "
        "`?after=`) resumes after it."
    ),
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}


@router.get(
    "/projects/{project}/events",
    response_class=EventSourceResponse,
    responses=error_responses(400, ok=PROJECT_EVENTS_DOC),
)
async def project_events(
    project: str,
    ctx: CtxDep,
    hub: HubDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: str | None = None,
) -> EventSourceResponse:
    """Server-sent events of every build of the project (``build``, ``build_end``) and its dev
    session (``status``, ``hmr``, ``error``); resumable by Last-Event-ID; never ends."""
    resume = check_event_id(last_event_id or after)
    return sse_response(ctx, feed_follower(ctx, hub, check_project(project), resume))


class LiveSocket:
    """One client's WebSocket: its subscriptions, each pumping a follower into the socket."""

    def __init__(self, ws: WebSocket, ctx: Context, hub: Hub) -> None:
        self.ws = ws
        self.ctx = ctx
        self.hub = hub
        self.pumps: dict[str, asyncio.Task[None]] = {}
        self._send_lock = asyncio.Lock()

    async def send(self, frame: dict[str, Any] | str) -> None:
        """Send one frame; a client that takes nothing for a while is disconnected."""
        text = frame if isinstance(frame, str) else json.dumps(frame)
        async with self._send_lock:
            await asyncio.wait_for(self.ws.send_text(text), self.ctx.settings.live_send_timeout_s)

    async def serve(self) -> None:
        """Answer the client's messages until it goes."""
        keepalive = asyncio.create_task(self._keepalive())
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:  # a binary frame: answer, do not close
                    await self.send(protocol.error_frame(ErrorCode.INVALID_INPUT, "send text"))
                    continue
                await self.handle(text)
        except (WebSocketDisconnect, TimeoutError):
            pass
        finally:
            keepalive.cancel()
            for pump in self.pumps.values():
                pump.cancel()
            await asyncio.gather(keepalive, *self.pumps.values(), return_exceptions=True)

    async def handle(self, text: str) -> None:
        """One client message: subscribe, unsubscribe or ping; a bad one gets an error frame."""
        try:
            request = protocol.parse_request(text)
        except KilnError as exc:
            await self.send(protocol.error_frame(exc.code, exc.message))
            return
        try:
            if request.action == "ping":
                await self.send({"pong": request.ping})
            elif request.action == "subscribe":
                await self.subscribe(request)
            else:
                pump = self.pumps.pop(request.channel, None)
                if pump is None:
                    raise KilnError(
                        f"not subscribed to {request.channel}", code=ErrorCode.NOT_SUBSCRIBED
                    )
                pump.cancel()
        except KilnError as exc:
            await self.send(protocol.error_frame(exc.code, exc.message, request.channel))

    async def subscribe(self, request: protocol.Request) -> None:
        """Start pumping one channel into the socket."""
        if request.channel in self.pumps:
            raise KilnError(
                f"already subscribed to {request.channel}", code=ErrorCode.ALREADY_SUBSCRIBED
            )
        if request.kind == "build":
            await run_in_threadpool(service.get_build, self.ctx, request.target)
            events = build_follower(self.ctx, self.hub, request.target, request.after)
        else:
            events = feed_follower(self.ctx, self.hub, request.target, request.after)
        self.pumps[request.channel] = asyncio.create_task(self._pump(request.channel, events))

    async def _pump(self, channel: str, events: AsyncIterator[Event]) -> None:
        try:
            async for event in guarded(events):
                await self.send(protocol.event_frame(channel, event))
        except TimeoutError:
            with contextlib.suppress(Exception):
                await self.ws.close(code=1013)
        finally:
            if self.pumps.get(channel) is asyncio.current_task():
                del self.pumps[channel]

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.ctx.settings.sse_ping_s)
            await self.send({"ping": int(time.time() * 1000)})


@router.websocket("/ws")
async def live_socket(ws: WebSocket, ctx: CtxDep, hub: HubDep) -> None:
    """Builds and projects on one socket: the same events and ids as their SSE streams."""
    allowed = ctx.settings.cors_origin_list
    if not protocol.origin_allowed(ws.headers.get("origin"), ws.headers.get("host"), allowed):
        await ws.close(code=1008)  # before accept: the handshake answers 403
        return
    await ws.accept()
    await LiveSocket(ws, ctx, hub).serve()
