# %% [markdown]
# # 06 · The order and its authorizations
#
# **Goal:** ask the CA for a certificate covering several names (a **new order**), and read
# what it answers: one **authorization** per name, each offering **challenges** — the ways we
# may prove that we control that name.
#
# **Needs:** the lab (started if needed) and the course's account from
# [05](05_account.ipynb) (created now if it is missing).
#
# **Previous:** [05 · The account](05_account.ipynb) · **Next:** [07 · The DNS challenge](07_dns_challenge.ipynb)

# %% [markdown]
# ## Orders, authorizations, challenges
#
# An **order** (RFC 8555 §7.1.3) is a request for one certificate: the list of identifiers
# (DNS names) it should contain. The CA answers with one **authorization** per identifier
# (§7.1.4) — "prove you control this name" — and each authorization offers a few
# **challenges** (§8): `http-01` (a file on a web server), `tls-alpn-01` (RFC 8737, a special TLS
# certificate), `dns-01` (a TXT record). Completing *one* challenge per authorization is
# enough. When every authorization is `valid`, the order becomes `ready`, and we may
# *finalize* it with the CSR (notebook 09).
#
# ```mermaid order-states
# stateDiagram-v2
#     state Order {
#         [*] --> pending
#         pending --> ready: every authorization valid
#         ready --> processing: finalize (CSR)
#         processing --> valid: certificate issued
#         pending --> invalid: an authorization failed
#         ready --> invalid: error (e.g. order expired)
#         processing --> invalid: error
#     }
#     state Authorization {
#         state "pending" as a_pending
#         state "valid" as a_valid
#         state "invalid" as a_invalid
#         state "deactivated" as a_deactivated
#         state "expired" as a_expired
#         state "revoked" as a_revoked
#         [*] --> a_pending
#         a_pending --> a_valid: one challenge valid
#         a_pending --> a_invalid: challenge failed
#         a_pending --> a_deactivated: client gives it up
#         a_valid --> a_deactivated: client gives it up
#         a_valid --> a_expired: too old
#         a_valid --> a_revoked: by the CA
#     }
# ```

# %%
from acmelab import course, display

client = course.account_client()  # the course's account, from notebook 05
names = course.names()
print("account:", client.fetch_account().status)
print("names:  ", names)

# %% [markdown]
# Let's Encrypt may **reuse** authorizations that your account completed recently for the same
# name; then they arrive already `valid`, and the order may even be `ready` at once. A client
# must therefore always look at each authorization's status before answering challenges. The
# course's lab turns reuse off (`PEBBLE_AUTHZREUSE=0`) — almost: the Pebble we run still reuses
# about 1 time in 100 (it compares `rand.Intn(100) > percent`). So that every run shows the
# whole flow, we first **give up** every valid authorization the course account holds for our
# names (deactivate them, §7.5.2) — what you would do for real when a domain changes hands. The
# client finds them through the account's orders list (§7.1.2.1), which Pebble offers and Let's
# Encrypt does not (there you deactivate the authorization URLs you kept). A second call finds
# none:

# %%
client.deactivate_valid_authorizations([*names, f"*.{course.target().domain}"])
print("valid authorizations left for our names:",
      len(client.deactivate_valid_authorizations([*names, f"*.{course.target().domain}"])))

# %% [markdown]
# ## The new order
#
# `newOrder` is a POST (signed with `kid`) whose payload lists the identifiers and, since the
# CA offers profiles (notebook 03), the **profile** we want: `classic`, Let's Encrypt's
# 90-day default (named explicitly: Pebble would pick one at random). The answer is
# `201 Created` with the order's URL in `Location`, and the order itself: its `status`, when it
# `expires` if we do nothing, the `profile`, the `authorizations` to satisfy, and the
# `finalize` URL for later.
# (The CA may list the identifiers in any order — Pebble shuffles them on purpose — so the
# display sorts them: `tidy=display.sort_lists`.)

# %%
import requests

from acmelab import jws

new_order_url = client.directory.newOrder
payload = {"identifiers": [{"type": "dns", "value": name} for name in names], "profile": "classic"}
body = jws.sign(payload, client.account_key, url=new_order_url, nonce=client.transport.new_nonce(),
                kid=client.account_url)
