"""The egress proxy: HTTPS CONNECT to allowlisted hosts, nothing else.

It resolves names itself (``resolver.py``: shared and kept answers) and connects to the
address it checked, so a name cannot be re-pointed between the check and the connection.
Run as ``python -m orchestrator.sandbox.egress``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time

from orchestrator.sandbox.egress.policy import EgressPolicy, Refused, parse_connect
from orchestrator.sandbox.egress.resolver import Resolver

log = logging.getLogger("kiln.egress")

HEADER_LIMIT = 8192
HANDSHAKE_TIMEOUT_S = 10
CONNECT_TIMEOUT_S = 10
IDLE_TIMEOUT_S = 120
CHUNK = 65536


def is_local_address(address: str) -> bool:
    """True when this host owns ``address`` (it can bind a socket to it)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True


class EgressProxy:
    """Serves CONNECT requests according to one ``EgressPolicy``."""

    def __init__(
        self, policy: EgressPolicy, max_connections: int = 256, resolver: Resolver | None = None
    ) -> None:
        self.policy = policy
        self.slots = asyncio.Semaphore(max_connections)
        self.resolver = resolver or Resolver()

    async def serve(self, host: str, port: int) -> asyncio.Server:
        """Start listening; several worker processes may share the port."""
        return await asyncio.start_server(self._handle, host, port, reuse_port=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        async with self.slots:
            try:
                await self._tunnel(reader, writer, peer)
            except Exception:  # one bad client must not stop the proxy
                log.exception("egress connection from %s failed", peer)
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    async def _tunnel(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object
    ) -> None:
        started = time.monotonic()
        try:
            head = await asyncio.wait_for(
                reader.readuntil(b"\r\n\r\n"), timeout=HANDSHAKE_TIMEOUT_S
            )
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            return
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        try:
            host, port = parse_connect(request_line)
            self.policy.check_target(host, port)
            resolved = await self.resolver.resolve(host, port)
            addresses = self.policy.check_addresses(host, resolved, is_local_address)
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(addresses[0], port), timeout=CONNECT_TIMEOUT_S
            )
        except Refused as exc:
            _record("refused", peer, request_line, str(exc))
            await _reply(writer, 403, "Forbidden", f"kiln egress: {exc}")
            return
        except (OSError, TimeoutError) as exc:
            _record("unreachable", peer, request_line, str(exc))
            await _reply(writer, 502, "Bad Gateway", "kiln egress: upstream unreachable")
            return
        _record("allowed", peer, request_line, f"{addresses[0]}")
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            upstream_writer.close()
            log.debug("tunnel to %s:%s closed after %.1f s", host, port, time.monotonic() - started)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await asyncio.wait_for(source.read(CHUNK), timeout=IDLE_TIMEOUT_S):
            sink.write(data)
            await sink.drain()
    except (OSError, TimeoutError):
        pass
    finally:
        with contextlib.suppress(OSError):
            if sink.can_write_eof():
                sink.write_eof()


async def _reply(writer: asyncio.StreamWriter, code: int, reason: str, body: str) -> None:
    payload = body.encode() + b"\n"
    writer.write(
        f"HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
        + payload
    )
    with contextlib.suppress(OSError):
        await writer.drain()


def _record(decision: str, peer: object, request: str, detail: str) -> None:
    log.info(
        json.dumps(
            {
                "egress": decision,
                "peer": str(peer),
                "request": request[:200],
                "detail": detail[:200],
            }
        )
    )


async def run(policy: EgressPolicy, host: str, port: int) -> None:
    """Serve until cancelled."""
    server = await EgressProxy(policy).serve(host, port)
    log.info("kiln egress proxy on %s:%s allowing %s", host, port, sorted(policy.hosts))
    print("ready", flush=True)  # the worker waits for this line
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> None:
    """``python -m orchestrator.sandbox.egress HOST PORT ALLOWED_HOSTS [DENIED_CIDRS]``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    host, port, allowed = argv[0], int(argv[1]), argv[2]
    denied = argv[3] if len(argv) > 3 else ""
    policy = EgressPolicy.for_registries(
        [], extra_hosts=allowed.split(","), extra_denied=[c for c in denied.split(",") if c]
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(policy, host, port))
