"""bun's built-in list of dependencies whose install scripts it runs by default.

bun trusts a dependency's install scripts when package.json's ``trustedDependencies``
names it, or, when package.json has no such field, when it is on bun's own default list
(a list compiled into bun; ``bun pm default-trusted`` prints it). Kiln applies the same
rule (``builds.managers.bun_trusted``) with the list of the image's own bun, never a copy:
it is read once per image (:func:`read_default_trusted`), in a container without network,
and cached under ``var/cache/images`` by the image id.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any

import docker.errors
import requests.exceptions

from orchestrator.errors import SandboxError
from orchestrator.project.environment import Manager
from orchestrator.sandbox.image.toolchains import manager_dir

ARGV = [f"{manager_dir(Manager.BUN)}/bin/bun", "pm", "default-trusted"]
_HEADER = re.compile(r"^Default trusted dependencies \((\d+)\):$")
_ITEM = re.compile(r"^ - ((@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*)$")
#: Per process: a worker forks per job, so the file cache is what saves the container.
_READ: dict[str, frozenset[str]] = {}


def parse_default_trusted(text: str) -> frozenset[str]:
    """The names ``bun pm default-trusted`` printed; ValueError unless the output is exactly
    its header and as many well-formed names as the header counts."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = _HEADER.match(lines[0]) if lines else None
    if header is None:
        raise ValueError(f"no 'Default trusted dependencies (N):' header in {text[:80]!r}")
    names = []
    for line in lines[1:]:
        item = _ITEM.match(line)
        if item is None:
            raise ValueError(f"not a package name line: {line[:80]!r}")
        names.append(item.group(1))
    if len(names) != int(header.group(1)) or len(set(names)) != len(names):
        raise ValueError(f"the header counts {header.group(1)} names, the list has {len(names)}")
    return frozenset(names)


def read_default_trusted(
    client: Any, image: str, *, uid: int, cache_dir: Path | None, instance: str
) -> frozenset[str]:
    """bun's default list in ``image`` (Docker SDK client): from the cache when this image
    id was read before, else from its bun (no network, no project file). SandboxError if
    the image or its bun cannot say."""
    try:
        image_id = str(client.images.get(image).id)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise SandboxError(f"cannot inspect the sandbox image {image}: {exc}") from exc
    if image_id in _READ:
        return _READ[image_id]
    name = f"bun-default-trusted-{image_id.removeprefix('sha256:')}.txt"
    cached = cache_dir / name if cache_dir is not None else None
    if cached is not None and cached.is_file():
        text = cached.read_text()
    else:
        text = _run_bun(client, image, uid=uid, instance=instance)
    try:
        names = parse_default_trusted(text)
    except ValueError as exc:
        raise SandboxError(f"cannot read bun's default trusted list in {image}: {exc}") from exc
    if cached is not None and not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        staging = cached.with_suffix(f".{os.getpid()}.tmp")
        staging.write_text(text)
        staging.replace(cached)  # atomic: a concurrent worker reads all of it or none
    _READ[image_id] = names
    return names


# A worker's own container with no build record: the janitor leaves it alone until it is
# older than any step may run (the label builds.warm gives its warm-up containers).
READ_LABELS = {"kiln.build": "warm", "kiln.step": "bun-default-trusted"}


def _run_bun(client: Any, image: str, *, uid: int, instance: str) -> str:
    """``bun pm default-trusted`` in a locked-down container of ``image``: its stdout."""
    try:
        container = client.containers.create(
            image,
            ARGV,
            user=f"{uid}:{uid}",
            working_dir="/tmp",
            environment={"HOME": "/tmp", "DO_NOT_TRACK": "1"},
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": "rw,nosuid,nodev,size=16m"},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mem_limit="256m",
            pids_limit=64,
            labels=READ_LABELS | {"kiln.instance": instance},
        )
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise SandboxError(f"cannot run bun pm default-trusted in {image}: {exc}") from exc
    try:
        container.start()
        status = container.wait(timeout=60)
        output = container.logs(stdout=True, stderr=False)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise SandboxError(f"cannot run bun pm default-trusted in {image}: {exc}") from exc
    finally:
        # the janitor sweeps a leftover by its labels
        with contextlib.suppress(
            docker.errors.DockerException, requests.exceptions.RequestException
        ):
            container.remove(force=True)
    if status.get("StatusCode") != 0:
        raise SandboxError(f"bun pm default-trusted in {image} exited with {status}")
    return bytes(output).decode("utf-8", errors="replace")
