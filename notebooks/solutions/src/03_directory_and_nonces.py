# %% [markdown]
# # 03 · Solutions: The directory and nonces
#
# Worked answers to the exercises of [03 · The directory and nonces](../03_directory_and_nonces.ipynb).
# Try each one yourself first; every answer below is computed, then handed to `check`.
#
# **Previous:** [02 · Solutions](02_certificate_key_and_csr.ipynb) · **Next:** [04 · Solutions](04_jws.ipynb)

# %%
import requests

from acmelab import course
from acmelab.exercises import check

target = course.target()
session = requests.Session()
directory = session.get(target.directory_url, verify=target.verify, timeout=10).json()

# %% [markdown]
# ## 03.1 · Lifetimes by profile, offline
#
# As of 2026: `classic` 90 days, `tlsserver` 45 days (since 2026-05-13), `shortlived`
# 160 hours. The lab configures its Pebble with exactly these lifetimes
# (`acmelab.lab.pebble.LETSENCRYPT_PROFILES`, in seconds), so we read them from there:

# %%
from acmelab.lab.pebble import LETSENCRYPT_PROFILES

days = {name: seconds / 86400 for name, (_, seconds) in LETSENCRYPT_PROFILES.items()}
print({name: round(value, 2) for name, value in days.items()})
check("03.1", days)

# %% [markdown]
# ## 03.2 · Two nonces
#
# Each `HEAD newNonce` brings a new `Replay-Nonce`. Nonces never repeat because the server
# accepts each one exactly once: a captured request signed with a used nonce cannot be
# replayed.

# %%
first, second = (session.head(directory["newNonce"], verify=target.verify, timeout=10).headers["Replay-Nonce"]
                 for _ in range(2))
print("different:", first != second)
check("03.2", (first, second))

# %% [markdown]
# ## 03.3 · What `GET newNonce` must answer
#
# RFC 8555 §7.2: `HEAD` SHOULD answer `200 OK`, `GET` MUST answer `204 No Content`. Asked:

# %%
get = session.get(directory["newNonce"], verify=target.verify, timeout=10)
print(get.status_code, get.reason)
check("03.3", get.status_code)

# %% [markdown]
# **Previous:** [02 · Solutions](02_certificate_key_and_csr.ipynb) · **Next:** [04 · Solutions](04_jws.ipynb) · Back to [03 · The directory and nonces](../03_directory_and_nonces.ipynb)
