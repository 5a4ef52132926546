"""Many services, one command: the services file and the apply engine.

Theory of operation
-------------------
A *service* is a set of DNS names that must be served with a valid
certificate from somewhere: CDN accelerated domains, API Gateway custom
domains, and/or a copy in Certificate Management Service (CAS).  The
services file lists them (TOML, read with :mod:`tomllib`)::

    [defaults]                      # optional; every key a service may set
    dns = "alidns"                  # "alidns" or "challtestsrv" (lab only)
    key_type = "ec256"              # acmelab.keys.KEY_TYPES
    profile = "classic"             # a name from the directory's meta.profiles
    challenge = "dns-01"            # or "dns-account-01", "dns-persist-01"

    [[service]]
    name = "shop"                   # optional; default: the first domain
    domains = ["shop.example.com", "www.shop.example.com"]
    cdn = ["shop.example.com"]      # CDN accelerated domains (a string is one)
    apigateway = [{ group_id = "523e8dc7bbe04613b5b1d726c2a7889d", domain = "api.example.com" }]
    cas = true                      # also upload to CAS (UploadUserCertificate)
    preferred_chain = "Pebble Root CA"   # optional (RFC 8555 §7.4.2 alternates)

:func:`process_service` brings one service to its desired state, under the
service's lock in the state directory:

1. **issue** (RFC 8555 §7.4 with dns-01, :func:`acmelab.issue.issue_certificate`)
   when there is no usable certificate, it came from another ACME server
   (staging -> production), its names or key type changed, it was revoked,
   or it is due for renewal -- all decided by
   :class:`acmelab.renewal.RenewalPolicy` (ARI first, then the lifetime
   rule); the result is stored atomically (:mod:`acmelab.state`);
2. **install** on every target whose record does not carry the live serial
   (CDN ``SetCdnDomainSSLCertificate``, API Gateway ``SetDomainCertificate``,
   CAS ``UploadUserCertificate``; :mod:`acmelab.deploy`);
3. **verify** each CDN / API Gateway target with a TLS handshake
   (:func:`acmelab.deploy.verify`) that must show the live serial; a target
   that serves something else is installed again, once.

:func:`apply_services` runs :func:`process_service` for many services on a
bounded thread pool; one failure does not stop the others.  Setting the
``cancel`` event (the command does it on SIGINT) stops new work: services
not started are reported ``interrupted``, running ones stop at their next
step, and every DNS record they published is removed on the way out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import threading
import time
import tomllib
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from acmelab import csr as csr_module
from acmelab import keys
from acmelab.errors import (
    AcmelabError,
    ConfigError,
    DeployError,
    InputError,
    Interrupted,
    StateError,
    StateLocked,
)
from acmelab.challenges import CHALLENGE_TYPES, is_standing
from acmelab.renewal import AriState, Decision, RenewalPolicy, RenewalThreshold, refresh_ari
from acmelab.state import ManagedCertificate, StateDir, certificate_name_for, check_certificate_name, serial_hex

__all__ = [
    "DNS_PROVIDERS", "PRODUCTS", "DEFAULT_CONCURRENCY", "InstallTarget", "Service", "RenewalThreshold",
    "Environment", "ServiceResult", "load_services", "parse_services", "process_service", "apply_services",
    "services_from_state", "refresh_renewal_info", "standing_records", "remove_standing_records",
]

logger = logging.getLogger(__name__)

DNS_PROVIDERS = ("alidns", "challtestsrv")
PRODUCTS = ("cdn", "apigateway", "cas")
#: services worked on at once by default: small machines, polite to the CA
DEFAULT_CONCURRENCY = min(4, 2 * (os.cpu_count() or 1))

_SERVICE_KEYS = {"name", "domains", "dns", "key_type", "preferred_chain", "profile", "challenge",
                 "cdn", "apigateway", "cas"}
_DEFAULT_KEYS = _SERVICE_KEYS - {"name", "domains", "cdn", "apigateway"}


# --------------------------------------------------------------------------
# The services file
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class InstallTarget:
    """Where a certificate goes.

    Attributes:
        product: ``"cdn"``, ``"apigateway"`` or ``"cas"``.
        domain: the CDN accelerated domain or API Gateway custom domain
            (None for CAS).
        group_id: the API Gateway group (``GroupId``), API Gateway only.
    """

    product: str
    domain: str | None = None
    group_id: str | None = None

    @property
    def id(self) -> str:
        """``"cdn:<domain>"``, ``"apigateway:<group>/<domain>"`` or ``"cas"``."""
        if self.product == "apigateway":
            return f"apigateway:{self.group_id}/{self.domain}"
        if self.product == "cdn":
            return f"cdn:{self.domain}"
        return "cas"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in (("product", self.product), ("domain", self.domain),
                                  ("group_id", self.group_id)) if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "InstallTarget":
        return cls(str(data["product"]), data.get("domain"), data.get("group_id"))


@dataclass(frozen=True)
class Service:
    """One service of the services file (see the module docstring).

    Attributes:
        name: certificate name in the state directory.
        domains: the certificate's DNS names, normalised, first = CN.
        dns: DNS-01 provider, one of :data:`DNS_PROVIDERS`.
        key_type: one of :data:`acmelab.keys.KEY_TYPES`.
        install: where to install (tuple of :class:`InstallTarget`).
        preferred_chain: issuer CN of the preferred chain, or None.
        profile: the ACME profile to order (None: ``classic`` where offered,
            :func:`acmelab.issue.choose_profile`).
        challenge: ``"dns-01"``, ``"dns-account-01"`` or ``"dns-persist-01"``.
        origin: who asked for it: ``"services"`` (a services file,
            ``acmelab apply``), ``"issue"`` (``acmelab issue``), or None
            (unknown: stored by an older acmelab).  A services file does not
            take over a certificate ``acmelab issue`` made for other names
            (see :func:`process_service`).
    """

    name: str
    domains: tuple[str, ...]
    dns: str = "alidns"
    key_type: str = "ec256"
    install: tuple[InstallTarget, ...] = ()
    preferred_chain: str | None = None
    origin: str | None = None
    profile: str | None = None
    challenge: str = "dns-01"

    def to_dict(self) -> dict[str, Any]:
        data = {"name": self.name, "domains": list(self.domains), "dns": self.dns, "key_type": self.key_type,
                "install": [t.to_dict() for t in self.install], "preferred_chain": self.preferred_chain}
        if self.origin is not None:
            data["origin"] = self.origin
        if self.profile is not None:
            data["profile"] = self.profile
        if self.challenge != "dns-01":
            data["challenge"] = self.challenge
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Service":
        return cls(name=str(data["name"]), domains=tuple(data["domains"]), dns=str(data.get("dns", "alidns")),
                   key_type=str(data.get("key_type", "ec256")),
                   install=tuple(InstallTarget.from_dict(t) for t in data.get("install") or ()),
                   preferred_chain=data.get("preferred_chain"), origin=data.get("origin"),
                   profile=data.get("profile"), challenge=str(data.get("challenge") or "dns-01"))

    @classmethod
    def from_managed(cls, managed: ManagedCertificate) -> "Service":
        """The service a stored certificate was made for, with every target
        it has been installed on since (``acmelab install``) added."""
        if managed.service:
            service = cls.from_dict({**managed.service, "name": managed.name})
        else:
            service = cls(managed.name, managed.names, key_type=managed.key_type or "ec256")
        targets = list(service.install)
        for record in managed.installed.values():
            target = InstallTarget.from_dict(record)
            if target not in targets:
                targets.append(target)
        return dataclasses.replace(service, install=tuple(targets))


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _string_list(value: Any, where: str, key: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(where, f"{key} must be a string or a list of strings")
    return value


def _targets(entry: Mapping[str, Any], where: str) -> list[InstallTarget]:
    targets: list[InstallTarget] = []
    for domain in _string_list(entry.get("cdn", []), where, "cdn"):
        targets.append(InstallTarget("cdn", _domain(domain, where)))
    apigateway = entry.get("apigateway", [])
    if isinstance(apigateway, Mapping):
        apigateway = [apigateway]
    if not isinstance(apigateway, list):
        raise _fail(where, "apigateway must be a table {group_id, domain} or a list of them")
    for item in apigateway:
        if not isinstance(item, Mapping) or set(item) != {"group_id", "domain"} \
                or not all(isinstance(v, str) and v for v in item.values()):
            raise _fail(where, "each apigateway entry needs exactly group_id and domain (strings)")
        targets.append(InstallTarget("apigateway", _domain(item["domain"], where), item["group_id"]))
    cas = entry.get("cas", False)
    if not isinstance(cas, bool):
        raise _fail(where, "cas must be true or false")
    if cas:
        targets.append(InstallTarget("cas"))
    return targets


def _domain(name: str, where: str) -> str:
    try:
        return csr_module.normalize_name(name)
    except InputError as error:
        raise _fail(where, str(error)) from None


def parse_services(document: Mapping[str, Any], *, source: str = "services file") -> list[Service]:
    """Services from a parsed services file (the dict :mod:`tomllib` gives).

    Returns:
        list of :class:`Service`, in file order.

    Raises:
        ConfigError: unknown keys, wrong types, bad names, unknown DNS
            provider or key type, duplicate service names, or one CDN / API
            Gateway domain claimed by two services (the message names the
            service).
    """
    unknown = set(document) - {"defaults", "service"}
    if unknown:
        raise _fail(source, f"unknown top-level key(s) {', '.join(sorted(unknown))} "
                            "(expected [defaults] and [[service]])")
    defaults = document.get("defaults", {})
    if not isinstance(defaults, Mapping) or set(defaults) - _DEFAULT_KEYS:
        raise _fail(f"{source} [defaults]", f"allowed keys: {', '.join(sorted(_DEFAULT_KEYS))}")
    entries = document.get("service", [])
    if not isinstance(entries, list) or not entries:
        raise _fail(source, "no [[service]] entries")
    services: list[Service] = []
    seen_names: set[str] = set()
    claimed: dict[str, str] = {}
    for number, entry in enumerate(entries, 1):
        where = f"{source} [[service]] #{number}"
        if not isinstance(entry, Mapping):
            raise _fail(where, "must be a table")
        unknown = set(entry) - _SERVICE_KEYS
        if unknown:
            raise _fail(where, f"unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_SERVICE_KEYS))}")
        merged = {**defaults, **entry}
        if "domains" in merged and not isinstance(merged["domains"], list):
            named = f"{source} service {merged['name']!r}" if isinstance(merged.get("name"), str) else where
            raise _fail(named, f"domains must be a list of DNS names, e.g. domains = [{merged['domains']!r}], "
                               f"not a {type(merged['domains']).__name__}")
        domains = [_domain(d, where) for d in _string_list(merged.get("domains"), where, "domains")] \
            if "domains" in merged else []
        if not domains:
            raise _fail(where, "domains is required (at least one DNS name)")
        try:
            name = check_certificate_name(merged["name"]) if "name" in merged else certificate_name_for(domains[0])
        except InputError as error:
            raise _fail(where, str(error)) from None
        where = f"{source} service {name!r}"
        if name in seen_names:
            raise _fail(where, "two services have this name")
        seen_names.add(name)
        dns = merged.get("dns", "alidns")
        if dns not in DNS_PROVIDERS:
            raise _fail(where, f"dns must be one of {', '.join(DNS_PROVIDERS)}, not {dns!r}")
        key_type = merged.get("key_type", "ec256")
        if key_type not in keys.KEY_TYPES:
            raise _fail(where, f"key_type must be one of {', '.join(keys.KEY_TYPES)}, not {key_type!r}")
        preferred = merged.get("preferred_chain")
        if preferred is not None and not isinstance(preferred, str):
            raise _fail(where, "preferred_chain must be a string")
        profile = merged.get("profile")
        if profile is not None and (not isinstance(profile, str) or not profile):
            raise _fail(where, "profile must be a profile name, e.g. \"classic\", \"tlsserver\" or \"shortlived\"")
        challenge = merged.get("challenge", "dns-01")
        if challenge not in CHALLENGE_TYPES:
            raise _fail(where, f"challenge must be one of {', '.join(CHALLENGE_TYPES)}, not {challenge!r}")
        targets = _targets(merged, where)
        for target in targets:
            if target.product == "cas":
                continue
            if target.id in claimed:
                raise _fail(where, f"{target.id} is also claimed by service {claimed[target.id]!r}")
            claimed[target.id] = name
        services.append(Service(name, tuple(domains), dns, key_type, tuple(targets), preferred, "services",
                                profile, challenge))
    return services


def load_services(path: Path | str) -> list[Service]:
    """Read a services file (TOML).  Raises ConfigError (unreadable file,
    TOML syntax error with line and column, or as :func:`parse_services`)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path} is not UTF-8 text (TOML must be UTF-8): byte {error.start}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    return parse_services(document, source=str(path))


