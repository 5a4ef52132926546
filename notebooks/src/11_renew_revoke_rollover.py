# %% [markdown]
# # 11 · Renew, revoke, roll over
#
# **Goal:** the rest of a certificate's life and an account's: decide **when to renew** and
# renew; **revoke** a certificate — with the account key and with the certificate's own key —
# and check its status at the CA; replace the **account key** (rollover); and **deactivate** an
# account for good.
#
# **Needs:** the lab (started if needed), the course's account from
# [05](05_account.ipynb) and the certificate from [08](08_finalize_and_download.ipynb) (each
# made now if it is missing). Revocation, rollover and deactivation use throw-away
# certificates and a throw-away account, so the course's own stay usable.
#
# **Previous:** [10 · PKCS#12 for IIS](10_pkcs12_for_iis.ipynb) · **Next:** [12 · Automate many services](12_automate_many_services.ipynb)

# %% [markdown]
# ## A certificate's life
#
# ```mermaid
# stateDiagram-v2
#     direction LR
#     [*] --> valid: issued (notebook 08)
#     valid --> due: two thirds of the lifetime passed
#     due --> replaced: renewed, new certificate installed
#     valid --> revoked: key leaked, names given up, issued in error
#     due --> expired: nobody renewed (an outage)
# ```

# %%
import datetime as dt

from acmelab import course, display

certificate = course.issued_certificate()  # notebook 08's certificate, or issued now
display.certificate(certificate.certificate_pem, title="the course's certificate")

# %% [markdown]
# ## When to renew
#
# Renew when **a third of the lifetime is left** — for Let's Encrypt's 90-day certificates,
# on day 60. That leaves a month to notice and fix a failing renewal before anything expires.
# Compute it from the certificate's own dates, not from a fixed number of days: lifetimes differ
# between CAs (Pebble issues 5-year certificates) and are getting shorter.

# %%
from cryptography import x509

leaf = x509.load_pem_x509_certificate(certificate.certificate_pem.encode())
lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
renew_after = leaf.not_valid_after_utc - lifetime / 3


def due(now: dt.datetime) -> bool:
    """Renew once less than a third of the lifetime is left."""
    return now >= renew_after


print("lifetime:       ", lifetime.days, "days")
print("renew after:    ", f"{renew_after:%Y-%m-%d %H:%M:%S}")
print("due now?        ", due(dt.datetime.now(dt.timezone.utc)))
print("due one day after that?", due(renew_after + dt.timedelta(days=1)))

# %% [markdown]
# **ACME Renewal Information (ARI, RFC 9773)** lets the CA say when to renew instead: the
# directory lists a `renewalInfo` URL; a GET on `renewalInfo/<certificate ID>` answers a
# `suggestedWindow` (`start`, `end`). A CA uses it to ask for early renewal — for example
# before a mass revocation after an incident. The certificate ID is built from the
# certificate's Authority Key Identifier and serial number. Let's Encrypt offers ARI; the
# lab's Pebble version does not, so a client must fall back to the one-third rule:

# %%
from acmelab.jws import b64url

