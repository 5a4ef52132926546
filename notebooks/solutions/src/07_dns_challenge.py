# %% [markdown]
# # 07 · Solutions: The DNS challenge
#
# Worked answers to the exercises of [07 · The DNS challenge](../07_dns_challenge.ipynb). Try
# each one yourself first; every answer below is computed against the lab, then handed to
# `check`. Every TXT record published here is removed again, on every path.
#
# **Previous:** [06 · Solutions](06_order_and_authorizations.ipynb) · **Next:** [08 · Solutions](08_alibaba_signed_request.ipynb)

# %%
from acmelab import course
from acmelab.dns import propagation
from acmelab.exercises import check

client = course.account_client()   # the course's account (notebook 05)
alidns = course.dns_provider()
domain = course.target().domain
server = tuple(course.target().lab.dns_server)  # the lab's authoritative DNS

# %% [markdown]
# ## 07.1 · A name and its wildcard share one TXT name
#
# `example.com` and `*.example.com` get one authorization each, both for the identifier
# `example.com`, so both dns-01 values go to `_acme-challenge.example.com`: the name holds two
# TXT values at once. Cleaning up one removes exactly that one (by its `RecordId`); the other
# stays until its own cleanup.

# %%
client.deactivate_valid_authorizations([domain])  # two fresh authorizations, none reused (notebook 06)
order = client.new_order([domain, f"*.{domain}"], profile="classic")
authorizations = [client.fetch_authorization(url) for url in order.authorizations]
records = [(client.dns01_name(a), client.dns01_txt_value(a.challenge("dns-01"))) for a in authorizations]
published = []
try:
    for name, value in records:
        alidns.present(name, value)
        published.append((name, value))
        alidns.wait_until_visible(name, value, timeout=60)
    values, _ = propagation.txt_values(records[0][0], server)
    count = len(values)
    alidns.cleanup(*published.pop(0))
    left, _ = propagation.txt_values(records[0][0], server)
finally:
    for name, value in published:
        alidns.cleanup(name, value)
print("names:", sorted({name for name, _ in records}), "| values:", count,
      "| after one cleanup:", len(left), "| the other kept:", left == {records[1][1]})
for authorization in authorizations:   # we do not need this order: give it up
    client.deactivate_authorization(authorization.url)
check("07.1", count)

# %% [markdown]
# ## 07.2 · A wrong TXT value
#
# A fresh order; the record holds a value that is not the digest of the key authorization.
# The CA finds the record but no matching value: the challenge and the authorization become
# `invalid` with an `unauthorized` problem, and this order can never be finalized.

# %%
from acmelab.errors import ChallengeFailed

doomed_order = client.new_order([f"wrong.{domain}"], profile="classic")
doomed = client.fetch_authorization(doomed_order.authorizations[0])
name, value = client.dns01_name(doomed), "not-the-digest-of-the-key-authorization"
alidns.present(name, value)
try:
    alidns.wait_until_visible(name, value, timeout=60)
    client.answer_challenge(doomed.challenge("dns-01"))
    client.poll_authorization(doomed)
except ChallengeFailed as failure:
    error = failure
finally:
    alidns.cleanup(name, value)
print(type(error.problem).__name__, "| order:", client.fetch_order(doomed_order.url).status)
check("07.2", error)

# %% [markdown]
# ## 07.3 · The dns-account-01 label by hand
#
# The first 10 bytes of SHA-256 of the account URL, base32, lower case, without padding:
# 80 bits in 16 characters. Another account gets another label, so their records never collide.

# %%
import base64
import hashlib

from acmelab.challenges import account_label

my_label = base64.b32encode(hashlib.sha256(client.account_url.encode()).digest()[:10]).decode().lower().rstrip("=")
print(len(my_label), "characters | same as account_label():", my_label == account_label(client.account_url))
check("07.3", (my_label, client.account_url))

# %% [markdown]
# **Previous:** [06 · Solutions](06_order_and_authorizations.ipynb) · **Next:** [08 · Solutions](08_alibaba_signed_request.ipynb) · Back to [07 · The DNS challenge](../07_dns_challenge.ipynb)
