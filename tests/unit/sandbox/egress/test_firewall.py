from orchestrator.sandbox.egress.firewall import CHAIN, chain_rules, chain_rules_v6, jump_rule


def test_only_the_proxy_port_on_the_gateway_is_accepted_then_everything_is_rejected() -> None:
    rules = chain_rules("172.30.213.1", 3128)
    assert rules[0] == ["-p", "tcp", "-d", "172.30.213.1/32", "--dport", "3128", "-j", "ACCEPT"]
    assert all("ACCEPT" not in rule for rule in rules[1:])
    assert rules[-1][:2] == ["-j", "REJECT"]  # the catch-all comes last


def test_ipv6_from_the_bridge_is_dropped() -> None:
    assert chain_rules_v6() == [["-j", "DROP"]]


def test_everything_arriving_through_the_bridge_goes_to_the_chain() -> None:
    assert jump_rule("kiln-sbx0") == ["-i", "kiln-sbx0", "-j", CHAIN]
