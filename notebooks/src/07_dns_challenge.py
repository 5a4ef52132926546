# %% [markdown]
# # 07 · The DNS challenge
#
# **Goal:** prove to the CA that we control our names with **dns-01**: compute the *key
# authorization* and the TXT value from a challenge token, publish the TXT records through
# **Alibaba Cloud DNS** (the official SDK, here against the lab's offline endpoint), check that
# the records are visible, tell the CA to validate, wait for the verdict, and remove the records.
#
# **Needs:** the lab (started if needed), the course's account from [05](05_account.ipynb) and
# the order from [06](06_order_and_authorizations.ipynb) (both made now if they are missing).
#
# **Previous:** [06 · The order and its authorizations](06_order_and_authorizations.ipynb) · **Next:** [08 · A hand-signed Alibaba Cloud request](08_alibaba_signed_request.ipynb)

# %% [markdown]
# ## The DNS-01 flow
#
# For each authorization of the order we pick its `dns-01` challenge. The CA gave a random
# **token**; we combine it with our account key into a TXT value, publish it at
# `_acme-challenge.<name>`, and only then ask the CA to look (RFC 8555 §8.4):
#
# ```mermaid dns-01
# sequenceDiagram
#     autonumber
#     participant C as Client (acmelab)
#     participant A as Alibaba Cloud DNS API
#     participant NS as Authoritative DNS
#     participant CA as ACME server
#     C->>C: key authorization = token + "." + thumbprint(account key)
#     C->>C: TXT value = base64url(SHA-256(key authorization))
#     C->>A: AddDomainRecord RR=_acme-challenge.api, Type=TXT, Value
#     A->>NS: the record goes live
#     C->>NS: TXT _acme-challenge.api.example.com? (propagation check)
#     C->>CA: POST challenge URL, empty object ("validate now")
#     CA->>NS: TXT _acme-challenge.api.example.com?
#     CA-->>C: authorization valid (we poll it)
#     C->>A: DeleteDomainRecord RecordId (cleanup, on every path)
# ```
#
# The order of the last steps matters: answering the challenge *before* the record is visible
# to the CA makes the validation fail, and a failed authorization cannot be retried — the
# whole order would have to start over.

# %%
from acmelab import course, display, keys

client = course.account_client()       # the course's account (notebook 05)
order = course.pending_order(client)   # the order of notebook 06, or a new one for the same names
print("order:", order.status, sorted(order.names))

# Each authorization offers several challenges; we take `dns-01` from each. The CA lists
# authorizations in any order, so we sort them by name:
#
authorizations = sorted((client.fetch_authorization(url) for url in order.authorizations),
                        key=lambda authorization: authorization.name)
challenges = {a.name: a.challenge("dns-01") for a in authorizations}
for name, challenge in challenges.items():
    print(f"{name:16} {challenge.type} {challenge.status:8} token {challenge.token}")

# %% [markdown]
# ## The key authorization and the TXT value
#
# The **key authorization** (§8.1) binds the CA's token to *our* account key: the token, a
# dot, and the account key's JWK **thumbprint** (RFC 7638, notebook 01). Someone who sees the
# token but does not hold our account key cannot produce it. For dns-01 the key authorization
# itself is not published; its SHA-256 digest is, base64url-encoded — always 43 characters,
# short enough for a single TXT string.
#
# ```mermaid key-authorization
# flowchart LR
#     accTitle: From the CA's token to the TXT value (RFC 8555 §8.1, §8.4)
#     token["token<br/>(in the challenge)"] --> ka
#     thumb["thumbprint of the<br/>account key (01)"] --> ka
#     ka["key authorization<br/>token + '.' + thumbprint"] --> sha["SHA-256<br/>32 bytes"]
#     sha --> b64["base64url, no padding<br/>43 characters"]
#     b64 --> txt["TXT value at<br/>_acme-challenge.name"]
# ```
#
# Computed by hand:

# %%
import hashlib

from acmelab.jws import b64url

challenge = challenges[authorizations[0].name]
thumbprint = keys.thumbprint(client.account_key)
key_authorization = f"{challenge.token}.{thumbprint}"
txt_value = b64url(hashlib.sha256(key_authorization.encode("ascii")).digest())
print("token:            ", challenge.token)
print("thumbprint:       ", thumbprint)
print("key authorization:", key_authorization)
print("TXT value:        ", txt_value, f"({len(txt_value)} characters)")

