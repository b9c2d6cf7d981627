"""The database layer (BuildStore, metric queries) on SQLite and PostgreSQL, on tables
that the migrations made (their upgrades: test_migrations.py).

PostgreSQL runs as a private cluster on a free port (tests/integration/postgres.py); under
CI it must be there, locally the PostgreSQL cases skip when it is not installed.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from orchestrator.records.db import make_engine, upgrade
from orchestrator.records.models import Build, Status, utcnow
from orchestrator.records.store import BuildStore
from tests.integration.postgres import pg_bin, postgres_cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/kiln.db"
        return
    if pg_bin("initdb") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is not installed; scripts/test installs it")
        pytest.skip("PostgreSQL is not installed")
    folder = Path(tempfile.mkdtemp(prefix="kiln-pg-"))
    with postgres_cluster(folder / "cluster") as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    SQLModel.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("DROP TABLE IF EXISTS alembic_version"))
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> BuildStore:
    return BuildStore(engine)


def test_add_get_list_count(store: BuildStore) -> None:
    first = store.add(Build(project="p", limits={"timeout_s": 60}))
    store.add(Build(project="q"))
    assert store.get(first.id).limits == {"timeout_s": 60}
    assert [b.project for b in store.list(limit=10)] == ["q", "p"]
    assert store.count(status="queued") == 2
    assert store.count(status="queued", project="p") == 1


def test_claim_counts_attempts_and_records_the_worker(store: BuildStore) -> None:
    build = store.add(Build(project="p"))
    claimed = store.claim(build.id, worker="w1")
    assert claimed is not None
    assert (claimed.status, claimed.attempts, claimed.worker) == ("running", 1, "w1")
    assert claimed.heartbeat_at is not None
    assert store.claim(build.id) is None  # not queued any more


def test_project_cap_lets_exactly_cap_builds_run(store: BuildStore) -> None:
    builds = [store.add(Build(project="capped")) for _ in range(6)]
    won: list[str] = []
    lock = threading.Lock()

    def take(build_id: str) -> None:
        if store.claim(build_id, project_cap=2) is not None:
            with lock:
                won.append(build_id)

    threads = [threading.Thread(target=take, args=(b.id,)) for b in builds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 2  # exact under simultaneous claims, on both databases
    assert store.count(status="running", project="capped") == len(won)
    for build_id in won:
        store.finish(build_id, Status.SUCCEEDED, None, None, None)
    rest = [b.id for b in builds if b.id not in won]
    assert store.claim(rest[0], project_cap=2) is not None


def test_lost_build_is_requeued_or_failed_exactly_once(store: BuildStore) -> None:
    build = store.add(Build(project="p"))
    claimed = store.claim(build.id)
    assert claimed is not None
    later = utcnow() + timedelta(seconds=60)
    assert [b.id for b in store.running_since(later)] == [build.id]
    assert store.running_since(utcnow() - timedelta(seconds=60)) == []
    assert store.requeue_lost(build.id, attempt=1)
    assert not store.requeue_lost(build.id, attempt=1)  # a second reconciler loses
    assert store.get(build.id).status == "queued"
    again = store.claim(build.id)
    assert again is not None and again.attempts == 2
    assert not store.heartbeat(build.id, attempt=1)  # the old attempt is over
    assert store.heartbeat(build.id, attempt=2)
    assert store.finish(build.id, Status.SUCCEEDED, None, None, None, attempt=1) is None
    assert store.fail_lost(build.id, 2, "worker_lost", "gone")
    ended = store.get(build.id)
    assert (ended.status, ended.error_code) == ("failed", "worker_lost")


def test_idempotency_key_is_unique(store: BuildStore) -> None:
    first, inserted = store.add_idempotent(Build(project="p", idempotency_key="k1"))
    assert inserted
    again, inserted_again = store.add_idempotent(Build(project="p", idempotency_key="k1"))
    assert not inserted_again and again.id == first.id
    store.add(Build(project="p"))
    store.add(Build(project="p"))  # many builds without a key
    store.release_idempotency_key(first.id)
    assert store.by_idempotency_key("k1") is None


def test_gc_queries(store: BuildStore) -> None:
    ids = []
    for _ in range(3):
        b = store.add(Build(project="p"))
        store.finish(b.id, Status.SUCCEEDED, None, None, None)
        ids.append(b.id)
    store.add(Build(project="p"))  # still queued: never a gc candidate
    old = store.finished_before(utcnow() + timedelta(seconds=1))
    assert sorted(b.id for b in old) == sorted(ids)
    assert store.newest_finished_ids("p", 1) == {ids[-1]}
    assert store.requeue_finished(ids[0]) and store.get(ids[0]).status == "queued"
