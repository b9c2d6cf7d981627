"""The records (SQLModel): builds and generations, and the states a build's columns take.

``Status``, ``Phase`` and ``ErrorCode`` (defined with the error tree, floor 0) type the
build's columns; they are stored as their string values, the same strings older Kiln
wrote, so old rows read back as enums.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import JSON, AutoString, Column, Field, SQLModel

from orchestrator.errors import ErrorCode

__all__ = [
    "Build",
    "CacheOutcome",
    "ErrorCode",
    "Generation",
    "Phase",
    "Status",
    "aware",
    "new_build_id",
    "utcnow",
]


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


class CacheOutcome(StrEnum):
    """How a cache answered a build (the values of its ``cache`` body's fields).

    ``layer`` is hit, miss, private (installed in the build's own workspace) or none (no
    lockfile to key a layer); ``resolution`` is hit or miss; ``reuse`` is hit.
    """

    HIT = "hit"
    MISS = "miss"
    PRIVATE = "private"
    NONE = "none"


E = TypeVar("E", bound=StrEnum)


class StringEnum(TypeDecorator[E]):
    """A column of a str Enum stored as the member's value, in the same VARCHAR as a ``str``
    column (no database enum type, no CHECK: a new member needs no migration)."""

    impl = AutoString
    cache_ok = True

    def __init__(self, enum: type[E]) -> None:
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


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
    status: Status = Field(default=Status.QUEUED, index=True, sa_type=StringEnum(Status))
    phase: Phase = Field(default=Phase.QUEUED, sa_type=StringEnum(Phase))
    created_at: datetime = Field(default_factory=utcnow, index=True)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    limits: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    error_code: ErrorCode | None = Field(default=None, sa_type=StringEnum(ErrorCode))
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
    # Build environments (project/environment.py): the submit's "node", then what the worker
    # chose: {"requested_node", "node", "package_manager"}.
    environment: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # The app's folder inside the submitted project ("front", "apps/web"; None at the top):
    # project/app_folder.py says where its install runs.
    root: str | None = None


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
