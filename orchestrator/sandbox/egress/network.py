"""The internal Docker network that install containers sit on.

``internal`` gives it no route out; inter-container traffic is off, so install containers
of different builds cannot talk to each other. The bridge has a fixed name so the host
firewall can match everything that comes in through it.
"""

from __future__ import annotations

import ipaddress

import docker
import docker.errors
from docker.types import IPAMConfig, IPAMPool

from orchestrator.errors import SandboxError

LABEL_ROLE = "kiln.role"
ROLE = "sandbox-network"


def gateway_of(subnet: str) -> str:
    """The host's address on the sandbox network: the subnet's first host address."""
    return str(next(ipaddress.ip_network(subnet).hosts()))


def network_config(name: str, subnet: str, bridge: str) -> dict[str, object]:
    """Keyword arguments for ``client.networks.create`` (pure, so it can be tested)."""
    return {
        "name": name,
        "driver": "bridge",
        "internal": True,
        "check_duplicate": True,
        "labels": {LABEL_ROLE: ROLE},
        "options": {
            "com.docker.network.bridge.name": bridge,
            "com.docker.network.bridge.enable_icc": "false",
            "com.docker.network.bridge.enable_ip_masquerade": "false",
        },
        "ipam": IPAMConfig(pool_configs=[IPAMPool(subnet=subnet, gateway=gateway_of(subnet))]),
    }


def ensure_network(client: docker.DockerClient, name: str, subnet: str, bridge: str) -> None:
    """Create the sandbox network unless it exists; refuse one that is not internal."""
    try:
        network = client.networks.get(name)
    except docker.errors.NotFound:
        try:
            client.networks.create(**network_config(name, subnet, bridge))
            return
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: another worker made it first
                raise SandboxError(f"could not create the sandbox network {name}: {exc}") from exc
            network = client.networks.get(name)
    attrs = network.attrs
    configs = (attrs.get("IPAM") or {}).get("Config") or []
    if not attrs.get("Internal") or [c.get("Subnet") for c in configs] != [subnet]:
        raise SandboxError(
            f"Docker network {name} exists but is not Kiln's internal network on {subnet}; "
            "remove it (docker network rm) or set KILN_SANDBOX_NETWORK"
        )
