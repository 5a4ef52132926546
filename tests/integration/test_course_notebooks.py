"""acmelab.course helpers of notebooks 07-15, against a real lab (Pebble,
pebble-challtestsrv, the Alibaba Cloud endpoint) on free ports.

The course normally uses the lab at its default ports; here ``course.lab``
is pointed at the session's test lab and the course directory at a tmp dir.
"""

from __future__ import annotations

import stat

import pytest
from cryptography import x509

from acmelab import course, keys
from acmelab.certificates import serial_hex
from acmelab.dns.propagation import txt_values

pytestmark = pytest.mark.lab


@pytest.fixture()
def course_on_lab(lab, tmp_path, monkeypatch):
    monkeypatch.setenv("ACMELAB_COURSE_DIR", str(tmp_path / "course"))
    for name in ("ACMELAB_ACME", "ACMELAB_DOMAIN", "ACMELAB_CONTACT", "ACMELAB_API_GROUP_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(course, "lab", lambda: lab)
    return lab


def _txt_left(lab, names):
    """TXT values still answered by the lab's DNS at the validation names."""
    return {name: txt_values(f"_acme-challenge.{name}", tuple(lab.dns_server))[0] for name in names}


def test_pending_order_is_reused_while_pending_and_replaced_when_gone(course_on_lab):
    client = course.account_client()
    first = course.pending_order(client)
    assert sorted(first.names) == course.names()
    assert course.recall("order_url") == first.url
    if first.status == "pending":   # Pebble may reuse authorizations: then the order is ready at once
        assert course.pending_order(client).url == first.url
    # an order URL of an earlier lab (Pebble answers 404 without a problem document)
    course.remember(order_url=first.url.rsplit("/", 1)[0] + "/no-such-order")
    second = course.pending_order(client)
    assert second.url != first.url and course.recall("order_url") == second.url


def test_ready_order_answers_dns01_through_alidns_and_removes_the_records(course_on_lab):
    client = course.account_client()
    course.remember(order_url=None)
    order = course.ready_order(client)
    assert order.status == "ready"
    assert course.recall("order_url") == order.url
    assert all(client.fetch_authorization(url).status == "valid" for url in order.authorizations)
    assert _txt_left(course_on_lab, course.names()) == {name: set() for name in course.names()}
    provider = course.dns_provider()
    for name in course.names():
        zone, _ = provider.find_zone(f"_acme-challenge.{name}")
        assert [r for r in provider.sub_domain_records(zone, f"_acme-challenge.{name}") if r["Type"] == "TXT"] == []
    assert course.ready_order(client).url == order.url   # already ready: the same order


def test_issued_certificate_is_saved_loaded_and_reissued_with_the_same_key(course_on_lab, monkeypatch):
    issued = course.issued_certificate()
    key_path = course.certificate_key_path()
    key_bytes = key_path.read_bytes()
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert list(issued.names) == course.names()
    chain = x509.load_pem_x509_certificates(course.chain_path().read_bytes())
    assert serial_hex(chain[0].serial_number) == issued.serial_hex
    assert course.leaf_path().read_text() == issued.certificate_pem
    assert keys.thumbprint(chain[0].public_key()) == keys.thumbprint(course.certificate_key())
    assert any(chain[-1].issuer == x509.load_pem_x509_certificate(root.encode()).subject
               for root in course_on_lab.roots())

    again = course.issued_certificate()               # loaded from the files: nothing issued
    assert again.serial_hex == issued.serial_hex and again.order_url == issued.order_url
    assert "PRIVATE KEY" not in repr(again)

    # a chain from another CA (a restarted lab): issued anew, with the saved key
    monkeypatch.setattr(course, "trust_roots", lambda: [course_on_lab.ca_bundle.read_text()])
    renewed = course.issued_certificate()
    assert renewed.serial_hex != issued.serial_hex
    assert key_path.read_bytes() == key_bytes
    assert keys.thumbprint(renewed.private_key) == keys.thumbprint(course.certificate_key())
    assert x509.load_pem_x509_certificates(course.chain_path().read_bytes())[0].serial_number == \
        int(renewed.serial_hex, 16)
    assert _txt_left(course_on_lab, course.names()) == {name: set() for name in course.names()}


def test_deploy_helpers_point_at_the_lab(course_on_lab, monkeypatch):
    client = course.aliyun_client()
    assert client.endpoint == course_on_lab.aliyun_endpoint
    assert course.api_group_id() == course.LAB_API_GROUP_ID
    monkeypatch.setenv("ACMELAB_API_GROUP_ID", "0123456789abcdef0123456789abcdef")
    assert course.api_group_id() == "0123456789abcdef0123456789abcdef"
    assert course.trust_roots() == course_on_lab.roots()
    assert course_on_lab.aliyun_access_key_secret not in repr(course.dns_provider())


def test_helpers_that_recreate_an_earlier_notebook_say_so_once(course_on_lab, capsys):
    client = course.account_client()            # a fresh course folder and a new account on this lab
    created = [line for line in capsys.readouterr().out.splitlines() if line.startswith("course: created")]
    assert created == ["course: created the account key course/lab/account.key (ec256, mode 0600; "
                       "notebook 01 makes it)",
                       f"course: created the course's account {client.account_url} (newAccount; "
                       "notebook 05 makes it)"]
    assert course.recall("account_url") == client.account_url
    again = course.account_client()             # found (onlyReturnExisting): nothing created
    assert again.account_url == client.account_url and capsys.readouterr().out == ""

    course.remember(order_url=None)
    order = course.ready_order(client)
    assert capsys.readouterr().out.splitlines() == [
        "course: created a new order for api.example.com, cdn.example.com, its dns-01 challenges answered: "
        "ready (notebook 07 makes it ready; none ready was there)"]
    assert course.ready_order(client).url == order.url and capsys.readouterr().out == ""

    course.issued_certificate()
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == ("course: created a certificate for api.example.com, cdn.example.com, issued now and saved "
                       "in course/lab/certificates/course/fullchain.pem (notebook 09 issues it; none current "
                       "was there)")
    assert sum(line.startswith("course: created the certificate key") for line in out) == 1
    course.issued_certificate()
    assert capsys.readouterr().out == ""
