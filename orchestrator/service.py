"""What Kiln does for its callers: submit, look up, list and cancel builds.

The API routes and the CLI call these; they never touch Redis, Docker or the database
on their own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta

import redis

from orchestrator.builds import jobs as queue
from orchestrator.builds import lifecycle, reuse
from orchestrator.builds.public import public_view
from orchestrator.builds.queue_wait import positions
from orchestrator.codegen.client import model_config
from orchestrator.context import Context, cancel_key
from orchestrator.errors import Conflict, ErrorCode, InputError, NotFound, Unavailable
from orchestrator.live.events import Event
from orchestrator.ops import admission
from orchestrator.project import app_folder, dependency_sources, templates
from orchestrator.project.build_env import check_env
from orchestrator.project.environment import check_request
from orchestrator.project.input import (
    Files,
    overlay,
    parse_package_json,
    to_tar,
)
from orchestrator.project.npm import check_buildable
from orchestrator.project.slugs import project_slug
from orchestrator.records.models import Build, Generation, Phase, Status, aware, utcnow
from orchestrator.sandbox.egress.service import allowed_hosts
from orchestrator.sandbox.image.toolchains import describe_offer, image_offer
from orchestrator.sandbox.step import Limits, clamp_limits
from orchestrator.storage.disk import free_disk_mb

CANCEL_FLAG_TTL_S = 24 * 3600
MAX_PROMPT_CHARS = 20_000
DEFAULT_GENERATION_TEMPLATE = "react-ts"


def check_disk(ctx: Context) -> None:
    """Refuse new work (507) while the disk under var/ is below its floor."""
    s = ctx.settings
    admission.check_disk(free_disk_mb(s.var_dir), s.min_free_disk_mb)


def server_limits(ctx: Context) -> tuple[Limits, Limits]:
    """The server's (default, maximum) per-build limits."""
    s = ctx.settings
    return (
        Limits(s.timeout_s, s.memory_mb, s.cpus),
        Limits(s.max_timeout_s, s.max_memory_mb, s.max_cpus),
    )


@dataclass(frozen=True)
class SubmitOptions:
    """What a submit asks for besides its files (the API takes them from the JSON body, or
    with a tarball from the query string)."""

    template: str | None = None  # a bundled template the files are laid over
    project: str | None = None  # the project slug (default: from package.json's name)
    limits: Mapping[str, float | int | None] | None = None  # lowered per-build limits
    supersede: bool = False  # cancel the project's older builds that are still queued
    fresh: bool = False  # build even if an identical input already has an artifact
    env: Mapping[str, object] | None = None  # build settings for the build step only
    node: int | str | None = None  # a Node major (GET /api/v1/environments lists them)
    root: str | None = None  # the app's folder inside the project ("front", "apps/web")


def check_project(ctx: Context, files: Files, root: str | None) -> dict[str, object]:
    """The app's package.json, once the project passed the submit's checks: its app found
    (``root``, or at the top), buildable, its dependencies from the registry or the project.
    A workspace member's install root (its package.json and npm lockfile) is checked too."""
    app_folder.require_app(files, root)
    where = app_folder.layout(root, files)
    manifest = parse_package_json(files, _path(where.app, "package.json"))
    check_buildable(manifest)
    dependency_sources.check_manifest(manifest, where.app)
    dependency_sources.check_no_exec(files)
    if where.install != where.app:
        top = parse_package_json(files, _path(where.install, "package.json"))
        dependency_sources.check_manifest(top, where.install)
    for lockfile in ("package-lock.json", "npm-shrinkwrap.json"):
        raw = files.get(_path(where.install, lockfile))
        dependency_sources.check_lockfile(raw, allowed_hosts(ctx.settings), where.install)
    return manifest


