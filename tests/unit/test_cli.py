"""The ``kiln`` command with a fake API client and fake operator views (no services)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestrator import cli
from orchestrator.settings import get_settings, installation_root

runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(cli.app, list(args))


def test_operator_commands_say_which_installation_and_leave_the_folder_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.ops import views

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KILN_VAR_DIR", raising=False)
    monkeypatch.setenv("KILN_URL", "http://127.0.0.1:9")  # no API answers: read locally
    get_settings.cache_clear()
    summary = {
        "builds": [],
        "running": 1,
        "queued": 0,
        "oldest_wait_s": 0.0,
        "redis_queue_length": 0,
        "redis_started": 1,
        "redis_failed": 0,
        "draining": False,
    }
    monkeypatch.setattr(views, "queue_summary", lambda ctx: summary)
    result = invoke("queue")
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"installation {installation_root()}" in " ".join(result.output.split())
    assert str(tmp_path) not in result.output
    assert list(tmp_path.iterdir()) == []


class FakeClient:
    """Stands in for KilnClient: records calls, answers from canned bodies."""

    def __init__(self, builds: dict[str, dict[str, Any]] | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.bodies = builds or {}
        self.http = type("H", (), {"base_url": "http://127.0.0.1:1"})()

    def templates(self) -> list[dict[str, str]]:
        return [{"name": "react"}, {"name": "react-ts"}, {"name": "vanilla"}]

    def submit_dir(self, folder: Path, selection: Any = None, **kw: Any) -> dict[str, Any]:
        self.calls.append(("submit_dir", {"folder": folder, "files": selection.files, **kw}))
        return {"id": "0123456789abcdef", "status": "queued", "project": "p"}

    def submit_files(self, files: dict[str, str], **kw: Any) -> dict[str, Any]:
        self.calls.append(("submit_files", kw))
        return {"id": "0123456789abcdef", "status": "queued", "project": "p"}

    def build(self, build_id: str) -> dict[str, Any]:
        return self.bodies.get(build_id, {"id": build_id, "queue": {"position": 1}})


@pytest.fixture()
def client(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    fake = FakeClient()
    monkeypatch.setattr(cli, "_client", lambda: fake)
    return fake


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda root: root / "missing", "does not exist"),
        (lambda root: (root / "f.txt", (root / "f.txt").write_text("x"))[0], "is a file"),
        (lambda root: (root / "e", (root / "e").mkdir())[0], "is an empty folder"),
    ],
)
def test_submit_says_what_is_wrong_with_the_folder_and_suggests_a_template(
    tmp_path: Path, client: FakeClient, make: Any, words: str
) -> None:
    result = invoke("submit", str(make(tmp_path)), "--no-follow")
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert words in said
    assert "--template NAME" in said and "templates: react, react-ts, vanilla" in said
    assert client.calls == []


def test_submit_sends_env_and_says_what_it_left_out(tmp_path: Path, client: FakeClient) -> None:
    (tmp_path / "package.json").write_text("{}")
    (tmp_path / ".env.local").write_text("SECRET=1")
    (tmp_path / "build.env").write_text("VITE_A=from-file\nVITE_B=file\n")
    result = invoke(
        "submit",
        str(tmp_path),
        "--env-file",
        str(tmp_path / "build.env"),
        "--env",
        "VITE_B=flag",
        "--no-follow",
    )
    assert result.exit_code == 0, result.output
    assert "left out: .env.local" in " ".join(result.output.split())
    ((_, sent),) = client.calls
    assert sent["env"] == {"VITE_A": "from-file", "VITE_B": "flag"}
    assert ".env.local" not in sent["files"]


def test_submit_root_names_the_apps_folder(tmp_path: Path, client: FakeClient) -> None:
    (tmp_path / "front").mkdir()
    (tmp_path / "front" / "package.json").write_text("{}")
    result = invoke("submit", str(tmp_path), "--root", "front", "--no-follow")
    assert result.exit_code == 0, result.output
    ((_, sent),) = client.calls
    assert sent["root"] == "front" and "front/package.json" in sent["files"]


def test_a_root_without_package_json_is_refused_before_anything_is_sent(
    tmp_path: Path, client: FakeClient
) -> None:
    (tmp_path / "front").mkdir()
    (tmp_path / "front" / "index.html").write_text("<p>")
    result = invoke("submit", str(tmp_path), "--root", "front", "--no-follow")
    assert result.exit_code == 2
    assert "has no package.json (--root front)" in " ".join(result.output.split())
    assert client.calls == []


def test_a_folder_with_its_app_in_a_subfolder_is_left_to_the_server(
    tmp_path: Path, client: FakeClient
) -> None:
    (tmp_path / "front").mkdir()
    (tmp_path / "front" / "package.json").write_text("{}")
    (tmp_path / "README.md").write_text("app in front/")
    result = invoke("submit", str(tmp_path), "--no-follow")
    assert result.exit_code == 0, result.output  # the server's 400 names front/
    assert len(client.calls) == 1


def test_a_bad_env_name_is_refused_before_anything_is_sent(
    tmp_path: Path, client: FakeClient
) -> None:
    (tmp_path / "package.json").write_text("{}")
    result = invoke("submit", str(tmp_path), "--env", "lower=x", "--no-follow")
    assert result.exit_code == 2
    assert "env name 'lower' is not allowed" in result.output
    assert client.calls == []


def test_h_and_version_work_everywhere() -> None:
    assert invoke("-h").exit_code == 0
    assert invoke("submit", "-h").exit_code == 0
    assert invoke("cache", "ls", "-h").exit_code == 0
    version = invoke("--version")
    assert version.exit_code == 0 and version.output.startswith("kiln ")


def test_every_argument_and_option_has_a_description() -> None:
    import typer.main

    group = typer.main.get_command(cli.app)
    missing = []

    def walk(command: Any, path: str) -> None:
        for param in command.params:
            if not getattr(param, "help", None) and param.name not in ("help", "_show_version"):
                missing.append(f"{path} {param.name}")
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(group, "kiln")
    assert missing == []


def test_template_help_lists_the_templates() -> None:
    said = " ".join(invoke("submit", "-h").output.split())
    assert "react, react-ts, vanilla" in said


def test_a_folder_with_a_template_is_laid_over_it(tmp_path: Path, client: FakeClient) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "App.tsx").write_text("export default () => null")
    result = invoke("submit", str(tmp_path), "--template", "react-ts", "--no-follow")
    assert result.exit_code == 0, result.output
    assert f"laying the files of {tmp_path} over template react-ts" in " ".join(
        result.output.split()
    )
    ((_, sent),) = client.calls
    assert sent["template"] == "react-ts" and sent["files"] == ["src/App.tsx"]


def test_retry_follows_like_submit(client: FakeClient, monkeypatch: pytest.MonkeyPatch) -> None:
    end = {
        "id": "fedcba9876543210",
        "status": "succeeded",
        "duration_ms": 2200,
        "queued_ms": 0,
        "preview_url": "http://fedcba9876543210.preview.localhost:8000/",
    }

    def events(build_id: str) -> Any:
        yield "1-0", "log", {"text": "building"}
        yield "2-0", "end", end

    monkeypatch.setattr(
        client, "retry", lambda build_id: {**end, "status": "queued", "project": "p"}, raising=False
    )
    monkeypatch.setattr(client, "events", events, raising=False)
    result = invoke("retry", "0123456789abcdef")
    assert result.exit_code == 0, result.output
    assert "succeeded in 2.2 s" in result.output
    assert result.stdout.strip().endswith(end["preview_url"])
    no_follow = invoke("retry", "0123456789abcdef", "--no-follow")
    assert no_follow.stdout.strip() == "fedcba9876543210"


def test_status_json_and_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.unit.test_cli_output import FAILED

    fake = FakeClient({"0123456789abcdef": FAILED})
    monkeypatch.setattr(cli, "_client", lambda: fake)
    plain = invoke("status", "0123456789abcdef")
    assert 'diagnosis      [syntax] src/App.jsx:8 Unexpected closing "main" tag' in plain.stdout
    assert "template" not in plain.stdout and "None" not in plain.stdout
    import json

    assert json.loads(invoke("status", "0123456789abcdef", "--json").stdout) == FAILED


@pytest.mark.parametrize(("status", "code"), [(400, 2), (404, 2), (429, 4), (500, 5)])
def test_main_exits_with_the_tables_code(
    monkeypatch: pytest.MonkeyPatch, status: int, code: int
) -> None:
    from orchestrator.client import ApiError

    def refuse(build_id: str) -> Any:
        raise ApiError(status, "some_code", "refused")

    fake = FakeClient()
    monkeypatch.setattr(fake, "build", refuse)
    monkeypatch.setattr(cli, "_client", lambda: fake)
    monkeypatch.setattr("sys.argv", ["kiln", "status", "0123456789abcdef"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == code


def test_an_unreachable_api_exits_3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setattr("sys.argv", ["kiln", "status", "0123456789abcdef"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 3


def test_read_only_operator_commands_ask_the_api_first(
    tmp_path: Path, client: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    views = {
        "workers": {
            "installation": {"instance": "kiln", "queue": "kiln-builds"},
            "items": [
                {
                    "name": "kiln.1",
                    "state": "busy",
                    "build": "0123456789abcdef",
                    "last_heartbeat": None,
                    "succeeded_jobs": 3,
                    "failed_jobs": 0,
                }
            ],
        }
    }
    monkeypatch.setattr(client, "ops_view", lambda name: dict(views[name]), raising=False)
    result = invoke("workers")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "installation behind the API at http://127.0.0.1:1: instance kiln" in said
    assert "kiln.1" in result.stdout and "0123456789abcdef" in result.stdout
    assert list(tmp_path.iterdir()) == []
