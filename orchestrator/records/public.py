"""The public JSON shapes of the records, as pydantic models (the ``BuildPublic`` family).

One definition serves the API (``response_model`` of the routes, hence the OpenAPI
document), the SSE ``end`` event a worker publishes, and the CLI's client. Pure: no I/O,
imports only the record enums. ``orchestrator/builds/public.py`` fills them from a record.

Every field keeps the name and JSON value clients saw when these bodies were plain
dicts; optional keys that were left out then (``generation``, the ``cache`` keys, a
generation round's ``error`` or ``summary``) are still left out, not sent as null.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from orchestrator.records.models import CacheOutcome, ErrorCode, Phase, Status, aware


def iso_ms(value: datetime) -> str:
    """A timestamp as the API writes it: UTC, milliseconds, ``Z`` (``…T12:00:00.123Z``)."""
    return aware(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Timestamp = Annotated[
    datetime,
    PlainSerializer(iso_ms, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def _is_none(value: object) -> bool:
    return value is None


def omitted_when_none(description: str) -> Any:
    """A field that is left out of the JSON body, not sent as null, when it has no value."""
    return Field(default=None, exclude_if=_is_none, description=description)


class DiagnosticItem(BaseModel):
    """One problem found in a failed build's log, with its place in the project."""

    category: str
    file: str | None
    line: int | None
    column: int | None
    message: str


class Diagnostics(BaseModel):
    """A failed build's log as a compact report (``orchestrator/builds/diagnostics.py``)."""

    category: str = Field(description="The first item's category.")
    fingerprint: str = Field(description="Equal for the same errors, whatever their lines.")
    items: list[DiagnosticItem]
    omitted: int = Field(description="Items past the first ten, left out.")


class BuildErrorPublic(BaseModel):
    """How a build ended when it did not succeed."""

    code: ErrorCode = Field(description="Why: install_failed, build_failed, timeout, …")
    message: str
    log_tail: str
    diagnostics: Diagnostics | None = Field(description="For failed builds; null otherwise.")


class CachePublic(BaseModel):
    """How a build's caches served it; only the keys that applied are present."""

    model_config = ConfigDict(extra="allow")
    reuse: CacheOutcome | None = omitted_when_none("hit: an identical earlier input's artifact.")
    reused_from: str | None = omitted_when_none("The build whose artifact was reused.")
    layer: CacheOutcome | None = omitted_when_none("Dependency layer: hit, miss, private, none.")
    layer_key: str | None = omitted_when_none("The dependency layer's key.")
    resolution: CacheOutcome | None = omitted_when_none("hit or miss: a remembered resolution.")


class LimitsPublic(BaseModel):
    """The limits a build runs under (the request's, clamped to the server's maximums).

    Every build Kiln records has all three; a record made without limits shows ``{}``."""

    model_config = ConfigDict(extra="allow")
    timeout_s: int | None = omitted_when_none("Seconds for the whole build.")
    memory_mb: int | None = omitted_when_none("Memory of each step's container, in MB.")
    cpus: float | None = omitted_when_none("CPUs of each step's container.")


class Usage(BaseModel):
    """Model tokens spent."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class GenerationSummary(BaseModel):
    """How a generated build was generated (part of its build body)."""

    prompt: str
    model: str
    template: str | None
    base_build: str | None
    model_calls: int
    fix_rounds: int
    usage: Usage
    files: list[str] = Field(description="Paths the model wrote.")
    deleted: list[str] = Field(description="Paths the model deleted.")


class QueuePublic(BaseModel):
    """Where a build stands in line and how long it waited."""

    position: int | None = Field(
        default=None, description="1 is next; null once a worker has the build or unknown."
    )
    waited_ms: int | None = None


class BuildUrls(BaseModel):
    """Where a build can be seen: itself, and its project's newest succeeded build."""

    preview: str = Field(description="This build's preview (answers once it succeeded).")
    latest: str = Field(description="The project's newest succeeded build (moves).")


class EnvironmentPublic(BaseModel):
    """The Node and package manager a build runs with; both null until a worker has chosen."""

    node: str | None = Field(default=None, description="The full Node version, e.g. 22.12.0.")
    package_manager: str | None = Field(
        default=None, description="<command>@<version>, e.g. pnpm@10.34.9 or yarn@4.18.1."
    )


class BuildPublic(BaseModel):
    """A build: ``GET /api/v1/builds/{id}``, list items, and the SSE ``end`` event's data."""

    id: str
    project: str
    template: str | None
    status: Status
    phase: Phase
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    duration_ms: int | None
    limits: LimitsPublic
    attempts: int
    error: BuildErrorPublic | None
    preview_url: str | None = Field(description="Set once the build succeeded.")
    reused_from: str | None
    cache: CachePublic
    urls: BuildUrls
    env: list[str] = Field(
        default_factory=list, description="Names of the build settings given (never values)."
    )
    environment: EnvironmentPublic = Field(default_factory=lambda: EnvironmentPublic())
    output_dir: str | None = omitted_when_none(
        "The folder published when it is not dist/ (the Vite config's build.outDir, or the "
        "static folder of a detected framework), relative to the project."
    )
    root: str | None = Field(
        default=None,
        description='The app\'s folder inside the project ("front", "apps/web"); null at the top.',
    )
    queued_ms: int | None = Field(
        default=None, description="Milliseconds from submit to a worker taking the build."
    )
    queue: QueuePublic = Field(default_factory=lambda: QueuePublic())
    generation: GenerationSummary | None = omitted_when_none("Present on generated builds.")


class BuildsPublic(BaseModel):
    """Builds, newest first."""

    items: list[BuildPublic]


class GenerationRound(BaseModel):
    """One model call of a generation; keys that did not apply are absent."""

    model_config = ConfigDict(extra="allow")
    round: int
    kind: str = Field(description="generate or fix")
    model: str
    seconds: float
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    fixes: str | None = omitted_when_none("The fingerprint of the errors this round fixes.")
    error: str | None = omitted_when_none("Why the answer could not be used.")
    summary: str | None = omitted_when_none("The model's summary of its edit.")
    files: list[str] | None = omitted_when_none("Paths written.")
    deleted: list[str] | None = omitted_when_none("Paths deleted.")


class GenerationPublic(BaseModel):
    """A generated build's whole generation record: ``GET /api/v1/builds/{id}/generation``."""

    build_id: str
    prompt: str
    model: str
    template: str | None
    base_build: str | None
    created_at: datetime
    rounds: list[GenerationRound]
    prompt_tokens: int
    completion_tokens: int
    files: dict[str, str] = Field(description="Path → the final text the model wrote.")
    deleted: list[str]
