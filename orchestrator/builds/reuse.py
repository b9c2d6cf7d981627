"""Identical input, earlier artifact: answering a submit without building.

Same source digest, same sandbox image, same output-relevant settings → the newest
successful build of that input still has its ``dist/``: the new build record is finished
at once, marked ``reused_from``, and gets its own copy of the artifact (hard links in a
folder, server-side copies in S3), so deleting either build's artifact never breaks the
other's preview.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import docker.errors

from orchestrator.builds import lifecycle
from orchestrator.cache.keys import input_key, source_digest
from orchestrator.context import Context
from orchestrator.project.input import Files
from orchestrator.records.models import Build

log = logging.getLogger("kiln.cache")


def input_digest(
    ctx: Context,
    files: Files,
    env: Mapping[str, str] | None = None,
    requested_node: int | None = None,
    root: str | None = None,
) -> str | None:
    """The reuse key of a project on this server, or None when the image cannot be seen.
    ``requested_node``: the submit's Node major, when it asked for one; ``root``: the app's
    folder, when not at the top (one source may hold several apps)."""
    try:
        image_id = ctx.sandbox.toolchain().image_id
    except (docker.errors.DockerException, OSError) as exc:
        log.warning("identical-input reuse off for this submit: %s", exc)
        return None
    s = ctx.settings
    settings: dict[str, object] = {"registry": s.npm_registry, "node_major": s.node_major}
    if requested_node is not None:  # the same source asked to build on another Node
        settings["requested_node"] = requested_node
    if root is not None:  # absent at the top: the keys of earlier builds stay valid
        settings["root"] = root
    return input_key(source_digest(files), image_id=image_id, settings=settings, env=env)


def earlier_artifact(ctx: Context, digest: str) -> Build | None:
    """The newest successful build of this input whose dist/ is still there."""
    for build in ctx.store.find_succeeded(digest):
        if ctx.storage.has_artifact(build.id):
            return build
    return None


def answer_from(ctx: Context, earlier: Build, build: Build, source_tar: bytes) -> Build | None:
    """Finish ``build`` (not yet stored) at once with ``earlier``'s artifact; None when that
    artifact went away meanwhile (then the build is built as usual)."""
    if not ctx.storage.reuse_artifact(earlier.id, build.id):
        return None
    ctx.storage.write_source(build.id, source_tar)  # kept as a built one keeps it
    ctx.storage.keep_source(build.id)
    return lifecycle.answer_reused(ctx, build, earlier)
