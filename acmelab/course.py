"""The course's working directory: what one notebook saves, the next one picks up.

Theory of operation
-------------------
The notebooks of the series build on each other: 01 makes the account key,
02 the certificate key and the CSR, 05 the account, 06 the order, and so on.
Each notebook must also run on its own.  So every artefact lives at a fixed
path under the course directory, and every notebook gets it through one
helper here that *loads it if an earlier notebook saved it, or creates and
saves it otherwise* -- one visible call, the same output either way.

Where things are::

    notebooks/course/            (git-ignored; env ACMELAB_COURSE_DIR overrides)
      lab/                       one folder per ACME target: lab, staging, production, custom
        account.key              the account key (PEM PKCS#8, mode 0600, never overwritten)
        state.json               small facts worth keeping: account URL, order URL, ...
        certificates/<label>/
          privkey.pem            that certificate's own key (0600)
          request.csr            its CSR (PEM)
          fullchain.pem          leaf + intermediates, once issued
          cert.pem               the leaf alone

Which CA and which names (the environment variables, documented in
notebook 00 and the README):

==============================  ============================================
``ACMELAB_ACME``                ``lab`` (default), ``staging``, ``production``
                                or a directory URL
``ACMELAB_PRODUCTION``          must be ``yes`` to use Let's Encrypt production
``ACMELAB_DOMAIN``              the domain the course's certificate is for
                                (default ``example.com``; required outside the lab)
``ACMELAB_CONTACT``             e-mail address for the account (optional)
``ACMELAB_CA_BUNDLE``           PEM bundle to trust for a private ACME server
``ACMELAB_COURSE_DIR``          where the course directory is
``ALIBABA_CLOUD_ACCESS_KEY_ID``
``ALIBABA_CLOUD_ACCESS_KEY_SECRET``  a real Alibaba Cloud RAM user (outside the lab)
==============================  ============================================

A helper that *creates* something instead of loading it prints one line
saying so, ``course: created ...`` (so a notebook run alone shows what it
made that an earlier notebook would have); ``notebooks/sanitize.cfg``
drops that line before nbval compares outputs, since whether it appears
depends on what the course directory and the lab already hold.

Nothing here prints or returns key material in text form.

Three more modules hold helpers that this one re-exports:
:mod:`acmelab.course_lab` (the course's lab, shared between processes),
:mod:`acmelab.course_orders` (the order and the certificate, notebooks
06-12) and :mod:`acmelab.course_cloud` (Alibaba Cloud, notebooks 07-15).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acmelab import files
from acmelab.backends import DIRECTORIES, LETSENCRYPT_PRODUCTION, LETSENCRYPT_STAGING  # noqa: F401 (course.*)
from acmelab.errors import InputError

#: The domain the course uses in the lab (the lab's DNS answers for anything).
LAB_DOMAIN = "example.com"

_REPO = Path(__file__).resolve().parent.parent


def announce_created(what: str) -> None:
    """Say, in one line (``course: created <what>``), that a helper made
    ``what`` instead of loading it (see the module docstring)."""
    print(f"course: created {what}", flush=True)


def base_directory() -> Path:
    """The course directory: ``$ACMELAB_COURSE_DIR``, else
    ``<checkout>/notebooks/course`` in a source checkout, else
    ``~/.acmelab/course``.  Created (mode 0700) if missing."""
    configured = os.environ.get("ACMELAB_COURSE_DIR")
    if configured:
        path = Path(configured).expanduser()
    elif (_REPO / "notebooks").is_dir() and (_REPO / "pyproject.toml").is_file():
        path = _REPO / "notebooks" / "course"
    else:
        path = Path.home() / ".acmelab" / "course"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------
# Which CA: the lab, Let's Encrypt staging or production, or any directory
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """The ACME server and names the course talks to.

    Attributes:
        environment: ``"lab"``, ``"staging"``, ``"production"`` or ``"custom"``.
        directory_url: the RFC 8555 §7.1.1 directory URL.
        verify: what to pass as requests' ``verify=``: the lab CA's PEM
            bundle (Path) for the lab, ``$ACMELAB_CA_BUNDLE`` if set, else
            ``True`` (the system's trust store).  Never False.
        domain: the registered domain the course certificate is for.
        contact: account contact URLs (``["mailto:..."]``) or ``[]``.
        lab: the :class:`acmelab.lab.LabInfo` when ``environment == "lab"``.
    """

    environment: str
    directory_url: str
    verify: Path | bool
    domain: str
    contact: list[str] = field(default_factory=list)
    lab: Any = field(default=None, repr=False)


def target() -> Target:
    """Read the environment variables and return the :class:`Target`.

    For the lab (the default) the lab is started if it is not running
    (:func:`acmelab.lab.ensure_running`).

    Raises:
        InputError: production without ``ACMELAB_PRODUCTION=yes``, a
            directory that is not an https URL, or no ``ACMELAB_DOMAIN``
            outside the lab.
        LabError: the lab could not be started.
    """
    choice = os.environ.get("ACMELAB_ACME", "lab").strip() or "lab"
    contact_address = os.environ.get("ACMELAB_CONTACT", "").strip()
    contact = [contact_address if contact_address.startswith("mailto:") else f"mailto:{contact_address}"] \
        if contact_address else []
    domain = os.environ.get("ACMELAB_DOMAIN", "").strip().rstrip(".").lower()

    if choice == "lab":
        info = lab()
        return Target("lab", info.directory_url, Path(info.ca_bundle), domain or LAB_DOMAIN, contact, info)

    if choice in DIRECTORIES:  # "staging", "production": the command's --directory names
        environment, url = choice, DIRECTORIES[choice]
    elif choice.startswith("https://"):
        url = choice
        environment = next((name for name, known in DIRECTORIES.items() if choice.rstrip("/") == known), "custom")
    else:
        raise InputError(f"ACMELAB_ACME must be lab, staging, production or an https:// directory URL, not {choice!r}")
    if environment == "production" and os.environ.get("ACMELAB_PRODUCTION") != "yes":
        raise InputError("Let's Encrypt production issues real certificates and has strict rate limits: "
                         "set ACMELAB_PRODUCTION=yes to confirm (try ACMELAB_ACME=staging first)")
    if not domain:
        raise InputError("set ACMELAB_DOMAIN to a domain whose DNS you control (e.g. in Alibaba Cloud DNS)")
    bundle = os.environ.get("ACMELAB_CA_BUNDLE", "").strip()
    if bundle and not Path(bundle).expanduser().is_file():
        raise InputError(f"ACMELAB_CA_BUNDLE names no file: {bundle}")
    return Target(environment, url, Path(bundle).expanduser() if bundle else True, domain, contact, None)


#: How the course runs Pebble (see :mod:`acmelab.course_lab`).
from acmelab.course_lab import LAB_PEBBLE_ENV, ensure_lab, join_lab, leave_lab  # noqa: E402,F401


def lab():
    """The course's lab (default run dir and ports), started if needed with
    :data:`LAB_PEBBLE_ENV` -- the default of ``acmelab lab up`` too, so a lab
    started that way is used as it is.  A lab already running in the default
    run dir with other Pebble settings is restarted with the course's
    (accounts and orders on it are forgotten; keys in the course directory
    are kept), and a warning saying so goes to stderr.

    Several processes may call this at once (notebook kernels, test
    sessions): starting and stopping the course's lab happen under one
    file lock, see :func:`join_lab` / :func:`leave_lab`.

    Returns:
        :class:`acmelab.lab.LabInfo`.

    Raises:
        LabError: the lab could not be started.
    """
    return ensure_lab()[0]


def directory() -> Path:
    """The course directory of the current target, e.g.
    ``notebooks/course/lab`` (created, mode 0700)."""
    path = base_directory() / target().environment
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def names() -> list[str]:
    """The names of the course's certificate: the API Gateway and the CDN
    host of the domain, e.g. ``["api.example.com", "cdn.example.com"]``."""
    domain = target().domain
    return [f"api.{domain}", f"cdn.{domain}"]


def relative(path: Path) -> str:
    """``path`` as ``course/lab/...`` when it is inside the course directory
    (for printing: the same text on every machine), else unchanged."""
    path = Path(path)
    base = base_directory()
    try:
        return str(Path("course") / path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------
# Keys, CSRs, chains
# --------------------------------------------------------------------------

def account_key_path() -> Path:
    """Where the account key lives: ``<course>/<target>/account.key``."""
    return directory() / "account.key"


def account_key(key_type: str = "ec256"):
    """The course's account key: loaded if saved (by notebook 01), otherwise
    generated (``key_type``, see :data:`acmelab.keys.KEY_TYPES`) and saved
    atomically with mode 0600.  An existing key is never replaced.

    Returns:
        a ``cryptography`` RSA or EC private key.

    Raises:
        InputError: the saved file is not a usable private key.
    """
    from acmelab.keys import generate_key, load_private_key, save_private_key

    path = account_key_path()
    if path.exists():
        return load_private_key(path)
    key = generate_key(key_type)
    try:
        save_private_key(key, path)
    except FileExistsError:  # another process saved one meanwhile: use that one
        return load_private_key(path)
    announce_created(f"the account key {relative(path)} ({key_type}, mode 0600; notebook 01 makes it)")
    return key


def certificate_directory(label: str = "course") -> Path:
    """``<course>/<target>/certificates/<label>/`` (created, mode 0700)."""
    if not label or "/" in label or label.startswith("."):
        raise InputError(f"certificate label must be a plain folder name, not {label!r}")
    path = directory() / "certificates" / label
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def certificate_key_path(label: str = "course") -> Path:
    """Where certificate ``label``'s private key lives (PEM PKCS#8, 0600)."""
    return certificate_directory(label) / "privkey.pem"


def csr_path(label: str = "course") -> Path:
    """Where certificate ``label``'s CSR lives (PEM, PKCS#10)."""
    return certificate_directory(label) / "request.csr"


def chain_path(label: str = "course") -> Path:
    """Full chain PEM (leaf + intermediates) of certificate ``label``."""
    return certificate_directory(label) / "fullchain.pem"


def leaf_path(label: str = "course") -> Path:
    """The leaf certificate PEM of certificate ``label``."""
    return certificate_directory(label) / "cert.pem"


def certificate_key(label: str = "course", key_type: str = "ec256"):
    """The private key of certificate ``label`` -- one key per certificate,
    never the account key.  Loaded if saved (notebook 02), else generated
    (``key_type``) and saved atomically (0600); never replaced.

    Raises:
        InputError: a bad label, or the saved file is not a usable key.
    """
    from acmelab.keys import generate_key, load_private_key, save_private_key

    path = certificate_key_path(label)
    if path.exists():
        return load_private_key(path)
    key = generate_key(key_type)
    try:
        save_private_key(key, path)
    except FileExistsError:
        return load_private_key(path)
    announce_created(f"the certificate key {relative(path)} ({key_type}, mode 0600; notebook 02 makes it)")
    return key


def csr(label: str = "course", certificate_names: list[str] | None = None):
    """The CSR of certificate ``label`` for ``certificate_names`` (default
    :func:`names`), signed by :func:`certificate_key`.  Loaded if saved
    and for the same names, else made and saved (PEM).

    Returns:
        ``cryptography.x509.CertificateSigningRequest``.

    Raises:
        InputError: a name :func:`acmelab.csr.normalize_name` refuses.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from acmelab.csr import inspect_csr, make_csr, normalize_name

    wanted = [normalize_name(n) for n in (certificate_names or names())]
    path = csr_path(label)
    if path.exists():
        request = x509.load_pem_x509_csr(path.read_bytes())
        if sorted(inspect_csr(request).names) == sorted(wanted):
            return request
    request = make_csr(certificate_key(label), wanted)
    files.write_atomically(path, request.public_bytes(serialization.Encoding.PEM))
    announce_created(f"the CSR {relative(path)} for {', '.join(wanted)} (notebook 02 makes it)")
    return request


def write_atomically(path: Path, data: bytes, *, mode: int = 0o644) -> Path:
    """:func:`acmelab.files.write_atomically`, creating the course's folders
    as needed (never a half-written file): the spelling the notebooks use
    for a file of their own (notebook 11's PKCS#12 password)."""
    return files.write_atomically(path, data, mode=mode, parents=True)


# --------------------------------------------------------------------------
# Small state: account URL, order URL, ...
# --------------------------------------------------------------------------

def state_path() -> Path:
    """``<course>/<target>/state.json``: the facts :func:`remember` keeps."""
    return directory() / "state.json"


def load_state() -> dict[str, Any]:
    """The course's saved facts (dict; empty if nothing saved yet)."""
    path = state_path()
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise InputError(f"{relative(path)} is not JSON; delete it to start over") from None


def remember(**facts: Any) -> dict[str, Any]:
    """Save JSON-serialisable facts (e.g. ``order_url=...``) into
    ``state.json`` (atomically) and return the whole state.  Never put a
    secret here: the file is not private."""
    state = load_state()
    state.update(facts)
    files.write_atomically(state_path(), json.dumps(state, indent=2, sort_keys=True).encode() + b"\n")
    return state


def recall(name: str, default: Any = None) -> Any:
    """One saved fact, or ``default``."""
    return load_state().get(name, default)


# --------------------------------------------------------------------------
# The client and the account
# --------------------------------------------------------------------------

def backend():
    """The current target as the command sees it: the
    :class:`acmelab.backends.Backend` that ``acmelab --directory`` builds
    (a ``LabBackend`` for the lab; otherwise a ``CloudBackend`` for the
    directory URL, TLS verified against ``ACMELAB_CA_BUNDLE`` or the system
    store), with the roots of :func:`trust_roots` and the Alibaba Cloud
    region ``ALIBABA_CLOUD_REGION_ID`` (default ``cn-hangzhou``).  The
    course's clients are made by it, with the command's code."""
    from acmelab.backends import backend_for

    chosen = target()
    verify = str(chosen.verify) if isinstance(chosen.verify, Path) else chosen.verify
    roots = letsencrypt_staging_roots() if chosen.environment == "staging" else None  # the lab's: its own
    return backend_for(chosen.directory_url, verify, lab=chosen.lab, trust_roots=roots,
                       region_id=os.environ.get("ALIBABA_CLOUD_REGION_ID", "").strip() or "cn-hangzhou")


def client(key=None, *, account_url: str | None = None):
    """An :class:`acmelab.client.AcmeClient` for the current target
    (:meth:`backend().acme_client <acmelab.backends.Backend.acme_client>`),
    signing with ``key`` (default: :func:`account_key`) as the account at
    ``account_url`` if given; TLS verified against the lab's CA (lab) or
    the system trust store (Let's Encrypt)."""
    return backend().acme_client(key if key is not None else account_key(), account_url=account_url)


def account_client():
    """A client signed in as the course's account: :func:`client` with
    :func:`account_key`.  The account is looked up (``newAccount`` with
    ``onlyReturnExisting``, RFC 8555 §7.3.1)
    and, if the CA has none for the key (a fresh lab), created
    (``newAccount``, §7.3; ``ACMELAB_CONTACT`` as contact, terms of service
    agreed, EAB as the command does it, :meth:`acmelab.backends.Backend.eab`)
    with a ``course: created`` line.  The account URL is remembered as
    ``account_url``.

    Returns:
        :class:`acmelab.client.AcmeClient` with ``account_url`` set.

    Raises:
        AcmeProblem: the CA refused (e.g. ``externalAccountRequired``).
    """
    from acmelab.errors import AccountDoesNotExist

    chosen = backend()
    acme = chosen.acme_client(account_key())
    try:
        account = acme.find_account()
    except AccountDoesNotExist:
        account = acme.new_account(target().contact, terms_of_service_agreed=True, **chosen.eab(None))
        announce_created(f"the course's account {account.url} (newAccount; notebook 05 makes it)")
    remember(account_url=account.url)
    return acme


# --------------------------------------------------------------------------
# The roots a chain must lead to (notebooks 09-12)
# --------------------------------------------------------------------------

#: Let's Encrypt's published staging roots, shipped with the package
#: (public certificates): Pretend Pear X1, Bogus Broccoli X2 and the Gen Y
#: roots Yonder Yam YR and Yearning Yucca YE.
STAGING_ROOTS_FILE = "data/letsencrypt-staging-roots.pem"


def letsencrypt_staging_roots() -> list[str]:
    """The PEM texts of Let's Encrypt's staging roots (package data, read
    offline; see :data:`STAGING_ROOTS_FILE`), one certificate each.  For
    testing only: no trust store holds them, and none should."""
    from importlib import resources

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    data = resources.files("acmelab").joinpath(STAGING_ROOTS_FILE).read_bytes()
    return [certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
            for certificate in x509.load_pem_x509_certificates(data)]


def trust_roots() -> list[str] | None:
    """PEM roots an issued chain must lead to: Pebble's roots in the lab
    (they change at every lab start), Let's Encrypt's staging roots
    (:func:`letsencrypt_staging_roots`) with ``staging``, None (the system
    store) for production and a custom directory."""
    chosen = target()
    if chosen.lab is not None:
        return chosen.lab.roots()
    if chosen.environment == "staging":
        return letsencrypt_staging_roots()
    return None


# The order and the certificate (notebooks 06-12): acmelab.course_orders
from acmelab.course_orders import issued_certificate, pending_order, ready_order, save_certificate  # noqa: E402,F401

# Alibaba Cloud helpers (notebooks 07-15): acmelab.course_cloud
from acmelab.course_cloud import (LAB_API_GROUP_ID, aliyun_client, api_group_id, dns_provider,  # noqa: E402,F401
                                  handshake_address, ram_policy, services_toml)
