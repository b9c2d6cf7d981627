"""The preview hosts: ``{build_id}.<preview domain>`` serves that build's dist/ and nothing
else; ``latest--{project}`` the project's newest succeeded build; ``dev--{project}`` its dev
session (``api/dev_proxy.py``).

A plain ASGI app in front of the API (``api.main``), built for the request rate of every
iframe of every user: once a build is known its manifest is in memory (builds are
immutable once published), so a request does no database or filesystem lookup; hot files
are answered from memory, larger ones streamed from disk (from the folder store in place,
or from a bounded local cache of the object store). Only a build not yet known (or due for
its periodic re-check, which notices ``kiln gc``) costs a store lookup, and only a build
with nothing published costs a database query (its status page). A ``latest--`` alias is
resolved at most once per ``preview_latest_recheck_s`` per project (one database query),
then served from the manifest of the build it names, so no answer mixes two builds.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketClose

from api.dev_proxy import dev_proxy_app
from api.preview_http import (
    Headers,
    Prepared,
    Unsatisfiable,
    byte_range,
    etag_matches,
    length_headers,
    prepare,
)
from orchestrator.builds.queue_wait import positions, queued_ms
from orchestrator.context import Context, api_context
from orchestrator.errors import NotFound, StorageUnavailable
from orchestrator.project.slugs import split_host_label
from orchestrator.records.models import Build, Status
from orchestrator.storage.build_storage import BuildStorage
from orchestrator.storage.file_cache import FileCache
from orchestrator.storage.manifest import Entry, Manifest
from orchestrator.storage.objects import CHUNK

log = logging.getLogger("kiln.preview")
BUILD_ID = re.compile(r"[a-f0-9]{16}")
MAX_KNOWN_BUILDS = 10_000
MAX_PATHS_PER_BUILD = 4096
RETRY_AFTER_S = "5"


@dataclass
class KnownBuild:
    """A published build this process has seen: its manifest and resolved paths."""

    manifest: Manifest
    checked: float
    paths: dict[str, Prepared | None] = field(default_factory=dict)

    def resolve(self, url_path: str) -> Prepared | None:
        """The file a URL path serves (remembered per path), or None for a 404."""
        try:
            return self.paths[url_path]
        except KeyError:
            pass
        entry = self.manifest.resolve(url_path)
        found = None if entry is None else prepare(entry)
        if len(self.paths) < MAX_PATHS_PER_BUILD:
            self.paths[url_path] = found
        return found


@dataclass(frozen=True)
class Alias:
    """What ``latest--{project}`` named when last resolved (None: no succeeded build)."""

    build_id: str | None
    known: KnownBuild | None
    checked: float


class HotFiles:
    """File bodies by hash, least recently used out past ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.total = 0
        self._bodies: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sha256: str) -> bytes | None:
        """A held body (counts as a use), or None."""
        with self._lock:  # put() runs in worker threads
            body = self._bodies.get(sha256)
            if body is not None:
                self._bodies.move_to_end(sha256)
            return body

    def put(self, sha256: str, body: bytes) -> None:
        """Hold a body, dropping the least recently used past the budget."""
        if len(body) > self.max_bytes:
            return
        with self._lock:
            if sha256 in self._bodies:
                return
            self._bodies[sha256] = body
            self.total += len(body)
            while self.total > self.max_bytes:
                _, dropped = self._bodies.popitem(last=False)
                self.total -= len(dropped)


@dataclass(frozen=True)
class LocalFile:
    """A file to stream: in the store's folder, in the cache, or fetched for this request."""

    path: Path
    temporary: bool = False


