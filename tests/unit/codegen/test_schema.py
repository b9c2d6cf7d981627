"""Unit tests for orchestrator.codegen.schema: parsing the model's structured answer."""

from __future__ import annotations

import json

import pytest

from orchestrator.codegen.schema import ANSWER_SCHEMA, RESPONSE_FORMAT, parse_answer
from orchestrator.errors import GenerationError


def answer(**fields: object) -> str:
    body = {"summary": "made it", "files": [], "delete": [], **fields}
    return json.dumps(body)


def test_files_and_deletions_are_read() -> None:
    parsed = parse_answer(
        answer(files=[{"path": "src/App.tsx", "content": "x"}], delete=["src/old.ts"])
    )
    assert parsed.files == {"src/App.tsx": "x"}
    assert parsed.deletions == ["src/old.ts"]
    assert parsed.summary == "made it"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (None, "empty"),
        ("   ", "empty"),
        ("Sure! Here is your app: {", "not valid JSON"),
        ('{"files": [', "not valid JSON"),
        ("[1, 2]", "does not match the schema"),
        (json.dumps({"files": [{"path": "a"}]}), "files.0.content"),
        (answer(files=[{"path": "a", "content": "x", "mode": 7}]), "does not match"),
        (answer(files="src/App.tsx"), "does not match"),
        (answer(files=[{"path": "a", "content": "1"}, {"path": "a", "content": "2"}]), "twice"),
        (answer(), "changes no files"),
    ],
)
def test_bad_answers_fail_clearly(text: str | None, needle: str) -> None:
    with pytest.raises(GenerationError, match=needle) as info:
        parse_answer(text)
    assert info.value.code == "invalid_model_output"


def test_schema_is_strict_for_structured_outputs() -> None:
    # OpenAI strict mode: every object closed, every property required.
    assert RESPONSE_FORMAT["json_schema"]["strict"] is True
    assert ANSWER_SCHEMA["additionalProperties"] is False
    assert set(ANSWER_SCHEMA["required"]) == set(ANSWER_SCHEMA["properties"])
    item = ANSWER_SCHEMA["properties"]["files"]["items"]
    assert item["additionalProperties"] is False
    assert set(item["required"]) == set(item["properties"])