# The client computes the same, and knows where the record goes: `_acme-challenge.` in front
# of the name (for a wildcard `*.example.com`, in front of `example.com`):
#
print("same key authorization:", client.key_authorization(challenge) == key_authorization)
print("same TXT value:        ", client.dns01_txt_value(challenge) == txt_value)
records = [(client.dns01_name(a), client.dns01_txt_value(challenges[a.name])) for a in authorizations]
display.table(records, header=["TXT record name", "value"])

# %% [markdown]
# ## Publishing through Alibaba Cloud DNS
#
# Alibaba Cloud DNS (product code `Alidns`, API version `2015-01-09`) is an RPC-style API: one
# HTTPS request per **action**, the parameters in the query string, signed with HMAC-SHA1 over
# the sorted parameters using the access key *secret* (`SignatureVersion` 1.0). The official
# SDK (`aliyun-python-sdk-core` and `aliyun-python-sdk-alidns`) does the signing;
# `AlidnsProvider` calls three actions:
#
# | step | action | parameters that matter |
# |---|---|---|
# | find the zone | `DescribeDomains` | `PageNumber`, `PageSize` — every zone of the account |
# | publish | `AddDomainRecord` | `DomainName` (the zone), `RR` (the name relative to it), `Type=TXT`, `Value`, `TTL=600` → `RecordId` |
# | remove | `DeleteDomainRecord` | `RecordId` |
#
# Every request also carries the common parameters `AccessKeyId`, `SignatureMethod=HMAC-SHA1`,
# `SignatureVersion=1.0`, `SignatureNonce` (random, so a captured request cannot be replayed),
# `Timestamp`, `Format=JSON`, `Version` and `Signature`. The secret itself never travels.
#
# `course.dns_provider()` builds the provider: in the lab with the lab's access key and
# endpoint, otherwise with `ALIBABA_CLOUD_ACCESS_KEY_ID` / `ALIBABA_CLOUD_ACCESS_KEY_SECRET`
# (a RAM user, see notebook 15). Its `repr` shows the AccessKeyId and the endpoint, never the
# secret; we mask the AccessKeyId too (`display.mask`: first and last four characters), since
# with a real account it identifies your key:

# %%
alidns = course.dns_provider()
key_id = alidns.client.credentials.access_key_id
print(repr(alidns).replace(key_id, display.mask(key_id)))

# %% [markdown]
# A note on versions: `aliyun-python-sdk-core` and signature version 1.0 (HMAC-SHA1) are
# Alibaba Cloud's *classic* SDK and signature, the ones the articles use and the course keeps.
# Alibaba now recommends its V2.0 SDKs (`alibabacloud_alidns20150109` and friends) and the
# `ACS3-HMAC-SHA256` signature; the actions and parameters are the same.
#
# First the provider finds the zone that holds the record name (`DescribeDomains`, page by
# page). The lab's mock account holds 25 zones, so that the client has to follow the pages;
# the name servers are what Alibaba Cloud DNS reports for the zone (`dns1.hichina.com`, …) —
# in the lab, the authoritative server actually queried is the lab's mock DNS:

# %%
zone, rr = alidns.find_zone(records[0][0])
print("zones in the account:", len(alidns.zones()))
print("zone for", records[0][0], "->", zone.domain_name, "| RR:", rr)
print("name servers of the zone:", ", ".join(zone.dns_servers))

# Now publish both records (`AddDomainRecord`, through the SDK):
#
for name, value in records:
    alidns.present(name, value)
print("published:", len(records), "TXT records")

# %% [markdown]
# ## Is it visible yet? The propagation check
#
# `AddDomainRecord` answering with a `RecordId` means Alibaba Cloud *accepted* the record — not
# that the world sees it. Before we tell the CA to look, we ask the zone's **authoritative name
# servers** directly (a caching resolver might still remember that the name had no TXT record).
# With `dnspython`, a plain TXT query; in the lab the authoritative server is the lab's DNS:

# %%
import dns.message
import dns.query
import dns.rdatatype

from acmelab.dns import propagation

target = course.target()   # the lab, or Let's Encrypt with your domain (notebook 00)
servers = [tuple(target.lab.dns_server)] if target.lab else propagation.authoritative_servers(zone.puny_code)
query = dns.message.make_query(records[0][0], dns.rdatatype.TXT)
dns_response = dns.query.udp(query, servers[0][0], port=servers[0][1], timeout=5)
for rrset in dns_response.answer:
    for record in rrset:
        print(rrset.name, rrset.rdtype.name, record.to_text())

