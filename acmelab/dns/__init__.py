"""DNS-01 providers: who publishes the ``_acme-challenge`` TXT records.

A *DNS provider* is any object with two methods (RFC 8555 §8.4):

* ``present(name, value)`` -- publish TXT ``value`` at ``name``;
* ``cleanup(name, value)`` -- remove exactly that (name, value) record and
  nothing else (a wildcard and its base name put two values on one name,
  and both must stay published until each is cleaned up);

and optionally

* ``wait_until_visible(name, value, timeout)`` -- return once the record is
  visible to the CA's resolvers; raise :class:`~acmelab.errors.DnsError` at
  the deadline (``timeout`` in seconds; 0 looks exactly once).

``name`` is the full validation domain name without trailing dot, e.g.
``"_acme-challenge.www.example.com"`` (see :func:`validation_name`), and
``value`` the TXT value, base64url(SHA-256(key authorization)).

Providers: :mod:`acmelab.dns.challtestsrv` (the lab's mock DNS) and
:mod:`acmelab.dns.alidns` (Alibaba Cloud DNS), registered in
:data:`PROVIDERS` (name -> :class:`ProviderFactory`; a new provider is one
module and one line there).
"""

from __future__ import annotations

import importlib
from typing import Any

from acmelab.challenges import DnsProvider, VisibilityCheck, validation_name
from acmelab.errors import ConfigError

__all__ = ["PROVIDERS", "DnsProvider", "ProviderFactory", "VisibilityCheck", "factory", "for_lab", "from_env",
           "validation_name"]






# --------------------------------------------------------------------------
# The registry: name -> factory (``dns = "<name>"`` in the services file)
# --------------------------------------------------------------------------

class ProviderFactory:
    """How to build one DNS provider: against the cloud (:meth:`from_env`:
    credentials from the environment) or against the lab (:meth:`for_lab`:
    a ``LabInfo``).  ``module:Class`` is imported only when used.

    Args:
        name: the registry key.
        target: ``"acmelab.dns.<module>:<Class>"``.
        lab_only: True if it works only against the lab.
        lab_options: keyword arguments for ``Class.for_lab``.
    """

    def __init__(self, name: str, target: str, *, lab_only: bool = False,
                 lab_options: dict | None = None) -> None:
        self.name, self.target, self.lab_only = name, target, lab_only
        self.lab_options = dict(lab_options or {})

    def provider_class(self) -> type:
        module_name, _, class_name = self.target.partition(":")
        return getattr(importlib.import_module(module_name), class_name)

    def from_env(self, **options: Any) -> DnsProvider:
        """A provider for the real DNS (e.g. ``region_id="cn-hangzhou"``).
        Raises ConfigError for a lab-only provider."""
        if self.lab_only:
            raise ConfigError(f"dns = \"{self.name}\" works only against the lab (--directory lab)")
        return self.provider_class()(**options)

    def for_lab(self, info: Any) -> DnsProvider:
        """A provider for the lab described by ``info`` (a ``LabInfo``)."""
        return self.provider_class().for_lab(info, **self.lab_options)


#: DNS provider name -> factory
PROVIDERS: dict[str, ProviderFactory] = {
    "alidns": ProviderFactory("alidns", "acmelab.dns.alidns:AlidnsProvider",
                              lab_options={"propagation_interval": 0.05}),
    "challtestsrv": ProviderFactory("challtestsrv", "acmelab.dns.challtestsrv:ChallTestSrvProvider",
                                    lab_only=True),
}


def factory(name: str) -> ProviderFactory:
    """The :class:`ProviderFactory` of ``name``.  Raises ConfigError for an unknown name."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ConfigError(f"unknown DNS provider {name!r}; choose one of {', '.join(PROVIDERS)}") from None


def from_env(name: str, **options: Any) -> DnsProvider:
    """``factory(name).from_env(**options)``."""
    return factory(name).from_env(**options)


def for_lab(name: str, info: Any) -> DnsProvider:
    """``factory(name).for_lab(info)``."""
    return factory(name).for_lab(info)
