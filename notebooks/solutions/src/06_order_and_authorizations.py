# %% [markdown]
# # 06 · Solutions: The order and its authorizations
#
# Worked answers to the exercises of
# [06 · The order and its authorizations](../06_order_and_authorizations.ipynb). Try each one
# yourself first; every answer below is computed against the lab, then handed to `check`.
#
# **Previous:** [05 · Solutions](05_account.ipynb) · **Next:** [07 · Solutions](07_dns_challenge.ipynb)

# %%
import requests

from acmelab import course, jws
from acmelab.exercises import check

client = course.account_client()  # the course's account (notebook 05)
client.deactivate_valid_authorizations(course.names())  # no valid one to reuse (notebook 06 says why)

# %% [markdown]
# ## 06.1 and 06.2 · A hand-made `newOrder`
#
# A `newOrder` for the course's two names, signed with `kid`, as in notebook 06. A fresh order
# is `pending` (its authorizations are not valid yet), and lists one authorization per
# identifier: two. (Nothing remembers this order; notebook 07 works on its own.)

# %%
payload = {"identifiers": [{"type": "dns", "value": name} for name in course.names()], "profile": "classic"}
body = jws.sign(payload, client.account_key, url=client.directory.newOrder, nonce=client.transport.new_nonce(),
                kid=client.account_url)
response = requests.post(client.directory.newOrder, json=body, headers={"Content-Type": "application/jose+json"},
                         verify=course.target().verify, timeout=10)
order_json = response.json()
print(response.status_code, order_json["status"], "|", len(order_json["authorizations"]), "authorizations")
check("06.1", order_json["status"])
check("06.2", len(order_json["authorizations"]))

# %% [markdown]
# ## 06.3 · The lifetime of a `tlsserver` certificate
#
# Issued for real with `profile="tlsserver"` and measured: 45 days, 1080 hours (Pebble's
# `notAfter` is one second short of the full period, hence the rounding).

# %%
from cryptography import x509

from acmelab.issue import issue_certificate

issued = issue_certificate([f"profile-demo.{course.target().domain}"], client=client, dns=course.dns_provider(),
                           profile="tlsserver")
leaf = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
hours = round((leaf.not_valid_after_utc - leaf.not_valid_before_utc).total_seconds() / 3600)
print(issued.profile, hours, "hours =", hours / 24, "days")
check("06.3", hours)

# %% [markdown]
# **Previous:** [05 · Solutions](05_account.ipynb) · **Next:** [07 · Solutions](07_dns_challenge.ipynb) · Back to [06 · The order and its authorizations](../06_order_and_authorizations.ipynb)
