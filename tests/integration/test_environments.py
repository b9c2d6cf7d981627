"""Build environments through the real stack: the Node a build runs, each manager's install.

The projects under ``projects/`` lock ``ms`` ``^2.1.1`` at 2.1.1 (2.1.3 is the newest), so
an install that ignored the lockfile would show 2.1.3. Their build script prints the Node
version, the ms version, the manager's user agent and what their postinstall saw.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.builds.scripts_probe import SKIPPED
from tests.integration.conftest import Stack, node_project

pytestmark = pytest.mark.integration

PROJECTS = Path(__file__).parent / "projects"
PRINT_NODE = """
const fs = require("fs");
console.log("FIXTURE node=" + process.version);
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync("dist/index.html", "<p>node=" + process.version + "</p>");
"""
MANAGERS = {
    "npm": "npm@",
    "pnpm": "pnpm@10.34.9",
    "yarn1": "yarn@1.22.22",
    "berry": "yarn@4.18.1",
    "bun": "bun@1.4.5",
}


def project(name: str, **overrides: str) -> dict[str, str]:
    folder = PROJECTS / name
    files = {p.name: p.read_text() for p in folder.iterdir() if p.is_file()}
    return {**files, **overrides}


def built(stack: Stack, files: dict[str, str], **fields: Any) -> tuple[dict[str, Any], str]:
    reply = stack.client.submit_files(files, fresh=True, **fields)
    body = stack.wait(reply["id"])
    text = "\n".join(e.data["text"] for e in stack.events(reply["id"]) if e.event == "log")
    return body, text


def fixture_line(stack: Stack, body: dict[str, Any], log: str = "") -> dict[str, str]:
    assert body["status"] == "succeeded", log[-3000:] or body["error"]
    page = stack.preview(body["id"]).text
    found = re.search(r"<p>(.*)</p>", page)
    assert found, page
    return dict(part.split("=", 1) for part in found.group(1).split(" "))


@pytest.mark.parametrize(
    ("fields", "files", "engines", "version"),
    [
        ({}, {}, None, "v22."),
        ({"node": 24}, {}, None, "v24."),
        ({}, {".nvmrc": "20\n"}, None, "v20."),
        ({}, {".node-version": "26"}, None, "v26."),
        ({}, {}, ">=18 <21", "v20."),
        ({}, {}, ">=20", "v26."),
        ({"node": "22"}, {".nvmrc": "20"}, None, "v22."),
    ],
)
def test_node_follows_request_nvmrc_and_engines(
    stack: Stack, fields: dict[str, Any], files: dict[str, str], engines: str | None, version: str
) -> None:
    source = node_project(PRINT_NODE, **files)
    if engines:
        manifest = json.loads(source["package.json"])
        manifest["engines"] = {"node": engines}
        source["package.json"] = json.dumps(manifest)
    body, text = built(stack, source, **fields)
    assert fixture_line(stack, body, text)["node"].startswith(version)
    assert body["environment"]["node"].startswith(version[1:])
    assert f"FIXTURE node={version}" in text


def test_unoffered_node_is_refused_naming_the_offer(stack: Stack) -> None:
    reply = httpx.post(
        f"{stack.url}/api/v1/builds",
        json={"files": node_project(PRINT_NODE), "node": 18},
        timeout=30,
    )
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == "unsupported_environment"
    assert "22 (default)" in error["message"]


def test_nvmrc_major_not_offered_gets_the_nearest_with_a_warning(stack: Stack) -> None:
    body, text = built(stack, node_project(PRINT_NODE, **{".nvmrc": "18"}))
    assert fixture_line(stack, body, text)["node"].startswith("v20.")
    assert "[kiln] warning: .nvmrc asks for Node 18" in text or ".nvmrc asks for Node 18" in text


def test_environments_lists_the_image_offer(stack: Stack) -> None:
    items = httpx.get(f"{stack.url}/api/v1/environments", timeout=30).json()["items"]
    assert [item["major"] for item in items] == [20, 22, 24, 26]
    assert [item["major"] for item in items if item["default"]] == [22]
    managers = items[0]["package_managers"]
    assert managers["pnpm"] == "10.34.9" and managers["bun"] == "1.4.5"
    assert managers["yarn"] == "1.22.22" and managers["yarn-berry"] == "4.18.1"


@pytest.mark.parametrize("name", sorted(MANAGERS))
def test_each_manager_installs_its_own_lockfile_and_runs_postinstall_offline(
    stack: Stack, name: str
) -> None:
    body, text = built(stack, project(name))
    line = fixture_line(stack, body, text)
    assert line["ms"] == "2.1.1", text  # the lockfile's old version, not 2.1.3
    assert body["environment"]["package_manager"].startswith(MANAGERS[name])
    assert line["postinstall"].startswith("offline-"), text
    assert "does not match package.json" not in text
    if name != "npm":
        expected = MANAGERS[name].split("@")[0]
        assert line["agent"].startswith(expected + "/"), line
    if name == "yarn1":  # ms has no install script: the probe skipped the rebuild
        assert SKIPPED in text.splitlines(), text[-3000:]
    if name == "berry":  # yarn 4.14+ runs only dependenciesMeta's built ones: none here
        assert "yarn rebuild" not in text, text[-3000:]


GIT_HOOKS_RAN = "[ERROR] Was not able to set git hooks"


def scripted(name: str) -> dict[str, str]:
    """``name``'s fixture with ``name-scripted``'s package.json and lockfile (simple-git-hooks)."""
    return project(name) | project(f"{name}-scripted")


@pytest.mark.parametrize("name", ["yarn1", "berry"])
def test_a_yarn_dependency_with_an_install_script_runs_it_offline(stack: Stack, name: str) -> None:
    """simple-git-hooks has a postinstall, which (no git hooks config) prints an [ERROR]
    line and exits 0. yarn 1 runs it (the scripts probe sees it); yarn 4.18 because the
    fixture's dependenciesMeta marks it built, as yarn 4.14+ asks."""
    body, text = built(stack, scripted(name))
    assert fixture_line(stack, body, text)["ms"] == "2.1.1"
    assert GIT_HOOKS_RAN in text, text[-3000:]
    assert body["cache"]["layer"] in ("miss", "hit"), text  # dependenciesMeta kept: shared
    assert SKIPPED not in text.splitlines()


