"""Applying the model's answer to a project, with the same input checks as a submit. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.codegen.schema import Answer
from orchestrator.errors import ErrorCode, GenerationError, InputError, PayloadTooLarge
from orchestrator.project import dependency_sources
from orchestrator.project.input import (
    Files,
    InputLimits,
    files_from_mapping,
    normalize_path,
    overlay,
    parse_package_json,
)
from orchestrator.project.npm import check_buildable


@dataclass(frozen=True)
class Edit:
    """A checked answer: the project after it, and what it wrote and deleted."""

    files: Files
    written: dict[str, str]
    deleted: list[str]


def check_totals(files: Files, limits: InputLimits) -> None:
    """Refuse a project over the submit bounds on file count and total size."""
    if len(files) > limits.max_files:
        raise PayloadTooLarge(f"project has more than {limits.max_files} files")
    if sum(len(data) for data in files.values()) > limits.max_total_bytes:
        raise PayloadTooLarge(f"project exceeds {limits.max_total_bytes} bytes in total")


def apply_answer(
    base: Files, answer: Answer, limits: InputLimits, registry_hosts: Iterable[str]
) -> Edit:
    """``base`` with the answer's files written and deletions removed; checked like a submit.

    That includes where dependencies may come from: a model must not be a way around the
    install step's egress rules (git, URL or outside-folder dependencies, yarn's exec:).
    """
    try:
        written = files_from_mapping(answer.files, limits)
        deleted = sorted({normalize_path(path) for path in answer.deletions} - set(written))
        result = {p: d for p, d in overlay(base, written).items() if p not in deleted}
        check_totals(result, limits)
        manifest = parse_package_json(result)
        check_buildable(manifest)
        dependency_sources.check_manifest(manifest)
        dependency_sources.check_no_exec(result)
        for lockfile in ("package-lock.json", "npm-shrinkwrap.json"):
            dependency_sources.check_lockfile(result.get(lockfile), registry_hosts)
    except InputError as exc:
        raise GenerationError(
            f"the model's files were refused: {exc.message}", code=ErrorCode.INVALID_MODEL_OUTPUT
        ) from None
    return Edit(
        files=result,
        written={path: data.decode("utf-8") for path, data in written.items()},
        deleted=[path for path in deleted if path in base],
    )
