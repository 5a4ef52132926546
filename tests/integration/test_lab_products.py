"""The lab's Alibaba products, one module each: CDN, API Gateway, CAS, SLB (and the inventory).

Calls go straight to the lab endpoint (signed, no client-side pre-send checks), so
the mock's own checks are what refuses a bad upload -- a bug in the client's checks
would be caught here.  Certificates come from a throw-away PKI (tests/unit/_deploy_pki.py);
the edges are checked with a real TLS handshake that validates to that PKI's root.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import uuid

import pytest
from cryptography import x509

from acmelab.aliyun import AliyunClient
from acmelab.errors import AliyunError, LabError
from acmelab.lab.aliyun import seed, server
from tests.unit._deploy_pki import NOW, Pki, key_pem, pem

pytestmark = pytest.mark.lab

RUN = uuid.uuid4().hex[:8]
CDN, APIGW, CAS, SLB = ("Cdn", "2018-05-10"), ("CloudAPI", "2016-07-14"), ("cas", "2020-04-07"), ("Slb", "2014-05-15")
LB_ID = seed.LOAD_BALANCERS[1]["LoadBalancerId"]      # listeners 443 and 8443; the other LB is left alone


@pytest.fixture(scope="module")
def api(lab):
    client = AliyunClient.for_lab(lab, max_retries=0)

    def call(product: tuple[str, str], action: str, **params):
        return client.call(action, product[1], {k: str(v) for k, v in params.items()}, product=product[0])
    return call


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki.new(f"Lab products {RUN}")


def served(pki: Pki, port: int, name: str) -> x509.Certificate:
    """The leaf an edge serves for SNI ``name``, verified to ``pki``'s root with host-name check."""
    context = ssl.create_default_context(cadata=pki.root_pem)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def test_every_product_module_registers_its_actions(lab):
    modules = {module.__name__.rsplit(".", 1)[1]: module for module in server.load_handler_modules()}
    assert tuple(modules) == server.PRODUCTS == ("alidns", "sts", "cdn", "apigateway", "cas", "slb")
    registered = {(name, version) for name, version in server.ACTIONS}
    for expected in [("DescribeCdnDomainDetail", CDN[1]), ("SetCdnDomainSSLCertificate", CDN[1]),
                     ("DescribeApiGroup", APIGW[1]), ("DeleteUserCertificate", CAS[1]),
                     ("UploadServerCertificate", SLB[1]), ("SetLoadBalancerHTTPSListenerAttribute", SLB[1])]:
        assert expected in registered


# -- the mock's own checks -----------------------------------------------------

def test_bad_uploads_are_refused_by_the_mock_itself(lab, api, pki):
    domain = f"checks-{RUN}.example.com"
    api(CDN, "AddCdnDomain", DomainName=domain)
    key, leaf = pki.leaf(domain)
    other_key, _ = pki.leaf(domain)
    _, expired = pki.leaf(domain, key=key, not_before=NOW - dt.timedelta(days=60), not_after=NOW - dt.timedelta(days=1))
    _, elsewhere = pki.leaf(f"elsewhere-{RUN}.example.com", key=key)
    cases = [
        (pem(leaf, pki.intermediate), key_pem(other_key), "InvalidSSLPri", "does not match"),
        (pem(pki.intermediate, leaf), key_pem(key), "InvalidSSLPri", "does not match"),   # leaf not first
        (pem(leaf, pki.root), key_pem(key), "InvalidSSLPub", "not issued by certificate 1"),
        (pem(expired, pki.intermediate), key_pem(key), "InvalidSSLPub", "not now"),
        (pem(elsewhere, pki.intermediate), key_pem(key), "InvalidSSLPub", f"not the domain {domain}"),
        ("not a certificate", key_pem(key), "InvalidSSLPub", "not a PEM certificate chain"),
        (pem(leaf, pki.intermediate), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
         "InvalidSSLPri", "not a PEM RSA or EC private key"),
    ]
    for chain, private_key, code, words in cases:
        with pytest.raises(AliyunError) as caught:
            api(CDN, "SetCdnDomainSSLCertificate", DomainName=domain, SSLProtocol="on", SSLPub=chain,
                SSLPri=private_key)
        assert caught.value.code == code and words in str(caught.value), (code, words, str(caught.value))
    detail = api(CDN, "DescribeCdnDomainDetail", DomainName=domain)["GetDomainDetailModel"]
    assert detail["ServerCertificateStatus"] == "off"      # nothing was installed
    # and the good one is served
    api(CDN, "SetCdnDomainSSLCertificate", DomainName=domain, SSLProtocol="on",
        SSLPub=pem(leaf, pki.intermediate), SSLPri=key_pem(key))
    assert served(pki, lab.cdn_edge_port, domain).serial_number == leaf.serial_number


