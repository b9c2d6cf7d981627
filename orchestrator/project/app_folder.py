"""Where in a submitted project the app is, and where its install runs. Pure functions only.

A submit may name the app's folder (``"root": "front"``). Without one, the app is at the
top; a project with no top-level package.json but one folder that has one is refused with
a message that names it (:func:`require_app`). Once the app's folder is known,
:func:`layout` says where its dependencies are installed: from the nearest enclosing
workspace root (a package.json with ``workspaces`` — npm, yarn, bun — or a
``pnpm-workspace.yaml``) that lists the app as a member, else from the app's own folder.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from orchestrator.errors import ErrorCode, InputError
from orchestrator.project.lockfiles import load_yaml

PACKAGE_JSON = "package.json"
PNPM_WORKSPACE = "pnpm-workspace.yaml"
#: How deep (in folders) a package.json is looked for when the top has none.
SEARCH_DEPTH = 3
#: How many candidate folders a refusal names.
NAMED_CANDIDATES = 5
SKIPPED_FOLDERS = frozenset({"node_modules"})
MAX_ROOT_CHARS = 400  # as a submitted path (project/input.py)
# Bounds on what a hostile workspace declaration can make the API do at submit.
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_PATTERNS = 1000
MAX_PATTERN_CHARS = 400


def _invalid(message: str) -> InputError:
    return InputError(message, code=ErrorCode.INVALID_PROJECT)


def check_root(raw: object) -> str | None:
    """A submit's ``root`` as a clean relative POSIX folder path; None for the top (absent,
    empty or ``.``). 400 ``invalid_project`` for anything that could leave the project."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise _invalid(f'"root" must be a folder path such as "front", not {raw!r}')
    text = raw.strip()
    if len(text) > MAX_ROOT_CHARS:
        raise _invalid(f'"root" is longer than {MAX_ROOT_CHARS} characters')
    if "\x00" in text or "\\" in text or any(ord(ch) < 0x20 for ch in text):
        raise _invalid(f'"root" {raw[:80]!r}: a folder path with "/" only, no control characters')
    if text.startswith("/"):
        raise _invalid(f'"root" {raw[:80]!r} is absolute; give a folder inside the project')
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _invalid(f'"root" {raw[:80]!r} leaves the project; give a folder inside it')
    if any(p in SKIPPED_FOLDERS for p in parts):
        raise _invalid(f'"root" {raw[:80]!r} is inside node_modules')
    return "/".join(parts) or None


def package_folders(paths: Iterable[str], max_depth: int = SEARCH_DEPTH) -> list[str]:
    """Folders (at most ``max_depth`` deep) holding a package.json, shallowest first; folders
    under node_modules or a dot-folder are skipped."""
    found = set()
    for path in paths:
        folder, _, name = path.rpartition("/")
        if name != PACKAGE_JSON or not folder:
            continue
        parts = folder.split("/")
        if len(parts) > max_depth:
            continue
        if any(p.startswith(".") or p in SKIPPED_FOLDERS for p in parts):
            continue
        found.add(folder)
    return sorted(found, key=lambda f: (f.count("/"), f))


def require_app(paths: Iterable[str], root: str | None) -> None:
    """Refuse (400 ``invalid_project``) a project whose app cannot be found: ``root`` without
    a package.json, or no ``root`` and no top-level package.json (naming the folders that
    have one, and how to submit them)."""
    listed = set(paths)
    if root is not None:
        if f"{root}/{PACKAGE_JSON}" not in listed:
            raise _invalid(f'"root" is {root!r}, but the project has no {root}/package.json')
        return
    if PACKAGE_JSON in listed:
        return
    candidates = package_folders(listed)
    if not candidates:
        raise InputError("the project has no package.json at its root")
    if len(candidates) == 1:
        only = candidates[0]
        raise _invalid(
            f"the project has no package.json at its root, but {only}/ has one; "
            f'to build the app in {only}/, submit with "root": "{only}" '
            f"(?root={only} with a tarball, kiln submit --root {only})"
        )
    shown = ", ".join(f"{c}/" for c in candidates[:NAMED_CANDIDATES])
    more = len(candidates) - NAMED_CANDIDATES
    raise _invalid(
        f"the project has no package.json at its root; folders with one: {shown}"
        f"{f' and {more} more' if more > 0 else ''}; name the app's folder with "
        f'"root" (e.g. "root": "{candidates[0]}")'
    )


