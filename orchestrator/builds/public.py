"""A build's public JSON shape: ``GET /api/v1/builds/{id}`` and the SSE ``end`` event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestrator.builds.diagnostics import diagnose
from orchestrator.records.models import Build, Generation, Status, aware


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return aware(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def duration_ms(build: Build) -> int | None:
    """Milliseconds from start to finish, once both are known."""
    if build.started_at is None or build.finished_at is None:
        return None
    return int((aware(build.finished_at) - aware(build.started_at)).total_seconds() * 1000)


def generation_summary(generation: Generation) -> dict[str, Any]:
    """The part of a generated build's public body that says how it was generated."""
    return {
        "prompt": generation.prompt,
        "model": generation.model,
        "template": generation.template,
        "base_build": generation.base_build,
        "model_calls": len(generation.rounds),
        "fix_rounds": sum(1 for r in generation.rounds if r.get("kind") == "fix"),
        "usage": {
            "prompt_tokens": generation.prompt_tokens,
            "completion_tokens": generation.completion_tokens,
            "total_tokens": generation.prompt_tokens + generation.completion_tokens,
        },
        "files": sorted(generation.files),
        "deleted": sorted(generation.deleted),
    }


def public_view(
    build: Build, preview_url: str, generation: Generation | None = None
) -> dict[str, Any]:
    """The contract's JSON body for ``GET /api/v1/builds/{id}`` (and the SSE ``end`` event)."""
    error = None
    if build.error_code:
        error = {
            "code": build.error_code,
            "message": build.error_message or "",
            "log_tail": build.error_log_tail or "",
            "diagnostics": build.error_diagnostics,
        }
        if build.status == Status.FAILED and build.error_diagnostics is None:
            # Failed before a worker ran it (or recorded before diagnostics existed).
            error["diagnostics"] = diagnose(
                build.error_code, build.error_message or "", build.error_log_tail or ""
            )
    body = {
        "id": build.id,
        "project": build.project,
        "template": build.template,
        "status": build.status,
        "phase": build.phase,
        "created_at": _iso(build.created_at),
        "started_at": _iso(build.started_at),
        "finished_at": _iso(build.finished_at),
        "duration_ms": duration_ms(build),
        "limits": build.limits,
        "attempts": build.attempts,
        "error": error,
        "preview_url": preview_url if build.status == Status.SUCCEEDED else None,
        "reused_from": build.reused_from,
        "cache": build.cache or {},
    }
    if generation is not None:
        body["generation"] = generation_summary(generation)
    return body