client = course.account_client()
authority_key_id = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
serial_der = leaf.serial_number.to_bytes((leaf.serial_number.bit_length() + 8) // 8, "big")
print("certificate ID:", f"{b64url(authority_key_id)}.{b64url(serial_der)}")
print("this CA offers renewalInfo:", "renewalInfo" in client.directory.json)

# %% [markdown]
# ## Renewing
#
# Renewing is nothing special in ACME: a new order for the same names, the same challenges, a
# new certificate. Use a **new key** for it — the old certificate may be revoked later, and a
# key shared between them would go with it. `issue_certificate` does the whole flow of notebooks
# 06–08 in one call (notebook 12 looks at it closely):

# %%
from acmelab import keys
from acmelab.issue import issue_certificate

renewed = issue_certificate(course.names(), client=client, dns=course.dns_provider())
print("same names:    ", renewed.names == certificate.names)
print("new serial:    ", renewed.serial_hex != certificate.serial_hex)
print("new key:       ", keys.public_jwk(renewed.private_key) != keys.public_jwk(certificate.private_key))
print("later expiry:  ", renewed.not_after >= certificate.not_after)

# %% [markdown]
# A real renewal then replaces `fullchain.pem` and the key, and installs the new certificate
# everywhere the old one is served (notebook 09), proving it with a handshake that shows the
# *new* serial. `acmelab apply` does all of that (notebook 12). Here we keep the renewed
# certificate in memory only.
#
# ## Revoking
#
# Revocation tells everyone to stop trusting a certificate before it expires (RFC 8555 §7.6):
# a POST to `revokeCert` with the certificate (DER, base64url) and an optional RFC 5280
# **reason**. Revoke when the key leaked (`keyCompromise`), when you no longer own a name
# (`cessationOfOperation`), or when the certificate was replaced early for another reason
# (`superseded`). Do *not* revoke routinely at renewal: the old certificate just expires.
#
# Two throw-away certificates to revoke:

# %%
spare = issue_certificate([f"spare.{course.target().domain}"], client=client, dns=course.dns_provider())
leaked = issue_certificate([f"leaked.{course.target().domain}"], client=client, dns=course.dns_provider())
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
import re

from acmelab.client import ReasonCode


def shortened(exchange) -> display.Text:
    """An exchange, with the certificate's DER (long and different every run) shortened."""
    text = display.exchange_text(exchange)
    return display.Text(re.sub(r'("certificate": ")[A-Za-z0-9_-]+', r"\1<the certificate: DER, base64url>", text))


with display.Wire(client) as wire:
    client.revoke_certificate(spare.certificate_pem, reason=ReasonCode.cessationOfOperation)
shortened(wire.exchanges[-1])

# %% [markdown]
# ### With the certificate's key
#
# Whoever holds the certificate's **private key** may revoke it too, without any account: the
# JWS is signed by the certificate key, with a `jwk` header. That is how you revoke a
# certificate whose key leaked when you cannot (or no longer) use the account that ordered it —
# and how anyone who *finds* a leaked key can get the certificate killed.

# %%
with display.Wire(client) as wire:
    client.revoke_certificate(leaked.certificate_pem, reason=ReasonCode.keyCompromise,
                              certificate_key=leaked.private_key)
shortened(wire.exchanges[-1])

# %% [markdown]
# ### Checking the status
#
# Browsers learn about revocations from the CA's certificate revocation lists (CRLs). Pebble
# offers a simpler view on its management API, `GET /cert-status-by-serial/<serial>`:

# %%
rows = []
for name, item in (("spare", spare), ("leaked", leaked), ("renewed", renewed)):
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
    client.revoke_certificate(renewed.certificate_pem, reason=7)
except InputError as error:
    print(f"{type(error).__name__:15} {error}")

# %% [markdown]
# ## Account key rollover
#
# If the account key may have leaked — or you simply rotate keys — replace it without losing
# the account (RFC 8555 §7.3.5, `keyChange`). The request nests two JWS: the **inner** one,
# signed by the *new* key (with `jwk`), says "account X, whose old key is K, now uses me"; the
# **outer** one, signed by the *old* key (with `kid`), carries it. Both keys prove possession,
# so a thief with only one of them cannot take the account over.
#
# ```mermaid
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
display.jws(outer | {"payload": b64url(b"{...the inner JWS, below...}")}, title="outer JWS (old key)")

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
# When an account is no longer needed — or its key leaked and you cannot roll it over — the
# account can be **deactivated** (§7.3.6): a POST of `{"status": "deactivated"}` to the account
# URL. It is final: the CA refuses every later request signed for it. Certificates already
# issued stay valid (revoke them first if needed).

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
# * Renew when a third of the lifetime is left (day 60 of 90), computed from the certificate;
#   ARI (`renewalInfo`) lets the CA suggest a window. A renewal is a new order, with a new key.
# * Revoke with the account key (`kid`) or the certificate's key (`jwk`), with a reason;
#   check the status; `alreadyRevoked` (and, at Let's Encrypt, `badRevocationReason`) are
#   typed errors.
# * `keyChange` rolls the account over to a new key: inner JWS by the new key inside an outer
#   JWS by the old one.
# * Deactivation ends an account for good.
#
# ## Exercises
#
# 1. Revoke `renewed` with `ReasonCode.superseded`, then check its status with
#    `lab.cert_status`. Which reasons does Pebble accept?
# 2. After the rollover, sign a request with the *old* key and `kid` set to the account URL
#    (`course.client(old_key, account_url=demo_account.url).fetch_account()`). What does the
#    CA answer?
# 3. Write a function that, given `fullchain.pem`, prints how many days are left until
#    renewal is due, and use it in a daily job.
#
# **Previous:** [10 · PKCS#12 for IIS](10_pkcs12_for_iis.ipynb) · **Next:** [12 · Automate many services](12_automate_many_services.ipynb)
