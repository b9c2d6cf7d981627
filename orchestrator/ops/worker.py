"""Starting a build worker: folders ready, engine reachable, then RQ's worker loop."""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import subprocess
import sys
import time
from typing import Any

import redis
from rq import Worker
from rq.job import Job

from orchestrator.builds.jobs import build_queue, worker_name
from orchestrator.context import Context, manager_cache_dirs
from orchestrator.logs import configure_logging
from orchestrator.ops.maintenance import wake_key
from orchestrator.records.db import require_current
from orchestrator.sandbox.egress.service import start_egress
from orchestrator.sandbox.runner import check_runtime, hand_over, sandbox_uid
from orchestrator.settings import Settings, get_settings

log = logging.getLogger("kiln.worker")


def prepare_directories(settings: Settings) -> None:
    """Create Kiln's folders; the shared npm cache belongs to the sandbox user."""
    for folder in (
        settings.artifacts_dir,
        settings.sources_dir,
        settings.work_dir,
        settings.npm_cache_dir,
        settings.layers_dir,
    ):
        folder.mkdir(parents=True, exist_ok=True)
    hand_over(settings.npm_cache_dir, sandbox_uid(settings.sandbox_uid))
    for folder in manager_cache_dirs(settings).values():  # pnpm's store, yarn's and bun's caches
        hand_over(folder, sandbox_uid(settings.sandbox_uid))


def run_worker(*, burst: bool = False) -> None:
    """Run one worker process until stopped (or, with ``burst``, until the queue is empty).

    Each build runs in a forked work-horse that makes its own clients, so nothing made
    here (sockets, pools) is shared across the fork.
    """
    settings = get_settings()
    configure_logging(settings.log_format)
    require_current(settings.db_url)  # DatabaseBehind: `kiln db upgrade` first
    prepare_directories(settings)
    ctx = Context(settings)
    ctx.docker.ping()
    log.info("isolation: %s", check_runtime(ctx.docker, settings.build_runtime))
    proxy = start_egress(settings, ctx.docker)
    atexit.register(proxy.terminate)
    # Import the job's code once here: every forked work-horse then starts with it loaded
    # (modules only; clients and connections are still made after the fork).
    import orchestrator.builds.pipeline  # noqa: F401

    if ctx.container_pool is not None:  # idle containers, so steps start at once
        keeper = start_maintenance("orchestrator.ops.pool_keeper")
        atexit.register(keeper.terminate)
    if settings.warm_templates and settings.cache_layers:
        from orchestrator.builds.warm import start_in_background

        start_in_background()
    # The maintenance process sweeps and reconciles at once, then periodically. The main
    # process itself never opens the database, so forked work-horses inherit no connections.
    maintenance = start_maintenance()
    atexit.register(maintenance.terminate)
    if settings.dev_worker:  # dev sessions run beside builds (orchestrator/dev/manager.py)
        dev_sessions = start_maintenance("orchestrator.dev.manager")
        atexit.register(dev_sessions.terminate)

    def horse_died(job: Job, _pid: int, _status: int, _rusage: Any) -> None:
        # Runs in the worker's main process: hand the build to the maintenance process.
        ctx.redis.rpush(wake_key(settings), job.id)

    for run in itertools.count():
        name = worker_name(settings.instance) + (f"-r{run}" if run else "")
        worker = Worker(
            [build_queue(ctx.redis, settings.queue_name)],
            connection=ctx.redis,
            name=name,
            work_horse_killed_handler=horse_died,
        )
        try:
            worker.work(burst=burst, with_scheduler=False)
        except redis.RedisError as exc:
            log.warning("worker %s: Redis failed: %s", name, exc)
        asked_to_stop = getattr(worker, "_shutdown_requested_date", None) is not None
        if burst or asked_to_stop or getattr(worker, "_stop_requested", False):
            return
        # RQ's loop quits on a Redis error it does not retry; wait for Redis, then go on.
        log.warning("worker %s stopped without being asked to; restarting once Redis answers", name)
        wait_for_redis(ctx.redis)


def wait_for_redis(client: redis.Redis, longest_s: float = 30.0) -> None:
    """Block until Redis answers a ping, backing off up to ``longest_s`` between tries."""
    delay = 0.5
    while True:
        try:
            client.ping()
            return
        except redis.RedisError:
            time.sleep(delay)
            delay = min(longest_s, delay * 2)


def start_maintenance(module: str = "orchestrator.ops.maintenance") -> subprocess.Popen[bytes]:
    """Start the janitor/reconciler loop (or another ``module`` beside the worker, such as
    the dev-session manager) as a child process that exits with this one."""
    return subprocess.Popen([sys.executable, "-m", module, "--parent", str(os.getpid())])
