"""The install-target registry: every product is one Deployer in acmelab.deploy.DEPLOYERS,
and the services file, target ids, RAM statements and the command come from it."""

from __future__ import annotations

import pytest

from acmelab import cli, deploy
from acmelab.config import parse_services
from acmelab.deploy import DEPLOYERS, InstallTarget
from acmelab.errors import ConfigError


def test_the_registry_holds_the_four_products():
    assert list(DEPLOYERS) == ["cdn", "apigateway", "cas", "slb"]
    assert all(d.product == p for p, d in DEPLOYERS.items())
    with pytest.raises(ConfigError, match="unknown product 'elb'"):
        deploy.deployer("elb")


def test_slb_in_a_services_file():
    [service] = parse_services({"service": [{"domains": ["shop.example.com"], "slb": [
        {"load_balancer_id": "lb-1", "listener_port": 443}, {"load_balancer_id": "lb-2", "listener_port": 8443}]}]})
    assert [t.id for t in service.install] == ["slb:lb-1:443", "slb:lb-2:8443"]
    target = service.install[0]
    assert target == InstallTarget("slb", load_balancer_id="lb-1", listener_port=443)
    assert InstallTarget.from_dict(target.to_dict()) == target
    assert target.to_dict() == {"product": "slb", "listener_port": 443, "load_balancer_id": "lb-1"}


@pytest.mark.parametrize("value, message", [
    ({"load_balancer_id": "lb-1"}, "exactly load_balancer_id and listener_port"),
    ({"load_balancer_id": "lb-1", "listener_port": "443"}, "exactly load_balancer_id and listener_port"),
    ({"load_balancer_id": "lb-1", "listener_port": 0}, "1..65535"),
    ("lb-1", "a table"),
])
def test_bad_slb_entries_name_the_service(value, message):
    with pytest.raises(ConfigError) as error:
        parse_services({"service": [{"name": "shop", "domains": ["shop.example.com"], "slb": value}]})
    assert "service 'shop'" in str(error.value) and message in str(error.value)


def test_one_listener_is_claimed_by_one_service():
    entry = {"load_balancer_id": "lb-1", "listener_port": 443}
    with pytest.raises(ConfigError, match="slb:lb-1:443 is also claimed by service 'a.example.com'"):
        parse_services({"service": [{"domains": ["a.example.com"], "slb": entry},
                                    {"domains": ["b.example.com"], "slb": entry}]})


def test_preflight_without_a_client_checks_the_names_only():
    cdn = deploy.deployer("cdn")
    cdn.preflight(None, InstallTarget("cdn", "www.example.com"), ["*.example.com"])
    with pytest.raises(ConfigError, match="cdn:api.example.org: the certificate covers www.example.com, not api.example.org"):
        cdn.preflight(None, InstallTarget("cdn", "api.example.org"), ["www.example.com"])


def test_ram_statements_and_actions_come_from_the_deployers():
    targets = [InstallTarget("cdn", "www.example.com"), InstallTarget("slb", load_balancer_id="lb-1", listener_port=443)]
    statements = deploy.ram_statements(targets, "cn-shanghai")
    resources = {action: s["Resource"] for s in statements for action in s["Action"]}
    assert resources["cdn:SetCdnDomainSSLCertificate"] == ["acs:cdn:*:*:domain/www.example.com"]
    assert resources["slb:SetLoadBalancerHTTPSListenerAttribute"] == ["acs:slb:cn-shanghai:*:loadbalancer/lb-1"]
    assert "yundun-cert:UploadUserCertificate" not in resources
    assert "slb:DeleteServerCertificate" in deploy.ram_actions() and "cdn:DescribeCdnDomainDetail" in deploy.ram_actions()


def test_every_product_is_an_install_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["install", "--help"])
    assert "{cdn,apigateway,cas,slb}" in capsys.readouterr().out
    args = cli.build_parser().parse_args(["install", "slb", "shop", "--load-balancer-id", "lb-1"])
    assert DEPLOYERS["slb"].from_arguments(args) == InstallTarget("slb", load_balancer_id="lb-1", listener_port=443)


def test_importing_acmelab_aliyun_alone_knows_every_deployers_endpoint():
    """The endpoint table lives in acmelab.aliyun itself: no deployer adds to
    it when imported (a fresh interpreter that imports only acmelab.aliyun)."""
    import subprocess
    import sys

    script = ("import sys, acmelab.aliyun as a; "
              "assert not [m for m in sys.modules if m.startswith('acmelab.deploy')]; "
              "print(sorted(a.DEFAULT_ENDPOINTS))")
    listed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    for deployer in DEPLOYERS.values():
        assert repr(sys.modules[type(deployer).__module__].PRODUCT.lower()) in listed


def test_a_forbidden_answer_names_the_refused_ram_action_of_every_deployer():
    """Each deployer's RAM actions use its product's RAM namespace, and a
    Forbidden.RAM for any of them names exactly that ``<namespace>:<action>``."""
    import sys

    from aliyunsdkcore.acs_exception.exceptions import ServerException

    from acmelab.aliyun import RAM_SERVICES, AliyunClient, Credentials

    client = AliyunClient(Credentials("LTAIkey", "unit-secret-0123456789abcdef"), endpoint="localhost:1")
    for deployer in DEPLOYERS.values():
        product = sys.modules[type(deployer).__module__].PRODUCT
        namespace, system_policy = RAM_SERVICES[product.lower()]
        assert deployer.ram_actions
        for ram_action in deployer.ram_actions:
            assert ram_action.startswith(namespace + ":"), ram_action
            error = client._map_server_exception(ServerException("Forbidden.RAM", "denied", http_status=403),
                                                 ram_action.split(":", 1)[1], product, {})
            assert f"custom policy allowing {ram_action}" in str(error) and system_policy in str(error)
