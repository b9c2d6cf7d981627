"""The dev host: ``dev--{project}.<preview domain>`` proxies to that project's dev session.

HTTP goes to Vite over the session's unix socket (httpx), the HMR WebSocket too
(``websockets``); nothing else can reach a session, which has no network at all. The
proxy checks the Host (routing) and the Origin of every socket and report, refuses
``/@fs/`` outside the project and ``vite:invoke`` from browsers, adds Kiln's client hook
to HTML pages, serves the hook and takes its reports at ``/__kiln/``. A session is found
through Redis, so it survives an API restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from html import escape
from pathlib import Path

import httpx
import redis.asyncio as aioredis
import websockets
import websockets.asyncio.client
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection
from websockets.typing import Origin, Subprotocol

from orchestrator.context import Context, api_context
from orchestrator.dev import proxy_rules as rules
from orchestrator.dev import service as dev
from orchestrator.dev.container import AGENT_DIR
from orchestrator.dev.record import DevSession, DevStatus
from orchestrator.dev.urls import dev_host, dev_origin, public_port

MAX_REPORT_BYTES = 64 * 1024
TOUCH_EVERY_S = 5.0
HOOK = (AGENT_DIR / "hook.js").read_bytes()
_clients: dict[str, httpx.AsyncClient] = {}
_touched: dict[str, float] = {}
_redis: dict[tuple[str, int], aioredis.Redis] = {}


def _aredis(ctx: Context) -> aioredis.Redis:
    """This event loop's asyncio Redis client (session lookups on every proxied request)."""
    key = (ctx.settings.redis_url, id(asyncio.get_running_loop()))
    client = _redis.get(key)
    if client is None:
        client = _redis[key] = aioredis.Redis.from_url(
            ctx.settings.redis_url, socket_timeout=30, socket_connect_timeout=5
        )
    return client


async def dev_proxy_app(project: str, scope: Scope, receive: Receive, send: Send) -> None:
    """ASGI entry for one request or socket on ``dev--{project}``."""
    ctx = api_context()
    raw = await _aredis(ctx).hgetall(dev.registry(ctx).session_key(project))
    session = DevSession.from_redis(raw)
    running = session is not None and not DevStatus(session.status).ended and session.run_dir
    if scope["type"] == "websocket":
        websocket = WebSocket(scope, receive, send)
        origin = websocket.headers.get("origin")
        if not running or not rules.origin_allowed(origin, dev_origin(ctx.settings, project)):
            await websocket.close(code=1008)  # before accept: the handshake gets a 403
            return
        assert session is not None
        await _relay(ctx, session, websocket)
        return
    request = Request(scope, receive)
    if not _host_port_ok(request, ctx):
        await PlainTextResponse("wrong host", status_code=421)(scope, receive, send)
        return
    if not running:
        await _status_page(project, session)(scope, receive, send)
        return
    assert session is not None
    response = await _answer(ctx, session, request)
    await response(scope, receive, send)


def _host_port_ok(request: Request, ctx: Context) -> bool:
    host = request.headers.get("host", "")
    _, _, port = host.rpartition(":")
    return not port.isdigit() or int(port) == public_port(ctx.settings)


async def _answer(ctx: Context, session: DevSession, request: Request) -> Response:
    path = request.url.path
    raw_path = request.scope.get("raw_path", b"").decode("latin-1") or path
    if path == rules.HOOK_PATH:
        return Response(HOOK, media_type="text/javascript", headers={"Cache-Control": "no-store"})
    if path == rules.REPORT_PATH:
        return await _report(ctx, session, request)
    if not rules.fs_path_allowed(raw_path) or not rules.fs_path_allowed(path):
        return PlainTextResponse("outside the project", status_code=403)
    await _touch(ctx, session.project)
    client = _client(session.run_dir)
    query = request.url.query
    upstream = client.build_request(
        request.method,
        raw_path + (f"?{query}" if query else ""),
        headers=rules.request_headers(
            request.scope["headers"], dev_host(ctx.settings, session.project)
        ),
        content=await request.body() if request.method not in ("GET", "HEAD") else None,
    )
    try:
        answer = await client.send(upstream, stream=True)
    except httpx.HTTPError as exc:
        return PlainTextResponse(f"the dev server did not answer: {exc}", status_code=502)
    headers = rules.response_headers(list(answer.headers.items()))
    if answer.headers.get("content-type", "").startswith("text/html"):
        page = rules.inject_hook(await answer.aread())
        await answer.aclose()
        response = Response(page, status_code=answer.status_code)
    else:
        response = StreamingResponse(
            answer.aiter_raw(),
            status_code=answer.status_code,
            background=BackgroundTask(answer.aclose),
        )
    for name, value in headers:
        response.headers.append(name, value)
    return response


