"""The bodies only the API makes: submit replies, templates, health and errors.

The build bodies (``BuildPublic`` and its family) live in ``orchestrator/records/public.py``
because workers send them too (the SSE ``end`` event).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from orchestrator.records.models import ErrorCode, Status
from orchestrator.records.public import BuildPublic, omitted_when_none


class SubmitLinks(BaseModel):
    """Where to follow a submitted build."""

    self: str = Field(description="GET this for the build's body.")
    events: str = Field(description="Its server-sent events.")
    preview: str = Field(description="Its preview, once it succeeded (a status page before).")


class SubmitReply(BaseModel):
    """The 202 body of a submit, a generate or a retry."""

    id: str
    status: Status
    project: str
    reused_from: str | None = Field(description="Set when an identical input's artifact served.")
    links: SubmitLinks


class TemplatePublic(BaseModel):
    """A bundled template a submit can start from."""

    name: str
    description: str


class TemplatesPublic(BaseModel):
    """The bundled templates, by name."""

    items: list[TemplatePublic]


class EnvironmentOffered(BaseModel):
    """One Node major builds can run with, and the package managers' pinned versions."""

    node: str = Field(description="The full Node version, e.g. 22.12.0.")
    major: int
    default: bool = Field(description="True for the major a project that asks for none gets.")
    package_managers: dict[str, str] = Field(
        description="npm, pnpm, yarn (1, classic), yarn-berry (2+) and bun: their versions."
    )


class EnvironmentsPublic(BaseModel):
    """What ``GET /api/v1/environments`` offers: one item per Node major, oldest first."""

    items: list[EnvironmentOffered]


class ErrorDetail(BaseModel):
    """What went wrong: a stable ``code`` for programs, a ``message`` for people."""

    code: ErrorCode
    message: str


class ErrorBody(BaseModel):
    """Every error the API answers: ``{"error": {"code", "message"}}``."""

    error: ErrorDetail


class Health(BaseModel):
    """``GET /healthz``: each dependency's answer; ``error`` only when one does not answer."""

    status: Literal["ok", "unhealthy"]
    checks: dict[str, str] = Field(description='"ok" or "error: …" per dependency.')
    error: ErrorDetail | None = omitted_when_none("Which dependencies did not answer (503).")


class Installation(BaseModel):
    """Which Kiln answered, in words an operator recognises (no paths, no credentials)."""

    api_url: str
    instance: str
    queue: str


class QueueEntry(BaseModel):
    """A running or queued build in the operators' queue view."""

    id: str
    project: str
    status: Status
    phase: str
    worker: str | None
    attempts: int
    age_s: float


class OpsQueue(BaseModel):
    """What waits and runs: counts from the database (the truth) and from Redis."""

    installation: Installation
    draining: bool
    queued: int
    running: int
    redis_queue_length: int
    redis_started: int
    redis_failed: int
    oldest_wait_s: float
    builds: list[QueueEntry]


class WorkerRow(BaseModel):
    """One worker registered on the queue."""

    name: str
    state: str
    build: str | None = Field(description="The build it runs now, if any.")
    last_heartbeat: str | None
    succeeded_jobs: int
    failed_jobs: int


class OpsWorkers(BaseModel):
    """The workers registered on this Kiln's queue."""

    installation: Installation
    items: list[WorkerRow]


class RecentBuild(BaseModel):
    """One of a project's recent builds, for its sparkline."""

    id: str
    status: Status
    duration_ms: int | None
    created_at: str


class DevSummary(BaseModel):
    """A project's dev session at a glance."""

    status: str
    url: str


class ProjectRow(BaseModel):
    """A project at a glance: its latest build, its latest preview, its recent builds."""

    project: str
    latest: BuildPublic
    latest_succeeded: str | None = Field(description="The newest succeeded build, if any.")
    latest_url: str = Field(description="The project's `latest--` preview.")
    recent: list[RecentBuild]
    dev: DevSummary | None


class ProjectsPublic(BaseModel):
    """Every project, newest activity first."""

    items: list[ProjectRow]


class OpsWorker(BaseModel):
    """A worker and what it runs."""

    name: str
    state: str
    current_build: str | None
    last_heartbeat: str | None


class OpsQueueCounts(BaseModel):
    """What waits and runs."""

    queued: int
    running: int
    suspended: bool = Field(description="`kiln drain`: no new builds are taken.")
    by_project: dict[str, int]


class OpsResult(BaseModel):
    """Ended builds of one hour with one outcome (an error code, or succeeded)."""

    hour: str
    code: str
    count: int


class OpsStep(BaseModel):
    """A step's duration percentiles (upper bounds of histogram buckets, seconds)."""

    step: str
    count: int
    p50: float | None
    p95: float | None
    p99: float | None


class OpsCache(BaseModel):
    """A cache's hits against the builds that could have hit it."""

    name: str
    hits: int
    total: int


class OpsDisk(BaseModel):
    """Bytes one kind of stored thing takes."""

    name: str
    bytes: int


class OpsSummary(BaseModel):
    """Operations at a glance: the figures of /metrics, for the dashboard to draw."""

    workers: list[OpsWorker]
    queue: OpsQueueCounts
    results: list[OpsResult]
    steps: list[OpsStep]
    cache: list[OpsCache]
    disk: list[OpsDisk]
    free_disk_mb: float
