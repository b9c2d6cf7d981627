"""Names to addresses for the egress proxy: one lookup per name at a time, answers reused.

A package manager opens dozens of connections to the registry at once (yarn 4 up to 50),
and the proxy used to look the name up for each. Twice here, in such a burst, a few of
those lookups failed with "Temporary failure in name resolution", and the 502s that
followed failed the install. Now concurrent lookups of one name share one, an answer is
reused for ``fresh_s``, and when a lookup fails the last good one still serves for
``stale_s`` (as resolvers' serve-stale does). The proxy checks the addresses against its
policy on every connection, cached or not.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Lookup = Callable[[str, int], Awaitable[list[str]]]

FRESH_S = 30.0
STALE_S = 600.0


async def system_lookup(host: str, port: int) -> list[str]:
    """The host's resolver, as ``getaddrinfo`` answers for a stream connection."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass
class _Answer:
    addresses: list[str]
    at: float


class Resolver:
    """Resolves ``(host, port)`` through ``lookup``, sharing and keeping its answers."""

    def __init__(
        self,
        lookup: Lookup = system_lookup,
        *,
        fresh_s: float = FRESH_S,
        stale_s: float = STALE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lookup = lookup
        self.fresh_s = fresh_s
        self.stale_s = stale_s
        self.clock = clock
        self.answers: dict[tuple[str, int], _Answer] = {}
        self.pending: dict[tuple[str, int], asyncio.Task[list[str]]] = {}

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of ``host``; raises ``OSError`` only when no usable answer exists."""
        key = (host, port)
        known = self.answers.get(key)
        if known is not None and self.clock() - known.at < self.fresh_s:
            return known.addresses
        task = self.pending.get(key)
        if task is None:
            task = asyncio.ensure_future(self._look_up(key))
            self.pending[key] = task
        try:
            return await asyncio.shield(task)  # one caller leaving does not cancel the rest
        except OSError:
            known = self.answers.get(key)
            if known is not None and self.clock() - known.at < self.stale_s:
                return known.addresses
            raise

    async def _look_up(self, key: tuple[str, int]) -> list[str]:
        try:
            addresses = await self.lookup(*key)
            if not addresses:
                raise OSError(f"no address for {key[0]}")
            self.answers[key] = _Answer(addresses, self.clock())
            return addresses
        finally:
            del self.pending[key]
