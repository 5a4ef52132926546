# %% [markdown]
# # 05 · Solutions: The account
#
# Worked answers to the exercises of [05 · The account](../05_account.ipynb). Try each one
# yourself first; every answer below is computed against the lab, then handed to `check`.
#
# **Previous:** [04 · Solutions](04_jws.ipynb) · **Next:** [06 · Solutions](06_order_and_authorizations.ipynb)

# %%
from acmelab import course, display, keys
from acmelab.exercises import check

# %% [markdown]
# ## 05.1 · `newAccount` twice for one key
#
# The first `newAccount` creates the account (`201 Created`); the second finds it
# (`200 OK`, same `Location`): one key, one account.

# %%
fresh = course.client(keys.generate_key("ec256"))
with display.Wire(fresh, only=[fresh.directory.newAccount]) as wire:
    first = fresh.new_account([])
    second = fresh.new_account([])
statuses = tuple(response.status_code for response in wire.exchanges)
print(statuses, "| same account:", first.url == second.url)
check("05.1", statuses)

# %% [markdown]
# ## 05.2 · Removing every contact
#
# `update_account([])` replaces the contact list with an empty one. Pebble stores and echoes
# contacts; Let's Encrypt keeps none at all since mid-2025.

# %%
demo = course.client(keys.generate_key("ec256"))
demo.new_account(["mailto:admin@example.com"])
account = demo.update_account([])
print("contact:", list(account.contact))
check("05.2", account.contact)

# %% [markdown]
# ## 05.3 · A CA that requires External Account Binding
#
# A second, throw-away lab (free ports, no Alibaba endpoint) whose Pebble requires EAB. A
# `newAccount` without the binding is refused with `externalAccountRequired` (RFC 8555
# §7.3.4); the MAC key is made up and never printed.

# %%
from acmelab import jws
from acmelab.client import AcmeClient
from acmelab.errors import AcmeProblem
from acmelab.lab import Lab, LabPorts

mac_key = jws.b64url(b"a MAC key handed out by the CA!!")
with Lab(None, ports=LabPorts.free(), eab_keys={"kid-1": mac_key}, aliyun=False) as info:
    strict = AcmeClient(info.directory_url, keys.generate_key("ec256"), verify=info.ca_bundle)
    print("externalAccountRequired in meta:", strict.directory.meta.get("externalAccountRequired"))
    try:
        strict.new_account([])
    except AcmeProblem as problem:
        error = problem
print(type(error).__name__, "->", error.name)
check("05.3", error)

# %% [markdown]
# **Previous:** [04 · Solutions](04_jws.ipynb) · **Next:** [06 · Solutions](06_order_and_authorizations.ipynb) · Back to [05 · The account](../05_account.ipynb)
