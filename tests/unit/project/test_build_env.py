from __future__ import annotations

import pytest

from orchestrator.builds.public import public_view
from orchestrator.errors import InputError
from orchestrator.project.build_env import MAX_TOTAL_BYTES, check_env, parse_env_file
from orchestrator.records.models import Build


def test_good_names_pass_sorted() -> None:
    assert check_env({"VITE_B": "2", "_A": "1"}) == {"VITE_B": "2", "_A": "1"}
    assert list(check_env({"VITE_B": "2", "_A": "1"})) == ["VITE_B", "_A"]
    assert check_env(None) == {}


@pytest.mark.parametrize(
    "env",
    [
        {"vite_api": "x"},
        {"1A": "x"},
        {"A-B": "x"},
        {"A B": "x"},
        {"": "x"},
        {"PATH": "/x"},
        {"A": "x\x00y"},
        {"A": 1},
        {"A": "x" * MAX_TOTAL_BYTES},
        {f"V{i}": "" for i in range(65)},
    ],
)
def test_bad_env_is_refused(env: dict[str, object]) -> None:
    with pytest.raises(InputError, match="env"):
        check_env(env)


def test_env_file_lines() -> None:
    text = "# settings\nexport VITE_A=\"one two\"\nVITE_B='x'\nVITE_C=3 # note\n\n"
    assert parse_env_file(text) == {"VITE_A": "one two", "VITE_B": "x", "VITE_C": "3"}
    with pytest.raises(InputError, match="line 1"):
        parse_env_file("NOT AN ASSIGNMENT")


def test_the_build_body_names_the_env_and_never_shows_a_value() -> None:
    build = Build(project="p", env={"VITE_API_URL": "https://secret.example"})
    body = public_view(build, "http://x/")
    assert body["env"] == ["VITE_API_URL"]
    assert "secret.example" not in repr(body)
