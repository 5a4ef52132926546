# %% [markdown]
# # 03 · The directory and nonces
#
# **Goal:** find every ACME endpoint from one URL (the **directory**), get an anti-replay
# **nonce**, and know which directory to use for the lab, Let's Encrypt staging and production.
#
# **Needs:** the lab (started by `course.target()` below if it is not running).
#
# **Previous:** [02 · The certificate key and the CSR](02_certificate_key_and_csr.ipynb) · **Next:** [04 · JWS: signing a request](04_jws.ipynb)

# %% [markdown]
# ## One URL to start from
#
# An ACME client is configured with a single URL. A plain `GET` on it returns the
# **directory** (RFC 8555 §7.1.1): a JSON object mapping each action to its URL. Clients must
# not guess or hard-code the other URLs — Pebble even picks odd names for them on purpose
# (`sign-me-up`, `order-plz`) so that clients which do would break.
#
# Let's Encrypt publishes two directories, plus the lab's:
#
# | target | directory URL | certificates |
# |---|---|---|
# | lab (Pebble) | `https://localhost:14000/dir` | trusted by nobody but this lab |
# | Let's Encrypt **staging** | `https://acme-staging-v02.api.letsencrypt.org/directory` | real flow, untrusted "(STAGING)" roots, generous rate limits |
# | Let's Encrypt **production** | `https://acme-v02.api.letsencrypt.org/directory` | trusted by browsers; strict rate limits |
#
# Try everything against staging before production: same protocol, same checks, nothing to lose.

# %%
import requests

from acmelab import course, display

target = course.target()  # the lab unless ACMELAB_ACME says otherwise (notebook 00)
trust = target.verify      # the lab's CA bundle: trusted explicitly, TLS always verified
session = requests.Session()

response = session.get(target.directory_url, verify=trust, timeout=10)
display.exchange(response, title="GET the directory")

# %% [markdown]
# What each entry is for, and the notebook where we use it:
#
# | key | action | RFC 8555 | notebook |
# |---|---|---|---|
# | `newNonce` | get a fresh anti-replay nonce | §7.2 | here |
# | `newAccount` | create (or find) the account of a key | §7.3 | 04, 05 |
# | `newOrder` | ask for a certificate | §7.4 | 06 |
# | `revokeCert` | revoke a certificate | §7.6 | 11 |
# | `keyChange` | replace the account key | §7.3.5 | 11 |
# | `meta` | terms of service, website, CAA identities, whether External Account Binding is required, profiles | §7.1.1 | 05, 06 |
# | `renewalInfo` | when to renew a certificate (ARI) | RFC 9773 | 11 |

# %% [markdown]
# The lab's Pebble (built from upstream source, 2026) lists two entries beyond RFC 8555's, both
# of which Let's Encrypt has too:
#
# * `renewalInfo` — ACME Renewal Information (ARI, RFC 9773): the base URL where a client asks,
#   per certificate, when the CA suggests renewing it (notebook 12). It is a plain GET, not a
#   signed POST.
# * `meta.profiles` — the certificate **profiles** (draft-ietf-acme-profiles) an order may
#   name: profile name → a description for people. The profile decides the certificate's
#   lifetime and shape; notebook 06 orders with one.
#
# One optional entry neither of them has: `newAuthz`, asking for an authorization before any
# order (pre-authorization, §7.4.1).

# %%
directory = response.json()
print("renewalInfo:", directory["renewalInfo"])
display.table(sorted(directory["meta"]["profiles"].items()), header=["profile", "description"])

# %% [markdown]
# The lab copies Let's Encrypt's three profiles (as of mid-2026; check
# [letsencrypt.org/docs/profiles](https://letsencrypt.org/docs/profiles/) for today's):
#
# | profile | lifetime | notes |
# |---|---|---|
# | `classic` | 90 days | the default when an order names no profile at Let's Encrypt; to shrink to 64 days in February 2027 and 45 days in February 2028 |
# | `tlsserver` | 45 days | TLS server certificates only, no common name, fewer names per certificate |
# | `shortlived` | 160 hours (under 7 days) | the only one for IP address certificates |
#
# The descriptions are free text: a client must not parse lifetimes out of them. An order
# that names no profile gets the CA's default — at Let's Encrypt `classic`, at Pebble a
# *random* one, to catch clients that assume a lifetime — so `acmelab` always names one.
# The rest of `meta`:

# %%
display.json_view({key: value for key, value in directory["meta"].items() if key != "profiles"},
                  title="meta, without profiles")

# %% [markdown]
# ## Nonces: every request is used once
#
# Every ACME request except the directory and `newNonce` (and ARI's `renewalInfo`) is a signed
# POST, and every signed POST carries a **nonce** — a random
# value the server made up and will accept exactly once. That stops an eavesdropper (or a
# confused proxy) from replaying a request, such as "revoke this certificate", later.
#
# The first nonce comes from `newNonce`. RFC 8555 §7.2: the server SHOULD answer a `HEAD`
# with `200 OK` and MUST answer a `GET` with `204 No Content` (so a client that checks the
# status should accept any 2xx for `HEAD`); both carry the nonce in the
# **`Replay-Nonce`** header, and a `Link: rel="index"` back to the directory.