def test_yarn_4_runs_no_dependency_script_the_manifest_does_not_mark_built(stack: Stack) -> None:
    files = scripted("berry")
    manifest = json.loads(files["package.json"])
    del manifest["dependenciesMeta"]
    meta = "  dependenciesMeta:\n    simple-git-hooks:\n      built: true\n"
    assert meta in files["yarn.lock"]
    files |= {
        "package.json": json.dumps(manifest),
        "yarn.lock": files["yarn.lock"].replace(meta, ""),
    }
    body, text = built(stack, files)
    assert fixture_line(stack, body, text)["ms"] == "2.1.1"
    assert GIT_HOOKS_RAN not in text and "yarn rebuild" not in text, text[-3000:]
    assert "does not match package.json" not in text


@pytest.mark.parametrize("name", sorted(MANAGERS))
def test_a_stale_lockfile_installs_with_a_warning(stack: Stack, name: str) -> None:
    files = project(name)
    manifest = json.loads(files["package.json"])
    manifest["dependencies"]["left-pad"] = "1.3.0"
    files["package.json"] = json.dumps(manifest)
    body, text = built(stack, files)
    assert fixture_line(stack, body, text)["ms"].startswith("2.1."), text
    # npm keeps main's own words (the layer's resolve step); the others the environment's
    said = "package-lock.json out of sync with package.json" if name == "npm" else None
    assert (said or "does not match package.json") in text


def test_layers_are_not_shared_across_node_majors(stack: Stack) -> None:
    files = project("npm")
    files["package.json"] = files["package.json"].replace("postinstall", "x-postinstall")
    first, text = built(stack, files, node=20)
    second, _ = built(stack, files, node=22)
    assert first["status"] == second["status"] == "succeeded"
    assert first["cache"]["layer"] == "miss", text
    assert first["cache"]["layer_key"] != second["cache"]["layer_key"]


