"""acmelab.exercises: every checker rejects a typical wrong answer and
accepts the worked solution (the ones in notebooks/solutions/), offline."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from acmelab import exercises, keys
from acmelab.challenges import account_label
from acmelab.client import ReasonCode
from acmelab.csr import make_csr
from acmelab.errors import BadNonce, ChallengeFailed, InputError, KeyExistsError, Malformed, Unauthorized
from acmelab.jws import b64url

RSA = keys.generate_key("rsa2048")
EC = keys.generate_key("ec256")
LONG = "a" * 60 + ".example.com"
ACCOUNT_URL = "https://localhost:14000/my-account/1"


def _rsa_thumbprint_by_hand(key) -> str:
    numbers = key.public_key().public_numbers()
    member = lambda n: b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))  # noqa: E731
    jwk = json.dumps({"e": member(numbers.e), "kty": "RSA", "n": member(numbers.n)}, separators=(",", ":"),
                     sort_keys=True)
    return b64url(hashlib.sha256(jwk.encode()).digest())


def _label(url: str) -> str:
    return base64.b32encode(hashlib.sha256(url.encode()).digest()[:10]).decode().lower().rstrip("=")


EX = exercises.ALIYUN_EXAMPLE
CASES = {  # id: (the solution, a typical wrong answer)
    "00.1": ("DV", "EV"),
    "00.2": (2, 1),
    "00.3": (["classic", "tlsserver", "shortlived"], ["classic", "tlsclient"]),
    "01.1": ((RSA, _rsa_thumbprint_by_hand(RSA)), (RSA, keys.thumbprint(EC))),
    "01.2": (KeyExistsError, FileNotFoundError),
    "01.3": ("account", "certificate"),
    "02.1": (make_csr(RSA, ["api.example.com"]), make_csr(EC, ["api.example.com"])),
    "02.2": (make_csr(EC, [LONG, "api.example.com"]), make_csr(EC, ["api.example.com", LONG])),
    "02.3": ({"example.com", "v1.api.example.com"}, {"example.com"}),
    "03.1": ({"classic": 90, "tlsserver": 45, "shortlived": 160 / 24}, {"classic": 90, "tlsserver": 90, "shortlived": 7}),
    "03.2": (("a" * 22, "b" * 22), ("a" * 22, "a" * 22)),
    "03.3": (204, 200),
    "04.1": (Malformed("urn:ietf:params:acme:error:malformed", "url"), "badNonce"),
    "04.2": ("RS256", "ES256"),
    "04.3": ("urn:ietf:params:acme:error:malformed", "unauthorized"),
    "05.1": ((201, 200), (201, 201)),
    "05.2": ((), ["mailto:admin@example.com"]),
    "05.3": ("externalAccountRequired", "malformed"),
    "06.1": ("pending", "ready"),
    "06.2": (2, 1),
    "06.3": (1080, 90 * 24),
    "07.1": (2, 1),
    "07.2": (ChallengeFailed("x", "dns-01", "u", Unauthorized("urn:ietf:params:acme:error:unauthorized", "no")),
             "dns"),
    "07.3": ((_label(ACCOUNT_URL), ACCOUNT_URL), (_label(ACCOUNT_URL + "x"), ACCOUNT_URL)),
    "08.1": (exercises.aliyun_v1_signature(EX["params"], EX["secret"]),
             exercises.aliyun_v1_signature(EX["params"], "wrong")),
    "08.2": (exercises.aliyun_v3_authorization(EX["query"], EX["headers"], EX["params"]["AccessKeyId"], EX["secret"]),
             exercises.aliyun_v3_authorization(EX["query"], EX["headers"], EX["params"]["AccessKeyId"], "x")),
    "08.3": ("SignatureNonceUsed", "SignatureDoesNotMatch"),
    "09.1": (InputError("names differ"), Malformed),
    "09.2": ({"alternate", "index"}, {"up", "alternate"}),
    "09.3": ("Valid", "Revoked"),
    "10.1": (InputError, KeyError),
    "10.2": ("SetCdnDomainSSLCertificate", "SetDomainServerCertificate"),
    "10.3": ("SetDomainCertificate", "SetCdnDomainSSLCertificate"),
    "11.1": (InputError, ValueError),
    "11.2": (2019, 2016),
    "12.1": ("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", "aYhba4dGQEHhs3uEe6CuLN4ByNQ.h2VDIQ"),
    "12.3": (80, 160 * 2 / 3),
    "13.1": (ReasonCode.keyCompromise, ReasonCode.superseded),
    "13.2": (Malformed, "badNonce"),
    "14.1": (["issued", "unchanged", "unchanged"], ["issued", "issued"]),
    "14.2": ("failed", "issued"),
    "15.1": ("yundun-cert:UploadUserCertificate", "cas:UploadUserCertificate"),
}


# -- notebook 16, the fault drills (one block, kept by the drills' author) --------

def _caa_allows(records, identity, wildcard=False):
    tag = "issuewild" if wildcard and any(t == "issuewild" for t, _ in records) else "issue"
    values = [value for t, value in records if t == tag]
    return not values or any(value.split(";")[0].strip() == identity for value in values)


def _caa_allows_ignoring_issuewild(records, identity, wildcard=False):
    values = [value for t, value in records if t == "issue"]
    return not values or any(value.split(";")[0].strip() == identity for value in values)


CASES.update({
    "16.1": (BadNonce("urn:ietf:params:acme:error:badNonce", "JWS has an invalid anti-replay nonce"), "malformed"),
    "16.2": (2, 1),
    "16.3": (ChallengeFailed("x", "dns-01", "u", Unauthorized("urn:ietf:params:acme:error:unauthorized",
                                                               "No TXT records found for DNS challenge")),
             "caa"),
    "16.4": (_caa_allows, _caa_allows_ignoring_issuewild),
    "16.5": (Unauthorized("urn:ietf:params:acme:error:unauthorized", 'CSR is missing Order domain "x"'), "orderNotReady"),
    "16.6": (3600.0, 60),
})


def test_every_exercise_has_a_case():
    assert sorted(CASES) == sorted(exercises.EXERCISES)


@pytest.mark.parametrize("exercise_id", sorted(CASES))
def test_checker_accepts_the_solution_and_rejects_a_typical_wrong_answer(exercise_id, capsys):
    right, wrong = CASES[exercise_id]
    assert exercises.verdict(exercise_id, right) is True
    assert capsys.readouterr().out.startswith(f"{exercise_id} right.")
    assert exercises.verdict(exercise_id, wrong) is False
    said = capsys.readouterr().out
    assert said.startswith(f"{exercise_id} not yet. Hint: ") and len(said) > 30


def test_unanswered_and_malformed_answers_are_wrong_not_crashes(capsys):
    assert exercises.check("01.1", ...) is None
    assert "not answered yet" in capsys.readouterr().out
    assert exercises.verdict("01.1", object()) is False
    assert exercises.verdict("07.3", "just a label") is False


def test_the_answer_is_never_printed(capsys):
    exercises.check("01.1", (RSA, "not-the-thumbprint-0123456789"))
    assert "not-the-thumbprint" not in capsys.readouterr().out


def test_v1_signature_matches_the_labs_verifier():
    from acmelab.lab.aliyun import server

    text = server.string_to_sign("GET", EX["params"])
    assert exercises.aliyun_v1_signature(EX["params"], EX["secret"]) == server.signature(EX["secret"], text)


def test_v3_authorization_matches_the_labs_verifier():
    from acmelab.lab.aliyun import server

    headers = {name: [value] for name, value in EX["headers"].items()}
    signed = ";".join(sorted(EX["headers"]))
    canonical = server.canonical_request_v3("GET", "/", EX["query"], headers, signed, EX["headers"]["x-acs-content-sha256"])
    expected = server.signature_v3(EX["secret"], server.string_to_sign_v3(canonical))
    assert exercises.aliyun_v3_authorization(EX["query"], EX["headers"], EX["params"]["AccessKeyId"],
                                             EX["secret"]).endswith(f"Signature={expected}")


def test_dns_account_label_by_hand_matches_the_client():
    assert _label(ACCOUNT_URL) == account_label(ACCOUNT_URL)
