"""The client's handling of bad input and of malformed server answers.

Malformed answers come from a tiny local HTTP stub that serves canned
responses per path -- only for the answers a real ACME server would never
give (a non-JSON body, no Replay-Nonce, no Location, ...).  The ACME flow
itself is tested against Pebble in tests/integration/test_client.py.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509

from acmelab import USER_AGENT, jws, keys
from acmelab.client import (
    BAD_NONCE_RETRIES,
    AcmeClient,
    Authorization,
    Challenge,
    CertificateChain,
    ReasonCode,
    parse_retry_after,
)
from acmelab.dns import validation_name
from acmelab.errors import (
    AcmeProblem,
    BadNonce,
    InputError,
    Malformed,
    NetworkError,
    ProtocolError,
    RateLimited,
)
from acmelab.issue import issue_certificate

PROBLEM = "application/problem+json"


class Stub:
    """An HTTP server answering canned (status, headers, body) per path and
    recording each request (method, path, headers, body)."""

    def __init__(self) -> None:
        self.routes: dict[str, list[tuple[int, dict[str, str], bytes]]] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                stub.requests.append((self.command, self.path, dict(self.headers), body))
                answers = stub.routes.get(self.path) or [(404, {"Content-Type": "text/plain"}, b"no route")]
                status, headers, content = answers[0] if len(answers) == 1 else answers.pop(0)
                if status == 0:  # the answer is lost: close the connection, say nothing
                    self.close_connection = True
                    return
                self.send_response(status)
                for name, value in headers.items():
                    for one in value if isinstance(value, list) else [value]:
                        self.send_header(name, one)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(content)

            do_GET = do_POST = do_HEAD = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        self.count = 0

    def nonce(self) -> str:
        self.count += 1
        return f"nonce{self.count}"

    def route(self, path: str, *answers: tuple[int, dict, bytes | dict | str]) -> None:
        encoded = []
        for status, headers, body in answers:
            if isinstance(body, dict):
                body = json.dumps(body).encode()
            elif isinstance(body, str):
                body = body.encode()
            encoded.append((status, headers, body))
        self.routes[path] = encoded

    def directory(self) -> None:
        self.route("/dir", (200, {"Content-Type": "application/json"}, {
            "newNonce": f"{self.url}/nonce", "newAccount": f"{self.url}/account",
            "newOrder": f"{self.url}/order", "revokeCert": f"{self.url}/revoke",
            "keyChange": f"{self.url}/key-change"}))
        self.route("/nonce", (200, {"Replay-Nonce": "fresh-nonce"}, b""))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    server = Stub()
    server.directory()
    yield server
    server.close()


@pytest.fixture(scope="module")
def account_key():
    return keys.generate_key("ec256")


@pytest.fixture
def client(stub, account_key):
    client = AcmeClient(f"{stub.url}/dir", account_key, account_url=f"{stub.url}/acct/1")
    yield client
    client.close()


def _protected(request_body: bytes) -> dict:
    return json.loads(jws.b64url_decode(json.loads(request_body)["protected"]))


# -- malformed server answers ------------------------------------------------

def test_directory_not_json(stub, client):
    stub.route("/dir", (200, {"Content-Type": "text/html"}, "<html>maintenance</html>"))
    with pytest.raises(ProtocolError, match="not JSON"):
        client.directory


def test_directory_missing_urls(stub, client):
    stub.route("/dir", (200, {"Content-Type": "application/json"}, {"newNonce": "x"}))
    with pytest.raises(ProtocolError, match="newAccount"):
        client.directory


def test_new_nonce_without_replay_nonce(stub, client):
    stub.route("/nonce", (200, {}, b""))
    with pytest.raises(ProtocolError, match="Replay-Nonce"):
        client.new_order(["www.example.com"])


def test_post_answer_without_replay_nonce(stub, client):
    stub.route("/order", (201, {"Content-Type": "application/json", "Location": f"{stub.url}/o/1"},
                          {"status": "pending"}))
    with pytest.raises(ProtocolError, match="Replay-Nonce"):
        client.new_order(["www.example.com"])


def test_post_answer_not_json(stub, client):
    stub.route("/order", (201, {"Replay-Nonce": "n", "Location": f"{stub.url}/o/1"}, "not json {"))
    with pytest.raises(ProtocolError, match="not JSON"):
        client.new_order(["www.example.com"])


def test_post_answer_json_array(stub, client):
    stub.route("/order", (201, {"Replay-Nonce": "n", "Location": f"{stub.url}/o/1"}, "[1, 2]"))
    with pytest.raises(ProtocolError, match="not an object"):
        client.new_order(["www.example.com"])


def test_new_account_without_location(stub, client):
    stub.route("/account", (201, {"Replay-Nonce": "n", "Content-Type": "application/json"}, {"status": "valid"}))
    with pytest.raises(ProtocolError, match="Location"):
        client.new_account()


def test_error_without_problem_document(stub, client):
    stub.route("/order", (502, {"Replay-Nonce": "n", "Content-Type": "text/html"}, "<h1>Bad Gateway</h1>"))
    with pytest.raises(ProtocolError, match="HTTP 502"):
        client.new_order(["www.example.com"])


def test_problem_document_becomes_typed_error(stub, client):
    stub.route("/order", (429, {"Replay-Nonce": "n", "Content-Type": PROBLEM, "Retry-After": "60"}, {
        "type": "urn:ietf:params:acme:error:rateLimited", "detail": "too many orders",
        "subproblems": [{"type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "no",
                         "identifier": {"type": "dns", "value": "bad.example"}}]}))
    with pytest.raises(RateLimited) as error:
        client.new_order(["www.example.com"])
    assert (error.value.status, error.value.detail) == (429, "too many orders")
    assert error.value.subproblems[0].identifier == {"type": "dns", "value": "bad.example"}
    assert "bad.example" in str(error.value)


def test_problem_document_unknown_type(stub, client):
    stub.route("/order", (400, {"Replay-Nonce": "n", "Content-Type": PROBLEM},
                          {"type": "https://ca.example/problems/custom", "detail": "custom"}))
    with pytest.raises(AcmeProblem) as error:
        client.new_order(["www.example.com"])
    assert type(error.value) is AcmeProblem
    assert error.value.type == "https://ca.example/problems/custom"


def test_problem_document_not_json(stub, client):
    stub.route("/order", (400, {"Replay-Nonce": "n", "Content-Type": PROBLEM}, "oops"))
    with pytest.raises(ProtocolError, match="not JSON"):
        client.new_order(["www.example.com"])


def test_bad_nonce_retried_with_the_nonce_of_the_error(stub, client):
    bad = {"type": "urn:ietf:params:acme:error:badNonce", "detail": "stale"}
    stub.route("/order",
               (400, {"Replay-Nonce": "from-error-1", "Content-Type": PROBLEM}, bad),
               (400, {"Replay-Nonce": "from-error-2", "Content-Type": PROBLEM}, bad),
               (201, {"Replay-Nonce": "next", "Content-Type": "application/json",
                      "Location": f"{stub.url}/o/1"},
                {"status": "pending", "identifiers": [{"type": "dns", "value": "www.example.com"}],
                 "authorizations": [], "finalize": f"{stub.url}/o/1/finalize"}))
    order = client.new_order(["www.example.com"])
    assert order.url == f"{stub.url}/o/1"
    posts = [r for r in stub.requests if r[0] == "POST"]
    assert [_protected(r[3])["nonce"] for r in posts] == ["fresh-nonce", "from-error-1", "from-error-2"]
    assert [r[0] for r in stub.requests].count("HEAD") == 1  # newNonce only once
    assert all(r[2]["User-Agent"] == USER_AGENT for r in stub.requests)
    assert all(r[2]["Content-Type"] == "application/jose+json" for r in posts)


def test_bad_nonce_is_bounded(stub, client):
    stub.route("/order", (400, {"Replay-Nonce": "again", "Content-Type": PROBLEM},
                          {"type": "urn:ietf:params:acme:error:badNonce", "detail": "stale"}))
    with pytest.raises(BadNonce):
        client.new_order(["www.example.com"])
    assert len([r for r in stub.requests if r[0] == "POST"]) == BAD_NONCE_RETRIES + 1


def test_bad_nonce_retries_are_bounded_by_time(stub, client, monkeypatch):
    """However many retries are left, badNonce stops after BAD_NONCE_TIMEOUT."""
    import acmelab.transport as transport
    monkeypatch.setattr(transport, "BAD_NONCE_TIMEOUT", 0.3)
    monkeypatch.setattr(transport, "BAD_NONCE_RETRIES", 10 ** 6)
    stub.route("/order", (400, {"Replay-Nonce": "again", "Content-Type": PROBLEM},
                          {"type": "urn:ietf:params:acme:error:badNonce", "detail": "stale"}))
    start = time.monotonic()
    with pytest.raises(BadNonce):
        client.new_order(["www.example.com"])
    assert 0.3 <= time.monotonic() - start < 3


def test_malformed_is_not_retried(stub, client):
    stub.route("/order", (400, {"Replay-Nonce": "n", "Content-Type": PROBLEM},
                          {"type": "urn:ietf:params:acme:error:malformed", "detail": "bad"}))
    with pytest.raises(Malformed):
        client.new_order(["www.example.com"])
    assert len([r for r in stub.requests if r[0] == "POST"]) == 1


def test_certificate_not_pem(stub, client):
    stub.route("/cert/1", (200, {"Replay-Nonce": "n", "Content-Type": "application/pem-certificate-chain"},
                           "this is not a certificate"))
    with pytest.raises(ProtocolError, match="PEM"):
        client.download_certificate(f"{stub.url}/cert/1")


def test_alternate_links_from_several_link_headers(stub, client):
    pem = _self_signed_pem()
    stub.route("/cert/1", (200, {"Replay-Nonce": "n", "Content-Type": "application/pem-certificate-chain",
                                 "Link": [f'<{stub.url}/cert/1/1>;rel="alternate"',
                                          f'<{stub.url}/dir>;rel="index"',
                                          f'<{stub.url}/cert/1/2>; rel="alternate"']}, pem))
    chain = client.download_certificate(f"{stub.url}/cert/1")
    assert chain.alternates == (f"{stub.url}/cert/1/1", f"{stub.url}/cert/1/2")
    post = [r for r in stub.requests if r[0] == "POST"][0]
    assert post[2]["Accept"] == "application/pem-certificate-chain"
    assert json.loads(post[3])["payload"] == ""  # POST-as-GET


def test_lost_answer_of_idempotent_request_resent_with_fresh_nonce(stub, client):
    """POST-as-GET whose answer was lost: signed again with a new nonce."""
    stub.route("/o/1", (0, {}, b""),
               (200, {"Replay-Nonce": "n2", "Content-Type": "application/json"},
                {"status": "ready", "identifiers": [], "authorizations": [], "finalize": "f"}))
    stub.route("/nonce", (200, {"Replay-Nonce": "fresh-1"}, b""), (200, {"Replay-Nonce": "fresh-2"}, b""))
    assert client.fetch_order(f"{stub.url}/o/1").status == "ready"
    posts = [r for r in stub.requests if r[0] == "POST"]
    assert [_protected(r[3])["nonce"] for r in posts] == ["fresh-1", "fresh-2"]


def test_lost_answer_of_new_order_looked_up_before_it_is_resent(stub, client):
    """newOrder is not idempotent: after a lost answer the account's orders
    are asked first (§7.1.2.1); none is for these names, so it is sent again."""
    json_answer = {"Replay-Nonce": "n", "Content-Type": "application/json"}
    stub.route("/order", (0, {}, b""),
               (201, {**json_answer, "Location": f"{stub.url}/o/2"},
                {"status": "pending", "identifiers": [{"type": "dns", "value": "www.example.com"}],
                 "authorizations": [], "finalize": f"{stub.url}/o/2/finalize"}))
    stub.route("/acct/1", (200, json_answer, {"status": "valid", "orders": f"{stub.url}/acct/1/orders"}))
    stub.route("/acct/1/orders", (200, json_answer, {"orders": [f"{stub.url}/o/1"]}))
    stub.route("/o/1", (200, json_answer, {"status": "pending",
                                           "identifiers": [{"type": "dns", "value": "other.example"}],
                                           "authorizations": [], "finalize": f"{stub.url}/o/1/finalize"}))
    assert client.new_order(["www.example.com"]).url == f"{stub.url}/o/2"
    assert [r[1] for r in stub.requests if r[0] == "POST"] == ["/order", "/acct/1", "/acct/1/orders", "/o/1", "/order"]


def test_lost_answers_of_new_order_bounded(stub, client):
    """A CA without an orders list whose answers keep getting lost:
    NETWORK_TRIES newOrders, then AnswerLost naming the step."""
    from acmelab.client import NETWORK_TRIES
    from acmelab.errors import AnswerLost
    stub.route("/order", (0, {}, b""))
    stub.route("/acct/1", (200, {"Replay-Nonce": "n", "Content-Type": "application/json"}, {"status": "valid"}))
    with pytest.raises(AnswerLost, match=r"^ordering a certificate for www\.example\.com: http://.*/order: "
                                         r"the connection closed before the answer came \(after 1 try\)$"):
        client.new_order(["www.example.com"])
    assert len([r for r in stub.requests if r[0] == "POST" and r[1] == "/order"]) == NETWORK_TRIES


def test_unreachable_server_is_network_error(account_key):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = AcmeClient(f"http://127.0.0.1:{port}/dir", account_key)
    with pytest.raises(NetworkError, match=rf"^fetching the directory: http://127\.0\.0\.1:{port}/dir: "
                                           r"connection refused \(after 4 tries\)$"):
        client.directory
    assert client.request_count == 4


# -- bad input: refused before anything is sent ------------------------------

@pytest.mark.parametrize("verify", [False, "", 0, None, 0.0, b"", "/nonexistent/ca.pem", 1])
def test_verify_that_is_not_true_nor_a_bundle_refused(verify, account_key):
    """requests treats any falsy verify as "do not verify": only True or an
    existing CA bundle path is accepted."""
    with pytest.raises(InputError):
        AcmeClient("https://localhost:14000/dir", account_key, verify=verify)


def test_verify_true_or_an_existing_bundle(tmp_path, account_key):
    from acmelab.client import checked_verify
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not checked here")
    assert checked_verify(True) is True
    assert checked_verify(bundle) == str(bundle)
    assert AcmeClient("https://localhost:14000/dir", account_key, verify=str(bundle)).transport.verify == str(bundle)


def test_redirect_is_not_followed(stub, client):
    """A 3xx answer is a ProtocolError; its Location is never requested."""
    stub.route("/order", (302, {"Replay-Nonce": "n1", "Location": f"{stub.url}/elsewhere"}, b""))
    stub.route("/elsewhere", (201, {"Replay-Nonce": "n2", "Content-Type": "application/json",
                                    "Location": f"{stub.url}/o/1"}, {"status": "pending"}))
    with pytest.raises(ProtocolError, match="redirect"):
        client.new_order(["www.example.com"])
    assert not any(r[1] == "/elsewhere" for r in stub.requests)


def test_directory_redirect_is_not_followed(stub, account_key):
    stub.route("/moved", (301, {"Location": f"{stub.url}/dir"}, b""))
    with pytest.raises(ProtocolError, match="redirect"):
        AcmeClient(f"{stub.url}/moved", account_key).directory
    assert [r[1] for r in stub.requests] == ["/moved"]


def test_plain_http_url_from_the_server_refused(stub, client):
    """The server points an http:// URL off loopback: refused before sending."""
    stub.route("/order", (201, {"Replay-Nonce": "n1", "Content-Type": "application/json",
                                "Location": f"{stub.url}/o/1"},
                          {"status": "pending", "identifiers": [{"type": "dns", "value": "www.example.com"}],
                           "authorizations": ["http://acme.example.net/authz/1"],
                           "finalize": f"{stub.url}/o/1/finalize"}))
    order = client.new_order(["www.example.com"])
    with pytest.raises(ProtocolError, match="https://"):
        client.fetch_authorization(order.authorizations[0])


