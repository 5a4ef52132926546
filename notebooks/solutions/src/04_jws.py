# %% [markdown]
# # 04 · Solutions: JWS, signing a request
#
# Worked answers to the exercises of [04 · JWS: signing a request](../04_jws.ipynb). Try each
# one yourself first; every answer below is computed against the lab, then handed to `check`.
#
# **Previous:** [03 · Solutions](03_directory_and_nonces.ipynb) · **Next:** [05 · Solutions](05_account.ipynb)

# %%
import requests

from acmelab import course, jws, keys
from acmelab.exercises import check

target = course.target()
session = requests.Session()
directory = session.get(target.directory_url, verify=target.verify, timeout=10).json()


def post(url: str, body: dict) -> requests.Response:
    return session.post(url, json=body, headers={"Content-Type": "application/jose+json"},
                        verify=target.verify, timeout=10)


def fresh_nonce() -> str:
    return session.head(directory["newNonce"], verify=target.verify, timeout=10).headers["Replay-Nonce"]

# %% [markdown]
# ## 04.1 · A `url` that is not the URL posted to
#
# We sign a `newAccount` request whose protected `url` names `newOrder`, and POST it to
# `newAccount`. RFC 8555 §6.4: the server must reject it; Pebble answers `malformed`.

# %%
account_key = keys.generate_key("ec256")  # a throw-away account key
body = jws.sign({"termsOfServiceAgreed": True}, account_key, url=directory["newOrder"], nonce=fresh_nonce())
answer = post(directory["newAccount"], body)
print(answer.status_code, answer.json()["type"])
check("04.1", answer.json()["type"])

# %% [markdown]
# ## 04.2 · The `alg` of an RSA key
#
# RSASSA-PKCS1-v1_5 with SHA-256 is `RS256` (RFC 7518 §3.1); `jws.sign` puts it in the header:

# %%
rsa_key = keys.generate_key("rsa2048")
alg = jws.verify(jws.sign({}, rsa_key, url=directory["newAccount"], nonce="n"), rsa_key)["protected"]["alg"]
print(alg)
check("04.2", alg)

# %% [markdown]
# ## 04.3 · POST-as-GET with `jwk` instead of `kid`
#
# Only `newAccount` and revocation by certificate key take a `jwk` (§6.2); every other request
# must name the account by `kid`. We create the throw-away account, then read it signed with
# the `jwk` (no `kid` given):

# %%
created = post(directory["newAccount"], jws.sign({"termsOfServiceAgreed": True}, account_key,
                                                 url=directory["newAccount"], nonce=fresh_nonce()))
account_url = created.headers["Location"]
answer = post(account_url, jws.sign(None, account_key, url=account_url, nonce=created.headers["Replay-Nonce"]))
print(created.status_code, "then", answer.status_code, answer.json()["type"])
check("04.3", answer.json()["type"])

# %% [markdown]
# **Previous:** [03 · Solutions](03_directory_and_nonces.ipynb) · **Next:** [05 · Solutions](05_account.ipynb) · Back to [04 · JWS: signing a request](../04_jws.ipynb)