# --------------------------------------------------------------------------
# Where things run
# --------------------------------------------------------------------------

@dataclass
class Environment:
    """What the engine talks to: the ACME server with an account, DNS, the
    Alibaba Cloud API and the TLS endpoints to verify.

    Attributes:
        directory_url: the ACME directory URL.
        acme_verify: ``True`` or a CA bundle path for the ACME server's TLS.
        account_key, account_url: the ACME account (RFC 8555 §7.3).
        lab: the lab's :class:`acmelab.lab.LabInfo` when running against
            the lab (DNS, Alibaba endpoint and edge ports come from it), else
            None (Alibaba credentials from the environment, installs
            verified at ``<domain>:443``).
        trust_roots: PEM roots the served chains must validate to (lab:
            Pebble's roots); None = the system store.
        verify_installs: do the TLS handshake after installing.
        region_id: Alibaba Cloud region of the API Gateway groups.
    """

    directory_url: str
    acme_verify: bool | str
    account_key: Any = field(repr=False)
    account_url: str
    lab: Any = None
    trust_roots: list[str] | None = field(default=None, repr=False)
    verify_installs: bool = True
    region_id: str = "cn-hangzhou"
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def acme_client(self):
        """This thread's :class:`acmelab.client.AcmeClient` (not thread-safe, so one per thread)."""
        client = getattr(self._local, "acme", None)
        if client is None:
            from acmelab.client import AcmeClient
            client = AcmeClient(self.directory_url, self.account_key, verify=self.acme_verify,
                                account_url=self.account_url)
            self._local.acme = client
        return client

    def dns_provider(self, kind: str):
        """This thread's DNS-01 provider of ``kind`` (:data:`DNS_PROVIDERS`).

        Raises ConfigError: ``challtestsrv`` outside the lab."""
        cache = getattr(self._local, "dns", None)
        if cache is None:
            cache = self._local.dns = {}
        if kind not in cache:
            if kind == "challtestsrv":
                if self.lab is None:
                    raise ConfigError("dns = \"challtestsrv\" works only against the lab (--directory lab)")
                from acmelab.dns.challtestsrv import ChallTestSrvProvider
                cache[kind] = ChallTestSrvProvider.for_lab(self.lab)
            elif kind == "alidns":
                from acmelab.dns.alidns import AlidnsProvider
                if self.lab is not None:
                    cache[kind] = AlidnsProvider.for_lab(self.lab, propagation_interval=0.05)
                else:
                    cache[kind] = AlidnsProvider(region_id=self.region_id)
            else:
                raise ConfigError(f"unknown DNS provider {kind!r}; choose one of {', '.join(DNS_PROVIDERS)}")
        return cache[kind]

    def aliyun_client(self):
        """This thread's :class:`acmelab.aliyun.AliyunClient` (lab endpoint
        and key, or credentials from the environment)."""
        client = getattr(self._local, "aliyun", None)
        if client is None:
            from acmelab.deploy import lab_client, make_client
            if self.lab is not None:
                if not self.lab.aliyun_endpoint:
                    raise ConfigError("this lab runs without its Alibaba Cloud endpoint")
                client = lab_client(self.lab, region_id=self.region_id)
            else:
                client = make_client(region_id=self.region_id)
            self._local.aliyun = client
        return client

    def verify_location(self, target: InstallTarget) -> tuple[str, int] | None:
        """(host, port) where ``target`` serves HTTPS, or None if it cannot
        be checked (CAS, wildcard domains, verification off)."""
        if not self.verify_installs or target.product == "cas" or not target.domain \
                or target.domain.startswith("*."):
            return None
        if self.lab is not None:
            port = self.lab.cdn_edge_port if target.product == "cdn" else self.lab.apigateway_edge_port
            return "127.0.0.1", int(port)
        return target.domain, 443


