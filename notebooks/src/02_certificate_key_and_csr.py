# %% [markdown]
# # 02 · The certificate key and the CSR
#
# **Goal:** make a key for the certificate (a different one from the account key), write a
# certificate signing request (CSR) that names every host the certificate is for — including a
# wildcard and an internationalised name — and inspect it.
#
# **Needs:** nothing from earlier notebooks (the lab is not used yet).
#
# **Previous:** [01 · The account key](01_account_key.ipynb) · **Next:** [03 · The directory and nonces](03_directory_and_nonces.ipynb)

# %% [markdown]
# ## One key per certificate
#
# The certificate key is the one your web server (here: API Gateway and CDN) uses in every
# TLS handshake. It has to be copied to those services, which makes it the key most at risk.
# So each certificate gets its own, fresh key: a leak then affects one certificate, never the
# ACME account, and never the other certificates. Renewing (notebook 12) makes a new key again.

# %%
from acmelab import display, keys

certificate_key = keys.generate_key("ec256")
print("certificate key:", keys.key_type_of(certificate_key))

# %% [markdown]
# ## Names first: what a CA will accept
#
# A certificate lists its host names in the **Subject Alternative Name** (SAN) extension.
# Before they go in, names are normalised: lower case, no trailing dot, and international
# names in their ASCII form (IDNA "A-labels", `xn--…`), which is what DNS and certificates
# carry. A wildcard is allowed only as the whole leftmost label. `acmelab.csr.normalize_name`
# does that and refuses anything else with an `InputError`:

# %%
from acmelab.csr import normalize_name
from acmelab.errors import InputError

for name in ["WWW.Example.COM.", "bücher.example.com", "*.example.com", "www.*.example.com", "-bad.example.com"]:
    try:
        print(f"{name!r:24} -> {normalize_name(name)}")
    except InputError as error:
        print(f"{name!r:24} refused: {error}")

# %% [markdown]
# `bücher.example.com` becomes `xn--bcher-kva.example.com`: the same name, spelled so that
# DNS can carry it. A wildcard `*.example.com` covers `api.example.com` and `cdn.example.com`
# but not `example.com` itself, nor `a.b.example.com`; that is why certificates often list the
# bare domain next to the wildcard.

# %% [markdown]
# ## The CSR
#
# A **certificate signing request** (PKCS#10, RFC 2986) carries the public key and the names,
# and is signed with the certificate key, which proves that whoever asks for the certificate
# holds the private key. ACME sends it at the very end, when the order is finalised
# (notebook 09). The CA takes only the public key and the names from it; everything else
# (validity, issuer, policies) is the CA's choice. And the names must be exactly the order's
# identifiers (RFC 8555 §7.4): one more or one fewer, and finalize is refused.
#
# ```mermaid csr
# flowchart LR
#     key["certificate key<br/>(private, stays with you)"] -->|public half| csr
#     names["names<br/>example.com, *.example.com,<br/>xn--bcher-kva.example.com"] --> csr
#     csr["CSR: subject, SAN, public key<br/>+ signature by the certificate key"]
# ```

# %%
from acmelab.csr import inspect_csr, make_csr

request = make_csr(certificate_key, ["example.com", "*.example.com", "bücher.example.com"])
display.csr(request)

# %% [markdown]
# The first name also becomes the subject's common name (CN), for old software that still
# reads it; the SAN extension is what counts. `inspect_csr` reads any CSR back — handy when a
# CSR comes from someone else — and checks its self-signature:

# %%
info = inspect_csr(request)
print("names:          ", info.names)
print("common name:    ", info.common_name)
print("key type:       ", info.key_type)
print("signature valid:", info.signature_valid)

# %% [markdown]
# The CSR is not secret; its PEM form is what you would paste into a CA's web form. It begins
# like this:

# %%
from acmelab.csr import csr_pem

pem = csr_pem(request).decode().splitlines()
print(pem[0])
print("… base64 of the DER encoding …")
print(pem[-1])

# %% [markdown]
# ## The course's certificate key and CSR
#
# The course's certificate is for the API Gateway and the CDN host of our domain. As with the
# account key, one helper call either loads what was saved earlier or makes and saves it:
# `course.csr()` uses `course.certificate_key()`, which is kept in
# `course/<target>/certificates/course/privkey.pem` (mode 0600) next to `request.csr`.

# %%
from acmelab import course

course_request = course.csr()
print("saved as", course.relative(course.csr_path()))
display.csr(course_request, title="the course's CSR")

# %% [markdown]
# Both files are in the course folder; the key is readable by its owner only, and it is a
# different key from the account key of notebook 01:

