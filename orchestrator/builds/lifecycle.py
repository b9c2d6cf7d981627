"""Every transition of a build's life, and its one ``end`` event.

    queued ──claim──▶ running ──enter_phase──▶ running ──finish──▶ succeeded | failed | cancelled
      │                  │
      │                  └──requeue_lost──▶ queued      (its worker was lost; runs left)
      │                  └──lose──────────▶ failed      (worker_lost; no runs left)
      ├──cancel_queued──▶ cancelled                      (before any worker took it)
      ├──supersede──────▶ cancelled                      (a newer build of its project)
      └──fail_unqueued──▶ failed                         (the queue could not take it)
    (new) ──answer_reused──▶ succeeded                   (an identical input's artifact)

Each database change is conditional (see ``records.store``), so of two processes racing
over one build exactly one moves it; only that one announces it. Every end goes out
through ``_announce_end``: the ``status`` event, then ``end`` with the build's public view
(the same body as ``GET /builds/{id}``, generation summary included), then the archive.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from orchestrator.builds.diagnostics import diagnose, headline
from orchestrator.builds.outcome import Outcome
from orchestrator.builds.public import public_view
from orchestrator.context import Context
from orchestrator.errors import ErrorCode
from orchestrator.records.counters import incr
from orchestrator.records.models import Build, Phase, Status, utcnow

log = logging.getLogger("kiln.lifecycle")
WORKER_LOST = ErrorCode.WORKER_LOST
CACHES_COUNTED = ("layer", "resolution")  # cache_hits_total{cache=...}


def end_body(ctx: Context, build: Build) -> dict[str, Any]:
    """The body of a build's ``end`` event: its public view, as ``GET /builds/{id}`` shows."""
    return public_view(build, ctx.settings.preview_url(build.id), ctx.store.generation(build.id))


def _announce_end(ctx: Context, build: Build) -> None:
    ctx.bus.status(build.id, build.status, Phase.DONE.value)
    ctx.bus.publish(build.id, "end", end_body(ctx, build))
    ctx.bus.archive(build.id)


# -- a worker's run ----------------------------------------------------------------------


def claim(ctx: Context, build_id: str, *, worker: str, project_cap: int) -> Build | None:
    """Take a queued build for this worker (``running``, phase ``preparing``); None if it
    is no longer queued or its project already runs ``project_cap`` builds."""
    return ctx.store.claim(build_id, worker=worker, project_cap=project_cap)


def enter_phase(ctx: Context, build_id: str, phase: Phase) -> None:
    """Record and announce the phase a running build has entered."""
    ctx.store.set_phase(build_id, phase)
    announce_running(ctx, build_id, phase)


def announce_running(ctx: Context, build_id: str, phase: Phase) -> None:
    """Tell followers the build runs, in ``phase`` (after a claim, which recorded it)."""
    ctx.bus.status(build_id, Status.RUNNING.value, phase.value)


def finish(
    ctx: Context,
    build_id: str,
    outcome: Outcome,
    *,
    attempt: int,
    phase: Phase,
    log_tail: str,
    cache: Mapping[str, object],
) -> Build | None:
    """End a running build as ``outcome`` says; None when another process took it over.

    A failed build's diagnosis reads ``outcome.log``; its log tail is ``log_tail``.
    """
    if cache:
        ctx.store.set_cache(build_id, dict(cache))
        for name in CACHES_COUNTED:
            if cache.get(name) == "hit":
                incr(ctx.redis, ctx.settings.instance, "cache_hits_total", cache=name)
    status, code, message = outcome.status, outcome.code, outcome.message
    if code:
        ctx.bus.note(build_id, phase, f"{status.value}: {message}")
    # A copy beside the artifacts, before the end event: a client may at once ask for
    # a generation that edits this build.
    ctx.storage.keep_source(build_id)
    report = None
    if status == Status.FAILED:
        report = diagnose(code, message or "", outcome.log)
        message = headline(message or "", report)  # the diagnosis first, the exit as detail
    build = ctx.store.finish(
        build_id,
        status,
        code,
        message,
        log_tail if code else None,
        attempt=attempt,
        diagnostics=report,
    )
    log.info("build %s ended %s%s", build_id, status.value, f" ({code}: {message})" if code else "")
    if build is None:
        log.warning("build %s attempt %s was taken over; not recording its end", build_id, attempt)
        return None
    _announce_end(ctx, build)
    return build


# -- builds no worker runs ---------------------------------------------------------------


def _end_if(ctx: Context, build_id: str, moved: bool) -> bool:
    if moved:
        _announce_end(ctx, ctx.store.get(build_id))
    return moved


def cancel_queued(ctx: Context, build_id: str) -> bool:
    """End a build no worker has claimed yet as ``cancelled``; True if it was still queued."""
    return _end_if(ctx, build_id, ctx.store.cancel_if_queued(build_id))


def supersede(ctx: Context, older_id: str, newer_id: str) -> bool:
    """End a queued build as ``cancelled`` (``superseded``) by a newer build of its project."""
    message = f"superseded by build {newer_id}"
    moved = ctx.store.finish_queued(older_id, Status.CANCELLED, ErrorCode.SUPERSEDED, message)
    return _end_if(ctx, older_id, moved)


def fail_unqueued(ctx: Context, build_id: str, reason: str) -> None:
    """End a recorded build the queue (Redis) could not take; no event: Redis is what failed."""
    ctx.store.finish(build_id, Status.FAILED, ErrorCode.QUEUE_UNAVAILABLE, reason, None)


def requeue_lost(ctx: Context, build: Build, reason: str) -> bool:
    """Put a lost running build back in line for another run; False if another process did."""
    if not ctx.store.requeue_lost(build.id, build.attempts):
        return False
    runs = f"attempt {build.attempts + 1} of {ctx.settings.max_attempts}"
    ctx.bus.note(build.id, Phase.QUEUED.value, f"{reason}; running it again ({runs})")
    ctx.bus.status(build.id, Status.QUEUED.value, Phase.QUEUED.value)
    return True


def lose(ctx: Context, build: Build, reason: str) -> bool:
    """End a lost running build with no runs left as ``failed`` (``worker_lost``)."""
    message = f"{reason}; gave up after {build.attempts} attempt(s)"
    if not ctx.store.fail_lost(build.id, build.attempts, WORKER_LOST, message):
        return False
    ctx.bus.note(build.id, Phase.DONE.value, f"failed: {message}")
    _announce_end(ctx, ctx.store.get(build.id))
    return True


def answer_reused(ctx: Context, build: Build, earlier: Build) -> Build:
    """Record ``build`` (not yet stored) as already ``succeeded`` with ``earlier``'s artifact."""
    now = utcnow()
    build.status, build.phase = Status.SUCCEEDED, Phase.DONE
    build.started_at = build.finished_at = now
    build.reused_from = earlier.id
    build.cache = {"reuse": "hit", "reused_from": earlier.id}
    ctx.store.add(build)
    note = f"identical input: reusing the artifact of build {earlier.id} (submit fresh to rebuild)"
    ctx.bus.note(build.id, Phase.DONE.value, note)
    _announce_end(ctx, build)
    return build
