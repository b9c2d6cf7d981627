"""The build record (SQLModel) and its public JSON shape."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlmodel import JSON, Column, Field, SQLModel


class Status(StrEnum):
    """A build's life: queued, running, then one of the three ends."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """True for the three terminal states."""
        return self in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)


class Phase(StrEnum):
    """Where a build is within its run."""

    QUEUED = "queued"
    GENERATING = "generating"
    PREPARING = "preparing"
    INSTALLING = "installing"
    BUILDING = "building"
    PUBLISHING = "publishing"
    DONE = "done"


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
    # A submit's build settings (project/build_env.py): read by the worker for the build
    # step; the public body shows only the names.
    env: dict[str, str] | None = Field(default=None, sa_column=Column(JSON))


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
