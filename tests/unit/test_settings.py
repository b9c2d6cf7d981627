"""Unit tests for orchestrator.settings: the installation's default instance name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.settings import Settings, default_instance


@pytest.fixture(autouse=True)
def no_instance_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KILN_INSTANCE", raising=False)
    monkeypatch.delenv("KILN_VAR_DIR", raising=False)


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_the_default_instance_is_named_after_the_var_folder(tmp_path: Path) -> None:
    instance = settings(var_dir=tmp_path / "a").instance
    assert re.fullmatch(r"kiln-[0-9a-f]{8}", instance)
    assert instance == default_instance(tmp_path / "a")
    assert instance != settings(var_dir=tmp_path / "b").instance


def test_two_processes_of_one_installation_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "var").mkdir()
    monkeypatch.chdir(tmp_path)
    relative = settings().instance  # var/ relative to the working folder, as ./scripts/up runs
    assert relative == settings(var_dir=tmp_path / "var").instance
    monkeypatch.setenv("KILN_VAR_DIR", str(tmp_path / "var"))
    assert settings().instance == relative


def test_kiln_instance_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_INSTANCE", "prod-eu")
    chosen = settings(var_dir=tmp_path)
    assert chosen.instance == "prod-eu"
    assert chosen.instance_source == "KILN_INSTANCE"


def test_doctor_says_where_a_derived_instance_came_from(tmp_path: Path) -> None:
    assert settings(var_dir=tmp_path).instance_source == f"derived from {tmp_path.resolve()}"
