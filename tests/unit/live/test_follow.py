"""Following a build or a feed: archive first, replay then live, and never a silent end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from orchestrator.live import follow as follow_module
from orchestrator.live.events import Event
from orchestrator.live.follow import follow_build, follow_feed, guarded
from orchestrator.live.hub import Hub
from orchestrator.live.logbus import stream_key
from orchestrator.records.models import Build
from tests.unit.live.fakes import FakeSource


async def collect(events: AsyncIterator[Event], limit: int = 1000) -> list[Event]:
    got = []
    async for event in events:
        got.append(event)
        if len(got) >= limit:
            break
    return got


def build_follower(hub: Hub, after: str | None, archive: list[Event] | None = None,
                   status: str = "running") -> AsyncIterator[Event]:  # fmt: skip
    return follow_build(
        hub,
        "b1",
        after=after,
        archive=lambda: archive,
        load_build=lambda: Build(id="b1", project="p", status=status),
        end_body=lambda build: {"id": build.id, "status": build.status},
    )


def test_a_finished_build_is_replayed_from_its_archive_without_the_hub() -> None:
    async def scenario() -> None:
        source = FakeSource()
        hub = Hub(source)
        archived = [Event("1-0", "status", {}), Event("2-0", "log", {}), Event("3-0", "end", {})]
        got = await collect(build_follower(hub, "1-0", archived))
        assert [e.id for e in got] == ["2-0", "3-0"]
        assert hub.channels == {} and source.reads == 0

    asyncio.run(scenario())


def test_a_running_build_replays_then_follows_live_until_end() -> None:
    async def scenario() -> None:
        source = FakeSource()
        key = stream_key("b1")
        for n in range(3):
            source.append(key, "log", n=n)
        hub = Hub(source, block_ms=500)
        task = asyncio.create_task(collect(build_follower(hub, "1-0")))
        await asyncio.sleep(0.05)
        source.append(key, "log", n=3)
        source.append(key, "end")
        got = await asyncio.wait_for(task, 5)
        assert [e.id for e in got] == ["2-0", "3-0", "4-0", "5-0"]
        assert hub.channels == {}  # the follower left its channel
        await hub.close()

    asyncio.run(scenario())


def test_a_quiet_build_that_ended_without_a_stream_gets_an_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(follow_module, "QUIET_S", 0.05)

    async def scenario() -> None:
        hub = Hub(FakeSource(), block_ms=100)
        got = await asyncio.wait_for(collect(build_follower(hub, None, status="failed")), 5)
        assert [e.event for e in got] == ["end"]
        assert got[0].data == {"id": "b1", "status": "failed"}
        await hub.close()

    asyncio.run(scenario())


def test_a_cut_follower_ends_with_an_error_naming_its_last_id() -> None:
    async def scenario() -> None:
        source = FakeSource()
        key = stream_key("b1")
        source.append(key, "log", n=0)
        hub = Hub(source, block_ms=500, queue_limit=2)
        events = build_follower(hub, None)
        first = await events.__anext__()  # replayed; the follower now stops reading
        for n in range(5):
            source.append(key, "log", n=n)
        await asyncio.sleep(0.1)
        rest = await collect(events)
        assert first.id == "1-0"
        assert [e.event for e in rest] == ["error"]
        assert rest[0].id == "1-0" and rest[0].data["last_id"] == "1-0"
        assert rest[0].data["code"] == "slow_consumer"
        await hub.close()

    asyncio.run(scenario())


def test_a_follower_that_goes_away_mid_build_leaves_its_channel() -> None:
    async def scenario() -> None:
        source = FakeSource()
        source.append(stream_key("b1"), "log", n=0)
        hub = Hub(source, block_ms=500)
        events = build_follower(hub, None)
        assert (await events.__anext__()).id == "1-0"
        assert list(hub.channels) == [stream_key("b1")]
        await events.aclose()  # type: ignore[attr-defined]  # the client went away
        assert hub.channels == {}
        await hub.close()

    asyncio.run(scenario())


def test_a_feed_replays_its_archive_then_its_stream_then_live() -> None:
    async def scenario() -> None:
        source = FakeSource()
        for n in range(6):
            source.append("feed", "build", n=n)
        # The oldest three were archived; the third is still in the stream too (a writer
        # died between appending and trimming): it must come once.
        archived = source.streams["feed"][:3]
        source.streams["feed"] = source.streams["feed"][2:]
        hub = Hub(source, block_ms=500)
        task = asyncio.create_task(
            collect(follow_feed(hub, "feed", after="1-0", archive=lambda: archived), limit=6)
        )
        await asyncio.sleep(0.05)
        source.append("feed", "build", n=6)
        got = await asyncio.wait_for(task, 5)
        assert [e.id for e in got] == ["2-0", "3-0", "4-0", "5-0", "6-0", "7-0"]
        await hub.close()

    asyncio.run(scenario())


def test_guarded_turns_a_failure_into_an_error_event() -> None:
    async def failing() -> AsyncIterator[Event]:
        yield Event("1-0", "log", {})
        raise RuntimeError("boom")

    async def scenario() -> list[Event]:
        return await collect(guarded(failing()))

    got = asyncio.run(scenario())
    assert [e.event for e in got] == ["log", "error"]
    assert got[1].id == "1-0" and got[1].data["code"] == "internal_error"