def _client(run_dir: str) -> httpx.AsyncClient:
    client = _clients.get(run_dir)
    if client is None:
        transport = httpx.AsyncHTTPTransport(uds=str(Path(run_dir) / "dev.sock"))
        client = httpx.AsyncClient(transport=transport, base_url="http://dev", timeout=60)
        _clients[run_dir] = client
    return client


async def _touch(ctx: Context, project: str) -> None:
    now = time.monotonic()
    if now - _touched.get(project, 0.0) < TOUCH_EVERY_S:
        return
    _touched[project] = now
    await _aredis(ctx).hset(
        dev.registry(ctx).session_key(project), "last_activity_at", json.dumps(time.time())
    )


async def _report(ctx: Context, session: DevSession, request: Request) -> Response:
    """The client hook's report; only from the session's own pages."""
    if request.method != "POST":
        return PlainTextResponse("method not allowed", status_code=405)
    if not rules.origin_allowed(
        request.headers.get("origin"), dev_origin(ctx.settings, session.project)
    ):
        return PlainTextResponse("foreign origin", status_code=403)
    body = await request.body()
    if len(body) > MAX_REPORT_BYTES:
        return PlainTextResponse("too large", status_code=413)
    try:
        payload = json.loads(body)
    except ValueError:
        return PlainTextResponse("not JSON", status_code=400)
    if isinstance(payload, dict):
        await run_in_threadpool(dev.report, ctx, session.project, payload)
    return Response(status_code=204)


async def _relay(ctx: Context, session: DevSession, websocket: WebSocket) -> None:
    """Relay the HMR socket between the browser and Vite (the Origin is already checked)."""
    scope = websocket.scope
    path = scope.get("raw_path", b"").decode("latin-1") or scope["path"]
    query = scope.get("query_string", b"").decode("latin-1")
    host = dev_host(ctx.settings, session.project)
    protocols = [Subprotocol(p) for p in scope.get("subprotocols", [])]
    try:
        upstream = await websockets.asyncio.client.unix_connect(
            str(Path(session.run_dir) / "dev.sock"),
            uri=f"ws://{host}{path}" + (f"?{query}" if query else ""),
            origin=Origin(dev_origin(ctx.settings, session.project)),
            subprotocols=protocols or None,
            compression=None,
            open_timeout=10,
            ping_interval=None,
            max_size=16 * 1024 * 1024,
        )
    except (OSError, websockets.exceptions.WebSocketException, TimeoutError):
        await websocket.close(code=1011)
        return
    await websocket.accept(subprotocol=upstream.subprotocol)
    tasks = [
        asyncio.create_task(_browser_to_vite(websocket, upstream)),
        asyncio.create_task(_vite_to_browser(upstream, websocket)),
        asyncio.create_task(_keep_active(ctx, session.project)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await upstream.close()
        with contextlib.suppress(Exception, WebSocketDisconnect):
            await websocket.close()


async def _browser_to_vite(websocket: WebSocket, upstream: ClientConnection) -> None:
    """The browser's HMR messages that Kiln lets through (proxy_rules), until it leaves."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("text") or message.get("bytes")
        if data is not None and rules.client_message_allowed(data):
            await upstream.send(data)


async def _vite_to_browser(upstream: ClientConnection, websocket: WebSocket) -> None:
    """Everything Vite sends, as it sends it."""
    async for data in upstream:
        if isinstance(data, str):
            await websocket.send_text(data)
        else:
            await websocket.send_bytes(data)


async def _keep_active(ctx: Context, project: str) -> None:
    """An open HMR socket keeps the session from idling out."""
    while True:
        await _aredis(ctx).hset(
            dev.registry(ctx).session_key(project), "last_activity_at", json.dumps(time.time())
        )
        await asyncio.sleep(TOUCH_EVERY_S)


def _status_page(project: str, session: DevSession | None) -> HTMLResponse:
    """What the dev URL shows while the session starts, after it ended, or without one."""
    if session is None:
        title, text, code = "No dev session", f"Project {escape(project)} has no dev session.", 404
    elif DevStatus(session.status).ended:
        message = escape((session.error or {}).get("message", ""))
        title, text, code = f"Dev session {session.status}", f"<pre>{message}</pre>", 404
    else:
        title, text, code = "Starting…", f"The dev session is {escape(session.status)}.", 503
    refresh = '<meta http-equiv="refresh" content="1">' if code == 503 else ""
    page = (
        f"<!doctype html><html><head><meta charset=utf-8>{refresh}<title>{title}</title></head>"
        f"<body style='font:16px system-ui;margin:3rem'><h1>{title}</h1><p>{text}</p></body></html>"
    )
    return HTMLResponse(page, status_code=code, headers={"Cache-Control": "no-store"})
