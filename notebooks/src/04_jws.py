# %% [markdown]
# # 04 · JWS: signing a request by hand
#
# **Goal:** build an ACME request the way the CA reads it — a JSON Web Signature (JWS) with a
# protected header, a payload and a signature — sign it with `cryptography`, send it, verify
# it; then do the same with `acmelab.jws`. Along the way: `jwk` versus `kid`, POST-as-GET, and
# what `badNonce` looks like and how a client retries it.
#
# **Needs:** the lab (started if needed). It makes its own throw-away account key, so it does
# not depend on notebooks 01–03.
#
# **Previous:** [03 · The directory and nonces](03_directory_and_nonces.ipynb) · **Next:** [05 · The account](05_account.ipynb)

# %% [markdown]
# ## The anatomy of an ACME request
#
# Every ACME request except the directory and `newNonce` is an HTTP POST with
# `Content-Type: application/jose+json` whose body is a JWS in the *flattened JSON*
# serialisation (RFC 7515 §7.2.2, RFC 8555 §6.2): three base64url strings.
#
# ```mermaid jws
# flowchart TB
#     subgraph body["POST body: flattened JWS"]
#         p["protected: base64url(JSON header)<br/>alg, nonce, url, and jwk or kid"]
#         y["payload: base64url(JSON request)<br/>or empty for POST-as-GET"]
#         s["signature: base64url(sign(protected + '.' + payload))"]
#     end
#     p --> input["signing input<br/>ASCII: protected.payload"]
#     y --> input
#     input -->|"account private key<br/>ES256 / RS256"| s
# ```
#
# The header says **who** signs (`jwk`: the public key itself, or `kid`: the account URL),
# **where** the request goes (`url`, which must equal the URL posted to, so a signed request
# cannot be redirected elsewhere), and the **nonce** (good once). The server checks all three
# before it reads the payload. We sign with a key of our own, made only for this notebook:

# %%
import json

import requests

from acmelab import course, display, keys

target = course.target()
trust = target.verify  # the lab's CA bundle (TLS always verified)
session = requests.Session()
directory = session.get(target.directory_url, verify=trust, timeout=10).json()
nonce = session.head(directory["newNonce"], verify=trust, timeout=10).headers["Replay-Nonce"]
print("directory has", len(directory), "entries; first nonce", nonce)
account_key = keys.generate_key("ec256")  # a throw-away account, for this notebook only
print("signing with an", keys.key_type_of(account_key), "key")

# %% [markdown]
# ## 1. The protected header and the payload
#
# There is no account yet, so the header carries the public key as a `jwk` (notebook 01).
# The payload asks to create an account and agrees to the CA's terms of service.

# %%
protected = {
    "alg": "ES256",                        # ECDSA P-256 with SHA-256 (RFC 7518 §3.4)
    "jwk": keys.public_jwk(account_key),   # who signs: the key itself (no account yet)
    "nonce": nonce,                        # anti-replay, from newNonce
    "url": directory["newAccount"],        # where this request goes
}
payload = {"termsOfServiceAgreed": True}
display.json_view(protected, title="protected header")

# %% [markdown]
# ## 2. Encode, and make the signing input
#
# Both parts are serialised as compact JSON, then base64url-encoded without `=` padding. The
# signature covers the ASCII string `<protected>.<payload>` — the encoded forms, not the JSON,
# so the server verifies exactly the bytes it received.

# %%
from acmelab.jws import b64url

protected_b64 = b64url(json.dumps(protected, separators=(",", ":")).encode())
payload_b64 = b64url(json.dumps(payload, separators=(",", ":")).encode())
signing_input = f"{protected_b64}.{payload_b64}".encode("ascii")
print("protected:", protected_b64[:40] + "…")
print("payload:  ", payload_b64)

# %% [markdown]
# ## 3. Sign
#
# `cryptography` returns an ECDSA signature DER-encoded (an ASN.1 sequence of two integers,
# usually 70–72 bytes for P-256: the DER length varies with the integers' leading bits). JWS wants the two integers `r` and `s` as fixed-length big-endian numbers,
# concatenated: 32 + 32 = 64 bytes for P-256 (RFC 7518 §3.4). Getting this conversion wrong
# is the classic bug of hand-written ACME clients.

