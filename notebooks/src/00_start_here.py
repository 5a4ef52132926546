# %% [markdown]
# # 00 · Start here: certificates, Let's Encrypt, ACME, and the lab
#
# **Goal:** know what a TLS certificate is and who issues it, see the whole ACME flow on one
# picture, and start the lab that every later notebook talks to.
#
# **Needs:** nothing. This is the first notebook.
#
# **Next:** [01 · The account key](01_account_key.ipynb)

# %% [markdown]
# ## What a TLS certificate is
#
# When a browser opens `https://api.example.com`, the server proves who it is with a
# **certificate**: a small signed document that says *"the public key K belongs to the names
# api.example.com, cdn.example.com, valid from … until …"*. The server holds the matching
# private key and proves it during the TLS handshake. The browser believes the document because
# it is signed by a **certificate authority (CA)** it already trusts.
#
# Browsers and operating systems ship a short list of **root** certificates. Roots never sign
# server certificates directly (the CA/Browser Forum's Baseline Requirements forbid it, so that
# the root's key can stay offline); they sign **intermediate** certificates, which sign the
# **leaf** (your server's certificate). The server sends the leaf plus the intermediates — the
# **chain** — and the browser walks it up to a root it knows.
#
# ```mermaid chain-of-trust
# flowchart LR
#     root["Root CA<br/>(in the browser's trust store)"] -->|signs| inter["Intermediate CA"]
#     inter -->|signs| leaf["Leaf: api.example.com<br/>(your server's certificate)"]
#     leaf -.->|"sent with the intermediate<br/>in the TLS handshake"| browser["Browser"]
# ```

# %% [markdown]
# ## DV, OV and EV
#
# CAs differ in *what they check* before they sign. The CA/Browser Forum's documents name
# the levels of a server certificate — DV, OV and IV in the **Baseline Requirements**, EV in
# the separate **EV Guidelines** — and a certificate says which one it is with a
# **certificate policy OID** in its Certificate Policies extension:
#
# | level | the CA checked | policy OID |
# |---|---|---|
# | Domain Validated (DV) | the applicant controls the domain names | `2.23.140.1.2.1` |
# | Organization Validated (OV) | … and the organisation exists, by documents | `2.23.140.1.2.2` |
# | Extended Validation (EV) | … and a longer, stricter identity vetting | `2.23.140.1.1` |
#
# A fourth, rarer one, **Individual Validated (IV)** (`2.23.140.1.2.3`), is OV for a person
# instead of an organisation: the CA checked the name of the individual.
#
# Browsers show the same padlock for all of them; the encryption is identical. What differs is
# how much identity the certificate vouches for. `acmelab.display` knows these four OIDs and
# names them when it shows a certificate:

# %%
from acmelab import display

display.table(display.CABF_POLICIES.items(), header=["policy OID", "meaning"])

# %% [markdown]
# ## Let's Encrypt and ACME
#
# **Let's Encrypt** is a free, automated CA. It issues **DV** certificates only, so that
# issuance and renewal are things a program does, not a person.
#
# > **As of 2026-08** (sources: Let's Encrypt's announcements and docs, CA/Browser Forum
# > ballot SC-081; check them before you rely on a number). A newOrder picks a **profile**
# > (draft-ietf-acme-profiles; the directory lists them in `meta.profiles`):
# > `classic` — 90 days (64 days from 2027-02-10, 45 days from 2028-02-16);
# > `tlsserver` — 45 days since 2026-05-13; `shortlived` — 160 hours (about 6 days), generally
# > available since 2026-01-15. SC-081 caps every publicly trusted certificate at 200 days
# > since 2026-03-15, 100 days from 2027-03-15 and 47 days from 2029-03-15. When to renew is
# > the CA's answer: **ARI** (ACME Renewal Information, RFC 9773) gives each certificate a
# > suggested renewal window; at Let's Encrypt a renewal ordered inside it (naming the old
# > certificate with `replaces`) is exempt from the rate limits.
# > Let's Encrypt no longer runs OCSP (revocation is by CRL) and no longer stores contact
# > e-mail addresses. The lab's Pebble offers the same three profiles and ARI.
#
# ```mermaid lifetimes
# gantt
#     accTitle: How long a certificate issued on 1 September 2026 lives, by profile (as of late 2026)
#     dateFormat YYYY-MM-DD
#     axisFormat %b %d
#     tickInterval 2week
#     todayMarker off
#     section today
#     classic 90 days           :done, 2026-09-01, 90d
#     tlsserver 45 days         :active, 2026-09-01, 45d
#     shortlived 160 hours      :crit, 2026-09-01, 160h
#     section classic, later
#     from 2027-02-10 64 days   :2026-09-01, 64d
#     from 2028-02-16 45 days   :2026-09-01, 45d
# ```
#
# The program talks to the CA with **ACME** (Automatic Certificate Management Environment),
# standardised as **RFC 8555**: JSON over HTTPS, every request signed with the *account key*.

