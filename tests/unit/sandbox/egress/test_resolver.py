"""The egress proxy's resolver, with a scripted lookup and clock."""

from __future__ import annotations

import asyncio
import socket

import pytest

from orchestrator.sandbox.egress.resolver import Resolver


class Lookups:
    """A lookup that answers from a script: an address list or an exception per call."""

    def __init__(self, *answers: list[str] | Exception, delay: float = 0.0) -> None:
        self.answers = list(answers)
        self.delay = delay
        self.calls = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        await asyncio.sleep(self.delay)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


TEMPORARY = socket.gaierror(-3, "Temporary failure in name resolution")


def test_a_burst_of_connections_shares_one_lookup() -> None:
    lookups = Lookups(["203.0.113.80"], delay=0.01)
    resolver = Resolver(lookups)

    async def burst() -> list[list[str]]:
        return await asyncio.gather(*(resolver.resolve("registry", 443) for _ in range(50)))

    assert asyncio.run(burst()) == [["203.0.113.80"]] * 50
    assert lookups.calls == 1


def test_an_answer_is_reused_while_fresh_then_looked_up_again() -> None:
    lookups, clock = Lookups(["10.0.0.1"], ["10.0.0.2"]), Clock()
    resolver = Resolver(lookups, fresh_s=30, clock=clock)

    async def scenario() -> list[list[str]]:
        first = await resolver.resolve("registry", 443)
        clock.now += 29
        second = await resolver.resolve("registry", 443)
        clock.now += 2
        third = await resolver.resolve("registry", 443)
        return [first, second, third]

    assert asyncio.run(scenario()) == [["10.0.0.1"], ["10.0.0.1"], ["10.0.0.2"]]
    assert lookups.calls == 2


def test_a_failed_lookup_serves_the_last_good_answer_until_it_is_too_old() -> None:
    lookups, clock = Lookups(["10.0.0.1"], TEMPORARY, TEMPORARY), Clock()
    resolver = Resolver(lookups, fresh_s=30, stale_s=600, clock=clock)

    async def scenario() -> list[str]:
        await resolver.resolve("registry", 443)
        clock.now += 300
        stale = await resolver.resolve("registry", 443)
        clock.now += 301
        with pytest.raises(socket.gaierror):
            await resolver.resolve("registry", 443)
        return stale

    assert asyncio.run(scenario()) == ["10.0.0.1"]


def test_a_failure_with_no_answer_before_it_is_raised() -> None:
    resolver = Resolver(Lookups(TEMPORARY, []))
    with pytest.raises(socket.gaierror):
        asyncio.run(resolver.resolve("registry", 443))
    with pytest.raises(OSError, match="no address for registry"):
        asyncio.run(resolver.resolve("registry", 443))


def test_names_and_ports_are_kept_apart() -> None:
    lookups = Lookups(["10.0.0.1"], ["10.0.0.2"], ["10.0.0.3"])
    resolver = Resolver(lookups)

    async def scenario() -> list[list[str]]:
        return [
            await resolver.resolve("a", 443),
            await resolver.resolve("b", 443),
            await resolver.resolve("a", 8443),
        ]

    assert asyncio.run(scenario()) == [["10.0.0.1"], ["10.0.0.2"], ["10.0.0.3"]]


def test_a_caller_that_gives_up_does_not_cancel_the_lookup_the_others_wait_for() -> None:
    lookups = Lookups(["10.0.0.1"], delay=0.05)
    resolver = Resolver(lookups)

    async def scenario() -> list[str]:
        impatient = asyncio.ensure_future(resolver.resolve("registry", 443))
        patient = asyncio.ensure_future(resolver.resolve("registry", 443))
        await asyncio.sleep(0.01)
        impatient.cancel()
        return await patient

    assert asyncio.run(scenario()) == ["10.0.0.1"]
    assert lookups.calls == 1