# %%
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

der = account_key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
r, s = decode_dss_signature(der)
signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
body = {"protected": protected_b64, "payload": payload_b64, "signature": b64url(signature)}
print("r||s:", len(signature), "bytes ->", len(body["signature"]), "base64url characters")

# %% [markdown]
# This is the whole POST body, as the server receives it: a JSON object of three base64url
# strings (each cut short here):

# %%
for name, value in body.items():
    print(f"{name:9}: {value[:30]}... ({len(value)} characters)")

# %% [markdown]
# ## 4. Send it
#
# The answer: `201 Created`, the new account object, and three headers worth reading — the
# account URL in `Location` (from now on it *is* our `kid`), the next nonce in
# `Replay-Nonce`, and a `Link` to the directory (Let's Encrypt adds one to its terms of
# service).

# %%
response = session.post(directory["newAccount"], data=json.dumps(body), verify=trust, timeout=10,
                        headers={"Content-Type": "application/jose+json"})
account_url = response.headers["Location"]
next_nonce = response.headers["Replay-Nonce"]
print(response.status_code, response.json()["status"])
display.exchange(response, title="newAccount, signed by hand")

# %% [markdown]
# ## 5. Verify it, and break it
#
# The server verified our signature with the `jwk` from the header. We can do the same with
# `acmelab.jws.verify`, which returns the decoded header and payload. Changing a single
# character of the payload makes verification fail — the JWS protects every byte.

# %%
from acmelab import jws
from acmelab.errors import InputError

decoded = jws.verify(body, account_key.public_key())
print("verified; payload:", decoded["payload"], "url:", decoded["protected"]["url"])

tampered = dict(body, payload=b64url(b'{"termsOfServiceAgreed":false}'))
try:
    jws.verify(tampered, account_key.public_key())
except InputError as error:
    print("tampered:", error)

# %% [markdown]
# ## 6. The same with `acmelab.jws.sign`
#
# `jws.sign(payload, key, url=…, nonce=…, kid=…)` does steps 1–3. Without `kid` it puts the
# `jwk` in the header. We sign the same request again with the nonce the server just gave us
# and send it: for a key that already has an account, `newAccount` answers `200 OK` and the
# same `Location` — it never makes a second account for one key.

# %%
signed = jws.sign(payload, account_key, url=directory["newAccount"], nonce=next_nonce)
header = jws.verify(signed, account_key)["protected"]
print("same alg, jwk and url as ours:",
      header["alg"] == protected["alg"], header["jwk"] == protected["jwk"], header["url"] == protected["url"])
print("new nonce:", header["nonce"] == next_nonce)
again = session.post(directory["newAccount"], data=json.dumps(signed), verify=trust, timeout=10,
                     headers={"Content-Type": "application/jose+json"})
print(again.status_code, again.reason, "- same account:", again.headers["Location"] == account_url)

# %% [markdown]
# ## 7. `kid` and POST-as-GET
#
# Once the account exists, every request names it by URL — `kid` instead of `jwk` (RFC 8555
# §6.2); only `newAccount`, revocation by certificate key, and the inner JWS of `keyChange`
# (notebook 13) use `jwk`. And ACME never uses
# plain GET for its objects: to *read* one, you POST a JWS whose payload is the empty string,
# a **POST-as-GET** (§6.3), so every read is authenticated too. Here we read our account:

# %%
read = jws.sign(None, account_key, url=account_url, nonce=again.headers["Replay-Nonce"], kid=account_url)
fetched = session.post(account_url, data=json.dumps(read), verify=trust, timeout=10,
                       headers={"Content-Type": "application/jose+json"})
display.exchange(fetched, title="POST-as-GET the account, with kid")

