# %% [markdown]
# # 11 · Solutions: PKCS#12 for IIS
#
# Worked answers to the exercises of [11 · PKCS#12 for IIS](../11_pkcs12_for_iis.ipynb). Try
# each one yourself first; every answer below is computed, then handed to `check` (or
# asserted).
#
# **Previous:** [10 · Solutions](10_install_api_gateway_and_cdn.ipynb) · **Next:** [12 · Solutions](12_renewal_and_ari.ipynb)

# %%
import secrets

from acmelab import course, pkcs12
from acmelab.exercises import check

certificate = course.issued_certificate()  # notebook 09's certificate, or issued now

# %% [markdown]
# ## 11.1 · An empty password
#
# An empty password would leave the private key in the file unprotected, so `export_pkcs12`
# refuses with `InputError`. `unencrypted=True` says that on purpose — for a file that never
# leaves a protected place.

# %%
from acmelab.errors import InputError

try:
    pkcs12.export_pkcs12(certificate.private_key, certificate.chain_pem, password="")
except InputError as refused:
    error = refused
print(type(error).__name__, "->", error)
check("11.1", type(error))

# %% [markdown]
# ## 11.2 · The oldest Windows Server for AES-256/PBES2 files
#
# Windows Server 2019 (and Windows 10 1709) import the `modern` profile; Windows Server 2016
# and older need `profile="legacy"` (3DES, SHA-1 MAC), or they report a misleading "The
# specified network password is not correct".

# %%
check("11.2", 2019)

# %% [markdown]
# ## 11.3 · The alternate chain in a `.pfx`
#
# The certificate URL offers the same leaf with another intermediate, leading to the other
# root. Exported into a bundle each (in memory, with a throw-away password), their top
# certificates name different issuers. A Windows server needs the alternate one when its
# clients trust only that root — IIS then also needs that root in the Windows store.

# %%
client = course.account_client()
chains = client.download_certificate_chains(client.fetch_order(certificate.order_url))
password = secrets.token_urlsafe(16)
default_bundle, bundle = (pkcs12.load_pkcs12(pkcs12.export_pkcs12(certificate.private_key, chain.pem,
                                                                  password=password), password=password)
                          for chain in (chains[0], chains[-1]))
assert bundle.chain[-1].issuer != default_bundle.chain[-1].issuer
print("chains offered:", len(chains), "| same leaf:", bundle.serial_hex == default_bundle.serial_hex,
      "| different roots above them:", bundle.chain[-1].issuer != default_bundle.chain[-1].issuer)

# %% [markdown]
# **Previous:** [10 · Solutions](10_install_api_gateway_and_cdn.ipynb) · **Next:** [12 · Solutions](12_renewal_and_ari.ipynb) · Back to [11 · PKCS#12 for IIS](../11_pkcs12_for_iis.ipynb)
