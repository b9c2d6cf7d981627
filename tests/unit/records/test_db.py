"""Unit tests for orchestrator.records.db: where an upgrade starts, schema states, and the
migrations on a throwaway SQLite file (the real dialects: tests/integration/test_migrations.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from orchestrator.errors import DatabaseBehind
from orchestrator.records import db
from orchestrator.records.models import Build, ErrorCode, Phase, Status
from orchestrator.records.store import BuildStore


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'kiln.db'}")
    yield engine
    engine.dispose()


@pytest.mark.parametrize(
    ("tables", "start"),
    [
        (set(), db.Start.EMPTY),
        ({"unrelated"}, db.Start.EMPTY),
        ({"build", "generation"}, db.Start.BEFORE_ALEMBIC),
        ({"build"}, db.Start.BEFORE_ALEMBIC),  # from before code generation
        ({"alembic_version", "build", "generation"}, db.Start.VERSIONED),
    ],
)
def test_where_an_upgrade_starts(tables: set[str], start: db.Start) -> None:
    assert db.upgrade_start(tables) is start


def test_states_say_what_to_do() -> None:
    head = db.head_revision()
    assert db.SchemaState(head, head, db.Start.VERSIONED).up_to_date
    old = db.SchemaState(None, head, db.Start.BEFORE_ALEMBIC)
    assert not old.up_to_date and "before migrations" in old.describe()
    assert "empty" in db.SchemaState(None, head, db.Start.EMPTY).describe()
    behind = db.SchemaState("0001", head, db.Start.VERSIONED)
    assert not behind.up_to_date and "0001" in behind.describe()
    ahead = db.SchemaState("9999", head, db.Start.VERSIONED, known=False)
    assert not ahead.up_to_date and "does not know" in ahead.describe()


def test_the_migrations_are_found_inside_the_package() -> None:
    assert db.MIGRATIONS.parent == Path(db.__file__).parent
    assert db.head_revision() == "0005"


def test_an_empty_database_upgrades_to_exactly_the_models(engine: Engine) -> None:
    before, after = db.upgrade(engine)
    assert before.start is db.Start.EMPTY and not before.up_to_date
    assert after.up_to_date
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
    again, _ = db.upgrade(engine)
    assert again.up_to_date  # nothing left to do


def test_require_current_refuses_a_database_that_is_behind(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    with pytest.raises(DatabaseBehind) as caught:
        db.require_current(url)
    assert "kiln db upgrade" in caught.value.message
    assert caught.value.http_status == 503
    db.upgrade(engine)
    assert db.require_current(url).up_to_date
    with engine.begin() as connection:  # as if a newer Kiln had migrated it
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(DatabaseBehind, match="as new as the database"):
        db.require_current(url)


def test_states_are_stored_as_their_strings_and_read_back_as_enums(engine: Engine) -> None:
    db.upgrade(engine)
    store = BuildStore(engine)
    build = store.add(Build(project="p"))
    store.finish(build.id, Status.FAILED, ErrorCode.OUT_OF_MEMORY, "m", "t")
    with engine.connect() as connection:
        row = connection.execute(text("SELECT status, phase, error_code FROM build")).one()
    assert tuple(row) == ("failed", "done", "out_of_memory")
    ended = store.get(build.id)
    assert (ended.status, ended.phase, ended.error_code) == (
        Status.FAILED,
        Phase.DONE,
        ErrorCode.OUT_OF_MEMORY,
    )
    assert isinstance(ended.status, Status) and isinstance(ended.error_code, ErrorCode)
    assert [b.id for b in store.list(status=Status.FAILED)] == [build.id]
