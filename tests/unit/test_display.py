"""acmelab.display: the notebooks' displays show what matters and no secrets."""

from __future__ import annotations

import datetime
import json

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from acmelab import display, jws, keys
from acmelab.csr import make_csr


def _certificate(subject: str, issuer: str, key, signer, *, ca: bool, names=(), policy=None):
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(key.public_key()).serial_number(0x1234abcd)
               .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=90))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
    if policy:
        builder = builder.add_extension(x509.CertificatePolicies(
            [x509.PolicyInformation(x509.ObjectIdentifier(policy), None)]), False)
    return builder.sign(signer, hashes.SHA256())


def test_chain_display_names_roles_policy_and_signatures():
    root_key, leaf_key = keys.generate_key("ec256"), keys.generate_key("ec256")
    root = _certificate("Test Root", "Test Root", root_key, root_key, ca=True)
    leaf = _certificate("api.example.com", "Test Root", leaf_key, root_key, ca=False,
                        names=["api.example.com", "cdn.example.com"], policy="2.23.140.1.2.1")
    text = repr(display.chain([leaf, root]))
    assert "[0] leaf" in text and "[1] root" in text
    assert "names (SAN):  api.example.com, cdn.example.com" in text
    assert "policy:       2.23.140.1.2.1 Domain Validated (DV)" in text
    assert "signed by [1]: yes" in text
    assert "serial:       1234abcd" in text
    assert "not after:    2026-04-01 00:00:00 UTC" in text
    wrong = repr(display.chain([leaf, _certificate("Other", "Other", leaf_key, leaf_key, ca=True)]))
    assert "signed by [1]: NO" in wrong


def test_csr_display_and_no_key_material():
    key = keys.generate_key("ec256")
    text = repr(display.csr(make_csr(key, ["example.com", "*.example.com"])))
    assert "names (SAN):  example.com, *.example.com" in text
    assert "signature:    sha256, valid" in text
    assert "PRIVATE" not in text


def test_html_twin_escapes_markup_and_keeps_quotes():
    shown = display.Text('<<< HTTP 200 OK\n{"a": "<b>"}', title="t<i>")
    html = shown._repr_html_()
    assert "&lt;&lt;&lt; HTTP 200 OK" in html and '"a": "&lt;b&gt;"' in html
    assert "t&lt;i&gt;" in html and "<pre" in html


def test_jws_display_decodes_header_and_payload_and_marks_post_as_get():
    key = keys.generate_key("ec256")
    body = jws.sign(None, key, url="https://ca.example/acct/1", nonce="abc", kid="https://ca.example/acct/1")
    text = repr(display.jws(body))
    assert '"kid": "https://ca.example/acct/1"' in text
    assert "POST-as-GET" in text
    signed = jws.sign({"contact": ["mailto:a@example.com"]}, key, url="https://ca.example/new", nonce="n")
    assert '"mailto:a@example.com"' in repr(display.jws(signed))


def _response(status: int, body: dict, headers: dict, request_body: dict | None) -> requests.Response:
    request = requests.Request("POST", "https://ca.example/order-plz",
                               data=json.dumps(request_body) if request_body else None,
                               headers={"Content-Type": "application/jose+json",
                                        "User-Agent": "x", "Authorization": "Bearer hidden"}).prepare()
    response = requests.Response()
    response.status_code, response.reason, response.request = status, "Created", request
    response.headers.update({"Content-Type": "application/json", **headers, "Date": "Mon, 01 Jan 2026 00:00:00 GMT"})
    response._content = json.dumps(body).encode()
    response.url = request.url
    return response


def test_exchange_shows_acme_headers_only_and_tidies_lists():
    key = keys.generate_key("ec256")
    request_body = jws.sign({"identifiers": []}, key, url="https://ca.example/order-plz", nonce="n1", kid="k")
    order = {"status": "pending", "identifiers": [{"type": "dns", "value": "cdn.example.com"},
                                                   {"type": "dns", "value": "api.example.com"}]}
    response = _response(201, order, {"Replay-Nonce": "n2", "Location": "https://ca.example/o/1",
                                      "Link": '<https://ca.example/dir>;rel="index", <https://ca.example/tos>;rel="terms-of-service"'},
                         request_body)
    text = display.exchange_text(response, tidy=display.sort_lists)
    assert ">>> POST https://ca.example/order-plz" in text
    assert "<<< HTTP 201 Created" in text
    assert "Replay-Nonce: n2" in text and "Location: https://ca.example/o/1" in text
    assert 'Link: <https://ca.example/dir>;rel="index"' in text
    assert 'Link: <https://ca.example/tos>;rel="terms-of-service"' in text
    assert "Bearer" not in text and "User-Agent" not in text and "Date:" not in text
    assert text.index("api.example.com") < text.index("cdn.example.com")
    assert display.exchange_text(response).index("cdn.example.com") < display.exchange_text(response).index("api.example.com")


