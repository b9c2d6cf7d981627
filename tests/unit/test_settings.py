from pathlib import Path

import pytest

from orchestrator.settings import REPO_ROOT, Settings, installation_root


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