# %% [markdown]
# `wait_until_visible` repeats that query on every authoritative server until each one answers
# the value (or raises `DnsError` at the deadline). With Alibaba Cloud DNS this usually takes a
# few seconds; in the lab it is immediate.
#
# One more thing the CA checks before it issues: **CAA** records (RFC 8659). If the domain
# (or a parent) has CAA records and none of them names `letsencrypt.org`, Let's Encrypt must
# refuse — the validation of that name fails with a `caa` problem even though the TXT record
# is right. No CAA record at all means any CA may issue. Only the **closest** CAA record set
# counts (the name's own, else its parent's, …); `issuewild` governs wildcards; a set with
# only `iodef` restricts nothing; RFC 8657 adds `accounturi=` (only this account) and
# `validationmethods=dns-01` (only this method) to an `issue` record.
#
# And the CA does not look just once: Let's Encrypt validates from several network vantage
# points (**multi-perspective issuance corroboration**, required of every public CA), so a
# record visible from one network only — or an attacker hijacking one route — does not pass.

# %%
for name, value in records:
    alidns.wait_until_visible(name, value, timeout=60)
    print("visible:", name)

# %% [markdown]
# ## Answering the challenge, and polling
#
# Now we tell the CA "validate now": a POST of an empty JSON object `{}` to the challenge URL
# (§7.5.1). Written by hand, as in notebook 04 — `jws.sign` with the account's `kid` and a
# fresh nonce, `requests.post` — for the first name; the answer is the challenge object, and
# validation happens afterwards, on the CA's side, which queries `_acme-challenge.<name>`:

# %%
import json

import requests

from acmelab import jws

first = challenges[authorizations[0].name]
nonce = client.transport.new_nonce()
body = jws.sign({}, client.account_key, url=first.url, nonce=nonce, kid=client.account_url)
answer = requests.post(first.url, json=body, headers={"Content-Type": "application/jose+json"},
                       verify=course.target().verify, timeout=10)
print("POST challenge URL ->", answer.status_code, "| challenge status:", answer.json()["status"])
display.jws(body, title="the request body: payload {} means 'validate now'")

# %% [markdown]
# We answer the other challenge too, then **poll** each authorization (POST-as-GET) until it
# leaves `pending`. The client waits between polls as the CA asks (`Retry-After`) or with a
# growing back-off. If anything fails from here on, the records are removed before the error
# is raised — a challenge record must never be left behind:

# %%
published = list(records)
try:
    for authorization in authorizations[1:]:   # the client does the same for the others
        client.answer_challenge(challenges[authorization.name])
    validated = [client.poll_authorization(authorization) for authorization in authorizations]
except BaseException:
    for name, value in published:
        alidns.cleanup(name, value)
    raise

for authorization in validated:
    done = authorization.challenge("dns-01")
    print(f"{authorization.name:16} authorization {authorization.status}, dns-01 {done.status}, "
          f"validated {done.validated}")

# %% [markdown]
# One valid challenge per authorization is enough: the other challenges of the same
# authorization are simply never used. Every authorization is valid, so the order moves from
# `pending` to `ready` — it waits for our CSR (notebook 09). The order's status, then the
# validated authorization on the wire:

# %%
order = client.poll_order(order.url, until=("ready", "invalid"))
course.remember(order_url=order.url)
print("order:", order.status)
with display.Wire(client, tidy=display.sort_lists) as wire:
    client.fetch_authorization(validated[0].url)
wire

# %% [markdown]
# ## Cleanup
#
# The TXT records have done their job. `cleanup(name, value)` deletes exactly the record it
# added (`DeleteDomainRecord` with the remembered `RecordId`) — never another value at the same
# name, which matters when a wildcard and its base name share `_acme-challenge.example.com`:

# %%
for name, value in records:
    alidns.cleanup(name, value)

for name, value in records:
    zone, _ = alidns.find_zone(name)
    left = [r for r in alidns.sub_domain_records(zone, name) if r["Type"] == "TXT"]
    values, _ = propagation.txt_values(name, servers[0])
    print(f"{name}: {len(left)} TXT records in the zone, DNS answers {sorted(values)}")

