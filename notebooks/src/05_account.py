# %% [markdown]
# # 05 · The account
#
# **Goal:** create an ACME account, find it again, read it back, and change its contacts —
# with `acmelab.client`, watching every request on the wire. Then: what External Account
# Binding is and when you need it.
#
# **Needs:** the lab (started if needed) and the course's account key from
# [01](01_account_key.ipynb) (made now if it is missing).
#
# **Previous:** [04 · JWS: signing a request](04_jws.ipynb) · **Next:** [06 · The order and its authorizations](06_order_and_authorizations.ipynb)

# %% [markdown]
# ## What an account is
#
# An ACME account (RFC 8555 §7.1.2) is small: a `status` (`valid`, `deactivated` by you, or
# `revoked` by the CA), optional `contact` URLs (e-mail addresses the CA may write to), whether
# you agreed to the terms of service, and the URL of its list of `orders`. Which server keeps
# what: **Pebble** (the lab) stores and echoes contacts, so this notebook shows them; **Let's
# Encrypt** keeps none since mid-2025 — it deleted the stored addresses, sends no expiry
# e-mails, returns accounts without `contact` and ignores updates — so watch expiry yourself
# (notebook 12). Its
# *identity* is the public key; its *name* is its URL, which the CA returns in `Location` and
# which every later request carries as `kid`.
#
# ```mermaid account-states
# stateDiagram-v2
#     [*] --> valid: newAccount (201 Created)
#     valid --> valid: update contact
#     valid --> valid: keyChange (new key, same URL)
#     valid --> deactivated: POST status deactivated (by you, for good)
#     valid --> revoked: by the CA
# ```

# %% [markdown]
# `newAccount` is idempotent: for a key that already has an account it answers `200 OK` with
# the same `Location`. So a notebook that runs twice would see `201` the first time and `200`
# afterwards; to show a real creation every time, we use a brand-new demo key here, and
# register the course's own account at the end.

# %%
from acmelab import course, display, keys

demo_key = keys.generate_key("ec256")
client = course.client(demo_key)
print("directory:", client.directory_url)
print("terms of service:", client.terms_of_service)

# %% [markdown]
# ## Create it
#
# `client.new_account(contact)` sends what we built by hand in notebook 04: a JWS with the
# `jwk` header, payload `termsOfServiceAgreed` and `contact`. The client had no nonce yet,
# so it asked `newNonce` first:

# %%
with display.Wire(client) as wire:
    account = client.new_account(["mailto:admin@example.com"], terms_of_service_agreed=True)
wire

# %%
print("status: ", account.status)
print("contact:", list(account.contact))
print("account URL (our kid):", account.url)

# %% [markdown]
# ## Find it again
#
# Lost the account URL? The key is enough: `newAccount` with `onlyReturnExisting: true`
# (§7.3.1) returns the account of that key — and never creates one. For a key without an
# account the CA answers the problem `accountDoesNotExist`:

# %%
from acmelab.errors import AccountDoesNotExist

found = course.client(demo_key).find_account()
print("found the same account:", found.url == account.url)

try:
    course.client(keys.generate_key("ec256")).find_account()
except AccountDoesNotExist as error:
    print(type(error).__name__, "->", error)

# %% [markdown]
# ## Read it back
#
# Reading the account is a POST-as-GET to its URL, signed with `kid` (RFC 8555 §6.3, §7.3).
# We have seen the full request and the account object twice already; the one-line summary is
# enough:

# %%
with display.Wire(client) as wire:
    fetched = client.fetch_account()
wire.summary()

# %% [markdown]
# ## Update the contacts
#
# To change the contacts, POST the new list to the account URL (§7.3.2). The list
# *replaces* the old one; an empty list removes them all. (At Pebble, as here; Let's Encrypt
# answers the same request with an account that has no `contact` at all.)

# %%
with display.Wire(client) as wire:
    updated = client.update_account(["mailto:ops@example.com", "mailto:admin@example.com"])
wire

# %% [markdown]
# The CA checks contacts. A scheme it does not support, or an address it cannot use, is
# refused with a typed problem — and nothing changes:

# %%
from acmelab.errors import AcmeProblem

for contact in (["tel:+86-10-12345678"], ["mailto:not an address"]):
    try:
        client.update_account(contact)
    except AcmeProblem as error:
        print(f"{contact[0]!r:25} -> {type(error).__name__}: {error.detail}")