# %% [markdown]
# ## 8. `badNonce`
#
# What if a nonce is used twice? Let's resend a request with the nonce we already spent in
# step 6. The server refuses it with a **problem document** (RFC 7807, now RFC 9457, which
# obsoletes it; RFC 8555 §6.7):
# `400 Bad Request`, `Content-Type: application/problem+json`, type
# `urn:ietf:params:acme:error:badNonce` — and, like every answer, a fresh `Replay-Nonce`.

# %%
stale = jws.sign(None, account_key, url=account_url, nonce=next_nonce, kid=account_url)
refused = session.post(account_url, data=json.dumps(stale), verify=trust, timeout=10,
                       headers={"Content-Type": "application/jose+json"})
display.exchange(refused, title="the same nonce again")

# %% [markdown]
# `badNonce` is the one error a client should simply retry (§6.5): sign the request again with
# the nonce that came *with the error*, and send it. Real CAs reject a nonce now and then
# for their own reasons (a nonce made by another server of the cluster, an expired one), and
# Pebble can be told to reject a share of good nonces on purpose (`PEBBLE_WFE_NONCEREJECT`)
# to make sure clients cope.

# %%
retry = jws.sign(None, account_key, url=account_url, nonce=refused.headers["Replay-Nonce"], kid=account_url)
retried = session.post(account_url, data=json.dumps(retry), verify=trust, timeout=10,
                       headers={"Content-Type": "application/jose+json"})
print("retry with the nonce from the error:", retried.status_code, retried.reason)

# %% [markdown]
# ## 9. The same through the client
#
# `acmelab.client.AcmeClient` does all of the above in its transport: signs with `jwk` or
# `kid`, keeps the newest nonce, turns problem documents into typed exceptions
# (`acmelab.errors.BadNonce`, `Unauthorized`, …) and retries `badNonce` with the nonce from the
# error. To watch a retry we hand the client a nonce that is already spent (setting its
# nonce-in-hand, which only a lesson should do) and record the wire with `display.Wire`.
# The client fetches the directory once, on its first request, so that is the first line:

# %%
client = course.client(account_key, account_url=account_url)
client.transport.nonce = refused.headers["Replay-Nonce"]  # spent by the retry above

with display.Wire(client) as wire:
    account = client.fetch_account()
print("account status:", account.status)
wire.summary()

# %% [markdown]
# The client saw `400 badNonce`, signed again with the nonce from that answer, and got
# `200 OK` — the caller only sees the account. Any other problem is raised as its own class,
# named after the RFC's error type:

# %%
from acmelab.errors import AcmeProblem, BadNonce

problem = AcmeProblem.from_document(refused.json(), refused.status_code)
print(type(problem).__name__, "| is BadNonce:", isinstance(problem, BadNonce), "|", problem.description)

# %% [markdown]
# ## Summary
#
# * An ACME request is a flattened JWS: `protected` (alg, nonce, url, jwk *or* kid),
#   `payload` (JSON, or empty for POST-as-GET), `signature` over `protected.payload`.
# * ES256 signatures are `r||s`, 64 bytes — not the DER that `cryptography` returns.
# * `jwk` before the account exists (newAccount), `kid` (the account URL) afterwards.
# * Objects are read with POST-as-GET: signed, empty payload.
# * A spent or unknown nonce gets `400 badNonce`; retry with the nonce from the error.
#
# ## Exercises
#
# 1. Change `url` in the protected header to the `newOrder` URL but still POST to
#    `newAccount`. Which problem type comes back (RFC 8555 §6.4)? `check("04.1", answer["type"])`.
# 2. Sign with an `rsa2048` key: which `alg` (hint: RSASSA-PKCS1-v1_5 with SHA-256)?
#    `check("04.2", alg)`.
# 3. Send a POST-as-GET for the account with `jwk` instead of `kid`: `check("04.3", answer["type"])`.

# %%
from acmelab.exercises import check

check("04.1", ...)  # the problem type
check("04.2", ...)  # the alg
check("04.3", ...)  # the problem type

# %% [markdown]
# **Previous:** [03 · The directory and nonces](03_directory_and_nonces.ipynb) · **Next:** [05 · The account](05_account.ipynb)