# -- preflight actions ---------------------------------------------------------

def test_describe_cdn_domain_detail(api):
    detail = api(CDN, "DescribeCdnDomainDetail", DomainName="cdn.example.org")["GetDomainDetailModel"]
    assert detail["DomainName"] == "cdn.example.org" and detail["DomainStatus"] == "online"
    assert detail["Cname"] == "cdn.example.org.w.kunlunle.com"
    with pytest.raises(AliyunError) as caught:
        api(CDN, "DescribeCdnDomainDetail", DomainName=f"nope-{RUN}.example.com")
    assert caught.value.code == "InvalidDomain.NotFound"


def test_describe_api_group_lists_its_custom_domains(api, pki, lab):
    group_id = seed.API_GROUPS[0]["GroupId"]
    group = api(APIGW, "DescribeApiGroup", GroupId=group_id)
    assert group["GroupId"] == group_id and group["GroupName"] == "acmelab_shop"
    names = [item["DomainName"] for item in group["CustomDomains"]["DomainItem"]]
    assert {"api.example.com", "api.dev.example.com"} <= set(names)
    created = api(APIGW, "CreateApiGroup", GroupName=f"g_{RUN}")["GroupId"]
    api(APIGW, "SetDomain", GroupId=created, DomainName=f"api-{RUN}.example.com")
    key, leaf = pki.leaf(f"api-{RUN}.example.com")
    api(APIGW, "SetDomainCertificate", GroupId=created, DomainName=f"api-{RUN}.example.com", CertificateName="c",
        CertificateBody=pem(leaf, pki.intermediate), CertificatePrivateKey=key_pem(key))
    [item] = api(APIGW, "DescribeApiGroup", GroupId=created)["CustomDomains"]["DomainItem"]
    assert item["DomainName"] == f"api-{RUN}.example.com" and item["CertificateId"] == f"{leaf.serial_number:x}"
    assert "PRIVATE" not in str(item)
    with pytest.raises(AliyunError) as caught:
        api(APIGW, "DescribeApiGroup", GroupId="0123456789abcdef0123456789abcdef")
    assert caught.value.code == "NotFoundApiGroup"


# -- CAS-first delivery --------------------------------------------------------

def test_cas_certificate_bound_to_cdn_by_cert_id_then_deleted_when_superseded(lab, api, pki):
    domain = f"cas-{RUN}.example.com"
    api(CDN, "AddCdnDomain", DomainName=domain)
    ids = []
    for number in range(2):
        key, leaf = pki.leaf(domain)
        ids.append((api(CAS, "UploadUserCertificate", Name=f"{domain}-{number}", Cert=pem(leaf, pki.intermediate),
                        Key=key_pem(key))["CertId"], leaf))
    (first, first_leaf), (second, second_leaf) = ids
    api(CDN, "SetCdnDomainSSLCertificate", DomainName=domain, SSLProtocol="on", CertType="cas", CertId=first,
        CertRegion="cn-hangzhou")
    assert served(pki, lab.cdn_edge_port, domain).serial_number == first_leaf.serial_number
    [info] = api(CDN, "DescribeDomainCertificateInfo", DomainName=domain)["CertInfos"]["CertInfo"]
    assert (info["CertType"], info["CertId"], info["CertRegion"]) == ("cas", str(first), "cn-hangzhou")
    with pytest.raises(AliyunError) as caught:          # still served: refused
        api(CAS, "DeleteUserCertificate", CertId=first)
    assert caught.value.code == "CertificateInUse" and domain in str(caught.value)
    api(CDN, "SetCdnDomainSSLCertificate", DomainName=domain, SSLProtocol="on", CertType="cas", CertId=second,
        CertRegion="ap-southeast-1")
    assert served(pki, lab.cdn_edge_port, domain).serial_number == second_leaf.serial_number
    api(CAS, "DeleteUserCertificate", CertId=first)
    with pytest.raises(AliyunError) as caught:
        api(CAS, "DeleteUserCertificate", CertId=first)
    assert caught.value.code == "InvalidCertId.NotFound"
    assert api(CAS, "GetUserCertificateDetail", CertId=second)["SerialNo"] == f"{second_leaf.serial_number:x}"
    with pytest.raises(AliyunError) as caught:          # a CertId without CertType=cas (certd #632)
        api(CDN, "SetCdnDomainSSLCertificate", DomainName=domain, SSLProtocol="on", CertId=second)
    assert caught.value.code == "SSLPri.MissingParameter"
    with pytest.raises(AliyunError) as caught:
        api(CDN, "SetCdnDomainSSLCertificate", DomainName=domain, SSLProtocol="on", CertType="cas", CertId=second,
            CertRegion="eu-central-1")
    assert caught.value.code == "InvalidCertRegion"


