"""The database: engines (SQLite by default, any SQLAlchemy URL by setting) and its schema.

The schema is Alembic's (``records/migrations/``). ``kiln db upgrade`` brings a database
to the newest revision; the API and workers refuse one that is behind (``require_current``).
A database that Kiln made before Alembic (tables, no ``alembic_version``) is stamped with
revision 0001, its schema then, and upgraded from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlmodel import create_engine

from orchestrator.errors import DatabaseBehind
from orchestrator.settings import get_settings

MIGRATIONS = Path(__file__).with_name("migrations")  # inside the package: found when installed
BEFORE_ALEMBIC = "0001"  # the revision whose schema a database from before Alembic has
UPGRADE_COMMAND = "kiln db upgrade"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while a worker writes; busy_timeout waits instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@lru_cache
def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for ``url`` (default: the configured database)."""
    return make_engine(url or get_settings().db_url)


def make_engine(url: str) -> Engine:
    """A new engine for ``url``, configured as Kiln uses it (SQLite: WAL, busy timeout)."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


class Start(StrEnum):
    """Where an upgrade starts from, by what the database has."""

    EMPTY = "empty"  # no Kiln tables: run every revision
    BEFORE_ALEMBIC = "before_alembic"  # Kiln's tables, no alembic_version: stamp 0001 first
    VERSIONED = "versioned"  # alembic_version says where it is


def upgrade_start(tables: set[str]) -> Start:
    """How to upgrade a database that has these ``tables``."""
    if "alembic_version" in tables:
        return Start.VERSIONED
    if tables & {"build", "generation"}:
        return Start.BEFORE_ALEMBIC
    return Start.EMPTY


@dataclass(frozen=True)
class SchemaState:
    """Where a database's schema is and where this Kiln's migrations end."""

    current: str | None  # None: not versioned (empty, or made before Alembic)
    head: str
    start: Start
    known: bool = True  # False: a revision this Kiln lacks (a newer Kiln migrated it)

    @property
    def up_to_date(self) -> bool:
        """True when the database is at this Kiln's newest revision."""
        return self.current == self.head

    def describe(self) -> str:
        """One line for ``kiln db current`` and ``kiln doctor``."""
        if self.up_to_date:
            return f"at revision {self.head} (newest)"
        if not self.known:
            return (
                f"at revision {self.current}, which this Kiln does not know (newest: {self.head})"
            )
        if self.start is Start.BEFORE_ALEMBIC:
            return f"made before migrations (schema of {BEFORE_ALEMBIC}); newest is {self.head}"
        if self.current is None:
            return f"empty; newest revision is {self.head}"
        return f"at revision {self.current}; newest is {self.head}"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision of this Kiln's migrations."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def schema_state(engine: Engine) -> SchemaState:
    """Where ``engine``'s database is (reads only)."""
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        tables = set(inspect(connection).get_table_names())
    revisions = {s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions()}
    known = current is None or current in revisions
    return SchemaState(current, head_revision(), upgrade_start(tables), known)


def upgrade(engine: Engine) -> tuple[SchemaState, SchemaState]:
    """Bring ``engine``'s database to the newest revision; (state before, state after)."""
    from alembic import command  # heavy (autogenerate and all): only the upgrade needs it

    before = schema_state(engine)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Two upgrades at once (two hosts starting) take turns; the second finds head.
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('kiln-migrations'))"))
        tables = set(inspect(connection).get_table_names())
        config = _config(connection)
        if upgrade_start(tables) is Start.BEFORE_ALEMBIC:
            command.stamp(config, BEFORE_ALEMBIC)
        command.upgrade(config, "head")
    return before, schema_state(engine)


def require_current(url: str | None = None) -> SchemaState:
    """The state of the configured database; DatabaseBehind unless it is at the newest
    revision. Uses an engine of its own, disposed before it returns (a worker's main
    process forks work-horses and must hold no connection)."""
    engine = make_engine(url or get_settings().db_url)
    try:
        state = schema_state(engine)
    finally:
        engine.dispose()
    if not state.up_to_date:
        where = engine.url.render_as_string(hide_password=True)
        todo = f"run `{UPGRADE_COMMAND}`" if state.known else "run a Kiln as new as the database"
        raise DatabaseBehind(f"the database {where} is {state.describe()}: {todo}")
    return state
