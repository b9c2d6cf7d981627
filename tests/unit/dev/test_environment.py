"""Unit tests for orchestrator.dev.environment: a session's start picks as a build submit."""

from __future__ import annotations

import json

import pytest

from orchestrator.dev.environment import requested_node, session_environment
from orchestrator.errors import UnsupportedEnvironment
from orchestrator.sandbox.fake import FAKE_OFFER

PM = "package_manager"
PACKAGE = json.dumps({"name": "app", "devDependencies": {"vite": "^7.0.0"}}).encode()


@pytest.mark.parametrize(("asked", "major"), [(None, None), ("", None), (20, 20), ("24", 24)])
def test_the_requested_node_is_a_checked_major(asked: object, major: int | None) -> None:
    assert requested_node(FAKE_OFFER, asked) == major


@pytest.mark.parametrize(
    ("asked", "says"), [(18, "offered majors: 20, 22 (default)"), ("latest", "a Node major")]
)
def test_a_node_that_is_not_offered_is_refused_as_for_builds(asked: object, says: str) -> None:
    with pytest.raises(UnsupportedEnvironment) as caught:
        requested_node(FAKE_OFFER, asked)
    assert says in caught.value.message


@pytest.mark.parametrize(
    ("files", "node", "expected"),
    [
        ({}, None, {"node": "22.0.0", "package_manager": "npm@10.0.0"}),
        ({".nvmrc": b"20\n"}, None, {"node": "20.0.0", "package_manager": "npm@10.0.0"}),
        ({".nvmrc": b"20\n"}, 24, {"node": "24.0.0", "package_manager": "npm@10.0.0"}),
        (
            {"pnpm-lock.yaml": b"lockfileVersion: '9.0'\n"},
            None,
            {"node": "22.0.0", "package_manager": "pnpm@10.0.0"},
        ),
        (
            {"bun.lock": b"{}", "index.html": b"<p>"},
            None,
            {"node": "22.0.0", "package_manager": "bun@1.0.0"},
        ),
    ],
)
def test_the_session_gets_the_environment_a_build_of_its_files_gets(
    files: dict[str, bytes], node: int | None, expected: dict[str, str]
) -> None:
    assert session_environment(FAKE_OFFER, json.loads(PACKAGE), files, node) == expected