class _ServiceDns:
    """The DnsProvider one service issues with: publishing stops once
    ``cancel`` is set (``cleanup`` always runs; issue_certificate removes
    what was published), and every record is noted in the state directory
    before it is published and forgotten once removed, so a run killed
    outright leaves a list the next run cleans up (:func:`_remove_leftovers`).
    A standing dns-persist-01 record is noted in the standing list instead
    (``acmelab dns persist list|remove``): it stays by design."""

    def __init__(self, provider: Any, kind: str, state: StateDir, service: str,
                 cancel: threading.Event | None) -> None:
        self.provider = provider
        self.kind = kind
        self.state = state
        self.service = service
        self.cancel = cancel
        self._lock = threading.Lock()
        self._written_at: dict[tuple[str, str], str] = {}
        if hasattr(provider, "wait_until_visible"):
            self.wait_until_visible = self._wait_until_visible

    def _check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Interrupted("interrupted before publishing the next DNS record")

    def _note(self, name: str, value: str, *, add: bool) -> None:
        entry = {"provider": self.kind, "name": name, "value": value}
        written_at = self._written_at.get((name, value), name)
        if written_at != name:      # a CNAME-delegated name: the record is at the chain's end
            entry["written_at"] = written_at
        read, write = ((self.state.standing_dns, self.state.set_standing_dns) if is_standing(name)
                       else (self.state.pending_dns, self.state.set_pending_dns))
        with self._lock:
            records = [r for r in read(self.service) if r != entry]
            write(self.service, records + [entry] if add else records)

    def present(self, name: str, value: str) -> None:
        self._check()
        record_name = getattr(self.provider, "record_name", None)
        if callable(record_name):
            self._written_at[(name, value)] = record_name(name)
        self._note(name, value, add=True)
        self.provider.present(name, value)

    def cleanup(self, name: str, value: str) -> None:
        self.provider.cleanup(name, value)
        self._note(name, value, add=False)
        self._written_at.pop((name, value), None)

    def _wait_until_visible(self, name: str, value: str, timeout: float) -> None:
        self._check()
        self.provider.wait_until_visible(name, value, timeout)
        self._check()


