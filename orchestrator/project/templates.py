"""Bundled project templates: a folder each under templates/, described by its package.json."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from orchestrator.errors import NotFound
from orchestrator.project.input import Files

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
SKIP_DIRS = frozenset({"node_modules", "dist", ".git"})


def list_templates(root: Path) -> list[dict[str, str]]:
    """Every template's name and description, sorted by name."""
    items = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        manifest = folder / "package.json"
        if folder.is_dir() and NAME.match(folder.name) and manifest.is_file():
            description = json.loads(manifest.read_text()).get("description", "")
            items.append({"name": folder.name, "description": str(description)})
    return items


def load_template(root: Path, name: str) -> Files:
    """The files of template ``name``; NotFound for an unknown name."""
    folder = root / name
    if not NAME.match(name) or not (folder / "package.json").is_file():
        known = ", ".join(t["name"] for t in list_templates(root))
        raise NotFound(f"no template {name!r} (available: {known})")
    files: Files = {}
    for current, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for filename in names:
            path = Path(current, filename)
            files[path.relative_to(folder).as_posix()] = path.read_bytes()
    return files
