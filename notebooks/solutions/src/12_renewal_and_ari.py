# %% [markdown]
# # 12 · Solutions: Renewal and ARI
#
# Worked answers to the exercises of [12 · Renewal and ARI](../12_renewal_and_ari.ipynb). Try
# each one yourself first; every answer below is computed, then handed to `check` (or
# asserted).
#
# **Previous:** [11 · Solutions](11_pkcs12_for_iis.ipynb) · **Next:** [13 · Solutions](13_revocation_and_account_lifecycle.ipynb)

# %%
import datetime as dt

from acmelab import course
from acmelab.exercises import check
from acmelab.jws import b64url

# %% [markdown]
# ## 12.1 · The certID of RFC 9773's example
#
# base64url of the Authority Key Identifier's keyIdentifier, a dot, base64url of the serial's
# DER INTEGER content octets. `0x87654321` has its top bit set, so DER puts a `0x00` in front
# (else it would read as negative): the content octets are `00 87 65 43 21`, `AIdlQyE`.

# %%
aki = bytes.fromhex("69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4".replace(":", ""))
serial = 0x87654321
content_octets = serial.to_bytes(serial.bit_length() // 8 + 1, "big")   # + 1: room for the sign bit
my_cert_id = f"{b64url(aki)}.{b64url(content_octets)}"
print(content_octets.hex(" "), "->", my_cert_id)
check("12.1", my_cert_id)

# %% [markdown]
# ## 12.2 · A malformed ARI answer
#
# A throw-away certificate, and Pebble told to answer garbage for its `renewalInfo`.
# `refresh_ari` keeps the error instead of raising, and the policy falls back on the lifetime
# rule (and logs a warning): a fresh certificate is not due, and the reason says the ARI answer was
# unusable.

# %%
import logging
from types import SimpleNamespace

from cryptography import x509

from acmelab.issue import issue_certificate
from acmelab.renewal import RenewalPolicy, refresh_ari

client = course.account_client()
renewed = issue_certificate([f"ari-demo.{course.target().domain}"], client=client, dns=course.dns_provider())
leaf = x509.load_pem_x509_certificate(renewed.certificate_pem.encode())
managed = SimpleNamespace(names=renewed.names, not_before=leaf.not_valid_before_utc, not_after=renewed.not_after,
                          directory_url=client.directory_url, key_type="ec256", profile=renewed.profile,
                          revoked=False, leaf=lambda: leaf)
course.lab().set_renewal_info(renewed.certificate_pem, "not json {")
logging.getLogger("acmelab.renewal").setLevel(logging.ERROR)  # its warning names the certID: not shown here
ari = refresh_ari(renewed.certificate_pem, None, client.renewal_info)
logging.getLogger("acmelab.renewal").setLevel(logging.NOTSET)
decision = RenewalPolicy().decide(managed, dt.datetime.now(dt.timezone.utc), ari=ari)
assert not decision.due and "ARI unusable" in decision.reason
print("due:", decision.due, "| falls back on the lifetime rule:", "ARI unusable" in decision.reason)

# %% [markdown]
# ## 12.3 · When a 160-hour certificate is due without ARI
#
# Let's Encrypt's advice, which `RenewalThreshold` follows: renew with a third of the lifetime
# left, but at half-life for lifetimes under 10 days. 160 hours is under 10 days: due 80 hours
# after issuance.

# %%
from acmelab.renewal import RenewalThreshold

issued_at = dt.datetime(2026, 7, 1, tzinfo=dt.timezone.utc)
due_at = RenewalThreshold().renew_after(issued_at, issued_at + dt.timedelta(hours=160))
hours = (due_at - issued_at).total_seconds() / 3600
print(hours, "hours after issuance")
check("12.3", hours)

# %% [markdown]
# **Previous:** [11 · Solutions](11_pkcs12_for_iis.ipynb) · **Next:** [13 · Solutions](13_revocation_and_account_lifecycle.ipynb) · Back to [12 · Renewal and ARI](../12_renewal_and_ari.ipynb)
