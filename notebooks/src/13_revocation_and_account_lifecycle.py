# %% [markdown]
# # 13 · Revocation and the account's life cycle
#
# **Goal:** **revoke** a certificate — with the account key and with the certificate's own key —
# and check its status at the CA; replace the **account key** (rollover); and **deactivate** an
# account for good.
#
# **Needs:** the lab (started if needed) and the course's account from [05](05_account.ipynb)
# (made now if it is missing). Revocation, rollover and deactivation use throw-away
# certificates and a throw-away account, so the course's own stay usable.
#
# **Previous:** [12 · Renewal and ARI](12_renewal_and_ari.ipynb) · **Next:** [14 · Automate many services](14_automate_many_services.ipynb)

# %% [markdown]
# ## Revoking
#
# Revocation tells everyone to stop trusting a certificate before it expires (RFC 8555 §7.6):
# a POST to `revokeCert` with the certificate (DER, base64url) and an optional RFC 5280
# **reason**. Revoke when the key leaked (`keyCompromise`), when you no longer own a name
# (`cessationOfOperation`), or when the certificate was replaced early for another reason
# (`superseded`). Do *not* revoke routinely at renewal: the old certificate just expires.
#
# Who may revoke (§7.6)? Three parties: the **account that ordered** the certificate; whoever
# holds the **certificate's private key**; and **any account that holds valid authorizations
# for all the names** in the certificate — so the owner of a domain can revoke a certificate
# someone else got for it. We try the first two.
#
# Two throw-away certificates to revoke:

# %%
from acmelab import course, display, keys
from acmelab.issue import issue_certificate

client = course.account_client()  # the course's account (notebook 05)
spare = issue_certificate([f"spare.{course.target().domain}"], client=client, dns=course.dns_provider())
leaked = issue_certificate([f"leaked.{course.target().domain}"], client=client, dns=course.dns_provider())
print("issued:", ", ".join(spare.names), "and", ", ".join(leaked.names))

# %% [markdown]
# Their status at the CA. Pebble answers on its management API; Let's Encrypt has no such
# endpoint (see "Checking the status" below):

# %%
lab = course.target().lab


def status_at_the_ca(item) -> dict:
    """Pebble's view of a certificate (lab only; Let's Encrypt publishes CRLs instead)."""
    return lab.cert_status(item.serial_hex) if lab else {"Status": "(see the CA's CRL)"}


for name, item in (("spare", spare), ("leaked", leaked)):
    print(f"{name:7} {', '.join(item.names):22} status at the CA: {status_at_the_ca(item)['Status']}")

# %% [markdown]
# ### With the account key
#
# The account that ordered a certificate may revoke it: the JWS is signed by the account key
# with `kid`, as usual. The answer is `200 OK` with an empty body:

# %%
from acmelab.client import ReasonCode

with display.Wire(client, shorten=("certificate",)) as wire:  # the DER: long, new every run
    client.revoke_certificate(spare.certificate_pem, reason=ReasonCode.cessationOfOperation)
wire

# %% [markdown]
# ### With the certificate's key
#
# Whoever holds the certificate's **private key** may revoke it too, without any account: the
# JWS is signed by the certificate key, with a `jwk` header. That is how you revoke a
# certificate whose key leaked when you cannot (or no longer) use the account that ordered it —
# and how anyone who *finds* a leaked key can get the certificate killed.

# %%
with display.Wire(client, shorten=("certificate",)) as wire:
    client.revoke_certificate(leaked.certificate_pem, reason=ReasonCode.keyCompromise,
                              certificate_key=leaked.private_key)
wire

# %% [markdown]
# ### Checking the status
#
# Browsers learn about revocations from the CA's certificate revocation lists (CRLs), usually
# not one by one but aggregated by the browser vendor (Firefox's CRLite, Chrome's CRLSets).
# Let's Encrypt ended its OCSP service in 2025; its CRLs are the source. Pebble offers a
# simpler view on its management API, `GET /cert-status-by-serial/<serial>`:

# %%
rows = []
for name, item in (("spare", spare), ("leaked", leaked)):
    status = status_at_the_ca(item)
    reason = status.get("Reason")
    rows.append([name, status["Status"], "" if reason is None else ReasonCode(reason).name])
display.table(rows, header=["certificate", "status", "reason"])

# %% [markdown]
# Revoking twice is an error of its own, `alreadyRevoked`. (Let's Encrypt also refuses reasons
# a subscriber may not give, such as `certificateHold`, with `badRevocationReason`; the lab's
# Pebble is more lenient.) A reason code RFC 5280 does not define is refused before anything is
# sent:

# %%
from acmelab.errors import AcmeProblem, InputError

try:
    client.revoke_certificate(spare.certificate_pem, reason=ReasonCode.unspecified)