def _path(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def submit_build(
    ctx: Context,
    files: Files,
    options: SubmitOptions = SubmitOptions(),
    *,
    idempotency_key: str | None = None,
) -> Build:
    """Check a project, record its build and enqueue it. Raises before enqueueing on bad input,
    a full queue (429) or a full disk (507). A repeated ``idempotency_key`` returns the build
    it first made; ``options.supersede`` cancels the project's older builds still queued.
    An input that already built successfully is answered at once with that artifact (a new,
    finished build record marked ``reused_from``) unless ``options.fresh`` asks for a real
    build. ``options.env`` is checked and is part of the reuse key.
    ``options.node`` is the Node major asked for (400 ``unsupported_environment`` if not
    offered)."""
    s = ctx.settings
    build_env = check_env(options.env)
    if idempotency_key is not None:
        check_idempotency_key(idempotency_key)
        earlier = recent_by_key(ctx, idempotency_key)
        if earlier is not None:
            return earlier
    check_disk(ctx)
    if options.template:
        files = overlay(templates.load_template(s.templates_dir, options.template), files)
    root = app_folder.check_root(options.root)
    manifest = check_project(ctx, files, root)
    chosen = clamp_limits(options.limits, *server_limits(ctx))
    requested_node = requested_environment(ctx, options.node)
    digest = (
        reuse.input_digest(ctx, files, build_env, requested_node, root)
        if ctx.settings.cache_reuse
        else None
    )
    build = Build(
        project=project_slug(options.project, manifest, options.template),
        template=options.template,
        limits=asdict(chosen),
        idempotency_key=idempotency_key,
        input_digest=digest,
        env=build_env or None,
        environment={"requested_node": requested_node} if requested_node else None,
        root=root,
    )
    earlier = reuse.earlier_artifact(ctx, digest) if digest and not options.fresh else None
    reused = reuse.answer_from(ctx, earlier, build, to_tar(files)) if earlier else None
    if reused is not None:
        return reused
    admit(ctx, build.project, ignore_project_queue=options.supersede)
    build, inserted = record_and_enqueue(ctx, build, to_tar(files))
    if inserted and options.supersede:
        supersede_older(ctx, build)
    return build


def requested_environment(ctx: Context, node: object) -> int | None:
    """The Node major a submit asks for, checked against the image's offer (None: not asked)."""
    if node is None or node == "":
        return None
    return check_request(image_offer(ctx.docker, ctx.settings.sandbox_image), node)


def list_environments(ctx: Context) -> list[dict[str, object]]:
    """What builds can run with: each offered Node major and the package managers' versions."""
    return describe_offer(image_offer(ctx.docker, ctx.settings.sandbox_image))


def admit(ctx: Context, project: str, *, ignore_project_queue: bool = False) -> None:
    """Raise Overloaded (429) when the queue, overall or for ``project``, is full."""
    s = ctx.settings
    admission.check_queue(
        queued=ctx.store.count(status=Status.QUEUED),
        max_queued=s.max_queued,
        project=project,
        project_queued=0
        if ignore_project_queue
        else ctx.store.count(status=Status.QUEUED, project=project),
        max_per_project=s.max_queued_per_project,
    )


def record_and_enqueue(ctx: Context, build: Build, source_tar: bytes) -> tuple[Build, bool]:
    """Write the source, record the build and enqueue it: (the build, newly recorded?).

    When a concurrent submit with the same Idempotency-Key won, its build is returned."""
    ctx.storage.write_source(build.id, source_tar)
    build, inserted = ctx.store.add_idempotent(build)
    if not inserted:
        ctx.storage.remove_source(build.id)
        return build, False
    try:
        ctx.bus.status(build.id, Status.QUEUED.value, Phase.QUEUED.value, build.project)
        queue.enqueue_build(
            queue.build_queue(ctx.redis, ctx.settings.queue_name), build.id, Limits(**build.limits)
        )
    except redis.RedisError as exc:
        lifecycle.fail_unqueued(ctx, build.id, str(exc))
        ctx.storage.remove_source(build.id)
        raise Unavailable(f"the build queue (Redis) is not reachable: {exc}") from exc
    return build, True


def retry_build(ctx: Context, build_id: str) -> Build:
    """A new build of an ended build's source, project, template and limits (``kiln retry``)."""
    old = ctx.store.get(build_id)
    if not Status(old.status).finished:
        raise Conflict(f"build {build_id} is {old.status}; only an ended build can be retried")
    source = ctx.storage.read_source(build_id)
    if source is None:
        raise Conflict(f"the source of build {build_id} was removed by `kiln gc`; submit it again")
    check_disk(ctx)
    admit(ctx, old.project)
    new = Build(
        project=old.project,
        template=old.template,
        limits=dict(old.limits),
        env=dict(old.env) if old.env else None,
        root=old.root,
    )
    build, _ = record_and_enqueue(ctx, new, source)
    return build


IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")


def check_idempotency_key(key: str) -> None:
    """An Idempotency-Key is 1-200 printable ASCII characters."""
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise InputError("Idempotency-Key must be 1-200 printable ASCII characters")


def recent_by_key(ctx: Context, key: str) -> Build | None:
    """The build an Idempotency-Key made within its lifetime; an expired key is released."""
    build = ctx.store.by_idempotency_key(key)
    if build is None:
        return None
    if utcnow() - aware(build.created_at) < timedelta(seconds=ctx.settings.idempotency_ttl_s):
        return build
    ctx.store.release_idempotency_key(build.id)
    return None


def supersede_older(ctx: Context, newer: Build) -> list[str]:
    """Cancel the project's builds that were queued before ``newer``; returns their ids."""
    ended = []
    for older in ctx.store.queued_of_project(newer.project):
        if older.id == newer.id:
            continue
        queue.remove_queued(queue.build_queue(ctx.redis, ctx.settings.queue_name), older.id)
        if lifecycle.supersede(ctx, older.id, newer.id):
            ended.append(older.id)
    return ended


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
            "code generation needs a model and none is configured: set KILN_OPENAI_API_KEY "
            "(or OPENAI_API_KEY) and, for another OpenAI-compatible endpoint, "
            "KILN_OPENAI_BASE_URL and KILN_OPENAI_MODEL, in the environment of the API and of "
            "the workers or in the .env of the Kiln installation, then restart both "
            "(`kiln doctor` shows the model configuration they read)",
            code=ErrorCode.GENERATION_UNAVAILABLE,
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
        if not ctx.storage.has_kept_source(base.id):
            raise Conflict(f"build {base.id} has no sources to edit yet (it is {base.status})")
        slug = project_slug(project, {}, base.project)
    else:
        template = template or DEFAULT_GENERATION_TEMPLATE
        manifest = parse_package_json(templates.load_template(ctx.settings.templates_dir, template))
        slug = project_slug(project, manifest, template)
    chosen = clamp_limits(limits, *server_limits(ctx))
    check_disk(ctx)
    admit(ctx, slug)
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
        ctx.bus.status(build.id, Status.QUEUED.value, Phase.QUEUED.value, build.project)
        queue.enqueue_generation(queue.build_queue(ctx.redis, s.queue_name), build.id, timeout)
    except redis.RedisError as exc:
        lifecycle.fail_unqueued(ctx, build.id, str(exc))
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
    try:
        wanted = None if status is None else Status(status)
    except ValueError:
        valid = ", ".join(s.value for s in Status)
        raise InputError(f"unknown status {status!r}; the statuses are {valid}") from None
    if not 1 <= limit <= 500:
        raise InputError("limit must be between 1 and 500")
    return ctx.store.list(project=project, status=wanted, limit=limit)


def cancel_build(ctx: Context, build_id: str) -> Build:
    """Cancel a build: off the queue if it waits, its container killed if it runs."""
    build = ctx.store.get(build_id)
    if Status(build.status).finished:
        raise Conflict(f"build {build_id} already ended {build.status}")
    ctx.redis.set(cancel_key(build_id), "1", ex=CANCEL_FLAG_TTL_S)
    ctx.store.request_cancel(build_id)
    queue.remove_queued(queue.build_queue(ctx.redis, ctx.settings.queue_name), build_id)
    lifecycle.cancel_queued(ctx, build_id)  # ends it, unless a worker has taken it
    return ctx.store.get(build_id)


def build_events(ctx: Context, build_id: str) -> list[Event]:
    """Every event of the build so far (its archive once it ended), oldest first."""
    ctx.store.get(build_id)
    events = ctx.bus.read_archive(build_id)
    return ctx.bus.history(build_id) if events is None else events


def build_log(ctx: Context, build_id: str) -> str:
    """The build's log lines so far, as plain text."""
    return "".join(
        e.data.get("text", "") + "\n" for e in build_events(ctx, build_id) if e.event == "log"
    )


def build_events_ndjson(ctx: Context, build_id: str) -> str:
    """Every event of the build so far, one JSON object a line (``{"id", "event", "data"}``)."""
    return "".join(e.to_json() + "\n" for e in build_events(ctx, build_id))


def queue_positions(ctx: Context, builds: list[Build]) -> dict[str, int]:
    """Places in line of the queued ones among ``builds`` (no query when none is queued)."""
    if not any(b.status == Status.QUEUED.value for b in builds):
        return {}
    return positions(ctx.store.queued_ids())


def view(ctx: Context, build: Build) -> dict[str, object]:
    """The contract's JSON body of a build."""
    position = queue_positions(ctx, [build]).get(build.id)
    return public_view(
        build, ctx.settings.preview_url(build.id), ctx.store.generation(build.id), position
    )


def views(ctx: Context, builds: list[Build]) -> list[dict[str, object]]:
    """The contract's JSON bodies of several builds (one query for their generations)."""
    generations = ctx.store.generations([b.id for b in builds])
    places = queue_positions(ctx, builds)
    return [
        public_view(b, ctx.settings.preview_url(b.id), generations.get(b.id), places.get(b.id))
        for b in builds
    ]


def list_templates(ctx: Context) -> list[dict[str, str]]:
    """The bundled templates."""
    return templates.list_templates(ctx.settings.templates_dir)
