"""What every install target is: :class:`InstallTarget` and the :class:`Deployer` interface.

A *product* (CDN, API Gateway, CAS, SLB, ...) is one module of
:mod:`acmelab.deploy` holding one :class:`Deployer` and one line in
:data:`acmelab.deploy.DEPLOYERS`.  The services file, the engine
(:mod:`acmelab.engine`), the command (``acmelab install <product>``) and the
RAM policy (:func:`acmelab.deploy.ram_statements`) ask the registry; none
of them names a product.

A deployer says, for its product:

* ``product`` -- its name: the services-file key, the ``acmelab install``
  sub-command and :attr:`InstallTarget.product`;
* :meth:`Deployer.parse` -- the services-file value of that key, validated,
  as targets (:class:`~acmelab.errors.ConfigError` naming the service);
* :meth:`Deployer.target_id` -- the target's identity in the state directory
  and in "claimed by two services" checks;
* :meth:`Deployer.preflight` -- before any order is placed: the target
  exists and the certificate's names cover it (ConfigError naming it);
* :meth:`Deployer.install` -- send the certificate, answer an
  :class:`~acmelab.deploy._rpc.Installation`; :meth:`Deployer.retire` --
  after a successful install, what the previous install left behind;
* :attr:`Deployer.carrier` / :attr:`Deployer.binds` -- CAS-first delivery:
  a carrier (CAS) holds one upload per certificate version that other
  products bind by reference (CDN ``CertType=cas``); :meth:`Deployer.delete`
  removes a superseded upload;
* :meth:`Deployer.handshake` -- the name and port to check the TLS
  handshake at (None: the product serves nothing itself, e.g. CAS);
* :meth:`Deployer.ram_statements` -- the RAM policy statements its actions
  need;
* :meth:`Deployer.add_arguments` / :meth:`Deployer.from_arguments` -- its
  ``acmelab install`` options.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from acmelab import csr as csr_module
from acmelab.errors import ConfigError, InputError

__all__ = ["Deployer", "InstallTarget", "config_error", "normalized_domain"]


@dataclass(frozen=True, init=False)
class InstallTarget:
    """Where a certificate goes: a product and the fields that name the place.

    ``InstallTarget("cdn", "shop.example.com")``,
    ``InstallTarget("apigateway", "api.example.com", "523e...")``,
    ``InstallTarget("cas")``,
    ``InstallTarget("slb", load_balancer_id="lb-...", listener_port=443)``.

    Attributes:
        product: a key of :data:`acmelab.deploy.DEPLOYERS`.
        fields: the product's fields as sorted ``(name, value)`` pairs
            (hashable); ``target.domain``, ``target.group_id`` and
            :meth:`get` read them.
    """

    product: str
    fields: tuple[tuple[str, Any], ...]

    def __init__(self, product: str, domain: str | None = None, group_id: str | None = None,
                 **fields: Any) -> None:
        values = {"domain": domain, "group_id": group_id, **fields}
        object.__setattr__(self, "product", str(product))
        object.__setattr__(self, "fields", tuple(sorted((k, v) for k, v in values.items() if v is not None)))

    def get(self, name: str, default: Any = None) -> Any:
        """The field ``name`` (e.g. ``"load_balancer_id"``), or ``default``."""
        return dict(self.fields).get(name, default)

    @property
    def domain(self) -> str | None:
        """The domain the product serves (CDN, API Gateway), else None."""
        return self.get("domain")

    @property
    def group_id(self) -> str | None:
        """The API Gateway group (``GroupId``), else None."""
        return self.get("group_id")

    @property
    def deployer(self) -> "Deployer":
        """This product's :class:`Deployer`.  Raises ConfigError for an unknown product."""
        from acmelab.deploy import deployer

        return deployer(self.product)

    @property
    def id(self) -> str:
        """The target's identity, e.g. ``"cdn:<domain>"``, ``"apigateway:<group>/<domain>"``, ``"cas"``."""
        return self.deployer.target_id(self)

    def to_dict(self) -> dict[str, Any]:
        """``{"product": ..., <fields>}``, as meta.json stores it."""
        return {"product": self.product, **dict(self.fields)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "InstallTarget":
        """The inverse of :meth:`to_dict` (install records may carry more keys:
        only the product's own fields are kept)."""
        product = str(data["product"])
        try:
            names = deployer_fields(product)
        except ConfigError:
            names = ("domain", "group_id")
        return cls(product, **{k: data[k] for k in names if data.get(k) is not None})


def deployer_fields(product: str) -> tuple[str, ...]:
    from acmelab.deploy import deployer

    return deployer(product).fields


def config_error(where: str, message: str) -> ConfigError:
    """``ConfigError("<where>: <message>")``."""
    return ConfigError(f"{where}: {message}")


def normalized_domain(name: str, where: str) -> str:
    """``name`` as :func:`acmelab.csr.normalize_name` writes it; ConfigError naming ``where`` if invalid."""
    try:
        return csr_module.normalize_name(name)
    except InputError as error:
        raise config_error(where, str(error)) from None


def string_list(value: Any, where: str, key: str) -> list[str]:
    """A string or a list of non-empty strings, as a list; ConfigError otherwise."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise config_error(where, f"{key} must be a string or a list of strings")
    return value


def table_list(value: Any, where: str, key: str, fields: Mapping[str, type]) -> list[Mapping[str, Any]]:
    """A table or a list of tables with exactly ``fields`` (name -> type;
    strings must be non-empty), as a list; ConfigError otherwise."""
    if isinstance(value, Mapping):
        value = [value]
    shape = "{" + ", ".join(fields) + "}"
    if not isinstance(value, list):
        raise config_error(where, f"{key} must be a table {shape} or a list of them")
    for item in value:
        if not isinstance(item, Mapping) or set(item) != set(fields) or not all(
                isinstance(item[name], kind) and not isinstance(item[name], bool) and (kind is not str or item[name])
                for name, kind in fields.items()):
            kinds = " and ".join(fields) + " (" + ", ".join(
                "strings" if kind is str else "integers" if kind is int else kind.__name__
                for kind in dict.fromkeys(fields.values())) + ")"
            raise config_error(where, f"each {key} entry needs exactly {kinds}")
    return value


class Deployer:
    """One product's install target logic (see the module docstring).

    Subclasses set the class attributes and implement :meth:`parse`,
    :meth:`target_id`, :meth:`install` and :meth:`from_arguments`; the
    rest have defaults.

    Attributes:
        product: the product's name (registry key, services-file key, CLI sub-command).
        fields: the :class:`InstallTarget` fields it uses.
        api: the action and API version, for ``acmelab install --help``.
        exclusive: True if a target can belong to one service only
            (a CDN domain); False if every service may have one (CAS).
        ram_actions: the RAM actions its calls need (``"cdn:SetCdnDomainSSLCertificate"``).
        carrier: True if other products can bind its uploads by reference
            (CAS: ``delivery = "cas"``).
        binds: the carriers whose uploads :meth:`install` can bind
            (its ``carrier=`` argument), e.g. ``("cas",)`` for CDN.
    """

    product: str = ""
    fields: tuple[str, ...] = ()
    api: str = ""
    exclusive: bool = True
    ram_actions: tuple[str, ...] = ()
    carrier: bool = False
    binds: tuple[str, ...] = ()

    # -- the services file ------------------------------------------------
    def parse(self, value: Any, where: str) -> list[InstallTarget]:
        """The targets the services-file value of :attr:`product` names.
        Raises ConfigError naming ``where``."""
        raise NotImplementedError

    def target_id(self, target: InstallTarget) -> str:
        """The target's identity (``"<product>:..."``)."""
        raise NotImplementedError

    # -- before, during and after the install ------------------------------
    def covers(self, target: InstallTarget, names: Sequence[str]) -> bool:
        """Whether a certificate for ``names`` can serve ``target`` (default:
        it covers ``target.domain``, or the target has no domain)."""
        from acmelab.deploy.checks import name_matches

        return target.domain is None or any(name_matches(name, target.domain) for name in names)

    def preflight(self, client: Any, target: InstallTarget, names: Sequence[str]) -> None:
        """Raise ConfigError naming the target if the certificate's ``names``
        do not cover it, or (with a ``client``, :meth:`check_exists`) the
        account has no such target.  The engine calls it once per run and
        target, with a client, before any order is placed
        (:func:`acmelab.delivery.preflight`); an install skips the targets
        the run already checked."""
        if not self.covers(target, names):
            raise ConfigError(f"{self.target_id(target)}: the certificate covers {', '.join(names)}, "
                              f"not {target.domain}")
        if client is not None:
            self.check_exists(client, target)

    def check_exists(self, client: Any, target: InstallTarget) -> None:
        """Raise ConfigError naming the target if the account has no such
        target (default: nothing to check)."""

    def install(self, client: Any, target: InstallTarget, chain_pem: str, private_key: Any, *,
                label: str, names: Sequence[str] = (), carrier: Mapping[str, Any] | None = None) -> Any:
        """Send the certificate; returns an :class:`~acmelab.deploy._rpc.Installation`.
        ``label`` is a name unique per certificate version (``<service>-<serial>``),
        ``names`` the certificate's DNS names (first = CN).  ``carrier`` (only
        for a deployer whose :attr:`binds` names it): the carrier's install
        record of this version (``cert_id``, ``name``, ``cert_region``) to
        bind instead of sending the key."""
        raise NotImplementedError

    def delete(self, client: Any, record: Mapping[str, Any]) -> None:
        """A carrier: delete the superseded upload ``record`` (``cert_id``,
        ``name``, ``serial_hex``).  Raises AliyunError when the product
        refuses (e.g. still bound somewhere)."""
        raise NotImplementedError

    def retire(self, client: Any, target: InstallTarget, previous: Mapping[str, Any] | None,
               installation: Any) -> None:
        """After a successful install: remove what the ``previous`` install
        record (None: none) left behind (default: nothing)."""

    def handshake(self, target: InstallTarget, names: Sequence[str]) -> tuple[str, int] | None:
        """``(server_name, port)`` for the TLS check after an install (SNI and
        host name), or None when nothing can be checked (no domain, a
        wildcard domain).  The backend says which host and port to connect
        to (the lab: the product's edge listener)."""
        domain = target.domain
        if not domain or domain.startswith("*."):
            return None
        return domain, 443

    # -- RAM --------------------------------------------------------------
    def ram_statements(self, targets: Sequence[InstallTarget], region: str) -> list[dict[str, Any]]:
        """RAM policy statements for :attr:`ram_actions` on ``targets`` (default: on ``*``)."""
        if not targets or not self.ram_actions:
            return []
        return [{"Effect": "Allow", "Action": list(self.ram_actions), "Resource": ["*"]}]

    # -- the command ------------------------------------------------------
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the options of ``acmelab install <product>`` (default: none)."""

    def from_arguments(self, args: argparse.Namespace) -> InstallTarget:
        """The target ``acmelab install <product>`` names.  Raises ConfigError."""
        raise NotImplementedError
