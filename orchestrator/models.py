"""The build record (SQLModel) and its public JSON shape."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlmodel import JSON, Column, Field, SQLModel

from orchestrator.codegen.diagnostics import diagnose
from orchestrator.plan import Phase, Status


def new_build_id() -> str:
    """A short random id that is also a valid DNS label (it names the preview host)."""
    return secrets.token_hex(8)


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class Build(SQLModel, table=True):
    """One build of one project: what was asked, where it is, how it ended."""

    id: str = Field(default_factory=new_build_id, primary_key=True)
    project: str = Field(index=True)
    template: str | None = None
    status: str = Field(default=Status.QUEUED.value, index=True)
    phase: str = Field(default=Phase.QUEUED.value)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    limits: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    error_code: str | None = None
    error_message: str | None = None
    error_log_tail: str | None = None
    error_diagnostics: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    cancel_requested: bool = False
    attempts: int = 0  # runs started (a lost worker's build may run again)
    heartbeat_at: datetime | None = None  # refreshed by the worker while it runs the build
    worker: str | None = None  # the worker running (or that last ran) the build
    idempotency_key: str | None = Field(default=None, unique=True)
    # Caching (orchestrator/cache/): the input's key, the build whose artifact this one
    # reused, and how its dependencies came (layer hit/miss/private, layer key, resolution).
    input_digest: str | None = Field(default=None, index=True)
    reused_from: str | None = None
    cache: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # Build environments (project/environment.py): the submit's "node", then what the worker
    # chose: {"requested_node", "node", "package_manager"}.
    environment: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class Generation(SQLModel, table=True):
    """What the code generator was asked for a build, what it answered and what it cost."""

    build_id: str = Field(primary_key=True)
    prompt: str
    model: str
    template: str | None = None
    base_build: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    # One entry per model call: round, kind (generate | fix), usage, paths written and deleted.
    rounds: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # The files the model wrote (path -> final text) and the paths it deleted.
    files: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON))
    deleted: list[str] = Field(default_factory=list, sa_column=Column(JSON))


def aware(value: datetime) -> datetime:
    """``value`` with UTC attached when it is naive (SQLite hands datetimes back naive)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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
        "environment": {
            "node": (build.environment or {}).get("node"),
            "package_manager": (build.environment or {}).get("package_manager"),
        },
    }
    if generation is not None:
        body["generation"] = generation_summary(generation)
    return body