class PreviewServer:
    """Serves every preview of one API process."""

    def __init__(self, ctx: Context) -> None:
        s = ctx.settings
        self.ctx = ctx
        self.storage: BuildStorage = ctx.preview_storage
        self.recheck_s = s.preview_recheck_s
        self.memory_file_max = s.preview_memory_file_kb * 1024
        self.hot = HotFiles(s.preview_memory_mb * 1024 * 1024)
        self.cache = (
            None
            if self.storage.is_local
            else FileCache(s.preview_cache_dir, s.preview_cache_mb * 1024 * 1024)
        )
        self.known: OrderedDict[str, KnownBuild] = OrderedDict()
        self.latest_recheck_s = s.preview_latest_recheck_s
        self.aliases: OrderedDict[str, Alias] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send, build_id: str) -> None:
        """Answer one request on ``{build_id}.<preview domain>``."""
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            return await plain(send, 405, b"method not allowed")
        if not BUILD_ID.fullmatch(build_id):
            return await plain(send, 404, b"no such preview")
        known = self.known.get(build_id)
        if known is None or time.monotonic() - known.checked > self.recheck_s:
            try:
                known = await run_in_threadpool(self._look_up, build_id, known)
            except StorageUnavailable as exc:
                log.warning("preview %s: %s", build_id, exc.message)
                return await unavailable(send)
            if known is None:
                page = await run_in_threadpool(self._status_page, build_id)
                return await page(scope, receive, send)
        prepared = known.resolve(scope["path"])
        if prepared is None:
            return await plain(send, 404, b"not found")
        await self._send_file(scope, send, build_id, prepared)

    async def latest(self, scope: Scope, receive: Receive, send: Send, project: str) -> None:
        """Answer one request on ``latest--{project}.<preview domain>``: the alias is
        resolved once for the request, and every byte comes from the build it names."""
        if scope["method"] not in ("GET", "HEAD"):
            return await plain(send, 405, b"method not allowed")
        alias = self.aliases.get(project)
        if alias is None or time.monotonic() - alias.checked > self.latest_recheck_s:
            try:
                alias = await run_in_threadpool(self._resolve_latest, project)
            except StorageUnavailable as exc:
                log.warning("latest--%s: %s", project, exc.message)
                return await unavailable(send)
        if alias.build_id is None or alias.known is None:
            page = await run_in_threadpool(self._latest_status_page, project)
            return await page(scope, receive, send)
        named = [(b"x-kiln-build", alias.build_id.encode())]
        prepared = alias.known.resolve(scope["path"])
        if prepared is None:
            return await plain(send, 404, b"not found", named)
        await self._send_file(scope, send, alias.build_id, prepared, named)

    def _resolve_latest(self, project: str) -> Alias:
        """The newest succeeded build still published (``kiln gc`` may have removed one)."""
        now = time.monotonic()
        alias = Alias(None, None, now)
        for build in self.ctx.store.newest_succeeded(project):
            known = self.known.get(build.id)
            if known is None or now - known.checked > self.recheck_s:
                known = self._look_up(build.id, known)
            if known is not None:
                alias = Alias(build.id, known, now)
                break
        self.aliases[project] = alias
        self.aliases.move_to_end(project)
        while len(self.aliases) > MAX_KNOWN_BUILDS:
            self.aliases.popitem(last=False)
        return alias

    def _latest_status_page(self, project: str) -> Response:
        """Before any success: the newest build's status page (never a failed build's app)."""
        newest = self.ctx.store.list(project=project, limit=1)
        if not newest:
            return PlainTextResponse(f"project {project} has no builds", status_code=404)
        return status_page(newest[0])

    def _look_up(self, build_id: str, known: KnownBuild | None) -> KnownBuild | None:
        """Load (or re-check) a build's manifest; None while nothing is published."""
        now = time.monotonic()
        if known is not None and self.storage.has_artifact(build_id):
            known.checked = now
            return known
        self.known.pop(build_id, None)
        manifest = self.storage.manifest(build_id)
        if manifest is None:
            return None
        fresh = KnownBuild(manifest, now)
        self.known[build_id] = fresh
        while len(self.known) > MAX_KNOWN_BUILDS:
            self.known.popitem(last=False)
        return fresh

    def _status_page(self, build_id: str) -> Response:
        try:
            build = self.ctx.store.get(build_id)
            queued = build.status == Status.QUEUED.value
            return status_page(build, positions(self.ctx.store.queued_ids()) if queued else None)
        except NotFound:
            return PlainTextResponse(f"no build {build_id}", status_code=404)

    async def _send_file(
        self, scope: Scope, send: Send, build_id: str, file: Prepared, extra: Headers | None = None
    ) -> None:
        extra = extra or []
        entry = file.entry
        wanted = request_headers(scope)
        if etag_matches(wanted.get(b"if-none-match"), entry.etag):
            headers = [*file.not_modified, *extra]
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            return await send({"type": "http.response.body", "body": b""})
        try:
            part = byte_range(wanted.get(b"range"), entry.size, wanted.get(b"if-range"), entry.etag)
        except Unsatisfiable:
            headers = [(b"content-range", f"bytes */{entry.size}".encode())]
            return await plain(send, 416, b"range not satisfiable", headers)
        head = scope["method"] == "HEAD"
        body = self.hot.get(entry.sha256)
        local: LocalFile | None = None
        if body is None and not (head and part is None):
            try:
                local = await run_in_threadpool(self._local_file, build_id, entry)
            except StorageUnavailable as exc:
                log.warning("preview %s/%s: %s", build_id, entry.path, exc.message)
                return await unavailable(send)
            if local is None:  # collected since its manifest was read
                self.known.pop(build_id, None)
                return await plain(send, 404, b"not found", extra)
            body = await self._remember(entry, local)
        length = entry.size if part is None else len(part)
        headers = [*file.headers, *length_headers(length, part, entry.size), *extra]
        start = {"type": "http.response.start", "headers": headers}
        await send({**start, "status": 200 if part is None else 206})
        await self._send_body(
            send, part, length, body=None if head else body, local=local, head=head
        )

    async def _remember(self, entry: Entry, local: LocalFile) -> bytes | None:
        """A small stored file's body, read once and then held among the hot files."""
        if entry.size > self.memory_file_max or local.temporary:
            return None
        body = await anyio.to_thread.run_sync(local.path.read_bytes)
        if len(body) == entry.size:
            self.hot.put(entry.sha256, body)
        return body

    @staticmethod
    async def _send_body(
        send: Send,
        part: range | None,
        length: int,
        *,
        body: bytes | None,
        local: LocalFile | None,
        head: bool,
    ) -> None:
        """The response body: nothing for HEAD, the held bytes, or the file streamed."""
        if head:
            await send({"type": "http.response.body", "body": b""})
        elif body is not None:
            chunk = body if part is None else body[part.start : part.stop]
            await send({"type": "http.response.body", "body": chunk})
        elif local is not None:
            try:
                await stream(send, local.path, 0 if part is None else part.start, length)
            finally:
                if local.temporary:
                    local.path.unlink(missing_ok=True)

    def _local_file(self, build_id: str, entry: Entry) -> LocalFile | None:
        """The file on this host: in the folder store, or fetched into the cache."""
        if self.cache is None:
            path = self.storage.file_path(build_id, entry)
            return None if path is None else LocalFile(path)
        if entry.size <= self.cache.max_bytes:
            cached = self.cache.fill(
                entry.sha256,
                entry.size,
                lambda destination: self.storage.download_file(build_id, entry, destination),
            )
            return None if cached is None else LocalFile(cached)
        # Larger than the whole cache: fetched for this request alone.
        self.cache.root.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.cache.root, prefix=".once-")
        os.close(handle)
        if self.storage.download_file(build_id, entry, Path(name)):
            return LocalFile(Path(name), temporary=True)
        Path(name).unlink(missing_ok=True)
        return None


