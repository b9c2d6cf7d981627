"""What Kiln does for its callers: submit, look up, list and cancel builds.

The API routes and the CLI call these; they never touch Redis, Docker or the database
on their own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict

import redis

from orchestrator import dependency_sources, queue, templates
from orchestrator.cache import reuse
from orchestrator.context import Context, cancel_key
from orchestrator.egress.service import allowed_hosts
from orchestrator.errors import Conflict, InputError, Unavailable
from orchestrator.models import Build, public_view
from orchestrator.plan import Limits, Phase, Status, check_buildable, clamp_limits
from orchestrator.project_input import Files, overlay, parse_package_json, to_tar

PROJECT_SLUG = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
CANCEL_FLAG_TTL_S = 24 * 3600


def project_slug(
    requested: str | None, manifest: Mapping[str, object], template: str | None
) -> str:
    """The project a build belongs to: as requested, else derived from package.json's name."""
    if requested is not None:
        if not PROJECT_SLUG.fullmatch(requested):
            raise InputError(
                "project must be 1-63 characters of a-z, 0-9, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        return requested
    name = str(manifest.get("name") or template or "default").lower().split("/")[-1]
    slug = re.sub(r"[^a-z0-9._-]+", "-", name).strip("-._")[:63]
    return slug or "default"


def server_limits(ctx: Context) -> tuple[Limits, Limits]:
    """The server's (default, maximum) per-build limits."""
    s = ctx.settings
    return (
        Limits(s.timeout_s, s.memory_mb, s.cpus),
        Limits(s.max_timeout_s, s.max_memory_mb, s.max_cpus),
    )


def submit_build(
    ctx: Context,
    files: Files,
    *,
    template: str | None = None,
    project: str | None = None,
    limits: Mapping[str, float | int | None] | None = None,
    fresh: bool = False,
) -> Build:
    """Check a project, record its build and enqueue it. Raises before enqueueing on bad input.

    An input that already built successfully is answered at once with that artifact (a new,
    finished build record marked ``reused_from``) unless ``fresh`` asks for a real build.
    """
    if template:
        files = overlay(templates.load_template(ctx.settings.templates_dir, template), files)
    manifest = parse_package_json(files)
    check_buildable(manifest)
    dependency_sources.check_manifest(manifest)
    for lockfile in ("package-lock.json", "npm-shrinkwrap.json"):
        dependency_sources.check_lockfile(files.get(lockfile), allowed_hosts(ctx.settings))
    chosen = clamp_limits(limits, *server_limits(ctx))
    digest = reuse.input_digest(ctx, files) if ctx.settings.cache_reuse else None
    build = Build(
        project=project_slug(project, manifest, template),
        template=template,
        limits=asdict(chosen),
        input_digest=digest,
    )
    earlier = reuse.earlier_artifact(ctx, digest) if digest and not fresh else None
    if earlier is not None:
        return reuse.answer_from(ctx, earlier, build)
    source = ctx.settings.sources_dir / f"{build.id}.tar"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(to_tar(files))
    ctx.store.add(build)
    try:
        ctx.bus.status(build.id, Status.QUEUED.value, Phase.QUEUED.value)
        queue.enqueue_build(queue.build_queue(ctx.redis, ctx.settings.queue_name), build.id, chosen)
    except redis.RedisError as exc:
        ctx.store.finish(build.id, Status.FAILED, "queue_unavailable", str(exc), None)
        source.unlink(missing_ok=True)
        raise Unavailable(f"the build queue (Redis) is not reachable: {exc}") from exc
    return build


def get_build(ctx: Context, build_id: str) -> Build:
    """One build's record; NotFound if there is none."""
    return ctx.store.get(build_id)


def list_builds(
    ctx: Context, *, project: str | None = None, status: str | None = None, limit: int = 50
) -> list[Build]:
    """Builds, newest first."""
    if status is not None and status not in {s.value for s in Status}:
        raise InputError(f"unknown status {status!r}")
    if not 1 <= limit <= 500:
        raise InputError("limit must be between 1 and 500")
    return ctx.store.list(project=project, status=status, limit=limit)


def cancel_build(ctx: Context, build_id: str) -> Build:
    """Cancel a build: off the queue if it waits, its container killed if it runs."""
    build = ctx.store.get(build_id)
    if Status(build.status).finished:
        raise Conflict(f"build {build_id} already ended {build.status}")
    ctx.redis.set(cancel_key(build_id), "1", ex=CANCEL_FLAG_TTL_S)
    ctx.store.request_cancel(build_id)
    queue.remove_queued(queue.build_queue(ctx.redis, ctx.settings.queue_name), build_id)
    if ctx.store.cancel_if_queued(build_id):
        # No worker will ever see this build: end its event stream here.
        ended = ctx.store.get(build_id)
        ctx.bus.status(build_id, Status.CANCELLED.value, Phase.DONE.value)
        ctx.bus.publish(build_id, "end", view(ctx, ended))
        ctx.bus.archive(build_id)
        (ctx.settings.sources_dir / f"{build_id}.tar").unlink(missing_ok=True)
        return ended
    return ctx.store.get(build_id)


def build_log(ctx: Context, build_id: str) -> str:
    """The build's log lines so far, as plain text."""
    ctx.store.get(build_id)
    events = ctx.bus.read_archive(build_id)
    if events is None:
        events = ctx.bus.history(build_id)
    return "".join(e.data.get("text", "") + "\n" for e in events if e.event == "log")


def view(ctx: Context, build: Build) -> dict[str, object]:
    """The contract's JSON body of a build."""
    return public_view(build, ctx.settings.preview_url(build.id))


def list_templates(ctx: Context) -> list[dict[str, str]]:
    """The bundled templates."""
    return templates.list_templates(ctx.settings.templates_dir)
