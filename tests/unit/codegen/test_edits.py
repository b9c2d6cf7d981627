"""Unit tests for orchestrator.codegen.edits: the model's files get a submit's checks."""

from __future__ import annotations

import json

import pytest

from orchestrator.codegen.edits import apply_answer
from orchestrator.codegen.schema import Answer
from orchestrator.errors import GenerationError
from orchestrator.project.input import InputLimits

MANIFEST = json.dumps({"name": "x", "scripts": {"build": "node build.js"}}).encode()
BASE = {"package.json": MANIFEST, "build.js": b"old", "src/old.js": b"gone soon"}
LIMITS = InputLimits(max_files=10, max_file_bytes=1000, max_total_bytes=5000)
HOSTS = ["registry.npmjs.org"]
GIT_DEPENDENCY = json.dumps(
    {"name": "x", "scripts": {"build": "node build.js"}, "dependencies": {"x": "github:a/b"}}
)
EXEC_DEPENDENCY = json.dumps({"name": "a", "dependencies": {"g": "exec:./g.js"}})


def edit(files: dict[str, str], deletions: list[str] | None = None) -> Answer:
    return Answer(summary="", files=files, deletions=deletions or [])


def test_files_overlay_and_deletions_remove() -> None:
    answer = edit({"build.js": "new", "./src/new.js": "n"}, ["src/old.js"])
    result = apply_answer(BASE, answer, LIMITS, HOSTS)
    assert result.files == {"package.json": MANIFEST, "build.js": b"new", "src/new.js": b"n"}
    assert result.written == {"build.js": "new", "src/new.js": "n"}
    assert result.deleted == ["src/old.js"]


def test_deleting_an_absent_file_is_not_recorded() -> None:
    assert apply_answer(BASE, edit({"a.js": "1"}, ["nope.js"]), LIMITS, HOSTS).deleted == []


@pytest.mark.parametrize(
    ("files", "deletions", "needle"),
    [
        ({"../escape.js": "x"}, [], "escapes the project"),
        ({"/etc/passwd": "x"}, [], "absolute path"),
        ({"node_modules/x/index.js": "x"}, [], "node_modules"),
        ({"a.js": "x" * 2000}, [], "limit is 1000"),
        ({f"f{i}.js": "x" for i in range(10)}, [], "more than 10 files"),
        ({"a.js": "x"}, ["package.json"], "no package.json"),
        ({"package.json": "{not json"}, [], "not valid JSON"),
        ({"package.json": json.dumps({"name": "x"})}, [], 'no "build" script'),
        ({"a.js": "x"}, ["../../etc"], "escapes the project"),
        ({"package.json": GIT_DEPENDENCY}, [], "dependencies.x"),
        ({"packages/a/package.json": EXEC_DEPENDENCY}, [], "yarn's exec: protocol"),
    ],
)
def test_unacceptable_files_are_refused_as_invalid_output(
    files: dict[str, str], deletions: list[str], needle: str
) -> None:
    with pytest.raises(GenerationError, match=needle) as info:
        apply_answer(BASE, edit(files, deletions), LIMITS, HOSTS)
    assert info.value.code == "invalid_model_output"
    assert "the model's files were refused" in info.value.message
