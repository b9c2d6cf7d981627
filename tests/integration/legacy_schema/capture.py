"""Capture the DDL that Kiln ran before Alembic, from its own code at two commits in git.

    .venv/bin/python -m tests.integration.legacy_schema.capture

For SQLite and PostgreSQL, writes ``<dialect>-made.sql`` (a database that today's main,
6c861c6, created: ``create_all``) and ``<dialect>-upgraded.sql`` (one that the walking
skeleton, e890475, created and 6c861c6 then upgraded with ``add_missing_columns``: no
unique ``idempotency_key``, no ``ix_build_input_digest``, a nullable ``attempts``). Each
file is every CREATE and ALTER statement the old code sent, in order, recorded from the
cursor. The test loads them (tests/integration/test_migrations.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

import sqlalchemy

from orchestrator.settings import REPO_ROOT
from tests.integration.postgres import postgres_cluster

HERE = Path(__file__).parent
TODAY, SKELETON = "6c861c6", "e890475"
HISTORIES = {"made": [TODAY], "upgraded": [SKELETON, TODAY]}
SEPARATOR = ";\n\n"

# Runs inside the old tree: its orchestrator.db makes the tables, as its get_engine did.
RUN_OLD = """
import json, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
statements = []
@event.listens_for(Engine, "before_cursor_execute")
def record(conn, cursor, statement, parameters, context, executemany):
    if statement.lstrip().upper().startswith(("CREATE", "ALTER")):
        statements.append(statement.strip())
import orchestrator.db
import orchestrator.models  # its db module relied on the caller importing the models
orchestrator.db.get_engine(sys.argv[1]).dispose()
print(json.dumps(statements))
"""


def old_tree(commit: str, into: Path) -> Path:
    """The ``orchestrator`` package as it was at ``commit``."""
    archive = subprocess.run(
        ["git", "archive", commit, "orchestrator"], cwd=REPO_ROOT, check=True, capture_output=True
    ).stdout
    folder = into / commit
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def run_old(tree: Path, url: str, var_dir: Path) -> list[str]:
    """The DDL statements the old code at ``tree`` sends to ``url``."""
    env = {**os.environ, "PYTHONPATH": str(tree), "KILN_VAR_DIR": str(var_dir)}
    done = subprocess.run(
        [sys.executable, "-c", RUN_OLD, url],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def capture(urls: dict[str, str], work: Path, dialect: str) -> None:
    """Write ``<dialect>-<history>.sql`` for each history, on the database of ``urls``."""
    for history, commits in HISTORIES.items():
        statements: list[str] = []
        for commit in commits:
            statements += run_old(old_tree(commit, work), urls[history], work / "var")
        (HERE / f"{dialect}-{history}.sql").write_text(SEPARATOR.join(statements) + ";\n")


def main() -> None:
    """Capture both histories on SQLite and on a private PostgreSQL cluster."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        capture({h: f"sqlite:///{work}/{h}.db" for h in HISTORIES}, work, "sqlite")
        with postgres_cluster(work / "pg") as url:
            engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
            with engine.connect() as connection:
                for history in HISTORIES:
                    connection.execute(sqlalchemy.text(f"CREATE DATABASE {history}"))
            engine.dispose()
            base = url.rsplit("/", 1)[0]
            capture({h: f"{base}/{h}" for h in HISTORIES}, work, "postgresql")


def statements(dialect: str, history: str) -> list[str]:
    """The captured DDL of one history on one dialect, statement by statement."""
    text = (HERE / f"{dialect}-{history}.sql").read_text()
    return [s.strip() for s in text.split(SEPARATOR) if s.strip().rstrip(";")]


if __name__ == "__main__":
    main()
