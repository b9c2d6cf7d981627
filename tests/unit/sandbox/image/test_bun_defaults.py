from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import SandboxError
from orchestrator.sandbox.image import bun_defaults
from orchestrator.sandbox.image.bun_defaults import parse_default_trusted, read_default_trusted

OUTPUT = "Default trusted dependencies (3):\n - @swc/core\n - esbuild\n - sharp\n"


def test_parses_bun_pm_default_trusted() -> None:
    assert parse_default_trusted(OUTPUT) == {"@swc/core", "esbuild", "sharp"}


@pytest.mark.parametrize(
    "text",
    [
        "",
        " - esbuild\n",  # no header
        "Default trusted dependencies (2):\n - esbuild\n",  # fewer than counted
        "Default trusted dependencies (1):\n - esbuild\n - sharp\n",  # more than counted
        "Default trusted dependencies (2):\n - esbuild\n - esbuild\n",  # repeated
        "Default trusted dependencies (1):\n - $(touch x)\n",  # not a package name
        "error: something else\n",
    ],
)
def test_refuses_anything_but_the_exact_list(text: str) -> None:
    with pytest.raises(ValueError):
        parse_default_trusted(text)


class FakeImages:
    def get(self, name: str) -> Any:
        return type("Image", (), {"id": "sha256:" + name.replace(":", "-")})()


class FakeContainer:
    def __init__(self, output: bytes) -> None:
        self.output = output
        self.removed = False

    def start(self) -> None:
        pass

    def wait(self, timeout: int) -> dict[str, int]:
        return {"StatusCode": 0}

    def logs(self, stdout: bool, stderr: bool) -> bytes:
        return self.output

    def remove(self, force: bool) -> None:
        self.removed = True


class FakeContainers:
    def __init__(self, output: bytes) -> None:
        self.output = output
        self.runs: list[dict[str, Any]] = []
        self.made: list[FakeContainer] = []

    def create(self, image: str, command: list[str], **options: Any) -> FakeContainer:
        self.runs.append({"image": image, "command": command, **options})
        self.made.append(FakeContainer(self.output))
        return self.made[-1]


class FakeClient:
    def __init__(self, output: bytes) -> None:
        self.images = FakeImages()
        self.containers = FakeContainers(output)


def test_reads_once_per_image_then_from_the_cache(tmp_path: Path) -> None:
    bun_defaults._READ.clear()
    client = FakeClient(OUTPUT.encode())
    first = read_default_trusted(client, "img:1", uid=1000, cache_dir=tmp_path, instance="t")
    bun_defaults._READ.clear()  # a new worker process: the file cache answers
    again = read_default_trusted(client, "img:1", uid=1000, cache_dir=tmp_path, instance="t")
    assert first == again == {"@swc/core", "esbuild", "sharp"}
    (run,) = client.containers.runs
    assert run["network_mode"] == "none" and run["read_only"] and run["cap_drop"] == ["ALL"]
    assert run["command"][-2:] == ["pm", "default-trusted"]
    assert all(c.removed for c in client.containers.made)
    read_default_trusted(client, "img:2", uid=1000, cache_dir=tmp_path, instance="t")
    assert len(client.containers.runs) == 2  # another image id: read again


def test_unreadable_output_is_a_sandbox_error_and_not_cached(tmp_path: Path) -> None:
    bun_defaults._READ.clear()
    client = FakeClient(b"Usage: bun pm <command>\n")
    with pytest.raises(SandboxError, match="default trusted"):
        read_default_trusted(client, "img:3", uid=1000, cache_dir=tmp_path, instance="t")
    assert list(tmp_path.iterdir()) == []


def test_the_read_container_is_one_the_janitor_leaves_alone_while_it_runs() -> None:
    from orchestrator.builds.warm import WARM_LABEL
    from orchestrator.sandbox.image.bun_defaults import READ_LABELS
    from orchestrator.sandbox.runner import LABEL_BUILD

    # A container with no kiln.build label would be an orphan of a dead build and removed
    # at once, between its start and the read of its output (seen in an integration run).
    assert READ_LABELS[LABEL_BUILD] == WARM_LABEL