# %%
head = session.head(directory["newNonce"], verify=trust, timeout=10)
display.exchange(head, title="HEAD newNonce")

# %% [markdown]
# `display.exchange` shows only the headers that matter to ACME. One more is required here:
# the server MUST send `Cache-Control: no-store` on `newNonce` responses (§7.2), so that no
# cache hands the same nonce to two clients. What the lab's Pebble sends:

# %%
print("Cache-Control:", head.headers.get("Cache-Control"))
print("the directory answer had a Replay-Nonce:", "Replay-Nonce" in response.headers)

# %% [markdown]
# Pebble says `no-cache` (a cache may keep the answer but must check back before reusing it)
# rather than the `no-store` the RFC asks for. Either way a client never takes a nonce from a
# cache: it asks `newNonce` itself.

# %%
get = session.get(directory["newNonce"], verify=trust, timeout=10)
print(get.status_code, get.reason)
print("two different nonces:", head.headers["Replay-Nonce"] != get.headers["Replay-Nonce"])
print("nonce length:", len(get.headers["Replay-Nonce"]), "base64url characters")

# %% [markdown]
# That length is Pebble's choice. RFC 8555 §6.5.1 asks only that a nonce be base64url (and
# unpredictable); Let's Encrypt's nonces are longer. A client treats the nonce as an opaque
# string.

# %% [markdown]
# After that first one, a client rarely needs `newNonce` again. The server MUST include a fresh
# `Replay-Nonce` in every successful response to a POST, and SHOULD include one in error
# responses too (§6.5). Other GETs carry none: the directory answer above had no
# `Replay-Nonce`, and neither does ARI's `renewalInfo`. (Older Pebble versions sent one on
# every answer; since 2026 Pebble, like Let's Encrypt, sends nonces only from `newNonce` and on
# answers to POSTs — a client that took its first nonce from the directory breaks.) A careful
# client keeps the newest nonce it has seen and asks `newNonce` only when it has none.
#
# ```mermaid nonces
# sequenceDiagram
#     participant C as Client
#     participant S as ACME server
#     C->>S: HEAD newNonce
#     S-->>C: 200 OK, Replay-Nonce: N1
#     C->>S: POST newAccount (JWS with nonce N1)
#     S-->>C: 201 Created, Replay-Nonce: N2
#     C->>S: POST newOrder (JWS with nonce N2)
#     S-->>C: 201 Created, Replay-Nonce: N3
#     Note over C,S: a nonce is good once, a reused or unknown one gets 400 badNonce (notebook 04)
# ```

# %% [markdown]
# ## The same through acmelab
#
# `acmelab.client.AcmeClient` does exactly this: it fetches the directory once, with a plain
# GET, keeps it as a `Directory` object whose attributes are the RFC's names, and takes its
# nonces from `newNonce` only when it has none in hand. Every request it sends carries a
# `User-Agent` header naming the client (RFC 8555 §6.1 requires one; Pebble refuses requests
# without it since 2026, with `malformed`).

# %%
client = course.client()
print("newNonce:  ", client.directory.newNonce)
print("newAccount:", client.directory.newAccount)
print("newOrder:  ", client.directory.newOrder)
print("renewalInfo:", client.directory.renewalInfo)
print("profiles:  ", sorted(client.directory.profiles))
print("terms:     ", client.terms_of_service)

# %%
nonce = client.transport.new_nonce()
print("the client's fresh nonce:", nonce)

# %% [markdown]
# ## Summary
#
# * The directory is the only URL you configure; everything else is read from it.
# * Lab, staging and production differ only in that URL (and in who trusts the result).
# * `renewalInfo` (ARI) and `meta.profiles` are where a 2026 CA says when to renew and which
#   kinds of certificate (lifetimes) it issues.
# * Each signed request needs a fresh nonce, good once. The first comes from `newNonce`
#   (`HEAD` → 200, `GET` → 204); after that each response to a POST brings the next in
#   `Replay-Nonce`.
#
# ## Exercises
#
# 1. *(offline)* How many days does each Let's Encrypt profile's certificate live as of 2026?
#    `check("03.1", {"classic": ..., "tlsserver": ..., "shortlived": ...})`. (Online: read
#    `meta.profiles` of Let's Encrypt's directory; the lab's table above has the same numbers.)
# 2. Send two `HEAD` requests to `newNonce`: `check("03.2", (first, second))`. Why must nonces
#    never repeat?
# 3. Which status code MUST `GET newNonce` answer (RFC 8555 §7.2)? `check("03.3", code)`.

# %%
from acmelab.exercises import check

check("03.1", ...)  # {"classic": days, "tlsserver": days, "shortlived": days}
check("03.2", ...)  # (nonce, nonce)
check("03.3", ...)  # a status code

# %% [markdown]
# **Previous:** [02 · The certificate key and the CSR](02_certificate_key_and_csr.ipynb) · **Next:** [04 · JWS: signing a request](04_jws.ipynb)
