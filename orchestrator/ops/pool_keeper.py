"""The keeper of a host's idle containers (``sandbox/pool``): fills the slots and renews used ones.

A worker starts one beside itself (``ops/worker``). A work-horse that used a slot pushes
the slot's name on ``released_key``; the keeper starts a fresh container there at once,
and every ``CHECK_S`` seconds checks every slot (its container still running, made from
the current image and settings).
"""

from __future__ import annotations

import logging
import os
import signal
import time

import redis

from orchestrator.context import Context
from orchestrator.ops.maintenance import run_beside_worker
from orchestrator.sandbox.pool import ContainerPool, released_key
from orchestrator.settings import get_settings

log = logging.getLogger("kiln.sandbox.pool")
CHECK_S = 10.0
WAIT_S = 1  # the longest a keeper waits for a used slot before looking at its parent again


def loop(parent_pid: int | None) -> None:
    """Keep the pool filled until the parent worker process is gone."""
    ctx = Context(get_settings())
    pool = ctx.container_pool
    if pool is None:
        return
    signal.signal(signal.SIGTERM, _stop)
    try:
        log.info("container pool: %s idle containers started", pool.fill())
        if pool.verify():
            _keep(ctx, pool, parent_pid)
    except _Stopped:
        pass
    finally:
        log.info("container pool: %s slots emptied", pool.drain())


class _Stopped(Exception):
    """SIGTERM: the worker is stopping."""


def _stop(_signum: int, _frame: object) -> None:
    raise _Stopped()


def _keep(ctx: Context, pool: ContainerPool, parent_pid: int | None) -> None:
    key, checked = released_key(ctx.settings.instance), time.monotonic()
    while parent_pid is None or os.getppid() == parent_pid:
        try:
            ctx.redis.blpop([key], timeout=WAIT_S)
        except redis.RedisError:
            time.sleep(WAIT_S)
        thorough = time.monotonic() - checked > CHECK_S
        try:
            pool.fill(check_running=thorough)
        except Exception:
            log.exception("container pool: could not fill")
            time.sleep(WAIT_S)
        if thorough:
            checked = time.monotonic()


def main() -> None:
    """Entry point of ``python -m orchestrator.ops.pool_keeper``."""
    run_beside_worker(__doc__, loop)


if __name__ == "__main__":
    main()