def test_http_only_when_the_directory_is_loopback_http():
    from acmelab.client import AcmeTransport
    strict = AcmeTransport()
    for url in ("http://127.0.0.1:1/x", "http://localhost/x", "ftp://x/y", "https:///x", "x"):
        with pytest.raises(ProtocolError):
            strict.get(url)
    assert strict.request_count == 0
    local = AcmeTransport(allow_loopback_http=True)
    local.check_url("http://127.0.0.1:1/x")
    local.check_url("http://[::1]:1/x")
    with pytest.raises(ProtocolError):
        local.check_url("http://acme.example.net/x")


@pytest.mark.parametrize("url", ["", "localhost:14000/dir", "ftp://x/dir", None, "http://acme.example.net/dir"])
def test_bad_directory_url(url, account_key):
    with pytest.raises(InputError):
        AcmeClient(url, account_key)


def test_unsupported_account_key():
    from cryptography.hazmat.primitives.asymmetric import ed25519
    with pytest.raises(InputError):
        AcmeClient("https://localhost:14000/dir", ed25519.Ed25519PrivateKey.generate())


def test_no_account_yet(stub, account_key):
    client = AcmeClient(f"{stub.url}/dir", account_key)
    with pytest.raises(InputError, match="new_account"):
        client.new_order(["www.example.com"])
    assert [r for r in stub.requests if r[0] == "POST"] == []


