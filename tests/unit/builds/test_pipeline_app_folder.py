"""Builds of an app in a subfolder, and of a workspace member, through the fake sandbox."""

from __future__ import annotations

import json
import os

from orchestrator.sandbox.fake import DIST_INDEX, Script, StepCall, scripted
from tests.unit.builds.conftest import LOCKED, Kiln, manifest

BUILT = Script(writes=DIST_INDEX)  # relative to the step's folder, as in a container


def workdirs(kiln: Kiln) -> dict[str, str]:
    """Each step's name → the folder it ran in (the last call of a name wins)."""
    return {call.name: call.step.workdir for call in kiln.sandbox.calls}


def test_an_app_in_a_subfolder_installs_builds_and_publishes_there(kiln: Kiln) -> None:
    kiln.script(scripted({"build": BUILT}))
    files = {f"front/{path}": data for path, data in LOCKED.items()}
    files["README.md"] = b"the app is in front/"
    build = kiln.run(kiln.record(files, root="front").id)
    assert build.status == "succeeded", build.error_message
    assert kiln.sandbox.ran() == ["layer-install", "build"]
    assert workdirs(kiln) == {"layer-install": "", "build": "front"}  # staging, then the app
    assert kiln.sandbox.calls[1].node_modules is not None  # its own lockfile's layer
    assert "app folder: front" in kiln.log(build.id)
    assert kiln.ctx.storage.has_artifact(build.id)
    assert kiln.end(build.id)["root"] == "front"


def npm_workspace() -> dict[str, bytes]:
    lock = {
        "name": "mono",
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "mono", "workspaces": ["apps/*", "packages/*"]},
            "apps/web": {"name": "web", "dependencies": {"ui": "*"}},
            "packages/ui": {"name": "ui", "version": "1.0.0"},
            "node_modules/ui": {"resolved": "packages/ui", "link": True},
            "node_modules/web": {"resolved": "apps/web", "link": True},
        },
    }
    return {
        "package.json": json.dumps(
            {"name": "mono", "workspaces": ["apps/*", "packages/*"]}
        ).encode(),
        "package-lock.json": json.dumps(lock).encode(),
        "apps/web/package.json": manifest(name="web", dependencies={"ui": "*"}),
        "packages/ui/package.json": json.dumps({"name": "ui", "version": "1.0.0"}).encode(),
    }


def test_a_workspace_member_installs_at_the_root_and_builds_in_its_folder(kiln: Kiln) -> None:
    kiln.script(scripted({"build": BUILT}))
    build = kiln.run(kiln.record(npm_workspace(), root="apps/web").id)
    assert build.status == "succeeded", build.error_message
    assert workdirs(kiln) == {"install": "", "build": "apps/web"}
    log = kiln.log(build.id)
    assert "workspace (workspaces): installing at the top, building apps/web" in log
    assert "not shared for a workspace" in log
    assert build.cache == {"layer": "private"}
    install = next(c for c in kiln.sandbox.calls if c.name == "install")
    assert install.step.argv[:2] == ["npm", "ci"]  # the workspace root's lockfile
    assert kiln.ctx.storage.has_artifact(build.id)


def _swap_app_for_a_link(call: StepCall) -> None:
    """What a hostile build script could do: put a link to the host where the app was."""
    app = call.workspace / "front"
    os.rename(app, call.workspace / "was-front")
    (call.workspace / "elsewhere" / "dist").mkdir(parents=True)
    (call.workspace / "elsewhere" / "dist" / "index.html").write_text("host file")
    os.symlink(call.workspace / "elsewhere", app)


def test_an_app_folder_turned_into_a_link_is_not_published(kiln: Kiln) -> None:
    kiln.script(scripted({"build": Script(effect=_swap_app_for_a_link)}))
    files = {"front/package.json": manifest(), "README.md": b"x"}
    build = kiln.run(kiln.record(files, root="front").id)
    assert build.status == "failed"
    assert build.error_code == "unsafe_output"
    assert "front became a link" in (build.error_message or "")
    assert not kiln.ctx.storage.has_artifact(build.id)


def test_an_app_in_a_subfolder_is_asked_for_its_out_dir_there(kiln: Kiln) -> None:
    built = Script(writes={"www/index.html": "<p>www</p>"})  # front/www, as its config says
    probe = Script(lines=['kiln-output-dir: {"outDir": "www"}'])
    kiln.script(scripted({"build": built, "output-dir": probe}))
    files = {"front/package.json": manifest(), "README.md": b"x"}
    build = kiln.run(kiln.record(files, root="front").id)
    assert build.status == "succeeded", build.error_message
    assert workdirs(kiln) == {"build": "front", "output-dir": "front"}
    assert kiln.end(build.id)["output_dir"] == "www"  # relative to the app's folder
    assert "publishing www/" in kiln.log(build.id)
