"""Which files of a project folder ``kiln submit DIR`` uploads.

Left out: ``node_modules``, ``.git`` and ``dist``; whatever the folder's ``.gitignore``
files list (matched by ``pathspec`` as git does); and ``.env.local`` / ``.env.*.local``,
which Vite and Vercel treat as a machine's own secrets. Build settings belong in the
submit's ``env`` instead (``kiln submit --env K=V``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

SKIP_DIRS = frozenset({"node_modules", ".git", "dist"})
LOCAL_SECRETS = pathspec.GitIgnoreSpec.from_lines([".env.local", ".env.*.local"])


@dataclass
class Selection:
    """The files to upload (relative POSIX paths) and what was left out, and why."""

    files: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)  # path -> reason


def _ignored(specs: dict[str, pathspec.GitIgnoreSpec], relative: str, is_dir: bool) -> bool:
    """Whether a path is ignored by the .gitignore of any folder above it."""
    for base, spec in specs.items():
        if base and not relative.startswith(base + "/"):
            continue
        inner = relative[len(base) + 1 :] if base else relative
        if spec.match_file(inner + ("/" if is_dir else "")):
            return True
    return False


def select_files(root: Path) -> Selection:
    """Walk ``root`` and decide, file by file, what a submit uploads."""
    selection = Selection()
    specs: dict[str, pathspec.GitIgnoreSpec] = {}
    for folder, dirs, files in os.walk(root):
        here = Path(folder).relative_to(root).as_posix()
        here = "" if here == "." else here
        gitignore = Path(folder, ".gitignore")
        if gitignore.is_file():
            lines = gitignore.read_text(encoding="utf-8", errors="replace").splitlines()
            specs[here] = pathspec.GitIgnoreSpec.from_lines(lines)
        kept = []
        for name in sorted(dirs):
            relative = f"{here}/{name}" if here else name
            if name in SKIP_DIRS:
                continue  # always left out, not worth a line of output
            if _ignored(specs, relative, is_dir=True):
                selection.left_out[relative + "/"] = ".gitignore"
            else:
                kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            relative = f"{here}/{name}" if here else name
            if Path(folder, name).is_symlink():
                selection.left_out[relative] = "symbolic link"
            elif LOCAL_SECRETS.match_file(relative):
                selection.left_out[relative] = "local secrets (.env.local, .env.*.local)"
            elif _ignored(specs, relative, is_dir=False):
                selection.left_out[relative] = ".gitignore"
            else:
                selection.files.append(relative)
    return selection


def folder_problem(path: Path, *, with_template: bool, root: str | None = None) -> str | None:
    """Why ``path`` cannot be submitted as a project folder, in words; None when it can.

    A missing path, a file, an empty folder and a folder without ``package.json`` are
    different mistakes; each gets its own words. With a template, the folder is laid over
    it, so the template's ``package.json`` may do. ``root``: the app's folder inside it
    (``--root``). A folder whose app is in a subfolder is left to the server, whose answer
    names that subfolder.
    """
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_dir():
        return f"{path} is a file, not a project folder (give the folder with package.json)"
    if with_template:
        return None
    if not any(path.iterdir()):
        return f"{path} is an empty folder: there is nothing to build"
    return _manifest_problem(path, root)


def _manifest_problem(path: Path, root: str | None) -> str | None:
    if root is not None:
        if not (path / root / "package.json").is_file():
            return f"{path / root} has no package.json (--root {root})"
        return None
    if not (path / "package.json").is_file() and not _nested_package_json(path):
        return f"{path} has no package.json, so it is not a Node project"
    return None


def _nested_package_json(path: Path, depth: int = 3) -> bool:
    """True when a folder up to ``depth`` below ``path`` (not node_modules, not a
    dot-folder) holds a package.json."""
    for here, dirs, files in os.walk(path):
        level = len(Path(here).relative_to(path).parts)
        if level and "package.json" in files:
            return True
        dirs[:] = (
            []
            if level >= depth
            else [d for d in dirs if d != "node_modules" and not d.startswith(".")]
        )
    return False
