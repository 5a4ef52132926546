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
# | `meta` | terms of service, website, CAA identities, whether External Account Binding is required | §7.1.1 | 05 |

# %% [markdown]
# Two more entries exist that the lab's Pebble does not list:
#
# * `renewalInfo` — ACME Renewal Information (ARI, RFC 9773): when the CA suggests renewing a
#   certificate (notebook 11). Let's Encrypt has it.
# * `newAuthz` — pre-authorization, asking for an authorization before any order (§7.4.1).
#   It is optional, and Let's Encrypt does not offer it.
#
# Let's Encrypt's `meta` also has `profiles`: the certificate profiles (such as `classic`,
# `tlsserver`, `shortlived`) an order may ask for.

# %%
directory = response.json()
display.json_view(directory["meta"], title="meta")

# %% [markdown]
# ## Nonces: every request is used once
#
# Every ACME request except the directory and `newNonce` (and ARI's `renewalInfo`) is a signed
# POST, and every signed POST carries a **nonce** — a random
# value the server made up and will accept exactly once. That stops an eavesdropper (or a
# confused proxy) from replaying a request, such as "revoke this certificate", later.
#
# The first nonce comes from `newNonce`. RFC 8555 §7.2 says a `HEAD` answers
# `200 OK` and a `GET` answers `204 No Content`; both carry the nonce in the
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
# responses too (§6.5); the directory GET carries none, as we saw above. A careful client keeps
# the newest nonce it has seen and asks `newNonce` only when it has none.
#
# ```mermaid
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
# nonces from `newNonce` only when it has none in hand.

# %%
client = course.client()
print("newNonce:  ", client.directory.newNonce)
print("newAccount:", client.directory.newAccount)
print("newOrder:  ", client.directory.newOrder)
print("terms:     ", client.terms_of_service)

# %%
nonce = client.transport.new_nonce()
print("the client's fresh nonce:", nonce)

# %% [markdown]
# ## Summary
#
# * The directory is the only URL you configure; everything else is read from it.
# * Lab, staging and production differ only in that URL (and in who trusts the result).
# * Each signed request needs a fresh nonce, good once. The first comes from `newNonce`
#   (`HEAD` → 200, `GET` → 204); after that each response to a POST brings the next in
#   `Replay-Nonce`.
#
# ## Exercises
#
# 1. With network access, `GET` the Let's Encrypt staging directory. Which `meta` fields does it
#    have that Pebble's lacks?
# 2. Send two `HEAD` requests to `newNonce`: are nonces ever repeated? Why must they not be?
# 3. What does `client.transport.request_count` say after the cells above? Which requests
#    did the client make?
#
# **Previous:** [02 · The certificate key and the CSR](02_certificate_key_and_csr.ipynb) · **Next:** [04 · JWS: signing a request](04_jws.ipynb)
