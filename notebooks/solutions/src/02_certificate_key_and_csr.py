# %% [markdown]
# # 02 · Solutions: The certificate key and the CSR
#
# Worked answers to the exercises of
# [02 · The certificate key and the CSR](../02_certificate_key_and_csr.ipynb). Try each one
# yourself first; every answer below is computed, then handed to `check`.
#
# **Previous:** [01 · Solutions](01_account_key.ipynb) · **Next:** [03 · Solutions](03_directory_and_nonces.ipynb)

# %%
from acmelab import course, keys
from acmelab.csr import inspect_csr, make_csr
from acmelab.exercises import check

# %% [markdown]
# ## 02.1 · A CSR with an RSA key
#
# The same `make_csr`, with an `rsa2048` key: the request now carries an RSA public key and is
# signed with `sha256WithRSAEncryption`; names and structure are unchanged.

# %%
rsa_csr = make_csr(keys.generate_key("rsa2048"), course.names())
info = inspect_csr(rsa_csr)
print(info.key_type, "|", info.names, "| signature valid:", info.signature_valid)
check("02.1", rsa_csr)

# %% [markdown]
# ## 02.2 · A first name over 64 characters
#
# X.520 limits a common name to 64 characters (`ub-common-name`), so `make_csr` leaves the
# subject empty and keeps the long name in the SAN, where every name counts anyway.

# %%
long_name = "a" * 60 + ".example.com"
long_csr = make_csr(keys.generate_key("ec256"), [long_name, "api.example.com"])
info = inspect_csr(long_csr)
print(len(long_name), "characters | common name:", repr(info.common_name), "| in the SAN:", long_name in info.names)
check("02.2", long_csr)

# %% [markdown]
# ## 02.3 · What `*.example.com` does not cover
#
# A wildcard stands for exactly one whole leftmost label (RFC 6125 §6.4.3): `api.example.com`
# yes; the base name `example.com` and the two-labels-deeper `v1.api.example.com` no.
# `acmelab.deploy.checks.name_matches` is the rule the deploy checks use:

# %%
from acmelab.deploy.checks import name_matches

candidates = ["example.com", "api.example.com", "v1.api.example.com"]
not_covered = {name for name in candidates if not name_matches("*.example.com", name)}
print(sorted(not_covered))
check("02.3", not_covered)

# %% [markdown]
# **Previous:** [01 · Solutions](01_account_key.ipynb) · **Next:** [03 · Solutions](03_directory_and_nonces.ipynb) · Back to [02 · The certificate key and the CSR](../02_certificate_key_and_csr.ipynb)
