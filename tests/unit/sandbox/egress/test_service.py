from orchestrator.sandbox.egress.service import allowed_hosts, proxy_url
from orchestrator.settings import Settings


def test_the_registry_host_is_always_allowed() -> None:
    settings = Settings(npm_registry="https://npm.corp.example/repo/", egress_allow=" A.example ,")
    assert allowed_hosts(settings) == ["a.example", "npm.corp.example"]


def test_proxy_url_is_on_the_sandbox_gateway() -> None:
    settings = Settings(sandbox_subnet="10.99.0.0/24", egress_proxy_port=3129)
    assert proxy_url(settings) == "http://10.99.0.1:3129"


def test_yarn_alias_of_the_public_registry_is_allowed_with_it() -> None:
    settings = Settings(npm_registry="https://registry.npmjs.org/", egress_allow="")
    assert allowed_hosts(settings) == ["registry.npmjs.org", "registry.yarnpkg.com"]
