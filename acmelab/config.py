"""The services file: :class:`Service`, its install targets, and how a file becomes services.

A *service* is a set of DNS names that must be served with a valid
certificate from somewhere: the install targets of :mod:`acmelab.deploy`
(CDN accelerated domains, API Gateway custom domains, a copy in CAS, SLB
HTTPS listeners, ...).  The services file lists them (TOML, read with
:mod:`tomllib`)::

    [defaults]                      # optional; every key a service may set
    dns = "alidns"                  # a name of acmelab.dns.PROVIDERS ("challtestsrv": lab only)
    key_type = "ec256"              # acmelab.keys.KEY_TYPES
    profile = "classic"             # a name from the directory's meta.profiles
    challenge = "dns-01"            # or "dns-account-01", "dns-persist-01"

    [[service]]
    name = "shop"                   # optional; default: the first domain
    domains = ["shop.example.com", "www.shop.example.com"]
    cdn = ["shop.example.com"]      # CDN accelerated domains (a string is one)
    apigateway = [{ group_id = "523e8dc7bbe04613b5b1d726c2a7889d", domain = "api.example.com" }]
    cas = true                      # also upload to CAS (UploadUserCertificate)
    slb = [{ load_balancer_id = "lb-...", listener_port = 443 }]   # SLB HTTPS listeners
    preferred_chain = "Pebble Root CA"   # optional (RFC 8555 §7.4.2 alternates)
    delivery = "cas"                # optional: upload once to CAS, bind CDN by CertId
    keep_previous = 1               # CAS delivery: superseded CAS certificates kept
    region = "ap-southeast-1"       # optional: Alibaba Cloud region (default --region-id)
    cert_region = "ap-southeast-1"  # optional: CDN CertRegion (default: from region)

Each product key is read by its deployer (:meth:`acmelab.deploy.Deployer.parse`).
Every target must be covered by the service's names (:func:`check_covered`:
a ConfigError naming the target, before anything is asked of the CA).

``delivery`` is ``"direct"`` (default: every product gets the certificate
and key itself) or the name of a *carrier* product (``"cas"``, Alibaba's
recommended path): the certificate is uploaded once per version to
Certificate Management Service, the products that can (CDN) bind it by its
``CertId`` (``CertType=cas``), and once every target has the new version
the superseded CAS certificates are deleted, keeping ``keep_previous``.

``region`` is the region of the service's API Gateway groups and load
balancers and says the site: ``cn-*`` is the China site (``cdn.aliyuncs.com``,
``cas.aliyuncs.com``, CDN ``CertRegion=cn-hangzhou``), anything else the
international site (``ap-southeast-1`` endpoints and ``CertRegion``), see
:func:`acmelab.deploy.regions.site_endpoints`.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from acmelab import dns, keys
from acmelab.challenges import CHALLENGE_TYPES
from acmelab.deploy import DEPLOYERS
from acmelab.deploy.base import InstallTarget, config_error, normalized_domain, string_list
from acmelab.errors import ConfigError, InputError, StateError
from acmelab.state import ManagedCertificate, StateDir, certificate_name_for, check_certificate_name

__all__ = ["DNS_PROVIDERS", "PRODUCTS", "InstallTarget", "Service", "check_covered", "load_services",
           "parse_services", "services_from_state"]

#: the DNS-01 provider names a service may choose (:data:`acmelab.dns.PROVIDERS`)
DNS_PROVIDERS = tuple(dns.PROVIDERS)
#: the install products (:data:`acmelab.deploy.DEPLOYERS`)
PRODUCTS = tuple(DEPLOYERS)

_SERVICE_KEYS = {"name", "domains", "dns", "key_type", "preferred_chain", "profile", "challenge", "delivery",
                 "keep_previous", "region", "cert_region", *DEPLOYERS}
#: [defaults] may set every key but the names and the targets only one service may claim
_DEFAULT_KEYS = _SERVICE_KEYS - {"name", "domains"} - {p for p, d in DEPLOYERS.items() if d.exclusive}


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
            (:func:`acmelab.ownership.check_not_taken_over`).
        delivery: ``"direct"`` or a carrier product (``"cas"``), see the module docstring.
        keep_previous: superseded carrier (CAS) certificates kept (int >= 0).
        region: Alibaba Cloud region of the service, or None (the backend's).
        cert_region: CDN ``CertRegion``, or None (from the region:
            :func:`acmelab.deploy.regions.cert_region`).
        stored: True for the stored spec of a managed certificate (``renew``,
            :meth:`from_managed`), False for a services-file entry; decides
            what a target another certificate owns means (step 0 of
            :mod:`acmelab.engine`).  Not saved.
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
    delivery: str = "direct"
    keep_previous: int = 1
    region: str | None = None
    cert_region: str | None = None
    stored: bool = dataclasses.field(default=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data = {"name": self.name, "domains": list(self.domains), "dns": self.dns, "key_type": self.key_type,
                "install": [t.to_dict() for t in self.install], "preferred_chain": self.preferred_chain}
        if self.origin is not None:
            data["origin"] = self.origin
        if self.profile is not None:
            data["profile"] = self.profile
        if self.challenge != "dns-01":
            data["challenge"] = self.challenge
        if self.delivery != "direct":
            data["delivery"], data["keep_previous"] = self.delivery, self.keep_previous
        for key in ("region", "cert_region"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Service":
        return cls(name=str(data["name"]), domains=tuple(data["domains"]), dns=str(data.get("dns", "alidns")),
                   key_type=str(data.get("key_type", "ec256")),
                   install=tuple(InstallTarget.from_dict(t) for t in data.get("install") or ()),
                   preferred_chain=data.get("preferred_chain"), origin=data.get("origin"),
                   profile=data.get("profile"), challenge=str(data.get("challenge") or "dns-01"),
                   delivery=str(data.get("delivery") or "direct"), keep_previous=int(data.get("keep_previous", 1)),
                   region=data.get("region"), cert_region=data.get("cert_region"))

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
        return dataclasses.replace(service, install=tuple(targets), stored=True)


def _fail(where: str, message: str) -> ConfigError:
    return config_error(where, message)


def _targets(entry: Mapping[str, Any], where: str) -> list[InstallTarget]:
    """The install targets of one service entry, product by product in
    :data:`acmelab.deploy.DEPLOYERS` order."""
    return [target for product, deployer in DEPLOYERS.items() if product in entry
            for target in deployer.parse(entry[product], where)]


def _delivery(merged: Mapping[str, Any], where: str) -> dict[str, Any]:
    """delivery, keep_previous, region, cert_region of one service entry, checked."""
    from acmelab.deploy.regions import CERT_REGIONS, check_region

    carriers = [product for product, deployer in DEPLOYERS.items() if deployer.carrier]
    delivery = merged.get("delivery", "direct")
    if delivery != "direct" and delivery not in carriers:
        raise _fail(where, f"delivery must be \"direct\" or one of {', '.join(carriers)}, not {delivery!r}")
    keep = merged.get("keep_previous", 1)
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise _fail(where, f"keep_previous must be a whole number >= 0, not {keep!r}")
    region = merged.get("region")
    if region is not None:
        try:
            check_region(region)
        except ConfigError as error:
            raise _fail(where, str(error)) from None
    cert_region = merged.get("cert_region")
    if cert_region is not None and cert_region not in CERT_REGIONS:
        raise _fail(where, f"cert_region must be one of {', '.join(CERT_REGIONS)}, not {cert_region!r}")
    return {"delivery": delivery, "keep_previous": keep, "region": region, "cert_region": cert_region}


def _options(merged: Mapping[str, Any], where: str) -> tuple[str, str, str | None, str | None, str]:
    """(dns, key_type, preferred_chain, profile, challenge) of one service entry, checked."""
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
    return dns, key_type, preferred, profile, challenge


def _domains(merged: Mapping[str, Any], where: str, source: str) -> list[str]:
    """A service's ``domains``, normalised; at least one.  Raises ConfigError
    (a string instead of a list names the service, if it has a name)."""
    if "domains" in merged and not isinstance(merged["domains"], list):
        named = f"{source} service {merged['name']!r}" if isinstance(merged.get("name"), str) else where
        raise _fail(named, f"domains must be a list of DNS names, e.g. domains = [{merged['domains']!r}], "
                           f"not a {type(merged['domains']).__name__}")
    domains = [normalized_domain(d, where) for d in string_list(merged.get("domains"), where, "domains")] \
        if "domains" in merged else []
    if not domains:
        raise _fail(where, "domains is required (at least one DNS name)")
    return domains


def _with_guesses(unknown: set[str], allowed: set[str]) -> str:
    """``"keytype (did you mean key_type?), foo"``: each unknown key, with the closest allowed one."""
    import difflib

    def one(key: str) -> str:
        close = difflib.get_close_matches(str(key), sorted(allowed), n=1, cutoff=0.6)
        return f"{key} (did you mean {close[0]}?)" if close else str(key)
    return ", ".join(one(key) for key in sorted(map(str, unknown)))


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
    if not isinstance(defaults, Mapping):
        raise _fail(f"{source} [defaults]", "must be a table")
    if set(defaults) - _DEFAULT_KEYS:
        raise _fail(f"{source} [defaults]", f"unknown key(s) {_with_guesses(set(defaults) - _DEFAULT_KEYS, _DEFAULT_KEYS)}; "
                                            f"allowed keys: {', '.join(sorted(_DEFAULT_KEYS))}")
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
            raise _fail(where, f"unknown key(s) {_with_guesses(unknown, _SERVICE_KEYS)}; "
                               f"allowed: {', '.join(sorted(_SERVICE_KEYS))}")
        merged = {**defaults, **entry}
        domains = _domains(merged, where, source)
        try:
            name = check_certificate_name(merged["name"]) if "name" in merged else certificate_name_for(domains[0])
        except InputError as error:
            raise _fail(where, str(error)) from None
        where = f"{source} service {name!r}"
        if name in seen_names:
            raise _fail(where, "two services have this name")
        seen_names.add(name)
        dns, key_type, preferred, profile, challenge = _options(merged, where)
        targets = _targets(merged, where)
        delivery = _delivery(merged, where)
        if delivery["delivery"] != "direct":   # the carrier first: the others bind its upload
            carrier = InstallTarget(delivery["delivery"])
            targets = [carrier] + [t for t in targets if t != carrier]
        for target in targets:
            if not target.deployer.exclusive:
                continue
            if target.id in claimed:
                raise _fail(where, f"{target.id} is also claimed by service {claimed[target.id]!r}")
            claimed[target.id] = name
        services.append(Service(name, tuple(domains), dns, key_type, tuple(targets), preferred, "services",
                                profile, challenge, **delivery))
    return services


def check_covered(services: Iterable[Service]) -> None:
    """Every install target of every service is one its names can serve
    (:meth:`acmelab.deploy.Deployer.preflight` without a client) -- checked
    before anything is asked of the CA (:meth:`acmelab.backends.Backend.check_services`).

    Raises ConfigError naming the service and the target."""
    for service in services:
        for target in service.install:
            try:
                target.deployer.preflight(None, target, service.domains)
            except ConfigError as error:
                raise ConfigError(f"service {service.name!r}: {error}") from None


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
