"""The bodies of the dev-session routes (``api/routes/dev.py``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from orchestrator.dev.record import DevStatus
from orchestrator.records.public import EnvironmentPublic


class DevLinks(BaseModel):
    """Where to follow and edit a session."""

    self: str
    events: str = Field(description="The session's server-sent events.")
    files: str = Field(description="PATCH edits here; GET their sha256 digests.")


class DevSessionError(BaseModel):
    """Why a session failed."""

    code: str = Field(description="dev_server_failed, dev_server_exited, worker_lost, ...")
    message: str
    log_tail: str | None = None


class DevSessionPublic(BaseModel):
    """A project's dev session: ``GET /api/v1/projects/{project}/dev``."""

    project: str
    status: DevStatus
    url: str = Field(description="The session's dev-- host (Vite with HMR).")
    revision: int = Field(description="Bumped by every applied batch of edits.")
    started_at: str | None
    ready_at: str | None
    last_activity_at: str | None
    idle_timeout_s: int
    root: str | None = Field(
        description="The app's folder in the project (the start's root); null at the top."
    )
    environment: EnvironmentPublic = Field(
        description="The Node and package manager the session runs, as a build of its files."
    )
    vite_version: str | None = Field(description="The project's own Vite, as its agent found it.")
    warnings: list[str] = Field(description="Known dev-server advisories this Vite predates.")
    error: DevSessionError | None
    links: DevLinks


class DevSessionsPublic(BaseModel):
    """Every dev session this Kiln knows, by project."""

    items: list[DevSessionPublic]


class DevEditReply(BaseModel):
    """The answer to ``PATCH …/dev/files``: the batch is applied as this revision."""

    revision: int
    applied_at: str
    restart: bool = Field(description="A dependency changed: the session reinstalls.")


class DevFilesPublic(BaseModel):
    """sha256 of every current file of the session (what ``kiln dev push`` compares)."""

    files: dict[str, str]
