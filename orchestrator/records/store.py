"""Build records in the database: the source of truth for every build's state.

State changes that race (a worker claiming a build while a user cancels it) are
conditional updates, so exactly one side wins.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from orchestrator.errors import NotFound
from orchestrator.records.models import Build, ErrorCode, Generation, Phase, Status, utcnow


class BuildStore:
    """Reads and writes build records."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def add(self, build: Build) -> Build:
        """Insert a new build record."""
        with self._session() as session:
            session.add(build)
            session.commit()
            session.refresh(build)
        return build

    def get(self, build_id: str) -> Build:
        """The build with this id, or NotFound."""
        with self._session() as session:
            build = session.get(Build, build_id)
        if build is None:
            raise NotFound(f"no build {build_id!r}")
        return build

    def list(
        self, *, project: str | None = None, status: Status | None = None, limit: int = 50
    ) -> list[Build]:
        """Builds, newest first, optionally filtered."""
        query = select(Build).order_by(col(Build.created_at).desc()).limit(limit)
        if project:
            query = query.where(Build.project == project)
        if status:
            query = query.where(Build.status == status)
        with self._session() as session:
            return list(session.exec(query).all())

    def _update_where(self, build_id: str, condition: Any, **values: Any) -> bool:
        statement = update(Build).where(col(Build.id) == build_id)
        if condition is not None:
            statement = statement.where(condition)
        with self._session() as session:
            result = session.execute(statement.values(**values))
            session.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def add_idempotent(self, build: Build) -> tuple[Build, bool]:
        """Insert ``build`` unless one with its idempotency key exists: (the build, inserted?)."""
        try:
            return self.add(build), True
        except IntegrityError:
            existing = self.by_idempotency_key(build.idempotency_key or "")
            if existing is None:
                raise
            return existing, False

    def by_idempotency_key(self, key: str) -> Build | None:
        """The build submitted with this Idempotency-Key, if any."""
        with self._session() as session:
            return session.exec(select(Build).where(Build.idempotency_key == key)).first()

    def release_idempotency_key(self, build_id: str) -> None:
        """Forget a build's Idempotency-Key (it has expired), so the key can be used again."""
        self._update_where(build_id, None, idempotency_key=None)

    def count(self, *, status: Status, project: str | None = None) -> int:
        """How many builds have ``status`` (in ``project``, if given)."""
        query = select(func.count()).select_from(Build).where(Build.status == status)
        if project is not None:
            query = query.where(Build.project == project)
        with self._session() as session:
            return int(session.exec(query).one())

    def claim(self, build_id: str, *, worker: str = "", project_cap: int = 0) -> Build | None:
        """Move a queued build to running for a worker; None if it is no longer queued
        or its project already runs ``project_cap`` builds (0: no cap)."""
        condition = (col(Build.status) == Status.QUEUED) & (col(Build.cancel_requested).is_(False))
        project = ""
        if project_cap > 0:
            project = self.get(build_id).project
            running = (
                select(func.count())
                .select_from(Build)
                .where(Build.project == project, Build.status == Status.RUNNING)
                .scalar_subquery()
            )
            condition = condition & (running < project_cap)
        now = utcnow()
        statement = (
            update(Build)
            .where(col(Build.id) == build_id)
            .where(condition)
            .values(
                status=Status.RUNNING,
                phase=Phase.PREPARING,
                started_at=now,
                heartbeat_at=now,
                worker=worker or None,
                attempts=col(Build.attempts) + 1,
            )
        )
        with self._session() as session:
            if project_cap > 0 and self.engine.dialect.name == "postgresql":
                # READ COMMITTED would let two claims count the same running builds: take
                # turns per project (SQLite serialises writers on its own).
                session.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:project))"),
                    {"project": project},
                )
            won = bool(session.execute(statement).rowcount)  # type: ignore[attr-defined]
            session.commit()
        return self.get(build_id) if won else None

    def heartbeat(self, build_id: str, attempt: int) -> bool:
        """Mark a running build alive; False once it no longer runs as ``attempt``."""
        return self._update_where(
            build_id,
            (col(Build.status) == Status.RUNNING) & (col(Build.attempts) == attempt),
            heartbeat_at=utcnow(),
        )

    def running_since(self, cutoff: datetime) -> builtins.list[Build]:
        """Running builds whose last heartbeat is older than ``cutoff`` (their worker is lost)."""
        beat = func.coalesce(col(Build.heartbeat_at), col(Build.started_at))
        query = select(Build).where(Build.status == Status.RUNNING, beat < cutoff)
        with self._session() as session:
            return list(session.exec(query).all())

    def queued_before(self, cutoff: datetime) -> builtins.list[Build]:
        """Builds still queued that were created before ``cutoff``, oldest first."""
        query = (
            select(Build)
            .where(Build.status == Status.QUEUED, col(Build.created_at) < cutoff)
            .order_by(col(Build.created_at))
        )
        with self._session() as session:
            return list(session.exec(query).all())

    def queued_ids(self) -> builtins.list[str]:
        """The ids of every queued build, oldest first (their places in line)."""
        query = (
            select(Build.id)
            .where(Build.status == Status.QUEUED.value)
            .order_by(col(Build.created_at), col(Build.id))
        )
        with self._session() as session:
            return list(session.exec(query).all())

    def queued_of_project(self, project: str) -> builtins.list[Build]:
        """Queued builds of one project, oldest first."""
        query = (
            select(Build)
            .where(Build.status == Status.QUEUED, Build.project == project)
            .order_by(col(Build.created_at))
        )
        with self._session() as session:
            return list(session.exec(query).all())

    def requeue_lost(self, build_id: str, attempt: int) -> bool:
        """Put a lost running build back to queued; False if someone else handled it."""
        return self._update_where(
            build_id,
            (col(Build.status) == Status.RUNNING) & (col(Build.attempts) == attempt),
            status=Status.QUEUED,
            phase=Phase.QUEUED,
            started_at=None,
            heartbeat_at=None,
        )

    def fail_lost(self, build_id: str, attempt: int, code: ErrorCode, message: str) -> bool:
        """End a lost running build as failed; False if someone else handled it."""
        return self._update_where(
            build_id,
            (col(Build.status) == Status.RUNNING) & (col(Build.attempts) == attempt),
            status=Status.FAILED,
            phase=Phase.DONE,
            finished_at=utcnow(),
            error_code=code,
            error_message=message,
        )

    def finish_queued(self, build_id: str, status: Status, code: ErrorCode, message: str) -> bool:
        """End a build that is still queued (cancel, supersede, retry exhausted)."""
        return self._update_where(
            build_id,
            col(Build.status) == Status.QUEUED,
            status=status,
            phase=Phase.DONE,
            finished_at=utcnow(),
            error_code=code,
            error_message=message,
        )

    def requeue_finished(self, build_id: str) -> bool:
        """Make a finished build queued again (``kiln retry``); False if it has not ended."""
        ended = [s for s in Status if s.finished]
        return self._update_where(
            build_id,
            col(Build.status).in_(ended),
            status=Status.QUEUED,
            phase=Phase.QUEUED,
            started_at=None,
            finished_at=None,
            heartbeat_at=None,
            error_code=None,
            error_message=None,
            error_log_tail=None,
            error_diagnostics=None,
            cancel_requested=False,
        )

    def finished_before(self, cutoff: datetime) -> builtins.list[Build]:
        """Finished builds created before ``cutoff``, newest first (gc candidates)."""
        ended = [s for s in Status if s.finished]
        query = (
            select(Build)
            .where(col(Build.status).in_(ended), col(Build.created_at) < cutoff)
            .order_by(col(Build.created_at).desc())
        )
        with self._session() as session:
            return list(session.exec(query).all())

    def newest_finished_ids(self, project: str, keep: int) -> set[str]:
        """Ids of the ``keep`` newest finished builds of ``project``."""
        ended = [s for s in Status if s.finished]
        query = (
            select(Build.id)
            .where(Build.project == project, col(Build.status).in_(ended))
            .order_by(col(Build.created_at).desc())
            .limit(keep)
        )
        with self._session() as session:
            return set(session.exec(query).all())

    def newest_succeeded(self, project: str, limit: int = 5) -> Sequence[Build]:
        """The project's succeeded builds, newest submitted first (what ``latest--`` serves)."""
        query = (
            select(Build)
            .where(Build.project == project, Build.status == Status.SUCCEEDED.value)
            .order_by(col(Build.created_at).desc())
            .limit(limit)
        )
        with self._session() as session:
            return list(session.exec(query).all())

    def set_phase(self, build_id: str, phase: Phase) -> None:
        """Record the phase a running build has entered."""
        self._update_where(build_id, col(Build.status) == Status.RUNNING, phase=phase)

    def set_cache(self, build_id: str, cache: dict[str, Any]) -> None:
        """Record how the build's caches answered (layer hit/miss, keys)."""
        self._update_where(build_id, None, cache=cache)

    def set_environment(self, build_id: str, environment: dict[str, Any]) -> None:
        """Record the Node and package manager the build runs with (and what was asked)."""
        self._update_where(build_id, None, environment=environment)

    def find_succeeded(self, input_digest: str, limit: int = 5) -> Sequence[Build]:
        """The newest successful builds of this exact input."""
        query = (
            select(Build)
            .where(Build.input_digest == input_digest)
            .where(Build.status == Status.SUCCEEDED)
            .order_by(col(Build.finished_at).desc())
            .limit(limit)
        )
        with self._session() as session:
            return list(session.exec(query).all())

    def request_cancel(self, build_id: str) -> None:
        """Flag a build for cancellation (the worker sees the flag)."""
        self._update_where(build_id, None, cancel_requested=True)

    def cancel_if_queued(self, build_id: str) -> bool:
        """End a build that no worker has claimed yet; True if it was still queued."""
        return self._update_where(
            build_id,
            col(Build.status) == Status.QUEUED,
            status=Status.CANCELLED,
            phase=Phase.DONE,
            finished_at=utcnow(),
            error_code=ErrorCode.CANCELLED,
            error_message="the build was cancelled before it started",
        )

    def finish(
        self,
        build_id: str,
        status: Status,
        code: ErrorCode | None,
        message: str | None,
        log_tail: str | None,
        *,
        attempt: int | None = None,
        diagnostics: dict[str, Any] | None = None,
    ) -> Build | None:
        """Record how a build ended; returns the final record. With ``attempt``, only while
        it still runs as that attempt (None otherwise: a reconciler took it over)."""
        condition = None
        if attempt is not None:
            condition = (col(Build.status) == Status.RUNNING) & (col(Build.attempts) == attempt)
        won = self._update_where(
            build_id,
            condition,
            status=status,
            phase=Phase.DONE,
            finished_at=utcnow(),
            error_code=code,
            error_message=message,
            error_log_tail=log_tail,
            error_diagnostics=diagnostics,
        )
        return self.get(build_id) if won else None

    # -- code generation records -----------------------------------------------------------

    def add_generation(self, generation: Generation) -> Generation:
        """Insert the generation record of a build."""
        with self._session() as session:
            session.add(generation)
            session.commit()
            session.refresh(generation)
        return generation

    def generation(self, build_id: str) -> Generation | None:
        """The generation record of a build, or None for a build that was submitted."""
        with self._session() as session:
            return session.get(Generation, build_id)

    def generations(self, build_ids: Sequence[str]) -> dict[str, Generation]:
        """The generation records of several builds, by build id."""
        if not build_ids:
            return {}
        query = select(Generation).where(col(Generation.build_id).in_(build_ids))
        with self._session() as session:
            return {g.build_id: g for g in session.exec(query).all()}

    def update_generation(self, build_id: str, **values: Any) -> None:
        """Change fields of a generation record (rounds, usage, files)."""
        statement = update(Generation).where(col(Generation.build_id) == build_id)
        with self._session() as session:
            session.execute(statement.values(**values))
            session.commit()