# %%
for path in (course.certificate_key_path(), course.csr_path()):
    print(f"{course.relative(path):45} mode {oct(path.stat().st_mode & 0o777)}")
print("certificate key is not the account key:",
      keys.thumbprint(course.certificate_key()) != keys.thumbprint(course.account_key()))

# %% [markdown]
# ## What comes back: a real Let's Encrypt certificate
#
# The CA turns the CSR into a certificate and adds what *it* vouches for. Here is a real one,
# from Let's Encrypt in 2018 for `cryptography.io`, as the `cryptography_vectors` package ships
# it (nothing is downloaded). `display.certificate` shows the basics — note the policy
# `2.23.140.1.2.1`, **Domain Validated**, which notebook 00 promised, next to Let's Encrypt's
# own policy OID:

# %%
import cryptography_vectors
from cryptography import x509

with cryptography_vectors.open_vector_file("x509/cryptography-scts.pem", "rb") as vector:
    real = x509.load_pem_x509_certificate(vector.read())
display.certificate(real, title="a real Let's Encrypt certificate (2018, from cryptography_vectors)")

# %% [markdown]
# And the extensions a client and an auditor read:
#
# * **Extended key usage**: what the key may be used for. `serverAuth` is TLS servers; this
#   2018 certificate also has `clientAuth`, which Let's Encrypt's `classic` profile dropped on
#   2026-02-11 (its Gen Y intermediates carry no client-auth EKU).
# * **Authority Information Access**: where to fetch the issuer (`caIssuers`) and, in 2018,
#   the **OCSP** responder. OCSP URLs left Let's Encrypt certificates on 2025-05-07 and the
#   responders went off on 2025-08-06; today's certificates carry a **CRL distribution point**
#   instead (revocation by CRL only, notebook 13). This one predates CRLs in leaves: it has none.
# * **Signed Certificate Timestamps** (SCTs): promises from public **Certificate Transparency**
#   logs (RFC 6962) that the certificate was logged before it was issued. Browsers require
#   them, so every certificate Let's Encrypt issues — and every name in it — becomes public,
#   searchable in CT logs (e.g. crt.sh) within minutes. Never put a secret in a name; a
#   wildcard hides the individual hosts. (Pebble and the staging CA do not log publicly.)

# %%
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

extensions = real.extensions
usages = {ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth", ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth"}
print("extended key usage:", ", ".join(usages.get(oid, oid.dotted_string)
                                       for oid in extensions.get_extension_for_class(x509.ExtendedKeyUsage).value))
methods = {AuthorityInformationAccessOID.OCSP: "OCSP", AuthorityInformationAccessOID.CA_ISSUERS: "caIssuers"}
for access in extensions.get_extension_for_class(x509.AuthorityInformationAccess).value:
    print(f"AIA {methods[access.access_method]:10}", access.access_location.value)
try:
    points = extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    print("CRL distribution points:", [name.value for point in points for name in point.full_name])
except x509.ExtensionNotFound:
    print("CRL distribution points: none (2018: revocation was checked by OCSP)")
for sct in extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value:
    print(f"SCT: log {sct.log_id[:8].hex()}…, logged {sct.timestamp:%Y-%m-%d %H:%M} UTC, {sct.entry_type.name}")

# %% [markdown]
# ## Summary
#
# * Every certificate has its own key; it is never the account key.
# * Names are normalised before use: lower case, A-labels for international names, wildcards
#   only as the leftmost label.
# * The CSR carries the public key and the names, signed by the certificate key; the CA reads
#   only those two things from it.
# * The CA adds the rest: the DV policy OID `2.23.140.1.2.1`, the EKU, where to find the issuer
#   and the CRL, and SCTs from Certificate Transparency logs — every certified name is public.
#
# ## Exercises
#
# 1. Make a CSR with an `rsa2048` key for `course.names()` and compare `display.csr` with the
#    ECDSA one: `check("02.1", rsa_csr)`.
# 2. Try a name longer than 64 characters as the first name: `make_csr` then leaves the common
#    name out and keeps the name in the SAN only (hint: the X.520 upper bound of CN):
#    `check("02.2", long_csr)`.
# 3. Which names would a certificate for `*.example.com` *not* cover among `example.com`,
#    `api.example.com`, `v1.api.example.com`? `check("02.3", {...})`.

# %%
from acmelab.exercises import check

check("02.1", ...)  # a CSR with an rsa2048 key
check("02.2", ...)  # a CSR whose first name has over 64 characters
check("02.3", ...)  # the set of names not covered

# %% [markdown]
# **Previous:** [01 · The account key](01_account_key.ipynb) · **Next:** [03 · The directory and nonces](03_directory_and_nonces.ipynb)
