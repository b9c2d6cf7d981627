"""Host firewall rules for the sandbox network: the proxy port is the only way in.

An internal Docker network has no route out, but its containers can still reach every
service the host listens on (through any bridge gateway or the host's own address). These
rules drop all of that at INPUT, except TCP to the egress proxy.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path

from orchestrator.errors import SandboxError

CHAIN = "KILN-SANDBOX"
LOCK = Path("/run/lock/kiln-firewall.lock")


def chain_rules(gateway: str, port: int) -> list[list[str]]:
    """The rules of Kiln's IPv4 chain, in order (arguments after ``-A CHAIN``)."""
    return [
        ["-p", "tcp", "-d", f"{gateway}/32", "--dport", str(port), "-j", "ACCEPT"],
        ["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
        ["-j", "REJECT", "--reject-with", "icmp-port-unreachable"],
    ]


def chain_rules_v6() -> list[list[str]]:
    """IPv6 carries nothing for the sandbox (link-local addresses included)."""
    return [["-j", "DROP"]]


def jump_rule(bridge: str) -> list[str]:
    """The INPUT rule that sends everything arriving through the bridge to Kiln's chain."""
    return ["-i", bridge, "-j", CHAIN]


def apply(bridge: str, gateway: str, port: int) -> None:
    """Install (or refresh) the rules; SandboxError when the host cannot take them."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _apply_table("iptables", chain_rules(gateway, port), bridge)
        if shutil.which("ip6tables"):
            _apply_table("ip6tables", chain_rules_v6(), bridge)


def _apply_table(tool: str, rules: list[list[str]], bridge: str) -> None:
    if shutil.which(tool) is None:
        raise SandboxError(f"{tool} is missing; the sandbox network cannot be firewalled")
    if _run(tool, "-S", CHAIN, check=False).returncode != 0:
        _run(tool, "-N", CHAIN)
    current = [
        line for line in _run(tool, "-S", CHAIN).stdout.splitlines() if line.startswith("-A")
    ]
    in_place = len(current) == len(rules) and all(
        _run(tool, "-C", CHAIN, *rule, check=False).returncode == 0 for rule in rules
    )
    if not in_place:
        # Refill the chain while a temporary rule blocks the bridge, so no packet slips
        # through the moment the chain is empty.
        block = ["-i", bridge, "-j", "DROP"]
        _run(tool, "-I", "INPUT", "1", *block)
        try:
            _run(tool, "-F", CHAIN)
            for rule in rules:
                _run(tool, "-A", CHAIN, *rule)
        finally:
            _run(tool, "-D", "INPUT", *block, check=False)
    if _run(tool, "-C", "INPUT", *jump_rule(bridge), check=False).returncode != 0:
        _run(tool, "-I", "INPUT", "1", *jump_rule(bridge))


def _run(tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([tool, "-w", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise SandboxError(f"{tool} {' '.join(args)} failed: {result.stderr.strip()}")
    return result
