from orchestrator.sandbox.egress.network import gateway_of, network_config


def test_gateway_is_the_first_host_address() -> None:
    assert gateway_of("172.30.213.0/24") == "172.30.213.1"


def test_the_network_is_internal_without_container_to_container_traffic() -> None:
    config = network_config("kiln-sandbox", "172.30.213.0/24", "kiln-sbx0")
    assert config["internal"] is True
    options = config["options"]
    assert isinstance(options, dict)
    assert options["com.docker.network.bridge.enable_icc"] == "false"
    assert options["com.docker.network.bridge.name"] == "kiln-sbx0"
    ipam = config["ipam"]
    assert isinstance(ipam, dict)
    [pool] = ipam["Config"]
    assert (pool["Subnet"], pool["Gateway"]) == ("172.30.213.0/24", "172.30.213.1")
