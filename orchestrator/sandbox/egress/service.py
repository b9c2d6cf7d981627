"""Starting the egress path from a worker: network, firewall, then the proxy process."""

from __future__ import annotations

import ctypes
import logging
import select
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

import docker

from orchestrator.errors import SandboxError
from orchestrator.sandbox.egress import firewall
from orchestrator.sandbox.egress.network import ensure_network, gateway_of
from orchestrator.settings import Settings

log = logging.getLogger("kiln.egress")
READY_TIMEOUT_S = 10
NPM_PUBLIC = "registry.npmjs.org"
YARN_ALIAS = "registry.yarnpkg.com"  # the same registry under yarn's name
PR_SET_PDEATHSIG = 1


def allowed_hosts(settings: Settings) -> list[str]:
    """The registry's host plus the configured extra hosts."""
    hosts = [urlsplit(settings.npm_registry).hostname or ""]
    if hosts[0] == NPM_PUBLIC:  # yarn 1 lockfiles name npm's registry by yarn's alias
        hosts.append(YARN_ALIAS)
    hosts += [h.strip() for h in settings.egress_allow.split(",")]
    return sorted({h.lower() for h in hosts if h})


def proxy_url(settings: Settings) -> str:
    """Where install containers find the proxy: the sandbox network's gateway."""
    return f"http://{gateway_of(settings.sandbox_subnet)}:{settings.egress_proxy_port}"


def start_egress(settings: Settings, client: docker.DockerClient) -> subprocess.Popen[bytes]:
    """Make the network and firewall, start the proxy; returns the proxy process."""
    ensure_network(
        client, settings.sandbox_network, settings.sandbox_subnet, settings.sandbox_bridge
    )
    gateway = gateway_of(settings.sandbox_subnet)
    if settings.egress_firewall:
        firewall.apply(settings.sandbox_bridge, gateway, settings.egress_proxy_port)
    else:
        log.warning("KILN_EGRESS_FIREWALL is off: install containers can reach host services")
    argv = [
        sys.executable,
        "-m",
        "orchestrator.sandbox.egress",
        gateway,
        str(settings.egress_proxy_port),
        ",".join(allowed_hosts(settings)),
        settings.egress_deny,
    ]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, preexec_fn=_die_with_parent)
    _wait_ready(process)
    return process


def _wait_ready(process: subprocess.Popen[bytes]) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        readable, _, _ = select.select([process.stdout], [], [], 0.1)
        if readable and process.stdout.readline().strip() == b"ready":
            return
        if process.poll() is not None:
            raise SandboxError(f"the egress proxy exited with {process.returncode}; see the log")
    process.kill()
    raise SandboxError("the egress proxy did not start in time")


def _die_with_parent() -> None:
    # The proxy must not outlive a worker that is killed outright.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