def request_headers(scope: Scope) -> dict[bytes, str]:
    """The few request headers a file answer depends on."""
    wanted = {}
    for name, value in scope["headers"]:
        if name in (b"if-none-match", b"range", b"if-range"):
            wanted[name] = value.decode("latin-1")
    return wanted


async def stream(send: Send, path: Path, start: int, length: int) -> None:
    """Send ``length`` bytes of ``path`` from ``start`` in chunks (never the whole file)."""
    with path.open("rb") as handle:
        handle.seek(start)
        left = length
        while left > 0:
            chunk = await anyio.to_thread.run_sync(handle.read, min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})
        if left > 0:  # the file shrank under us: end the response rather than hang
            await send({"type": "http.response.body", "body": b""})


async def plain(send: Send, status: int, text: bytes, extra: Headers | None = None) -> None:
    """A short text answer."""
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(text)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text})


async def unavailable(send: Send) -> None:
    """The store cannot be reached: 503 with Retry-After, never a half page."""
    extra = [(b"retry-after", RETRY_AFTER_S.encode()), (b"cache-control", b"no-store")]
    await plain(send, 503, b"the preview store is not reachable; try again shortly", extra)


def waiting_words(build: Build, places: dict[str, int] | None) -> str:
    """``queued: number 3 in line, waiting 12 s`` (or just the phase once it runs)."""
    if build.status != Status.QUEUED.value:
        return escape(build.phase)
    waited = (queued_ms(build) or 0) / 1000
    place = (places or {}).get(build.id)
    where = f"number {place} in line, " if place else ""
    return f"queued: {where}waiting {waited:.0f} s for a worker"


