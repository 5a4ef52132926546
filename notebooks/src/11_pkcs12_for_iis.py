# %% [markdown]
# # 11 · PKCS#12 for IIS
#
# **Goal:** package the certificate, its chain and its private key into the one
# password-protected file Windows wants — a **PKCS#12** (`.pfx`) file — in a *modern* and a
# *legacy* flavour, check what is inside, and import it into IIS (PowerShell and IIS Manager
# steps, as text: the lab has no Windows).
#
# **Needs:** the lab (started if needed) and the certificate from
# [09](09_finalize_and_download.ipynb) (issued now, in one call, if it is missing or came from
# an earlier lab).
#
# **Previous:** [10 · Install on API Gateway and CDN](10_install_api_gateway_and_cdn.ipynb) · **Next:** [12 · Renewal and ARI](12_renewal_and_ari.ipynb)

# %% [markdown]
# ## What a PKCS#12 file holds
#
# PEM files keep the key and the certificates apart (`privkey.pem`, `fullchain.pem`). Windows
# and IIS import one file instead: PKCS#12 (RFC 7292), a container of **bags**. The
# certificates sit in an encrypted bag, the key in a *shrouded* (encrypted) key bag, and a MAC
# over the whole file, keyed by the same password, detects tampering or a wrong password.
#
# ```mermaid pkcs12
# flowchart TB
#     pfx["course .pfx (PKCS#12)"] --> mac["MAC (HMAC-SHA256 or -SHA1)<br/>over everything, keyed by the password"]
#     pfx --> certs["encrypted bag: certificates<br/>leaf (friendly name) + intermediate"]
#     pfx --> key["shrouded key bag: the private key<br/>encrypted with a key derived from the password"]
# ```
#
# Which encryption to use depends on the Windows version:
#
# | profile | key and certificates | MAC | for |
# |---|---|---|---|
# | `modern` | PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC | HMAC-SHA256 | Windows Server 2019, Windows 10 1709 and later |
# | `legacy` | pbeWithSHA1And3-KeyTripleDES-CBC | HMAC-SHA1 | Windows Server 2016 and older |
#
# Older Windows cannot read AES-encrypted files and then claims, misleadingly, that *the
# password is incorrect*. Use `modern` wherever it works; `legacy` only for old servers.

# %%
from acmelab import course, display, pkcs12

certificate = course.issued_certificate()  # notebook 09's certificate, or issued now
print("notebook 09's certificate:", course.relative(course.chain_path()))
display.certificate(certificate.certificate_pem, title="the course's certificate")

# %% [markdown]
# ## The password
#
# A `.pfx` holds the private key, so it must have a password — `acmelab.pkcs12` refuses an
# empty one. We make a random one, keep it in a file only we can read (mode 0600), and never
# print it. Hand it to the Windows administrator on a different channel than the file.

# %%
import secrets

password_path = course.certificate_directory() / "pfx-password.txt"
if not password_path.exists():  # made once, never replaced (existing .pfx files use it)
    course.write_atomically(password_path, secrets.token_urlsafe(24).encode(), mode=0o600)
password = password_path.read_text().strip()
print("password file:", course.relative(password_path), oct(password_path.stat().st_mode & 0o777))

# %% [markdown]
# ## Export both profiles
#
# `pkcs12.write_pkcs12` builds the file with `cryptography`, reads it back once to check that
# key, leaf, chain and friendly name came out as written, and writes it atomically with mode
# 0600. It never overwrites an existing file, so each certificate gets its own folder (named
# by its serial number); the key itself stays in `privkey.pem`. The **friendly name** is what
# IIS shows in its certificate lists.
#
# `write_pkcs12` is a thin layer over `pkcs12.export_pkcs12(key, chain, password=..., profile=...)`,
# which returns the `.pfx` as bytes (to send or store elsewhere) instead of writing a file. Both
# take `iterations` (the PBKDF2 count, default 50 000) and `unencrypted=True`, which writes the
# key with no password at all — only for a file that never leaves a protected machine.

# %%
folder = course.certificate_directory() / "pfx" / certificate.serial_hex
folder.mkdir(mode=0o700, parents=True, exist_ok=True)
friendly_name = f"{certificate.names[0]} (acmelab course)"
files = {}
for profile in pkcs12.PROFILES:
    path = folder / f"{profile}.pfx"
    if not path.exists():
        pkcs12.write_pkcs12(path, certificate.private_key, certificate.chain_pem, password=password,
                            profile=profile, friendly_name=friendly_name)
    files[profile] = path
    print(f"{profile:7} {path.name:11} mode {oct(path.stat().st_mode & 0o777)}")

# %% [markdown]
# ## Check them
#
# Open each file again with the password, as Windows will: the leaf, the chain, the friendly
# name, and whether the key inside matches the leaf.

# %%
rows = []
for profile, path in files.items():
    bundle = pkcs12.load_pkcs12(path, password=password)
    rows.append([profile, bundle.certificate.subject.rfc4514_string(),
                 ", ".join(c.subject.rfc4514_string() for c in bundle.chain),
                 bundle.friendly_name, bundle.serial_hex == certificate.serial_hex])
display.table(rows, header=["profile", "leaf", "chain", "friendly name", "our certificate"])

# %% [markdown]
# A wrong password is refused (the MAC does not verify) — with the same message either way,
# since a file cannot tell a wrong password from a damaged file:

# %%
from acmelab.errors import InputError

try:
    pkcs12.load_pkcs12(files["modern"], password="not the password")
except InputError as error:
    print(type(error).__name__, "->", error)

