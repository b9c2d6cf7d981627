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

from orchestrator.artifacts import DIST
from orchestrator.cache.keys import input_key, source_digest
from orchestrator.context import Context
from orchestrator.models import Build, public_view, utcnow
from orchestrator.pipeline import SOURCE_ARCHIVE
from orchestrator.plan import Phase, Status
from orchestrator.project_input import Files

log = logging.getLogger("kiln.cache")


def input_digest(ctx: Context, files: Files, requested_node: int | None = None) -> str | None:
    """The reuse key of a project on this server, or None when the image cannot be seen."""
    try:
        image_id = str(ctx.docker.images.get(ctx.settings.sandbox_image).id)
    except (docker.errors.DockerException, OSError) as exc:
        log.warning("identical-input reuse off for this submit: %s", exc)
        return None
    s = ctx.settings
    settings = {"registry": s.npm_registry, "node_major": s.node_major}
    if requested_node is not None:  # the same source asked to build on another Node
        settings["requested_node"] = requested_node
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
        if (ctx.settings.artifacts_dir / build.id / DIST / "index.html").is_file():
            return build
    return None


def keep_source(ctx: Context, build_id: str, source_tar: bytes) -> None:
    """Keep a reused build's source as a built one keeps it (for `kiln retry` and for
    generations that edit it): in sources/ and, hard-linked, beside its artifacts."""
    source = ctx.settings.sources_dir / f"{build_id}.tar"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(source_tar)
    kept = ctx.settings.artifacts_dir / build_id / SOURCE_ARCHIVE
    kept.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, kept)
    except OSError:
        shutil.copyfile(source, kept)


def answer_from(ctx: Context, earlier: Build, build: Build, source_tar: bytes) -> Build:
    """Finish ``build`` (not yet stored) at once with ``earlier``'s artifact."""
    artifacts = ctx.settings.artifacts_dir
    destination = artifacts / build.id / DIST
    destination.parent.mkdir(parents=True, exist_ok=True)
    link_tree(artifacts / earlier.id / DIST, destination)
    keep_source(ctx, build.id, source_tar)
    now = utcnow()
    build.status, build.phase = Status.SUCCEEDED.value, Phase.DONE.value
    build.started_at = build.finished_at = now
    build.reused_from = earlier.id
    build.cache = {"reuse": "hit", "reused_from": earlier.id}
    ctx.store.add(build)
    note = f"identical input: reusing the artifact of build {earlier.id} (submit fresh to rebuild)"
    ctx.bus.note(build.id, Phase.DONE.value, note)
    ctx.bus.status(build.id, Status.SUCCEEDED.value, Phase.DONE.value)
    ctx.bus.publish(build.id, "end", public_view(build, ctx.settings.preview_url(build.id)))
    ctx.bus.archive(build.id)
    return build
