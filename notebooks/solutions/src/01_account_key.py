# %% [markdown]
# # 01 · Solutions: The account key
#
# Worked answers to the exercises of [01 · The account key](../01_account_key.ipynb). Try
# each one yourself first; every answer below is computed, then handed to `check`.
#
# **Previous:** [00 · Solutions](00_start_here.ipynb) · **Next:** [02 · Solutions](02_certificate_key_and_csr.ipynb)

# %%
from acmelab import course, keys
from acmelab.exercises import check

# %% [markdown]
# ## 01.1 · An RSA thumbprint by hand
#
# RFC 7638 §3.2: an RSA JWK's required members are `e`, `kty` and `n`. Each integer is
# base64url of its big-endian bytes (no leading zeros); the members go in sorted order, without
# whitespace; SHA-256 of that JSON, base64url without padding, is the thumbprint.

# %%
import hashlib
import json

from acmelab.jws import b64url

rsa_key = keys.generate_key("rsa2048")
numbers = rsa_key.public_key().public_numbers()


def member(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


canonical = json.dumps({"e": member(numbers.e), "kty": "RSA", "n": member(numbers.n)},
                       separators=(",", ":"), sort_keys=True)
my_thumbprint = b64url(hashlib.sha256(canonical.encode()).digest())
print(canonical[:29] + "…")
print("same as keys.thumbprint():", my_thumbprint == keys.thumbprint(rsa_key))
check("01.1", (rsa_key, my_thumbprint))

# %% [markdown]
# ## 01.2 · Saving over the course's account key
#
# The file exists, so `save_private_key` refuses with `KeyExistsError` and writes nothing.
# `overwrite=True` is for a key you have backed up first — or one whose account you have
# deactivated and whose certificates you have revoked.

# %%
from acmelab.errors import KeyExistsError

before = course.account_key_path().read_bytes()
try:
    keys.save_private_key(course.account_key(), course.account_key_path())
except KeyExistsError as error:
    caught = error
print(type(caught).__name__, "| the file is unchanged:", course.account_key_path().read_bytes() == before)
check("01.2", type(caught))

# %% [markdown]
# ## 01.3 · Which key signs `newOrder`
#
# The account key signs every ACME request (the `kid` in its header names the account). The
# certificate key signs only the CSR, so a thief with a copy of it can use that one
# certificate, but cannot order new ones — that takes the account key and a fresh proof of
# control of the names.

# %%
check("01.3", "account")

# %% [markdown]
# **Previous:** [00 · Solutions](00_start_here.ipynb) · **Next:** [02 · Solutions](02_certificate_key_and_csr.ipynb) · Back to [01 · The account key](../01_account_key.ipynb)