response = requests.post(new_order_url, json=body, headers={"Content-Type": "application/jose+json"},
                         verify=course.target().verify, timeout=10)
display.exchange(response, tidy=display.sort_lists)

# %% [markdown]
# Your order, read back by the client — the answer key: the same URL, status and names.

# %%
order_json = response.json()
order = client.fetch_order(response.headers["Location"])
course.remember(order_url=order.url)  # notebook 07 picks the order up from here
print("status:", order.status, "| same as yours:", order.status == order_json["status"],
      "| names:", sorted(order.names) == sorted(i["value"] for i in order_json["identifiers"]),
      "| profile:", order.profile)

# %% [markdown]
# ## The authorizations
#
# Each authorization is read with a POST-as-GET. The CA may list authorizations, and the
# challenges inside each, in any order — Pebble shuffles them on purpose, so that clients do
# not depend on an order — so we sort them by name and by challenge type. Every challenge has
# its own URL and a random **token**, the CA's half of the proof:

# %%
first_url = sorted(order.authorizations)[0]   # one by hand: a POST-as-GET (payload None, signed with kid)
read = requests.post(first_url, json=jws.sign(None, client.account_key, url=first_url,
                                              nonce=client.transport.new_nonce(), kid=client.account_url),
                     headers={"Content-Type": "application/jose+json"}, verify=course.target().verify, timeout=10)
print("by hand:", read.status_code, "| one of our names:", read.json()["identifier"]["value"] in names,
      "| status:", read.json()["status"],
      "| the client reads the same:", client.fetch_authorization(first_url).name == read.json()["identifier"]["value"])
authorizations = sorted((client.fetch_authorization(url) for url in order.authorizations),
                        key=lambda authorization: authorization.name)
rows = []
for authorization in authorizations:
    for challenge in sorted(authorization.challenges, key=lambda c: c.type):
        rows.append([authorization.name, authorization.status, challenge.type, challenge.status,
                     f"{len(challenge.token)} characters"])
display.table(rows, header=["identifier", "authorization", "challenge", "status", "token"])

# %% [markdown]
# Besides the three challenges of RFC 8555, the lab's Pebble offers two newer DNS ones,
# `dns-account-01` and `dns-persist-01` (drafts; notebook 07 compares the three).
# `dns-persist-01` has no token at all: its proof names the account, not one challenge.
#
# Every other token is 43 characters: 32 random bytes, base64url-encoded (32 × 8 bits in 6-bit
# characters, no padding). The RFC asks for at least 128 bits of entropy in a token
# (RFC 8555 §8.3, §8.4); Pebble and Let's Encrypt give 256.

# %% [markdown]
# `display.order` puts the order and its authorizations together:

# %%
display.order(order, authorizations)

# %% [markdown]
# Here is the first one on the wire (challenges sorted by type for display):

# %%
with display.Wire(client, tidy=display.sort_lists) as wire:
    client.fetch_authorization(authorizations[0].url)
wire

# %% [markdown]
# ## Which challenge, and what it will take
#
# Our names are served by Alibaba Cloud CDN and API Gateway: we cannot put files on those
# servers before they have a certificate, but we do control the DNS zone. So we pick `dns-01`
# for every authorization (notebook 07 also shows its two newer relatives). Answering it means publishing a TXT record at
# `_acme-challenge.<name>` whose value is derived from the token and our account key's
# thumbprint (the *key authorization*):

# %%
for authorization in authorizations:
    challenge = authorization.challenge("dns-01")
    print(f"{authorization.name:18} TXT at {client.dns01_name(authorization)}")
    print(f"{'':18} value: {len(client.dns01_txt_value(challenge))} characters of base64url")

# %% [markdown]
# The value is the SHA-256 digest of the key authorization: 32 bytes, which base64url spells in
# 43 characters — the same length as the token, by coincidence of size, not of content.