@pytest.mark.parametrize("names", [[], [""], [None]])
def test_new_order_without_names(stub, client, names):
    with pytest.raises(InputError):
        client.new_order(names)
    assert stub.requests == []


def test_eab_needs_both_parts(stub, client):
    with pytest.raises(InputError):
        client.new_account(eab_kid="kid-1")
    assert stub.requests == []


@pytest.mark.parametrize("reason", [7, 11, -1, "keyCompromise"])
def test_revoke_bad_reason(stub, client, reason):
    with pytest.raises(InputError):
        client.revoke_certificate(_self_signed_pem(), reason=reason)
    assert stub.requests == []


@pytest.mark.parametrize("certificate", ["not a certificate", b"\x30\x03\x02\x01\x00",
                                         "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_revoke_not_a_certificate(stub, client, certificate):
    with pytest.raises(InputError):
        client.revoke_certificate(certificate)
    assert stub.requests == []


@pytest.mark.parametrize("token", ["../../etc/passwd", "a b", "", "tok=en", "tøken"])
def test_malformed_token_refused(client, token):
    with pytest.raises(ProtocolError, match="base64url"):
        client.key_authorization(token)


def test_change_key_to_same_key_refused(stub, client, account_key):
    with pytest.raises(InputError):
        client.change_key(account_key)
    assert [r for r in stub.requests if r[0] == "POST"] == []


@pytest.mark.parametrize("asked, order_names, authorization", [
    # an authorization for a name nobody asked for
    (["www.example.com"], ["www.example.com"], {"type": "dns", "value": "bank.example.org"}),
    # a wildcard order name is authorized as its base name with wildcard: true, not without
    (["*.example.com"], ["*.example.com"], {"type": "dns", "value": "example.com"}),
    (["*.example.com"], ["*.example.com"], {"type": "dns", "value": "*.example.com"}),
    (["www.example.com"], ["www.example.com"], {"type": "ip", "value": "www.example.com"}),
    # an order for other names than asked
    (["www.example.com"], ["bank.example.org"], {"type": "dns", "value": "bank.example.org"}),
])
def test_rogue_authorization_publishes_nothing(stub, client, asked, order_names, authorization):
    """A CA answering an order or authorization for another name: ProtocolError
    before any TXT record is published (no _acme-challenge.<any name>)."""
    stub.route("/order", (201, {"Replay-Nonce": "n1", "Content-Type": "application/json",
                                "Location": f"{stub.url}/o/1"},
                          {"status": "pending", "identifiers": [{"type": "dns", "value": n} for n in order_names],
                           "authorizations": [f"{stub.url}/authz/1"], "finalize": f"{stub.url}/o/1/finalize"}))
    stub.route("/authz/1", (200, {"Replay-Nonce": "n2", "Content-Type": "application/json"},
                            {"status": "pending", "identifier": authorization, "wildcard": False,
                             "challenges": [{"type": "dns-01", "url": f"{stub.url}/chall/1",
                                             "status": "pending", "token": "abc"}]}))

    class NoDns:
        def present(self, name, value):
            raise AssertionError(f"published {name}")

        cleanup = present

    with pytest.raises(ProtocolError, match="nothing published"):
        issue_certificate(asked, client=client, dns=NoDns())
    assert not any(r[1].startswith("/chall") for r in stub.requests)


@pytest.mark.parametrize("names", [["bad name.example.com"], ["*.*.example.com"], "www.example.com",
                                   ["www..example.com"], []])
def test_issue_bad_names_sends_nothing(stub, client, names):
    class NoDns:
        def present(self, name, value):
            raise AssertionError("must not be called")

        cleanup = present

    with pytest.raises(InputError):
        issue_certificate(names, client=client, dns=NoDns())
    assert stub.requests == []


def test_issue_bad_key_type_and_account_key(stub, client, account_key):
    with pytest.raises(InputError):
        issue_certificate(["www.example.com"], client=client, dns=None, key_type="dsa1024")
    with pytest.raises(InputError):
        issue_certificate(["www.example.com"], client=client, dns=None, certificate_key=account_key)
    assert stub.requests == []


# -- pure functions --------------------------------------------------------------

def test_key_authorization_and_dns01_value(client, account_key):
    """§8.1 key authorization and §8.4 TXT value, recomputed independently."""
    import base64
    import hashlib
    token = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
    thumb = keys.thumbprint(account_key)
    assert client.key_authorization(token) == f"{token}.{thumb}"
    digest = hashlib.sha256(f"{token}.{thumb}".encode()).digest()
    assert client.dns01_txt_value(token) == base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert len(client.dns01_txt_value(token)) == 43
    assert client.http01_body(token) == f"{token}.{thumb}"


def test_validation_names():
    assert validation_name("www.example.com") == "_acme-challenge.www.example.com"
    assert validation_name("*.example.com") == "_acme-challenge.example.com"
    assert validation_name("example.com.") == "_acme-challenge.example.com"
    wildcard = Authorization("u", "pending", {"type": "dns", "value": "example.com"}, wildcard=True)
    assert AcmeClient.dns01_name(wildcard) == "_acme-challenge.example.com"
    assert wildcard.name == "*.example.com"


@pytest.mark.parametrize("document", [
    {"type": "urn:ietf:params:acme:error:compound", "detail": "two",
     "subproblems": [{"type": "urn:ietf:params:acme:error:dns", "identifier": "www.example.com"}, 7]},
    {"type": "urn:ietf:params:acme:error:malformed", "detail": "two", "subproblems": 5},
    {"type": ["x"], "detail": {"not": "text"}},
    {"type": "urn:ietf:params:acme:error:compound", "detail": "two",
     "subproblems": [{"type": "x", "identifier": {"type": "dns", "value": 5}}]},
])
def test_malformed_problem_document_is_kept_not_crashed(document):
    """A junk problem document still becomes an AcmeProblem: malformed
    subproblems are ignored, a bad identifier becomes None, a bad type
    about:blank -- str() and repr() work."""
    problem = AcmeProblem.from_document(document, 400)
    assert isinstance(problem, AcmeProblem) and problem.status == 400
    assert all(s.identifier is None for s in problem.subproblems)
    assert len(problem.subproblems) <= 1
    assert str(problem) and repr(problem)
    assert problem.type == (document["type"] if isinstance(document["type"], str) else "about:blank")


@pytest.mark.parametrize("kind, document", [
    ("order", {"status": "pending", "identifiers": ["www.example.com"]}),
    ("order", {"status": "pending", "identifiers": {"type": "dns", "value": "x"}}),
    ("order", {"status": "pending", "identifiers": [{"type": "dns", "value": 5}]}),
    ("order", {"status": "pending", "identifiers": [], "authorizations": "u"}),
    ("order", {"status": "pending", "identifiers": [], "authorizations": [5]}),
    ("order", {"status": "valid", "identifiers": [], "certificate": 5}),
    ("authorization", {"status": "pending", "identifier": "x"}),
    ("authorization", {"status": "pending"}),
    ("authorization", {"status": "pending", "identifier": {"type": "dns", "value": "x"}, "challenges": 5}),
    ("account", {"status": "valid", "contact": "mailto:a@example.com"}),
    ("account", {"status": "valid", "orders": 5}),
])
def test_malformed_objects_are_protocol_errors(kind, document):
    from acmelab.client import Account, Order
    build = {"order": lambda: Order.from_json("u", document),
             "authorization": lambda: Authorization.from_json("u", document),
             "account": lambda: Account.from_json("u", document)}[kind]
    with pytest.raises(ProtocolError):
        build()


def test_authorization_objects():
    document = {"status": "invalid", "identifier": {"type": "dns", "value": "a.example"},
                "challenges": [{"type": "http-01", "url": "h", "status": "pending", "token": "t"},
                               {"type": "dns-01", "url": "d", "status": "invalid", "token": "t",
                                "error": {"type": "urn:ietf:params:acme:error:dns", "detail": "NXDOMAIN"}}]}
    authorization = Authorization.from_json("u", document)
    assert authorization.challenge("dns-01").url == "d"
    assert authorization.problem.name == "dns" and authorization.problem.detail == "NXDOMAIN"
    with pytest.raises(ProtocolError, match="tls-alpn-01"):
        authorization.challenge("tls-alpn-01")
    assert Challenge.from_json(document["challenges"][0]).error is None


def test_reason_codes():
    assert [int(r) for r in ReasonCode] == [0, 1, 2, 3, 4, 5, 6, 8, 9, 10]
    assert ReasonCode.keyCompromise == 1 and ReasonCode.superseded == 4


def test_retry_after_forms():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("3", now=now) == 3.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None


def test_chain_top():
    pem = _self_signed_pem()
    chain = CertificateChain("u", pem + pem)
    assert len(chain.certificates) == 2
    assert chain.leaf_pem == pem


def _self_signed_pem() -> str:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID
    key = keys.generate_key("ec256")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stub.example")])
    now = datetime.now(timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _answer(retry_after: str | None):
    """An ``AcmeResponse`` with this ``Retry-After`` (None: no header)."""
    from acmelab.client import AcmeResponse
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return AcmeResponse("u", 200, headers, b"{}")


def test_poll_waits_retry_after_or_backoff(monkeypatch, client):
    """Between fetches: Retry-After (seconds or HTTP-date) when sent, else a
    back-off doubling from POLL_FIRST_DELAY."""
    import acmelab.client as module
    waits = []
    monkeypatch.setattr(time, "sleep", waits.append)
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=20), usegmt=True)
    answers = iter([("pending", None), ("pending", "2"), ("pending", later), ("pending", None),
                    ("valid", None)])

    def fetch(url):
        status, retry_after = next(answers)
        return Authorization(url, status, {"type": "dns", "value": "a.example"}), _answer(retry_after)

    start = Authorization("u", "pending", {"type": "dns", "value": "a.example"})
    final = client._poll(fetch, "u", start, {"valid"}, timeout=60)
    assert final.status == "valid"
    assert waits[0] == module.POLL_FIRST_DELAY
    assert waits[1] == module.POLL_FIRST_DELAY * 2
    assert waits[2] == 2.0
    assert 18 <= waits[3] <= 20
    assert waits[4] == module.POLL_FIRST_DELAY * 16


def test_poll_timeout(monkeypatch, client):
    """A Retry-After beyond the deadline: PollTimeout, without waiting it out."""
    from acmelab.errors import PollTimeout
    monkeypatch.setattr(time, "sleep", lambda seconds: None)

    def fetch(url):
        return Authorization(url, "pending", {"type": "dns", "value": "a.example"}), _answer("3600")

    with pytest.raises(PollTimeout, match="pending"):
        client._poll(fetch, "u", Authorization("u", "pending", {}), {"valid"}, timeout=10)


@pytest.mark.parametrize("retry_after", ["0", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_poll_retry_after_zero_or_past_does_not_spin(monkeypatch, client, retry_after):
    """Retry-After: 0 (or a date in the past) waits the back-off instead:
    the waits still double, and the deadline still comes."""
    import acmelab.client as module
    from acmelab.errors import PollTimeout
    clock = [0.0]
    waits = []
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])

    def sleep(seconds):
        waits.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(time, "sleep", sleep)

    def fetch(url):
        assert len(waits) < 100, "polling spins"
        return Authorization(url, "pending", {"type": "dns", "value": "a.example"}), _answer(retry_after)

    with pytest.raises(PollTimeout, match=r"after 10\.0 s"):
        client._poll(fetch, "u", Authorization("u", "pending", {}), {"valid"}, timeout=10)
    assert waits[:4] == [module.POLL_FIRST_DELAY * 2 ** i for i in range(4)]
    assert all(w > 0 for w in waits)
    assert len(waits) < 20  # 5 ms doubling to 2 s, for 10 s


def test_poll_retry_after_beyond_deadline_polls_once_at_the_deadline(monkeypatch, client):
    """A Retry-After longer than the time left: wait until the deadline, fetch
    once more (it may be done), and only then give up, saying how long it took."""
    import acmelab.client as module
    from acmelab.errors import PollTimeout
    clock = [0.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(time, "sleep", lambda seconds: clock.__setitem__(0, clock[0] + seconds))
    fetched = []

    def fetch(url):
        fetched.append(clock[0])
        return Authorization(url, "processing", {"type": "dns", "value": "a.example"}), _answer("30")

    with pytest.raises(PollTimeout, match=r"after 60\.0 s"):
        client._poll(fetch, "u", Authorization("u", "processing", {}), {"valid"}, timeout=60)
    assert fetched == [module.POLL_FIRST_DELAY, module.POLL_FIRST_DELAY + 30, 60.0]

    answers = iter(["processing", "valid"])
    clock[0] = 0.0

    def fetch_then_valid(url):
        return Authorization(url, next(answers), {"type": "dns", "value": "a.example"}), _answer("300")

    final = client._poll(fetch_then_valid, "u", Authorization("u", "processing", {}), {"valid"}, timeout=60)
    assert final.status == "valid" and clock[0] == 60.0


# -- the nonce in hand (AcmeTransport.nonce) ------------------------------------

def test_chosen_nonce_is_used_once_then_the_answers(stub, client):
    stub.route("/order",
               (201, {"Replay-Nonce": "next", "Content-Type": "application/json", "Location": f"{stub.url}/o/1"},
                {"status": "pending", "identifiers": [{"type": "dns", "value": "www.example.com"}],
                 "authorizations": [], "finalize": f"{stub.url}/o/1/finalize"}))
    assert client.directory.newNonce == f"{stub.url}/nonce"  # the GET that tells the transport newNonce
    assert client.transport.nonce is None
    client.transport.nonce = "chosen-nonce"
    assert client.transport.nonce == "chosen-nonce"
    client.new_order(["www.example.com"])
    posts = [r for r in stub.requests if r[0] == "POST"]
    assert [_protected(r[3])["nonce"] for r in posts] == ["chosen-nonce"]
    assert [r[0] for r in stub.requests].count("HEAD") == 0  # no newNonce needed
    assert client.transport.nonce == "next"  # the answer's Replay-Nonce, in hand
    client.transport.nonce = None  # dropped: the next request asks newNonce
    client.new_order(["www.example.com"])
    posts = [r for r in stub.requests if r[0] == "POST"]
    assert _protected(posts[-1][3])["nonce"] == "fresh-nonce"
    assert [r[0] for r in stub.requests].count("HEAD") == 1


def test_spent_nonce_set_by_hand_is_retried_after_bad_nonce(stub, client):
    bad = {"type": "urn:ietf:params:acme:error:badNonce", "detail": "JWS has an invalid anti-replay nonce"}
    stub.route("/order",
               (400, {"Replay-Nonce": "from-error", "Content-Type": PROBLEM}, bad),
               (201, {"Replay-Nonce": "next", "Content-Type": "application/json", "Location": f"{stub.url}/o/1"},
                {"status": "pending", "identifiers": [{"type": "dns", "value": "www.example.com"}],
                 "authorizations": [], "finalize": f"{stub.url}/o/1/finalize"}))
    assert client.directory.newNonce == f"{stub.url}/nonce"
    client.transport.nonce = "spent-nonce"
    client.new_order(["www.example.com"])
    posts = [r for r in stub.requests if r[0] == "POST"]
    assert [_protected(r[3])["nonce"] for r in posts] == ["spent-nonce", "from-error"]


@pytest.mark.parametrize("bad", ["", "has space", "pad==", 42, b"bytes"])
def test_nonce_that_is_not_base64url_is_refused(stub, client, bad):
    client.transport.nonce = "kept"
    with pytest.raises(InputError, match="base64url"):
        client.transport.nonce = bad
    assert client.transport.nonce == "kept"


def test_relative_location_and_links_are_resolved_against_the_request_url():
    from requests.structures import CaseInsensitiveDict

    from acmelab.transport import AcmeResponse
    headers = CaseInsensitiveDict({
        "Location": "/order/42",
        "Link": '</cert/1/alt/1>;rel="alternate", <https://ca.example/dir>;rel="index", <2>;rel="alternate"',
    })
    response = AcmeResponse("https://ca.example/acme/new-order", 201, headers, b"{}")
    assert response.location == "https://ca.example/order/42"
    assert response.links("alternate") == ["https://ca.example/cert/1/alt/1", "https://ca.example/acme/2"]
    assert response.links("index") == ["https://ca.example/dir"]


def test_downloaded_leaf_must_certify_our_key_for_the_ordered_names():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    from acmelab.errors import ProtocolError
    from acmelab.issue import _check_leaf

    ours, theirs = keys.generate_key("ec256"), keys.generate_key("ec256")

    def leaf(public_key, names):
        now = datetime.now(timezone.utc)
        return (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stub CA")]))
                .public_key(public_key).serial_number(x509.random_serial_number())
                .not_valid_before(now).not_valid_after(now + timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
                .sign(theirs, hashes.SHA256()))

    names = ["shop.example.com", "*.shop.example.com"]
    _check_leaf(leaf(ours.public_key(), names), ours, names, "u")          # ours: accepted
    with pytest.raises(ProtocolError, match="not for our certificate key"):
        _check_leaf(leaf(theirs.public_key(), names), ours, names, "u")
    with pytest.raises(ProtocolError, match="not the ordered"):
        _check_leaf(leaf(ours.public_key(), names[:1]), ours, names, "u")