# %% [markdown]
# ## What a failure looks like
#
# If the CA looks before the record is there — or finds a wrong value — the challenge and its
# authorization become `invalid`, with a problem document saying why. Here we answer a challenge
# of a throw-away order for `doomed.example.com` without publishing anything (a name this account
# never validates, so no valid authorization of it can be reused):

# %%
from acmelab.errors import ChallengeFailed

doomed_order = client.new_order([f"doomed.{course.target().domain}"])
doomed = client.fetch_authorization(doomed_order.authorizations[0])
client.answer_challenge(doomed.challenge("dns-01"))
try:
    client.poll_authorization(doomed)
except ChallengeFailed as error:
    print(type(error.problem).__name__, "->", error.problem.detail)
print("order:", client.fetch_order(doomed_order.url).status)

# %% [markdown]
# ## Delegating `_acme-challenge` with a CNAME
#
# The CA follows CNAME records when it looks up `_acme-challenge.<name>` — Let's Encrypt
# documents this delegation for dns-01, and Pebble does the same. So the zone owner can point
# `_acme-challenge.shop.example.com` once, by CNAME, at a name in **another zone** — say
# `_acme-challenge.shop.example.net` — and the ACME job then needs write access to that other
# zone only, never to the main one. The client must write the TXT record **at the end of the
# chain**: a TXT next to a CNAME is not allowed (Alibaba Cloud answers
# `DomainRecordConflict`). `AlidnsProvider.record_name` follows the chain (with dnspython, on
# the authoritative servers; bounded and loop-safe), and `check_names` checks every name
# *before* an order, so a target outside the account is a clear `DelegatedZoneMissing` instead
# of a failed authorization. (The lab's account holds `example.com`, `example.net` and
# `example.org`; notebook 14 issues a certificate through such a delegation.)

# %%
from acmelab.errors import DelegatedZoneMissing

domain = course.target().domain
delegations = {"shop": "_acme-challenge.shop.example.net",        # in a zone of the account
               "ext": "_acme-challenge.ext.delegated.example"}     # in a zone of someone else
made = [alidns.client.call("AddDomainRecord", "2015-01-09",
                           {"DomainName": domain, "RR": f"_acme-challenge.{label}", "Type": "CNAME",
                            "Value": target}, product="Alidns")["RecordId"]
        for label, target in delegations.items()]
try:
    print("the TXT for shop goes to:", alidns.record_name(f"_acme-challenge.shop.{domain}"))
    alidns.check_names([f"shop.{domain}", f"*.shop.{domain}"])
    print("check_names: shop and *.shop can be validated")
    try:
        alidns.check_names([f"api.{domain}", f"ext.{domain}"])
    except DelegatedZoneMissing as error:
        print("ext:", error)
finally:
    for record_id in made:   # the delegations were for this demonstration only
        alidns.client.call("DeleteDomainRecord", "2015-01-09", {"RecordId": record_id}, product="Alidns")

# %% [markdown]
# ## Two newer DNS challenges: dns-account-01 and dns-persist-01
#
# dns-01 has two relatives, both Internet-Drafts that the lab's Pebble already speaks:
#
# | challenge | TXT record name | value | afterwards |
# |---|---|---|---|
# | `dns-01` (RFC 8555 §8.4) | `_acme-challenge.<name>` | base64url(SHA-256(key authorization)) | removed |
# | `dns-account-01` | `_<label>._acme-challenge.<name>`, label from the account URL | as dns-01 | removed |
# | `dns-persist-01` | `_validation-persist.<name>` | `<CA's issuer domain>; accounturi=<account URL>` | **stays** |
#
# * **dns-account-01** gives every account its own record name (label = the first 10 bytes of
#   SHA-256(account URL), base32, lower case), so two accounts — say the automation of two
#   regions — can validate the same name at the same time without overwriting each other's
#   `_acme-challenge` record.
# * **dns-persist-01** names the CA and the account instead of a token, so one record keeps
#   proving control for every later order of that account (optionally with `policy=wildcard`
#   and an expiry, `persistUntil`). It is published once and left in place: a renewal writes
#   **no DNS record at all** — for cloud services that means the renewal job needs no DNS
#   write permission, and DNS propagation delays drop out of every renewal.
#
# Where they stand at Let's Encrypt (as of mid-2026): dns-persist-01 is on **staging only**
# (since late April 2026, after CA/Browser Forum ballot SC-088 allowed it), not in
# production; dns-account-01 is a draft behind a feature flag, not announced for production.
# Use dns-01 against production.
#
# The three records for one authorization of a throw-away order:

