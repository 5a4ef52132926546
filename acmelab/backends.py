"""Where the engine runs: the cloud or the lab, behind one :class:`Backend` interface.

The engine (:mod:`acmelab.engine`), the operations (:mod:`acmelab.operations`)
and the command are given a backend and never ask "is this the lab?"; this
module is the one place outside :mod:`acmelab.lab` that knows the difference:

============================  ==================================  =====================================
                              :class:`CloudBackend`               :class:`LabBackend`
============================  ==================================  =====================================
ACME server                   a directory URL (Let's Encrypt)     the lab's Pebble, its CA bundle
DNS providers                 ``from_env`` (:mod:`acmelab.dns`)   ``for_lab`` (challtestsrv, mock DNS)
Alibaba Cloud API             credentials from the environment    the lab's endpoint and access key
TLS check after an install    ``<domain>:<port>``                 the product's edge listener
trust roots                   the system store (or given)         Pebble's current roots
EAB (RFC 8555 §7.3.4)         ``--eab-kid`` + HMAC key from env   the lab's own keys
an account the CA forgot      an error: register it again         registered again (a restart forgets)
============================  ==================================  =====================================

:func:`open_backend` turns ``--directory lab|staging|production|URL`` into one;
:class:`Environment` is what the engine is handed: a backend and the ACME
account, with one ACME / DNS / Alibaba client per thread.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from acmelab.config import InstallTarget
from acmelab.errors import ConfigError, InputError

__all__ = [
    "DIRECTORIES", "LETSENCRYPT_PRODUCTION", "LETSENCRYPT_STAGING", "EAB_HMAC_KEY_ENV", "Backend", "CloudBackend",
    "Environment", "LabBackend", "backend_for", "directory_url", "open_backend",
]

logger = logging.getLogger(__name__)

#: Let's Encrypt's directory URLs (RFC 8555 §7.1.1)
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
LETSENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
#: ``--directory`` names -> directory URLs
DIRECTORIES = {"staging": LETSENCRYPT_STAGING, "production": LETSENCRYPT_PRODUCTION}
#: where the EAB HMAC key of ``--eab-kid`` comes from (never the command line)
EAB_HMAC_KEY_ENV = "ACMELAB_EAB_HMAC_KEY"


def directory_url(choice: str, *, production_confirmed: bool = False) -> str:
    """The directory URL of ``staging``, ``production`` or an ``https://`` URL.

    Raises ConfigError: production not confirmed, or not https."""
    if choice == "production" and not production_confirmed:
        raise ConfigError("--directory production issues real, rate-limited certificates: "
                          "add --i-mean-production to confirm (try --directory staging first)")
    url = DIRECTORIES.get(choice, choice)
    if not url.startswith("https://"):
        raise ConfigError(f"--directory must be lab, staging, production or an https:// URL, not {choice!r}")
    return url


class Backend:
    """What the engine talks to (see the module docstring).

    Attributes:
        directory_url: the ACME directory URL.
        acme_verify: ``True`` or a CA bundle path for the ACME server's TLS (never False).
        trust_roots: PEM roots installed chains must validate to; None = the system store.
        region_id: Alibaba Cloud region (API Gateway groups, DNS).
        lab: the lab's ``LabInfo`` (LabBackend), else None -- for display only;
            callers ask the backend's methods, not this.
        forgets_accounts: True if the CA forgets accounts on its own (the lab
            on every restart), so a stored key is registered again.
    """

    directory_url: str
    acme_verify: bool | str
    trust_roots: list[str] | None = None
    region_id: str = "cn-hangzhou"
    lab: Any = None
    forgets_accounts: bool = False

    def acme_client(self, account_key: Any, account_url: str | None = None) -> Any:
        """A new :class:`acmelab.client.AcmeClient` for this CA (not thread-safe: one per thread)."""
        from acmelab.client import AcmeClient

        return AcmeClient(self.directory_url, account_key, verify=self.acme_verify, account_url=account_url)

    def dns_provider(self, name: str, region_id: str | None = None) -> Any:
        """A new DNS-01 provider ``name`` (:data:`acmelab.dns.PROVIDERS`) for
        the site of ``region_id`` (default :attr:`region_id`).  Raises ConfigError."""
        raise NotImplementedError

    def aliyun_client(self, region_id: str | None = None) -> Any:
        """A new :class:`acmelab.aliyun.AliyunClient` for ``region_id``
        (default :attr:`region_id`; it picks the site's endpoints,
        :mod:`acmelab.deploy.regions`).  Raises ConfigError / InputError."""
        raise NotImplementedError

    def handshake_address(self, target: Any, server_name: str, port: int) -> tuple[str, int]:
        """Where to connect for the TLS check of ``target`` (the deployer's
        ``server_name`` and ``port``): ``(host, port)``."""
        return server_name, port

    def eab(self, kid: str | None) -> dict[str, str]:
        """``{"eab_kid", "eab_hmac_key"}`` for newAccount (RFC 8555 §7.3.4), or {}.
        ``kid`` is ``--eab-kid``; its HMAC key comes from ``$ACMELAB_EAB_HMAC_KEY``."""
        if kid is None:
            return {}
        hmac_key = os.environ.get(EAB_HMAC_KEY_ENV)
        if not hmac_key:
            raise ConfigError(f"--eab-kid {kid} needs the HMAC key in ${EAB_HMAC_KEY_ENV}")
        return {"eab_kid": kid, "eab_hmac_key": hmac_key}

    def check_services(self, services: Sequence[Any]) -> None:
        """Raise ConfigError, before any request, if ``services`` cannot run
        here: a target its names do not cover (:func:`acmelab.config.check_covered`)."""
        from acmelab.config import check_covered

        check_covered(services)


class CloudBackend(Backend):
    """The real thing: an ACME directory URL, Alibaba Cloud with credentials
    from the environment (:meth:`acmelab.aliyun.Credentials.resolve`), TLS
    checks at the target's own name.

    Args:
        directory_url: the ACME directory URL (https).
        acme_verify: ``True`` or a CA bundle path.
        trust_roots: PEM roots for the TLS checks (None: the system store).
        region_id: Alibaba Cloud region.
    """

    def __init__(self, directory_url: str, acme_verify: bool | str = True, *,
                 trust_roots: list[str] | None = None, region_id: str = "cn-hangzhou") -> None:
        self.directory_url, self.acme_verify = directory_url, acme_verify
        self.trust_roots, self.region_id = trust_roots, region_id

    def __repr__(self) -> str:
        return f"CloudBackend({self.directory_url!r}, region_id={self.region_id!r})"

    def dns_provider(self, name: str, region_id: str | None = None) -> Any:
        from acmelab import dns

        return dns.from_env(name, region_id=region_id or self.region_id)

    def aliyun_client(self, region_id: str | None = None) -> Any:
        from acmelab.deploy import make_client

        return make_client(region_id=region_id or self.region_id)

    def check_services(self, services: Sequence[Any]) -> None:
        """As :meth:`Backend.check_services`; also: no lab-only DNS provider,
        and Alibaba Cloud credentials when a service needs them."""
        from acmelab import dns

        super().check_services(services)
        lab_only = sorted(s.name for s in services if dns.factory(s.dns).lab_only)
        if lab_only:
            kind = sorted({s.dns for s in services if dns.factory(s.dns).lab_only})[0]
            raise ConfigError(f"dns = \"{kind}\" works only with --directory lab (services: {', '.join(lab_only[:5])}"
                              f"{' ...' if len(lab_only) > 5 else ''})")
        if any(s.dns == "alidns" or s.install for s in services):
            from acmelab.aliyun import Credentials

            try:   # checked before any request, so a missing key fails once, not per service
                Credentials.resolve()
            except InputError as error:
                raise ConfigError(f"Alibaba Cloud credentials: {error}") from None


class LabBackend(Backend):
    """The lab (:mod:`acmelab.lab`): its Pebble, mock DNS, Alibaba Cloud
    endpoint and TLS edges, from its ``LabInfo``.

    Args:
        info: the running lab's :class:`acmelab.lab.LabInfo`.
        acme_verify: CA bundle for Pebble's TLS (default: the lab's).
        trust_roots: roots for the TLS checks (default: Pebble's current roots).
        region_id: the region the mock endpoint is asked for.
    """

    forgets_accounts = True

    def __init__(self, info: Any, *, acme_verify: bool | str | None = None,
                 trust_roots: list[str] | None = None, region_id: str = "cn-hangzhou") -> None:
        self.lab = info
        self.directory_url = info.directory_url
        self.acme_verify = acme_verify if acme_verify is not None else str(info.ca_bundle)
        self.trust_roots = trust_roots if trust_roots is not None else info.roots()
        self.region_id = region_id

    def __repr__(self) -> str:
        return f"LabBackend({self.lab.run_dir!s})"

    def dns_provider(self, name: str, region_id: str | None = None) -> Any:
        """The lab's provider (one endpoint serves every region)."""
        from acmelab import dns

        return dns.for_lab(name, self.lab)

    def aliyun_client(self, region_id: str | None = None) -> Any:
        """A client for the lab's endpoint (every product, every region)."""
        from acmelab.aliyun import AliyunClient

        return AliyunClient.for_lab(self.lab, region_id=region_id or self.region_id)   # ConfigError: no endpoint

    def handshake_address(self, target: Any, server_name: str, port: int) -> tuple[str, int]:
        """The product's edge listener on loopback (``LabInfo.<product>_edge_port``)."""
        edge = getattr(self.lab, f"{target.product}_edge_port", None)
        if edge is None:
            raise ConfigError(f"this lab has no {target.product} edge listener")
        return "127.0.0.1", int(edge)

    def eab(self, kid: str | None) -> dict[str, str]:
        """The lab's own EAB key when it requires EAB (the first, or ``kid``)."""
        keys: Mapping[str, str] = self.lab.eab_keys or {}
        if kid is None and keys:
            kid = sorted(keys)[0]
        if kid is not None and kid in keys:
            return {"eab_kid": kid, "eab_hmac_key": keys[kid]}
        return super().eab(kid)


def backend_for(directory_url: str, acme_verify: bool | str = True, *, lab: Any = None,
                trust_roots: list[str] | None = None, region_id: str = "cn-hangzhou") -> Backend:
    """A :class:`LabBackend` for ``lab`` (a ``LabInfo``) when given, else a
    :class:`CloudBackend` for ``directory_url``."""
    if lab is not None:
        return LabBackend(lab, acme_verify=acme_verify, trust_roots=trust_roots, region_id=region_id)
    return CloudBackend(directory_url, acme_verify, trust_roots=trust_roots, region_id=region_id)


def open_backend(choice: str, *, lab_dir: Path | None = None, ca_bundle: Path | None = None,
                 production_confirmed: bool = False, trust_roots: list[str] | None = None,
                 region_id: str = "cn-hangzhou", start_lab: bool = True) -> Backend:
    """The backend ``--directory choice`` names: ``lab`` (the lab in
    ``lab_dir``, started if none is running and ``start_lab``), ``staging``,
    ``production`` (needs ``production_confirmed``) or an https URL.

    Raises:
        ConfigError: production unconfirmed, not https, ``ca_bundle`` not a
            file, no lab running and not ``start_lab``.
        LabError: the lab cannot be started.
    """
    if ca_bundle is not None and not Path(ca_bundle).is_file():
        raise ConfigError(f"--ca-bundle {ca_bundle} is not a file")
    if choice == "lab":
        from acmelab import lab

        info = lab.status(lab_dir)
        if info is None:
            if not start_lab:
                raise ConfigError(f"no lab is running in {lab_dir or lab.default_run_dir()}")
            if lab_dir is not None:
                # a --lab-dir names a lab the user started (lab up --lab-dir): a typo
                # must not start another one on the default ports
                raise ConfigError(f"no lab is running in --lab-dir {lab_dir}: start it with "
                                  f"'acmelab lab up --lab-dir {lab_dir}', or leave out --lab-dir for the default lab")
            logger.warning("no lab is running in %s; starting one (stop it with: acmelab lab down)",
                           lab.default_run_dir())
            info = lab.ensure_running(None)
        return LabBackend(info, acme_verify=str(ca_bundle) if ca_bundle else None, trust_roots=trust_roots,
                          region_id=region_id)
    return CloudBackend(directory_url(choice, production_confirmed=production_confirmed),
                        str(ca_bundle) if ca_bundle else True, trust_roots=trust_roots, region_id=region_id)


@dataclass
class Environment:
    """What the engine talks to: a :class:`~acmelab.backends.Backend` (the
    ACME server, DNS, the Alibaba Cloud API, where TLS checks connect) and
    the ACME account, with one ACME / DNS / Alibaba client per thread.

    Build it with :meth:`for_backend`; the field form
    ``Environment(directory_url, acme_verify, account_key, account_url,
    lab=..., trust_roots=...)`` makes the backend itself (a
    :class:`~acmelab.backends.LabBackend` when ``lab`` is given).

    Attributes:
        directory_url: the ACME directory URL.
        acme_verify: ``True`` or a CA bundle path for the ACME server's TLS.
        account_key, account_url: the ACME account (RFC 8555 §7.3).
        lab: the lab's ``LabInfo`` or None (only to build the backend).
        trust_roots: PEM roots the served chains must validate to; None =
            the system store (the lab: Pebble's roots).
        verify_installs: do the TLS handshake after installing.
        region_id: Alibaba Cloud region of the API Gateway groups.
        backend: the backend (made from the fields above when not given).
    """

    directory_url: str = ""
    acme_verify: bool | str = True
    account_key: Any = field(default=None, repr=False)
    account_url: str | None = None
    lab: Any = None
    trust_roots: list[str] | None = field(default=None, repr=False)
    verify_installs: bool = True
    region_id: str = "cn-hangzhou"
    backend: Backend | None = None
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def __post_init__(self) -> None:
        if self.backend is None:
            self.backend = backend_for(self.directory_url, self.acme_verify, lab=self.lab,
                                       trust_roots=self.trust_roots, region_id=self.region_id)
        backend = self.backend
        self.directory_url, self.acme_verify = backend.directory_url, backend.acme_verify
        self.trust_roots, self.region_id, self.lab = backend.trust_roots, backend.region_id, backend.lab

    @classmethod
    def for_backend(cls, backend: Backend, account_key: Any, account_url: str | None, *,
                    verify_installs: bool = True) -> "Environment":
        """The environment of ``backend`` with this ACME account."""
        return cls(account_key=account_key, account_url=account_url, verify_installs=verify_installs,
                   backend=backend)

    def _cached(self, name: str, make: Callable[[], Any]) -> Any:
        value = getattr(self._local, name, None)
        if value is None:
            value = make()
            setattr(self._local, name, value)
        return value

    def acme_client(self):
        """This thread's :class:`acmelab.client.AcmeClient` (not thread-safe, so one per thread)."""
        return self._cached("acme", lambda: self.backend.acme_client(self.account_key, self.account_url))

    def dns_provider(self, kind: str, region_id: str | None = None):
        """This thread's DNS-01 provider ``kind`` (:data:`acmelab.dns.PROVIDERS`)
        for the site of ``region_id`` (default: the backend's region).

        Raises ConfigError: unknown, or lab-only (``challtestsrv``) outside the lab."""
        cache = self._cached("dns", dict)
        if (kind, region_id) not in cache:
            cache[kind, region_id] = self.backend.dns_provider(kind, region_id)
        return cache[kind, region_id]

    def aliyun_client(self, region_id: str | None = None):
        """This thread's :class:`acmelab.aliyun.AliyunClient` (the backend's)
        for ``region_id`` (default: the backend's region)."""
        cache = self._cached("aliyun", dict)
        if region_id not in cache:
            cache[region_id] = self.backend.aliyun_client(region_id)
        return cache[region_id]

    def handshake(self, target: InstallTarget, names: Sequence[str] = ()) -> tuple[str, str, int] | None:
        """``(server_name, host, port)`` of the TLS check of ``target``, or
        None if it cannot be checked (CAS, wildcard domains, verification off)."""
        if not self.verify_installs:
            return None
        where = target.deployer.handshake(target, names)
        if where is None:
            return None
        server_name, port = where
        return (server_name, *self.backend.handshake_address(target, server_name, port))
