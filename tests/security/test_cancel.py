"""Cancel mid-build: the container is gone within 5 s and the build ends cancelled."""

from __future__ import annotations

import time

import docker
import pytest

from tests.integration.conftest import (
    WRITE_DIST,
    Stack,
    containers_of,
    node_project,
    wait_for_phase,
)

pytestmark = pytest.mark.security

BUSY = "console.log('busy'); for (;;) {}"


def test_cancel_kills_a_busy_build_beside_a_normal_one(
    hostile_stack: Stack, kiln_containers: docker.DockerClient
) -> None:
    normal = hostile_stack.client.submit_files(
        node_project(WRITE_DIST), project="bystander", fresh=True
    )
    busy = hostile_stack.client.submit_files(node_project(BUSY), project="attacker")
    wait_for_phase(hostile_stack, busy["id"], "building")
    deadline = time.monotonic() + 30  # the phase is announced just before the container starts
    while not containers_of(kiln_containers, busy["id"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert containers_of(kiln_containers, busy["id"])  # it is running right now
    asked = time.monotonic()
    hostile_stack.client.cancel(busy["id"])
    while containers_of(kiln_containers, busy["id"]) and time.monotonic() < asked + 5:
        time.sleep(0.1)
    assert containers_of(kiln_containers, busy["id"]) == [], "container outlived 5 s"
    end = hostile_stack.wait(busy["id"])
    assert (end["status"], end["error"]["code"]) == ("cancelled", "cancelled")
    assert hostile_stack.wait(normal["id"])["status"] == "succeeded"
