"""Unit tests for orchestrator.project.templates: the bundled templates and a tmp_path folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from orchestrator.errors import NotFound
from orchestrator.project.templates import list_templates, load_template
from orchestrator.settings import REPO_ROOT

BUNDLED = REPO_ROOT / "templates"


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def manifest(**fields: object) -> str:
    return json.dumps({"private": True, **fields})


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    return write(
        tmp_path / "templates",
        {
            "zeta/package.json": manifest(name="zeta", description="Last one"),
            "alpha/package.json": manifest(name="alpha", description="First one"),
            "alpha/index.html": "<div id=app></div>",
            "alpha/src/main.js": "import './style.css'",
            "alpha/public/logo.bin": b"\x89PNG\x00\xff",
            "alpha/node_modules/vite/index.js": "nope",
            "alpha/src/node_modules/x.js": "nope",
            "alpha/dist/index.html": "nope",
            "alpha/.git/HEAD": "nope",
            "alpha/.gitignore": "node_modules\n",
            "nodesc/package.json": manifest(name="nodesc"),
            "numeric/package.json": manifest(description=7),
            "no-manifest/index.html": "x",
            "Upper/package.json": manifest(description="bad name"),
            ".hidden/package.json": manifest(description="bad name"),
            "loose-file.json": manifest(description="not a folder"),
        },
    )


# ------------------------------------------------------------------ bundled ones


def test_bundled_templates_are_listed_sorted_with_descriptions() -> None:
    items = list_templates(BUNDLED)
    names = [t["name"] for t in items]
    assert {"react", "react-ts", "vanilla"} <= set(names)
    assert names == sorted(names)
    assert all(set(t) == {"name", "description"} and t["description"] for t in items)


@pytest.mark.parametrize("name", ["react", "react-ts", "vanilla"])
def test_bundled_templates_load(name: str) -> None:
    files = load_template(BUNDLED, name)
    assert json.loads(files["package.json"])["name"] == name
    assert "index.html" in files
    assert all(isinstance(v, bytes) for v in files.values())
    assert not any(
        part in {"node_modules", "dist", ".git"} for path in files for part in path.split("/")
    )


# --------------------------------------------------------------- list_templates


def test_list_templates_sorted_with_descriptions(root: Path) -> None:
    assert list_templates(root) == [
        {"name": "alpha", "description": "First one"},
        {"name": "nodesc", "description": ""},
        {"name": "numeric", "description": "7"},
        {"name": "zeta", "description": "Last one"},
    ]


def test_list_templates_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert list_templates(tmp_path / "nope") == []
    assert list_templates(tmp_path) == []


# ---------------------------------------------------------------- load_template


def test_load_template_reads_files_and_skips_build_folders(root: Path) -> None:
    assert load_template(root, "alpha") == {
        "package.json": manifest(name="alpha", description="First one").encode(),
        "index.html": b"<div id=app></div>",
        "src/main.js": b"import './style.css'",
        "public/logo.bin": b"\x89PNG\x00\xff",
        ".gitignore": b"node_modules\n",
    }


def test_a_file_named_like_a_skipped_folder_is_kept(root: Path) -> None:
    write(root, {"zeta/dist": "a file, not the build output"})
    assert load_template(root, "zeta")["dist"] == b"a file, not the build output"


@pytest.mark.parametrize(
    "name",
    [
        "nope",
        "no-manifest",
        "Upper",
        ".hidden",
        "",
        ".",
        "..",
        "../templates/alpha",
        "alpha/../zeta",
        "alpha/src",
        "/etc",
        "alpha\x00",
        "alpha\n",
        "a" * 65,
    ],
)
def test_unknown_or_traversal_names_are_not_found(root: Path, name: str) -> None:
    with pytest.raises(NotFound, match="available: alpha, nodesc, numeric, zeta"):
        load_template(root, name)


def test_traversal_out_of_the_root_is_not_found(tmp_path: Path, root: Path) -> None:
    write(tmp_path, {"package.json": manifest(description="outside"), "secret": "s3cr3t"})
    for name in ("..", "../templates/..", str(tmp_path)):
        with pytest.raises(NotFound):
            load_template(root, name)


@pytest.mark.parametrize("name", ["react", "react-ts", "vanilla"])
def test_bundled_templates_describe_themselves_for_code_generators(name: str) -> None:
    files = load_template(BUNDLED, name)
    agents = files["AGENTS.md"].decode()
    assert agents.startswith(f"# {name} template")
    assert "## Structure" in agents and "## Conventions" in agents
    for path in re.findall(r"`((?:src|public)/[\w./-]+\.\w+)`", agents):
        assert path in files, f"{name}/AGENTS.md names {path}, which the template lacks"


def test_tailwind_does_not_read_agents_md_as_class_names() -> None:
    # Tailwind scans every project file for class names; AGENTS.md's words are not classes.
    css = (BUNDLED / "react-ts" / "src" / "index.css").read_text()
    assert "@source not '../AGENTS.md';" in css