def _remove_leftovers(service: Service, env: Environment, state: StateDir) -> int:
    """Remove the TXT records an earlier, killed run published for this
    service (``dns-pending.json``).  Returns how many were removed.

    Alibaba Cloud DNS: the record with exactly that value (DescribeSubDomainRecords,
    DeleteDomainRecord); challtestsrv (lab): that value, as its DNS server answers it."""
    leftovers = state.pending_dns(service.name)
    for record in leftovers:
        where = record.get("written_at") or record["name"]
        env.dns_provider(record["provider"]).cleanup(where, record["value"])
        logger.warning("%s: removed TXT %s left by an interrupted run", service.name, where)
    state.set_pending_dns(service.name, [])
    return len(leftovers)


# --------------------------------------------------------------------------
# One service
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class ServiceResult:
    """What :func:`process_service` did for one service.

    Attributes:
        name: the service (certificate) name.
        status: ``"issued"`` (first certificate), ``"renewed"``,
            ``"unchanged"``, ``"installed"`` (``acmelab install`` put the
            live certificate on a new target), ``"failed"``, ``"interrupted"`` or
            ``"skipped"`` (another run holds the service's lock; nothing
            was done, reason ``"locked by another run"``).
        reason: why it was (re)issued, e.g. ``"due: 20 days left"``, or "".
        serial_hex, not_after: the live certificate afterwards (None if
            none); serial as :func:`acmelab.state.serial_hex`.
        installed: target ids installed during this run.
        verified: target ids whose TLS handshake showed the live serial.
        error: the error message when failed or interrupted.
        seconds: wall time spent on the service.
    """

    name: str
    status: str
    reason: str = ""
    serial_hex: str | None = None
    not_after: dt.datetime | None = None
    installed: tuple[str, ...] = ()
    verified: tuple[str, ...] = ()
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("issued", "renewed", "unchanged", "installed")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "reason": self.reason, "serial_hex": self.serial_hex,
                "not_after": self.not_after.isoformat() if self.not_after else None,
                "installed": list(self.installed), "verified": list(self.verified), "error": self.error,
                "seconds": round(self.seconds, 3)}