@dataclass(frozen=True)
class AppLayout:
    """Where the app is and where its install runs (folders relative to the project; ``""``
    is the top). ``workspace`` names what made ``install`` a workspace root, else None."""

    app: str = ""
    install: str = ""
    workspace: str | None = None

    @property
    def in_workspace(self) -> bool:
        """True when the install runs at a workspace root above the app."""
        return self.workspace is not None

    @property
    def root(self) -> str | None:
        """The submit's ``root`` (None at the top)."""
        return self.app or None

    def app_within_install(self) -> str:
        """The app's folder relative to the install folder (``apps/web``; ``""``: the same)."""
        if not self.install:
            return self.app
        return posixpath.relpath(self.app, self.install) if self.app != self.install else ""


def _ancestors(folder: str) -> list[str]:
    """``apps/web`` → ``["apps", ""]``: the folders above ``folder``, nearest first."""
    parts = folder.split("/")
    return ["/".join(parts[:i]) for i in range(len(parts) - 1, -1, -1)]


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def layout_files(root: str | None) -> list[str]:
    """The files :func:`layout` reads: each enclosing folder's package.json and
    pnpm-workspace.yaml."""
    if root is None:
        return []
    return [_join(f, n) for f in _ancestors(root) for n in (PACKAGE_JSON, PNPM_WORKSPACE)]


def workspace_patterns(package_json: bytes | None, pnpm_yaml: bytes | None) -> list[str] | None:
    """A folder's workspace member patterns (``["apps/*", "packages/*"]``), None when it is no
    workspace root. pnpm reads only pnpm-workspace.yaml; npm, yarn and bun ``workspaces``
    (a list, or yarn's ``{"packages": [...]}``)."""
    pnpm = _pnpm_packages(pnpm_yaml)
    if pnpm is not None:
        return pnpm
    if package_json is None or len(package_json) > MAX_MANIFEST_BYTES:
        return None
    try:
        manifest = json.loads(package_json.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    found = manifest.get("workspaces") if isinstance(manifest, dict) else None
    if isinstance(found, dict):
        found = found.get("packages")
    if not isinstance(found, list):
        return None
    return [p for p in found if isinstance(p, str)]


def _pnpm_packages(raw: bytes | None) -> list[str] | None:
    """pnpm-workspace.yaml's ``packages``; None without one (the file may hold settings only,
    such as ``onlyBuiltDependencies``)."""
    if raw is None or len(raw) > MAX_MANIFEST_BYTES:
        return None
    loaded = load_yaml(raw)
    packages = loaded.get("packages") if loaded is not None else None
    return [p for p in packages if isinstance(p, str)] if isinstance(packages, list) else None


def _segments_match(pattern: Sequence[str], path: Sequence[str]) -> bool:
    """Glob segments against path segments; ``**`` matches any number of segments. A table
    of which pattern suffix matches which path suffix, so ``**/**/**/…`` stays linear."""
    # matches[j]: pattern[i:] matches path[j:], filled from the last pattern segment back
    matches = [False] * len(path) + [True]
    for head in reversed(pattern):
        if head == "**":
            for j in range(len(path) - 1, -1, -1):
                matches[j] = matches[j] or matches[j + 1]
        else:
            matches = [
                j < len(path) and fnmatchcase(path[j], head) and matches[j + 1]
                for j in range(len(path) + 1)
            ]
    return matches[0]


def _clean_pattern(pattern: str) -> list[str]:
    return [p for p in pattern.strip().split("/") if p not in ("", ".")]


def is_member(patterns: Sequence[str], folder: str) -> bool:
    """True when ``folder`` (relative to the workspace root) matches the member patterns,
    minimatch-style (``*``, ``**``), after the ``!`` exclusions."""
    path = folder.split("/")
    kept = [p for p in patterns[:MAX_PATTERNS] if len(p) <= MAX_PATTERN_CHARS]
    included = any(_segments_match(_clean_pattern(p), path) for p in kept if p[:1] != "!")
    excluded = any(_segments_match(_clean_pattern(p[1:]), path) for p in kept if p[:1] == "!")
    return included and not excluded


def layout(root: str | None, files: Mapping[str, bytes]) -> AppLayout:
    """Where the app in ``root`` installs: the nearest enclosing workspace root that lists it
    as a member, else its own folder. ``files`` holds (at least) :func:`layout_files`."""
    if root is None:
        return AppLayout()
    for folder in _ancestors(root):
        pnpm_yaml = files.get(_join(folder, PNPM_WORKSPACE))
        patterns = workspace_patterns(files.get(_join(folder, PACKAGE_JSON)), pnpm_yaml)
        if patterns is None:
            continue
        member = posixpath.relpath(root, folder) if folder else root
        if is_member(patterns, member):
            made_by = PNPM_WORKSPACE if _pnpm_packages(pnpm_yaml) is not None else "workspaces"
            return AppLayout(app=root, install=folder, workspace=made_by)
    return AppLayout(app=root, install=root)
