"""Identical input, earlier artifact: answering a submit without building.

Same source digest, same sandbox image, same output-relevant settings → the newest
successful build of that input still has its ``dist/``: the new build record is finished
at once, marked ``reused_from``, and gets its own hard-linked copy of the artifact (so
deleting either build's artifact never breaks the other's preview).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import docker.errors

from orchestrator.builds import lifecycle
from orchestrator.cache.keys import input_key, source_digest
from orchestrator.context import Context
from orchestrator.project.input import Files
from orchestrator.records.models import Build

log = logging.getLogger("kiln.cache")


def input_digest(ctx: Context, files: Files) -> str | None:
    """The reuse key of a project on this server, or None when the image cannot be seen."""
    try:
        image_id = ctx.sandbox.toolchain().image_id
    except (docker.errors.DockerException, OSError) as exc:
        log.warning("identical-input reuse off for this submit: %s", exc)
        return None
    s = ctx.settings
    settings = {"registry": s.npm_registry, "node_major": s.node_major}
    return input_key(source_digest(files), image_id=image_id, settings=settings)


def link_tree(source: Path, destination: Path) -> None:
    """Copy a checked dist/ tree by hard links (a plain copy across filesystems)."""
    tmp = destination.with_name(destination.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst, follow_symlinks=False)
        except OSError:
            shutil.copy2(src, dst, follow_symlinks=False)

    shutil.copytree(source, tmp, symlinks=True, copy_function=link)
    os.replace(tmp, destination)


def earlier_artifact(ctx: Context, digest: str) -> Build | None:
    """The newest successful build of this input whose dist/ is still there."""
    for build in ctx.store.find_succeeded(digest):
        if (ctx.layout.dist(build.id) / "index.html").is_file():
            return build
    return None


def answer_from(ctx: Context, earlier: Build, build: Build, source_tar: bytes) -> Build:
    """Finish ``build`` (not yet stored) at once with ``earlier``'s artifact."""
    destination = ctx.layout.dist(build.id)
    destination.parent.mkdir(parents=True, exist_ok=True)
    link_tree(ctx.layout.dist(earlier.id), destination)
    ctx.layout.write_source(build.id, source_tar)  # kept as a built one keeps it
    ctx.layout.keep_source(build.id)
    return lifecycle.answer_reused(ctx, build, earlier)
