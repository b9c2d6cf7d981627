"""What a user meets first (issue 14), through the real API, worker, Docker and Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import Stack, node_project

pytestmark = pytest.mark.integration

ENV_BUILD = """
const fs = require("fs");
fs.mkdirSync("dist", { recursive: true });
const seenByScripts = fs.existsSync("seen.txt") ? fs.readFileSync("seen.txt", "utf8") : "none";
fs.writeFileSync("dist/index.html", `build:${process.env.VITE_API_URL} scripts:${seenByScripts}`);
"""
ENV_MANIFEST = {
    "name": "env-fixture",
    "private": True,
    "scripts": {
        "postinstall": "node postinstall.js",
        "build": "node build.js",
    },
}


def kiln(
    stack: Stack, *args: str, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("kiln")), *args],
        env={**stack.env, "KILN_URL": stack.url, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=cwd,
    )


def test_env_reaches_the_build_step_only_and_is_never_shown(stack: Stack) -> None:
    files = {
        "package.json": json.dumps(ENV_MANIFEST),
        "build.js": ENV_BUILD,
        "postinstall.js": "require('fs').writeFileSync('seen.txt', "
        "String(process.env.VITE_API_URL))",
    }
    env = {"VITE_API_URL": "https://api.secret-value.example"}
    reply = stack.client.submit_files(files, project="env-a", env=env)
    end = stack.wait(reply["id"])
    assert end["status"] == "succeeded", end["error"]
    assert end["env"] == ["VITE_API_URL"]
    page = stack.preview(reply["id"], "/").text
    assert page == "build:https://api.secret-value.example scripts:undefined"
    log = stack.client.logs(reply["id"])
    assert "VITE_API_URL" in log and "secret-value" not in log
    assert "secret-value" not in json.dumps(stack.client.build(reply["id"]))
    # The value is part of the reuse key: another value builds again, the same one reuses.
    again = stack.client.submit_files(files, project="env-a", env=env)
    assert again["reused_from"] == reply["id"]
    other = stack.client.submit_files(files, project="env-a", env={"VITE_API_URL": "https://b"})
    assert other["reused_from"] is None
    assert stack.wait(other["id"])["status"] == "succeeded"
    assert stack.preview(other["id"], "/").text == "build:https://b scripts:undefined"


def test_cli_submit_leaves_out_gitignored_files_and_sends_env(stack: Stack, tmp_path: Path) -> None:
    for path, data in node_project(
        "const fs=require('fs');fs.mkdirSync('dist');"
        "fs.writeFileSync('dist/index.html', String(fs.existsSync('.env'))"
        "+' '+process.env.VITE_FLAG);"
    ).items():
        (tmp_path / path).write_text(data)
    (tmp_path / ".gitignore").write_text(".env\n")
    (tmp_path / ".env").write_text("SECRET=1\n")
    (tmp_path / "settings.env").write_text("VITE_FLAG=from-file\n")
    result = kiln(stack, "submit", str(tmp_path), "--env-file", str(tmp_path / "settings.env"))
    assert result.returncode == 0, result.stderr
    assert "left out: .env (.gitignore)" in result.stderr
    build_id = result.stdout.strip().split("//")[1].split(".")[0]
    assert stack.preview(build_id, "/").text == "false from-file"


COLOURED_FAILURE = r"""
console.error("\x1b[36mvite v7.3.8 \x1b[32mbuilding for production...\x1b[39m");
console.error("/workspace/src/app.js:3:7: ERROR: \x1b[1mExpected \";\" but found \"x\"\x1b[22m");
process.exit(1);
"""


def test_no_terminal_escape_reaches_the_body_the_diagnostics_or_the_preview(
    stack: Stack,
) -> None:
    reply = stack.client.submit_files(node_project(COLOURED_FAILURE), project="colours")
    end = stack.wait(reply["id"])
    assert end["status"] == "failed"
    error = stack.client.build(reply["id"])["error"]
    assert "vite v7.3.8 building for production..." in error["log_tail"]
    item = error["diagnostics"]["items"][0]
    assert (item["file"], item["line"]) == ("src/app.js", 3)
    # The message leads with the diagnosis; the exit code is the detail.
    assert error["message"] == (
        'src/app.js:3: Expected ";" but found "x" (the build failed with exit code 1)'
    )
    page = stack.preview(reply["id"], "/").text
    for shown in (json.dumps(error), page):
        assert "\x1b" not in shown and "\\u001b" not in shown and "[36m" not in shown


def test_queue_position_and_wait_are_shown_everywhere(stack: Stack) -> None:
    from tests.integration.conftest import WRITE_DIST

    assert kiln(stack, "drain").returncode == 0
    try:
        first = stack.client.submit_files(node_project(WRITE_DIST + "//1"), project="q-a")
        second = stack.client.submit_files(node_project(WRITE_DIST + "//2"), project="q-b")
        time.sleep(2)
        one, two = stack.client.build(first["id"]), stack.client.build(second["id"])
        assert (one["status"], two["status"]) == ("queued", "queued")
        assert one["queue"]["position"] == 1 and two["queue"]["position"] == 2
        assert two["queue"]["waited_ms"] >= 1500 and two["queued_ms"] >= 1500
        page = stack.preview(second["id"], "/").text
        assert "queued: number 2 in line, waiting" in page
        listed = kiln(stack, "ls", "--project", "q-b", COLUMNS="200")
        assert listed.returncode == 0, listed.stderr
        assert "queued s" in listed.stdout
    finally:
        assert kiln(stack, "drain", "--undo").returncode == 0
    end = stack.wait(second["id"])
    assert end["status"] == "succeeded" and end["queued_ms"] >= 2000
    assert end["queue"] == {"position": None, "waited_ms": end["queued_ms"]}
    listed = kiln(stack, "ls", "--project", "q-b", COLUMNS="200")
    assert f"{end['queued_ms'] / 1000:.1f}" in listed.stdout


def test_http_errors_say_what_they_mean(stack: Stack) -> None:
    with stack.http() as http:
        text = http.post("/api/v1/builds", content=b"hi", headers={"Content-Type": "text/plain"})
        assert text.status_code == 415
        assert text.json()["error"]["code"] == "unsupported_media_type"
        body = json.dumps({"files": {"package.json": "{}"}}).encode()
        gz = http.post("/api/v1/builds", content=body, headers={"Content-Type": "application/gzip"})
        assert gz.status_code == 400
        message = gz.json()["error"]["message"]
        assert message.startswith("the body is not a gzip or tar archive") and "bz2" not in message
        big = http.post(
            "/api/v1/builds",
            json={"template": "react", "files": {"big.bin": "x" * int(11.4 * 1024 * 1024)}},
        )
        assert big.status_code == 413
        assert big.json()["error"]["message"] == (
            "file big.bin is 11.4 MB; the limit is 10 MB (KILN_MAX_FILE_MB)"
        )
        listed = http.get("/api/v1/builds", params={"status": "done"})
        assert listed.status_code == 400
        assert "queued, running, succeeded, failed, cancelled" in listed.json()["error"]["message"]


def test_docs_are_served_offline_by_the_real_server(stack: Stack) -> None:
    with stack.http() as http:
        page = http.get("/docs").text
        assert "/docs-assets/swagger-ui-bundle.js" in page and "cdn.jsdelivr" not in page
        assert http.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
        assert "/docs-assets/redoc.standalone.js" in http.get("/redoc").text


def test_cli_exit_codes_and_json_against_the_real_api(stack: Stack, tmp_path: Path) -> None:
    missing = kiln(stack, "status", "0123456789abcdef")
    assert missing.returncode == 2 and "not_found" in missing.stderr
    refused = kiln(stack, "ls", "--status", "done")
    assert refused.returncode == 2 and "the statuses are" in refused.stderr
    unreachable = kiln(stack, "ls", KILN_URL="http://127.0.0.1:9")
    assert unreachable.returncode == 3 and "cannot reach the Kiln API" in unreachable.stderr
    failing = kiln(stack, "submit", "--template", "vanilla", "--no-follow")
    assert failing.returncode == 0
    build_id = failing.stdout.strip()
    stack.wait(build_id)
    listed = json.loads(kiln(stack, "ls", "--json").stdout)
    assert build_id in {b["id"] for b in listed}
    piped = kiln(stack, "ls")
    header, *rows = piped.stdout.splitlines()
    assert header.split("\t")[:3] == ["id", "project", "status"]
    assert any(row.split("\t")[0] == build_id for row in rows)
    status = kiln(stack, "status", build_id)
    assert "None" not in status.stdout and "succeeded" in status.stdout
    for flags in (["--json"], ["--json", "-f"]):  # the history, or followed to the end
        events = [
            json.loads(line) for line in kiln(stack, "logs", *flags, build_id).stdout.splitlines()
        ]
        assert events[-1]["event"] == "end" and events[-1]["data"]["id"] == build_id
        assert any(e["event"] == "log" and e["data"]["text"] for e in events)
    assert kiln(stack, "submit", str(tmp_path / "nope")).returncode == 2


def test_operator_views_come_from_the_api_from_any_folder(stack: Stack, tmp_path: Path) -> None:
    result = kiln(stack, "queue", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"installation behind the API at {stack.url}" in result.stderr
    assert {"running", "queued", "builds"} <= set(json.loads(result.stdout))
    deadline = time.monotonic() + 60  # a worker registers on the queue after it starts
    workers = kiln(stack, "workers", cwd=tmp_path)
    while "1 worker(s)" not in workers.stderr and time.monotonic() < deadline:
        time.sleep(1)
        workers = kiln(stack, "workers", cwd=tmp_path)
    assert workers.returncode == 0 and "1 worker(s)" in workers.stderr
    assert list(tmp_path.iterdir()) == []  # nothing created in the caller's folder
