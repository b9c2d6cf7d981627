"""The hub's fan-out, queue bounds, cut policy and resume logic, against an in-memory source."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from orchestrator.errors import Unavailable
from orchestrator.live.events import Event
from orchestrator.live.hub import Channel, FollowerCut, Hub, Subscription
from tests.unit.live.fakes import FakeSource


def run(test: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(test(), 10))


def ev(n: int, name: str = "log") -> Event:
    return Event(f"{n}-0", name, {"n": n})


async def drain(sub: Subscription, until: str = "end", timeout: float = 2) -> list[Event]:
    got = []
    while True:
        event = await sub.next(timeout)
        assert event is not None, f"stalled after {[e.id for e in got]}"
        got.append(event)
        if event.event == until:
            return got


# -------------------------------------------------------------------- Subscription


def test_admit_drops_what_the_follower_already_had() -> None:
    sub = Subscription("k", after="2-0")
    assert [e.id for e in sub.admit([ev(1), ev(2), ev(3), ev(4)])] == ["3-0", "4-0"]
    assert sub.admit([ev(3), ev(4)]) == []
    assert [e.id for e in sub.admit([ev(4), ev(5)])] == ["5-0"]
    assert sub.last_id == "5-0"


def test_a_fresh_follower_admits_everything() -> None:
    sub = Subscription("k", after=None)
    assert len(sub.admit([ev(1), ev(2)])) == 2


def test_queue_takes_events_in_order_and_skips_repeats() -> None:
    sub = Subscription("k", after="1-0", limit=10)
    for n in (1, 2, 3, 3):
        assert sub.offer(ev(n))
    assert [sub.take(), sub.take()] == [ev(2), ev(3)]
    assert sub.take() is None


def test_full_queue_cuts_the_follower_with_the_last_id_it_took() -> None:
    sub = Subscription("k", after=None, limit=3)
    assert all(sub.offer(ev(n)) for n in (1, 2, 3))
    assert sub.take() == ev(1)
    assert sub.offer(ev(4))
    assert not sub.offer(ev(5))  # the queue holds 2, 3, 4: full
    assert sub.cut
    assert not sub.offer(ev(6))
    with pytest.raises(FollowerCut) as cut:
        sub.take()
    assert cut.value.code == "slow_consumer"
    assert cut.value.last_id == "1-0"
    error = cut.value.event()
    assert (error.id, error.event, error.data["last_id"]) == ("1-0", "error", "1-0")


def test_cut_before_any_event_has_no_resume_id() -> None:
    sub = Subscription("k", after=None, limit=1)
    sub.close("unavailable", "down")
    with pytest.raises(FollowerCut) as cut:
        sub.take()
    assert cut.value.event().id == ""
    assert cut.value.last_id is None


def test_next_waits_then_reports_quiet() -> None:
    async def scenario() -> None:
        sub = Subscription("k", after=None)
        assert await sub.next(0.05) is None
        asyncio.get_running_loop().call_later(0.05, sub.offer, ev(1))
        assert await sub.next(2) == ev(1)

    run(scenario)


# -------------------------------------------------------------------- Channel


def test_channel_fans_out_and_drops_only_the_slow_follower() -> None:
    channel = Channel("k")
    fast = [Subscription("k", None, limit=5) for _ in range(50)]
    slow = Subscription("k", None, limit=5)
    channel.subscriptions.update([*fast, slow])
    for n in range(1, 21):
        assert channel.publish([ev(n)]) == (1 if n == 6 else 0)
        for sub in fast:
            assert sub.take() == ev(n)
    assert slow.cut and slow not in channel.subscriptions
    assert len(channel.subscriptions) == 50
    assert channel.cursor == "20-0"


# -------------------------------------------------------------------- Hub


def test_many_followers_get_every_event_from_one_reader() -> None:
    async def scenario() -> None:
        source = FakeSource()
        hub = Hub(source, block_ms=1000)
        subs = [await hub.subscribe("b", None) for _ in range(300)]
        for n in range(20):
            source.append("b", "log", n=n)
            await asyncio.sleep(0)
        source.append("b", "end")
        results = await asyncio.gather(*(drain(s) for s in subs))
        assert all([e.id for e in r] == [f"{n}-0" for n in range(1, 22)] for r in results)
        assert source.reads < 30  # reads follow the writes, not the followers
        await hub.close()

    run(scenario)


def test_late_follower_replays_then_joins_live_without_gap_or_repeat() -> None:
    async def scenario() -> None:
        source = FakeSource()
        hub = Hub(source, block_ms=1000)
        early = await hub.subscribe("b", None)
        for n in range(10):
            source.append("b", "log", n=n)
        for after in (None, "1-0", "5-0", "10-0"):
            late = await hub.subscribe("b", after)
            replayed = await hub.replay(late)
            source.append("b", "log", n="live")  # arrives while the late one joins
            live = await late.next(2)
            assert live is not None
            start = 0 if after is None else int(after.split("-")[0])
            ids = [e.id for e in [*replayed, live]]
            assert ids == [f"{n}-0" for n in range(start + 1, len(source.streams["b"]) + 1)]
            hub.unsubscribe(late)
        assert len(await drain(early, until="log", timeout=2)) == 1
        await hub.close()

    run(scenario)


def test_replay_that_overlaps_the_live_queue_gives_each_event_once() -> None:
    async def scenario() -> None:
        source = FakeSource()
        hub = Hub(source, block_ms=1000)
        sub = await hub.subscribe("b", None)
        for n in range(5):
            source.append("b", "log", n=n)
        await asyncio.sleep(0.05)  # the reader queued them all already
        replayed = await hub.replay(sub)  # ... and the replay has them too
        source.append("b", "end")
        rest = await drain(sub)
        assert [e.id for e in replayed + rest] == [f"{n}-0" for n in range(1, 7)]
        await hub.close()

    run(scenario)


def test_slow_follower_is_cut_and_the_others_keep_up() -> None:
    async def scenario() -> None:
        source = FakeSource()
        hub = Hub(source, block_ms=1000, queue_limit=10)
        slow = await hub.subscribe("b", None)
        fast = [await hub.subscribe("b", None) for _ in range(20)]
        readers = [asyncio.create_task(drain(s)) for s in fast]
        for n in range(50):
            source.append("b", "log", n=n)
            await asyncio.sleep(0.001)
        source.append("b", "end")
        results = await asyncio.gather(*readers)
        assert all(len(r) == 51 for r in results)
        with pytest.raises(FollowerCut) as cut:
            await slow.next(1)
        assert cut.value.code == "slow_consumer" and cut.value.last_id is None
        assert hub.cut_total == 1
        # Resuming from the id in the error replays what was missed.
        again = await hub.subscribe("b", cut.value.last_id)
        assert len(await hub.replay(again)) == 51
        await hub.close()

    run(scenario)


def test_read_failures_keep_the_cursor_so_nothing_is_lost() -> None:
    async def scenario() -> None:
        source = FakeSource()
        hub = Hub(source, block_ms=200, outage_s=30)
        sub = await hub.subscribe("b", None)
        source.append("b", "log", n=0)
        assert await sub.next(2) is not None
        source.fail_reads = 3
        source.append("b", "log", n=1)
        source.append("b", "end")
        assert [e.id for e in await drain(sub, timeout=5)] == ["2-0", "3-0"]
        await hub.close()

    run(scenario)


def test_a_long_outage_cuts_every_follower_with_a_resumable_error() -> None:
    async def scenario() -> None:
        source = FakeSource()
        hub = Hub(source, block_ms=50, outage_s=0.2)
        sub = await hub.subscribe("b", None)
        source.append("b", "log", n=0)
        assert await sub.next(2) is not None
        source.fail_reads = 1000
        with pytest.raises(FollowerCut) as cut:
            while True:
                await sub.next(0.5)
        assert (cut.value.code, cut.value.last_id) == ("unavailable", "1-0")
        assert hub.channels == {}
        await hub.close()

    run(scenario)


def test_subscribe_answers_unavailable_when_the_stream_cannot_be_read() -> None:
    async def scenario() -> None:
        source = FakeSource()

        async def broken(key: str) -> str:
            raise ConnectionError("down")

        source.last_id = broken  # type: ignore[method-assign]
        hub = Hub(source)
        with pytest.raises(Unavailable):
            await hub.subscribe("b", None)
        assert hub.channels == {}
        await hub.close()

    run(scenario)


def test_the_last_follower_leaving_drops_the_channel() -> None:
    async def scenario() -> None:
        hub = Hub(FakeSource())
        a = await hub.subscribe("b", None)
        b = await hub.subscribe("b", None)
        await hub.subscribe("p", None)
        assert hub.followers() == 3
        hub.unsubscribe(a)
        assert "b" in hub.channels
        hub.unsubscribe(b)
        assert set(hub.channels) == {"p"}
        await hub.close()
        assert hub.channels == {}

    run(scenario)


def test_concurrent_first_subscribers_share_one_channel() -> None:
    async def scenario() -> None:
        source = FakeSource()
        source.append("b", "log", n=0)
        hub = Hub(source, block_ms=1000)
        subs = await asyncio.gather(*(hub.subscribe("b", None) for _ in range(10)))
        assert len(hub.channels) == 1 and hub.followers() == 10
        source.append("b", "end")
        for sub in subs:
            replayed = await hub.replay(sub)
            rest = [] if replayed[-1].event == "end" else await drain(sub)
            assert [e.id for e in replayed + rest] == ["1-0", "2-0"]
        await hub.close()

    run(scenario)
