# %% [markdown]
# # 12 · Renewal and ARI
#
# **Goal:** decide **when to renew** — from the certificate's own dates, and by asking the CA
# (ACME Renewal Information, RFC 9773) — and renew with `replaces`, as the CA moves its window.
#
# **Needs:** the lab (started if needed), the course's account from
# [05](05_account.ipynb) and the certificate from [09](09_finalize_and_download.ipynb) (each
# made now if it is missing). Renewal uses throw-away certificates, so the course's own stays
# usable.
#
# **Previous:** [11 · PKCS#12 for IIS](11_pkcs12_for_iis.ipynb) · **Next:** [13 · Revocation and the account's life cycle](13_revocation_and_account_lifecycle.ipynb)

# %% [markdown]
# ## A certificate's life
#
# ```mermaid renewal-states
# stateDiagram-v2
#     direction LR
#     [*] --> valid: issued (notebook 09)
#     valid --> due: inside the CA's ARI window (or two thirds of the lifetime passed)
#     due --> replaced: renewed, new certificate installed
#     valid --> revoked: key leaked, names given up, issued in error
#     due --> expired: nobody renewed (an outage)
# ```

# %%
import datetime as dt

from acmelab import course, display

certificate = course.issued_certificate()  # notebook 09's certificate, or issued now
print("notebook 09's certificate:", course.relative(course.chain_path()))
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
# ```mermaid renewal-timeline
# gantt
#     accTitle: When to renew a 90-day classic certificate, with and without ARI
#     dateFormat YYYY-MM-DD
#     axisFormat %b %d
#     tickInterval 2week
#     todayMarker off
#     section certificate
#     valid from notBefore to notAfter       :done, cert, 2026-09-01, 90d
#     section without ARI
#     keep it for two thirds of the lifetime :keep, 2026-09-01, 60d
#     renew once a third is left             :active, after keep, 30d
#     section with ARI
#     GET renewalInfo, again after Retry-After :2026-09-01, 90d
#     suggestedWindow, renew inside it       :crit, 2026-10-30, 2d
#     the CA moved it earlier (an incident)  :crit, 2026-09-21, 1d
# ```
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
# links the two, and at Let's Encrypt a renewal ordered inside the suggested window (naming the
# old certificate with `replaces`) is exempt from the rate limits. To keep the course's certificate as it is, we renew a throw-away one;
# `issue_certificate` does the flow of notebooks 06–09 in one call (notebook 14):

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
# everywhere the old one is served (notebook 10), proving it with a handshake that shows the
# *new* serial. `acmelab apply` does all of that (notebook 14). Here we keep the renewed
# certificate in memory only.

# %% [markdown]
# ## Summary
#
# * Ask the CA first: ARI's `renewalInfo/<certID>` gives a window (renew at a random moment in
#   it) and a `Retry-After`; without a usable answer, renew with a third of the lifetime left
#   (half under 10 days). The certID is AKI keyIdentifier `.` serial content octets (leading
#   `0x00` kept).
# * A renewal is a new order with a new key and `replaces: <certID>`; a certificate is replaced
#   once (`alreadyReplaced`). The CA can move the window into the past: check twice a day.
# * At Let's Encrypt a renewal ordered inside the suggested window (naming the old certificate
#   with `replaces`) is exempt from the rate limits.
#
# ## Exercises
#
# 1. Compute the certID of RFC 9773's example by hand (AKI `69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4`,
#    serial `0x87654321`) and check it: `check("12.1", my_cert_id)`.
# 2. Give Pebble a malformed answer for `renewed`
#    (`lab.set_renewal_info(renewed.certificate_pem, "not json {")`), refresh and decide again
#    as above. What does the policy fall back to? Check:
#    `assert not decision.due and "ARI unusable" in decision.reason`.
# 3. A `shortlived` certificate lives 160 hours. When is it due without ARI? Hand in the hours
#    after issuance: `check("12.3", hours)`.

# %%
from acmelab.exercises import check

check("12.1", ...)  # the certID of RFC 9773's example
check("12.3", ...)  # hours after issuance

# %% [markdown]
# **Previous:** [11 · PKCS#12 for IIS](11_pkcs12_for_iis.ipynb) · **Next:** [13 · Revocation and the account's life cycle](13_revocation_and_account_lifecycle.ipynb)
