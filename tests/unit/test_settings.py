"""Unit tests for orchestrator.settings: the installation's default instance name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.settings import REPO_ROOT, Settings, default_instance, installation_root


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
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KILN_HOME", raising=False)
    default = settings().instance  # the installation's var/, wherever the process runs
    assert default == settings(var_dir=REPO_ROOT / "var").instance
    monkeypatch.setenv("KILN_VAR_DIR", str(REPO_ROOT / "var"))
    assert settings().instance == default


def test_kiln_instance_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_INSTANCE", "prod-eu")
    chosen = settings(var_dir=tmp_path)
    assert chosen.instance == "prod-eu"
    assert chosen.instance_source == "KILN_INSTANCE"


def test_doctor_says_where_a_derived_instance_came_from(tmp_path: Path) -> None:
    assert settings(var_dir=tmp_path).instance_source == f"derived from {tmp_path.resolve()}"


def test_the_var_folder_belongs_to_the_installation_not_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KILN_VAR_DIR", raising=False)
    monkeypatch.delenv("KILN_HOME", raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.var_dir == REPO_ROOT / "var"
    assert str(tmp_path) not in settings.db_url
    assert list(tmp_path.iterdir()) == []


def test_kiln_home_names_another_installation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KILN_HOME", str(tmp_path / "kiln"))
    monkeypatch.delenv("KILN_VAR_DIR", raising=False)
    assert installation_root() == tmp_path / "kiln"
    assert Settings(_env_file=None).var_dir == tmp_path / "kiln" / "var"  # type: ignore[call-arg]


def test_a_project_folders_env_file_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-project\nKILN_PORT=9999\n")
    monkeypatch.chdir(tmp_path)
    for name in ("OPENAI_API_KEY", "KILN_OPENAI_API_KEY", "KILN_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.port != 9999
    assert settings.openai_api_key != "sk-project"
