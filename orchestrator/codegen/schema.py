"""The structured output the model must return, and its strict parsing.

OpenAI's strict structured outputs cannot express a free-form object, so "path -> content"
is a list of ``{"path", "content"}`` pairs; each content is a whole file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.errors import ErrorCode, GenerationError

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {
            "type": "string",
            "description": "One or two sentences: what was changed and why.",
        },
        "files": {
            "type": "array",
            "description": "Files to create or replace, each with its complete new content.",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Relative path, e.g. src/App.tsx"},
                    "content": {"type": "string", "description": "The whole file."},
                },
                "required": ["path", "content"],
                "additionalProperties": False,
            },
        },
        "delete": {
            "type": "array",
            "description": "Relative paths of files to delete.",
            "items": {"type": "string"},
        },
    },
    "required": ["summary", "files", "delete"],
    "additionalProperties": False,
}

RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "project_files", "strict": True, "schema": ANSWER_SCHEMA},
}


class _FileOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    content: str


class _AnswerOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    summary: str = ""
    files: list[_FileOut]
    delete: list[str] = []


@dataclass(frozen=True)
class Answer:
    """The model's edit: whole files to write and paths to delete."""

    summary: str
    files: dict[str, str]
    deletions: list[str]


def parse_answer(text: str | None) -> Answer:
    """Parse and check the model's reply; GenerationError(invalid_model_output) if it is not one."""
    if not text or not text.strip():
        raise GenerationError(
            "the model returned an empty answer", code=ErrorCode.INVALID_MODEL_OUTPUT
        )
    try:
        raw = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        preview = " ".join(text[:120].split())
        raise GenerationError(
            f"the model's answer is not valid JSON ({exc}); it begins: {preview!r}",
            code=ErrorCode.INVALID_MODEL_OUTPUT,
        ) from None
    try:
        answer = _AnswerOut.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in exc.errors()
        )
        raise GenerationError(
            f"the model's answer does not match the schema: {problems[:500]}",
            code=ErrorCode.INVALID_MODEL_OUTPUT,
        ) from None
    files: dict[str, str] = {}
    for entry in answer.files:
        if entry.path in files:
            raise GenerationError(
                f"the model's answer writes {entry.path!r} twice",
                code=ErrorCode.INVALID_MODEL_OUTPUT,
            )
        files[entry.path] = entry.content
    if not files and not answer.delete:
        raise GenerationError(
            "the model's answer changes no files", code=ErrorCode.INVALID_MODEL_OUTPUT
        )
    return Answer(summary=answer.summary.strip(), files=files, deletions=list(answer.delete))