def chain_leads_to(chain_pem: str | bytes, roots_pem: Sequence[str]) -> bool:
    """True if the chain (leaf first) is signed link by link and its last
    certificate is one of ``roots_pem`` or directly issued by one of them
    (signature checked, RFC 5280 §6.1 in its simplest form; no dates, no
    name constraints -- this only asks "is it from this CA?").  Unparsable
    roots are ignored; an unparsable chain is False."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    try:
        chain = x509.load_pem_x509_certificates(chain_pem.encode("ascii") if isinstance(chain_pem, str)
                                                else chain_pem)
    except ValueError:
        return False
    roots = []
    for pem in roots_pem:
        try:
            roots.extend(x509.load_pem_x509_certificates(pem.encode("ascii") if isinstance(pem, str) else pem))
        except ValueError:
            continue

    def issued_by(child, parent) -> bool:
        try:
            child.verify_directly_issued_by(parent)
            return True
        except (InvalidSignature, ValueError, TypeError):   # wrong issuer name, key or signature
            return False

    if not chain or any(not issued_by(child, parent) for child, parent in zip(chain, chain[1:])):
        return False
    last = chain[-1]
    return any(last == root or issued_by(last, root) for root in roots)


def _decide(service: Service, managed: ManagedCertificate | None, env: Environment, state: StateDir,
            policy: RenewalPolicy, now: dt.datetime | None, force: bool) -> tuple[ManagedCertificate | None, Decision]:
    """Ask :class:`~acmelab.renewal.RenewalPolicy` whether ``service`` needs a
    new certificate.  The rules that need no network come first
    (:meth:`~acmelab.renewal.RenewalPolicy.changed`); only a certificate they
    leave alone has its ARI answer refreshed (when the CA has renewalInfo
    and the stored answer's Retry-After has passed, stored in meta.json)
    before its dates are judged, ARI first.

    With ``env.trust_roots`` (the lab's current Pebble roots, or
    ``--trust-root``), a certificate whose stored chain does not lead to one
    of them is due: a restarted lab has new roots, so everything it issued
    before is worthless."""
    trusted = managed is None or not env.trust_roots or chain_leads_to(managed.fullchain_pem(), env.trust_roots)
    wanted = dict(names=service.domains, key_type=service.key_type, profile=service.profile,
                  directory_url=env.directory_url, chain_trusted=trusted, force=force)
    changed = policy.changed(managed, **wanted)
    if changed is not None:
        return managed, changed
    if policy.use_ari:   # ARI before the lifetime rule: the CA's window may be earlier or later
        managed = refresh_renewal_info(managed, env.acme_client(), state)
    return managed, policy.decide(managed, now, ari=AriState.from_dict(managed.ari), **wanted)


def refresh_renewal_info(managed: ManagedCertificate, client: Any, state: StateDir) -> ManagedCertificate:
    """Ask the CA's renewalInfo (ARI, RFC 9773) about ``managed`` if its
    stored answer's ``Retry-After`` has passed, and store the answer in
    meta.json.  Nothing is asked when the CA has no renewalInfo or did not
    issue this certificate.  Returns the (possibly updated) certificate.

    Raises:
        StateError: meta.json cannot be written.  (A failed or malformed
            answer is stored as an error, see :func:`acmelab.renewal.refresh_ari`.)
    """
    if managed.directory_url and managed.directory_url != client.directory_url:
        return managed
    if not client.directory.renewalInfo:
        return managed
    previous = AriState.from_dict(managed.ari)
    ari = refresh_ari(managed.fullchain_pem(), previous, client.renewal_info)
    if ari is previous:
        return managed
    managed = dataclasses.replace(managed, ari=ari.to_dict())
    state.write_meta(managed)
    return managed


def _check_cancel(cancel: threading.Event | None, step: str) -> None:
    if cancel is not None and cancel.is_set():
        raise Interrupted(f"interrupted before {step}")


def _install(target: InstallTarget, managed: ManagedCertificate, service: Service, env: Environment):
    """Send the live certificate to ``target``; returns the Installation."""
    from acmelab.deploy import apigateway, cas, cdn

    client = env.aliyun_client()
    chain_pem = managed.fullchain_pem()
    key = managed.load_key()
    if target.product == "cdn":
        return cdn.set_cdn_domain_ssl_certificate(client, target.domain, chain_pem, key)
    if target.product == "apigateway":
        return apigateway.set_domain_certificate(client, target.group_id, target.domain, chain_pem, key)
    if target.product == "cas":
        name = f"{service.name}-{managed.serial_hex[:16]}"
        return cas.upload_user_certificate(client, name, chain_pem, key, domain=managed.names[0])
    raise ConfigError(f"unknown product {target.product!r}")


def _verify(target: InstallTarget, managed: ManagedCertificate, env: Environment) -> bool:
    """TLS handshake with the target; True if it serves the live serial,
    False if there is nothing to check.  Raises DeployError otherwise."""
    location = env.verify_location(target)
    if location is None:
        return False
    from acmelab.deploy.verify import verify
    host, port = location
    verify(target.domain, host=host, port=port, root_pem=env.trust_roots,
           expected_serial_hex=managed.serial_hex)
    return True


def _same_serial(recorded: Any, live: str) -> bool:
    """An install record's serial (older acmelab wrote it unpadded) is the live one."""
    try:
        return isinstance(recorded, str) and serial_hex(recorded) == serial_hex(live)
    except InputError:
        return False


def _install_and_verify(target: InstallTarget, managed: ManagedCertificate, service: Service,
                        env: Environment, state: StateDir, cancel: threading.Event | None
                        ) -> tuple[ManagedCertificate, bool, bool]:
    """Bring one target to the live serial.  Returns (managed, installed?, verified?)."""
    record = managed.installed.get(target.id)
    if record and _same_serial(record.get("serial_hex"), managed.serial_hex):
        if env.verify_location(target) is None:
            return managed, False, False
        try:
            return managed, False, _verify(target, managed, env)
        except DeployError as error:
            logger.info("%s: %s serves something else (%s); installing again", service.name, target.id, error)
    _check_cancel(cancel, f"installing on {target.id}")
    installation = _install(target, managed, service, env)
    record = {**target.to_dict(), "serial_hex": managed.serial_hex,
              "installed_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "name": installation.name, "cert_id": installation.cert_id}
    managed = state.record_install(service.name, target.id, record)
    logger.info("%s: installed serial %s on %s", service.name, managed.serial_hex, target.id)
    return managed, True, _verify(target, managed, env)


def process_service(service: Service, env: Environment, state: StateDir, *,
                    threshold: RenewalThreshold | None = None, now: dt.datetime | None = None,
                    force: bool = False, cancel: threading.Event | None = None,
                    policy: RenewalPolicy | None = None,
                    targets: Sequence[InstallTarget] | None = None,
                    remember_service: bool = True) -> ServiceResult:
    """Bring one service to a valid, installed, verified certificate.

    Args:
        service: what to do.
        env: where (ACME account, DNS, Alibaba Cloud, TLS endpoints).
        state: the state directory.
        threshold: the lifetime rule without ARI (default: Let's Encrypt's advice).
        policy: the whole renewal policy (default: ARI, then ``threshold``).
        now: the time renewal decisions use (default: now; tests move it).
        force: issue a new certificate even if the current one is fine.
        cancel: stop at the next step once set.
        targets: work on these install targets only (default: all of
            ``service.install``).
        remember_service: store ``service`` as the certificate's spec (what
            ``renew`` uses); ``acmelab install`` stores it only on success.

    Returns:
        :class:`ServiceResult`; never raises for a failure of this service
        (status ``"failed"`` / ``"interrupted"`` with the message).  Its
        ``reason`` always says why a certificate was or was not issued.

    Sources: RFC 8555 §7.4 (orders), §8.4 (dns-01), RFC 9773 (ARI); CDN 2018-05-10
    SetCdnDomainSSLCertificate, CloudAPI 2016-07-14 SetDomainCertificate,
    cas 2020-04-07 UploadUserCertificate.
    """
    from acmelab.issue import issue_certificate

    started = time.monotonic()
    policy = policy or RenewalPolicy(threshold or RenewalThreshold(), threshold_always=threshold is not None)
    holding_lock = False   # a StateLocked before this is another run holding the service
    status, reason = "unchanged", ""
    installed: list[str] = []
    verified: list[str] = []
    managed: ManagedCertificate | None = None
    try:
        _check_cancel(cancel, "starting")
        with state.lock(service.name):
            holding_lock = True
            state.prune(service.name)              # half-made versions of an interrupted run
            _remove_leftovers(service, env, state)  # TXT records of a run that was killed
            unusable = ""
            try:
                managed = state.certificate(service.name)
            except StateError as error:
                logger.warning("%s: %s; issuing a new certificate", service.name, error)
                managed, unusable = None, f"stored certificate unusable ({error})"
            _check_not_taken_over(service, managed)
            if unusable:
                decision = Decision(True, unusable)
            else:
                managed, decision = _decide(service, managed, env, state, policy, now, force)
            reason = decision.reason
            if decision.due:
                _check_cancel(cancel, "issuing")
                issued = issue_certificate(
                    service.domains, client=env.acme_client(),
                    dns=_ServiceDns(env.dns_provider(service.dns), service.dns, state, service.name, cancel),
                    key_type=service.key_type, preferred_chain=service.preferred_chain,
                    challenge=service.challenge, profile=service.profile, replaces=decision.replaces)
                status = "renewed" if managed is not None else "issued"
                managed = state.store_certificate(
                    service.name, private_key=issued.private_key, chain_pem=issued.chain_pem,
                    order_url=issued.order_url, directory_url=env.directory_url,
                    service=service.to_dict(), names=issued.names,
                    installed=managed.installed if managed is not None else {},
                    keep_previous=not unusable, profile=issued.profile)
                logger.info("%s: %s serial %s (%s)", service.name, status, managed.serial_hex, reason)
                for failure in issued.cleanup_failures:  # still in dns-pending.json: removed next run
                    logger.warning("%s: %s (the next run removes it)", service.name, failure)
            elif remember_service and managed.service != service.to_dict():
                managed = ManagedCertificate(**{**managed.__dict__, "service": service.to_dict()})
                state.write_meta(managed)
            for target in (service.install if targets is None else targets):
                _check_cancel(cancel, f"installing on {target.id}")
                managed, did_install, did_verify = _install_and_verify(target, managed, service, env, state, cancel)
                if did_install:
                    installed.append(target.id)
                if did_verify:
                    verified.append(target.id)
    except Interrupted as error:
        status = "interrupted"
        return _result(service, status, reason, managed, installed, verified, str(error), started)
    except StateLocked as error:
        if not holding_lock:   # another run works on this service; nothing was done
            logger.info("%s: skipped: %s", service.name, error)
            return _result(service, "skipped", SKIPPED_LOCKED, None, [], [], None, started)
        logger.debug("%s failed", service.name, exc_info=True)
        return _result(service, "failed", reason, managed, installed, verified, _message(error), started)
    except AcmelabError as error:
        logger.debug("%s failed", service.name, exc_info=True)
        return _result(service, "failed", reason, managed, installed, verified, _message(error), started)
    except Exception as error:  # noqa: BLE001 - one service's bug must not stop the others
        logger.exception("%s failed unexpectedly", service.name)
        return _result(service, "failed", reason, managed, installed, verified,
                       f"{type(error).__name__}: {error}", started)
    return _result(service, status, reason, managed, installed, verified, None, started)


#: the reason of a ``"skipped"`` result
SKIPPED_LOCKED = "locked by another run"


def _check_not_taken_over(service: Service, managed: ManagedCertificate | None) -> None:
    """A services file must not silently take over a certificate that
    ``acmelab issue`` made under the same name for other names.

    Raises ConfigError naming the clash (the service fails; the stored
    certificate is left as it is)."""
    if managed is None or service.origin != "services" or managed.service.get("origin") != "issue":
        return
    if tuple(managed.names) != tuple(service.domains):
        raise ConfigError(
            f"certificate name {service.name!r} is taken by a certificate made with 'acmelab issue' for "
            f"{', '.join(managed.names)}; give this service another name (name = \"...\") or remove "
            f"{managed.version_dir.parent} first")


def _message(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    notes = getattr(error, "__notes__", None)
    return text + ("" if not notes else " (" + "; ".join(notes) + ")")


def _result(service: Service, status: str, reason: str, managed: ManagedCertificate | None,
            installed: list[str], verified: list[str], error: str | None, started: float) -> ServiceResult:
    return ServiceResult(service.name, status, reason, managed.serial_hex if managed else None,
                         managed.not_after if managed else None, tuple(installed), tuple(verified),
                         error, time.monotonic() - started)


# --------------------------------------------------------------------------
# Many services
# --------------------------------------------------------------------------

def apply_services(services: Sequence[Service], env: Environment, state: StateDir, *,
                   threshold: RenewalThreshold | None = None, now: dt.datetime | None = None,
                   concurrency: int = DEFAULT_CONCURRENCY, force: bool = False,
                   cancel: threading.Event | None = None,
                   on_result: Callable[[ServiceResult], None] | None = None,
                   **options: Any) -> list[ServiceResult]:
    """Run :func:`process_service` for every service, ``concurrency`` at a time.

    Args:
        services: the services (names unique).
        concurrency: worker threads (int >= 1).
        cancel: set it (e.g. from a SIGINT handler) to stop: services not
            started yet end ``interrupted``; running ones stop at their next
            step after removing their DNS records.
        on_result: called in the calling thread as each service finishes.
        **options: ``targets``, ``remember_service`` of :func:`process_service`.
        (the rest as :func:`process_service`)

    Returns:
        one :class:`ServiceResult` per service, in the order given.

    Raises:
        ConfigError: concurrency below 1.
    """
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, not {concurrency}")
    cancel = cancel or threading.Event()
    results: dict[str, ServiceResult] = {}
    with futures.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="acmelab-service") as pool:
        pending = {pool.submit(process_service, service, env, state, threshold=threshold, now=now,
                               force=force, cancel=cancel, **options): service for service in services}
        while pending:
            done, _ = futures.wait(pending, timeout=0.2, return_when=futures.FIRST_COMPLETED)
            if cancel.is_set():
                for future in list(pending):
                    if future.cancel():
                        service = pending.pop(future)
                        result = ServiceResult(service.name, "interrupted", error="interrupted before starting")
                        results[service.name] = result
                        if on_result:
                            on_result(result)
            for future in done:
                service = pending.pop(future)
                results[service.name] = future.result()
                if on_result:
                    on_result(results[service.name])
    return [results[service.name] for service in services]


def standing_records(state: StateDir) -> list[dict[str, str]]:
    """Every dns-persist-01 record the certificates of ``state`` rely on:
    ``[{"certificate", "provider", "name", "value"}, ...]``."""
    return [{"certificate": name, **record} for name in state.certificate_names()
            for record in state.standing_dns(name)]


def remove_standing_records(state: StateDir, env: Environment, certificate: str) -> list[str]:
    """Remove the dns-persist-01 records of ``certificate`` from DNS (the
    provider's ``cleanup``: that value only) and forget them.  The
    certificate keeps working; its next issuance publishes the record again.

    Returns:
        the record names removed.

    Raises:
        StateError: no such certificate.  DnsError, AliyunError: a record
            could not be removed (it stays listed).
    """
    if certificate not in state.certificate_names():
        raise StateError(f"no certificate named {certificate} in {state.root}")
    with state.lock(certificate):
        removed = []
        for record in state.standing_dns(certificate):
            env.dns_provider(record["provider"]).cleanup(record["name"], record["value"])
            state.set_standing_dns(certificate, [r for r in state.standing_dns(certificate) if r != record])
            removed.append(record["name"])
            logger.info("%s: removed the standing TXT %s", certificate, record["name"])
    return removed


def services_from_state(state: StateDir, names: Iterable[str] | None = None) -> list[Service]:
    """The services of the certificates in the state directory (for
    ``acmelab renew``), each with every target it was installed on.

    Raises StateError for a named certificate that does not exist."""
    wanted = list(names) if names else state.certificate_names()
    services = []
    for name in wanted:
        managed = state.certificate(name, check_files=False)
        if managed is None:
            raise StateError(f"no certificate named {name} in {state.root}")
        services.append(Service.from_managed(managed))
    return services
