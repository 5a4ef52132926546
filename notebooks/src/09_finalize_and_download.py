# %% [markdown]
# # 09 · Finalize and download
#
# **Goal:** turn a `ready` order into a certificate: send the CSR (**finalize**), wait while the
# CA signs, download the **chain**, look at the **alternate chains** the CA offers, and check
# the chain the way a browser does — up to the CA's root.
#
# **Needs:** the lab (started if needed), the course's certificate key and CSR from
# [02](02_certificate_key_and_csr.ipynb), the account from [05](05_account.ipynb) and the
# ready order from [07](07_dns_challenge.ipynb) (each made now if it is missing).
#
# **Previous:** [08 · A hand-signed Alibaba Cloud request](08_alibaba_signed_request.ipynb) · **Next:** [10 · Install on API Gateway and CDN](10_install_api_gateway_and_cdn.ipynb)

# %% [markdown]
# ## Where we are
#
# Every authorization of the order is `valid`, so the order is `ready`: the CA now waits for
# the certificate signing request. The rest of the order's life (RFC 8555 §7.1.6):
#
# ```mermaid finalize-states
# stateDiagram-v2
#     direction LR
#     ready --> processing: POST finalize with the CSR
#     processing --> valid: the CA signed, the order has a certificate URL
#     processing --> invalid: the CA gave up (error in the order)
#     valid --> [*]: POST-as-GET the certificate URL gives the PEM chain
# ```

# %%
from acmelab import course, display

client = course.account_client()   # the course's account (notebook 05)
order = course.ready_order(client)  # the order notebook 07 made ready, or a new one made ready now
print("order:", order.status, sorted(order.names))
print("finalize URL:", order.finalize)

# %% [markdown]
# ## The CSR
#
# The CSR from notebook 02 was signed by the **certificate key** — its own key, never the
# account key. It must list exactly the order's names; the client checks that before
# sending anything (and the CA checks it again):

# %%
csr = course.csr()
print("notebook 02's CSR:", course.relative(course.csr_path()))
display.csr(csr)

# %% [markdown]
# ## Finalize, by hand
#
# `finalize` is a POST to the order's `finalize` URL with one field: `csr`, the CSR in DER
# form, base64url-encoded (§7.4). Written by hand as in notebooks 06 and 07 — `jws.sign` with
# the account's `kid` and a fresh nonce, `requests.post`. The CA answers with the order, now
# `processing`; signing happens in the background. `shorten=("csr",)` shows the CSR only by
# name (it is long and different at every run):

# %%
import requests
from cryptography.hazmat.primitives import serialization

from acmelab import jws

csr_der = csr.public_bytes(serialization.Encoding.DER)
body = jws.sign({"csr": jws.b64url(csr_der)}, client.account_key, url=order.finalize,
                nonce=client.transport.new_nonce(), kid=client.account_url)
finalized = requests.post(order.finalize, json=body, headers={"Content-Type": "application/jose+json"},
                          verify=course.target().verify, timeout=30)
display.exchange(finalized, tidy=display.sort_lists, shorten=("csr",))

# %% [markdown]
# ## Poll the order
#
# The answer's `Retry-After` says how long to wait before asking again (the lab's Pebble asks
# for one second, as delay-seconds or as an HTTP date; Let's Encrypt sends one too). Then a
# POST-as-GET of the order URL, until the status leaves `processing` — with a deadline, since
# a CA may be slow, and a wait of at least a second, since a CA may send no `Retry-After` at
# all. The client's `poll_order` reads the same order: the answer key.

# %%
import time

from acmelab.transport import parse_retry_after

order_json, answer = finalized.json(), finalized
deadline = time.monotonic() + 60
while order_json["status"] == "processing" and time.monotonic() < deadline:
    time.sleep(max(1.0, min(parse_retry_after(answer.headers.get("Retry-After")) or 1.0, 10.0)))
    answer = requests.post(order.url, headers={"Content-Type": "application/jose+json"},
                           json=jws.sign(None, client.account_key, url=order.url,
                                         nonce=client.transport.new_nonce(), kid=client.account_url),
                           verify=course.target().verify, timeout=30)
    order_json = answer.json()
