"""The proxy's protocol handling, on loopback with an echo server standing in for a registry."""

from __future__ import annotations

import asyncio
import socket

import pytest

from orchestrator.sandbox.egress import proxy as proxy_module
from orchestrator.sandbox.egress.policy import EgressPolicy
from orchestrator.sandbox.egress.proxy import EgressProxy
from orchestrator.sandbox.egress.resolver import Resolver


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data.upper())
        await writer.drain()
    writer.close()


async def exchange(
    policy: EgressPolicy, request: bytes, payload: bytes = b"", resolver: Resolver | None = None
) -> bytes:
    proxy = await EgressProxy(policy, resolver=resolver).serve("127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    async with proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        if head.startswith(b"HTTP/1.1 200") and payload:
            writer.write(payload)
            await writer.drain()
            body = await reader.readexactly(len(payload))
        else:
            body = await reader.read()
        writer.close()
        return head + body


def run(coro: object) -> bytes:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_an_allowed_connect_is_tunnelled_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proxy_module, "is_local_address", lambda _address: False)

    async def scenario() -> bytes:
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        policy = EgressPolicy(hosts=frozenset({"localhost"}), ports=frozenset({port}), denied=())
        async with server:
            return await exchange(
                policy, f"CONNECT localhost:{port} HTTP/1.1\r\n\r\n".encode(), b"hello"
            )

    reply = run(scenario())
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"HELLO")


def test_a_name_that_does_not_resolve_gets_a_502() -> None:
    async def failing(host: str, port: int) -> list[str]:
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    policy = EgressPolicy(hosts=frozenset({"registry"}), ports=frozenset({443}), denied=())
    request = b"CONNECT registry:443 HTTP/1.1\r\n\r\n"
    reply = run(exchange(policy, request, resolver=Resolver(failing)))
    assert reply.startswith(b"HTTP/1.1 502") and b"upstream unreachable" in reply


@pytest.mark.parametrize(
    ("request_bytes", "status", "reason"),
    [
        (b"CONNECT example.com:443 HTTP/1.1\r\n\r\n", b"403", b"not on the allowlist"),
        (b"GET http://localhost/ HTTP/1.1\r\n\r\n", b"403", b"only CONNECT"),
        (b"CONNECT localhost:443 HTTP/1.1\r\n\r\n", b"403", b"non-public address"),
        (b"CONNECT localhost:22 HTTP/1.1\r\n\r\n", b"403", b"port 22"),
    ],
)
def test_refusals_say_why(request_bytes: bytes, status: bytes, reason: bytes) -> None:
    policy = EgressPolicy.for_registries([], extra_hosts=["localhost"])
    reply = run(exchange(policy, request_bytes))
    assert reply.startswith(b"HTTP/1.1 " + status)
    assert reason in reply
