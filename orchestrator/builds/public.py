"""A build's public body filled from its record: ``BuildPublic`` (orchestrator/records/
public.py), served by ``GET /api/v1/builds/{id}`` and sent as the SSE ``end`` event."""

from __future__ import annotations

from typing import Any

from orchestrator.builds.diagnostics import diagnose
from orchestrator.builds.queue_wait import queue_fields
from orchestrator.project.slugs import alias_url
from orchestrator.records.models import Build, Generation, Phase, Status, aware
from orchestrator.records.public import (
    BuildErrorPublic,
    BuildPublic,
    BuildUrls,
    CachePublic,
    Diagnostics,
    EnvironmentPublic,
    GenerationSummary,
    LimitsPublic,
    Usage,
)


def duration_ms(build: Build) -> int | None:
    """Milliseconds from start to finish, once both are known."""
    if build.started_at is None or build.finished_at is None:
        return None
    return int((aware(build.finished_at) - aware(build.started_at)).total_seconds() * 1000)


def generation_summary(generation: Generation) -> GenerationSummary:
    """The part of a generated build's public body that says how it was generated."""
    return GenerationSummary(
        prompt=generation.prompt,
        model=generation.model,
        template=generation.template,
        base_build=generation.base_build,
        model_calls=len(generation.rounds),
        fix_rounds=sum(1 for r in generation.rounds if r.get("kind") == "fix"),
        usage=Usage(
            prompt_tokens=generation.prompt_tokens,
            completion_tokens=generation.completion_tokens,
            total_tokens=generation.prompt_tokens + generation.completion_tokens,
        ),
        files=sorted(generation.files),
        deleted=sorted(generation.deleted),
    )


def build_error(build: Build) -> BuildErrorPublic | None:
    """How ``build`` ended, when it ended with an error code."""
    if not build.error_code:
        return None
    diagnostics = build.error_diagnostics
    if build.status == Status.FAILED and diagnostics is None:
        # Failed before a worker ran it (or recorded before diagnostics existed).
        diagnostics = diagnose(
            build.error_code, build.error_message or "", build.error_log_tail or ""
        )
    return BuildErrorPublic(
        code=build.error_code,
        message=build.error_message or "",
        log_tail=build.error_log_tail or "",
        diagnostics=None if diagnostics is None else Diagnostics.model_validate(diagnostics),
    )


def build_public(
    build: Build,
    preview_url: str,
    generation: Generation | None = None,
    queue_position: int | None = None,
) -> BuildPublic:
    """The contract's body of ``build`` as a model (``GET /api/v1/builds/{id}``)."""
    return BuildPublic(
        id=build.id,
        project=build.project,
        template=build.template,
        status=Status(build.status),
        phase=Phase(build.phase),
        created_at=build.created_at,
        started_at=build.started_at,
        finished_at=build.finished_at,
        duration_ms=duration_ms(build),
        limits=LimitsPublic.model_validate(build.limits),
        attempts=build.attempts,
        error=build_error(build),
        preview_url=preview_url if build.status == Status.SUCCEEDED else None,
        reused_from=build.reused_from,
        cache=CachePublic.model_validate(build.cache or {}),
        urls=BuildUrls(
            preview=preview_url, latest=alias_url(preview_url, build.id, "latest", build.project)
        ),
        # Build settings by name only: the values are the submitter's secrets.
        env=sorted(build.env or {}),
        environment=EnvironmentPublic(
            node=(build.environment or {}).get("node"),
            package_manager=(build.environment or {}).get("package_manager"),
        ),
        # Kept with the environment's record (a JSON column): where the build's output was.
        output_dir=(build.environment or {}).get("output_dir"),
        root=build.root,
        **queue_fields(build, queue_position),
        generation=None if generation is None else generation_summary(generation),
    )


def public_view(
    build: Build,
    preview_url: str,
    generation: Generation | None = None,
    queue_position: int | None = None,
) -> dict[str, Any]:
    """The contract's JSON body for ``GET /api/v1/builds/{id}`` (and the SSE ``end`` event):
    ``build_public`` dumped as JSON, so the event and the route send one shape."""
    return build_public(build, preview_url, generation, queue_position).model_dump(mode="json")