print("by hand: order", order_json["status"], "| certificate URL:", order_json.get("certificate"))
order = client.poll_order(order.url, until=("valid", "invalid"))   # the answer key
print("client:  order", order.status, "| same certificate URL:", order.certificate == order_json.get("certificate"))

# %% [markdown]
# ## Download the chain
#
# The certificate URL answers a POST-as-GET with `application/pem-certificate-chain`: the leaf
# first, then the intermediate(s) — **not** the root, which the client must already have.
# `Link: <...>;rel="alternate"` headers point at other chains for the same certificate
# (§7.4.2).

# %%
body = jws.sign(None, client.account_key, url=order.certificate, nonce=client.transport.new_nonce(),
                kid=client.account_url)   # POST-as-GET, by hand
download = requests.post(order.certificate, json=body, headers={"Content-Type": "application/jose+json"},
                         verify=course.target().verify, timeout=10)
print("POST certificate URL ->", download.status_code, "| Content-Type:", download.headers["Content-Type"])
for link in sorted(requests.utils.parse_header_links(download.headers.get("Link", "")), key=lambda l: l["rel"]):
    print(f'Link: <{link["url"]}>;rel="{link["rel"]}"')
pem_blocks = download.text.count("-----BEGIN CERTIFICATE-----")
print(f"body: {pem_blocks} PEM blocks (leaf, then intermediate; no root):")
for block in download.text.split("-----END CERTIFICATE-----")[:-1]:
    print("  -----BEGIN CERTIFICATE-----  <base64 DER>  -----END CERTIFICATE-----")
chain = client.download_certificate(order)   # the client's result is the answer key
print("the client downloaded the same chain:", chain.pem == download.text, "| alternates:", len(chain.alternates))

# %% [markdown]
# The chain, decoded: who each certificate is for, who signed it, and whether each one really
# is signed by the next. No private key appears here; the key stays in its 0600 file.
#
# Look at *not after*: the lifetime follows the order's profile (notebook 06) — `classic`,
# 90 days, at Pebble as at Let's Encrypt (as of mid-2026; `classic` is to shrink to 64 days in
# 2027 and 45 in 2028). Nothing in the client assumes a lifetime; notebook 12 asks the CA when
# to renew (ARI) and falls back on the certificate's own dates. The subject's CN is the first
# name: `classic` still copies it there, at the lab as at Let's Encrypt, while `tlsserver` and
# `shortlived` leave the subject empty. Browsers read only the SAN, which holds every name.

# %%
display.chain(chain.pem, title="default chain")

# %% [markdown]
# We keep it in the course folder — `fullchain.pem` (leaf + intermediates, what web servers
# and Alibaba Cloud want) and `cert.pem` (the leaf alone); notebooks 10–13 pick them up:

# %%
saved = course.save_certificate(chain.pem)
course.remember(course_order_url=order.url)
print(course.relative(saved))
print(course.relative(course.leaf_path()))

# %% [markdown]
# ## Alternate chains
#
# A CA may offer the *same* leaf with different intermediates that lead to different roots —
# Let's Encrypt's 2025 "Gen Y" hierarchy does so: Root YR (RSA) and Root YE (ECDSA) are
# cross-signed by ISRG Root X1 and X2, so a leaf from the YR1/YR2 or YE1/YE2 intermediates
# has a chain to the new root and one to the old. (The DST Root CA X3 cross-sign is history.)
# Never pin an intermediate: follow `rel="up"` and `rel="alternate"`. Old devices trust only the old root, new
# ones the new root; the server operator picks the chain that suits its clients. The lab's
# Pebble runs with one alternate root:
#
# ```mermaid chains
# flowchart BT
#     leaf["leaf: api.example.com"] -->|signed by| i1["Pebble Intermediate CA"]
#     leaf -->|signed by| i2["Pebble Intermediate CA<br/>(same name and key, other issuer)"]
#     i1 -->|signed by| r1["Pebble Root CA, the first<br/>(default chain)"]
#     i2 -->|signed by| r2["Pebble Root CA, the second<br/>(alternate chain)"]
# ```

# %%
chains = client.download_certificate_chains(order)
rows = []
for number, candidate in enumerate(chains):
    rows.append(["default" if number == 0 else f"alternate {number}",
                 candidate.certificates[0] == chains[0].certificates[0],
                 candidate.top.subject.rfc4514_string(), candidate.top.issuer.rfc4514_string()])
