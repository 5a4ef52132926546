# %% [markdown]
# # 01 · The account key
#
# **Goal:** make the key that will sign every ACME request, save it safely, and look at its
# public half the way the CA sees it: as a JWK, and as a thumbprint.
#
# **Needs:** nothing (the lab is not used yet).
#
# **Previous:** [00 · Start here](00_start_here.ipynb) · **Next:** [02 · The certificate key and the CSR](02_certificate_key_and_csr.ipynb)

# %% [markdown]
# ## One key, two jobs it must never mix
#
# ACME has no passwords. Your **account** at the CA *is* a key pair: every request you send is
# signed with the private **account key**, and the CA recognises you by the public half.
# Whoever holds the account key can order certificates for every domain the account has
# validated recently, revoke your certificates, or deactivate the account. If you lose it you
# cannot manage that account any more (you simply make a new one; nothing is lost at the CA
# but the link to your old orders). A lost account key does not stop you revoking, either:
# a certificate can also be revoked with its own certificate key (notebook 13).
#
# The account key is **not** the key of your certificate. Each certificate gets a key of its
# own (notebook 02). Keeping them apart means a web server that is broken into leaks only a
# certificate key, not the power to get new certificates.

# %% [markdown]
# ## RSA or ECDSA?
#
# `acmelab.keys` makes the key types Let's Encrypt accepts. Each maps to one JWS signature
# algorithm (RFC 7518): RSA keys sign with `RS256`, P-256 keys with `ES256`, P-384 keys with
# `ES384`. ECDSA P-256 is the modern default: small keys, small signatures, fast.

# %%
from acmelab import keys

for key_type in ("rsa2048", "ec256", "ec384"):
    key = keys.generate_key(key_type)
    print(f"{key_type:8} -> {type(key).__name__:22} signs with {keys.jws_algorithm(key)}")

# %% [markdown]
# ## Saving it safely
#
# A private key on disk must be readable by its owner only (mode `0600`), written
# atomically (a temporary file in the same folder, then a rename, so a crash never leaves
# half a key), and never overwritten by accident. We try that in a throw-away folder first:

# %%
import tempfile
from pathlib import Path

from acmelab import display

workdir = Path(tempfile.mkdtemp(prefix="acmelab-01-"))
demo_key = keys.generate_key("ec256")
path = keys.save_private_key(demo_key, workdir / "account.key")
print("saved", path.name, "mode", oct(path.stat().st_mode & 0o777))

# %% [markdown]
# Saving a *different* key to the same file is refused — the library will not destroy a key
# you might still need:

# %%
from acmelab.errors import KeyExistsError

try:
    keys.save_private_key(keys.generate_key("ec256"), workdir / "account.key")
except KeyExistsError as error:
    print(display.error(error, tmp=workdir))

# %% [markdown]
# A key can also be encrypted with a passphrase (PKCS#8 with AES). Loading it with the wrong
# passphrase, or with none, fails with a clear `InputError` instead of a cryptic one:

# %%
from acmelab.errors import InputError

keys.save_private_key(demo_key, workdir / "protected.key", passphrase="correct horse battery staple")
for attempt in ("wrong", None):
    try:
        keys.load_private_key(workdir / "protected.key", passphrase=attempt)
    except InputError as error:
        print(display.error(error, tmp=workdir))
reloaded = keys.load_private_key(workdir / "protected.key", passphrase="correct horse battery staple")
print("right passphrase: same key?", keys.thumbprint(reloaded) == keys.thumbprint(demo_key))

# %% [markdown]
# ## The public key as a JWK
#
# The CA never sees the private key. It sees the public key as a **JSON Web Key**
# (RFC 7517): for an EC key the curve and the two coordinates of the public point, each
# base64url-encoded; for RSA the modulus `n` and exponent `e`. This JWK goes into the header of
# the very first request (notebook 04).

# %%
display.json_view(keys.public_jwk(demo_key), title="JWK of the demo key")