# -- SLB -----------------------------------------------------------------------

def test_slb_upload_bind_serve_and_delete(lab, api, pki):
    assert lab.slb_edge_port and lab.slb_edge_port not in (lab.cdn_edge_port, lab.apigateway_edge_port)
    name = f"shop-{RUN}.example.com"
    balancer = api(SLB, "DescribeLoadBalancerAttribute", LoadBalancerId=LB_ID)
    assert balancer["LoadBalancerId"] == LB_ID and balancer["ListenerPorts"]["ListenerPort"] == [443, 8443]
    before = api(SLB, "DescribeLoadBalancerHTTPSListenerAttribute", LoadBalancerId=LB_ID, ListenerPort=443)
    key, leaf = pki.leaf(name, f"*.{name}")
    uploaded = api(SLB, "UploadServerCertificate", ServerCertificate=pem(leaf, pki.intermediate),
                   PrivateKey=key_pem(key), ServerCertificateName=f"acmelab-{RUN}")
    certificate_id = uploaded["ServerCertificateId"]
    assert certificate_id.startswith("1231579085529123_") and uploaded["ServerCertificateName"] == f"acmelab-{RUN}"
    assert len(uploaded["Fingerprint"].split(":")) == 20
    listed = api(SLB, "DescribeServerCertificates", ServerCertificateId=certificate_id)
    assert [c["ServerCertificateId"] for c in listed["ServerCertificates"]["ServerCertificate"]] == [certificate_id]
    assert "PRIVATE" not in str(listed)

    api(SLB, "SetLoadBalancerHTTPSListenerAttribute", LoadBalancerId=LB_ID, ListenerPort=443,
        ServerCertificateId=certificate_id)
    attribute = api(SLB, "DescribeLoadBalancerHTTPSListenerAttribute", LoadBalancerId=LB_ID, ListenerPort=443)
    assert attribute["ServerCertificateId"] == certificate_id and before["ServerCertificateId"] != certificate_id
    assert served(pki, lab.slb_edge_port, name).serial_number == leaf.serial_number
    assert served(pki, lab.slb_edge_port, f"www.{name}").serial_number == leaf.serial_number

    with pytest.raises(AliyunError) as caught:
        api(SLB, "DeleteServerCertificate", ServerCertificateId=certificate_id)
    assert caught.value.code == "CertificateAndPrivateKeyIsRefered" and f"{LB_ID}:443" in str(caught.value)

    # rebind to a renewed certificate: the edge follows, the old one can go
    new_key, renewed = pki.leaf(name)
    renewed_id = api(SLB, "UploadServerCertificate", ServerCertificate=pem(renewed, pki.intermediate),
                     PrivateKey=key_pem(new_key), ServerCertificateName=f"acmelab-{RUN}-2")["ServerCertificateId"]
    api(SLB, "SetLoadBalancerHTTPSListenerAttribute", LoadBalancerId=LB_ID, ListenerPort=443,
        ServerCertificateId=renewed_id)
    assert served(pki, lab.slb_edge_port, name).serial_number == renewed.serial_number
    with pytest.raises(ssl.SSLError):                  # the wildcard went with the old certificate
        served(pki, lab.slb_edge_port, f"www.{name}")
    api(SLB, "DeleteServerCertificate", ServerCertificateId=certificate_id)
    with pytest.raises(AliyunError) as caught:
        api(SLB, "DeleteServerCertificate", ServerCertificateId=certificate_id)
    assert caught.value.code == "ServerCertificateId.NotFound"