display.table(rows, header=["chain", "same leaf", "intermediate", "signed by (the root)"])

# %% [markdown]
# To prefer a chain, name its root: `client.download_preferred_chain(order, "ISRG Root X1")`
# picks the chain whose top certificate is issued by that name (or is that name), and falls
# back to the default chain. In the lab, the root's name is Pebble's:

# %%
wanted_root = chains[-1].top.issuer.rfc4514_string().removeprefix("CN=")
preferred = client.download_preferred_chain(order, wanted_root)
print("preferred", wanted_root, "->", "the alternate" if preferred.url != chains[0].url else "the default")

# %% [markdown]
# ## Validate the chain against the CA's root
#
# A browser builds a path from the leaf through the intermediates to a root in its trust store,
# and checks signatures, validity dates, CA flags and the name. `cryptography` does the same
# (RFC 5280 path validation with the Web PKI's rules). `course.trust_roots()` gives the
# "trust store": in the lab, Pebble's roots from the lab's management API (`GET /roots/0`,
# `/roots/1`); with `ACMELAB_ACME=staging`, Let's Encrypt's published **staging roots**, which
# ship with acmelab (Pretend Pear X1, Bogus Broccoli X2 and the Gen Y staging roots Yonder Yam
# YR and Yearning Yucca YE — in no browser's store, and never to be put in one); with
# production, `None`, and we load the system's store, which holds ISRG Root X1 and X2 (and, as
# browsers add them, Root YR and YE).

# %%
import certifi
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

roots_pem = course.trust_roots()
if roots_pem is None:   # Let's Encrypt production: the store requests uses (certifi's Mozilla roots)
    roots = x509.load_pem_x509_certificates(open(certifi.where(), "rb").read())
else:
    roots = [x509.load_pem_x509_certificate(pem.encode()) for pem in roots_pem]
leaf, *intermediates = chain.certificates
verifier = PolicyBuilder().store(Store(roots)).build_server_verifier(x509.DNSName(course.names()[0]))
path = verifier.verify(leaf, intermediates)
for depth, certificate in enumerate(path):
    print(depth, certificate.subject.rfc4514_string())

# %% [markdown]
# The same check fails, with a reason, when something is wrong — here the leaf alone, without
# its intermediate (a classic misconfiguration: browsers that have the intermediate cached work,
# others fail), and the chain checked for a name it does not cover. "candidates exhausted"
# means that no path to a trusted root could be built; "no interior errors" that no single
# certificate on a candidate path was faulty, the path was just missing a link:

# %%
from cryptography.x509.verification import VerificationError

try:
    verifier.verify(leaf, [])
except VerificationError as error:
    print("leaf without intermediate:", error)
try:
    PolicyBuilder().store(Store(roots)).build_server_verifier(x509.DNSName("www.example.com")) \
        .verify(leaf, intermediates)
except VerificationError as error:
    print("another name:             ", error)

# %% [markdown]
# ## Summary
#
# * Finalize = POST `{csr}` (DER, base64url) to the order's `finalize` URL; the order goes
#   `processing` → `valid` and gains a `certificate` URL. Poll it; never assume.
# * The certificate URL gives a PEM chain: leaf, then intermediates, no root. Keep
#   `fullchain.pem` and `cert.pem`; the key stays separate (0600).
# * `Link: rel="alternate"` offers other chains to other roots; pick one by its root's name.
# * Validate the chain from the leaf to a trusted root before you deploy it.
#
# ## Exercises
#
# 1. Finalize a new ready order with a CSR for *other* names (`course.csr("other", ["www.example.com"])`):
#    `check("09.1", error)`. Did anything reach the CA?
# 2. Which `rel` values do the `Link` headers of the download carry? `check("09.2", {...})`.
# 3. What does Pebble know about our certificate?
#    `check("09.3", course.lab().cert_status(serial_hex)["Status"])`.

# %%
from acmelab.exercises import check

check("09.1", ...)  # the exception you caught
check("09.2", ...)  # the set of rel values
check("09.3", ...)  # the Status

# %% [markdown]
# **Previous:** [08 · A hand-signed Alibaba Cloud request](08_alibaba_signed_request.ipynb) · **Next:** [10 · Install on API Gateway and CDN](10_install_api_gateway_and_cdn.ipynb)
