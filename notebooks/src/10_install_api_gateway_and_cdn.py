# %% [markdown]
# # 10 · Install on API Gateway and CDN
#
# **Goal:** put the course's certificate where clients meet it — an **Alibaba Cloud CDN**
# accelerated domain (`cdn.example.com`) and an **API Gateway** custom domain
# (`api.example.com`) — and then *prove* it is served, with a TLS handshake that validates the
# chain up to the CA's root.
#
# **Needs:** the lab (started if needed) and the certificate from
# [09](09_finalize_and_download.ipynb) (issued now, in one call, if it is missing or came from
# an earlier lab).
#
# **Previous:** [09 · Finalize and download](09_finalize_and_download.ipynb) · **Next:** [11 · PKCS#12 for IIS](11_pkcs12_for_iis.ipynb)

# %% [markdown]
# ## The picture
#
# Neither service runs our code, so we cannot install a certificate file on a server. Each one
# has an API action that takes the certificate chain and its private key; from then on, its TLS
# edge answers handshakes for that domain (chosen by SNI, the name the client asks for) with our
# chain.
#
# ```mermaid deploy-checks
# flowchart LR
#     files["fullchain.pem + privkey.pem<br/>(notebook 09)"] --> check["pre-send checks<br/>key matches, chain order,<br/>dates, names"]
#     check -->|"SetCdnDomainSSLCertificate<br/>(CDN 2018-05-10)"| cdn["CDN edge<br/>cdn.example.com"]
#     check -->|"SetDomainCertificate<br/>(CloudAPI 2016-07-14)"| gw["API Gateway edge<br/>api.example.com"]
#     cdn -.->|"TLS handshake, SNI cdn.example.com"| proof["verify(): chain valid to the root,<br/>serial = ours"]
#     gw -.->|"TLS handshake, SNI api.example.com"| proof
# ```

# %%
from acmelab import course, deploy, display

certificate = course.issued_certificate()  # notebook 09's certificate, or issued now
print("notebook 09's certificate:", course.relative(course.chain_path()))
display.certificate(certificate.certificate_pem, title="the course's certificate")

# %% [markdown]
# ## Check before sending
#
# Installing a certificate that cannot work breaks a live site, and a refused upload has
# already sent the private key across the network. So every install first runs
# `deploy.check_certificate`: the key must match the leaf, the chain must be in order (each
# certificate signed by the next), the certificate must be valid now, and it must cover the
# domain. If any check fails, nothing is sent:

# %%
names = course.names()           # ["api.<domain>", "cdn.<domain>"]
api_domain, cdn_domain = names
checked = deploy.check_certificate(certificate.chain_pem, certificate.private_key, cdn_domain)
print("domain:      ", checked.domain)
print("covers:      ", ", ".join(checked.names))
print("chain length:", len(checked.chain))
print("serial:      ", checked.serial_hex)

# %% [markdown]
# Two uploads that would be refused — a domain the certificate does not cover, and the key of
# another certificate:

# %%
from acmelab import keys
from acmelab.errors import InputError

for domain, key in ((f"static.{course.target().domain}", certificate.private_key),
                    (cdn_domain, keys.generate_key("ec256"))):
    try:
        deploy.check_certificate(certificate.chain_pem, key, domain)
    except InputError as error:
        print(f"{domain}: {error}\n")

# %% [markdown]
# ## The Alibaba Cloud client
#
# Both services are called through the same signed RPC client as Alibaba Cloud DNS in
# notebook 07 (`acmelab.aliyun.AliyunClient` on the official SDK). In the lab it points at the
# lab's endpoint with the lab's access key; with a real account it uses
# `ALIBABA_CLOUD_ACCESS_KEY_ID` / `ALIBABA_CLOUD_ACCESS_KEY_SECRET` and Alibaba's public
# endpoints (`cdn.aliyuncs.com`, `apigateway.<region>.aliyuncs.com`).
#
# The certificate and the key travel in the **POST body** of the request, never in the URL:
# URLs end up in proxy logs and access logs. The signature (HMAC-SHA1 with the access key
# secret) covers the body parameters too.
#
# | action | in the query string | in the POST body |
# |---|---|---|
# | CDN `SetCdnDomainSSLCertificate` | `DomainName`, `SSLProtocol=on`, `CertType=upload`, `CertName` | `SSLPub` (full chain PEM), `SSLPri` (key PEM) |
# | API Gateway `SetDomainCertificate` | `GroupId`, `DomainName`, `CertificateName` | `CertificateBody` (full chain PEM), `CertificatePrivateKey` (key PEM) |

# %%
aliyun = course.aliyun_client()
print("region:", aliyun.region_id)
print("endpoint:", aliyun.endpoint or "Alibaba Cloud's public endpoints")

# %% [markdown]
# ## Install on the CDN domain
#
# `cdn.example.com` is an accelerated domain of the (lab) account. One call uploads the chain
# and key and switches HTTPS on; the API answers with just a `RequestId`.
# `display.AliyunCalls` records the request the SDK is handed, so we can look at it next:

# %%
with display.AliyunCalls(aliyun) as calls:
    cdn_installation = deploy.set_cdn_domain_ssl_certificate(aliyun, cdn_domain, certificate.chain_pem,
                                                              certificate.private_key)
print("product:", cdn_installation.product)
print("domain: ", cdn_installation.domain)
print("serial: ", cdn_installation.serial_hex)

# %% [markdown]
# The request on the wire, redacted: the names in the query string, the chain and the key in
# the form body. `SSLPri` is the private key — it is never shown, here or anywhere:

# %%
display.aliyun_request(calls.requests[0], redact=("SSLPri",))

