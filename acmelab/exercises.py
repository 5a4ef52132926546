"""The course's exercise checker: ``check("04.1", answer)`` says right or wrong.

Theory of operation
-------------------
Every exercise of the notebook series has an id ``"NN.k"`` (notebook NN,
exercise k) and one entry in :data:`EXERCISES`: the question in one line,
a hint, and a function that accepts or rejects an answer.  :func:`check`
prints one line -- ``right`` with a short explanation, or ``not yet`` with
the hint -- and returns nothing (:func:`verdict` returns True or False).  It never prints the answer itself
(an answer may be a key object), and a checker never raises on a wrong
answer: a wrong answer is a normal outcome of an exercise.

Answers are small values: a number, a string, a problem type (an
:class:`acmelab.errors.AcmeProblem` instance or class, its short name
``"malformed"`` or its URN), an exception class, or a tuple whose parts the
checker recomputes (e.g. ``(key, thumbprint)``: the checker computes the
thumbprint of ``key`` itself).  ``...`` (Ellipsis) means "not answered yet".

Worked solutions: ``notebooks/solutions/NN_*.ipynb``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote


@dataclass(frozen=True)
class Exercise:
    """One exercise: ``question`` (one line), ``hint`` (said on a wrong
    answer), ``accepts(answer) -> bool`` and ``why`` (said when right)."""

    id: str
    question: str
    hint: str
    accepts: Callable[[Any], bool]
    why: str = ""


def check(exercise_id: str, answer: Any) -> None:
    """Check ``answer`` for exercise ``exercise_id`` (``"NN.k"``) and print
    one line saying right or wrong (with a hint).  Returns nothing, so a
    notebook cell shows only that line (:func:`verdict` returns the bool).

    Raises:
        KeyError: no such exercise.
    """
    verdict(exercise_id, answer)


def verdict(exercise_id: str, answer: Any) -> bool:
    """:func:`check`, returning True if right (the line is printed too)."""
    exercise = EXERCISES[exercise_id]
    if answer is Ellipsis:
        print(f"{exercise_id} not answered yet ({exercise.question}). Hint: {exercise.hint}")
        return False
    try:
        right = bool(exercise.accepts(answer))
    except Exception:  # an answer of the wrong shape is a wrong answer, not a crash
        right = False
    if right:
        print(f"{exercise_id} right. {exercise.why}".rstrip())
    else:
        print(f"{exercise_id} not yet. Hint: {exercise.hint}")
    return right


# --------------------------------------------------------------------------
# Small helpers for the checkers
# --------------------------------------------------------------------------

def problem_name(answer: Any) -> str:
    """The short RFC 8555 problem type of ``answer``: an AcmeProblem
    instance or class, ``ChallengeFailed`` (its problem), a URN or a short
    name.  ``""`` if none."""
    from acmelab.errors import AcmeProblem, ChallengeFailed

    if isinstance(answer, ChallengeFailed):
        answer = answer.problem
    if isinstance(answer, AcmeProblem):
        return answer.name
    if isinstance(answer, type) and issubclass(answer, AcmeProblem):
        name = answer.__name__
        return name[0].lower() + name[1:]
    if isinstance(answer, str):
        return answer.strip().rsplit(":", 1)[-1]
    return ""


def _is_problem(*names: str) -> Callable[[Any], bool]:
    return lambda answer: problem_name(answer) in names


def _is_exception(*classes: str) -> Callable[[Any], bool]:
    def accepts(answer: Any) -> bool:
        kind = answer if isinstance(answer, type) else type(answer)
        return any(base.__name__ in classes for base in kind.__mro__)
    return accepts


def _words(*accepted: str) -> Callable[[Any], bool]:
    wanted = {a.lower() for a in accepted}
    return lambda answer: isinstance(answer, str) and answer.strip().lower() in wanted


def _number(value: float, slack: float = 0.0) -> Callable[[Any], bool]:
    return lambda answer: not isinstance(answer, bool) and abs(float(answer) - value) <= slack


# --------------------------------------------------------------------------
# Exercise-specific checkers
# --------------------------------------------------------------------------

def _thumbprint_by_hand(answer: Any) -> bool:
    """01.1: ``(rsa_key, thumbprint)``; the key must be RSA."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from acmelab import keys

    key, given = answer
    return isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)) and given == keys.thumbprint(key)


