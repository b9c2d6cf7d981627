"""What the API and the CLI do with dev sessions: start, look up, edit, report, stop, build.

The API never runs a session: it checks the request, keeps the session's current files
(``var/sources/dev-{project}.tar``), records the session in Redis and leaves it to a dev
worker. Edits go straight to the session's agent over its socket, so they land at once.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import tarfile
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import redis

from orchestrator.context import Context
from orchestrator.dev.environment import requested_node, session_environment
from orchestrator.dev.folders import SessionFacts, session_facts
from orchestrator.dev.record import DevSession, DevStatus, public_body
from orchestrator.dev.registry import DevRegistry
from orchestrator.dev.reports import UPDATE_KINDS, error_event, hmr_event, report_revision
from orchestrator.dev.urls import dev_url, session_source
from orchestrator.errors import (
    Conflict,
    DevCapacity,
    ErrorCode,
    InputError,
    NotFound,
    Unavailable,
)
from orchestrator.live.logbus import dev_stream_key
from orchestrator.project import app_folder, templates
from orchestrator.project.input import (
    Files,
    files_from_mapping,
    input_limits,
    normalize_path,
    overlay,
    to_tar,
)
from orchestrator.project.slugs import project_slug
from orchestrator.sandbox.image.toolchains import image_offer

AGENT_TIMEOUT_S = 10.0
CAPACITY_RETRY_S = 30
Edits = dict[str, bytes | None]
P = ParamSpec("P")
R = TypeVar("R")


def registry_call(function: Callable[P, R]) -> Callable[P, R]:
    """Sessions are recorded in Redis: when it does not answer, say so (503), not a 500."""

    @wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except redis.RedisError as exc:
            raise Unavailable(f"the dev-session registry (Redis) does not answer: {exc}") from exc

    return call


def registry(ctx: Context) -> DevRegistry:
    """This instance's dev-session registry."""
    return DevRegistry(ctx.redis, ctx.settings.instance)


def body(ctx: Context, session: DevSession) -> dict[str, Any]:
    """The contract's JSON body of a session."""
    return public_body(session, dev_url(ctx.settings, session.project), ctx.settings.api_url)


def source_files(
    ctx: Context,
    *,
    files: Files | None = None,
    template: str | None = None,
    from_build: str | None = None,
) -> Files:
    """The files a session starts from: a build's source, or a template plus files."""
    if from_build:
        if template or files:
            raise InputError("give from_build alone, or a template and files")
        build = ctx.store.get(from_build)
        kept = ctx.storage.read_kept_source(build.id)
        if kept is None:
            raise Conflict(f"build {build.id} has no kept source (it is {build.status})")
        return read_tar(kept)
    base = templates.load_template(ctx.settings.templates_dir, template) if template else {}
    return overlay(base, files or {})


@registry_call
def start(
    ctx: Context,
    project: str,
    files: Files,
    *,
    idle_timeout_s: int | None = None,
    node: object = None,
    root: object = None,
) -> tuple[DevSession, bool]:
    """Start ``project``'s session (or return the live one): (session, newly started?).

    DevCapacity (429) when no dev worker has room. ``idle_timeout_s`` may only lower the
    server's idle timeout. ``node``: a Node major as a build submit's ``node``
    (UnsupportedEnvironment, 400, when the image does not offer it). ``root``: the app's
    folder, as a build submit's (``app_folder``: the same checks and refusals; a
    workspace member installs at its workspace root).
    """
    project = project_slug(project, {}, None)
    checked_root = app_folder.check_root(root)
    facts = session_facts(files, checked_root)
    requested, environment = _start_environment(ctx, facts, node)
    reg = registry(ctx)
    existing = reg.get(project)
    if existing is not None and not DevStatus(existing.status).ended:
        return existing, False
    if reg.free_slots() <= 0:
        raise DevCapacity(
            "every dev worker runs as many sessions as it may (KILN_DEV_MAX_SESSIONS); "
            "stop one or retry later",
            retry_after_s=CAPACITY_RETRY_S,
        )
    source = session_source(ctx.settings, project)
    source.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(source, to_tar(files))
    now = time.time()
    session = DevSession(
        project=project,
        started_at=now,
        last_activity_at=now,
        idle_timeout_s=min(idle_timeout_s or ctx.settings.dev_idle_s, ctx.settings.dev_idle_s),
        dependencies=facts.dependencies,
        environment=environment,
        requested_node=requested,
        root=checked_root,
    )
    session, created = reg.create(session)
    if created:
        ctx.redis.delete(dev_stream_key(project))  # a new session, a new event history
        ctx.bus.dev_event(project, "status", {"status": session.status, "revision": 0})
        reg.push_start(project)
    return session, created


def _start_environment(
    ctx: Context, facts: SessionFacts, node: object
) -> tuple[int | None, dict[str, str]]:
    """The start's checked Node request, and the environment a build of the files gets
    (``{}`` while the image cannot be asked and nothing was requested: the worker says)."""
    try:
        offer = image_offer(ctx.docker, ctx.settings.sandbox_image)
    except Unavailable:
        if node is None or node == "":
            return None, {}
        raise
    requested = requested_node(offer, node)
    return requested, session_environment(offer, facts.manifest, facts.files, requested)


@registry_call
def get(ctx: Context, project: str) -> DevSession:
    """The project's session; NotFound when it never had one (or it expired)."""
    session = registry(ctx).get(project)
    if session is None:
        raise NotFound(f"project {project!r} has no dev session")
    return session


@registry_call
def list_sessions(ctx: Context) -> list[dict[str, Any]]:
    """The bodies of every session record, by project."""
    sessions = sorted(registry(ctx).sessions(), key=lambda s: s.project)
    return [body(ctx, session) for session in sessions]


