"""The maintenance loop beside each worker: janitor and reconciler, on start and periodically.

It runs as its own process (``python -m orchestrator.ops.maintenance``), started by
``kiln worker``, so nothing it does shares sockets or locks with the RQ worker that forks
work-horses. A work-horse that dies makes the worker push the build's id to a wake-up list,
so a lost build is handled at once rather than after its lease runs out.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable

import redis

from orchestrator.builds import orphans, recovery
from orchestrator.context import Context
from orchestrator.errors import NotFound, StorageUnavailable
from orchestrator.logs import build_context, configure_logging
from orchestrator.ops import janitor
from orchestrator.records.models import Status
from orchestrator.settings import Settings, get_settings

log = logging.getLogger("kiln.maintenance")


def wake_key(settings: Settings) -> str:
    """The Redis list a worker pushes the ids of builds whose work-horse died to."""
    return f"kiln:{settings.instance}:{settings.queue_name}:horse-died"


def run_once(ctx: Context) -> None:
    """One janitor sweep, one reconcile pass and one orphan-upload sweep; errors are logged,
    never raised."""
    tasks = (
        ("reconcile", recovery.reconcile),
        ("janitor", janitor.sweep),
        ("orphan uploads", orphans.clean_orphan_uploads),
    )
    for name, task in tasks:
        try:
            task(ctx)
        except (*janitor.ENGINE_ERRORS, redis.RedisError, StorageUnavailable) as exc:
            log.warning("%s pass skipped: %s: %s", name, type(exc).__name__, exc)
        except Exception:
            log.exception("%s pass failed", name)


def handle_dead_horse(ctx: Context, build_id: str) -> None:
    """A work-horse died running ``build_id``: recover the build if it still shows running."""
    try:
        build = ctx.store.get(build_id)
    except NotFound:
        return
    if build.status == Status.RUNNING:
        with build_context(build_id):
            recovery.recover_lost(ctx, build, "the work-horse running this build died")


def loop(parent_pid: int | None = None) -> None:
    """Run maintenance until the parent worker process is gone."""
    ctx = Context(get_settings())
    interval = max(1, ctx.settings.maintenance_interval_s)
    key = wake_key(ctx.settings)
    while parent_pid is None or os.getppid() == parent_pid:
        run_once(ctx)
        deadline = time.monotonic() + interval
        while time.monotonic() < deadline:
            try:
                popped = ctx.redis.blpop([key], timeout=max(1, int(deadline - time.monotonic())))
            except redis.RedisError as exc:
                log.warning("Redis: %s", exc)
                time.sleep(1)
                continue
            if popped:
                try:
                    handle_dead_horse(ctx, popped[1].decode())
                except Exception:
                    log.exception("could not recover build %s", popped[1])
            if parent_pid is not None and os.getppid() != parent_pid:
                return


def run_beside_worker(description: str | None, loop: Callable[[int | None], None]) -> None:
    """Entry point of a process a worker starts beside itself (``--parent PID``: it runs
    ``loop`` until that process is gone)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--parent", type=int, default=None, help="exit when this pid is gone")
    args = parser.parse_args()
    configure_logging(get_settings().log_format)
    loop(args.parent)


def main() -> None:
    """Entry point of ``python -m orchestrator.ops.maintenance``."""
    run_beside_worker(__doc__, loop)


if __name__ == "__main__":
    main()
