# %% [markdown]
# # 08 · A hand-signed Alibaba Cloud request
#
# **Goal:** sign one Alibaba Cloud API call by hand, twice: with the classic RPC signature
# (**V1**, HMAC-SHA1, what the classic `aliyun-python-sdk-core` still sends and Alibaba's docs
# mark discontinued) and with the current **V3** (`ACS3-HMAC-SHA256` in an `Authorization`
# header, what the `alibabacloud_*` SDKs send), and see the service refuse a wrong signature.
# Like the JWS of notebook 04: nothing here is magic once written out.
#
# **Needs:** the lab (started if needed) and its Alibaba Cloud endpoint; nothing from earlier
# notebooks (the DNS provider of [07](07_dns_challenge.ipynb) is made here).
#
# **Previous:** [07 · The DNS challenge](07_dns_challenge.ipynb) · **Next:** [09 · Finalize and download](09_finalize_and_download.ipynb)

# %% [markdown]
# ## Something to read
#
# A read-only call needs something to read: through the SDK (as in notebook 07) we publish one
# TXT record, list it by hand twice, and remove it at the end. `course.dns_provider()` builds
# the provider with the lab's access key; we print the AccessKeyId masked and never the secret:

# %%
import datetime as dt
import uuid

from acmelab import course, display

alidns = course.dns_provider()
credentials = alidns.client.credentials  # AccessKeyId and secret; the secret is never printed
masked_key_id = display.mask(credentials.access_key_id)
name = f"_acme-challenge.signed.{course.target().domain}"
zone, rr = alidns.find_zone(name)
alidns.present(name, "hand-signed request demo")
records = [(name, "hand-signed request demo")]
print("published TXT at", name, "| zone", zone.domain_name, "| RR", rr, "| AccessKeyId", masked_key_id)

# %% [markdown]
# ## V1: the RPC signature (`SignatureVersion=1.0`)
#
# 1. all parameters — the action's and the common ones — sorted by name;
# 2. each name and value percent-encoded (RFC 3986: only `A-Z a-z 0-9 - _ . ~` stay as they
#    are), joined as `name=value` with `&`: the *canonicalized query*;
# 3. **StringToSign** = `GET` `&` `%2F` (the encoded path `/`) `&` the canonicalized query,
#    percent-encoded once more;
# 4. `Signature` = base64(HMAC-SHA1(key = access key secret + `"&"`, StringToSign)).
#
# The random `SignatureNonce` (good once within 15 minutes) and the `Timestamp` (good for a
# few minutes) stop a captured request from being replayed.

# %% [markdown]
# Step 1, the parameters (the `AccessKeyId` masked as above; the secret is never shown):

# %%
params = {
    "Action": "DescribeSubDomainRecords", "Version": "2015-01-09", "Format": "JSON",
    "SubDomain": name, "DomainName": zone.domain_name,
    "AccessKeyId": credentials.access_key_id,
    "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
    "SignatureNonce": str(uuid.uuid4()),
    "Timestamp": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
}
display.table([[k, masked_key_id if k == "AccessKeyId" else v] for k, v in sorted(params.items())],
              header=["parameter", "value"])

# %% [markdown]
# Step 2, the canonicalized query: sorted, percent-encoded, joined with `&`:

# %%
from urllib.parse import quote


def percent(text: str) -> str:
    """Percent-encode all but the RFC 3986 unreserved characters."""
    return quote(text, safe="-_.~")


def canonical_query(parameters: dict) -> str:
    return "&".join(f"{percent(k)}={percent(v)}" for k, v in sorted(parameters.items()))


print(canonical_query(params).replace(credentials.access_key_id, masked_key_id)[:90], "...")

# %% [markdown]
# Step 3, the StringToSign: method, encoded path and the encoded query:

# %%
def string_to_sign(parameters: dict) -> str:
    return f"GET&{percent('/')}&{percent(canonical_query(parameters))}"


print(string_to_sign(params).replace(credentials.access_key_id, masked_key_id)[:64], "...")