# %% [markdown]
# ## The thumbprint
#
# A **thumbprint** (RFC 7638) is a short, stable name for a public key: a hash of the JWK's
# *required* members, in lexicographic order, with no spaces, then base64url. RFC 7638 leaves
# the hash to the protocol that uses it; ACME uses SHA-256 (RFC 8555 §8.1). The thumbprint goes
# inside every challenge answer (the *key authorization*, notebook 07), which ties the proof
# of domain control to your account key.
#
# ```mermaid thumbprint
# flowchart LR
#     accTitle: The account key's thumbprint (RFC 7638; SHA-256 in ACME, RFC 8555 §8.1)
#     jwk["public JWK<br/>kty, crv, x, y<br/>(and any other members)"] -->|"required members only,<br/>sorted, no spaces"| canon["canonical JSON, UTF-8<br/>{#quot;crv#quot;:#quot;P-256#quot;,#quot;kty#quot;:#quot;EC#quot;,<br/>#quot;x#quot;:…,#quot;y#quot;:…}"]
#     canon --> sha["SHA-256<br/>32 bytes"]
#     sha --> b64["base64url, no padding<br/>43 characters"]
#     b64 -.->|"in every key authorization<br/>(notebook 07)"| use["token.thumbprint"]
# ```
#
# By hand:

# %%
import hashlib
import json

from acmelab.jws import b64url

jwk = keys.public_jwk(demo_key)
canonical = json.dumps({name: jwk[name] for name in ("crv", "kty", "x", "y")}, separators=(",", ":"))
print(canonical.split(',"x"')[0] + ',"x":"…","y":"…"}')
by_hand = b64url(hashlib.sha256(canonical.encode()).digest())
print("thumbprint:", by_hand, f"({len(by_hand)} characters)")
print("same as keys.thumbprint():", by_hand == keys.thumbprint(demo_key))

# %% [markdown]
# ## The course's account key
#
# Now the key the rest of the course uses. `course.account_key()` loads it from the course
# folder if it is already there, and otherwise makes an ECDSA P-256 key and saves it (mode
# 0600, never overwritten). Every later notebook calls the same function, so each one also
# runs on its own.

# %%
from acmelab import course

account_key = course.account_key()
key_path = course.account_key_path()
print("account key:", keys.key_type_of(account_key), "at", course.relative(key_path),
      "mode", oct(key_path.stat().st_mode & 0o777))

# %% [markdown]
# Notice what we never did: print the key, put it in an exception message, or log it. A
# leaked account key is worse than a lost one. The remedy is to **deactivate** the account
# (RFC 8555 §7.3.6, notebook 13), create a new one with a new key, and revoke any certificate
# you did not order. Key rollover (notebook 13) is *not* a remedy: whoever holds the leaked key
# can roll the account over to a key of their own just as well.

# %%
import shutil

shutil.rmtree(workdir)  # the demo keys were for this notebook only

# %% [markdown]
# ## Summary
#
# * The account key *is* the ACME account; keep it apart from certificate keys.
# * ECDSA P-256 (`ES256`) is the default; RSA (`RS256`) works too.
# * Save keys atomically, mode 0600, never overwriting; a passphrase is optional.
# * The CA sees the public key as a JWK; its RFC 7638 thumbprint (SHA-256 in ACME) names it in challenges.
# * A leaked account key: deactivate the account, make a new one, revoke what you did not order.
#
# ## Exercises
#
# 1. Compute the thumbprint of an `rsa2048` key by hand (which members are required for RSA?):
#    `check("01.1", (rsa_key, my_thumbprint))`.
# 2. What does `keys.save_private_key(key, course.account_key_path())` raise, since the file
#    exists? `check("01.2", type(error))`. When would you want `overwrite=True` — and what must
#    you have done first?
# 3. Which key signs `newOrder`: `check("01.3", "account" or "certificate")`. Why is an attacker
#    with a copy of your *certificate* key still unable to order new certificates?

# %%
from acmelab.exercises import check

check("01.1", ...)  # (rsa_key, thumbprint by hand)
check("01.2", ...)  # the exception class
check("01.3", ...)  # "account" or "certificate"

# %% [markdown]
# **Previous:** [00 · Start here](00_start_here.ipynb) · **Next:** [02 · The certificate key and the CSR](02_certificate_key_and_csr.ipynb)