# %% [markdown]
# Which algorithms are really inside? OpenSSL's `pkcs12 -info` lists the bags and their
# encryption (on its standard error) without printing any key (`-noout`). The password goes
# through an environment variable, never on the command line, where other users could see it
# in the process list.
#
# Two iteration counts appear, for two different jobs. The bags are encrypted with a key
# derived from the password with 50 000 iterations (the `iterations` argument; PBKDF2 in
# `modern`, PKCS#12's own KDF in `legacy`). The MAC has its own key, derived by PKCS#12's KDF
# with 2048 iterations (the fixed value of `cryptography`, and OpenSSL's default). Someone guessing passwords can test each guess against
# either, and picks the cheaper one — the MAC — so it is the long random password that really
# protects the file (exercise 2 looks at this).

# %%
import os
import shutil
import subprocess

openssl = shutil.which("openssl")
for profile, path in files.items():
    if openssl is None:
        print("openssl is not installed; skipped")
        break
    listing = subprocess.run([openssl, "pkcs12", "-info", "-noout", "-in", str(path), "-passin", "env:PFX_PASSWORD"],
                             env={**os.environ, "PFX_PASSWORD": password}, capture_output=True, text=True, check=True)
    print(f"== {profile}\n{(listing.stderr + listing.stdout).strip()}\n")

# %% [markdown]
# ## Importing into IIS
#
# Windows identifies a certificate by its **thumbprint**: the SHA-1 hash of the certificate's
# DER (not of the key), in upper-case hex. IIS bindings refer to it. Same word, different
# thing from notebook 01's thumbprint: that one hashes the account key's JWK in RFC 7638's
# canonical form, with SHA-256 (RFC 8555 §8.1), for ACME's key authorization; this one names
# a certificate in Windows.

# %%
from cryptography import x509
from cryptography.hazmat.primitives import hashes

leaf = x509.load_pem_x509_certificate(certificate.certificate_pem.encode())
thumbprint = leaf.fingerprint(hashes.SHA1()).hex().upper()
print("thumbprint (SHA-1):", thumbprint)
print("friendly name:     ", friendly_name)
print("host names:        ", ", ".join(certificate.names))

# %% [markdown]
# ### With PowerShell (Windows Server 2016 and later, as Administrator)
#
# Copy `modern.pfx` (or `legacy.pfx` for Windows Server 2016 and older) to the server, then:
#
# ```powershell
# # 1. Import into the machine's Personal store. Read-Host keeps the password off the screen
# #    and out of the command history.
# $password = Read-Host -AsSecureString -Prompt "PFX password"
# $imported = Import-PfxCertificate -FilePath C:\certs\modern.pfx `
#     -CertStoreLocation Cert:\LocalMachine\My -Password $password
# $imported.Thumbprint          # the thumbprint shown above
#
# # 2. An HTTPS binding with SNI (SslFlags 1) for the host name, and the certificate on it.
# Import-Module WebAdministration
# New-WebBinding -Name "Default Web Site" -Protocol https -Port 443 -HostHeader api.example.com -SslFlags 1
# (Get-WebBinding -Name "Default Web Site" -Protocol https -HostHeader api.example.com).AddSslCertificate($imported.Thumbprint, "My")
#
# # 3. Remove the .pfx file from the server once imported.
# Remove-Item C:\certs\modern.pfx
# ```
#
# Without `-Exportable`, the key cannot be exported again from Windows — good: the `.pfx` and
# `privkey.pem` you keep are the only copies.

# %% [markdown]
# ### With IIS Manager
#
# 1. Open **IIS Manager**, select the **server** node, open **Server Certificates**.
# 2. **Import…** (right pane): choose the `.pfx` file, type the password, certificate store
#    **Personal** (or **Web Hosting**); leave *Allow this certificate to be exported* unticked.
#    The list now shows the friendly name above.
# 3. Select the **site**, **Bindings…** → **Add…**: Type `https`, Port `443`, Host name
#    `api.example.com`, tick **Require Server Name Indication**, SSL certificate: the friendly
#    name above → **OK**.
# 4. Browse to `https://api.example.com/` and check the certificate's thumbprint.
#
# At renewal (notebook 12), import the new file and change the binding to the new certificate:
# with PowerShell, `AddSslCertificate` with the new thumbprint; in IIS Manager, **Edit…** the
# binding.

# %% [markdown]
# ## Summary
#
# * PKCS#12 puts key, leaf and chain in one password-protected file; IIS imports it.
# * `modern` (AES-256, PBKDF2-SHA256, HMAC-SHA256) for current Windows; `legacy` (3DES,
#   HMAC-SHA1) only for Windows Server 2016 and older.
# * Random password, stored 0600, never printed and never on a command line; files 0600, never
#   overwritten; read back before handing out.
# * Import with `Import-PfxCertificate` or IIS Manager, bind by thumbprint with SNI.
#
# ## Exercises
#
# 1. Try `pkcs12.export_pkcs12(certificate.private_key, certificate.chain_pem, password="")`:
#    `check("11.1", type(error))`. What would `unencrypted=True` mean for the key?
# 2. Which is the oldest Windows Server that imports the default (AES-256, PBES2) files?
#    `check("11.2", year)`.
# 3. Export the *alternate* chain of notebook 09 into a `.pfx` and
#    `assert bundle.chain[-1].issuer != default_bundle.chain[-1].issuer`. When would a Windows
#    server need it?

# %%
from acmelab.exercises import check

check("11.1", ...)  # the exception class
check("11.2", ...)  # a year

# %% [markdown]
# **Previous:** [10 · Install on API Gateway and CDN](10_install_api_gateway_and_cdn.ipynb) · **Next:** [12 · Renewal and ARI](12_renewal_and_ari.ipynb)
