"""The bodies only the API makes: submit replies, templates, health and errors.

The build bodies (``BuildPublic`` and its family) live in ``orchestrator/records/public.py``
because workers send them too (the SSE ``end`` event).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from orchestrator.records.models import Status
from orchestrator.records.public import omitted_when_none


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


class ErrorDetail(BaseModel):
    """What went wrong: a stable ``code`` for programs, a ``message`` for people."""

    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error the API answers: ``{"error": {"code", "message"}}``."""

    error: ErrorDetail


class Health(BaseModel):
    """``GET /healthz``: each dependency's answer; ``error`` only when one does not answer."""

    status: Literal["ok", "unhealthy"]
    checks: dict[str, str] = Field(description='"ok" or "error: …" per dependency.')
    error: ErrorDetail | None = omitted_when_none("Which dependencies did not answer (503).")
