"""Alibaba Cloud pieces that need no network: signing, credentials, error
mapping, zone matching, and the lab endpoint's Alidns handlers in-process."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.auth.composer import rpc_signature_composer

from acmelab.aliyun import AliyunClient, Credentials
from acmelab.csr import ascii_name as a_label
from acmelab.dns.alidns import AlidnsProvider, Zone
from acmelab.errors import AliyunAuthError, AliyunError, AliyunThrottled, DnsError, InputError
from acmelab.lab.aliyun import alidns as lab_alidns
from acmelab.lab.aliyun.server import ApiFault, LabState, signature, string_to_sign

SECRET = "unit-test-secret-0123456789abcdef"


# -- the signature the lab verifies is the one the SDK computes ----------------

@pytest.mark.parametrize("method", ["GET", "POST"])
def test_server_string_to_sign_and_signature_match_the_sdk(method):
    params = {"Action": "AddDomainRecord", "Version": "2015-01-09", "RR": "_acme-challenge.*.a b",
              "Value": "abc+/=*~%é", "DomainName": "bücher.example", "TTL": "600", "RegionId": "cn-hangzhou"}
    url, sdk_string_to_sign = rpc_signature_composer.get_signed_url(
        dict(params), "LTAIkey", SECRET, "JSON", method, {})
    sent = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    assert sent["RR"] == "_acme-challenge.*.a b" and sent["Value"] == "abc+/=*~%é"
    assert string_to_sign(method, sent) == sdk_string_to_sign
    assert signature(SECRET, sdk_string_to_sign) == sent["Signature"]
    assert signature(SECRET + "x", sdk_string_to_sign) != sent["Signature"]


# -- credentials -------------------------------------------------------------------

def test_credentials_hide_the_secret():
    credentials = Credentials("LTAIkey", SECRET)
    assert SECRET not in repr(credentials) and SECRET not in str(credentials)
    assert "LTAIkey" in repr(credentials)
    client = AliyunClient(credentials, endpoint="localhost:1")
    assert SECRET not in repr(client)
    provider = AlidnsProvider(client=client)
    assert SECRET not in repr(provider)


def test_credentials_from_the_environment_in_order():
    environ = {"ALIYUN_ACCESS_KEY_ID": "old-id", "ALIYUN_ACCESS_KEY_SECRET": "old-secret",
               "ALIBABA_CLOUD_ACCESS_KEY_ID": "new-id", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "new-secret"}
    assert Credentials.resolve(environ=environ).access_key_id == "new-id"
    assert Credentials.resolve(environ=environ).access_key_secret == "new-secret"
    legacy = {k: v for k, v in environ.items() if k.startswith("ALIYUN")}
    assert Credentials.resolve(environ=legacy) == Credentials("old-id", "old-secret")
    assert Credentials.resolve("arg-id", "arg-secret", environ=environ).access_key_id == "arg-id"


def test_missing_credentials_name_the_variables():
    with pytest.raises(InputError, match="ALIBABA_CLOUD_ACCESS_KEY_ID"):
        Credentials.resolve(environ={})
    with pytest.raises(InputError, match="ALIBABA_CLOUD_ACCESS_KEY_SECRET") as caught:
        Credentials.resolve(environ={"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIkey"})
    assert "LTAIkey" in str(caught.value)


def test_tls_cannot_be_turned_off_and_plain_http_is_refused():
    credentials = Credentials("LTAIkey", SECRET)
    for verify in (False, "", 0, None, "/nonexistent/ca.pem"):
        with pytest.raises(InputError):
            AliyunClient(credentials, verify=verify)
    with pytest.raises(InputError, match="HTTPS"):
        AliyunClient(credentials, endpoint="http://alidns.aliyuncs.com")
    assert AliyunClient(credentials, endpoint="https://localhost:8443/").endpoint == "localhost:8443"


# -- error mapping ------------------------------------------------------------------

def _mapped(code: str, message: str = "server says no", action: str = "AddDomainRecord",
            product: str = "Alidns", status: int = 400) -> AliyunError:
    client = AliyunClient(Credentials("LTAIkey", SECRET), endpoint="localhost:1")
    error = ServerException(code, message, http_status=status, request_id="REQ-1")
    return client._map_server_exception(error, action, product, {"DomainName": "nowhere.example"})


def test_forbidden_ram_names_the_policy():
    error = _mapped("Forbidden.RAM", status=403)
    assert isinstance(error, AliyunAuthError)
    assert error.code == "Forbidden.RAM" and error.http_status == 403 and error.request_id == "REQ-1"
    assert "AliyunDNSFullAccess" in str(error) and "alidns:AddDomainRecord" in str(error)
    assert "LTAIkey" in str(error) and "AddDomainRecord" in str(error)


def test_sdk_renamed_signature_error_is_reported_as_signature_does_not_match():
    error = _mapped("InvalidAccessKeySecret", "The AccessKeySecret is incorrect.")
    assert isinstance(error, AliyunAuthError) and error.code == "SignatureDoesNotMatch"
    assert "the access key secret is wrong for this AccessKeyId" in str(error)


def test_other_codes_are_mapped_with_clear_messages():
    assert isinstance(_mapped("Throttling.User"), AliyunThrottled)
    missing = _mapped("InvalidDomainName.NoExist")
    assert type(missing) is AliyunError and "nowhere.example" in str(missing)
    assert "identical" in str(_mapped("DomainRecordDuplicate"))
    assert str(_mapped("SomethingNew", "raw message")).endswith("SomethingNew: raw message (RequestId REQ-1)")


def test_a_secret_echoed_by_a_server_is_redacted():
    error = _mapped("InternalError", f"oops {SECRET} leaked")
    assert SECRET not in str(error) and "***" in str(error)


# -- zone matching ---------------------------------------------------------------------

ZONES = [Zone("example.com", "example.com"), Zone("dev.example.com", "dev.example.com"),
         Zone("example.com.cn", "example.com.cn"), Zone("com.cn", "com.cn"),
         Zone("bücher.example", "xn--bcher-kva.example")]


@pytest.fixture
def offline_provider():
    provider = AlidnsProvider(client=AliyunClient(Credentials("LTAIkey", SECRET), endpoint="localhost:1"))
    provider._zones = list(ZONES)
    provider.zones = lambda refresh=False: list(ZONES)  # no network in unit tests
    return provider


@pytest.mark.parametrize("name, zone, rr", [
    ("_acme-challenge.www.example.com", "example.com", "_acme-challenge.www"),
    ("_acme-challenge.api.team.example.com", "example.com", "_acme-challenge.api.team"),
    ("_acme-challenge.example.com", "example.com", "_acme-challenge"),
    ("example.com", "example.com", "@"),
    ("_acme-challenge.www.dev.example.com", "dev.example.com", "_acme-challenge.www"),
    ("_acme-challenge.dev.example.com", "dev.example.com", "_acme-challenge"),
    ("_acme-challenge.shop.example.com.cn", "example.com.cn", "_acme-challenge.shop"),
    ("_acme-challenge.other.com.cn", "com.cn", "_acme-challenge.other"),
    ("_acme-challenge.www.BÜCHER.example.", "xn--bcher-kva.example", "_acme-challenge.www"),
    ("_acme-challenge.www.xn--bcher-kva.example", "xn--bcher-kva.example", "_acme-challenge.www"),
])
def test_longest_matching_zone_wins(offline_provider, name, zone, rr):
    found, relative = offline_provider.find_zone(name)
    assert (found.puny_code, relative) == (zone, rr)


@pytest.mark.parametrize("name", ["_acme-challenge.notexample.com", "example.net", "_acme-challenge.example.co"])
def test_no_zone_is_a_dns_error(offline_provider, name):
    with pytest.raises(DnsError, match="no zone"):
        offline_provider.find_zone(name)


def test_cname_lookup_without_an_answer_is_an_error_not_no_cname():
    """A server that never answers is not "no CNAME": the record would go to the wrong name."""
    import socket

    from acmelab.dns.propagation import cname_chain
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:   # bound, never answers
        silent.bind(("127.0.0.1", 0))
        with pytest.raises(DnsError, match="no name server answered CNAME _acme-challenge.example.com"):
            cname_chain("_ACME-challenge.Example.com.", [silent.getsockname()])


def test_a_label():
    assert a_label("_ACME-challenge.Bücher.Example.") == "_acme-challenge.xn--bcher-kva.example"
    assert a_label("*.example.com") == "*.example.com"


# -- the lab's Alidns handlers, in-process -------------------------------------------------

class RecordingChallTestSrv:
    def __init__(self):
        self.txt: dict[str, list[str]] = {}
        self.cname: dict[str, str] = {}

    def replace_txt(self, host, values):
        self.txt[host] = list(values)

    def set_cname(self, host, target):
        self.cname[host] = target

    def clear_cname(self, host):
        self.cname.pop(host, None)


@pytest.fixture
def lab_state():
    return LabState(access_key_id="LTAIlab", access_key_secret=SECRET, challtestsrv=RecordingChallTestSrv())


def test_lab_describe_domains_pages(lab_state):
    first = lab_alidns.describe_domains(lab_state, {})
    assert first["PageSize"] == 20 and first["PageNumber"] == 1 and first["TotalCount"] > 20
    assert len(first["Domains"]["Domain"]) == 20
    second = lab_alidns.describe_domains(lab_state, {"PageNumber": "2"})
    assert len(second["Domains"]["Domain"]) == first["TotalCount"] - 20
    idn = lab_alidns.describe_domains(lab_state, {"KeyWord": "bücher"})["Domains"]["Domain"]
    assert [(d["DomainName"], d["PunyCode"]) for d in idn] == [("bücher.example", "xn--bcher-kva.example")]
    with pytest.raises(ApiFault) as caught:
        lab_alidns.describe_domains(lab_state, {"PageSize": "101"})
    assert caught.value.http_status == 400


def test_lab_mirrors_the_authoritative_zone_only(lab_state):
    mirror = lab_state.challtestsrv
    add = lab_alidns.add_domain_record
    first = add(lab_state, {"DomainName": "example.com", "RR": "_acme-challenge.www", "Type": "TXT", "Value": "one"})
    add(lab_state, {"DomainName": "example.com", "RR": "_acme-challenge.www", "Type": "TXT", "Value": "two"})
    assert mirror.txt["_acme-challenge.www.example.com"] == ["one", "two"]
    # Written into the parent zone, a name under the hosted sub-zone is not served.
    add(lab_state, {"DomainName": "example.com", "RR": "_acme-challenge.x.dev", "Type": "TXT", "Value": "hidden"})
    assert mirror.txt["_acme-challenge.x.dev.example.com"] == []
    add(lab_state, {"DomainName": "dev.example.com", "RR": "_acme-challenge.x", "Type": "TXT", "Value": "seen"})
    assert mirror.txt["_acme-challenge.x.dev.example.com"] == ["seen"]
    with pytest.raises(ApiFault) as caught:
        add(lab_state, {"DomainName": "example.com", "RR": "_acme-challenge.www", "Type": "TXT", "Value": "one"})
    assert caught.value.code == "DomainRecordDuplicate"
    lab_alidns.delete_domain_record(lab_state, {"RecordId": first["RecordId"]})
    assert mirror.txt["_acme-challenge.www.example.com"] == ["two"]
    with pytest.raises(ApiFault) as caught:
        lab_alidns.delete_domain_record(lab_state, {"RecordId": first["RecordId"]})
    assert caught.value.code == "DomainRecordNotBelongToUser"
    with pytest.raises(ApiFault) as caught:
        add(lab_state, {"DomainName": "nowhere.example", "RR": "a", "Type": "TXT", "Value": "v"})
    assert caught.value.code == "InvalidDomainName.NoExist"


def test_lab_cname_is_mirrored_and_conflicts_like_alidns(lab_state):
    add = lab_alidns.add_domain_record
    record = add(lab_state, {"DomainName": "example.com", "RR": "_acme-challenge.cdn", "Type": "CNAME",
                             "Value": "_acme-challenge.validation.example.org"})
    assert lab_state.challtestsrv.cname["_acme-challenge.cdn.example.com"] == "_acme-challenge.validation.example.org"
    with pytest.raises(ApiFault) as caught:
        add(lab_state, {"DomainName": "example.com", "RR": "_acme-challenge.cdn", "Type": "TXT", "Value": "v"})
    assert caught.value.code == "DomainRecordConflict"
    lab_alidns.delete_domain_record(lab_state, {"RecordId": record["RecordId"]})
    assert "_acme-challenge.cdn.example.com" not in lab_state.challtestsrv.cname


@pytest.mark.parametrize("name, main, rr, level", [
    ("www.example.com", "example.com", "www", 2),
    ("a.b.example.com.cn", "example.com.cn", "a.b", 3),
    ("example.org", "example.org", "@", 1),
])
def test_lab_get_main_domain_name(lab_state, name, main, rr, level):
    answer = lab_alidns.get_main_domain_name(lab_state, {"InputString": name})
    assert (answer["DomainName"], answer["RR"], answer["DomainLevel"]) == (main, rr, level)


def test_lab_zones_come_from_the_state_dir_file(tmp_path):
    (tmp_path / lab_alidns.ZONES_FILE).write_text(
        '[{"DomainName": "corp.example", "Records": [{"RR": "_acme-challenge", "Type": "TXT", "Value": "seed"}]},'
        ' {"DomainName": "xn--bcher-kva.example"}]', encoding="utf-8")
    state = LabState(access_key_id="LTAIlab", access_key_secret=SECRET, state_dir=tmp_path,
                     challtestsrv=RecordingChallTestSrv())
    domains = lab_alidns.describe_domains(state, {})["Domains"]["Domain"]
    assert [(d["DomainName"], d["PunyCode"], d["RecordCount"]) for d in domains] == [
        ("corp.example", "corp.example", 1), ("bücher.example", "xn--bcher-kva.example", 0)]
    lab_alidns.mirror_all(state)
    assert state.challtestsrv.txt == {"_acme-challenge.corp.example": ["seed"]}
    records = lab_alidns.describe_sub_domain_records(state, {"SubDomain": "_acme-challenge.corp.example"})
    assert [(r["RR"], r["Type"], r["Value"], r["TTL"]) for r in records["DomainRecords"]["Record"]] == [
        ("_acme-challenge", "TXT", "seed", 600)]