# %% [markdown]
# CDN tells what it now has configured with `DescribeDomainCertificateInfo` — the chain and the
# dates, never the key:

# %%
answer = aliyun.call("DescribeDomainCertificateInfo", "2018-05-10", {"DomainName": cdn_domain}, product="Cdn")
info = answer["CertInfos"]["CertInfo"][0]
for field in ("DomainName", "ServerCertificateStatus", "CertType", "CertDomainName", "CertOrg", "CertExpireTime"):
    print(f"{field:24} {info[field]}")

# %% [markdown]
# ## Install on the API Gateway domain
#
# On API Gateway, a custom domain belongs to an **API group**; `SetDomainCertificate` needs the
# group's `GroupId` (in the lab, the group `acmelab_shop`; with your account, set
# `ACMELAB_API_GROUP_ID`). The domain must already be bound to the group (`SetDomain`), its
# DNS must be a CNAME to the group's own subdomain (`<GroupId>-<region>.alicloudapi.com`), and
# API Gateway's regional endpoint is the one of the group's region.
#
# Outside the lab, one prerequisite is not technical: a custom domain served by CDN or API
# Gateway in a **mainland-China** region needs an **ICP filing** (备案) for the domain before
# Alibaba Cloud accepts it. Regions outside mainland China (e.g. Singapore) do not.

# %%
api_installation = deploy.set_domain_certificate(aliyun, course.api_group_id(), api_domain,
                                                 certificate.chain_pem, certificate.private_key)
print("product:", api_installation.product)
print("domain: ", api_installation.domain)
print("serial: ", api_installation.serial_hex)

# %% [markdown]
# ## Prove it: a TLS handshake
#
# An API that answered "OK" proves only that the upload was accepted. The proof is a client
# completing a handshake with the service and seeing *our* certificate: `deploy.verify`
# connects, sends SNI, lets OpenSSL validate the served chain against the root we trust — in the
# lab, Pebble's roots, since that CA signed our certificate — checks the name, and compares the
# serial with ours. In the lab each service's edge listens on a loopback port; for real
# services it is `<domain>:443`, with Let's Encrypt's staging roots (shipped with acmelab,
# `course.trust_roots()` when `ACMELAB_ACME=staging`) or, for production, the system's trust
# store.

# %%
edges = {cdn_domain: course.handshake_address("cdn", cdn_domain),            # the lab's edges on loopback,
         api_domain: course.handshake_address("apigateway", api_domain)}     # <domain>:443 for real
served = {}
for domain, (host, port) in edges.items():
    served[domain] = deploy.verify(domain, host=host, port=port, root_pem=course.trust_roots(),
                                   expected_serial_hex=certificate.serial_hex)
    print(f"{domain}: {served[domain].protocol}, serial: {served[domain].serial_hex}")

# %% [markdown]
# What the CDN edge sent, and the path OpenSSL built from it — the server sends leaf and
# intermediate, the root comes from our trust store:

# %%
result = served[cdn_domain]
display.table([[depth, subject] for depth, subject in enumerate(result.chain_subjects)],
              header=["served", "subject"])

# %%
display.table([[depth, subject] for depth, subject in enumerate(result.verified_chain_subjects)],
              header=["verified path", "subject"])

# %% [markdown]
# ## When the proof fails
#
# `verify` raises `DeployError` with the reason. Two common ones: asking for a domain the edge
# has no certificate for (the TLS alert `unrecognized_name`) — `cdn.example.org` is a second
# CDN domain of the lab account, in another zone, that never got a certificate — and a chain
# that does not lead to a root we trust: here we trust only the lab's own listener CA, not
# Pebble's root. (Outside the lab there is no such second CA, `wrong_roots` is then
# `course.trust_roots()` and that second check passes instead of failing.)

# %%
from acmelab.errors import DeployError

other = "cdn.example.org"    # a CDN domain of the lab account without a certificate
lab = course.target().lab
wrong_roots = lab.ca_bundle.read_text() if lab else course.trust_roots()
host, port = edges[cdn_domain]
for domain, roots in ((other, course.trust_roots()), (cdn_domain, wrong_roots)):
    try:
        deploy.verify(domain, host=host, port=port, root_pem=roots)
    except DeployError as error:
        print(f"{domain}: {error}\n")

# %% [markdown]
# ## Summary
#
# * CDN: `SetCdnDomainSSLCertificate` (`SSLPub` chain + `SSLPri` key, `SSLProtocol=on`); API
#   Gateway: `SetDomainCertificate` (`GroupId`, `CertificateBody`, `CertificatePrivateKey`).
#   Chain and key go in the POST body, never in the URL.
# * Outside the lab: the domain bound (API Gateway: CNAME to the group's subdomain) and, in
#   mainland-China regions, an ICP filing.
# * Check before sending (key, chain order, dates, names) — a refused upload has already
#   shipped the key.
# * "OK" from the API is not proof: a TLS handshake with SNI, validated to the root, showing
#   our serial, is.
#
# ## Exercises
#
# 1. Upload the chain with its certificates in the wrong order (intermediate first):
#    `check("10.1", type(error))`. Refused before sending, or by the service?
# 2. Which CDN action installs a PEM certificate? `check("10.2", action)`.
# 3. Which API Gateway action binds one to a custom domain? `check("10.3", action)`.

# %%
from acmelab.exercises import check

check("10.1", ...)  # the exception class
check("10.2", ...)  # the CDN action
check("10.3", ...)  # the API Gateway action

# %% [markdown]
# **Previous:** [09 · Finalize and download](09_finalize_and_download.ipynb) · **Next:** [11 · PKCS#12 for IIS](11_pkcs12_for_iis.ipynb)