# %% [markdown]
# Step 4, the signature. One helper does steps 2–4 for any parameters and secret; we use it
# again below with a wrong secret, and you use it in exercise 08.1:

# %%
import base64
import hmac


def sign(parameters: dict, secret: str) -> dict:
    """``parameters`` plus ``Signature`` = base64(HMAC-SHA1(secret + "&", StringToSign))."""
    unsigned = {k: v for k, v in parameters.items() if k != "Signature"}
    digest = hmac.new((secret + "&").encode(), string_to_sign(unsigned).encode(), "sha1").digest()
    return unsigned | {"Signature": base64.b64encode(digest).decode()}


params = sign(params, credentials.access_key_secret)
print("Signature:", f"<base64 of HMAC-SHA1, {len(params['Signature'])} characters>")

# %% [markdown]
# Sent as an HTTPS GET (TLS verified against the lab's CA, or the system's for the real
# endpoint). The answer is JSON: the records Alibaba Cloud stores at that name.

# %%
import requests

endpoint = alidns.client.endpoint or "alidns.aliyuncs.com"
api_response = requests.get(f"https://{endpoint}/", params=params, verify=alidns.client.verify, timeout=10)
listing = api_response.json()
print("HTTP", api_response.status_code, "| TotalCount:", listing["TotalCount"])
display.table([[r["RR"], r["Type"], r["Value"], r["TTL"], r["Status"]] for r in listing["DomainRecords"]["Record"]],
              header=["RR", "Type", "Value", "TTL", "Status"])

# %% [markdown]
# Sign with a wrong secret (and a new `SignatureNonce`), and the service refuses the call — it
# recomputed the signature with the real secret and got a different one:

# %%
wrong = sign(params | {"SignatureNonce": str(uuid.uuid4())}, "not-the-secret")
refused = requests.get(f"https://{endpoint}/", params=wrong, verify=alidns.client.verify, timeout=10)
print("HTTP", refused.status_code, "|", refused.json()["Code"])


# %% [markdown]
# ## V3: `ACS3-HMAC-SHA256`
#
# V3 moves the action, the version, the time and the nonce into headers and signs a
# **canonical request** — one item per line, like AWS's SigV4:
#
# ```
# GET
# /                                   the canonical URI (RPC APIs: always /)
# DomainName=...&SubDomain=...        the canonical query: the action's parameters only
# host:...\nx-acs-action:...\n...      the canonical headers: lower-case name:value, sorted
# host;x-acs-action;...               the signed header names
# e3b0c442...                         hex SHA-256 of the body (empty here)
# ```
#
# StringToSign = `ACS3-HMAC-SHA256` + newline + hex(SHA-256(canonical request)); the signature
# is hex(HMAC-SHA256(secret, StringToSign)) — the secret as it is, no `&` — and travels in
# `Authorization: ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=...,Signature=...`.

# %%
import hashlib

