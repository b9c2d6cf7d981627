import pytest

from orchestrator.sandbox.egress.policy import EgressPolicy, Refused, parse_connect

POLICY = EgressPolicy.for_registries(["https://registry.npmjs.org/"], extra_hosts=["cdn.example"])


def never_local(_: str) -> bool:
    return False


@pytest.mark.parametrize(
    ("host", "port"),
    [("registry.npmjs.org", 443), ("REGISTRY.npmjs.org.", 443), ("cdn.example", 443)],
)
def test_allowlisted_hosts_on_443_pass(host: str, port: int) -> None:
    POLICY.check_target(host, port)


@pytest.mark.parametrize(
    ("host", "port", "reason"),
    [
        ("example.com", 443, "not on the allowlist"),
        ("registry.npmjs.org.evil.com", 443, "not on the allowlist"),
        ("evil.registry.npmjs.org", 443, "not on the allowlist"),
        ("registry.npmjs.org", 80, "port 80"),
        ("registry.npmjs.org", 22, "port 22"),
        ("127.0.0.1", 443, "not on the allowlist"),
    ],
)
def test_other_targets_are_refused(host: str, port: int, reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        POLICY.check_target(host, port)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.17.0.1",
        "172.30.213.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "fe80::1%eth0",
    ],
)
def test_non_public_addresses_are_refused_even_for_allowlisted_names(address: str) -> None:
    with pytest.raises(Refused, match="non-public"):
        POLICY.check_addresses("registry.npmjs.org", ["203.0.113.80", address], never_local)


def test_public_addresses_pass_in_order() -> None:
    assert POLICY.check_addresses(
        "registry.npmjs.org", ["203.0.113.80", "2606:4700::6810:1"], never_local
    ) == ["203.0.113.80", "2606:4700::6810:1"]


def test_the_hosts_own_addresses_are_refused_whatever_their_range() -> None:
    with pytest.raises(Refused, match="non-public"):
        POLICY.check_addresses("x", ["203.0.113.7"], lambda a: a == "203.0.113.7")


def test_extra_denied_ranges_apply() -> None:
    policy = EgressPolicy.for_registries(["https://r.example/"], extra_denied=["203.0.113.0/24"])
    with pytest.raises(Refused):
        policy.check_addresses("r.example", ["203.0.113.80"], never_local)


def test_an_unresolvable_host_is_refused() -> None:
    with pytest.raises(Refused, match="does not resolve"):
        POLICY.check_addresses("registry.npmjs.org", [], never_local)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("CONNECT registry.npmjs.org:443 HTTP/1.1", ("registry.npmjs.org", 443)),
        ("connect [2606:4700::1]:443 HTTP/1.0", ("2606:4700::1", 443)),
    ],
)
def test_parse_connect(line: str, expected: tuple[str, int]) -> None:
    assert parse_connect(line) == expected


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("GET http://registry.npmjs.org/react HTTP/1.1", "only CONNECT"),
        ("CONNECT registry.npmjs.org HTTP/1.1", "malformed CONNECT target"),
        ("CONNECT registry.npmjs.org:99999 HTTP/1.1", "malformed CONNECT target"),
        ("CONNECT :443 HTTP/1.1", "malformed CONNECT target"),
        ("CONNECT a:443", "malformed request"),
        ("", "malformed request"),
    ],
)
def test_parse_connect_refuses_the_rest(line: str, reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        parse_connect(line)
