"""Alembic upgrades of databases that Kiln made before Alembic, on SQLite and PostgreSQL.

The old databases are made by the old code's own DDL, captured from git (6c861c6, and
e890475 then 6c861c6 for one that ``add_missing_columns`` upgraded; see
legacy_schema/capture.py). PostgreSQL runs as a private cluster (tests/integration/
postgres.py); under CI it must be there, locally its cases skip when it is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from orchestrator.errors import DatabaseBehind
from orchestrator.records import db
from orchestrator.records.models import Build, ErrorCode, Phase, Status
from orchestrator.records.store import BuildStore
from orchestrator.settings import REPO_ROOT
from tests.integration.legacy_schema.capture import statements
from tests.integration.postgres import pg_bin, postgres_cluster

pytestmark = pytest.mark.integration
OLD_ROWS = [  # id, status, phase, error_code, idempotency_key, created_at
    ("00000000000000a1", "succeeded", "done", None, "key-1", datetime(2026, 11, 30, 10)),
    ("00000000000000a2", "failed", "done", "out_of_memory", None, datetime(2026, 11, 30, 11)),
    ("00000000000000a3", "cancelled", "done", "superseded", None, datetime(2026, 11, 30, 12)),
    ("00000000000000a4", "queued", "queued", None, "key-2", datetime(2026, 11, 30, 13)),
]
# Without the constraint two racing submits could store one key twice; the first keeps it.
DUPLICATE = ("00000000000000a5", "queued", "queued", None, "key-1", datetime(2026, 11, 30, 14))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest) -> Iterator[str]:
    """``sqlite`` (a folder per test), or the URL of a private PostgreSQL cluster."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    if pg_bin("initdb") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is not installed; scripts/test installs it")
        pytest.skip("PostgreSQL is not installed")
    folder = Path(tempfile.mkdtemp(prefix="kiln-pg-"))
    with postgres_cluster(folder / "cluster") as url:
        yield url