def test_an_optional_dependency_whose_script_fails_is_dropped_with_a_warning(
    stack: Stack,
) -> None:
    # canvas 2.11.2's install script downloads a binary, else compiles: offline and with
    # no compiler it fails, as in the Lovable export that npm itself built (it drops it).
    body, text = built(stack, project("npm-optional"))
    assert fixture_line(stack, body, text)["ms"] == "2.1.1"
    assert "optional dependency canvas failed its install script; dropped" in text


REDIRECTS = {
    "npm": {".npmrc": "@kilnprobe:registry=https://kiln-redirect.invalid/\n"},
    "pnpm": {".npmrc": "@kilnprobe:registry=https://kiln-redirect.invalid/\n"},
    "yarn1": {".npmrc": "@kilnprobe:registry=https://kiln-redirect.invalid/\n"},
    "berry": {
        ".yarnrc.yml": "npmScopes:\n  kilnprobe:\n    npmRegistryServer: "
        '"https://kiln-redirect.invalid"\nyarnPath: evil.cjs\n',
        "evil.cjs": "require('fs').writeFileSync('dist-owned', 'x'); process.exit(1);\n",
    },
    "bun": {"bunfig.toml": '[install.scopes]\nkilnprobe = "https://kiln-redirect.invalid/"\n'},
}


@pytest.mark.parametrize("name", sorted(REDIRECTS))
def test_other_registry_config_gets_no_further_than_the_proxy(stack: Stack, name: str) -> None:
    files = project(name, **REDIRECTS[name])
    manifest = json.loads(files["package.json"])
    manifest["dependencies"]["@kilnprobe/x"] = "1.0.0"  # only that registry would have it
    files["package.json"] = json.dumps(manifest)
    body, text = built(stack, files)
    assert body["status"] == "failed"
    install = text.split("[kiln] $ ", 2)[-1]
    if name == "berry":  # its .yarnrc.yml is never read: the scope stays on Kiln's registry
        assert "kiln-redirect.invalid" not in install and "dist-owned" not in text
        assert "404" in install or "YN0035" in install, install[-2000:]
    else:  # the request went to the proxy, which refused the host
        assert "403" in install, install[-2000:]
        assert not re.search(r"ENOTFOUND|EAI_AGAIN|getaddrinfo", install), install[-2000:]


PLANTED_RC = "plugins:\n  - path: ./planted.cjs\n"
PLANTED_PLUGIN = (
    "console.log('KILN-PLANTED-PLUGIN-LOADED');\n"
    "module.exports = {name: 'planted', factory: () => ({})};\n"
)


def test_a_berry_project_cannot_bring_the_rc_file_kiln_names(stack: Stack) -> None:
    """yarn reads the file ``YARN_RC_FILENAME`` names in the step's folder and above, and
    loads the plugins it lists; Kiln's name was fixed (``.kiln-yarnrc-none.yml``) until a
    project was found to run a plugin that way. Now it is a fresh name for every step."""
    planted = {".kiln-yarnrc-none.yml": PLANTED_RC, ".yarnrc.yml": PLANTED_RC}
    files = project("berry", **planted, **{"planted.cjs": PLANTED_PLUGIN})
    body, text = built(stack, files)
    assert body["status"] == "succeeded", text[-2000:]
    assert "KILN-PLANTED-PLUGIN-LOADED" not in text


def test_a_berry_exec_dependency_is_refused_at_submit(stack: Stack) -> None:
    """yarn's ``exec:`` protocol runs a project file while yarn fetches, ``--mode=skip-build``
    or not; yarn 4.13 even with scripts off (tried by hand), 4.18 when ``dependenciesMeta``
    marks it built. The install runs no project code, so the submit is refused."""
    files = project("berry", **{"generate.js": "require('fs').writeFileSync('x', '')\n"})
    manifest = json.loads(files["package.json"])
    manifest["dependencies"]["generated"] = "exec:./generate.js"
    manifest["dependenciesMeta"] = {"generated": {"built": True}}
    files["package.json"] = json.dumps(manifest)
    reply = httpx.post(f"{stack.url}/api/v1/builds", json={"files": files}, timeout=30)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["code"] == "unsupported_dependency"
    assert "dependencies.generated is 'exec:./generate.js'" in error["message"]


