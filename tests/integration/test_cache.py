"""Build caches through the real stack: layer miss then hit, tampering, eviction, reuse."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cache.layers import LayerStore
from orchestrator.settings import REPO_ROOT
from tests.integration.conftest import WRITE_DIST, Stack, node_project

pytestmark = pytest.mark.integration

TAMPER = r"""
const fs = require("fs");
const tries = {
  overwrite: () => fs.writeFileSync("node_modules/vite/package.json", "{}"),
  create: () => fs.writeFileSync("node_modules/kiln-poison.js", "owned"),
  remove: () => fs.rmSync("node_modules/vite", { recursive: true, force: true }),
  rename: () => fs.renameSync("node_modules/vite", "node_modules/vite-gone"),
  chmod: () => fs.chmodSync("node_modules/vite/package.json", 0o777),
  scratch: () => fs.writeFileSync("node_modules/.cache/kiln-scratch", "private"),
};
for (const [name, attempt] of Object.entries(tries)) {
  try { attempt(); console.log(`TAMPER ${name} ok`); }
  catch (e) { console.log(`TAMPER ${name} refused ${e.code}`); }
}
"""


def unique_vanilla(**extra_files: str) -> dict[str, str]:
    """Overlay for the vanilla template under a unique name: its lockfile (its layer) is new."""
    root = REPO_ROOT / "templates" / "vanilla"
    name = f"cache-test-{uuid.uuid4().hex[:10]}"
    manifest = json.loads((root / "package.json").read_text())
    lock = json.loads((root / "package-lock.json").read_text())
    manifest["name"] = lock["name"] = lock["packages"][""]["name"] = name
    files = {"src/main.js": (root / "src" / "main.js").read_text()}
    files["package.json"] = json.dumps(manifest, indent=2)
    files["package-lock.json"] = json.dumps(lock, indent=2)
    return {**files, **extra_files}


def logs_of(stack: Stack, build_id: str) -> tuple[dict[str, Any], str]:
    events = stack.events(build_id)
    text = "\n".join(e.data["text"] for e in events if e.event == "log")
    return events[-1].data, text


def layer_dir(stack: Stack, key: str) -> Path:
    return stack.var_dir / "cache" / "layers" / key / "node_modules"


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for current, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            path = Path(current, name)
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes() if not path.is_symlink() else b"link")
    return digest.hexdigest()


def test_layer_miss_then_hit_without_install(stack: Stack) -> None:
    files = unique_vanilla()
    first = stack.client.submit_files(files, template="vanilla")
    end, logs = logs_of(stack, first["id"])
    assert end["status"] == "succeeded", end["error"]
    assert end["cache"]["layer"] == "miss"
    assert "dependency layer miss" in logs and "$ npm ci" in logs
    key = end["cache"]["layer_key"]
    assert (layer_dir(stack, key) / "vite" / "package.json").is_file()

    files["src/main.js"] = files["src/main.js"] + "\nconsole.log('one file changed');\n"
    second = stack.client.submit_files(files, template="vanilla")
    end, logs = logs_of(stack, second["id"])
    assert end["status"] == "succeeded", end["error"]
    assert end["cache"] == {"layer": "hit", "layer_key": key}
    assert "dependency layer hit" in logs
    assert "$ npm ci" not in logs and "npm rebuild" not in logs  # no install at all
    scripts = re.findall(r'src="(/assets/[^"]+)"', stack.preview(second["id"]).text)
    assert any("one file changed" in stack.preview(second["id"], s).text for s in scripts)
    with stack.http() as http:
        metrics = http.get("/metrics").text
    assert re.search(r'^kiln_cache_hits_total\{cache="layer"[^}]*\} [1-9]', metrics, re.M), [
        line for line in metrics.splitlines() if "cache_hits" in line
    ]


def test_a_build_cannot_change_its_layer(stack: Stack) -> None:
    files = unique_vanilla(**{"tamper.cjs": TAMPER})
    manifest = json.loads(files["package.json"])
    manifest["scripts"]["build"] = "node tamper.cjs && vite build"
    files["package.json"] = json.dumps(manifest)
    first = stack.client.submit_files(files, template="vanilla")
    end, logs = logs_of(stack, first["id"])
    assert end["status"] == "succeeded", end["error"]
    key = end["cache"]["layer_key"]
    before = tree_digest(layer_dir(stack, key))
    # Each write into the layer is refused by the read-only mount, not by chance.
    for attempt in ("overwrite", "create", "remove", "rename", "chmod"):
        assert f"TAMPER {attempt} refused EROFS" in logs, logs
    assert "TAMPER scratch ok" in logs  # the scratch folders are private and writable

    files["src/extra.js"] = "export {}\n"  # a second build with the same layer
    second = stack.client.submit_files(files, template="vanilla")
    end, logs = logs_of(stack, second["id"])
    assert end["status"] == "succeeded" and end["cache"]["layer"] == "hit"
    assert "TAMPER overwrite refused EROFS" in logs
    assert tree_digest(layer_dir(stack, key)) == before
    layer = layer_dir(stack, key)
    assert not (layer / "kiln-poison.js").exists()
    assert json.loads((layer / "vite" / "package.json").read_text())["name"] == "vite"
    assert list((layer / ".cache").iterdir()) == []  # scratch writes never reach the layer
    if os.geteuid() == 0:  # a root worker keeps each layer as its own image, mounted ro
        assert os.path.ismount(layer.parent)
        with pytest.raises(OSError) as refused:
            (layer / "kiln-poison.js").write_text("even root cannot")
        assert refused.value.errno == errno.EROFS


def test_project_writing_node_modules_falls_back_to_a_private_install(stack: Stack) -> None:
    # patch-package style: the project's own postinstall edits an installed package.
    poison = "require('fs').appendFileSync('node_modules/vite/package.json', ' ')"
    files = unique_vanilla()
    manifest = json.loads(files["package.json"])
    manifest["scripts"]["postinstall"] = f'node -e "{poison}"'
    files["package.json"] = json.dumps(manifest)
    build_id = stack.client.submit_files(files, template="vanilla")["id"]
    end, logs = logs_of(stack, build_id)
    assert end["status"] == "succeeded", end["error"]
    assert end["cache"]["layer"] == "private"
    assert "installing its dependencies privately" in logs
    layer = layer_dir(stack, end["cache"]["layer_key"])
    assert not (layer / "vite" / "package.json").read_bytes().endswith(b" ")  # no append


def test_identical_input_is_answered_with_the_earlier_artifact(stack: Stack) -> None:
    files = node_project(WRITE_DIST, **{"marker.txt": uuid.uuid4().hex})
    first = stack.client.submit_files(files)
    assert stack.wait(first["id"])["status"] == "succeeded"

    again = stack.client.submit_files(files)
    assert again["status"] == "succeeded" and again["reused_from"] == first["id"]
    build = stack.client.build(again["id"])
    assert build["reused_from"] == first["id"] and build["cache"]["reuse"] == "hit"
    assert build["preview_url"] == stack.preview_url(again["id"])
    assert "<h1>fixture</h1>" in stack.preview(again["id"]).text
    kept = stack.var_dir / "artifacts" / again["id"] / "source.tar"
    assert kept.is_file()  # a reused build can be retried or edited like a built one
    end, logs = logs_of(stack, again["id"])
    assert end["status"] == "succeeded" and "reusing the artifact" in logs

    fresh = stack.client.submit_files(files, fresh=True)
    assert fresh["status"] == "queued" and fresh["reused_from"] is None
    end = stack.wait(fresh["id"])
    assert end["status"] == "succeeded" and end["reused_from"] is None


def test_lockfile_less_project_resolves_once(stack: Stack) -> None:
    files = node_project(WRITE_DIST)
    manifest = json.loads(files["package.json"])
    manifest["name"] = f"no-lock-{uuid.uuid4().hex[:8]}"  # the name is not part of the key
    alias = f"kiln-alias-{uuid.uuid4().hex[:8]}"  # makes the dependency set (the key) new
    manifest["dependencies"] = {"is-number": "^7.0.0", alias: "npm:ms@^2.1.3"}
    files["package.json"] = json.dumps(manifest)
    end, logs = logs_of(stack, stack.client.submit_files(files)["id"])
    assert end["status"] == "succeeded", end["error"]
    assert "package-lock.json missing: resolving the dependency ranges" in logs
    first_cache = end["cache"]
    assert first_cache["resolution"] == "miss" and first_cache["layer"] == "miss"
    files["build.js"] = WRITE_DIST + "\n// changed\n"
    end, logs = logs_of(stack, stack.client.submit_files(files)["id"])
    assert end["status"] == "succeeded", end["error"]
    assert end["cache"] == {**first_cache, "layer": "hit", "resolution": "hit"}
    assert "dependency resolution hit" in logs and "$ npm install" not in logs


def _kiln(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    kiln = Path(sys.executable).with_name("kiln")
    return subprocess.run(
        [str(kiln), *args], env=stack.env, capture_output=True, text=True, timeout=120, check=False
    )


def test_eviction_skips_layers_in_use_and_rebuilds_after(stack: Stack) -> None:
    files = unique_vanilla()
    end = stack.wait(stack.client.submit_files(files, template="vanilla")["id"])
    key = end["cache"]["layer_key"]
    store = LayerStore(stack.var_dir / "cache" / "layers")
    held = store.lock(key)
    assert held.acquire(exclusive=False)  # as a running build holds it
    try:
        result = _kiln(stack, "cache", "gc", "--layers-mb", "0", "--npm-mb", "100000")
        assert result.returncode == 0, result.stderr
        assert layer_dir(stack, key).is_dir()  # in use: kept
        assert "in use 0" not in result.stdout
    finally:
        held.release()
    result = _kiln(stack, "cache", "gc", "--layers-mb", "0", "--npm-mb", "100000")
    assert result.returncode == 0, result.stderr
    assert not layer_dir(stack, key).exists()
    assert key not in {e.key for e in store.entries()}

    files["src/main.js"] += "\n// after eviction\n"
    end = stack.wait(stack.client.submit_files(files, template="vanilla")["id"])
    assert end["status"] == "succeeded" and end["cache"]["layer"] == "miss"
    assert layer_dir(stack, key).is_dir()


PLANT_ON_THE_LAYER = """const fs = require("fs");
try {
  fs.appendFileSync("node_modules/vite/package.json", " ");
} catch (error) {  // on the read-only layer: leave something for the private install to read
  fs.writeFileSync("planted.txt", "written by the project's postinstall");
  throw error;
}
"""
SEES_PLANT = 'console.log("KILN-PLANTED=" + require("fs").existsSync("planted.txt"));\n'


def test_the_private_install_after_a_write_into_the_layer_starts_from_the_submitted_files(
    stack: Stack,
) -> None:
    """The private install has network and reads the workspace, where the project's code
    just ran: it starts from a workspace made anew, so nothing that code wrote (a rewritten
    package.json, a planted rc file) reaches it. The build step says what it sees."""
    files = unique_vanilla(**{"plant.cjs": PLANT_ON_THE_LAYER, "sees.cjs": SEES_PLANT})
    manifest = json.loads(files["package.json"])
    manifest["scripts"]["postinstall"] = "node plant.cjs"
    manifest["scripts"]["build"] = "node sees.cjs && " + manifest["scripts"]["build"]
    files["package.json"] = json.dumps(manifest)
    build_id = stack.client.submit_files(files, template="vanilla")["id"]
    end, logs = logs_of(stack, build_id)
    assert end["status"] == "succeeded", end["error"]
    assert "installing its dependencies privately" in logs
    assert "KILN-PLANTED=false" in logs and "KILN-PLANTED=true" not in logs, logs[-3000:]