print("still:", list(client.fetch_account().contact))

# %% [markdown]
# ## External Account Binding (EAB)
#
# Let's Encrypt lets anyone open an account. Some CAs (commercial ACME CAs, and private CAs in
# companies) want every ACME account tied to a customer account they already know. For that
# they hand out, on their website, a **key identifier** and a **MAC key**. The `newAccount`
# payload then carries `externalAccountBinding` (§7.3.4): a small JWS *inside* the payload,
# signed with HMAC-SHA256 by the MAC key, whose payload is the new account's public key. It
# proves "the holder of this MAC key vouches for this ACME key". The directory's
# `meta.externalAccountRequired` says whether a CA insists; without it, such a CA answers
# `externalAccountRequired`.
#
# ```mermaid external-account-binding
# flowchart LR
#     outer["newAccount JWS<br/>signed by the account key (jwk)"] --> payload["payload:<br/>termsOfServiceAgreed,<br/>externalAccountBinding"]
#     payload --> inner["inner JWS, HS256<br/>header: alg, kid = key identifier, url = newAccount<br/>payload: the account's public JWK"]
#     mac["MAC key from the CA"] -.->|signs| inner
# ```
#
# The lab's Pebble does not require it (the lab can: `Lab(eab_keys={...})`). Here is what the
# inner JWS looks like, built with a made-up identifier and MAC key:

# %%
from acmelab import jws

binding = jws.external_account_binding(demo_key, eab_kid="kid-from-the-ca",
                                       hmac_key=jws.b64url(b"a MAC key handed out by the CA!!"),
                                       url=client.directory.newAccount)
display.jws(binding, title="externalAccountBinding (inner JWS)")

# %% [markdown]
# With a real CA: `client.new_account(contact, eab_kid=..., eab_hmac_key=...)`. The MAC key
# is a secret like a password: keep it out of notebooks and logs; pass it through an
# environment variable.

# %% [markdown]
# ## The course's account
#
# Now the account the rest of the course uses, signed by the account key from notebook 01.
# `course.account_client()` looks the account up (`newAccount` with `onlyReturnExisting`,
# §7.3.1), creates it if the CA has none for the key — saying so in one `course: created` line,
# as every `course` helper does that makes something an earlier notebook would have made —
# and remembers its URL in the course folder:

# %%
course_client = course.account_client()
course_account = course_client.fetch_account()
print("course account:", course_account.status)
print("URL remembered in:", course.relative(course.state_path()))
print("remembered URL is the client's kid:", course.recall("account_url") == course_client.account_url)

# %% [markdown]
# ## Summary
#
# * The account is identified by its key and named by its URL (`Location`, then `kid`).
# * `newAccount` creates (201) or returns the existing account (200); `onlyReturnExisting`
#   only looks it up (`accountDoesNotExist` if there is none).
# * Read with POST-as-GET; update contacts by POSTing the new list; bad contacts are refused
#   with `unsupportedContact` / `invalidContact`.
# * External Account Binding ties an ACME account to a customer account with an HMAC-signed
#   inner JWS; Let's Encrypt does not require it.
#
# ## Exercises
#
# 1. Make a client with a fresh key, `fresh = course.client(keys.generate_key("ec256"))`, run
#    `fresh.new_account([])` twice inside `display.Wire(fresh)`: `check("05.1", (first, second))`
#    with the two status codes.
# 2. Remove the demo account's contacts with `update_account([])`: `check("05.2", account.contact)`.
#    (Pebble keeps contacts; Let's Encrypt keeps none since mid-2025.)
# 3. Start a second lab that requires EAB (`from acmelab.lab import Lab, LabPorts`, then
#    `with Lab(None, ports=LabPorts.free(), eab_keys={"kid-1": mac_key}, aliyun=False) as info:`)
#    and create an account there without the binding: `check("05.3", error)`.

# %%
from acmelab.exercises import check

check("05.1", ...)  # (status, status)
check("05.2", ...)  # the contact list
check("05.3", ...)  # the AcmeProblem you caught

# %% [markdown]
# **Previous:** [04 · JWS: signing a request](04_jws.ipynb) · **Next:** [06 · The order and its authorizations](06_order_and_authorizations.ipynb)
