"""Where a dev session's app is in its files, and what its install reads from them. Pure.

A start may name the app's folder (``root``), as a build submit may: the same checks and
the same refusal (``project/app_folder.py``), the same install folder (a workspace member
installs at its workspace root). Edits keep naming files from the project's top.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.dev.vite import dependency_digest
from orchestrator.project import app_folder, dependency_sources
from orchestrator.project.app_folder import PNPM_WORKSPACE, AppLayout
from orchestrator.project.environment import ENVIRONMENT_FILES
from orchestrator.project.input import Files, parse_package_json

#: The files of the install folder that choose and drive the install.
INSTALL_FACTS = ("package.json", *ENVIRONMENT_FILES, PNPM_WORKSPACE)


def session_layout(files: Mapping[str, bytes], root: str | None) -> AppLayout:
    """The app's folder (``root``, already checked by ``app_folder.check_root``) and its
    install folder; 400 ``invalid_project`` as a build submit when the app is not there."""
    app_folder.require_app(files, root)
    return app_folder.layout(root, files)


def is_fact(path: str) -> bool:
    """Whether a session file may be one that :func:`session_facts` reads (by its name)."""
    return posixpath.basename(path) in INSTALL_FACTS


@dataclass(frozen=True)
class SessionFacts:
    """What a session's install reads: where the app is, the install folder's package.json
    and environment files (by bare name: lockfiles, ``.nvmrc``, ...), the app's package.json."""

    layout: AppLayout
    manifest: dict[str, Any]  # the install folder's package.json
    app_manifest: dict[str, Any]
    files: dict[str, bytes]  # the install folder's environment files, package.json left out

    @property
    def dependencies(self) -> str:
        """The digest of the dependency fields: a change means install and restart (the
        app's and, for a workspace member, its workspace root's)."""
        if self.layout.app == self.layout.install:
            return dependency_digest(self.manifest)
        both = f"{dependency_digest(self.manifest)}:{dependency_digest(self.app_manifest)}"
        return hashlib.sha256(both.encode()).hexdigest()[:16]


def _within(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def session_facts(files: Files, root: str | None) -> SessionFacts:
    """The facts of the app in ``root`` from the session's files (all of them, or those
    :func:`is_fact` keeps)."""
    layout = session_layout(files, root)
    dependency_sources.check_no_exec(files)
    install_json = _within(layout.install, "package.json")
    app_json = _within(layout.app, "package.json")
    manifest = parse_package_json(files, install_json)
    app_manifest = manifest if app_json == install_json else parse_package_json(files, app_json)
    facts = {
        name: files[_within(layout.install, name)]
        for name in INSTALL_FACTS
        if name != "package.json" and _within(layout.install, name) in files
    }
    return SessionFacts(layout, manifest, app_manifest, facts)
