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
from orchestrator.codegen.client import model_config
from orchestrator.context import Context, cancel_key
from orchestrator.egress.service import allowed_hosts
from orchestrator.errors import Conflict, InputError, NotFound, Unavailable
from orchestrator.models import Build, Generation, public_view
from orchestrator.pipeline import SOURCE_ARCHIVE
from orchestrator.plan import Limits, Phase, Status, check_buildable, clamp_limits
from orchestrator.project_input import Files, overlay, parse_package_json, to_tar

PROJECT_SLUG = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
CANCEL_FLAG_TTL_S = 24 * 3600
MAX_PROMPT_CHARS = 20_000
DEFAULT_GENERATION_TEMPLATE = "react-ts"


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
) -> Build:
    """Check a project, record its build and enqueue it. Raises before enqueueing on bad input."""
    if template:
        files = overlay(templates.load_template(ctx.settings.templates_dir, template), files)
    manifest = parse_package_json(files)
    check_buildable(manifest)
    dependency_sources.check_manifest(manifest)
    for lockfile in ("package-lock.json", "npm-shrinkwrap.json"):
        dependency_sources.check_lockfile(files.get(lockfile), allowed_hosts(ctx.settings))
    chosen = clamp_limits(limits, *server_limits(ctx))
    build = Build(
        project=project_slug(project, manifest, template),
        template=template,
        limits=asdict(chosen),
    )
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


def submit_generation(
    ctx: Context,
    prompt: str,
    *,
    template: str | None = None,
    base_build: str | None = None,
    project: str | None = None,
    limits: Mapping[str, float | int | None] | None = None,
) -> Build:
    """Record a generated build and enqueue its job; the model is called by a worker, not here.

    Unavailable (503) when no model is configured; InputError, NotFound or Conflict on a
    bad prompt, template or base build, before anything is queued.
    """
    config = model_config(ctx.settings)
    if config is None:
        raise Unavailable(
            "code generation needs a model: set KILN_OPENAI_API_KEY (or OPENAI_API_KEY) and, "
            "for another OpenAI-compatible endpoint, KILN_OPENAI_BASE_URL and KILN_OPENAI_MODEL",
            code="generation_unavailable",
        )
    prompt = prompt.strip()
    if not prompt:
        raise InputError("prompt must not be empty")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InputError(f"prompt is longer than {MAX_PROMPT_CHARS} characters")
    if template and base_build:
        raise InputError("give either template or base_build, not both")
    if base_build:
        base = ctx.store.get(base_build)
        if not (ctx.settings.artifacts_dir / base.id / SOURCE_ARCHIVE).is_file():
            raise Conflict(f"build {base.id} has no sources to edit yet (it is {base.status})")
        slug = project_slug(project, {}, base.project)
    else:
        template = template or DEFAULT_GENERATION_TEMPLATE
        manifest = parse_package_json(templates.load_template(ctx.settings.templates_dir, template))
        slug = project_slug(project, manifest, template)
    chosen = clamp_limits(limits, *server_limits(ctx))
    build = Build(project=slug, template=template, limits=asdict(chosen))
    ctx.store.add(build)
    ctx.store.add_generation(
        Generation(
            build_id=build.id,
            prompt=prompt,
            model=config.model,
            template=template,
            base_build=base_build,
        )
    )
    s = ctx.settings
    timeout = queue.generation_job_timeout(chosen, s.generate_budget_s, s.generate_max_fix_rounds)
    try:
        ctx.bus.status(build.id, Status.QUEUED.value, Phase.QUEUED.value)
        queue.enqueue_generation(queue.build_queue(ctx.redis, s.queue_name), build.id, timeout)
    except redis.RedisError as exc:
        ctx.store.finish(build.id, Status.FAILED, "queue_unavailable", str(exc), None)
        raise Unavailable(f"the build queue (Redis) is not reachable: {exc}") from exc
    return build


def get_generation(ctx: Context, build_id: str) -> dict[str, object]:
    """A generated build's full generation record: prompt, every model call, the files."""
    ctx.store.get(build_id)
    generation = ctx.store.generation(build_id)
    if generation is None:
        raise NotFound(f"build {build_id} was submitted, not generated")
    return generation.model_dump(mode="json")


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
    return public_view(build, ctx.settings.preview_url(build.id), ctx.store.generation(build.id))


def views(ctx: Context, builds: list[Build]) -> list[dict[str, object]]:
    """The contract's JSON bodies of several builds (one query for their generations)."""
    generations = ctx.store.generations([b.id for b in builds])
    return [public_view(b, ctx.settings.preview_url(b.id), generations.get(b.id)) for b in builds]


def list_templates(ctx: Context) -> list[dict[str, str]]:
    """The bundled templates."""
    return templates.list_templates(ctx.settings.templates_dir)
