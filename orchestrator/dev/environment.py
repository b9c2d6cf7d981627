"""A dev session's build environment at its start: the same choice a build makes. Pure.

The API checks the start's ``node`` against the image's offer, as a build submit's is
(``400 unsupported_environment`` when it is not offered), and answers with the
environment a build of the session's files would get. The dev worker chooses again from
the same files before each install (``dev/install.py``), so the record always states
what runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.project.environment import (
    ENVIRONMENT_FILES,
    Offer,
    check_request,
    choose_environment,
)


def requested_node(offer: Offer, node: object) -> int | None:
    """The start's Node major, checked against ``offer`` (None: it asked for none)."""
    if node is None or node == "":
        return None
    return check_request(offer, node)


def session_environment(
    offer: Offer, manifest: Mapping[str, Any], files: Mapping[str, bytes], node: int | None
) -> dict[str, str]:
    """``{node, package_manager}`` (full versions) a build of ``files`` would run with."""
    facts = {name: files[name] for name in ENVIRONMENT_FILES if name in files}
    return choose_environment(offer, manifest, facts, node).public()
