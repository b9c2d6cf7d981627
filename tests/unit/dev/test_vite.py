"""Unit tests for orchestrator.dev.vite: advisories by version, dependency digests, errors."""

from __future__ import annotations

import re

import pytest

from orchestrator.dev.vite import dependency_digest, error_location, parse_version, vite_warnings


@pytest.mark.parametrize(
    ("version", "advisories"),
    [
        ("8.3.8", set()),
        ("8.0.5", set()),
        ("8.0.4", {"CVE-2026-39363"}),
        ("7.3.2", set()),
        ("7.3.1", {"CVE-2026-39363"}),
        ("7.0.0", {"CVE-2026-39363"}),
        ("6.4.2", set()),
        ("6.4.1", {"CVE-2026-39363"}),
        ("6.1.0", {"CVE-2026-39363"}),
        ("6.0.9", {"CVE-2026-39363"}),
        ("6.0.8", {"CVE-2026-39363", "GHSA-vg6x-rcgg-rjx6"}),
        ("5.4.12", {"CVE-2026-39363"}),
        ("5.4.11", {"CVE-2026-39363", "GHSA-vg6x-rcgg-rjx6"}),
        ("5.3.0", {"CVE-2026-39363", "GHSA-vg6x-rcgg-rjx6"}),
        ("4.5.6", {"CVE-2026-39363"}),
        ("4.5.5", {"CVE-2026-39363", "GHSA-vg6x-rcgg-rjx6"}),
        ("3.2.0", {"CVE-2026-39363", "GHSA-vg6x-rcgg-rjx6"}),
        ("9.0.0", set()),
        ("unknown", set()),
    ],
)
def test_warnings_name_the_advisories_a_version_predates(
    version: str, advisories: set[str]
) -> None:
    warned = {re.search(r"(GHSA-[\w-]+|CVE-[\d-]+)", w)[0] for w in vite_warnings(version)}  # type: ignore[index]
    assert warned == advisories


def test_parse_version() -> None:
    assert parse_version("v6.0.8-beta.1") == (6, 0, 8)
    assert parse_version("latest") is None


def test_only_dependency_fields_change_the_digest() -> None:
    base = {"name": "a", "scripts": {"dev": "vite"}, "dependencies": {"react": "^19"}}
    assert dependency_digest(base) == dependency_digest({**base, "scripts": {"dev": "x"}})
    assert dependency_digest(base) == dependency_digest({**base, "version": "2.0.0"})
    assert dependency_digest(base) != dependency_digest(
        {**base, "dependencies": {"react": "^19", "ms": "^2"}}
    )
    assert dependency_digest(base) != dependency_digest({**base, "overrides": {"x": "1"}})


@pytest.mark.parametrize(
    ("message", "where"),
    [
        ("[PARSE_ERROR] Unexpected token\n ╭─[ src/Counter.tsx:4:10 ]", ("src/Counter.tsx", 4, 10)),
        ("/workspace/src/App.tsx:12:3: ERROR: Expected", ("src/App.tsx", 12, 3)),
        ("no location here", None),
    ],
)
def test_error_location(message: str, where: tuple[str, int, int] | None) -> None:
    found = error_location(message)
    assert ((found["file"], found["line"], found["column"]) if found else None) == where
