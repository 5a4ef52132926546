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
# made now if it is missing). Renewal, revocation, rollover and deactivation use throw-away
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
#     valid --> due: inside the CA's ARI window (or two thirds of the lifetime passed)
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
# ## When to renew: the certificate's own dates
#
# Without help from the CA, renew when **a third of the lifetime is left** (half of it for
# lifetimes under 10 days, such as `shortlived`) — for a 90-day `classic` certificate, on day
# 60. That leaves a month to notice and fix a failing renewal. Compute it from the
# certificate's own dates, never from a fixed number of days: lifetimes differ between
# profiles and CAs, and are shrinking (notebook 06).

# %%
from cryptography import x509

leaf = x509.load_pem_x509_certificate(certificate.certificate_pem.encode())
lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
renew_after = leaf.not_valid_after_utc - lifetime / 3


def due(now: dt.datetime) -> bool:
    """Renew once less than a third of the lifetime is left."""
    return now >= renew_after


print("lifetime:       ", f"{lifetime.total_seconds() / 86400:.1f} days")
print("renew after:    ", f"{renew_after:%Y-%m-%d %H:%M:%S}")
print("due now?        ", due(dt.datetime.now(dt.timezone.utc)))
print("due one day after that?", due(renew_after + dt.timedelta(days=1)))

# %% [markdown]
# ## When to renew: ask the CA (ARI, RFC 9773)
#
# With **ACME Renewal Information** the CA says when: `GET <renewalInfo>/<certID>` (no JWS,
# no account) answers a `suggestedWindow` (`start`, `end`); the client renews at a random
# moment inside it, so that renewals spread out. The CA can move the window — earlier, even
# into the past, before a mass revocation after an incident — so a client asks again after
# the answer's `Retry-After` (Let's Encrypt advises checking at least twice a day).
#
# The **certID** (§4.1) names a certificate without sending it: base64url of the Authority Key
# Identifier's `keyIdentifier` (which CA key signed it), a dot, base64url of the serial
# number's DER INTEGER **content octets** — big-endian, minimal, with a leading `0x00` when the
# top bit is set (DER integers are signed). RFC 9773's own example, serial `0x87654321`, ends
# in `.AIdlQyE`. By hand, and against `acmelab.renewal_info.cert_id`:

# %%
from acmelab.jws import b64url
from acmelab.renewal_info import cert_id


