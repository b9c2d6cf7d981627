"""Dev sessions, dev workers and their commands in Redis: how the API finds a session.

kiln:{instance}:dev:session:{project}     hash: the session's record (record.DevSession)
kiln:{instance}:dev:rev:{project}:{n}     hash: when revision n's PATCH arrived, its paths
kiln:{instance}:dev:edit-lock:{project}   lock: one batch of edits (or a workspace's copy) at once
kiln:{instance}:dev:worker:{name}         free session slots of a live dev worker (TTL)
kiln:{instance}:dev:starts                list: projects waiting for a worker
kiln:{instance}:dev:commands:{name}       list: stop / reinstall commands for a worker
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import redis

from orchestrator.dev.record import DevSession, DevStatus

ENDED_TTL_S = 24 * 3600  # how long a stopped or failed session's record stays readable
REVISION_TTL_S = 3600


class DevRegistry:
    """Reads and writes one Kiln instance's dev-session state in Redis."""

    def __init__(self, client: redis.Redis, instance: str) -> None:
        self.redis = client
        self.prefix = f"kiln:{instance}:dev"

    # -- sessions ------------------------------------------------------------------------

    def session_key(self, project: str) -> str:
        """The hash holding ``project``'s session."""
        return f"{self.prefix}:session:{project}"

    def get(self, project: str) -> DevSession | None:
        """The project's session record, ended or not; None when there is none."""
        return DevSession.from_redis(self.redis.hgetall(self.session_key(project)))

    def create(self, session: DevSession) -> tuple[DevSession, bool]:
        """Record a new session unless a live one exists: (the session, newly made?)."""
        key = self.session_key(session.project)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    existing = DevSession.from_redis(pipe.hgetall(key))  # type: ignore[arg-type]
                    if existing is not None and not DevStatus(existing.status).ended:
                        pipe.reset()
                        return existing, False
                    pipe.multi()
                    pipe.delete(key)
                    pipe.hset(key, mapping=dict(session.to_redis()))  # type: ignore[arg-type]
                    pipe.execute()
                    return session, True
                except redis.WatchError:
                    continue

    def update(self, project: str, **values: Any) -> None:
        """Set some fields of a session's record (only if it exists)."""
        key = self.session_key(project)
        if not self.redis.exists(key):
            return
        self.redis.hset(key, mapping={k: json.dumps(v) for k, v in values.items()})
        status = values.get("status")
        if status is not None and DevStatus(status).ended:
            self.redis.expire(key, ENDED_TTL_S)

    def touch(self, project: str) -> None:
        """A request or an open HMR socket: the session is in use now."""
        self.redis.hset(self.session_key(project), "last_activity_at", json.dumps(time.time()))

    def edit_lock(self, project: str) -> Any:
        """Held while a batch of edits is applied, and while a restart copies the session's
        files into a new workspace: the copy and its revision are then one pair."""
        return self.redis.lock(
            f"{self.prefix}:edit-lock:{project}", timeout=60, blocking_timeout=30
        )

    def next_revision(self, project: str) -> int:
        """Bump the session's revision and return the new one."""
        return int(self.redis.hincrby(self.session_key(project), "revision", 1))

    def sessions(self) -> Iterator[DevSession]:
        """Every session record of this instance."""
        for key in self.redis.scan_iter(match=f"{self.prefix}:session:*", count=200):
            session = DevSession.from_redis(self.redis.hgetall(key))
            if session is not None:
                yield session

    # -- revisions -----------------------------------------------------------------------

    def record_revision(
        self, project: str, revision: int, arrived_ms: int, paths: list[str]
    ) -> None:
        """Remember when revision ``revision``'s PATCH arrived (for its hmr latency)."""
        key = f"{self.prefix}:rev:{project}:{revision}"
        self.redis.hset(key, mapping={"arrived_ms": arrived_ms, "paths": json.dumps(paths)})
        self.redis.expire(key, REVISION_TTL_S)

    def claim_report(self, project: str, revision: int) -> tuple[int, list[str]] | None:
        """The first report of a revision: (arrival ms, paths); None for a later or unknown one."""
        key = f"{self.prefix}:rev:{project}:{revision}"
        if not self.redis.hsetnx(key, "reported", 1):
            return None
        arrived, paths = self.redis.hmget(key, ["arrived_ms", "paths"])
        if arrived is None:
            self.redis.delete(key)
            return None
        return int(arrived), json.loads(paths or b"[]")

    # -- workers and their queues --------------------------------------------------------

    def beat(self, worker: str, free_slots: int, ttl_s: int) -> None:
        """A dev worker is alive with ``free_slots`` room for sessions."""
        self.redis.set(f"{self.prefix}:worker:{worker}", free_slots, ex=ttl_s)

    def worker_alive(self, worker: str) -> bool:
        """True while ``worker`` beats."""
        return bool(worker) and bool(self.redis.exists(f"{self.prefix}:worker:{worker}"))

    def forget_worker(self, worker: str) -> None:
        """A dev worker stops: it takes no more sessions."""
        self.redis.delete(f"{self.prefix}:worker:{worker}")

    def free_slots(self) -> int:
        """Room for new sessions over every live dev worker, minus the starts waiting."""
        total = 0
        for key in self.redis.scan_iter(match=f"{self.prefix}:worker:*", count=200):
            value = self.redis.get(key)
            total += int(value or 0)
        return total - int(self.redis.llen(f"{self.prefix}:starts"))

    def push_start(self, project: str) -> None:
        """Ask any dev worker with room to run ``project``'s session."""
        self.redis.rpush(f"{self.prefix}:starts", project)

    def pop_start(self) -> str | None:
        """Take the next waiting session (non-blocking)."""
        raw = self.redis.lpop(f"{self.prefix}:starts")
        return raw.decode() if isinstance(raw, bytes) else raw

    def drop_start(self, project: str) -> bool:
        """Take a waiting session back off the start list; True when it was there."""
        return bool(self.redis.lrem(f"{self.prefix}:starts", 0, project))

    def push_command(self, worker: str, op: str, project: str) -> None:
        """Tell ``worker`` to ``op`` (stop, reinstall) ``project``'s session."""
        command = json.dumps({"op": op, "project": project})
        self.redis.rpush(f"{self.prefix}:commands:{worker}", command)

    def pop_command(self, worker: str, timeout_s: float) -> dict[str, str] | None:
        """The next command for ``worker``, waiting up to ``timeout_s``."""
        popped = self.redis.blpop([f"{self.prefix}:commands:{worker}"], timeout=timeout_s)
        return json.loads(popped[1]) if popped else None

    def is_live(self, project: str) -> bool:
        """True when the project's session is not ended and its worker (if any) beats.

        The janitor keeps a session's container and workspace only while this holds.
        """
        session = self.get(project)
        if session is None or DevStatus(session.status).ended:
            return False
        return not session.worker or self.worker_alive(session.worker)
