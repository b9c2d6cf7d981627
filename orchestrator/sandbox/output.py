"""A step's output and its watchdog: lines from Docker's stream, the deadline, the cancel.

Shared by a step in its own container and one in an idle container (``runner``), and by a
dev session's log (``dev/manager``).
"""

from __future__ import annotations

import codecs
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests.exceptions

from orchestrator.sandbox.protocol import OutputSink

POLL_S = 0.2
ENDED_POLLS = 2  # polls that see a step's process gone before its output is cut off


@dataclass
class Pumped:
    """What reading a step's output came to."""

    bytes: int = 0
    overflow: bool = False


class LineSplitter:
    """Turns a byte stream into complete text lines, decoding UTF-8 across chunk borders."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    def feed(self, chunk: bytes) -> list[str]:
        """Add bytes; return the lines they complete."""
        text = self._pending + self._decoder.decode(chunk)
        *lines, self._pending = text.split("\n")
        return [line.rstrip("\r") for line in lines]

    def close(self) -> list[str]:
        """Return whatever is left as a last line."""
        rest = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return [rest.rstrip("\r")] if rest else []


def pump(frames: Any, on_output: OutputSink, budget: int | None) -> Pumped:
    """Read Docker's demultiplexed frames to their end as lines to ``on_output``; past
    ``budget`` bytes stop reading (``overflow``)."""
    splitters = {"stdout": LineSplitter(), "stderr": LineSplitter()}
    pumped = Pumped()
    for out, err in frames:
        for name, chunk in (("stdout", out), ("stderr", err)):
            if chunk:
                pumped.bytes += len(chunk)
                lines = splitters[name].feed(chunk)
                if lines:
                    on_output(name, lines)
        if budget is not None and pumped.bytes > budget:
            pumped.overflow = True
            frames.close()
            return pumped
    for name, splitter in splitters.items():
        rest = splitter.close()
        if rest:
            on_output(name, rest)
    return pumped


class Watchdog(threading.Thread):
    """Kills the container at its deadline or when the build is cancelled (or, for a step
    run in an idle container, once the step's own process has ended: whatever it left
    running ends with it, as in a container of its own)."""

    def __init__(
        self,
        container: Any,
        deadline: float,
        should_cancel: Callable[[], bool],
        ended: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.container = container
        self.deadline = deadline
        self.should_cancel = should_cancel
        self.ended = ended
        self.done = threading.Event()
        self.timed_out = False
        self.cancelled = False

    def run(self) -> None:
        ended_polls = 0
        while not self.done.wait(POLL_S):
            if time.monotonic() >= self.deadline:
                self.timed_out = True
            elif self.should_cancel():
                self.cancelled = True
            elif self.ended is None or not self._ended():
                ended_polls = 0
                continue
            else:  # the step's process is gone but its output is held open
                ended_polls += 1
                if ended_polls < ENDED_POLLS:  # the stream may just be closing
                    continue
            with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
                self.container.kill()
            return

    def _ended(self) -> bool:
        try:
            return self.ended is not None and self.ended()
        except (docker.errors.APIError, requests.exceptions.RequestException):
            return False


class ContainerById:
    """A container known by id only (what the watchdog kills)."""

    def __init__(self, client: docker.DockerClient, container_id: str) -> None:
        self.client, self.id = client, container_id

    def kill(self) -> None:
        self.client.api.kill(self.id)
