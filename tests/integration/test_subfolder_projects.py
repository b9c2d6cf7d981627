"""Projects whose app is in a subfolder, and workspace members, through the real stack.

The workspaces under ``projects/workspace-*`` (npm, pnpm, yarn 1, bun) keep the app in
``apps/web``; it depends on
the local workspace package ``packages/ui`` and on ``ms`` ``^2.1.1``, locked at 2.1.1 (2.1.3
is the newest), so an install that ignored the workspace root's lockfile would show 2.1.3.
The app's build script prints what it found and the folder it ran in.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from orchestrator.client import ApiError
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

PROJECTS = Path(__file__).parent / "projects"
FRONT_BUILD = """
const fs = require("fs");
const shared = fs.readFileSync("../shared/message.txt", "utf8").trim();
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync("dist/index.html", `<!doctype html><p>front cwd=${process.cwd()} ${shared}</p>`);
"""


def front_project() -> dict[str, str]:
    """An export with its app in ``front/`` and a file beside it that the build reads."""
    manifest = {"name": "front-app", "private": True, "scripts": {"build": "node build.js"}}
    return {
        "README.md": "the app is in front/\n",
        "shared/message.txt": "shared=outside-the-app-folder\n",
        "front/package.json": json.dumps(manifest),
        "front/build.js": FRONT_BUILD,
    }


def tree(name: str) -> dict[str, str]:
    """Every file of a fixture project, by its path inside it."""
    folder = PROJECTS / name
    files = [p for p in folder.rglob("*") if p.is_file()]
    return {p.relative_to(folder).as_posix(): p.read_text() for p in files}


def built(stack: Stack, files: dict[str, str], **fields: Any) -> tuple[dict[str, Any], str]:
    reply = stack.client.submit_files(files, fresh=True, **fields)
    body = stack.wait(reply["id"])
    text = "\n".join(e.data["text"] for e in stack.events(reply["id"]) if e.event == "log")
    assert body["status"] == "succeeded", text[-3000:] or body["error"]
    return body, text


def page_line(stack: Stack, body: dict[str, Any]) -> str:
    page = stack.preview(body["id"])
    assert page.status_code == 200
    found = re.search(r"<p>(.*)</p>", page.text)
    assert found, page.text
    return found.group(1)


def refusal(stack: Stack, files: dict[str, str], **fields: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        stack.client.submit_files(files, **fields)
    assert caught.value.http_status == 400
    return caught.value


def test_an_app_in_front_builds_with_root_and_its_preview_serves(stack: Stack) -> None:
    body, text = built(stack, front_project(), root="front")
    assert body["root"] == "front"
    line = page_line(stack, body)
    assert "cwd=/workspace/front" in line  # built in the app's folder
    assert "shared=outside-the-app-folder" in line  # and the rest of the project is there
    assert "app folder: front" in text


def test_an_app_in_a_subfolder_gets_its_own_lockfile_layer_and_offline_scripts(
    stack: Stack,
) -> None:
    files = {f"front/{path}": text for path, text in tree("npm").items()}
    files["README.md"] = "the app is in front/\n"
    body, text = built(stack, files, root="front")
    line = page_line(stack, body)
    assert "ms=2.1.1" in line  # front/package-lock.json, into a layer at front/node_modules
    assert "postinstall=offline-" in line  # its own postinstall ran, in front/, offline
    assert body["cache"]["layer"] in ("hit", "miss"), body["cache"]
    assert "app folder: front" in text


def test_a_tarball_names_its_app_folder_with_the_query(stack: Stack, tmp_path: Path) -> None:
    for path, text in front_project().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    reply = stack.client.submit_dir(tmp_path, root="front", fresh="true")
    body = stack.wait(reply["id"])
    assert body["status"] == "succeeded", body["error"]
    assert body["root"] == "front"
    assert "cwd=/workspace/front" in page_line(stack, body)


def test_without_root_the_refusal_names_front_and_how_to_submit_it(stack: Stack) -> None:
    error = refusal(stack, front_project())
    assert error.code == "invalid_project"
    assert "front/" in error.message and '"root": "front"' in error.message


@pytest.mark.parametrize(
    ("root", "says"),
    [("../front", "leaves the project"), ("/front", "absolute"), ("back", "no back/package.json")],
)
def test_a_bad_root_is_invalid_project(stack: Stack, root: str, says: str) -> None:
    error = refusal(stack, front_project(), root=root)
    assert error.code == "invalid_project"
    assert says in error.message


def test_an_npm_workspace_builds_its_member_from_the_root_lockfile(stack: Stack) -> None:
    body, text = built(stack, tree("workspace-npm"), root="apps/web")
    assert body["root"] == "apps/web"
    assert body["environment"]["package_manager"].startswith("npm@")
    line = page_line(stack, body)
    assert "ui=ui-from-workspace" in line  # the local workspace package, linked
    assert "ms=2.1.1" in line  # the workspace root's lockfile, not a fresh resolve
    assert "cwd=/workspace/apps/web" in line
    assert "workspace (workspaces): installing at the top, building apps/web" in text
    assert "$ npm ci" in text


@pytest.mark.parametrize(
    ("name", "manager", "made_by"),
    [
        ("workspace-pnpm", "pnpm", "pnpm-workspace.yaml"),
        ("workspace-yarn1", "yarn", "workspaces"),
        ("workspace-bun", "bun", "workspaces"),
    ],
)
def test_a_workspace_of_each_manager_builds_its_member_from_the_root_lockfile(
    stack: Stack, name: str, manager: str, made_by: str
) -> None:
    body, text = built(stack, tree(name), root="apps/web")
    assert body["environment"]["package_manager"].startswith(f"{manager}@")
    line = page_line(stack, body)
    assert "ui=ui-from-workspace" in line and "ms=2.1.1" in line, line
    assert f"agent={manager}/" in line and "cwd=/workspace/apps/web" in line
    assert f"workspace ({made_by})" in text
    assert "--frozen-lockfile" in text, text[-3000:]
    assert "does not match" not in text and "refused the lockfile" not in text, text[-3000:]


def test_a_folder_the_workspace_does_not_list_is_its_own_project(stack: Stack) -> None:
    files = tree("workspace-npm")
    files["package.json"] = json.dumps({"name": "mono", "workspaces": ["packages/*"]})
    standalone = json.loads(files["apps/web/package.json"])
    standalone["dependencies"] = {}  # no ui, no ms: a project of its own, with no lockfile
    files["apps/web/package.json"] = json.dumps(standalone)
    files["apps/web/build.js"] = FRONT_BUILD.replace("../shared", "../../shared")
    files["shared/message.txt"] = "shared=beside\n"
    body, text = built(stack, files, root="apps/web")
    assert "cwd=/workspace/apps/web" in page_line(stack, body)
    assert "app folder: apps/web" in text and "workspace (" not in text
