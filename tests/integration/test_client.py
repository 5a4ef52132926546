"""The RFC 8555 client against a real Pebble (labs from tests/conftest.py).

One scenario -- account, issue, renew, revoke both ways, key rollover,
deactivate -- runs for RSA and EC keys and three name sets under every lab
configuration the issue asks for.  Labs are session-scoped (lab_factory),
run with ``PEBBLE_VA_NOSLEEP=1`` (the lab's default) and without the Alibaba
endpoint, which this file does not need.
"""

from __future__ import annotations

import uuid

import pytest
from cryptography import x509

from acmelab import keys
from acmelab.client import AcmeClient, ReasonCode, chain_matches
from acmelab.dns.challtestsrv import ChallTestSrvProvider
from acmelab.errors import (
    AccountDoesNotExist,
    AlreadyRevoked,
    ChallengeFailed,
    ExternalAccountRequired,
    InputError,
    Unauthorized,
)
from acmelab.issue import issue_certificate
from tests.integration._recording import RecordingProvider

pytestmark = pytest.mark.lab

# base64url HMAC key for the EAB lab (Pebble's example kid-1 key)
EAB_KID = "kid-1"
EAB_HMAC = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"

CONFIGS = {
    "nonce0-reuse0": dict(pebble_env={"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0",
                                      "PEBBLE_WFE_ORDERS_PER_PAGE": "2"}),
    "nonce50": dict(pebble_env={"PEBBLE_WFE_NONCEREJECT": "50", "PEBBLE_AUTHZREUSE": "0"}),
    "reuse100": dict(pebble_env={"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "100"}),
    "alternate-roots": dict(pebble_env={"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0",
                                        "PEBBLE_ALTERNATE_ROOTS": "2", "PEBBLE_CHAIN_LENGTH": "3"}),
    "strict": dict(pebble_env={"PEBBLE_WFE_NONCEREJECT": "5", "PEBBLE_AUTHZREUSE": "50"}, strict=True),
    "eab": dict(pebble_env={"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"},
                eab_keys={EAB_KID: EAB_HMAC}),
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def acme_lab(request, lab_factory):
    """(config name, LabInfo) for each lab configuration."""
    return request.param, lab_factory(aliyun=False, **CONFIGS[request.param])


def _domain() -> str:
    return f"{uuid.uuid4().hex[:12]}.example.com"


NAME_SETS = {
    "single": lambda d: [f"www.{d}"],
    "several": lambda d: [d, f"www.{d}", f"api.{d}"],
    "wildcard": lambda d: [f"*.{d}", d],
}


def _client(info, key, **kwargs) -> AcmeClient:
    return AcmeClient(info.directory_url, key, verify=info.ca_bundle, **kwargs)


def _new_account(config: str, client: AcmeClient):
    if config == "eab":
        return client.new_account(["mailto:ops@example.com"], eab_kid=EAB_KID, eab_hmac_key=EAB_HMAC)
    return client.new_account(["mailto:ops@example.com"])


def _san(pem: str) -> list[str]:
    certificate = x509.load_pem_x509_certificate(pem.encode())
    return certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
        .get_values_for_type(x509.DNSName)


@pytest.mark.parametrize("key_type", ["rsa2048", "ec256"])
@pytest.mark.parametrize("name_set", sorted(NAME_SETS))
def test_certificate_life(acme_lab, key_type, name_set):
    """Issue, renew, revoke (kid and jwk), roll the account key over and
    deactivate the account -- under each lab configuration."""
    config, info = acme_lab
    names = NAME_SETS[name_set](_domain())
    dns = RecordingProvider.for_lab(info)
    client = _client(info, keys.generate_key(key_type))
    account = _new_account(config, client)
    assert account.status == "valid"
    assert account.contact == ("mailto:ops@example.com",)

    # issue
    first = issue_certificate(names, client=client, dns=dns, key_type=key_type)
    assert sorted(_san(first.certificate_pem)) == sorted(names)
    assert keys.key_type_of(first.private_key) == key_type
    assert first.chain_pem.startswith(first.certificate_pem)
    assert info.cert_status(first.serial_hex)["Status"] == "Valid"
    # every validation name got one TXT value per identifier; all removed
    expected = sorted("_acme-challenge." + n.removeprefix("*.") for n in names)
    assert sorted(name for name, _ in dns.presented) == expected  # fresh names: nothing to reuse
    assert dns.published == {}
    for name in set(expected):
        assert dns.txt_values(name) == []

    # renew: a second order for the same names
    reuse = CONFIGS[config]["pebble_env"].get("PEBBLE_AUTHZREUSE")
    if reuse == "0":
        # Pebble reuses about 1 in 100 even at AUTHZREUSE=0 (rand.Intn(100) > percent): give them up
        assert len(client.deactivate_valid_authorizations(names)) == len(names)
    dns.presented.clear()
    second = issue_certificate(names, client=client, dns=dns, key_type=key_type)
    assert second.serial_hex != first.serial_hex
    assert second.order_url != first.order_url
    if reuse == "100":
        assert dns.presented == []  # every authorization reused: no challenge answered
    elif reuse == "0":
        assert sorted(name for name, _ in dns.presented) == expected  # every authorization fresh
    else:
        # AUTHZREUSE=50: some authorizations reused, the others answered
        assert set(name for name, _ in dns.presented) <= set(expected)

    # revoke with the account key (kid), then with the certificate's key (jwk)
    client.revoke_certificate(first.certificate_pem, reason=ReasonCode.superseded)
    status = info.cert_status(first.serial_hex)
    assert (status["Status"], status["Reason"]) == ("Revoked", 4)
    with pytest.raises(AlreadyRevoked):
        client.revoke_certificate(first.certificate_pem, reason=ReasonCode.superseded)
    client.revoke_certificate(second.certificate_pem, reason=ReasonCode.keyCompromise,
                              certificate_key=second.private_key)
    status = info.cert_status(second.serial_hex)
    assert (status["Status"], status["Reason"]) == ("Revoked", 1)

    # key rollover (§7.3.5): the new key finds the account, the old one not
    old_key = client.account_key
    new_key = keys.generate_key("ec384" if key_type == "rsa2048" else "rsa2048")
    rolled = client.change_key(new_key)
    assert rolled.url == account.url
    assert _client(info, new_key).find_account().url == account.url
    with pytest.raises(AccountDoesNotExist):
        _client(info, old_key).find_account()
    # the account still works with the new key
    third = issue_certificate(names[:1], client=client, dns=dns, key_type=key_type)
    assert _san(third.certificate_pem) == names[:1]

    # deactivate (§7.3.6): afterwards the account is refused
    assert client.deactivate_account().status == "deactivated"
    with pytest.raises(Unauthorized):
        client.new_order(names)


def test_preferred_chain(lab_factory):
    """PEBBLE_ALTERNATE_ROOTS=2, CHAIN_LENGTH=3: three chains of leaf + 3
    intermediates; the preferred one is chosen by its top subject or root."""
    info = lab_factory(aliyun=False, **CONFIGS["alternate-roots"])
    client = _client(info, keys.generate_key("ec256"))
    client.new_account()
    dns = ChallTestSrvProvider.for_lab(info)
    names = [f"www.{_domain()}"]
    issued = issue_certificate(names, client=client, dns=dns)
    order = client.fetch_order(issued.order_url)
    chains = client.download_certificate_chains(order)
    assert len(chains) == 3
    assert all(len(chain.certificates) == 4 for chain in chains)
    assert len({chain.top.subject for chain in chains}) == 3
    assert all(chain.certificates[0] == chains[0].certificates[0] for chain in chains)

    # by the exact subject common name of the topmost certificate
    wanted = chains[2]
    top_cn = wanted.top.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    issued = issue_certificate(names, client=client, dns=dns, preferred_chain=top_cn)
    assert x509.load_pem_x509_certificates(issued.chain_pem.encode())[-1].subject == wanted.top.subject
    # by the full DN
    chosen = client.download_preferred_chain(order, chains[1].top.subject.rfc4514_string())
    assert chosen.pem == chains[1].pem
    # by the root it leads to (a root from Pebble's management API)
    roots = [x509.load_pem_x509_certificate(pem.encode()) for pem in info.roots()]
    assert len(roots) == 3
    for chain in chains:
        root = next(r for r in roots if r.subject == chain.top.issuer)
        # each certificate is signed by the next, the topmost by a Pebble root
        for certificate, issuer in zip(chain.certificates, chain.certificates[1:] + [root]):
            certificate.verify_directly_issued_by(issuer)
        root_cn = root.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
        assert chain_matches(client.download_preferred_chain(order, root_cn), root_cn, issuer=True)
    # an unknown name: the default chain
    assert client.download_preferred_chain(order, "No Such CA").pem == chains[0].pem


def test_eab_required(lab_factory):
    """With EAB required, newAccount without a binding is refused, and a
    wrong MAC key too."""
    info = lab_factory(aliyun=False, **CONFIGS["eab"])
    with pytest.raises(ExternalAccountRequired):
        _client(info, keys.generate_key()).new_account()
    with pytest.raises(Unauthorized):
        _client(info, keys.generate_key()).new_account(eab_kid=EAB_KID, eab_hmac_key="AAAA" * 16)


@pytest.mark.slow
def test_nonce_reject_50_hundred_issuances(lab_factory):
    """PEBBLE_WFE_NONCEREJECT=50: 100 issuances in a row all succeed."""
    info = lab_factory(aliyun=False, **CONFIGS["nonce50"])
    client = _client(info, keys.generate_key("ec256"))
    client.new_account()
    dns = ChallTestSrvProvider.for_lab(info)
    serials = set()
    for _ in range(100):
        issued = issue_certificate([f"www.{_domain()}"], client=client, dns=dns)
        serials.add(issued.serial_hex)
    assert len(serials) == 100
    assert dns.published == {}


@pytest.fixture(scope="module")
def plain_lab(lab_factory):
    return lab_factory(aliyun=False, **CONFIGS["nonce0-reuse0"])


@pytest.fixture
def account_client(plain_lab):
    client = _client(plain_lab, keys.generate_key("ec256"))
    client.new_account()
    yield client
    client.close()


def test_request_count_and_nonces(plain_lab, account_client):
    """One name, no reuse: newOrder, authorization, challenge, finalize,
    certificate, plus the polls -- nothing else, and no newNonce after the
    first (each nonce comes from the previous response).  How many polls
    Pebble needs depends on timing; bench/issuance.py measures it (target:
    7 requests in all)."""
    dns = ChallTestSrvProvider.for_lab(plain_lab)
    calls = {"new_nonce": 0, "poll": 0, "answer": 0}

    def counting(name, method):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return method(*args, **kwargs)
        return wrapper

    transport = account_client.transport
    transport.new_nonce = counting("new_nonce", transport.new_nonce)
    account_client._fetch_authorization = counting("poll", account_client._fetch_authorization)
    account_client._fetch_order = counting("poll", account_client._fetch_order)
    account_client.answer_challenge = counting("answer", account_client.answer_challenge)
    for _ in range(3):
        before = account_client.request_count
        calls.update(poll=0, answer=0)
        issue_certificate([f"www.{_domain()}"], client=account_client, dns=dns)
        # newOrder, authorization, finalize, certificate; the challenge
        # (unless Pebble reused a valid authorization); the polls
        assert account_client.request_count - before == 4 + calls["answer"] + calls["poll"]
        assert calls["poll"] >= calls["answer"]  # an answered authorization is polled
    assert calls["new_nonce"] == 0


def test_list_orders_pages(plain_lab, account_client):
    """The account's orders come back across pages of 2 (Link rel="next")."""
    created = [account_client.new_order([f"www.{_domain()}"]).url for _ in range(5)]
    listed = account_client.list_orders()
    assert set(created) <= set(listed)
    first_page = account_client._post_as_get(account_client.fetch_account().orders)
    assert len(first_page.json()["orders"]) == 2
    assert first_page.links("next")
    assert len(listed) == len(set(listed))


def test_fetch_and_update_account(account_client):
    account = account_client.fetch_account()
    assert account.status == "valid"
    updated = account_client.update_account(["mailto:new@example.com", "mailto:other@example.com"])
    assert updated.contact == ("mailto:new@example.com", "mailto:other@example.com")
    assert account_client.find_account().url == account.url
    assert account_client.fetch_account().contact == updated.contact


def test_deactivate_authorization(account_client):
    order = account_client.new_order([f"www.{_domain()}"])
    authorization = account_client.deactivate_authorization(order.authorizations[0])
    assert authorization.status == "deactivated"
    assert account_client.fetch_authorization(order.authorizations[0]).status == "deactivated"
    # RFC 8555 §7.1.6 says "invalid"; Pebble 2.4 reports "deactivated"
    assert account_client.fetch_order(order.url).status in ("invalid", "deactivated")


def test_challenge_invalid_reports_ca_error(account_client):
    """No TXT record published: the CA's dns error reaches the caller."""
    name = f"www.{_domain()}"
    order = account_client.new_order([name])
    authorization = account_client.fetch_authorization(order.authorizations[0])
    challenge = account_client.answer_challenge(authorization.challenge("dns-01"))
    assert challenge.status in ("processing", "pending", "invalid")
    with pytest.raises(ChallengeFailed) as failure:
        account_client.poll_authorization(authorization, timeout=30)
    assert failure.value.identifier == name
    assert failure.value.challenge_type == "dns-01"
    assert failure.value.problem is not None
    assert failure.value.problem.detail
    assert account_client.fetch_challenge(challenge.url).status == "invalid"


def test_finalize_right_after_answer_waits_for_ready(plain_lab, account_client):
    """Finalize before polling: orderNotReady is handled by waiting."""
    dns = ChallTestSrvProvider.for_lab(plain_lab)
    name = f"www.{_domain()}"
    order = account_client.new_order([name])
    authorization = account_client.fetch_authorization(order.authorizations[0])
    challenge = authorization.challenge("dns-01")
    record = (account_client.dns01_name(authorization), account_client.dns01_txt_value(challenge))
    dns.present(*record)
    try:
        account_client.answer_challenge(challenge)
        key = keys.generate_key()
        from acmelab.csr import make_csr
        final = account_client.finalize(order, make_csr(key, [name]), timeout=30)
    finally:
        dns.cleanup(*record)
    assert final.status == "valid"
    assert _san(account_client.download_certificate(final).leaf_pem) == [name]


def test_csr_mismatch_refused_before_sending(account_client):
    from acmelab.csr import make_csr
    order = account_client.new_order([f"www.{_domain()}"])
    before = account_client.request_count
    with pytest.raises(InputError):
        account_client.finalize(order, make_csr(keys.generate_key(), ["other.example.com"]))
    assert account_client.request_count == before


class InterruptingProvider(ChallTestSrvProvider):
    def wait_until_visible(self, name, value, timeout):
        super().wait_until_visible(name, value, timeout)
        raise KeyboardInterrupt


def test_records_removed_on_interrupt(plain_lab, account_client):
    """KeyboardInterrupt mid-issuance: every TXT record is removed."""
    dns = InterruptingProvider.for_lab(plain_lab)
    domain = _domain()
    with pytest.raises(KeyboardInterrupt):
        issue_certificate([f"*.{domain}", domain], client=account_client, dns=dns)
    assert dns.published == {}
    assert dns.txt_values(f"_acme-challenge.{domain}") == []


def test_records_removed_on_failure(plain_lab, account_client):
    """A provider whose records Pebble never sees: ChallengeFailed, and
    what was presented is cleaned up."""

    class WrongValueProvider(ChallTestSrvProvider):
        def present(self, name, value):
            super().present(name, "not-the-right-value-" + value[:8])
            self.last = value

        def cleanup(self, name, value):
            super().cleanup(name, "not-the-right-value-" + value[:8])

        def wait_until_visible(self, name, value, timeout):
            pass

    dns = WrongValueProvider.for_lab(plain_lab)
    domain = _domain()
    with pytest.raises(ChallengeFailed):
        issue_certificate([domain], client=account_client, dns=dns)
    assert dns.published == {}
    assert dns.txt_values(f"_acme-challenge.{domain}") == []


def test_cleanup_failure_after_issuance_keeps_the_certificate(plain_lab, account_client, caplog):
    """The TXT record cannot be removed once the chain is downloaded: the
    certificate and its key are returned, the failure recorded and logged."""
    from acmelab.errors import DnsError

    class StuckCleanup(ChallTestSrvProvider):
        def cleanup(self, name, value):
            raise DnsError("simulated: DeleteDomainRecord failed")

    dns = StuckCleanup.for_lab(plain_lab)
    domain = _domain()
    with caplog.at_level("WARNING", logger="acmelab.issue"):
        issued = issue_certificate([domain], client=account_client, dns=dns)
    try:
        leaf = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
        assert leaf.public_key().public_numbers() == issued.private_key.public_key().public_numbers()
        assert issued.cleanup_failures == (
            f"could not remove the TXT record at _acme-challenge.{domain}: simulated: DeleteDomainRecord failed",)
        assert issued.cleanup_failures[0] in caplog.text
    finally:
        for name, values in dns.published.items():
            for value in values:
                ChallTestSrvProvider.cleanup(dns, name, value)
    assert dns.txt_values(f"_acme-challenge.{domain}") == []


def test_challtestsrv_provider_keeps_other_values(plain_lab):
    """Two TXT values on one name (wildcard + base): cleanup removes only
    its own; wait_until_visible gives up with DnsError."""
    from acmelab.errors import DnsError
    dns = ChallTestSrvProvider.for_lab(plain_lab)
    name = f"_acme-challenge.{_domain()}"
    dns.present(name, "value-for-wildcard")
    dns.present(name, "value-for-base")
    try:
        dns.wait_until_visible(name, "value-for-base", 5)
        assert sorted(dns.txt_values(name)) == ["value-for-base", "value-for-wildcard"]
        dns.cleanup(name, "value-for-wildcard")
        assert dns.txt_values(name) == ["value-for-base"]
        dns.cleanup(name, "not-published")  # nothing to do
        assert dns.txt_values(name) == ["value-for-base"]
        with pytest.raises(DnsError):
            dns.wait_until_visible(name, "value-for-wildcard", 0.2)
    finally:
        dns.cleanup(name, "value-for-wildcard")
        dns.cleanup(name, "value-for-base")
    assert dns.txt_values(name) == []
    assert dns.published == {}
