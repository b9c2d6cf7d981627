"""What a sandbox may reach through the egress proxy: pure decisions, tested from tables.

A request passes only when its host is on the allowlist, its port is allowed, and every
address the host resolves to is public. Loopback, private, link-local (the cloud metadata
address), shared, multicast and reserved ranges are refused even for allowlisted names, so
a DNS answer cannot point a sandbox at the host or its network.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DENIED_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, incl. the metadata address 169.254.169.254
        "172.16.0.0/12",  # private, incl. Docker's bridges
        "192.0.0.0/24",  # IETF protocol assignments
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, incl. broadcast
        "::/127",  # unspecified and loopback
        "64:ff9b::/96",  # NAT64
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "ff00::/8",  # multicast
    )
)


class Refused(Exception):
    """Raised when the policy refuses a request; the message says why."""


@dataclass(frozen=True)
class EgressPolicy:
    """Allowlisted hosts and ports, plus address ranges that are never reachable."""

    hosts: frozenset[str]
    ports: frozenset[int] = frozenset({443})
    denied: tuple[IPNetwork, ...] = field(default=DENIED_NETWORKS)

    @classmethod
    def for_registries(
        cls, urls: Iterable[str], extra_hosts: Iterable[str] = (), extra_denied: Iterable[str] = ()
    ) -> EgressPolicy:
        """The policy that lets a sandbox reach these registries (and extra hosts) over HTTPS."""
        hosts = {host for url in urls if (host := urlsplit(url).hostname)}
        hosts |= {h.strip().lower().rstrip(".") for h in extra_hosts if h.strip()}
        denied = DENIED_NETWORKS + tuple(ipaddress.ip_network(c) for c in extra_denied)
        return cls(hosts=frozenset(h.lower() for h in hosts), denied=denied)

    def check_target(self, host: str, port: int) -> None:
        """Raise Refused unless ``host:port`` is allowlisted (before any DNS look-up)."""
        name = host.lower().rstrip(".")
        if port not in self.ports:
            raise Refused(f"port {port} is not allowed")
        if name not in self.hosts:
            raise Refused(f"host {name} is not on the allowlist")

    def check_addresses(
        self, host: str, addresses: Iterable[str], is_local: Callable[[str], bool]
    ) -> list[str]:
        """Return the addresses to connect to; Refused if any of them is not public.

        ``is_local`` tells whether an address belongs to this host (the API, Redis and
        every other service listening here), which is refused whatever its range.
        """
        checked = []
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            if any(address in network for network in self.denied) or is_local(str(address)):
                raise Refused(f"host {host} resolves to a non-public address ({address})")
            checked.append(str(address))
        if not checked:
            raise Refused(f"host {host} does not resolve")
        return checked


def parse_connect(request_line: str) -> tuple[str, int]:
    """``CONNECT host:port HTTP/1.1`` → ``(host, port)``; Refused for anything else."""
    parts = request_line.split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise Refused("malformed request")
    method, target, _ = parts
    if method.upper() != "CONNECT":
        raise Refused(f"only CONNECT is allowed, not {method[:16]}")
    host, sep, port_text = target.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise Refused("malformed CONNECT target")
    return host, int(port_text)
