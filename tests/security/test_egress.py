"""Egress: no project code reaches the network; the install network reaches only the proxy."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest

from orchestrator.context import Context
from orchestrator.records.models import Phase
from orchestrator.sandbox.runner import hand_over
from orchestrator.sandbox.step import Limits, Step
from orchestrator.settings import Settings
from tests.integration.conftest import Stack, _free_port, node_project
from tests.security.conftest import Beside, Decoy
from tests.security.probes import PROBE_LIB, egress_targets, host_address, probe_script

pytestmark = pytest.mark.security
PROBE_BUILD = "5ec0000000000001"
REPORT_TO_DIST = """
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync("dist/index.html", "<!doctype html><h1>probe</h1>");
for (const f of fs.readdirSync(".").filter((f) => f.startsWith("report-"))) {
  fs.copyFileSync(f, "dist/" + f);
}
"""


def assert_offline(report: dict[str, Any]) -> None:
    opened = [target for target, result in report["tcp"].items() if result == "OPEN"]
    assert opened == [], f"reachable from the sandbox: {opened}"
    resolved = [name for name, result in report["dns"].items() if str(result)[:1].isdigit()]
    assert resolved == [], f"resolved from the sandbox: {resolved}"


def test_build_script_and_lifecycle_scripts_have_no_network(
    beside: Beside, hostile_stack: Stack
) -> None:
    files = node_project(
        probe_script(hostile_stack.port, "report-build.json", then=REPORT_TO_DIST),
        **{"postinstall.js": probe_script(hostile_stack.port, "report-postinstall.json")},
    )
    manifest = json.loads(files["package.json"])
    manifest["scripts"]["postinstall"] = "node postinstall.js"
    files["package.json"] = json.dumps(manifest)
    build_id, end = beside.attack(files)
    assert end["status"] == "succeeded", end["error"]
    for lifecycle in ("postinstall", "build"):
        page = hostile_stack.preview(build_id, f"/report-{lifecycle}.json")
        assert page.status_code == 200, f"the {lifecycle} probe did not report"
        assert_offline(page.json())


def run_on_install_network(stack: Stack, script: str, tmp_path: Path) -> dict[str, Any]:
    """Run ``script`` the way the install step runs npm: same container, same network."""
    # An instance of its own: no janitor (the stack's, or a running ./scripts/up stack's)
    # takes this container, which belongs to no build record, for an orphan.
    instance = f"{stack.instance}-probe"
    ctx = Context(Settings(var_dir=stack.var_dir, instance=instance))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    hand_over(workspace, ctx.sandbox.options.uid)
    lines: list[str] = []
    step = Step("install", Phase.INSTALLING, ["node", "-e", script], True, "install_failed")
    result = ctx.sandbox.run_step(
        step,
        build_id=PROBE_BUILD,
        limits=Limits(timeout_s=120, memory_mb=512, cpus=1.0),
        workspace=workspace,
        on_output=lambda _stream, out: lines.extend(out),
        should_cancel=lambda: False,
    )
    assert result.ok, lines
    report: dict[str, Any] = json.loads(lines[-1])
    return report


def test_the_install_network_reaches_only_the_proxy_and_the_proxy_only_the_registry(
    hostile_stack: Stack, tmp_path: Path, decoy: Decoy
) -> None:
    direct = [t for t in egress_targets(hostile_stack.port) if t != ("172.30.213.1", 3128)]
    gateways = ("172.30.213.1", "172.17.0.1", host_address())
    direct += [(gateway, decoy.port) for gateway in gateways]
    through_proxy = [
        "registry.npmjs.org:443",
        "example.com:443",
        "registry.npmjs.org:80",
        "localhost:443",
        "127.0.0.1:443",
        f"{host_address()}:443",
        "169.254.169.254:443",
        "172.17.0.1:6379",
    ]
    script = (
        PROBE_LIB
        + f"(async () => {{ const r = await probeAll({json.dumps(direct)}, ['registry.npmjs.org']);"
        + f" r.proxy = {{}}; for (const t of {json.dumps(through_proxy)})"
        + " r.proxy[t] = await viaProxy('172.30.213.1', 3128, t);"
        + " console.log(JSON.stringify(r)); })();"
    )
    report = run_on_install_network(hostile_stack, script, tmp_path)
    assert_offline(report)
    proxy = report["proxy"]
    assert decoy.peers == ["127.0.0.1"]  # only the check from the host itself got through
    assert proxy.pop("registry.npmjs.org:443") == 200  # the one way out works
    assert set(proxy.values()) == {403}, proxy
    client = docker.from_env(timeout=30)
    assert client.containers.list(all=True, filters={"label": f"kiln.build={PROBE_BUILD}"}) == []


def test_an_allowlisted_name_that_resolves_to_a_private_address_is_refused() -> None:
    port = _free_port()
    proxy = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.sandbox.egress", "127.0.0.1", str(port), "localhost"],
        stdout=subprocess.PIPE,
    )
    try:
        assert proxy.stdout is not None and proxy.stdout.readline().strip() == b"ready"
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n")
            reply = conn.recv(4096).decode()
        assert reply.startswith("HTTP/1.1 403")
        assert "non-public address" in reply
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)


def test_the_install_network_is_internal(hostile_stack: Stack) -> None:
    network = docker.from_env(timeout=30).networks.get("kiln-sandbox")
    assert network.attrs["Internal"] is True
    assert network.attrs["Options"]["com.docker.network.bridge.enable_icc"] == "false"
