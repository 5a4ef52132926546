# %% [markdown]
# # 09 · Solutions: Finalize and download
#
# Worked answers to the exercises of [09 · Finalize and download](../09_finalize_and_download.ipynb).
# Try each one yourself first; every answer below is computed against the lab, then handed to
# `check`.
#
# **Previous:** [08 · Solutions](08_alibaba_signed_request.ipynb) · **Next:** [10 · Solutions](10_install_api_gateway_and_cdn.ipynb)

# %%
from acmelab import course, display
from acmelab.exercises import check

client = course.account_client()   # the course's account (notebook 05)

# %% [markdown]
# ## 09.1 · Finalizing with a CSR for other names
#
# The client compares the CSR's names with the order's identifiers before it signs anything,
# and refuses with `InputError`: nothing reached the CA (the wire stays empty), and the order is
# still `ready` for the right CSR.

# %%
from acmelab.errors import InputError

ready = course.ready_order(client)
with display.Wire(client) as wire:
    try:
        client.finalize(ready, course.csr("other", [f"www.{course.target().domain}"]))
    except InputError as refused:
        error = refused
print(type(error).__name__, "| requests sent:", len(wire.exchanges), "| order:", client.fetch_order(ready.url).status)
check("09.1", error)

# %% [markdown]
# ## 09.2 · The `Link` headers of the download
#
# A POST-as-GET to the course certificate's URL, by hand. Pebble sends `rel="alternate"` (the
# other chain, RFC 8555 §7.4.2) and `rel="index"` (the directory); a CA may add `rel="up"` for
# the issuer's certificate (Pebble does not).

# %%
import requests

from acmelab import jws

certificate = course.issued_certificate()   # notebook 09's certificate, or issued now
certificate_url = client.fetch_order(certificate.order_url).certificate
body = jws.sign(None, client.account_key, url=certificate_url, nonce=client.transport.new_nonce(),
                kid=client.account_url)
download = requests.post(certificate_url, json=body, headers={"Content-Type": "application/jose+json"},
                         verify=course.target().verify, timeout=10)
rels = {link["rel"] for link in requests.utils.parse_header_links(download.headers["Link"])}
print(download.status_code, sorted(rels))
check("09.2", rels)

# %% [markdown]
# ## 09.3 · What Pebble knows about the certificate
#
# Pebble's management API looks a certificate up by its serial (hex): `Valid`, until notebook
# 13 revokes one of its own throw-away certificates (never this one).

# %%
status = course.lab().cert_status(certificate.serial_hex)["Status"]
print(status)
check("09.3", status)

# %% [markdown]
# **Previous:** [08 · Solutions](08_alibaba_signed_request.ipynb) · **Next:** [10 · Solutions](10_install_api_gateway_and_cdn.ipynb) · Back to [09 · Finalize and download](../09_finalize_and_download.ipynb)