def _rsa_csr(answer: Any) -> bool:
    """02.1: a CSR (object or PEM) with an RSA 2048 key, signature valid."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from acmelab.csr import inspect_csr, load_csr

    request = load_csr(answer)
    public = request.public_key()
    return isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048 and inspect_csr(request).signature_valid


def _long_name_csr(answer: Any) -> bool:
    """02.2: a CSR whose first name is over 64 characters: empty subject, the name in the SAN."""
    from acmelab.csr import inspect_csr, load_csr

    info = inspect_csr(load_csr(answer))
    return bool(info.names) and len(info.names[0]) > 64 and not info.common_name


def _not_covered_by_wildcard(answer: Any) -> bool:
    return {name.strip().lower() for name in answer} == {"example.com", "v1.api.example.com"}


def _profile_days(answer: Any) -> bool:
    """03.1 (offline): Let's Encrypt's profile lifetimes in days as of 2026."""
    expected = {"classic": 90, "tlsserver": 45, "shortlived": 160 / 24}
    return set(answer) == set(expected) and all(abs(float(answer[k]) - v) < 0.1 for k, v in expected.items())


def _two_fresh_nonces(answer: Any) -> bool:
    first, second = answer
    return isinstance(first, str) and isinstance(second, str) and len(first) >= 16 and first != second


def _dns_account_label(answer: Any) -> bool:
    """07.3: ``(label, account_url)``."""
    from acmelab.challenges import account_label

    label, account_url = answer
    return label == account_label(account_url)


#: A fixed Alibaba Cloud request with a made-up secret, for exercises 08.1 and 08.2.
ALIYUN_EXAMPLE: dict[str, Any] = {
    "secret": "testsecret",
    "params": {
        "AccessKeyId": "LTAIexampleKeyId0", "Action": "DescribeSubDomainRecords", "DomainName": "example.com",
        "Format": "JSON", "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "15215528852396",
        "SignatureVersion": "1.0", "SubDomain": "_acme-challenge.api.example.com",
        "Timestamp": "2026-07-01T12:00:00Z", "Version": "2015-01-09",
    },
    "query": {"DomainName": "example.com", "SubDomain": "_acme-challenge.api.example.com"},
    "headers": {
        "host": "alidns.cn-hangzhou.aliyuncs.com", "x-acs-action": "DescribeSubDomainRecords",
        "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(), "x-acs-date": "2026-07-01T12:00:00Z",
        "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d", "x-acs-version": "2015-01-09",
    },
}


def _percent(text: str) -> str:
    return quote(text, safe="-_.~")


def _canonical_query(parameters: dict[str, str]) -> str:
    return "&".join(f"{_percent(k)}={_percent(v)}" for k, v in sorted(parameters.items()))


def aliyun_v1_signature(parameters: dict[str, str], secret: str) -> str:
    """Alibaba Cloud RPC signature V1 of a GET (the answer key of 08.1)."""
    unsigned = {k: v for k, v in parameters.items() if k != "Signature"}
    text = f"GET&{_percent('/')}&{_percent(_canonical_query(unsigned))}"
    return base64.b64encode(hmac.new((secret + "&").encode(), text.encode(), hashlib.sha1).digest()).decode()


def aliyun_v3_authorization(query: dict[str, str], headers: dict[str, str], key_id: str, secret: str) -> str:
    """The ``Authorization`` header of a V3 (ACS3-HMAC-SHA256) GET to ``/``
    with an empty body (the answer key of 08.2)."""
    names = sorted(headers)
    canonical = "\n".join(["GET", "/", _canonical_query(query), "".join(f"{n}:{headers[n].strip()}\n" for n in names),
                           ";".join(names), hashlib.sha256(b"").hexdigest()])
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return f"ACS3-HMAC-SHA256 Credential={key_id},SignedHeaders={';'.join(names)},Signature={signature}"


def _rfc9773_cert_id(answer: Any) -> bool:
    return answer == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"


def _reason_key_compromise(answer: Any) -> bool:
    return int(answer) == 1 and not isinstance(answer, bool)


def _services_unchanged(answer: Any) -> bool:
    """14.1: the statuses after adding one service: the new one issued, the others unchanged."""
    statuses = sorted(answer)
    return statuses.count("unchanged") >= 1 and any(s != "unchanged" for s in statuses)


def _real_certificate_level(answer: Any) -> bool:
    return isinstance(answer, str) and answer.strip() in ("DV", "dv", "2.23.140.1.2.1")


#: Every exercise of the series, by id.
EXERCISES: dict[str, Exercise] = {e.id: e for e in [
    Exercise("00.1", "validation level of the real Let's Encrypt certificate (offline)",
             "look for the CA/Browser Forum policy OID in its certificatePolicies: 2.23.140.1.2.1 is DV, "
             ".2.2 OV, and EV's OID comes from the EV Guidelines (2.23.140.1.1)",
             _real_certificate_level, "Let's Encrypt issues domain-validated (DV) certificates only."),
    Exercise("00.2", "how many roots does the course's Pebble serve",
             "len(lab.roots()): the course's Pebble has one alternate chain (PEBBLE_ALTERNATE_ROOTS=1)",
             _number(2), "one default root and one alternate root."),
    Exercise("00.3", "the three Let's Encrypt profiles (names)",
             "see the dated note in 00: classic, tlsserver and shortlived",
             lambda a: {str(x).lower() for x in a} == {"classic", "tlsserver", "shortlived"},
             "classic (90 days), tlsserver (45 days), shortlived (160 hours)."),
    Exercise("01.1", "(rsa2048 key, its thumbprint computed by hand)",
             "RSA's required members are e, kty, n: json.dumps({'e': ..., 'kty': 'RSA', 'n': ...}, "
             "separators=(',', ':'), sort_keys=True), SHA-256, base64url without padding",
             _thumbprint_by_hand, "RFC 7638 §3.2: only the required members, sorted, no whitespace."),
    Exercise("01.2", "the exception save_private_key raises for an existing file (overwrite=False)",
             "try it on course.account_key_path(): the default never replaces a key",
             _is_exception("KeyExistsError"), "KeyExistsError: nothing is written; overwrite=True is for "
             "a key you have backed up or revoked."),
    Exercise("01.3", "which key signs newOrder: 'account' or 'certificate'",
             "the certificate key signs only the CSR; every ACME request is signed by ...",
             _words("account", "account key"), "the account key signs every ACME request."),
    Exercise("02.1", "a CSR with an rsa2048 key for course.names()",
             "course.csr('rsa', ...) uses the saved key; make one with keys.generate_key('rsa2048') "
             "and acmelab.csr.make_csr(key, names)", _rsa_csr, "RSA 2048 CSR, self-signature valid."),
    Exercise("02.2", "a CSR whose first name is longer than 64 characters",
             "make_csr(key, ['a' * 60 + '.example.com', ...]); the CN must be empty", _long_name_csr,
             "ub-common-name is 64 characters (X.520), so the name goes only into the SAN."),
    Exercise("02.3", "the names *.example.com does NOT cover (a set)",
             "a wildcard covers exactly one label: not the base name, not two labels deeper",
             _not_covered_by_wildcard, "*.example.com covers api.example.com only."),
    Exercise("03.1", "Let's Encrypt's profile lifetimes in days as of 2026 (offline form: a dict)",
             "classic 90 days, tlsserver 45 days since 2026-05-13, shortlived 160 hours",
             _profile_days, "lifetimes shrink further in 2027 and 2028 (classic: 64, then 45 days)."),
    Exercise("03.2", "(nonce, nonce) from two HEAD requests to newNonce",
             "two s.head(directory['newNonce']).headers['Replay-Nonce'] values", _two_fresh_nonces,
             "every nonce is new; a repeated nonce would let a captured request be replayed."),
    Exercise("03.3", "the status code GET newNonce MUST answer (RFC 8555 §7.2)",
             "HEAD answers 200 (a SHOULD); GET answers ...", _number(204), "204 No Content."),
    Exercise("04.1", "the problem type for a JWS whose url is not the one POSTed to",
             "print the answer's JSON 'type'; RFC 8555 §6.4 says the url must match the request URL",
             _is_problem("malformed", "unauthorized"), "§6.4: the server rejects it (Pebble: malformed)."),
    Exercise("04.2", "the JWS alg for an RSA key with RSASSA-PKCS1-v1_5 and SHA-256",
             "RFC 7518 §3.1: RS..., ES..., PS...", _words("RS256"), "RS256."),
    Exercise("04.3", "the problem type for a POST-as-GET to the account URL with jwk instead of kid",
             "only newAccount and revokeCert take jwk (§6.2)", _is_problem("malformed"),
             "§6.2: any other request must use kid."),
    Exercise("05.1", "(status of the first newAccount, status of the second) for a fresh key",
             "201 Created the first time; the second finds the existing account", lambda a: tuple(a) == (201, 200),
             "201, then 200 with the same Location."),
    Exercise("05.2", "the account's contact after update_account([])",
             "account.contact; Pebble keeps contacts, Let's Encrypt keeps none since 2025",
             lambda a: list(a or []) == [], "empty. Let's Encrypt stores no contact at all since mid-2025."),
    Exercise("05.3", "the problem type for newAccount without a binding on a CA that requires EAB",
             "catch the AcmeProblem and look at its name", _is_problem("externalAccountRequired"),
             "externalAccountRequired (RFC 8555 §7.3.4)."),
    Exercise("06.1", "the status of a fresh order (your hand-made newOrder's answer)",
             "order['status'] in the 201 answer", _words("pending"), "pending until every authorization is valid."),
    Exercise("06.2", "the number of authorizations of the course's order",
             "one per identifier: len(order['authorizations'])", _number(2), "one per name."),
    Exercise("06.3", "the lifetime of a tlsserver certificate in hours",
             "tlsserver lives 45 days since 2026-05-13; days times 24", _number(1080), "45 days = 1080 hours."),
    Exercise("07.1", "how many TXT values _acme-challenge.example.com holds with example.com and *.example.com",
             "both authorizations use the same name: propagation.txt_values(name, server)", _number(2),
             "two values at one name: cleanup must remove only its own."),
    Exercise("07.2", "the problem type for a wrong TXT value",
             "catch ChallengeFailed and look at error.problem", _is_problem("unauthorized", "incorrectResponse"),
             "unauthorized: the CA found no matching value."),
    Exercise("07.3", "(dns-account-01 label by hand, client.account_url)",
             "base64.b32encode(hashlib.sha256(url.encode()).digest()[:10]).decode().lower().rstrip('=')",
             _dns_account_label, "the label is per account, so two accounts never share a record name."),
    Exercise("08.1", "the V1 Signature of ALIYUN_EXAMPLE",
             "sign(dict(ALIYUN_EXAMPLE['params']), ALIYUN_EXAMPLE['secret'])['Signature']: HMAC-SHA1 keyed "
             "with secret + '&' over GET&%2F&percent(canonical query)",
             lambda a: a == aliyun_v1_signature(ALIYUN_EXAMPLE["params"], ALIYUN_EXAMPLE["secret"]),
             "base64(HMAC-SHA1(secret&, StringToSign))."),
    Exercise("08.2", "the V3 Authorization header of ALIYUN_EXAMPLE",
             "sign_v3(query, headers, key id, secret)['Authorization']: HMAC-SHA256 keyed with the secret "
             "(no '&') over 'ACS3-HMAC-SHA256\\n' + hex(SHA-256(canonical request))",
             lambda a: a == aliyun_v3_authorization(ALIYUN_EXAMPLE["query"], ALIYUN_EXAMPLE["headers"],
                                                    ALIYUN_EXAMPLE["params"]["AccessKeyId"], ALIYUN_EXAMPLE["secret"]),
             "ACS3-HMAC-SHA256 Credential=...,SignedHeaders=...,Signature=<hex>."),
    Exercise("08.3", "the error Code for a SignatureNonce sent twice",
             "send the same signed params twice and read .json()['Code']", _words("SignatureNonceUsed"),
             "a nonce is good once within 15 minutes."),
    Exercise("09.1", "the exception for finalizing with a CSR for other names",
             "the client compares the CSR's names with the order's identifiers before sending",
             _is_exception("InputError"), "refused locally (InputError): nothing reached the CA."),
    Exercise("09.2", "the rel values of the Link headers of the certificate download (a set)",
             "print them: rel=\"...\" after each <URL>",
             lambda a: {str(x) for x in a} == {"alternate", "index"},
             "alternate (another chain, RFC 8555 §7.4.2) and index (the directory); a CA may add "
             "rel=\"up\" for the issuer's certificate (Pebble does not)."),
    Exercise("09.3", "the Status Pebble's management API gives the course's certificate",
             "course.lab().cert_status(serial_hex)['Status']", _words("Valid"), "Valid until notebook 13 revokes one."),
    Exercise("10.1", "the exception for a chain with the intermediate first",
             "check_certificate runs before anything is sent", _is_exception("DeployError", "InputError"),
             "refused before sending."),
    Exercise("10.2", "the product call that installs a PEM certificate on a CDN domain (Alibaba action name)",
             "CDN API 2018-05-10", _words("SetCdnDomainSSLCertificate"),
             "SetCdnDomainSSLCertificate (SetDomainServerCertificate is deprecated)."),
    Exercise("10.3", "the API Gateway action that binds a certificate to a custom domain",
             "CloudAPI 2016-07-14", _words("SetDomainCertificate"), "SetDomainCertificate."),
    Exercise("11.1", "the exception export_pkcs12 raises for an empty password",
             "an empty password would leave the key unprotected; try it", _is_exception("InputError"),
             "InputError: pass unencrypted=True to mean it."),
    Exercise("11.2", "the oldest Windows Server that imports AES-256/PBES2 PFX files",
             "2016 and older say 'The specified network password is not correct'", _number(2019),
             "Windows Server 2019; use profile='legacy' for 2016 and older."),
    Exercise("12.1", "the certID of RFC 9773's example",
             "AKI 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4, serial 0x87654321: "
             "base64url(AKI) '.' base64url(serial content octets, leading 0x00 kept)",
             _rfc9773_cert_id, "ends in .AIdlQyE, with the leading 0x00."),
    Exercise("12.3", "hours after issuance a 160-hour shortlived certificate is due without ARI",
             "under 10 days of lifetime, renew at half-life", _number(80, 0.5), "at half-life: 80 hours."),
    Exercise("13.1", "the RFC 5280 reason code for a leaked certificate key",
             "ReasonCode.keyCompromise", _reason_key_compromise, "keyCompromise (1)."),
    Exercise("13.2", "the problem type when the old key signs for the account after a rollover",
             "the old key no longer verifies for that kid", _is_problem("malformed", "unauthorized",
                                                                       "accountDoesNotExist"),
             "refused: the account answers to the new key only."),
    Exercise("14.1", "the statuses (a list) after adding one service and applying again",
             "[s['status'] for s in summary['services']]", _services_unchanged,
             "only the new service is worked on; the others stay unchanged."),
    Exercise("14.2", "the status of a service with an API Gateway group_id that does not exist",
             "display.service_results shows it; the others still succeed", _words("failed"),
             "failed, alone: the other services are applied."),
    Exercise("15.1", "the RAM action a service with cas = true needs",
             "Certificate Management Service's upload action (RAM namespace yundun-cert)",
             _words("yundun-cert:UploadUserCertificate"), "yundun-cert:UploadUserCertificate."),
]}


# --------------------------------------------------------------------------
# Notebook 16, the fault drills (one block, kept by the drills' author)
# --------------------------------------------------------------------------

#: (CAA record set, CA identity, wildcard?) -> may that CA issue (RFC 8659 §4, RFC 8657)
_CAA_CASES = [
    ([], "pebble.letsencrypt.org", False, True),
    ([("issue", "letsencrypt.org")], "pebble.letsencrypt.org", False, False),
    ([("issue", "letsencrypt.org"), ("issue", "pebble.letsencrypt.org")], "pebble.letsencrypt.org", False, True),
    ([("issue", "pebble.letsencrypt.org; accounturi=https://ca/acct/1")], "pebble.letsencrypt.org", False, True),
    ([("iodef", "mailto:security@example.com")], "pebble.letsencrypt.org", False, True),
    ([("issue", ";")], "pebble.letsencrypt.org", False, False),
    ([("issue", "pebble.letsencrypt.org"), ("issuewild", ";")], "pebble.letsencrypt.org", True, False),
    ([("issue", "pebble.letsencrypt.org"), ("issuewild", ";")], "pebble.letsencrypt.org", False, True),
    ([("issue", ";")], "pebble.letsencrypt.org", True, False),
]


def _caa_allows(answer: Any) -> bool:
    """16.4: a function ``(records, identity, wildcard=False) -> bool``
    that decides the cases of :data:`_CAA_CASES` as RFC 8659 does."""
    return callable(answer) and all(answer(records, identity, wildcard=wildcard) is expected
                                    for records, identity, wildcard, expected in _CAA_CASES)


EXERCISES.update({e.id: e for e in [
    Exercise("16.1", "the problem type a nonce storm answers",
             "the caught error (storm_error) or its problem name; RFC 8555 §6.5", _is_problem("badNonce"),
             "badNonce: sign again with the Replay-Nonce of the error, a bounded number of times."),
    Exercise("16.2", "how many orders the CA holds after the blind repeat of a lost newOrder",
             "len(blind): the CA acted on both requests", _number(2),
             "two: newOrder is not idempotent; after a lost answer ask the CA (list the orders) first."),
    Exercise("16.3", "the problem type of the authorization answered before the TXT record was visible",
             "propagation_error (a ChallengeFailed carries the CA's problem)", _is_problem("unauthorized", "dns"),
             "the CA found no TXT record yet: wait until every authoritative server answers it."),
    Exercise("16.4", "a function caa_allows(records, identity, wildcard=False)",
             "the issue values (issuewild for a wildcard, when there is one) must name the identity "
             "before any ';' parameters; no issue/issuewild property at all allows every CA; iodef restricts nothing",
             _caa_allows, "RFC 8659 §4: issue, issuewild for wildcards, parameters such as accounturi after ';'."),
    Exercise("16.5", "the problem type of a finalize whose CSR names differ from the order",
             "csr_error: what the CA answered to the hand-sent finalize", _is_problem("unauthorized", "badCSR"),
             "refused (Pebble: unauthorized; RFC 8555 §7.4 allows badCSR): the CSR names exactly the order's identifiers."),
    Exercise("16.6", "seconds to wait after the 429 answer",
             "rate_error.retry_after, from the Retry-After header", _number(3600, 1),
             "3600 s: reschedule, do not hammer; a renewal inside the ARI window is exempt at Let's Encrypt."),
]})
