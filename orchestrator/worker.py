"""Starting a build worker: folders ready, engine reachable, then RQ's worker loop."""

from __future__ import annotations

import logging
import os
import socket

from rq import Worker

from orchestrator.context import Context
from orchestrator.egress.service import start_egress
from orchestrator.queue import build_queue
from orchestrator.sandbox import check_runtime, hand_over, sandbox_uid
from orchestrator.settings import Settings, get_settings

log = logging.getLogger("kiln.worker")


def prepare_directories(settings: Settings) -> None:
    """Create Kiln's folders; the shared npm cache belongs to the sandbox user."""
    for folder in (
        settings.artifacts_dir,
        settings.sources_dir,
        settings.work_dir,
        settings.npm_cache_dir,
    ):
        folder.mkdir(parents=True, exist_ok=True)
    hand_over(settings.npm_cache_dir, sandbox_uid(settings.sandbox_uid))


def run_worker(*, burst: bool = False) -> None:
    """Run one worker process until stopped (or, with ``burst``, until the queue is empty).

    Each build runs in a forked work-horse that makes its own clients, so nothing made
    here (sockets, pools) is shared across the fork.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = get_settings()
    prepare_directories(settings)
    ctx = Context(settings)
    ctx.docker.ping()
    log.info("isolation: %s", check_runtime(ctx.docker, settings.build_runtime))
    proxy = start_egress(settings, ctx.docker)
    worker = Worker(
        [build_queue(ctx.redis, settings.queue_name)],
        connection=ctx.redis,
        name=f"kiln-{socket.gethostname()}-{os.getpid()}",
    )
    try:
        worker.work(burst=burst, with_scheduler=False)
    finally:
        proxy.terminate()