def test_wire_records_a_session_and_detaches():
    session = requests.Session()
    with display.Wire(session) as wire:
        assert wire._hook in session.hooks["response"]
        wire._hook(_response(201, {}, {}, None))
    assert wire._hook not in session.hooks["response"]
    assert repr(wire.summary()) == "POST  /order-plz -> HTTP 201 Created"


def test_error_display_hides_the_temporary_folder(tmp_path):
    error = FileExistsError(f"{tmp_path}/account.key already exists")
    assert repr(display.error(error, tmp=tmp_path)) == "FileExistsError: <tmp>/account.key already exists"


def test_table_aligns_columns():
    assert repr(display.table([["a", "bb"], ["ccc", "d"]], header=["x", "y"])) == \
        "x    y\n---  --\na    bb\nccc  d"


def test_shorten_hides_named_payload_fields_and_payload_note_replaces_the_payload():
    key = keys.generate_key("ec256")
    body = jws.sign({"csr": "MIIB" + "A" * 300, "reason": 1}, key, url="https://ca.example/f", nonce="n", kid="k")
    text = repr(display.jws(body, shorten=("csr",)))
    assert '"csr": "<the csr: DER, base64url>"' in text and "AAAA" not in text
    assert '"reason": 1' in text
    assert "AAAA" in repr(display.jws(body))
    response = _response(200, {"status": "processing"}, {}, body)
    assert "AAAA" not in display.exchange_text(response, shorten=("csr",))
    assert "AAAA" in display.exchange_text(response)
    noted = repr(display.jws(body, payload_note="the inner JWS, shown next"))
    assert "payload:             <the inner JWS, shown next>" in noted and "csr" not in noted


def test_mask_keeps_only_the_ends():
    assert display.mask("LTAI8yfsglu56yemxuS10pBI") == "LTAI…0pBI"
    assert display.mask("short") == "short"


def test_target_ids_and_service_results_drop_the_group():
    from types import SimpleNamespace

    assert display.target_ids(["apigateway:G1/api.example.com", "cas"], drop="G1/") == "apigateway:api.example.com, cas"
    assert display.target_ids([]) == "-"
    result = SimpleNamespace(name="api", status="issued", reason=None,
                             installed=["apigateway:G1/api.example.com", "cas"], verified=["apigateway:G1/api.example.com"])
    text = repr(display.service_results([result], drop="G1/"))
    assert "api      issued  -    apigateway:api.example.com, cas  apigateway:api.example.com" in text


def test_aliyun_request_redacts_the_key_and_aliyun_calls_records_and_detaches():
    from aliyunsdkcore.request import CommonRequest

    request = CommonRequest(domain=None, version="2018-05-10", action_name="SetCdnDomainSSLCertificate", product="Cdn")
    request.set_method("POST")
    request.add_query_param("DomainName", "cdn.example.com")
    request.add_body_params("SSLPub", "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n" * 2)
    request.add_body_params("SSLPri", "not a PEM but secret")
    request.add_body_params("Other", "-----BEGIN EC " + "PRIVATE KEY-----\nx")
    text = repr(display.aliyun_request(request, redact=("SSLPri",)))
    assert "DomainName=cdn.example.com" in text and "SSLPub=<PEM chain: 2 certificates>" in text
    assert "secret" not in text and "PRIVATE" not in text
    assert text.count("<redacted: a private key is never shown>") == 2

    class Client:
        def send(self, request, **kwargs):
            return {"RequestId": "1"}

    client = Client()
    with display.AliyunCalls(client) as calls:
        assert client.send(request) == {"RequestId": "1"}
    assert calls.requests == [request]
    assert "send" not in client.__dict__
