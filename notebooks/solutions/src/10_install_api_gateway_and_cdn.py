# %% [markdown]
# # 10 · Solutions: Install on API Gateway and CDN
#
# Worked answers to the exercises of
# [10 · Install on API Gateway and CDN](../10_install_api_gateway_and_cdn.ipynb). Try each one
# yourself first; every answer below is computed against the lab, then handed to `check`.
#
# **Previous:** [09 · Solutions](09_finalize_and_download.ipynb) · **Next:** [11 · Solutions](11_pkcs12_for_iis.ipynb)

# %%
from acmelab import course, deploy, display
from acmelab.exercises import check

certificate = course.issued_certificate()  # notebook 09's certificate, or issued now
aliyun = course.aliyun_client()
api_domain, cdn_domain = course.names()

# %% [markdown]
# ## 10.1 · A chain in the wrong order
#
# The intermediate first, then the leaf: `check_certificate` runs before anything is sent and
# refuses with `InputError` (a `DeployError` would have come from the service). The recorder
# shows that no request left the machine.

# %%
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from acmelab.errors import AcmelabError

blocks = x509.load_pem_x509_certificates(certificate.chain_pem.encode())
reversed_pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in reversed(blocks))
with display.AliyunCalls(aliyun) as calls:
    try:
        deploy.set_cdn_domain_ssl_certificate(aliyun, cdn_domain, reversed_pem, certificate.private_key)
    except AcmelabError as refused:
        error = refused
print(type(error).__name__, "| requests sent:", len(calls.requests))
check("10.1", type(error))

# %% [markdown]
# ## 10.2 and 10.3 · The actions that install a certificate
#
# We install the course's certificate again (the same one: nothing changes for the visitors) and
# read the action of every request the SDK sent: CDN API 2018-05-10 `SetCdnDomainSSLCertificate`
# (not the deprecated `SetDomainServerCertificate`), CloudAPI 2016-07-14 `SetDomainCertificate`.

# %%
with display.AliyunCalls(aliyun) as cdn_calls:
    deploy.set_cdn_domain_ssl_certificate(aliyun, cdn_domain, certificate.chain_pem, certificate.private_key)
with display.AliyunCalls(aliyun) as api_calls:
    deploy.set_domain_certificate(aliyun, course.api_group_id(), api_domain, certificate.chain_pem,
                                  certificate.private_key)
for calls in (cdn_calls, api_calls):
    print([(r.get_product(), r.get_version(), r.get_action_name()) for r in calls.requests])
cdn_action = next(r.get_action_name() for r in cdn_calls.requests if r.get_action_name().startswith("Set"))
api_action = next(r.get_action_name() for r in api_calls.requests if r.get_action_name().startswith("Set"))
check("10.2", cdn_action)
check("10.3", api_action)

# %% [markdown]
# **Previous:** [09 · Solutions](09_finalize_and_download.ipynb) · **Next:** [11 · Solutions](11_pkcs12_for_iis.ipynb) · Back to [10 · Install on API Gateway and CDN](../10_install_api_gateway_and_cdn.ipynb)
