"""What the sandbox image holds and where, shared by the modules that build it.

The Debian suite, the npm release line, the unprivileged ``kiln`` user, the
image's paths and its labels. ``sandbox_images/node/Dockerfile`` states the
same facts for the Dockerfile build; keep the two in step.
"""

from __future__ import annotations

from collections.abc import Callable

SUITE = "bookworm"
NPM_MAJOR = 10  # the npm line that ships with Node 22; npm 11 changes install scripts
KILN_UID = 10001
KILN_GID = 10001
KILN_USER = "kiln"
KILN_HOME = "/home/kiln"
WORKSPACE = "/workspace"
IMAGE_PATH = "/usr/local/bin:/usr/bin:/bin"

LABEL_DIGEST = "kiln.image.digest"
LABEL_NODE_VERSION = "kiln.node.version"

#: The progress callback every step takes (one line of text per call).
Log = Callable[[str], None]
