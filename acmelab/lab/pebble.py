"""Pebble's configuration: the JSON config file, the command lines and the
``PEBBLE_*`` environment knobs.

Pebble at the pinned commit (:data:`acmelab.lab.build.PEBBLE_COMMIT`) reads
(its README, "Testing at full speed" and following):

=============================  ==============================================
``PEBBLE_VA_NOSLEEP``          ``1``: validate challenges without random sleeps (lab default)
``PEBBLE_VA_SLEEPTIME``        sleep a random whole 0..N-1 s before each validation (va.go;
                               only without NOSLEEP: setting it alone turns NOSLEEP off)
``PEBBLE_VA_ALWAYS_VALID``     ``1``: skip validation, every challenge succeeds
``PEBBLE_WFE_NONCEREJECT``     percent of valid nonces rejected as ``badNonce`` (Pebble default 5)
``PEBBLE_AUTHZREUSE``          percent of valid authorizations reused (Pebble default 50)
``PEBBLE_ALTERNATE_ROOTS``     number of extra root chains (``Link: rel="alternate"``)
``PEBBLE_CHAIN_LENGTH``        intermediates per chain (default/minimum 1)
``PEBBLE_WFE_ORDERS_PER_PAGE`` orders per page of an account's order list (default 3)
=============================  ==============================================

``-strict`` turns on upcoming breaking changes; the config's
``externalAccountBindingRequired`` / ``externalAccountMACKeys`` turn on
External Account Binding (RFC 8555 §7.3.4).

The config also carries what Let's Encrypt speaks in 2026:

* ``profiles`` (draft-ietf-acme-profiles): name -> description and
  ``validityPeriod`` in seconds; the directory lists them in
  ``meta.profiles``.  The lab offers Let's Encrypt's three,
  :data:`LETSENCRYPT_PROFILES`.  Pebble picks a *random* profile for an
  order that names none; acmelab always names one (``classic`` by default).
* ``retryAfter`` ``{authz, order}`` in seconds: the ``Retry-After`` header
  Pebble sends on an authorization whose challenge is processing and on a
  processing order (including the finalize answer); 0 sends none.
  Pebble writes it as delay-seconds or as an HTTP-date, at random.
* ``keyAlgorithm``: ``rsa`` or ``ecdsa``, the CA's own keys.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from acmelab.errors import InputError
from acmelab.files import write_atomically

#: the Pebble environment knobs the lab knows about (others are passed on too,
#: as long as they start with PEBBLE_)
PEBBLE_KNOBS = (
    "PEBBLE_VA_NOSLEEP",
    "PEBBLE_VA_ALWAYS_VALID",
    "PEBBLE_VA_SLEEPTIME",
    "PEBBLE_WFE_NONCEREJECT",
    "PEBBLE_AUTHZREUSE",
    "PEBBLE_ALTERNATE_ROOTS",
    "PEBBLE_CHAIN_LENGTH",
    "PEBBLE_WFE_ORDERS_PER_PAGE",
)

#: what the lab sets unless the caller overrides it
DEFAULT_PEBBLE_ENV = {"PEBBLE_VA_NOSLEEP": "1"}

#: How the course runs Pebble, and the default of a detached lab
#: (:func:`acmelab.lab.ensure_running`, ``acmelab lab up``): no random
#: sleeps, no randomly rejected nonces and no reuse of valid authorizations
#: (so every run of the series shows the same statuses), one alternate chain
#: (notebook 09).  Let's Encrypt itself does reject nonces now and then and
#: does reuse authorizations; the client copes with both, and the tests
#: exercise them.  "No reuse" is Pebble's ``PEBBLE_AUTHZREUSE=0``, which
#: still reuses about 1 time in 100 (wfe.go: ``rand.Intn(100) > percent``):
#: where a run must show fresh authorizations, the caller gives the valid
#: ones up first (``AcmeClient.deactivate_valid_authorizations``).
COURSE_PEBBLE_ENV = {
    "PEBBLE_VA_NOSLEEP": "1",
    "PEBBLE_WFE_NONCEREJECT": "0",
    "PEBBLE_AUTHZREUSE": "0",
    "PEBBLE_ALTERNATE_ROOTS": "1",
}

#: Let's Encrypt's profiles as of 2026 (letsencrypt.org/docs/profiles):
#: name -> (description, lifetime in seconds).
LETSENCRYPT_PROFILES: dict[str, tuple[str, int]] = {
    "classic": ("90-day certificates, CN kept, up to 100 names (Let's Encrypt's default)", 90 * 86400),
    "tlsserver": ("45-day certificates, no CN, TLS server auth only, up to 25 names", 45 * 86400),
    "shortlived": ("160-hour (6-day) certificates; the only profile for IP addresses", 160 * 3600),
}

#: the profiles whose certificates carry the first name as CN too, as Let's
#: Encrypt's ``classic`` does (Pebble's ``promoteCommonName``; the others keep
#: the names in the SAN only)
COMMON_NAME_PROFILES = frozenset({"classic"})

#: seconds of ``Retry-After`` a lab sends by default (:class:`acmelab.lab.Lab`):
#: none, so the tests run at full speed unless they ask for it.
DEFAULT_RETRY_AFTER = {"authz": 0, "order": 0}
#: ... and the course's detached lab: one second, so every notebook meets
#: real ``Retry-After`` headers and the series stays fast.
COURSE_RETRY_AFTER = {"authz": 1, "order": 1}

_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


def pebble_environment(pebble_env: dict[str, str] | None,
                       defaults: dict[str, str] = DEFAULT_PEBBLE_ENV) -> dict[str, str]:
    """The environment Pebble runs with: ours minus any inherited
    ``PEBBLE_*`` (so a stray shell variable cannot change the lab), then
    ``defaults`` (:data:`DEFAULT_PEBBLE_ENV` for a :class:`~acmelab.lab.Lab`,
    :data:`COURSE_PEBBLE_ENV` for :func:`~acmelab.lab.ensure_running`), then
    ``pebble_env``.  ``PEBBLE_VA_SLEEPTIME`` without ``PEBBLE_VA_NOSLEEP`` in
    ``pebble_env`` sets ``PEBBLE_VA_NOSLEEP=0`` whatever the defaults say
    (Pebble ignores the sleep time while NOSLEEP is on), so
    ``{"PEBBLE_VA_SLEEPTIME": "3"}`` alone makes validations take 0..2 s.

    Raises:
        InputError: a key that is not ``PEBBLE_*`` or a value that is not a
            string/int.
    """
    given = dict(pebble_env or {})
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PEBBLE_")}
    environment.update(defaults)
    for key, value in given.items():
        if not isinstance(key, str) or not key.startswith("PEBBLE_"):
            raise InputError(f"pebble_env keys must start with PEBBLE_ (got {key!r})")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise InputError(f"pebble_env[{key!r}] must be a string or int (got {type(value).__name__})")
        environment[key] = str(value)
    if "PEBBLE_VA_SLEEPTIME" in given and "PEBBLE_VA_NOSLEEP" not in given:
        environment["PEBBLE_VA_NOSLEEP"] = "0"
    return environment


def check_eab_keys(eab_keys: dict[str, str] | None) -> dict[str, str]:
    """Validate External Account Binding keys: ``{kid: base64url HMAC key}``.

    Raises:
        InputError: empty kid or a key that is not base64url.
    """
    checked: dict[str, str] = {}
    for kid, hmac_key in (eab_keys or {}).items():
        if not isinstance(kid, str) or not kid:
            raise InputError("EAB key ids must be non-empty strings")
        if not isinstance(hmac_key, str) or not _B64URL.match(hmac_key):
            raise InputError(f"EAB key for {kid!r} must be a base64url string (no padding)")
        checked[kid] = hmac_key
    return checked


def check_profiles(profiles: dict[str, tuple[str, int]] | None) -> dict[str, tuple[str, int]]:
    """Validate a profile table, name -> ``(description, lifetime seconds)``;
    None gives :data:`LETSENCRYPT_PROFILES`.

    Raises:
        InputError: an empty table, an empty name or a lifetime that is not a
            positive whole number of seconds.
    """
    if profiles is None:
        return dict(LETSENCRYPT_PROFILES)
    checked: dict[str, tuple[str, int]] = {}
    for name, value in dict(profiles).items():
        if not isinstance(name, str) or not name.strip():
            raise InputError("profile names must be non-empty strings")
        try:
            description, seconds = value
        except (TypeError, ValueError):
            raise InputError(f"profile {name!r} must be (description, lifetime seconds)") from None
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
            raise InputError(f"profile {name!r}: lifetime must be a positive number of seconds (got {seconds!r})")
        checked[name] = (str(description), seconds)
    if not checked:
        raise InputError("the lab needs at least one profile")
    return checked


def check_retry_after(retry_after: dict[str, int] | None) -> dict[str, int]:
    """Validate ``{"authz": s, "order": s}`` (whole seconds >= 0; a missing
    key is 0); None gives :data:`DEFAULT_RETRY_AFTER`.

    Raises:
        InputError: another key, or a value that is not a whole number >= 0.
    """
    checked = dict(DEFAULT_RETRY_AFTER)
    for key, value in (retry_after or {}).items():
        if key not in checked:
            raise InputError(f"retry_after takes 'authz' and 'order' (got {key!r})")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"retry_after[{key!r}] must be whole seconds >= 0 (got {value!r})")
        checked[key] = value
    return checked


def check_key_algorithm(key_algorithm: str) -> str:
    """``"rsa"`` (Pebble's default) or ``"ecdsa"``: the CA's own keys.

    Raises:
        InputError: anything else.
    """
    if key_algorithm not in ("rsa", "ecdsa"):
        raise InputError(f"key_algorithm must be 'rsa' or 'ecdsa' (got {key_algorithm!r})")
    return key_algorithm


def write_pebble_config(path: Path, *, acme_port: int, management_port: int,
                        certificate: Path, private_key: Path,
                        eab_keys: dict[str, str] | None = None,
                        profiles: dict[str, tuple[str, int]] | None = None,
                        retry_after: dict[str, int] | None = None,
                        key_algorithm: str = "rsa",
                        http_port: int = 5002, tls_port: int = 5001) -> Path:
    """Write Pebble's JSON config (mode 0600: it may hold EAB keys).

    Both listeners bind to 127.0.0.1 only.  ``httpPort``/``tlsPort`` are the
    ports Pebble's validation authority *connects to* for http-01 and
    tls-alpn-01; the lab validates with DNS and binds neither.  ``profiles``
    (default :data:`LETSENCRYPT_PROFILES`) and ``retry_after`` (default
    :data:`DEFAULT_RETRY_AFTER`) are checked by :func:`check_profiles` /
    :func:`check_retry_after`.
    """
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{acme_port}",
            "managementListenAddress": f"127.0.0.1:{management_port}",
            "certificate": str(certificate),
            "privateKey": str(private_key),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": bool(eab_keys),
            "keyAlgorithm": check_key_algorithm(key_algorithm),
            "retryAfter": check_retry_after(retry_after),
            "profiles": {name: {"description": description, "validityPeriod": seconds,
                                "promoteCommonName": name in COMMON_NAME_PROFILES}
                         for name, (description, seconds) in check_profiles(profiles).items()},
        }
    }
    if eab_keys:
        config["pebble"]["externalAccountMACKeys"] = dict(eab_keys)
    return write_atomically(Path(path), json.dumps(config, indent=2).encode(), mode=0o600, parents=True)


def pebble_argv(pebble: str, config: Path, dns_port: int, *, strict: bool) -> list[str]:
    """``pebble -config CONFIG -dnsserver 127.0.0.1:DNS [-strict]``."""
    argv = [pebble, "-config", str(config), "-dnsserver", f"127.0.0.1:{dns_port}"]
    if strict:
        argv.append("-strict")
    return argv


def challtestsrv_argv(challtestsrv: str, dns_port: int, management_port: int) -> list[str]:
    """pebble-challtestsrv with DNS and management on loopback and the
    HTTP-01/TLS-ALPN-01 responders and the DNS-over-HTTPS server (on by
    default on :8443, the Alibaba endpoint's port) switched off.  Pebble
    asks it over TCP."""
    return [
        challtestsrv,
        "-dnsserver", f"127.0.0.1:{dns_port}",
        "-doh", "",
        "-management", f"127.0.0.1:{management_port}",
        "-http01", "",
        "-https01", "",
        "-tlsalpn01", "",
    ]
