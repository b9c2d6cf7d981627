"""Builds that fail, time out or are cancelled end in the right state with a useful error."""

from __future__ import annotations

import pytest

from tests.integration.conftest import WRITE_DIST, Stack, node_project

pytestmark = pytest.mark.integration

SLOW_BUILD = """
let i = 0;
setInterval(() => console.log("tick " + i++), 200);
"""


def test_syntax_error_fails_with_build_failed_and_log_tail(stack: Stack) -> None:
    reply = stack.client.submit_files(
        {"src/main.js": "import './style.css'\nexport const = ;\n"}, template="vanilla"
    )
    end = stack.wait(reply["id"])
    assert end["status"] == "failed"
    assert end["phase"] == "done"
    assert end["error"]["code"] == "build_failed"
    assert "exit code" in end["error"]["message"]
    assert "main.js" in end["error"]["log_tail"]
    assert end["preview_url"] is None
    page = stack.preview(reply["id"])
    assert page.status_code == 404
    assert "build_failed" in page.text and "main.js" in page.text  # the error, not the app


def test_missing_package_fails_with_install_failed(stack: Stack) -> None:
    files = node_project(WRITE_DIST)
    files["package.json"] = files["package.json"].replace(
        '"private": true', '"private": true, "dependencies": {"kiln-no-such-package-4f1c": "1.0.0"}'
    )
    end = stack.wait(stack.client.submit_files(files)["id"])
    assert end["status"] == "failed"
    assert end["error"]["code"] == "install_failed"
    assert "kiln-no-such-package-4f1c" in end["error"]["log_tail"]


def test_build_without_dist_fails_clearly(stack: Stack) -> None:
    end = stack.wait(stack.client.submit_files(node_project("console.log('no output')"))["id"])
    assert end["status"] == "failed"
    assert "dist/" in end["error"]["message"]


def test_cancel_queued_build_and_finished_build(stack: Stack) -> None:
    blocker = stack.client.submit_files(node_project(SLOW_BUILD), limits={"timeout_s": 20})
    waiting = stack.client.submit_files(node_project(WRITE_DIST))
    assert stack.client.build(waiting["id"])["status"] == "queued"
    cancelled = stack.client.cancel(waiting["id"])
    assert cancelled["status"] == "cancelled"
    end = stack.wait(waiting["id"])
    assert end["status"] == "cancelled"
    stack.client.cancel(blocker["id"])
    assert stack.wait(blocker["id"])["status"] == "cancelled"
    with stack.http() as http:
        again = http.post(f"/api/v1/builds/{waiting['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