PNPM_9_SHA512 = (
    "68046141893c66fad01c079231128e9afb89ef87e2691d69e4d40eee228988295fd4682181bae55b58418c3a253bde"
    "65a505ec7c5f9403ece5cc3cd37dcf2531"
)


def test_package_manager_version_is_fetched_exactly_and_its_hash_checked(stack: Stack) -> None:
    files = project("pnpm")
    manifest = json.loads(files["package.json"])
    manifest["packageManager"] = f"pnpm@9.15.9+sha512.{PNPM_9_SHA512}"
    files["package.json"] = json.dumps(manifest)
    body, text = built(stack, files)
    line = fixture_line(stack, body, text)
    assert line["agent"] == "pnpm/9.15.9" and line["ms"] == "2.1.1"
    assert body["environment"]["package_manager"] == "pnpm@9.15.9"
    assert "fetching pnpm@9.15.9 (packageManager)" in text

    manifest["packageManager"] = f"pnpm@9.15.8+sha512.{PNPM_9_SHA512}"  # not 9.15.8's hash
    files["package.json"] = json.dumps(manifest)
    body, text = built(stack, files)
    assert body["status"] == "failed"
    assert "not the packageManager hash" in text


def test_bun_runs_its_default_trusted_scripts_offline_unless_the_field_says_otherwise(
    stack: Stack,
) -> None:
    """simple-git-hooks is on the image's bun's default list and has a postinstall, which
    (no git hooks config) prints an [ERROR] line and exits 0: it ran, in an offline step."""
    ran = "[ERROR] Was not able to set git hooks"
    body, text = built(stack, project("bun-default-trusted"))
    assert fixture_line(stack, body, text) == {"built": "yes"}
    assert ran in text, text[-3000:]
    assert "npm rebuild --foreground-scripts" not in text or "simple-git-hooks" in text
    manifest = json.loads(project("bun-default-trusted")["package.json"])
    files = project(
        "bun-default-trusted",
        **{"package.json": json.dumps(manifest | {"trustedDependencies": []})},
    )
    body, text = built(stack, files)
    assert body["status"] == "succeeded", text[-3000:]
    assert ran not in text, text[-3000:]  # an empty field trusts none, as in bun


def test_a_berry_lockfile_made_with_mixed_compression_installs_frozen(stack: Stack) -> None:
    """``compressionLevel: mixed`` (a yarn 3 project moved to 4) changes yarn.lock's cacheKey
    and checksums; yarn refuses that lockfile as out of date without the setting, and Kiln
    never lets yarn read ``.yarnrc.yml``. The setting goes to yarn by its environment."""
    body, text = built(stack, project("berry") | project("berry-mixed"))
    line = fixture_line(stack, body, text)
    assert line["ms"] == "2.1.1", text[-3000:]
    assert "refused the lockfile as out of date" not in text, text[-3000:]


def test_a_berry_project_s_package_extensions_are_applied_and_install_frozen(stack: Stack) -> None:
    """yarn takes ``packageExtensions`` only from an rc file, and Kiln never lets it read the
    project's: Kiln writes one of its own with only the extensions (project/yarnrc.py), so
    the lockfile made with them installs frozen and the extended dependency is there."""
    body, text = built(stack, project("berry") | project("berry-extended"))
    assert fixture_line(stack, body, text) == {"ms": "2.1.1", "extended": "7.0.0"}, text[-3000:]
    assert "refused the lockfile as out of date" not in text, text[-3000:]
    assert "packageExtensions" not in text, text[-3000:]


def test_a_berry_extension_from_outside_the_registry_is_not_applied(stack: Stack) -> None:
    rc = 'packageExtensions:\n  "ms@*":\n    dependencies:\n      "is-number": "exec:./x.js"\n'
    files = project("berry") | project("berry-extended") | {".yarnrc.yml": rc}
    body, text = built(stack, files)
    assert fixture_line(stack, body, text)["extended"] == "none", text[-3000:]
    assert ".yarnrc.yml: packageExtensions not applied" in text, text[-3000:]
