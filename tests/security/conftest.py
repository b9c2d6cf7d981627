"""A Kiln stack for attacks: two workers, so each attack runs beside a normal build.

Limits are set low so that bombs and floods end quickly; the normal build fits in them.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.integration.conftest import (  # kiln_containers is a fixture for the tests here
    REDIS_URL,
    WRITE_DIST,
    Stack,
    kiln_containers,
    node_project,
    require_services,
    start_stack,
)

__all__ = ["kiln_containers"]

LIMITS_ENV = {
    "KILN_MAX_LOG_MB": "2",
    "KILN_WORKSPACE_MB": "256",
    "KILN_TIMEOUT_S": "60",
    "KILN_PIDS_LIMIT": "128",
}


@pytest.fixture(scope="session")
def hostile_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_services()
    redis.Redis.from_url(REDIS_URL).ping()
    with start_stack(
        tmp_path_factory.mktemp("kiln-security"), workers=2, extra_env=LIMITS_ENV
    ) as running:
        yield running


class Beside:
    """Runs one attack build next to a normal build and checks the normal one still works."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def attack(self, files: dict[str, str], **submit: Any) -> tuple[str, dict[str, Any]]:
        """Submit ``files`` and a normal build together; return the attack's (id, end)."""
        normal = self.stack.client.submit_files(node_project(WRITE_DIST), project="bystander")
        attack = self.stack.client.submit_files(files, project="attacker", **submit)
        end = self.stack.wait(attack["id"])
        bystander = self.stack.wait(normal["id"])
        assert bystander["status"] == "succeeded", bystander
        assert "fixture" in self.stack.preview(normal["id"]).text
        return attack["id"], end


class Decoy:
    """A TCP service on all of the host's addresses that records who reached it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("0.0.0.0", 0))
        self.port = int(self.server.getsockname()[1])
        self.peers: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, peer = self.server.accept()
            except OSError:
                return
            self.peers.append(str(peer[0]))
            conn.close()


@pytest.fixture
def decoy() -> Iterator[Decoy]:
    """A host service listening on 0.0.0.0, as a careless operator might run one."""
    service = Decoy()
    with socket.create_connection(("127.0.0.1", service.port), timeout=5):
        pass  # the decoy answers from the host itself
    yield service
    service.server.close()


@pytest.fixture
def beside(hostile_stack: Stack) -> Beside:
    return Beside(hostile_stack)