def serial_content_octets(serial: int) -> bytes:
    return serial.to_bytes(serial.bit_length() // 8 + 1, "big")  # + 1: room for the sign bit


for example in (0x87654321, 0x12345678):
    octets = serial_content_octets(example)
    print(f"serial {example:#x}: DER content {octets.hex()} -> {b64url(octets)}")

authority_key_id = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
by_hand = f"{b64url(authority_key_id)}.{b64url(serial_content_octets(leaf.serial_number))}"
print("certificate ID:", by_hand)
print("same as cert_id:", by_hand == cert_id(leaf))

# %% [markdown]
# The lab's Pebble has ARI (notebook 03). Its window for a fresh certificate: two days around
# the point where a third of the lifetime is left:

# %%
client = course.account_client()
info = client.renewal_info(certificate.certificate_pem)
print("window:         ", f"{info.start:%Y-%m-%d %H:%M:%S}", "..", f"{info.end:%Y-%m-%d %H:%M:%S}")
print("opens with      ", f"{(leaf.not_valid_after_utc - info.start).total_seconds() / 86400:.1f} days left")
print("window length:  ", info.end - info.start)
print("ask again after:", f"{info.retry_after / 3600:g} hours (Retry-After)")
print("explanation:    ", info.explanation_url)

# %% [markdown]
# ## Renewing, with `replaces`
#
# Renewing is a new order for the same names, the same challenges, a new certificate — and a
# **new key** (the old certificate may be revoked later, and a shared key would go with it).
# The order names the certificate it replaces, `"replaces": "<certID>"` (RFC 9773 §5): the CA
# links the two, and Let's Encrypt exempts a renewal inside the suggested window from its rate
# limits. To keep the course's certificate as it is, we renew a throw-away one;
# `issue_certificate` does the flow of notebooks 06–08 in one call (notebook 12):

# %%
from acmelab import keys
from acmelab.issue import issue_certificate

old = issue_certificate([f"renew.{course.target().domain}"], client=client, dns=course.dns_provider())
old_leaf = x509.load_pem_x509_certificate(old.certificate_pem.encode())
renewed = issue_certificate(old.names, client=client, dns=course.dns_provider(), replaces=cert_id(old_leaf))
renewed_leaf = x509.load_pem_x509_certificate(renewed.certificate_pem.encode())
print("same names:    ", renewed.names == old.names, "| profile:", renewed.profile)
print("new serial:    ", renewed.serial_hex != old.serial_hex)
print("new key:       ", keys.public_jwk(renewed.private_key) != keys.public_jwk(old.private_key))
print("later expiry:  ", renewed.not_after >= old.not_after)

# %% [markdown]
# A certificate is replaced once. A second order that names the same certificate is refused
# with `alreadyReplaced` (`issue_certificate` then orders without `replaces`, since a run whose
# answer was lost may have renewed already):

# %%
from acmelab.errors import AlreadyReplaced

try:
    client.new_order(old.names, profile="classic", replaces=cert_id(old_leaf))
except AlreadyReplaced as error:
    refused = error
display.error(refused)

# %% [markdown]
# ## The CA moves the window
#
# `acmelab.renewal.RenewalPolicy` makes the decision in one place: ARI first (the random
# moment in the window), the lifetime rule when the CA has no usable answer. It takes the
# fields `acmelab` stores per certificate (`acmelab.state.ManagedCertificate`); here a
# stand-in with the same fields. Right after issuance, the renewed certificate is not due:

# %%
from types import SimpleNamespace

from acmelab.renewal import RenewalPolicy, refresh_ari

managed = SimpleNamespace(names=renewed.names, not_before=renewed_leaf.not_valid_before_utc,
                          not_after=renewed.not_after, directory_url=client.directory_url, key_type="ec256",
                          profile=renewed.profile, revoked=False, leaf=lambda: renewed_leaf)
policy, now = RenewalPolicy(), dt.datetime.now(dt.timezone.utc)
decision = policy.decide(managed, now, ari=refresh_ari(renewed.certificate_pem, None, client.renewal_info))
print("due:", decision.due)
print("why:", decision.reason)

# %% [markdown]
# Pebble's management API can set the answer for a certificate (`lab.set_renewal_info`; even
# a malformed one). We move the window into the past, as a CA would before revoking: the
# next check finds it, and the certificate is due at once, with `replaces` ready for the
# order:

# %%
lab = course.target().lab
if lab is None:
    print("(lab only: Pebble's management API)")
else:
    lab.set_renewal_info(renewed.certificate_pem, {
        "suggestedWindow": {"start": (now - dt.timedelta(days=2)).isoformat(),
                            "end": (now - dt.timedelta(days=1)).isoformat()},
        "explanationURL": "https://example.com/incident-report"})
    ari = refresh_ari(renewed.certificate_pem, None, client.renewal_info)  # None: ask now, not after Retry-After
    decision = policy.decide(managed, now, ari=ari)
    print("due:", decision.due)
    print("why:", decision.reason)
    print("replaces:", decision.replaces == cert_id(renewed_leaf), "| explanation:", ari.info.explanation_url)

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
# Who may revoke (§7.6)? Three parties: the **account that ordered** the certificate; whoever
# holds the **certificate's private key**; and **any account that holds valid authorizations
# for all the names** in the certificate — so the owner of a domain can revoke a certificate
# someone else got for it. We try the first two.
#
# Two throw-away certificates to revoke:

# %%
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
# * Ask the CA first: ARI's `renewalInfo/<certID>` gives a window (renew at a random moment in
#   it) and a `Retry-After`; without a usable answer, renew with a third of the lifetime left
#   (half under 10 days). The certID is AKI keyIdentifier `.` serial content octets (leading
#   `0x00` kept).
# * A renewal is a new order with a new key and `replaces: <certID>`; a certificate is replaced
#   once (`alreadyReplaced`). The CA can move the window into the past: check twice a day.
# * Revoke with the account key (`kid`) or the certificate's key (`jwk`), with a reason;
#   check the status; `alreadyRevoked` (and, at Let's Encrypt, `badRevocationReason`) are
#   typed errors.
# * `keyChange` rolls the account over to a new key: inner JWS by the new key inside an outer
#   JWS by the old one — routine rotation, not a remedy for a leak (the thief can roll over too).
# * Account key leaked: deactivate the account, create a new one, revoke certificates you did
#   not order. Certificate key leaked: revoke with `keyCompromise`, reissue with a new key.
#
# ## Exercises
#
# 1. Revoke `renewed` with `ReasonCode.superseded`, then check its status with
#    `lab.cert_status`. Which reasons does Pebble accept?
# 2. After the rollover, sign a request with the *old* key and `kid` set to the account URL
#    (`course.client(old_key, account_url=demo_account.url).fetch_account()`). What does the
#    CA answer?
# 3. Give Pebble a malformed answer for `renewed`
#    (`lab.set_renewal_info(renewed.certificate_pem, "not json {")`), refresh and decide again
#    as above. What does the policy fall back to? Check:
#    `assert not decision.due and "ARI unusable" in decision.reason`.
#
# **Previous:** [10 · PKCS#12 for IIS](10_pkcs12_for_iis.ipynb) · **Next:** [12 · Automate many services](12_automate_many_services.ipynb)
