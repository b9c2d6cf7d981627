"""Build records in the database: the source of truth for every build's state.

State changes that race (a worker claiming a build while a user cancels it) are
conditional updates, so exactly one side wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from orchestrator.errors import NotFound
from orchestrator.models import Build, Generation, utcnow
from orchestrator.plan import Phase, Status


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
        self, *, project: str | None = None, status: str | None = None, limit: int = 50
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

    def claim(self, build_id: str) -> Build | None:
        """Move a queued build to running for a worker; None if it is no longer queued."""
        won = self._update_where(
            build_id,
            (col(Build.status) == Status.QUEUED.value) & (col(Build.cancel_requested).is_(False)),
            status=Status.RUNNING.value,
            phase=Phase.PREPARING.value,
            started_at=utcnow(),
        )
        return self.get(build_id) if won else None

    def set_phase(self, build_id: str, phase: Phase) -> None:
        """Record the phase a running build has entered."""
        self._update_where(build_id, col(Build.status) == Status.RUNNING.value, phase=phase.value)

    def request_cancel(self, build_id: str) -> None:
        """Flag a build for cancellation (the worker sees the flag)."""
        self._update_where(build_id, None, cancel_requested=True)

    def cancel_if_queued(self, build_id: str) -> bool:
        """End a build that no worker has claimed yet; True if it was still queued."""
        return self._update_where(
            build_id,
            col(Build.status) == Status.QUEUED.value,
            status=Status.CANCELLED.value,
            phase=Phase.DONE.value,
            finished_at=utcnow(),
            error_code="cancelled",
            error_message="the build was cancelled before it started",
        )

    def finish(
        self,
        build_id: str,
        status: Status,
        code: str | None,
        message: str | None,
        log_tail: str | None,
        diagnostics: dict[str, Any] | None = None,
    ) -> Build:
        """Record how a running build ended; returns the final record."""
        self._update_where(
            build_id,
            None,
            status=status.value,
            phase=Phase.DONE.value,
            finished_at=utcnow(),
            error_code=code,
            error_message=message,
            error_log_tail=log_tail,
            error_diagnostics=diagnostics,
        )
        return self.get(build_id)

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