# %% [markdown]
# ## DNS-01
#
# Proving control of a name is a **challenge**. This course uses **DNS-01**: the CA gives you a
# token, you publish a TXT record at `_acme-challenge.<name>` whose value is derived from the
# token and your account key's thumbprint (notebook 07), and the CA looks it up.
#
# DNS-01 works for wildcard names (`*.example.com`) and for hosts that are not reachable from
# the internet — such as a domain served by Alibaba Cloud CDN and API Gateway, where we
# control the DNS but not the web servers. (`http-01` and `tls-alpn-01`, RFC 8737, need the CA
# to reach the host and cannot prove a wildcard; the newer **dns-persist-01** can do both with
# one standing record — on Let's Encrypt staging, not yet in production, as of mid-2026.)

# %% [markdown]
# The whole flow, which the notebooks walk through one step at a time:
#
# ```mermaid acme-flow
# sequenceDiagram
#     accTitle: The whole ACME flow, notebook by notebook
#     autonumber
#     participant C as Client (acmelab)
#     participant CA as ACME server (Let's Encrypt / Pebble)
#     participant DNS as Alibaba Cloud DNS
#     participant Svc as API Gateway and CDN
#     C->>CA: GET directory (03)
#     C->>CA: HEAD newNonce → Replay-Nonce (03)
#     C->>CA: POST newAccount, JWS signed with the account key (04, 05)
#     CA-->>C: 201 Created, Location: account URL (the kid)
#     C->>CA: POST newOrder for api.example.com, cdn.example.com (06)
#     CA-->>C: 201 Created: the order, with one authorization URL per name
#     C->>CA: POST-as-GET each authorization URL → its challenges (06)
#     C->>DNS: AddDomainRecord TXT _acme-challenge.api … (07, 08)
#     C->>CA: POST challenge URL {} — "ready, check it"
#     CA->>DNS: TXT lookup _acme-challenge.api.example.com
#     C->>CA: POST-as-GET authorization (poll)
#     CA-->>C: authorization valid → order ready
#     C->>DNS: DeleteDomainRecord (cleanup)
#     C->>CA: POST finalize with the CSR (09)
#     CA-->>C: order valid, certificate URL
#     C->>CA: POST-as-GET certificate → PEM chain
#     C->>Svc: upload certificate and key (10), or a PKCS#35;12 file for IIS (11)
#     Note over C,Svc: renew before expiry (12, 14), revoke if a key leaks (13)
# ```

# %% [markdown]
# ## The lab
#
# Talking to Let's Encrypt while learning would hit its rate limits, and would need a real
# domain and a real Alibaba Cloud account. The lab runs everything on this machine instead,
# offline, on loopback:
#
# * **Pebble** — Let's Encrypt's small ACME test server (RFC 8555, like the real thing, with a
#   throw-away CA of its own);
# * **pebble-challtestsrv** — a mock DNS server; Pebble asks it for the TXT records;
# * **a local Alibaba Cloud API endpoint** — speaks the Alibaba Cloud DNS, CDN and API Gateway
#   APIs (signed requests and all), and writes DNS records into the mock DNS.
#
# One call starts it (or finds it already running) and tells us where everything is.
# `course` is the small helper module that keeps what the notebooks share:

# %%
from acmelab import course

lab = course.lab()
print("directory     ", lab.directory_url)
print("mock DNS      ", "%s port %d" % lab.dns_server)
print("Alibaba Cloud ", lab.aliyun_endpoint)
print("CA bundle     ", lab.ca_bundle.name, "(the lab's own CA; we trust it explicitly)")

# %% [markdown]
# The lab's HTTPS listeners use certificates from a throw-away CA made for this lab. We never
# switch TLS verification off; we tell `requests` to trust that CA with `verify=`. Let's ask
# Pebble for its directory — the one URL an ACME client needs to know:

# %%
import requests

response = requests.get(lab.directory_url, verify=lab.ca_bundle, timeout=10)
print(response.status_code, response.headers["Content-Type"])
sorted(response.json())

# %% [markdown]
# Pebble's own CA is different from the lab's listener CA: it is the one that will sign our
# certificates, and Pebble makes a new one every time it starts (so certificates from a
# previous run are not trusted by the next one). Its root:

