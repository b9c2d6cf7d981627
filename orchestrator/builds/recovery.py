"""Putting builds right after a crash: the database is the source of truth.

A running build whose worker stopped beating (killed, its host gone, a work-horse that died)
is *lost*: its containers go, and it runs again on another worker or, after
``max_attempts`` runs, ends ``failed`` with ``worker_lost``. A queued build that Redis no
longer holds (Redis restarted or emptied) is enqueued again. Every change is a conditional
update, so any number of reconcilers can run at once and exactly one acts.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import asdict, dataclass, field
from datetime import timedelta

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from orchestrator.builds import jobs as queue
from orchestrator.builds import lifecycle
from orchestrator.builds.lifecycle import WORKER_LOST
from orchestrator.context import Context
from orchestrator.logs import build_context
from orchestrator.records.models import Build, utcnow
from orchestrator.sandbox import workspace
from orchestrator.sandbox.step import Limits

log = logging.getLogger("kiln.recovery")
PENDING_JOB_STATES = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}


@dataclass
class ReconcileReport:
    """What one reconcile pass did, by build id."""

    retried: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.retried or self.failed or self.requeued)


def should_retry(attempts: int, max_attempts: int) -> bool:
    """True when a lost build has runs left (it has run ``attempts`` times)."""
    return attempts < max_attempts


def job_pending(ctx: Context, build_id: str) -> bool:
    """True when Redis still holds the build's job as waiting or being taken."""
    try:
        job = Job.fetch(build_id, connection=ctx.redis)
    except NoSuchJobError:
        return False
    return job.get_status(refresh=False) in PENDING_JOB_STATES


def enqueue_again(ctx: Context, build: Build) -> None:
    """Put a queued build's job on the queue afresh (any stale job of it is dropped first)."""
    with contextlib.suppress(NoSuchJobError):
        Job.fetch(build.id, connection=ctx.redis).delete(remove_from_queue=True)
    s = ctx.settings
    limits = Limits(**build.limits) if build.limits else Limits(s.timeout_s, 0, 0)
    jobs = queue.build_queue(ctx.redis, s.queue_name)
    if ctx.store.generation(build.id) is not None:  # a generated build runs its whole loop again
        timeout = queue.generation_job_timeout(
            limits, s.generate_budget_s, s.generate_max_fix_rounds
        )
        queue.enqueue_generation(jobs, build.id, timeout)
    else:
        queue.enqueue_build(jobs, build.id, limits)


def recover_lost(ctx: Context, build: Build, reason: str) -> str | None:
    """Handle one lost running build: "retried", "failed", or None if another process did."""
    with contextlib.suppress(Exception):  # the janitor on the build's own host sweeps later
        ctx.sandbox.remove_build_containers(build.id)
    if should_retry(build.attempts, ctx.settings.max_attempts):
        if not lifecycle.requeue_lost(ctx, build, reason):
            return None
        enqueue_again(ctx, ctx.store.get(build.id))
        log.warning("build %s: %s; re-enqueued", build.id, reason)
        return "retried"
    if not lifecycle.lose(ctx, build, reason):
        return None
    with contextlib.suppress(Exception):  # on another host; its janitor removes it
        workspace.remove(ctx.settings.work_dir / build.id)
    log.warning("build %s: %s; failed with %s", build.id, reason, WORKER_LOST)
    return "failed"


def reconcile(ctx: Context) -> ReconcileReport:
    """One pass: lost running builds recovered, queued builds missing from Redis re-enqueued."""
    report = ReconcileReport()
    now = utcnow()
    stale = now - timedelta(seconds=ctx.settings.build_lease_s)
    for build in ctx.store.running_since(stale):
        with build_context(build.id):
            outcome = recover_lost(ctx, build, "the worker running this build was lost")
        if outcome == "retried":
            report.retried.append(build.id)
        elif outcome == "failed":
            report.failed.append(build.id)
    grace = now - timedelta(seconds=ctx.settings.requeue_grace_s)
    for build in ctx.store.queued_before(grace):
        if build.cancel_requested or job_pending(ctx, build.id):
            continue
        enqueue_again(ctx, build)
        report.requeued.append(build.id)
        log.warning("build %s was queued in the database but not in Redis; re-enqueued", build.id)
    if report:
        log.info("reconcile: %s", asdict(report))
    return report