def live(ctx: Context, project: str) -> DevSession:
    """The project's running session; Conflict when it ended."""
    session = get(ctx, project)
    if DevStatus(session.status).ended:
        raise Conflict(f"the dev session of {project} is {session.status}; start it again")
    return session


def parse_edits(raw: Mapping[str, object], ctx: Context) -> Edits:
    """Check a PATCH's file map: the submit's path checks and limits; ``null`` deletes."""
    deletions = [normalize_path(p) for p, v in raw.items() if v is None]
    kept = {p: v for p, v in raw.items() if v is not None}
    edits: Edits = dict(files_from_mapping(kept, input_limits(ctx.settings)))
    for path in deletions:
        if path in edits:
            raise InputError(f"{path} is both written and deleted")
        edits[path] = None
    if not edits:
        raise InputError("files must name at least one file")
    return edits


@registry_call
def apply_edits(ctx: Context, project: str, edits: Edits, arrived_ms: int) -> dict[str, Any]:
    """Apply one batch to the session: its files, a new revision, and the agent's write.

    The batch reaches the dev server as one atomic set of renames; a change to
    package.json's dependency fields installs and restarts (``restart: true``).
    """
    session = live(ctx, project)
    if not session.run_dir:
        raise Conflict(
            f"the dev session of {project} is {session.status}; edits are taken once it is "
            "ready (follow its events for the ready status)",
            code=ErrorCode.SESSION_NOT_READY,
        )
    reg = registry(ctx)
    with reg.edit_lock(project):
        source = session_source(ctx.settings, project)
        files = read_tar(source.read_bytes())
        for path, content in edits.items():
            if content is None:
                files.pop(path, None)
            else:
                files[path] = content
        facts = session_facts(files, session.root)  # the app's package.json must stay
        if sum(len(v) for v in files.values()) > input_limits(ctx.settings).max_total_bytes:
            raise InputError("the session's files would exceed the project size limit")
        revision = reg.next_revision(project)
        reg.record_revision(project, revision, arrived_ms, sorted(edits))
        digest = facts.dependencies
        restart = digest != session.dependencies
        reply = _agent(
            session.run_dir,
            {
                "op": "apply",
                "revision": revision,
                "files": {
                    p: None if c is None else base64.b64encode(c).decode() for p, c in edits.items()
                },
            },
        )
        if not reply.get("ok"):
            raise Unavailable(f"the dev server did not take the edit: {reply.get('error')}")
        _write_atomically(source, to_tar(files))  # what the session now has
        if restart:
            reg.update(project, dependencies=digest)
            if session.worker:
                reg.push_command(session.worker, "reinstall", project)
    reg.touch(project)
    return {
        "revision": revision,
        "applied_at": _iso_ms(int(time.time() * 1000)),
        "restart": restart,
    }


@registry_call
def report(ctx: Context, project: str, raw: Mapping[str, Any]) -> None:
    """What the client hook saw in a browser: an applied update, a reload, or an error."""
    reg = registry(ctx)
    reg.touch(project)
    kind = raw.get("kind")
    revision = report_revision(raw)
    if kind in UPDATE_KINDS:
        claimed = reg.claim_report(project, revision) if revision else None
        if claimed is None:
            return  # another page already reported it, or it is not an edit of Kiln's
        arrived_ms, edited = claimed
        data = hmr_event(raw, revision, arrived_ms, edited, int(time.time() * 1000))
        ctx.bus.dev_event(project, "hmr", data)
    elif kind == "error":
        ctx.bus.dev_event(project, "error", error_event(raw, revision))


@registry_call
def stop(ctx: Context, project: str) -> DevSession:
    """Stop the session: its worker removes the container (within 5 s)."""
    session = live(ctx, project)
    reg = registry(ctx)
    if not session.worker or not reg.worker_alive(session.worker):
        reg.drop_start(project)  # not taken yet (or its worker is gone): end it here
        reg.update(project, status=DevStatus.STOPPED.value)
        ctx.bus.dev_event(project, "status", {"status": "stopped", "revision": session.revision})
        ctx.bus.dev_event(project, "end", {"status": "stopped", "revision": session.revision})
    else:
        reg.push_command(session.worker, "stop", project)
    return get(ctx, project)


@registry_call
def current_files(ctx: Context, project: str) -> Files:
    """The session's current files (what ``POST …/dev/build`` submits as a normal build)."""
    get(ctx, project)
    return read_tar(session_source(ctx.settings, project).read_bytes())


@registry_call
def file_digests(ctx: Context, project: str) -> dict[str, str]:
    """sha256 of each of the session's current files (what ``kiln dev push`` compares)."""
    get(ctx, project)
    files = read_tar(session_source(ctx.settings, project).read_bytes())
    return {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())}


def read_tar(data: bytes) -> Files:
    """The files of a tar Kiln wrote itself (from a checked file map)."""
    files: Files = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive:
            extracted = archive.extractfile(member) if member.isfile() else None
            if extracted is not None:
                files[member.name] = extracted.read()
    return files


def _agent(run_dir: str, command: dict[str, Any]) -> dict[str, Any]:
    """One command to the session's agent over its control socket."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(AGENT_TIMEOUT_S)
            conn.connect(f"{run_dir}/agent.sock")
            conn.sendall(json.dumps(command).encode() + b"\n")
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
    except OSError as exc:
        raise Unavailable(f"the dev session is not reachable: {exc}") from exc
    try:
        reply = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        reply = {}
    return reply if isinstance(reply, dict) else {}


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _iso_ms(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