# %%
display.certificate(lab.roots()[0], title="Pebble's root (changes at every lab start)")

# %% [markdown]
# ## The whole game, in three calls
#
# Before we take it apart: a certificate for `cdn.example.com`, issued through ACME (DNS-01 on
# the lab's Alibaba Cloud DNS), installed on the lab's CDN, and verified by a TLS handshake
# that must show *our* serial — one call each. The course's account is made on the way
# (`course.account_client()` says so the first time).

# %%
from acmelab import deploy
from acmelab.issue import issue_certificate

cdn = f"cdn.{course.target().domain}"
issued = issue_certificate([cdn], client=course.account_client(), dns=course.dns_provider())        # 1. ACME
deploy.set_cdn_domain_ssl_certificate(course.aliyun_client(), cdn, issued.chain_pem, issued.private_key)  # 2. install
host, port = course.handshake_address("cdn", cdn)       # the lab's CDN edge on loopback (real: cdn:443)
served = deploy.verify(cdn, host=host, port=port, root_pem=course.trust_roots(),                        # 3. prove
                       expected_serial_hex=issued.serial_hex)
print(f"{cdn}: {served.protocol}, serves our certificate (serial {served.serial_hex}), "
      f"valid until {issued.not_after:%Y-%m-%d}")

# %% [markdown]
# That is all a renewal job does, too. The rest of the series takes these three calls apart:
# the keys (01–02), the directory and nonces (03), signing (04), the account (05), the order
# (06), the challenge (07–08), finalize and download (09), installing (10–11), renewal (12),
# revocation (13), automation (14) and going live (15); then 16 breaks things on purpose
# and reads what the CA says.

# %% [markdown]
# ## Pointing the course at Let's Encrypt and a real Alibaba Cloud account
#
# Everything runs against the lab by default. The same notebooks talk to Let's Encrypt and a
# real Alibaba Cloud account when these environment variables are set before starting Jupyter:
#
# | variable | meaning |
# |---|---|
# | `ACMELAB_ACME` | `lab` (default), `staging` (Let's Encrypt staging), `production`, or any directory URL |
# | `ACMELAB_PRODUCTION=yes` | required with `production`: real certificates, strict rate limits |
# | `ACMELAB_DOMAIN` | your domain, hosted in Alibaba Cloud DNS (required outside the lab) |
# | `ACMELAB_CONTACT` | e-mail for the ACME account (Pebble keeps it; Let's Encrypt keeps no contact since mid-2025) |
# | `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET` | a RAM user's access key (see notebook 15 for least privilege) |
# | `ACMELAB_CA_BUNDLE` | PEM file of the CA to trust, for a private ACME server's directory URL |
# | `ACMELAB_COURSE_DIR` | where keys and CSRs are kept (default `notebooks/course/`) |

# %% [markdown]
# Start with staging: its certificates are not trusted by browsers, but its rate limits are
# generous. Keys for each target live in their own folder (`course/lab/`, `course/staging/`, …),
# so a lab key is never used against Let's Encrypt. Here is what the course talks to now:

# %%
target = course.target()
print("ACME target:", target.environment)
print("directory:  ", target.directory_url)
print("domain:     ", target.domain)
print("names:      ", course.names())

# %% [markdown]
# ## Summary
#
# * A certificate binds a public key to names; a CA signs it; browsers trust a few roots, and
#   the server sends leaf + intermediates.
# * DV / OV / IV / EV differ in what the CA checked: policy OIDs `2.23.140.1.2.1`,
#   `2.23.140.1.2.2`, `2.23.140.1.2.3`, `2.23.140.1.1`. Let's Encrypt issues DV only, automatically, through ACME (RFC 8555).
# * The lab (Pebble, a mock DNS, a local Alibaba Cloud endpoint) runs offline; `course.lab()`
#   starts it, and environment variables switch the course to Let's Encrypt.
#
# ## Exercises
#
# 1. *(offline)* Notebook 02 shows a real Let's Encrypt certificate (shipped in the
#    `cryptography_vectors` package). Which validation level does its policy OID say — DV, OV or
#    EV? `check("00.1", "...")`. (Online: do the same for any HTTPS site in your browser.)
# 2. How many roots does the course's Pebble serve? `check("00.2", len(lab.roots()))`.
# 3. Name Let's Encrypt's three profiles as of 2026: `check("00.3", [...])`.

# %%
from acmelab.exercises import check

check("00.1", ...)  # "DV", "OV" or "EV"
check("00.2", ...)  # len(lab.roots())
check("00.3", ...)  # a list of three profile names

# %% [markdown]
# **Next:** [01 · The account key](01_account_key.ipynb)