except AcmeProblem as error:
    print(f"{type(error).__name__:15} {error.detail}")
try:
    client.revoke_certificate(leaked.certificate_pem, reason=7)
except InputError as error:
    print(f"{type(error).__name__:15} {error}")

# %% [markdown]
# ## Account key rollover
#
# To rotate the account key as routine — on a schedule, or when an administrator who could
# read it leaves — replace it without losing the account (RFC 8555 §7.3.5, `keyChange`). The
# request nests two JWS: the **inner** one, signed by the *new* key (with `jwk`), says
# "account X, whose old key is K, now uses me"; the **outer** one, signed by the *old* key
# (with `kid`), carries it. The inner signature proves the requester holds the new key, so
# nobody can bind to an account a key they do not hold. But the outer one only needs the old
# key: whoever holds it can roll the account over to a key of *their* choosing.
#
# So rollover is **not** the remedy for a leaked account key — the thief can roll over too,
# and may already have. After a leak: **deactivate** the account (§7.3.6, below), create a new
# one with a new key, and revoke every certificate you did not order.
#
# ```mermaid key-change
# flowchart TB
#     outer["outer JWS, signed by the OLD key<br/>protected: alg, kid = account URL, nonce, url = keyChange"] --> inner
#     inner["inner JWS = the outer payload, signed by the NEW key<br/>protected: alg, jwk = new public key, url = keyChange (no nonce)<br/>payload: account = account URL, oldKey = old public JWK"]
# ```
#
# We roll over a throw-away account (the course's account key file is never replaced):

# %%
import json

from acmelab.jws import b64url_decode

old_key, new_key = keys.generate_key("ec256"), keys.generate_key("ec256")
demo = course.client(old_key)
demo_account = demo.new_account([])
with display.Wire(demo) as wire:
    demo.change_key(new_key)
outer = json.loads(wire.exchanges[0].request.body)
display.jws(outer, title="outer JWS (old key)", payload_note="the inner JWS, shown next")

# %%
inner = json.loads(b64url_decode(outer["payload"]))
display.jws(inner, title="inner JWS (new key)")

# %% [markdown]
# From now on the account answers to the new key only:

# %%
from acmelab.errors import AccountDoesNotExist

print("new key finds the account:", course.client(new_key).find_account().url == demo_account.url)
try:
    course.client(old_key).find_account()
except AccountDoesNotExist as error:
    print("old key:", type(error).__name__, "->", error.detail)

# %% [markdown]
# ## Deactivating an account
#
# When an account is no longer needed — or its key leaked — the account can be
# **deactivated** (§7.3.6): a POST of `{"status": "deactivated"}` to the account URL. It is
# final: the CA refuses every later request signed for it, whoever signs it, so a thief holding
# the old key can do nothing more with the account. Certificates already issued stay valid:
# revoke those you did not order (or no longer trust) — with the certificate key, or from the
# new account once it has validated the names (§7.6).

# %%
gone = demo.deactivate_account()
print("status:", gone.status)
try:
    demo.new_order([f"www.{course.target().domain}"])
except AcmeProblem as error:
    print("then newOrder:", type(error).__name__, "->", error.detail)

# %% [markdown]
# ## Summary
#
# * Revoke with the account key (`kid`) or the certificate's key (`jwk`), with a reason;
#   check the status; `alreadyRevoked` (and, at Let's Encrypt, `badRevocationReason`) are
#   typed errors. Revocation reaches browsers through CRLs: Let's Encrypt has no OCSP since 2025.
# * `keyChange` rolls the account over to a new key: inner JWS by the new key inside an outer
#   JWS by the old one — routine rotation, not a remedy for a leak (the thief can roll over too).
# * Account key leaked: deactivate the account, create a new one, revoke certificates you did
#   not order. Certificate key leaked: revoke with `keyCompromise`, reissue with a new key.
#
# ## Exercises
#
# 1. Which RFC 5280 reason do you give when the certificate key leaked? Hand in the
#    `ReasonCode`: `check("13.1", ReasonCode....)`.
# 2. After the rollover, sign a request with the *old* key and `kid` set to the account URL
#    (`course.client(old_key, account_url=demo_account.url).fetch_account()`). Hand in the
#    error class you catch: `check("13.2", type(error))`.
# 3. Revoke a fresh throw-away certificate with `ReasonCode.superseded`, then check with
#    `lab.cert_status(serial)["Status"]`: `assert status == "Revoked"`.

# %%
from acmelab.exercises import check

check("13.1", ...)  # a ReasonCode
check("13.2", ...)  # the error class you caught

# %% [markdown]
# **Previous:** [12 · Renewal and ARI](12_renewal_and_ari.ipynb) · **Next:** [14 · Automate many services](14_automate_many_services.ipynb)
