# %% [markdown]
# # 13 · Solutions: Revocation and the account's life cycle
#
# Worked answers to the exercises of
# [13 · Revocation and the account's life cycle](../13_revocation_and_account_lifecycle.ipynb).
# Try each one yourself first; every answer below is computed against the lab, then handed to
# `check` (or asserted). Only throw-away certificates and accounts are revoked or rolled over.
#
# **Previous:** [12 · Solutions](12_renewal_and_ari.ipynb) · **Next:** [14 · Solutions](14_automate_many_services.ipynb)

# %%
from acmelab import course, keys
from acmelab.client import ReasonCode
from acmelab.exercises import check

# %% [markdown]
# ## 13.1 · The reason for a leaked certificate key
#
# RFC 5280 §5.3.1 `keyCompromise` (1). Let's Encrypt then also blocks that key for future
# certificates.

# %%
print(ReasonCode.keyCompromise.name, int(ReasonCode.keyCompromise))
check("13.1", ReasonCode.keyCompromise)

# %% [markdown]
# ## 13.2 · The old key after a rollover
#
# After `keyChange` the account answers to the new key only. A request signed by the old key,
# with the account URL as `kid`, no longer verifies; Pebble refuses it with a problem document.

# %%
from acmelab.errors import AcmeProblem

old_key, new_key = keys.generate_key("ec256"), keys.generate_key("ec256")
demo = course.client(old_key)
demo_account = demo.new_account([])
demo.change_key(new_key)
try:
    course.client(old_key, account_url=demo_account.url).fetch_account()
except AcmeProblem as refused:
    error = refused
print(type(error).__name__, "| the new key still reads it:",
      course.client(new_key, account_url=demo_account.url).fetch_account().status)
check("13.2", type(error))

# %% [markdown]
# ## 13.3 · Revoked as `superseded`
#
# A throw-away certificate, revoked with the account key and reason `superseded` (a newer
# certificate replaced it); Pebble's management API then reports it `Revoked`, with the reason.

# %%
from acmelab.issue import issue_certificate

client = course.account_client()
throwaway = issue_certificate([f"superseded.{course.target().domain}"], client=client, dns=course.dns_provider())
client.revoke_certificate(throwaway.certificate_pem, reason=ReasonCode.superseded)
answer = course.lab().cert_status(throwaway.serial_hex)
status = answer["Status"]
assert status == "Revoked"
print(status, ReasonCode(answer["Reason"]).name)

# %% [markdown]
# **Previous:** [12 · Solutions](12_renewal_and_ari.ipynb) · **Next:** [14 · Solutions](14_automate_many_services.ipynb) · Back to [13 · Revocation and the account's life cycle](../13_revocation_and_account_lifecycle.ipynb)
