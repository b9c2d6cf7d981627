"""The project feed: slugs, event shapes, and archiving the oldest entries before trimming."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import InputError
from orchestrator.live import feed
from orchestrator.live.logbus import LogBus, id_after
from orchestrator.storage.build_storage import BuildStorage
from orchestrator.storage.objects import LocalObjects


class FakeRedis:
    """The few stream commands the feed writer uses, in memory."""

    def __init__(self) -> None:
        self.streams: dict[str, list[tuple[str, dict[str, str]]]] = {}
        self.keys: dict[str, str] = {}
        self._ms = 1000

    def xadd(self, key: str, fields: dict[str, str]) -> bytes:
        self._ms += 1
        entry_id = f"{self._ms}-0"
        self.streams.setdefault(key, []).append((entry_id, fields))
        return entry_id.encode()

    def xlen(self, key: str) -> int:
        return len(self.streams.get(key, []))

    def xrange(self, key: str, count: int | None = None) -> list[tuple[str, dict[str, str]]]:
        return self.streams.get(key, [])[:count]

    def xtrim(self, key: str, minid: str) -> int:
        before = self.streams[key]
        self.streams[key] = [e for e in before if not id_after(minid, e[0])]
        return len(before) - len(self.streams[key])

    def set(self, key: str, value: str, nx: bool, ex: int) -> bool:
        if nx and key in self.keys:
            return False
        self.keys[key] = value
        return True

    def delete(self, key: str) -> None:
        self.keys.pop(key, None)

    def pipeline(self, transaction: bool) -> FakeRedis.Pipeline:
        return FakeRedis.Pipeline(self)

    class Pipeline:
        def __init__(self, client: FakeRedis) -> None:
            self.client = client
            self.calls: list[Any] = []

        def __getattr__(self, name: str) -> Any:
            return lambda *a, **k: self.calls.append((name, a, k))

        def execute(self) -> list[Any]:
            return [getattr(self.client, n)(*a, **k) for n, a, k in self.calls]


@pytest.mark.parametrize("slug", ["shop", "a", "my-app-2", "legacy.name_1", "x" * 63])
def test_check_project_accepts_slugs(slug: str) -> None:
    assert feed.check_project(slug) == slug


@pytest.mark.parametrize("slug", ["", "Shop", "-a", "a/b", "x" * 64, "a b", "..", "p\n"])
def test_check_project_refuses(slug: str) -> None:
    with pytest.raises(InputError) as err:
        feed.check_project(slug)
    assert err.value.code == "invalid_project"


def test_feed_archives_the_oldest_entries_and_keeps_every_one(tmp_path: Path) -> None:
    client = FakeRedis()
    archive = tmp_path / "feeds" / "shop" / "events.jsonl"
    ids = [
        feed.publish_project_event(client, archive, "shop", "build", {"n": n}, cap=10)  # type: ignore[arg-type]
        for n in range(40)
    ]
    stream = client.streams[feed.project_key("shop")]
    assert 10 <= len(stream) <= 15
    archived = feed.read_feed_archive(archive)
    assert [e.id for e in archived] + [i for i, _ in stream] == ids
    assert [e.data["n"] for e in archived] == list(range(len(archived)))
    bus = LogBus(None, BuildStorage(LocalObjects(Path("/nowhere"))), 60, Path("/var/kiln/feeds"))  # type: ignore[arg-type]
    assert bus.feed_archive("shop") == Path("/var/kiln/feeds/shop/events.jsonl")


def test_feed_does_not_archive_while_another_writer_holds_the_lock(tmp_path: Path) -> None:
    client = FakeRedis()
    archive = tmp_path / "feeds" / "shop" / "events.jsonl"
    client.keys["kiln:project:shop:archiving"] = "1"
    for n in range(20):
        feed.publish_project_event(client, archive, "shop", "build", {"n": n}, cap=4)  # type: ignore[arg-type]
    assert len(client.streams[feed.project_key("shop")]) == 20
    assert feed.read_feed_archive(archive) == []


def test_logbus_writes_status_and_end_to_the_project_feed(tmp_path: Path) -> None:
    client = FakeRedis()
    asked: list[str] = []

    def project_of(build_id: str) -> str:
        asked.append(build_id)
        return "shop"

    storage = BuildStorage(LocalObjects(tmp_path))
    bus = LogBus(client, storage, 60, tmp_path / "feeds", project_of=project_of)  # type: ignore[arg-type]
    bus.status("b1", "queued", "queued", "shop")
    bus.status("b1", "running", "installing")
    bus.status("b1", "running", "building")
    bus.logs("b1", "building", "stdout", ["not in the feed"])
    bus.publish("b1", "end", {"id": "b1", "project": "shop", "status": "succeeded"})
    entries = client.streams[feed.project_key("shop")]
    shown = [(f["event"], json.loads(f["data"])) for _, f in entries]
    assert shown == [
        ("build", {"id": "b1", "status": "queued", "phase": "queued"}),
        ("build", {"id": "b1", "status": "running", "phase": "installing"}),
        ("build", {"id": "b1", "status": "running", "phase": "building"}),
        ("build_end", {"id": "b1", "project": "shop", "status": "succeeded"}),
    ]
    assert asked == ["b1"]  # looked up once, then remembered
    assert len(client.streams["kiln:build:b1:events"]) == 5


def test_logbus_without_a_project_writes_only_the_build_stream(tmp_path: Path) -> None:
    client = FakeRedis()
    storage = BuildStorage(LocalObjects(tmp_path))
    bus = LogBus(client, storage, 60, tmp_path / "feeds", project_of=lambda build_id: None)  # type: ignore[arg-type]
    bus.status("b1", "running", "building")
    assert list(client.streams) == ["kiln:build:b1:events"]