endpoint_host = endpoint.split("/")[0]
query = {"DomainName": zone.domain_name, "SubDomain": name}
payload_hash = hashlib.sha256(b"").hexdigest()
headers = {"host": endpoint_host, "x-acs-action": "DescribeSubDomainRecords", "x-acs-version": "2015-01-09",
           "x-acs-date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "x-acs-signature-nonce": str(uuid.uuid4()), "x-acs-content-sha256": payload_hash}


def canonical_request_v3(query: dict, headers: dict) -> tuple[str, str]:
    """(canonical request, signed header names) of a GET to / with an empty body."""
    names = sorted(headers)
    canonical_headers = "".join(f"{n}:{headers[n].strip()}\n" for n in names)
    signed = ";".join(names)
    return "\n".join(["GET", "/", canonical_query(query), canonical_headers, signed, payload_hash]), signed


canonical, signed_headers = canonical_request_v3(query, headers)
print(canonical.replace(endpoint_host, "<lab endpoint>"))

# %%
def sign_v3(query: dict, headers: dict, key_id: str, secret: str) -> dict:
    """``headers`` plus the V3 ``Authorization`` header."""
    canonical, signed = canonical_request_v3(query, headers)
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(secret.encode(), to_sign.encode(), "sha256").hexdigest()
    return headers | {"Authorization": f"ACS3-HMAC-SHA256 Credential={key_id},SignedHeaders={signed},"
                                       f"Signature={signature}"}


v3_headers = sign_v3(query, headers, credentials.access_key_id, credentials.access_key_secret)
v3_response = requests.get(f"https://{endpoint}/", params=query, headers=v3_headers,
                           verify=alidns.client.verify, timeout=10)
print("HTTP", v3_response.status_code, "| TotalCount:", v3_response.json()["TotalCount"],
      "| same records as V1:", v3_response.json()["DomainRecords"] == listing["DomainRecords"])
print("Signature:", f"<hex of HMAC-SHA256, {len(v3_headers['Authorization'].rsplit('=', 1)[1])} characters>")

# %% [markdown]
# Side by side:
#
# | | V1 (`SignatureVersion=1.0`) | V3 (`ACS3-HMAC-SHA256`) |
# |---|---|---|
# | action, version | query parameters `Action`, `Version` | headers `x-acs-action`, `x-acs-version` |
# | time, nonce | `Timestamp`, `SignatureNonce` parameters | `x-acs-date`, `x-acs-signature-nonce` headers |
# | what is signed | method, path, every parameter | method, path, query, the signed headers, SHA-256 of the body |
# | MAC | HMAC-SHA1, key = secret + `&`, base64 | HMAC-SHA256, key = secret, hex |
# | where it travels | `Signature` parameter | `Authorization` header |
# | status (2026) | marked discontinued; classic SDK | current; `alibabacloud_*` SDKs |
#
# V3 also covers the body, so a POST's form parameters cannot be swapped in transit.
#
# ## Cleanup
#
# The record we published is removed by its `RecordId` (`DeleteDomainRecord`):

# %%
for record_name, value in records:
    alidns.cleanup(record_name, value)
left = [r for r in alidns.sub_domain_records(zone, name) if r["Type"] == "TXT"]
print("TXT records left at", name, "->", len(left))

# %% [markdown]
# ## Check yourself
#
# The checker knows a fixed example (`exercises.ALIYUN_EXAMPLE`: parameters and a made-up
# secret); sign it with your `sign` helper from above and hand in the `Signature`:

# %%
from acmelab.exercises import ALIYUN_EXAMPLE, check

mine = sign(dict(ALIYUN_EXAMPLE["params"]), ALIYUN_EXAMPLE["secret"])["Signature"]
check("08.1", mine)
check("08.2", ...)  # exercise 2: the V3 Authorization header
check("08.3", ...)  # exercise 3: the Code

# %% [markdown]
# ## Summary
#
# * V1: sort and percent-encode every parameter, StringToSign = `GET&%2F&` + the encoded query,
#   `Signature` = base64(HMAC-SHA1(secret + `&`, StringToSign)).
# * V3: a canonical request (method, `/`, query, signed headers, body hash), StringToSign =
#   `ACS3-HMAC-SHA256\n` + its SHA-256, hex(HMAC-SHA256(secret, StringToSign)) in the
#   `Authorization` header.
# * Either way the secret never travels; the nonce and the time stop replays; a wrong secret
#   is `SignatureDoesNotMatch`.
#
# ## Exercises
#
# 1. Done above: `check("08.1", ...)` with your V1 `sign` on `ALIYUN_EXAMPLE`.
# 2. Sign the same example with V3 (`sign_v3(ALIYUN_EXAMPLE["query"], ALIYUN_EXAMPLE["headers"],
#    ALIYUN_EXAMPLE["params"]["AccessKeyId"], ALIYUN_EXAMPLE["secret"])`) and hand in the
#    `Authorization` header: `check("08.2", ...)`.
# 3. Send the V1 request of this notebook twice with the same `SignatureNonce`. What does the
#    service answer the second time? `check("08.3", code)` with the `Code` it answered.
#
# **Previous:** [07 · The DNS challenge](07_dns_challenge.ipynb) · **Next:** [09 · Finalize and download](09_finalize_and_download.ipynb)