@pytest.fixture
def engine(server: str, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a new, empty database of its own."""
    if server == "sqlite":
        engine = db.make_engine(f"sqlite:///{tmp_path / 'kiln.db'}")
    else:
        name = f"kiln_{uuid.uuid4().hex[:12]}"
        admin = sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
        admin.dispose()
        engine = db.make_engine(f"{server.rsplit('/', 1)[0]}/{name}")
    yield engine
    engine.dispose()


def make_old_database(engine: Engine, history: str, rows: Sequence[tuple[object, ...]]) -> None:
    """Run the old code's captured DDL, then insert rows as the old code stored them."""
    with engine.begin() as connection:
        for statement in statements(engine.dialect.name, history):
            connection.execute(sqlalchemy.text(statement))
        for build_id, status, phase, code, key, created in rows:
            connection.execute(
                sqlalchemy.text(
                    "INSERT INTO build (id, project, status, phase, created_at, limits, "
                    "error_code, cancel_requested, attempts, idempotency_key) VALUES "
                    "(:id, 'old', :status, :phase, :created, '{}', :code, FALSE, 1, :key)"
                ),
                {
                    "id": build_id,
                    "status": status,
                    "phase": phase,
                    "created": created,
                    "code": code,
                    "key": key,
                },
            )


def schema_differences(engine: Engine) -> list[object]:
    """What Alembic's autogenerate finds between the database and the models ([]: none)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))


def test_an_empty_database_upgrades_to_exactly_the_models(engine: Engine) -> None:
    before, after = db.upgrade(engine)
    assert before.start is db.Start.EMPTY and after.up_to_date
    assert schema_differences(engine) == []
    store = BuildStore(engine)
    first, inserted = store.add_idempotent(Build(project="p", idempotency_key="k"))
    again, inserted_again = store.add_idempotent(Build(project="p", idempotency_key="k"))
    assert inserted and not inserted_again and again.id == first.id


@pytest.mark.parametrize("history", ["made", "upgraded"])
def test_a_database_from_before_alembic_is_upgraded_and_keeps_its_rows(
    engine: Engine, history: str
) -> None:
    rows = [*OLD_ROWS, DUPLICATE] if history == "upgraded" else OLD_ROWS
    make_old_database(engine, history, rows)
    inspector = sqlalchemy.inspect(engine)
    unique_before = inspector.get_unique_constraints("build")
    assert (unique_before == []) == (history == "upgraded")  # the defect being repaired
    url = engine.url.render_as_string(hide_password=False)
    with pytest.raises(DatabaseBehind, match="kiln db upgrade"):
        db.require_current(url)

    before, after = db.upgrade(engine)

    assert before.start is db.Start.BEFORE_ALEMBIC and after.up_to_date
    assert db.require_current(url).up_to_date
    assert schema_differences(engine) == []
    inspector = sqlalchemy.inspect(engine)
    unique = [u["column_names"] for u in inspector.get_unique_constraints("build")]
    assert unique == [["idempotency_key"]]
    indexes = {
        i["name"]: i["column_names"]
        for i in inspector.get_indexes("build")
        if not i.get("duplicates_constraint")  # PostgreSQL's index behind the constraint
    }
    assert indexes == {
        "ix_build_project": ["project"],
        "ix_build_status": ["status"],
        "ix_build_created_at": ["created_at"],
        "ix_build_input_digest": ["input_digest"],
    }
    columns = {c["name"]: c["nullable"] for c in inspector.get_columns("build")}
    assert set(columns) == set(Build.__table__.columns.keys())  # type: ignore[attr-defined]
    assert columns["attempts"] is False

    store = BuildStore(engine)
    failed = store.get("00000000000000a2")
    assert (failed.status, failed.phase, failed.error_code) == (
        Status.FAILED,
        Phase.DONE,
        ErrorCode.OUT_OF_MEMORY,
    )
    assert isinstance(failed.status, Status) and isinstance(failed.error_code, ErrorCode)
    assert store.get("00000000000000a3").error_code is ErrorCode.SUPERSEDED
    assert [b.id for b in store.list(status=Status.QUEUED)][-1] == "00000000000000a4"
    # The first build keeps its key; the second submit with it now finds that build.
    kept = store.by_idempotency_key("key-1")
    assert kept is not None and kept.id == "00000000000000a1"
    again, inserted = store.add_idempotent(Build(project="old", idempotency_key="key-1"))
    assert not inserted and again.id == "00000000000000a1"
    fresh, inserted = store.add_idempotent(Build(project="old", idempotency_key="key-3"))
    assert inserted and fresh.attempts == 0
    claimed = store.claim("00000000000000a4", worker="w")
    assert claimed is not None and claimed.attempts == 2 and claimed.status is Status.RUNNING

    again_before, _ = db.upgrade(engine)
    assert again_before.up_to_date  # a second upgrade finds nothing to do


def _kiln(*args: str, var_dir: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KILN_VAR_DIR": str(var_dir), "KILN_PORT": "1"}
    kiln = str(Path(sys.executable).with_name("kiln"))
    return subprocess.run(
        [kiln, *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_the_api_and_workers_refuse_a_database_that_is_behind(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'kiln.db'}")  # KILN_VAR_DIR's database
    make_old_database(engine, "upgraded", OLD_ROWS)
    engine.dispose()

    for command in (["serve"], ["worker"]):
        done = _kiln(*command, var_dir=tmp_path)
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert "run `kiln db upgrade`" in " ".join(done.stderr.split()), done.stderr
    # The API refuses even when started without the kiln command (its lifespan checks).
    env = {**os.environ, "KILN_VAR_DIR": str(tmp_path)}
    uvicorn = subprocess.run(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--port", "1"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert uvicorn.returncode != 0 and "kiln db upgrade" in uvicorn.stderr
    assert _kiln("db", "current", var_dir=tmp_path).returncode == 1

    upgraded = _kiln("db", "upgrade", var_dir=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    current = _kiln("db", "current", var_dir=tmp_path)
    assert current.returncode == 0 and "newest" in current.stdout
