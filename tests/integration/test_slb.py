"""Alibaba Cloud SLB (Classic Load Balancer) as an install target, against the lab:
``acmelab install slb`` and ``slb = [...]`` in a services file install, verify by a
TLS handshake at the lab's SLB edge, and renew (the superseded server certificate
is deleted after the rebind)."""

from __future__ import annotations

import json
import uuid

import pytest

from acmelab.deploy import lab_client, slb
from acmelab.errors import DeployError
from tests.integration._served import served_serial

pytestmark = pytest.mark.lab

RUN = uuid.uuid4().hex[:6]
#: the lab's seeded load balancers (acmelab.lab.aliyun.seed.LOAD_BALANCERS)
SHOP = "lb-bp1acmelabshop0000001"
API = "lb-bp1acmelabapi00000002"


@pytest.fixture
def run(cli_json):
    """``run(*argv) -> (exit code, JSON stdout, stderr)``: conftest's ``cli_json``."""
    return cli_json


def server_certificates(lab) -> set[str]:
    answer = lab_client(lab).call("DescribeServerCertificates", slb.VERSION, {}, product=slb.PRODUCT)
    return {c["ServerCertificateId"] for c in answer["ServerCertificates"]["ServerCertificate"]}


def bound(lab, load_balancer_id: str, port: int) -> str:
    return slb.describe_https_listener(lab_client(lab), load_balancer_id, port)["ServerCertificateId"]


def test_install_slb_verify_and_renew(run, lab):
    domain = f"slb-{RUN}.example.com"
    code, out, err = run("issue", "-d", domain, "--dns", "challtestsrv")
    assert code == 0, err
    [issued] = out["services"]

    code, out, err = run("install", "slb", domain, "--load-balancer-id", SHOP, "--listener-port", "443")
    [result] = out["services"]
    target = f"slb:{SHOP}:443"
    assert code == 0, result["error"]
    assert result["status"] == "installed" and result["installed"] == [target] and result["verified"] == [target]
    first_id = bound(lab, SHOP, 443)
    assert first_id in server_certificates(lab)
    assert served_serial(lab, domain, lab.slb_edge_port) == issued["serial_hex"]
    meta = json.loads((run.state / "certificates" / domain / "meta.json").read_text())
    assert meta["installed"][target]["cert_id"] == first_id
    assert {"product": "slb", "load_balancer_id": SHOP, "listener_port": 443} in meta["service"]["install"]

    # renew: a new certificate, uploaded, rebound, proven; the superseded upload deleted
    code, out, err = run("renew", "--force")
    [renewed] = out["services"]
    assert code == 0, renewed["error"]
    assert renewed["status"] == "renewed" and renewed["installed"] == [target] and renewed["verified"] == [target]
    second_id = bound(lab, SHOP, 443)
    assert second_id != first_id and second_id in server_certificates(lab)
    assert first_id not in server_certificates(lab)
    assert served_serial(lab, domain, lab.slb_edge_port) == renewed["serial_hex"] != issued["serial_hex"]


def test_install_slb_preflight_names_the_target(run, lab):
    domain = f"slb-pre-{RUN}.example.com"
    code, _, err = run("issue", "-d", domain, "--dns", "challtestsrv")
    assert code == 0, err
    before = server_certificates(lab)
    code, out, _ = run("install", "slb", domain, "--load-balancer-id", "lb-doesnotexist0000000")
    [result] = out["services"]
    assert code == 1 and "slb:lb-doesnotexist0000000:443" in result["error"]
    assert "InvalidLoadBalancerId.NotFound" in result["error"]
    code, out, _ = run("install", "slb", domain, "--load-balancer-id", SHOP, "--listener-port", "8443")
    [result] = out["services"]
    assert code == 1 and f"slb:{SHOP}:8443" in result["error"] and "no HTTPS listener on port 8443" in result["error"]
    assert server_certificates(lab) == before            # nothing uploaded
    with pytest.raises(DeployError, match="no load balancer"):
        slb.describe_load_balancer_attribute(lab_client(lab), "lb-doesnotexist0000000")


def test_services_file_with_slb(run, lab, tmp_path):
    domain = f"slb-file-{RUN}.example.com"
    services = tmp_path / "services.toml"
    services.write_text(f'[[service]]\ndomains = ["{domain}"]\ndns = "challtestsrv"\n'
                        f'slb = [{{ load_balancer_id = "{API}", listener_port = 8443 }}]\n')
    code, out, err = run("apply", str(services))
    [applied] = out["services"]
    target = f"slb:{API}:8443"
    assert code == 0, applied["error"]
    assert applied["status"] == "issued" and applied["verified"] == [target]
    assert served_serial(lab, domain, lab.slb_edge_port) == applied["serial_hex"]
    code, out, _ = run("apply", str(services))
    assert code == 0 and out["counts"] == {"unchanged": 1} and out["services"][0]["verified"] == [target]
    code, out, _ = run("apply", str(services), "--force")
    [again] = out["services"]
    assert code == 0 and again["status"] == "renewed" and again["installed"] == [target]
    assert served_serial(lab, domain, lab.slb_edge_port) == again["serial_hex"] != applied["serial_hex"]
