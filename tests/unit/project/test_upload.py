from __future__ import annotations

import io
import tarfile
from pathlib import Path

from orchestrator.client import tar_project
from orchestrator.project.upload import select_files


def make(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_gitignore_and_local_env_files_stay_home(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "package.json": "{}",
            ".gitignore": ".env\n*.log\nsecrets/\n!keep.log\n",
            ".env": "KEY=1",
            ".env.local": "KEY=2",
            ".env.production.local": "KEY=3",
            ".env.production": "VITE_X=public",
            "debug.log": "",
            "keep.log": "",
            "secrets/a.txt": "",
            "src/main.js": "",
            "src/.gitignore": "gen.js\n",
            "src/gen.js": "",
            "node_modules/x/index.js": "",
        },
    )
    selection = select_files(tmp_path)
    assert selection.files == [
        ".env.production",
        ".gitignore",
        "keep.log",
        "package.json",
        "src/.gitignore",
        "src/main.js",
    ]
    assert set(selection.left_out) == {
        ".env",
        ".env.local",
        ".env.production.local",
        "debug.log",
        "secrets/",
        "src/gen.js",
    }
    with tarfile.open(fileobj=io.BytesIO(tar_project(tmp_path))) as archive:
        assert sorted(archive.getnames()) == selection.files


def test_without_gitignore_everything_but_the_usual_folders_goes(tmp_path: Path) -> None:
    make(tmp_path, {"package.json": "{}", ".env": "VITE_A=1", "dist/x": "", ".git/HEAD": ""})
    selection = select_files(tmp_path)
    assert selection.files == [".env", "package.json"]
    assert selection.left_out == {}


def test_each_wrong_folder_gets_its_own_words(tmp_path: Path) -> None:
    from orchestrator.project.upload import folder_problem

    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "no-manifest").mkdir()
    (tmp_path / "no-manifest" / "index.html").write_text("x")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "package.json").write_text("{}")
    problems = {
        name: folder_problem(tmp_path / name, with_template=False)
        for name in ("missing", "file.txt", "empty", "no-manifest", "app")
    }
    assert problems["missing"] == f"{tmp_path / 'missing'} does not exist"
    assert "is a file, not a project folder" in str(problems["file.txt"])
    assert "is an empty folder" in str(problems["empty"])
    assert "has no package.json" in str(problems["no-manifest"])
    assert problems["app"] is None
    # Laid over a template, a folder needs no package.json of its own.
    assert folder_problem(tmp_path / "no-manifest", with_template=True) is None
    assert folder_problem(tmp_path / "missing", with_template=True) is not None
