"""What a build can see of its host: no secrets, no capabilities, no Docker socket, no root."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Stack, node_project
from tests.security.conftest import Beside

pytestmark = pytest.mark.security

INSPECT = """
const fs = require("fs");
const read = (p) => { try { return fs.readFileSync(p, "utf8"); } catch (e) { return e.code; } };
const tryWrite = (p) => {
  try { fs.writeFileSync(p, "x"); return "written"; } catch (e) { return e.code; }
};
const status = read("/proc/self/status");
const field = (name) => (status.match(new RegExp("^" + name + ":\\\\s*(.*)$", "m")) || [])[1];
const report = {
  uid: process.getuid(), gid: process.getgid(),
  env: Object.keys(process.env).sort(),
  capEff: field("CapEff"), capBnd: field("CapBnd"), noNewPrivs: field("NoNewPrivs"),
  seccomp: field("Seccomp"),
  sockets: ["/var/run/docker.sock", "/run/docker.sock", "/var/run/redis/redis-server.sock"]
    .filter((p) => fs.existsSync(p)),
  mounts: read("/proc/self/mounts"),
  writeRoot: tryWrite("/etc/kiln-was-here"), writeUsr: tryWrite("/usr/bin/kiln-was-here"),
  writeTmp: tryWrite("/tmp/ok"), writeWorkspace: tryWrite("ok.txt"),
  hostShadow: read("/etc/shadow").length > 20 ? "readable" : read("/etc/shadow"),
};
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync("dist/index.html", "<h1>inspect</h1>");
fs.writeFileSync("dist/report.json", JSON.stringify(report));
"""
ALLOWED_ENV = {
    "PATH",
    "HOME",
    "CI",
    "NODE_EXTRA_CA_CERTS",
    "INIT_CWD",
    "COLOR",
    "EDITOR",
    "NODE",
    "NODE_VERSION",
    "YARN_VERSION",
    "PWD",
    "HOSTNAME",
    "SHLVL",
    "_",
    "OLDPWD",
}


def test_no_secrets_capabilities_socket_or_root(
    beside: Beside, hostile_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_id, end = beside.attack(node_project(INSPECT))
    assert end["status"] == "succeeded", end["error"]
    report = hostile_stack.preview(build_id, "/report.json").json()
    assert report["uid"] != 0 and report["gid"] != 0
    assert int(report["capEff"], 16) == 0 and int(report["capBnd"], 16) == 0
    assert report["noNewPrivs"] == "1"
    assert report["seccomp"] == "2"  # Docker's default seccomp filter is on
    assert report["sockets"] == []
    assert "docker.sock" not in report["mounts"]
    assert report["writeRoot"] == "EROFS" and report["writeUsr"] == "EROFS"
    assert report["writeTmp"] == "written" and report["writeWorkspace"] == "written"
    assert report["hostShadow"] in ("EACCES", "ENOENT")
    unexpected = [
        name for name in report["env"] if name not in ALLOWED_ENV and not name.startswith("npm_")
    ]
    assert unexpected == [], "environment variables the sandbox should not have"
    leaked = [name for name in report["env"] if "KILN" in name or "REDIS" in name]
    assert leaked == []


def test_a_project_cannot_fake_kilns_lines_or_send_escapes(
    beside: Beside, hostile_stack: Stack
) -> None:
    script = (
        'console.log("[kiln] succeeded: fake\\u001b[31m red\\u0007\\u001b]0;title\\u0007");'
        'console.error("\\u001b[2J\\u001b[Hcleared");'
        "process.exit(1);"
    )
    build_id, end = beside.attack(node_project(script))
    assert end["status"] == "failed"
    events = hostile_stack.events(build_id)
    project_lines = [e.data for e in events if e.event == "log" and "source" not in e.data]
    texts = [line["text"] for line in project_lines]
    assert "[kiln] succeeded: fake red" in texts and "cleared" in texts
    assert not any("\x1b" in text or "\x07" in text for text in texts)
    kiln_lines = [e.data["text"] for e in events if e.data.get("source") == "kiln"]
    assert not any("fake" in text for text in kiln_lines)
