"""CAS-first delivery and the international site (issue #14), against the lab.

``delivery = "cas"``: each certificate version is uploaded once to the lab's
Certificate Management Service (``UploadUserCertificate``), the CDN domain
binds it by ``CertId`` (``CertType=cas``: the key is not sent to CDN), the
TLS edge serves it, and once every target has the new version the
superseded CAS certificates are deleted (``DeleteUserCertificate``),
keeping ``keep_previous``.  ``region = "ap-southeast-1"`` makes the CDN
``CertRegion`` the international one.
"""

from __future__ import annotations

import json
import uuid

import pytest

from acmelab.deploy import cas, cdn, lab_client
from acmelab.errors import AliyunError
from tests.integration._served import served_serial

pytestmark = pytest.mark.lab

RUN = uuid.uuid4().hex[:6]


@pytest.fixture
def run(cli_json):
    """``run(*argv) -> (exit code, JSON stdout, stderr)``: conftest's ``cli_json``."""
    return cli_json


def cas_exists(lab, cert_id: int) -> bool:
    try:
        lab_client(lab).call("GetUserCertificateDetail", cas.VERSION, {"CertId": str(cert_id)}, product=cas.PRODUCT)
    except AliyunError as error:
        assert error.code == "InvalidCertId.NotFound"
        return False
    return True


def binding(lab, domain: str) -> dict:
    [info] = cdn.describe_domain_certificate_info(lab_client(lab), domain)
    return info


@pytest.mark.parametrize("keep", [1, 0])
def test_cas_first_binds_cdn_by_cert_id_and_removes_superseded(run, lab, tmp_path, keep):
    domain = f"casfirst{keep}-{RUN}.example.com"
    cdn.add_cdn_domain(lab_client(lab), domain)
    services = tmp_path / "services.toml"
    services.write_text(f'[[service]]\nname = "shop"\ndomains = ["{domain}"]\ndns = "challtestsrv"\n'
                        f'cdn = "{domain}"\ndelivery = "cas"\nkeep_previous = {keep}\n')
    cert_ids, serials = [], []
    for attempt in range(3):
        code, out, err = run("apply", str(services), *(["--force"] if attempt else []))
        [result] = out["services"]
        assert code == 0, (err, result)
        assert result["installed"] == ["cas", f"cdn:{domain}"] and result["verified"] == [f"cdn:{domain}"]
        meta = json.loads((run.state / "certificates" / "shop" / "meta.json").read_text())
        cert_id = meta["installed"]["cas"]["cert_id"]
        assert meta["installed"][f"cdn:{domain}"]["cert_id"] == cert_id
        assert meta["installed"][f"cdn:{domain}"]["via"] == "cas"
        info = binding(lab, domain)
        assert (info["CertType"], info["CertId"], info["CertRegion"]) == ("cas", str(cert_id), "cn-hangzhou")
        assert served_serial(lab, domain, lab.cdn_edge_port) == result["serial_hex"]
        assert f"installed: cdn:{domain} (serial {result['serial_hex']} by CertId from CAS, handshake verified)" \
            in result["notes"]
        cert_ids.append(cert_id)
        serials.append(result["serial_hex"])
        # the live upload and keep_previous superseded ones remain; older ones are gone
        kept = cert_ids[-1 - keep:] if keep else cert_ids[-1:]
        assert [c for c in cert_ids if cas_exists(lab, c)] == kept
        assert [s["cert_id"] for s in meta["installed"]["cas"]["superseded"]] == kept[:-1]
        if attempt and len(cert_ids) - 1 > keep:
            assert any(f"deleted the superseded CertId {cert_ids[-2 - keep]}" in n for n in result["notes"])
    assert len(set(cert_ids)) == 3 and len(set(serials)) == 3

    # the next apply: nothing to do, the CDN domain verified, nothing deleted
    code, out, _ = run("apply", str(services))
    [result] = out["services"]
    assert code == 0 and result["status"] == "unchanged" and result["installed"] == []
    assert result["reason"].startswith("not due:") and "renewal window opens" in result["reason"]
    assert f"cdn:{domain}: serves serial {serials[-1]} (handshake verified)" in result["notes"]


def test_international_region_sets_the_cdn_cert_region(run, lab, tmp_path):
    domain = f"intl-{RUN}.example.com"
    cdn.add_cdn_domain(lab_client(lab), domain)
    services = tmp_path / "services.toml"
    services.write_text(f'[[service]]\nname = "intl"\ndomains = ["{domain}"]\ndns = "challtestsrv"\n'
                        f'cdn = "{domain}"\ndelivery = "cas"\nregion = "ap-southeast-1"\n')
    code, out, err = run("apply", str(services))
    [result] = out["services"]
    assert code == 0, (err, result)
    info = binding(lab, domain)
    assert (info["CertType"], info["CertRegion"]) == ("cas", "ap-southeast-1")
    assert served_serial(lab, domain, lab.cdn_edge_port) == result["serial_hex"]
    meta = json.loads((run.state / "certificates" / "intl" / "meta.json").read_text())
    assert meta["service"]["region"] == "ap-southeast-1" and meta["service"]["delivery"] == "cas"
    # renew reads the stored spec: the same region, the same delivery
    code, out, _ = run("renew", "--force")
    [renewed] = out["services"]
    assert code == 0 and renewed["status"] == "renewed" and renewed["installed"] == ["cas", f"cdn:{domain}"]
    assert binding(lab, domain)["CertRegion"] == "ap-southeast-1"


def test_issue_again_under_the_name_keeps_delivery_and_region(run, lab, tmp_path):
    """``acmelab issue`` under the name of a managed certificate keeps its
    stored spec: the targets, CAS delivery, keep_previous, the region."""
    domain = f"reissue-{RUN}.example.com"
    cdn.add_cdn_domain(lab_client(lab), domain)
    services = tmp_path / "services.toml"
    services.write_text(f'[[service]]\nname = "again"\ndomains = ["{domain}"]\ndns = "challtestsrv"\n'
                        f'cdn = "{domain}"\ndelivery = "cas"\nkeep_previous = 2\nregion = "ap-southeast-1"\n'
                        f'cert_region = "ap-southeast-1"\n')
    code, out, err = run("apply", str(services))
    assert code == 0, (err, out)
    code, out, err = run("issue", "-d", domain, "--name", "again", "--dns", "challtestsrv")
    [result] = out["services"]
    assert code == 0 and result["status"] == "renewed", (err, result)
    assert result["installed"] == ["cas", f"cdn:{domain}"] and result["verified"] == [f"cdn:{domain}"]
    info = binding(lab, domain)
    assert (info["CertType"], info["CertRegion"]) == ("cas", "ap-southeast-1")
    meta = json.loads((run.state / "certificates" / "again" / "meta.json").read_text())
    spec = meta["service"]
    assert (spec["delivery"], spec["keep_previous"], spec["region"], spec["cert_region"], spec["origin"]) == \
        ("cas", 2, "ap-southeast-1", "ap-southeast-1", "issue")
    assert [t["product"] for t in spec["install"]] == ["cas", "cdn"]