# %%
from acmelab.challenges import account_label

demo_order = client.new_order([f"persist.{course.target().domain}"], profile="classic")
demo = client.fetch_authorization(demo_order.authorizations[0])
for kind in ("dns-01", "dns-account-01", "dns-persist-01"):
    record = client.dns_record(demo, kind)
    print(f"{kind} ({'stays' if record.standing else 'removed afterwards'})")
    print(f"    TXT {record.name}")
    print(f"    \"{record.value}\"")

print("label:", account_label(client.account_url), "(16 characters, from the account URL)")
print("the dns-persist-01 challenge names:", sorted(demo.challenge("dns-persist-01").json["issuer-domain-names"]))

# %% [markdown]
# To *see* what a renewal writes, a small wrapper around the Alibaba Cloud DNS provider notes
# every record it is asked to publish. We issue twice for the same name with dns-persist-01,
# with a fresh throw-away account (so that its standing record is new in this run), through
# `issue_certificate` — the whole flow of notebooks 06–09 in one call (notebook 14):

# %%
from acmelab.issue import issue_certificate


class Recording:
    """A DNS provider that notes each record it is asked to publish, then passes it on."""

    def __init__(self, provider):
        self.provider, self.written = provider, []

    def present(self, name, value):
        self.written.append(name)
        self.provider.present(name, value)

    def cleanup(self, name, value):
        self.provider.cleanup(name, value)

    def wait_until_visible(self, name, value, timeout):
        self.provider.wait_until_visible(name, value, timeout)


persist_client = course.client(keys.generate_key("ec256"))
persist_client.new_account([])
persist_name = f"persist.{course.target().domain}"
for attempt in ("first", "second"):
    recording = Recording(course.dns_provider())
    issued = issue_certificate([persist_name], client=persist_client, dns=recording, challenge="dns-persist-01")
    print(f"{attempt} issuance: wrote {recording.written or 'nothing'}; "
          f"relies on {[r.name for r in issued.standing_records]}")
    persist_client.deactivate_valid_authorizations([persist_name])  # the next one must prove control again

# %% [markdown]
# ## Summary
#
# * key authorization = token `.` account key thumbprint; the dns-01 TXT value is
#   base64url(SHA-256(key authorization)), at `_acme-challenge.<name>`.
# * Alibaba Cloud DNS: `DescribeDomains` finds the zone, `AddDomainRecord` publishes
#   (`RR` relative to the zone), `DeleteDomainRecord` removes by `RecordId`; the SDK signs every
#   call with the access key secret, which never leaves the machine.
# * Check the authoritative servers *before* answering; answer with `{}`; poll the
#   authorization; a failure is final for that order.
# * Remove every record you published, on every path; a closest CAA record set without `letsencrypt.org`
#   makes validation fail.
# * dns-account-01 puts the record at an account-specific name (parallel accounts);
#   dns-persist-01 leaves one standing record naming CA and account, so renewals write no DNS
#   record. As of mid-2026 neither is in Let's Encrypt production.
#
# ## Exercises
#
# 1. Order `example.com` and `*.example.com` together. Both TXT values go to
#    `_acme-challenge.example.com`: publish both and count the values `propagation.txt_values`
#    sees: `check("07.1", count)`. Clean up one — is the other still there?
# 2. Publish a *wrong* value for a fresh order and answer its challenge:
#    `check("07.2", error)` with the `ChallengeFailed` you catch.
# 3. Compute the dns-account-01 label by hand (`hashlib`, `base64.b32encode`: the first 10 bytes
#    of SHA-256 of `client.account_url`, base32, lower case, no padding):
#    `check("07.3", (my_label, client.account_url))`.

# %%
from acmelab.exercises import check

check("07.1", ...)  # the number of TXT values
check("07.2", ...)  # the ChallengeFailed you caught
check("07.3", ...)  # (label, client.account_url)

# %% [markdown]
# **Previous:** [06 · The order and its authorizations](06_order_and_authorizations.ipynb) · **Next:** [08 · A hand-signed Alibaba Cloud request](08_alibaba_signed_request.ipynb)