# %% [markdown]
# ## A wildcard order
#
# A wildcard name is ordered as written, `*.example.com`; its authorization is for the base
# name, `example.com`, with `"wildcard": true` — and Let's Encrypt and Pebble offer **only DNS
# challenges** for it: the CA/Browser Forum's rules do not allow `http-01` or `tls-alpn-01`
# for wildcards, since a web server cannot prove control of every possible subdomain.
# `dns-01` is no longer the only DNS way: **dns-persist-01** (ballot SC-088) proves a wildcard
# with one standing record that says `policy=wildcard` — and, like dns-01, works for hosts no
# CA can reach over HTTP (notebook 07; on Let's Encrypt staging, not yet in production, as of
# mid-2026). We do not need this order, so
# we give its authorization up right away (**deactivate** it, §7.5.2); the order can then
# never be finalized.

# %%
wildcard_order = client.new_order([f"*.{course.target().domain}"], profile="classic")
wildcard = client.fetch_authorization(wildcard_order.authorizations[0])
print("identifier:", wildcard.identifier, "wildcard:", wildcard.wildcard)
print("offered:   ", sorted(c.type for c in wildcard.challenges))

gone = client.deactivate_authorization(wildcard.url)
print("authorization:", gone.status, "| order:", client.fetch_order(wildcard_order.url).status)

# %% [markdown]
# The order is now `invalid`, as RFC 8555 §7.1.6 says and Let's Encrypt answers. (Pebble 2.4
# said `deactivated`, which is no order status at all; a client should treat any status it
# does not expect as "this order is finished".)
#
# ## Profiles: the same names, three lifetimes
#
# The profile is the one choice in an order that changes the certificate's lifetime. An
# unknown name is refused before anything is sent (`UnknownProfile`, from the directory's
# list); a CA that does not know it answers `invalidProfile`:

# %%
from acmelab.errors import UnknownProfile

try:
    client.new_order(names, profile="90-days-please")
except UnknownProfile as error:
    refused = error
display.error(refused)

# %% [markdown]
# To compare the lifetimes we issue one throw-away certificate per profile for another name,
# with `issue_certificate` — the whole flow of notebooks 06–09 in one call (notebook 14 looks
# at it closely). `IssuedCertificate.profile` says which profile the order was placed with:

# %%
from cryptography import x509

from acmelab.issue import issue_certificate

rows = []
for profile in sorted(client.directory.profiles):
    issued = issue_certificate([f"profile-demo.{course.target().domain}"], client=client,
                               dns=course.dns_provider(), profile=profile)
    leaf = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    rows.append([issued.profile, f"{lifetime.total_seconds() / 86400:.1f} days",
                 f"{lifetime.total_seconds() / 3600:.0f} hours"])
display.table(rows, header=["profile", "lifetime", "in hours"])

# %% [markdown]
# (Pebble's `notAfter` is one second short of the full period, hence the rounding.) Shorter
# lifetimes limit the damage of a leaked key without revocation — and make automated renewal
# mandatory: a `shortlived` certificate is renewed every few days (notebook 12).

# %% [markdown]
# ## Summary
#
# * `newOrder` lists the names and a profile (`classic` 90 days, `tlsserver` 45 days,
#   `shortlived` 160 hours as of mid-2026); the answer (`201`, `Location`) has one authorization per name
#   and a `finalize` URL for later.
# * Each authorization offers challenges; one valid challenge makes it valid. Check statuses:
#   a CA may reuse valid authorizations.
# * For CDN and API Gateway we use `dns-01`: a TXT record at `_acme-challenge.<name>`. Wildcards
#   need a DNS challenge: `dns-01`, or `dns-persist-01` with `policy=wildcard` (staging only,
#   mid-2026).
# * The order URL is saved in the course folder; notebook 07 answers its challenges.
#
# ## Exercises
#
# 1. Your hand-made `newOrder` above answered an order: `check("06.1", order_json["status"])`.
# 2. How many authorizations does it list? `check("06.2", len(order_json["authorizations"]))`.
# 3. How many hours does a `tlsserver` certificate live? `check("06.3", hours)` (and see `rows`
#    above).

# %%
from acmelab.exercises import check

check("06.1", ...)  # the status of the new order
check("06.2", ...)  # the number of authorizations
check("06.3", ...)  # hours

# %% [markdown]
# **Previous:** [05 · The account](05_account.ipynb) · **Next:** [07 · The DNS challenge](07_dns_challenge.ipynb)