def test_slb_refusals(api, pki):
    key, leaf = pki.leaf(f"x-{RUN}.example.com")
    other, _ = pki.leaf(f"x-{RUN}.example.com")
    for params, code in [
        ({"ServerCertificate": pem(leaf, pki.intermediate), "PrivateKey": key_pem(other)},
         "CertificateAndPrivateKeyIsNotMatch"),
        ({"ServerCertificate": "junk", "PrivateKey": key_pem(key)}, "InvalidServerCertificate"),
    ]:
        with pytest.raises(AliyunError) as caught:
            api(SLB, "UploadServerCertificate", **params)
        assert caught.value.code == code
    for action, params, code in [
        ("DescribeLoadBalancerAttribute", {"LoadBalancerId": "lb-nope"}, "InvalidLoadBalancerId.NotFound"),
        ("DescribeLoadBalancerHTTPSListenerAttribute", {"LoadBalancerId": LB_ID, "ListenerPort": 80},
         "ListenerNotFound"),
        ("SetLoadBalancerHTTPSListenerAttribute", {"LoadBalancerId": LB_ID, "ListenerPort": 8443,
                                                   "ServerCertificateId": "1231579085529123_nope"},
         "ServerCertificateId.NotFound"),
    ]:
        with pytest.raises(AliyunError) as caught:
            api(SLB, action, **params)
        assert caught.value.code == code


# -- inventory -------------------------------------------------------------------

def test_inventory_lists_zones_cdn_domains_api_groups_and_load_balancers(lab, api, pki):
    domain = f"inv-{RUN}.example.com"
    api(CDN, "AddCdnDomain", DomainName=domain)
    key, leaf = pki.leaf(domain)
    api(CDN, "SetCdnDomainSSLCertificate", DomainName=domain, SSLProtocol="on",
        SSLPub=pem(leaf, pki.intermediate), SSLPri=key_pem(key))
    inventory = lab.inventory()
    zones = [zone["DomainName"] for zone in inventory["Zones"]]
    assert {"example.com", "dev.example.com", "bücher.example"} <= set(zones) and len(zones) >= 25
    cdn = {entry["DomainName"]: entry for entry in inventory["CdnDomains"]}
    assert set(seed.CDN_DOMAINS) <= set(cdn)
    assert cdn[domain]["Serial"] == f"{leaf.serial_number:x}" and cdn[domain]["ServerCertificateStatus"] == "on"
    groups = {group["GroupId"]: group for group in inventory["ApiGroups"]}
    assert [d["DomainName"] for d in groups[seed.API_GROUPS[0]["GroupId"]]["CustomDomains"]] == \
        sorted(seed.API_GROUPS[0]["Domains"])
    balancers = {lb["LoadBalancerId"]: lb for lb in inventory["LoadBalancers"]}
    assert set(balancers) == {lb["LoadBalancerId"] for lb in seed.LOAD_BALANCERS}
    assert [listener["ListenerPort"] for listener in balancers[seed.LOAD_BALANCERS[0]["LoadBalancerId"]]["Listeners"]] \
        == [443]
    assert "PRIVATE KEY" not in str(inventory)


def test_inventory_needs_the_alibaba_endpoint(lab_factory):
    bare = lab_factory(aliyun=False)
    with pytest.raises(LabError, match="without its Alibaba endpoint"):
        bare.inventory()


def test_cli_lab_status_inventory(lab, capsys):
    import json

    from acmelab import cli

    assert cli.main(["lab", "status", "--run-dir", str(lab.run_dir), "--inventory"]) == 0
    text = capsys.readouterr().out
    assert "cdn.example.com" in text and "523e8dc7bbe04613b5b1d726c2a7889d" in text
    assert seed.LOAD_BALANCERS[0]["LoadBalancerId"] in text and "example.com.cn" in text
    assert cli.main(["lab", "status", "--run-dir", str(lab.run_dir), "--inventory", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["slb_edge_port"] == lab.slb_edge_port
    assert {lb["LoadBalancerId"] for lb in data["inventory"]["LoadBalancers"]} == \
        {lb["LoadBalancerId"] for lb in seed.LOAD_BALANCERS}
    assert lab.aliyun_access_key_secret not in text + json.dumps(data)
