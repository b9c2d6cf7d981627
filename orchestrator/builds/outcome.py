"""How one run of a build ended, and the one place an exception becomes that (pure).

A plain build and a generation both end through ``outcome_of``: the build's cancel flag
(``Cancelled``) ends it ``cancelled``; a ``BuildError`` (``GenerationError`` included)
ends it ``failed`` with its code; Redis going away is re-raised (the build stays running
and the reconciler runs it again); anything else is a bug or an engine fault, and still
ends the build, as an internal error.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import redis

from orchestrator.errors import BuildError, ErrorCode, GenerationError
from orchestrator.records.models import Status

log = logging.getLogger("kiln.pipeline")


class Cancelled(Exception):
    """Raised inside a build run when the build's cancel flag is seen."""


class Outcome(NamedTuple):
    """How one attempt at a build ended; ``log`` is what its diagnosis reads."""

    status: Status
    code: ErrorCode | None = None
    message: str | None = None
    log: str = ""  # the failed step's output ("" when no step's output explains it)


SUCCEEDED = Outcome(Status.SUCCEEDED)
CANCELLED = Outcome(Status.CANCELLED, ErrorCode.CANCELLED, "the build was cancelled")


def outcome_of(
    exc: Exception, *, step_output: str, internal_code: ErrorCode, build_id: str
) -> Outcome:
    """The outcome an exception raised inside a build run stands for (re-raises RedisError).

    ``step_output`` is the output of the step that ran last; a ``GenerationError`` is
    about the model, not about a step, so its diagnosis gets no build log.
    """
    if isinstance(exc, Cancelled):
        return CANCELLED
    if isinstance(exc, GenerationError):
        return Outcome(Status.FAILED, exc.code, exc.message)
    if isinstance(exc, BuildError):
        return Outcome(Status.FAILED, exc.code, exc.message, step_output)
    if isinstance(exc, redis.RedisError):
        # Redis went away: leave the build running; its heartbeat stops and the reconciler
        # runs it again once Redis is back (the events written so far are lost with Redis).
        log.error("build %s lost Redis", build_id, exc_info=exc)
        raise exc
    log.error("build %s crashed", build_id, exc_info=exc)
    return Outcome(Status.FAILED, internal_code, f"internal error: {exc}", step_output)
