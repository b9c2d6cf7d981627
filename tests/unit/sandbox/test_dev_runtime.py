"""Which runtimes can carry a dev session (its dev server answers on host unix sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import SandboxError
from orchestrator.sandbox.runner import check_dev_runtime

GVISOR = {"path": "/usr/bin/runsc", "runtimeArgs": ["--platform=ptrace", "--network=none"]}


class Engine:
    def __init__(self, runtimes: dict[str, Any]) -> None:
        self.runtimes = runtimes

    def info(self) -> dict[str, Any]:
        return {"Runtimes": self.runtimes}


RUNTIMES = {
    "runc": {"path": "runc"},
    "runsc": GVISOR,
    "runsc-dev": {**GVISOR, "runtimeArgs": [*GVISOR["runtimeArgs"], "--host-uds=create"]},
}


def test_docker_s_default_and_gvisor_with_host_sockets_carry_a_session() -> None:
    engine: Any = Engine(RUNTIMES)
    assert check_dev_runtime(engine, "") == "runc (Docker's default)"
    assert check_dev_runtime(engine, "runsc-dev") == "runsc-dev for dev sessions"
    assert check_dev_runtime(engine, "runc") == "runc for dev sessions"


def test_gvisor_without_host_sockets_is_refused_with_what_to_set() -> None:
    with pytest.raises(SandboxError, match="KILN_DEV_RUNTIME=runsc-dev"):
        check_dev_runtime(Engine(RUNTIMES), "runsc")  # type: ignore[arg-type]


def test_an_unregistered_runtime_is_refused_naming_those_there_are() -> None:
    with pytest.raises(SandboxError, match="it has: runc, runsc, runsc-dev"):
        check_dev_runtime(Engine(RUNTIMES), "kata")  # type: ignore[arg-type]
