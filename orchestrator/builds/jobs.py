"""The build queue (RQ on Redis): the API enqueues, separate worker processes run."""

from __future__ import annotations

import os
import socket

import redis
from rq import Queue
from rq.job import Job

from orchestrator.sandbox.step import Limits

JOB_FUNCTION = "orchestrator.builds.pipeline.run_build"
GENERATION_JOB_FUNCTION = "orchestrator.builds.generation.run_generation"
# install (plus its two possible retries), dependency scripts, build: each has the timeout
STEPS_PER_BUILD = 5
JOB_SLACK_S = 120


def build_queue(connection: redis.Redis, name: str) -> Queue:
    """The queue builds are put on."""
    return Queue(name, connection=connection)


def job_timeout(limits: Limits) -> int:
    """RQ's hard limit for a whole build job, above the sum of its steps' own timeouts."""
    return limits.timeout_s * STEPS_PER_BUILD + JOB_SLACK_S


def enqueue_build(queue: Queue, build_id: str, limits: Limits) -> Job:
    """Put a recorded build on the queue; the job id is the build id."""
    return queue.enqueue(
        JOB_FUNCTION,
        build_id,
        job_id=build_id,
        job_timeout=job_timeout(limits),
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
        description=f"build {build_id}",
    )


def generation_job_timeout(limits: Limits, budget_s: float, max_fix_rounds: int) -> int:
    """RQ's hard limit for a generation: the model's budget plus every build round."""
    return int(budget_s) + (max_fix_rounds + 1) * job_timeout(limits)


def enqueue_generation(queue: Queue, build_id: str, timeout_s: int) -> Job:
    """Put a recorded generated build on the queue; the job id is the build id."""
    return queue.enqueue(
        GENERATION_JOB_FUNCTION,
        build_id,
        job_id=build_id,
        job_timeout=timeout_s,
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
        description=f"generate {build_id}",
    )


def remove_queued(queue: Queue, build_id: str) -> bool:
    """Take a build off the queue before a worker takes it; True if it was there."""
    return bool(queue.remove(build_id))


def worker_name(instance: str, pid: int | None = None) -> str:
    """A worker's name (its main process id), also recorded on the builds it runs."""
    return f"{instance}-{socket.gethostname()}-{pid or os.getpid()}"