def status_page(build: Build, places: dict[str, int] | None = None) -> HTMLResponse:
    """What the preview URL shows before (or instead of) the app: progress, or the error.

    Clients open the preview as soon as they submit; a building page refreshes itself
    until the app is there. Everything from the build is escaped.
    """
    if not Status(build.status).finished:
        title = "Building…"
        body = f"<p>Build <code>{build.id}</code> is {waiting_words(build, places)}.</p>"
        refresh = '<meta http-equiv="refresh" content="2">'
        status_code, headers = 503, {"Retry-After": "2", "Cache-Control": "no-store"}
    else:
        title = f"Build {escape(build.status)}"
        message = escape(build.error_message or "no output was published")
        tail = escape(build.error_log_tail or "")
        body = (
            f"<p>Build <code>{build.id}</code> ended <b>{escape(build.status)}</b>"
            f" ({escape(build.error_code or '')}): {message}</p><pre>{tail}</pre>"
        )
        refresh = ""
        status_code, headers = 404, {"Cache-Control": "no-store"}
    page = (
        f"<!doctype html><html><head><meta charset=utf-8>{refresh}<title>{title}</title>"
        "<style>body{font:16px system-ui;margin:3rem auto;max-width:48rem;color:#222}"
        "pre{background:#f4f4f4;padding:1rem;overflow:auto;font-size:13px}</style>"
        f"</head><body><h1>{title}</h1>{body}</body></html>"
    )
    return HTMLResponse(page, status_code=status_code, headers=headers)


class PreviewHost:
    """ASGI: requests for ``*.<preview domain>`` go to the preview server, all else to ``api``.

    Checked before any routing, so a preview request costs one header scan and the preview
    host can never reach the API (nor the API host a preview).
    """

    def __init__(self, api: object, preview_domain: str) -> None:
        self.api = api
        self.suffix = "." + preview_domain.lower()
        self._server: PreviewServer | None = None
        self._lock = threading.Lock()

    @property
    def server(self) -> PreviewServer:
        """This process's preview server (made on first use: after any fork)."""
        if self._server is None:
            with self._lock:
                if self._server is None:
                    self._server = PreviewServer(api_context())
        return self._server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            label = self.build_id(scope)
            if label is not None:
                return await self.preview(scope, receive, send, label)
        await self.api(scope, receive, send)  # type: ignore[operator]

    async def preview(self, scope: Scope, receive: Receive, send: Send, label: str) -> None:
        """A preview host's request: a dev session, the latest alias, or one build."""
        alias = split_host_label(label)
        if alias is not None and alias[0] == "dev":
            return await dev_proxy_app(alias[1], scope, receive, send)
        if scope["type"] != "http":  # only a dev session takes WebSockets (its HMR)
            return await WebSocketClose(code=1008)(scope, receive, send)
        if alias is not None:
            return await self.server.latest(scope, receive, send, alias[1])
        await self.server(scope, receive, send, label)

    def build_id(self, scope: Scope) -> str | None:
        """The first label of a preview host name (port dropped), or None for another host."""
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1").lower()
                if host.startswith("["):  # an IPv6 literal is never a preview host
                    return None
                host = host.rpartition(":")[0] if ":" in host else host
                return host[: -len(self.suffix)] if host.endswith(self.suffix) else None
        return None
