"""The lab: Pebble, pebble-challtestsrv and the local Alibaba Cloud endpoint
on loopback, up with one call.

Theory of operation
-------------------
``Lab.start()``

1. finds the pinned Pebble binaries (:func:`acmelab.lab.build.find_binaries`:
   the venv's, at commit :data:`~acmelab.lab.build.PEBBLE_COMMIT`, never
   another one) and checks that every port is free;
2. makes a throw-away CA and listener certificates for ``localhost`` /
   ``127.0.0.1`` (:mod:`acmelab.lab.tls`), writes Pebble's config into the
   run directory (:mod:`acmelab.lab.pebble`);
3. starts ``pebble-challtestsrv`` (mock DNS + management API), then
   ``pebble -dnsserver 127.0.0.1:<dns>`` and waits until the ACME directory
   answers over verified HTTPS;
4. starts ``python -m acmelab.lab.aliyun`` (unless ``aliyun=False``) and
   waits until it accepts TLS;
5. writes ``lab.json`` (no secrets) so :func:`status` can find the lab again.

Each process is recorded by pid and start time in ``<run_dir>/pids`` as
soon as it is spawned (before it is waited for) and stopped exactly by that
record (:mod:`acmelab.lab.processes`); a pid file is removed only once its
process is gone.  Starting, stopping and reading the state of a run
directory (:meth:`Lab.start`, :meth:`Lab.stop`, :func:`ensure_running`,
:func:`stop`, :func:`status`) all happen under one lock, ``flock`` on
``<run_dir>/lab.lock`` (:func:`run_dir_lock`), so a ``stop`` from one
process cannot interleave with a start from another.  A start that fails
stops every process it spawned before raising.  A lab used as
a context manager dies with its Python process (atexit, SIGTERM handler and
the kernel's parent-death signal); a lab from :func:`ensure_running` is
detached and lives until :func:`stop` (``acmelab lab down``).

Run directory layout::

    lab.json                 LabInfo without secrets
    lab.lock                 the run directory's lock (flock), only while held
    ca.pem                   the lab CA (pass as requests' verify=)
    pebble-config.json       0600 (may hold EAB keys)
    aliyun-access-key.json   0600, the lab's AccessKeyId/AccessKeySecret
    tls/pebble/{cert,key}.pem, tls/aliyun/{cert,key}.pem
    logs/{challtestsrv,pebble,aliyun}.log
    pids/{challtestsrv,pebble,aliyun}.json
    aliyun-state/            the Alibaba endpoint's state
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import socket
import ssl
import string
import tempfile
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

import requests

from acmelab import files
from acmelab.errors import InputError, LabError
from acmelab.lab import pebble as pebble_config
from acmelab.lab.aliyun.latency import check_seconds
from acmelab.lab.build import PEBBLE_VERSION, find_binaries
from acmelab.lab.processes import (
    ProcessRecord,
    log_tail,
    python_module_argv,
    read_records,
    spawn,
    stop_record,
)
from acmelab.lab.pebble import COURSE_PEBBLE_ENV, COURSE_RETRY_AFTER
from acmelab.lab.tls import LabCertificateAuthority

START_TIMEOUT = 30.0  # seconds to wait for each component to answer
ALIYUN_MODULE = "acmelab.lab.aliyun"
ALIYUN_SECRET_ENV = "ACMELAB_LAB_ACCESS_KEY_SECRET"


# --------------------------------------------------------------------------
# Ports
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class LabPorts:
    """The loopback ports the lab listens on (all on 127.0.0.1).

    Attributes:
        acme: Pebble's ACME listener (HTTPS; directory at ``/dir``).
        management: Pebble's management listener (HTTPS; ``/roots/N``...).
        dns: pebble-challtestsrv's DNS server (UDP and TCP).
        challtestsrv: pebble-challtestsrv's management API (HTTP).
        aliyun: the local Alibaba Cloud API endpoint (HTTPS).
        cdn_edge: the CDN edge TLS listener of the Alibaba endpoint.
        apigateway_edge: the API Gateway edge TLS listener.
        slb_edge: the SLB (Classic Load Balancer) edge TLS listener.
    """

    acme: int = 14000
    management: int = 15000
    dns: int = 8053
    challtestsrv: int = 8055
    aliyun: int = 8443
    cdn_edge: int = 9443
    apigateway_edge: int = 9444
    slb_edge: int = 9445

    def __post_init__(self) -> None:
        values = [getattr(self, f.name) for f in fields(self)]
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
                raise InputError(f"LabPorts.{f.name} must be a port number 1..65535 (got {value!r})")
        if len(set(values)) != len(values):
            raise InputError(f"LabPorts must be {len(values)} different ports (got {values})")

    @classmethod
    def free(cls) -> "LabPorts":
        """Distinct free ephemeral ports, one per field (the DNS one free for UDP and
        TCP), chosen by the kernel.  Use this in tests."""
        held: list[socket.socket] = []
        ports: list[int] = []
        try:
            while len(ports) < len(fields(cls)):
                tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                tcp.bind(("127.0.0.1", 0))
                held.append(tcp)
                port = tcp.getsockname()[1]
                if len(ports) == 2:  # the DNS port: UDP too
                    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    try:
                        udp.bind(("127.0.0.1", port))
                    except OSError:
                        udp.close()
                        continue
                    held.append(udp)
                ports.append(port)
        finally:
            for sock in held:
                sock.close()
        return cls(*ports)

    def to_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _port_user(port: int, kind: int = socket.SOCK_STREAM) -> str | None:
    """None if ``port`` can be bound on 127.0.0.1, else the OS error text."""
    sock = socket.socket(socket.AF_INET, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ignore TIME_WAIT
        sock.bind(("127.0.0.1", port))
    except OSError as error:
        return error.strerror or str(error)
    finally:
        sock.close()
    return None


def check_ports_free(ports: dict[str, int], udp: tuple[str, ...] = ("dns",)) -> None:
    """Raise :class:`LabError` naming every port of ``ports`` (name -> port)
    that cannot be bound on 127.0.0.1 (TCP; also UDP for names in ``udp``)."""
    taken = []
    for name, port in ports.items():
        problem = _port_user(port)
        if problem is None and name in udp:
            problem = _port_user(port, socket.SOCK_DGRAM)
        if problem:
            taken.append(f"{name} port {port} ({problem})")
    if taken:
        raise LabError(
            "cannot start the lab, port already in use: " + ", ".join(taken)
            + ". Stop what uses it (is a lab already up? `acmelab lab status`) or choose other ports."
        )


# --------------------------------------------------------------------------
# LabInfo
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class LabInfo:
    """Where a running lab is and how to trust it.

    Attributes:
        directory_url: the ACME directory, e.g. ``"https://localhost:14000/dir"``.
        ca_bundle: PEM file of the lab's throw-away CA, which signed the TLS
            certificates of Pebble's listeners and of the Alibaba endpoint;
            pass it as ``requests``' ``verify=``.
        management_url: Pebble's management API, e.g. ``"https://localhost:15000"``.
        challtestsrv_url: pebble-challtestsrv's management API, e.g.
            ``"http://127.0.0.1:8055"`` (see :class:`acmelab.lab.challtestsrv.ChallTestSrv`).
        dns_server: ``("127.0.0.1", 8053)``, the mock DNS Pebble validates against.
        aliyun_endpoint: ``"localhost:8443"`` (HTTPS) or None when the
            Alibaba endpoint is not running.
        aliyun_access_key_id: the AccessKeyId the endpoint accepts.
        aliyun_access_key_secret: its AccessKeySecret (hidden from repr and JSON).
        cdn_edge_port: port of the CDN edge TLS listener.
        apigateway_edge_port: port of the API Gateway edge TLS listener.
        slb_edge_port: port of the SLB edge TLS listener (None when the
            Alibaba endpoint is not running, or in a ``lab.json`` written
            before it existed).
        run_dir: the lab's run directory (logs, config, pids).
        eab_keys: External Account Binding keys, kid -> base64url HMAC key
            (RFC 8555 §7.3.4); empty unless EAB is required (hidden from repr and JSON).
        pebble_env: the ``PEBBLE_*`` knobs Pebble runs with, e.g.
            ``{"PEBBLE_WFE_NONCEREJECT": "0", ...}`` (see :mod:`acmelab.lab.pebble`).
        pebble_version: the Pebble commit the lab runs (``"b1e1ca4f3c30"``).
        profiles: the profiles Pebble offers, name -> lifetime in seconds.
        retry_after: Pebble's ``retryAfter``, ``{"authz": s, "order": s}``.
        dns_propagation_delay: seconds before a record written or removed
            through the Alibaba endpoint (Alidns) is seen by the lab DNS
            (0: at once; :mod:`acmelab.lab.aliyun.latency`).
        aliyun_latency: seconds added to every answer of the Alibaba endpoint.
    """

    directory_url: str
    ca_bundle: Path
    management_url: str
    challtestsrv_url: str
    dns_server: tuple[str, int]
    aliyun_endpoint: str | None
    aliyun_access_key_id: str
    aliyun_access_key_secret: str = field(repr=False)
    cdn_edge_port: int
    apigateway_edge_port: int
    run_dir: Path
    eab_keys: dict[str, str] = field(default_factory=dict, repr=False, compare=False, hash=False)
    pebble_env: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    pebble_version: str = PEBBLE_VERSION
    profiles: dict[str, int] = field(default_factory=dict, compare=False, hash=False)
    retry_after: dict[str, int] = field(default_factory=dict, compare=False, hash=False)
    dns_propagation_delay: float = 0.0
    aliyun_latency: float = 0.0
    slb_edge_port: int | None = None

    # -- JSON ------------------------------------------------------------
    def to_dict(self, *, include_secrets: bool = False) -> dict[str, Any]:
        """A JSON-serialisable dict.  Secrets (the access key secret, EAB
        HMAC keys) are left out unless ``include_secrets``; EAB key ids are
        listed as ``eab_kids``."""
        data: dict[str, Any] = {
            "directory_url": self.directory_url,
            "ca_bundle": str(self.ca_bundle),
            "management_url": self.management_url,
            "challtestsrv_url": self.challtestsrv_url,
            "dns_server": [self.dns_server[0], self.dns_server[1]],
            "aliyun_endpoint": self.aliyun_endpoint,
            "aliyun_access_key_id": self.aliyun_access_key_id,
            "cdn_edge_port": self.cdn_edge_port,
            "apigateway_edge_port": self.apigateway_edge_port,
            "slb_edge_port": self.slb_edge_port,
            "run_dir": str(self.run_dir),
            "eab_kids": sorted(self.eab_keys),
            "pebble_env": dict(sorted(self.pebble_env.items())),
            "pebble_version": self.pebble_version,
            "profiles": dict(self.profiles),
            "retry_after": dict(self.retry_after),
            "dns_propagation_delay": self.dns_propagation_delay,
            "aliyun_latency": self.aliyun_latency,
        }
        if include_secrets:
            data["aliyun_access_key_secret"] = self.aliyun_access_key_secret
            data["eab_keys"] = dict(self.eab_keys)
        return data

    def to_json(self, *, include_secrets: bool = False, indent: int | None = 2) -> str:
        """The JSON text of :meth:`to_dict` (no secrets unless asked)."""
        return json.dumps(self.to_dict(include_secrets=include_secrets), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, aliyun_access_key_secret: str = "",
                  eab_keys: dict[str, str] | None = None) -> "LabInfo":
        """Rebuild a LabInfo from :meth:`to_dict` output (secrets from the
        dict if present, else from the keyword arguments)."""
        return cls(
            directory_url=data["directory_url"],
            ca_bundle=Path(data["ca_bundle"]),
            management_url=data["management_url"],
            challtestsrv_url=data["challtestsrv_url"],
            dns_server=(str(data["dns_server"][0]), int(data["dns_server"][1])),
            aliyun_endpoint=data.get("aliyun_endpoint"),
            aliyun_access_key_id=data["aliyun_access_key_id"],
            aliyun_access_key_secret=data.get("aliyun_access_key_secret", aliyun_access_key_secret),
            cdn_edge_port=int(data["cdn_edge_port"]),
            apigateway_edge_port=int(data["apigateway_edge_port"]),
            slb_edge_port=int(data["slb_edge_port"]) if data.get("slb_edge_port") is not None else None,
            run_dir=Path(data["run_dir"]),
            eab_keys=dict(data.get("eab_keys") or eab_keys or {}),
            pebble_env={str(k): str(v) for k, v in (data.get("pebble_env") or {}).items()},
            pebble_version=str(data.get("pebble_version") or PEBBLE_VERSION),
            profiles={str(k): int(v) for k, v in (data.get("profiles") or {}).items()},
            retry_after={str(k): int(v) for k, v in (data.get("retry_after") or {}).items()},
            dns_propagation_delay=float(data.get("dns_propagation_delay") or 0.0),
            aliyun_latency=float(data.get("aliyun_latency") or 0.0),
        )

    # -- the Alibaba endpoint's account --------------------------------
    def inventory(self) -> dict[str, list[dict[str, Any]]]:
        """What the lab's Alibaba account holds now (lab action
        ``AcmelabDescribeInventory``; never a key)::

            {"Zones": [{"DomainName", "PunyCode"}, ...],
             "CdnDomains": [{"DomainName", "ServerCertificateStatus", "CertType"?, "CertId"?, "Serial"?}, ...],
             "ApiGroups": [{"GroupId", "GroupName", "CustomDomains": [{"DomainName", "Serial"}]}, ...],
             "LoadBalancers": [{"LoadBalancerId", "LoadBalancerName",
                                "Listeners": [{"ListenerPort", "ServerCertificateId", "Serial"}]}, ...],
             "CasCertificates": [{"CertId", "Name", "Serial"}, ...]}

        ``Serial`` is the served certificate's serial, lower-case hex (None: no certificate).

        Raises:
            LabError: the Alibaba endpoint is not running or did not answer.
        """
        from acmelab.lab.aliyun.call import call

        if not self.aliyun_endpoint:
            raise LabError("this lab runs without its Alibaba endpoint (started with aliyun=False / --no-aliyun)")
        answer = call(self.aliyun_endpoint, self.aliyun_access_key_id, self.aliyun_access_key_secret,
                      self.ca_bundle, "AcmelabDescribeInventory", "2026-01-01")
        answer.pop("RequestId", None)
        return answer

    # -- Pebble's management API (not RFC 8555: Pebble README, "Management interface")
    def _management_get(self, path: str) -> requests.Response:
        try:
            return requests.get(f"{self.management_url}{path}", verify=str(self.ca_bundle), timeout=10)
        except requests.RequestException as error:
            raise LabError(f"Pebble's management API at {self.management_url} is not reachable: {error}") from error

    def set_renewal_info(self, certificate_pem: str, answer: str | dict[str, Any]) -> None:
        """Make Pebble answer ``answer`` to renewalInfo (RFC 9773) for this
        certificate: ``POST {management}/set-renewal-info/`` (Pebble's
        management API).  ``answer`` is a dict (sent as JSON) or any text,
        even malformed JSON, to see what a client does with garbage.  Pebble
        then sends it with ``Retry-After: 21600``.

        Raises:
            LabError: Pebble does not know the certificate, or the API is unreachable.
        """
        text = answer if isinstance(answer, str) else json.dumps(answer)
        try:
            response = requests.post(f"{self.management_url}/set-renewal-info/", verify=str(self.ca_bundle),
                                     json={"Certificate": certificate_pem, "ARIResponse": text}, timeout=10)
        except requests.RequestException as error:
            raise LabError(f"Pebble's management API at {self.management_url} is not reachable: {error}") from error
        if response.status_code != 200:
            raise LabError(f"set-renewal-info answered HTTP {response.status_code}: {response.text[:200]}")

    def _numbered_pems(self, kind: str) -> list[str]:
        pems: list[str] = []
        for number in range(64):
            response = self._management_get(f"/{kind}/{number}")
            if response.status_code == 404:
                break
            if response.status_code != 200:
                raise LabError(f"GET /{kind}/{number} answered HTTP {response.status_code}")
            pems.append(response.text)
        return pems

    def roots(self) -> list[str]:
        """Pebble's issuing roots, PEM strings: ``GET {management}/roots/N``
        for N = 0, 1, ... until 404 (more than one with
        ``PEBBLE_ALTERNATE_ROOTS``).  Regenerated at every Pebble start.

        Raises:
            LabError: the management API is unreachable or answers an error.
        """
        return self._numbered_pems("roots")

    def intermediates(self) -> list[str]:
        """Pebble's intermediates, PEM strings: ``GET
        {management}/intermediates/N`` until 404 (one per root chain).

        Raises:
            LabError: as :meth:`roots`.
        """
        return self._numbered_pems("intermediates")

    def cert_status(self, serial_hex: str) -> dict[str, Any]:
        """A certificate's status from ``GET
        {management}/cert-status-by-serial/<serial>``: a dict with
        ``Certificate`` (PEM), ``Status`` ("Valid"/"Revoked"), ``Serial``,
        and for revoked certificates ``Reason`` (RFC 5280 code) and ``RevokedAt``.

        Args:
            serial_hex: the serial in hex, no ``0x``, any case (leading
                zeros are dropped as Pebble expects).

        Raises:
            InputError: ``serial_hex`` is not hexadecimal.
            LabError: unknown serial (404) or the API is unreachable.
        """
        text = serial_hex.strip().lower().replace(":", "")
        if text.startswith("0x"):
            text = text[2:]
        try:
            number = int(text, 16)
        except ValueError:
            raise InputError(f"not a hexadecimal serial number: {serial_hex!r}") from None
        response = self._management_get(f"/cert-status-by-serial/{number:x}")
        if response.status_code == 404:
            raise LabError(f"Pebble knows no certificate with serial {number:x}")
        if response.status_code != 200:
            raise LabError(f"cert-status-by-serial answered HTTP {response.status_code}: {response.text[:200]}")
        return response.json()


# --------------------------------------------------------------------------
# Run directory helpers
# --------------------------------------------------------------------------

def default_run_dir() -> Path:
    """``$ACMELAB_LAB_DIR``, else ``<repo>/.lab`` in a source checkout, else
    ``~/.acmelab/lab``."""
    configured = os.environ.get("ACMELAB_LAB_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file() and (repo / ".git").exists():
        return repo / ".lab"
    return Path.home() / ".acmelab" / "lab"


def _access_key(run_dir: Path) -> tuple[str, str]:
    """The run directory's lab AccessKeyId/AccessKeySecret, made once
    (random) and kept in ``aliyun-access-key.json`` (0600)."""
    path = run_dir / "aliyun-access-key.json"
    if path.exists():
        try:
            data = json.loads(path.read_text())
            return str(data["AccessKeyId"]), str(data["AccessKeySecret"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise LabError(f"cannot read the lab's access key file {path} ({type(error).__name__}); "
                           "it is never overwritten: delete it to have a new key made") from None
    alphabet = string.ascii_letters + string.digits
    key_id = "LTAI" + "".join(secrets.choice(alphabet) for _ in range(20))
    key_secret = "".join(secrets.choice(alphabet) for _ in range(30))
    files.write_atomically(path, json.dumps({"AccessKeyId": key_id, "AccessKeySecret": key_secret}).encode(),
                           mode=0o600, parents=True)
    return key_id, key_secret


def _read_eab_keys(run_dir: Path) -> dict[str, str]:
    try:
        config = json.loads((run_dir / "pebble-config.json").read_text())
        return dict(config["pebble"].get("externalAccountMACKeys") or {})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


_LOCKS_GUARD = threading.Lock()
_THREAD_LOCKS: dict[Path, threading.RLock] = {}
_HELD: dict[Path, list[Any]] = {}  # run dir -> [open lock file, depth]


@contextlib.contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run directory's lock: :func:`acmelab.files.exclusive_lock`
    (an ``flock``) on ``<run_dir>/lab.lock`` against other processes, a lock
    per run directory against other threads.  Re-entrant within one thread
    (``ensure_running`` -> ``Lab.start`` -> ``Lab.stop`` on failure).  Waits
    until it is free.  The lock file exists only while it is held, and the
    lab's processes do not inherit it (``close_fds``).

    Raises:
        OSError: the run directory or its lock file cannot be created
            (``WriteFailed``, an OSError, for the lock file).
    """
    key = Path(run_dir).resolve()
    with _LOCKS_GUARD:
        thread_lock = _THREAD_LOCKS.setdefault(key, threading.RLock())
    with thread_lock:
        held = _HELD.get(key)
        if held is None:
            key.mkdir(parents=True, exist_ok=True)
            stack = contextlib.ExitStack()
            stack.enter_context(files.exclusive_lock(key / "lab.lock", wait=math.inf))
            held = _HELD[key] = [stack, 0]
        held[1] += 1
        try:
            yield
        finally:
            held[1] -= 1
            if held[1] == 0:
                del _HELD[key]
                held[0].close()  # releases the flock, removes the lock file


# --------------------------------------------------------------------------
# Lab
# --------------------------------------------------------------------------

class Lab:
    """Start the lab; stop exactly what was started.

    Example::

        with Lab(tmp_path, ports=LabPorts.free()) as info:
            requests.get(info.directory_url, verify=info.ca_bundle)

    Args:
        run_dir: where config, certificates, logs and pid files go; None makes
            a temporary directory that is removed on stop.
        ports: :class:`LabPorts` (default: the lab's well-known ports).
        pebble_env: Pebble knobs, e.g. ``{"PEBBLE_WFE_NONCEREJECT": "0"}``
            (see :mod:`acmelab.lab.pebble`), applied key by key on top of
            ``pebble_defaults``.
        pebble_defaults: the knobs under ``pebble_env``; default
            :data:`~acmelab.lab.pebble.DEFAULT_PEBBLE_ENV`
            (``PEBBLE_VA_NOSLEEP=1``); :func:`ensure_running` passes
            :data:`~acmelab.lab.pebble.COURSE_PEBBLE_ENV`.
        strict: run ``pebble -strict``.
        eab_keys: ``{kid: base64url HMAC key}``; non-empty makes Pebble require
            External Account Binding (RFC 8555 §7.3.4).
        profiles: name -> ``(description, lifetime seconds)``; default
            Let's Encrypt's ``classic``, ``tlsserver``, ``shortlived``
            (:data:`acmelab.lab.pebble.LETSENCRYPT_PROFILES`).
        retry_after: ``{"authz": s, "order": s}``, the ``Retry-After`` Pebble
            sends on processing authorizations and orders; default none
            (the course's lab: :data:`~acmelab.lab.pebble.COURSE_RETRY_AFTER`).
        key_algorithm: ``"rsa"`` or ``"ecdsa"``, Pebble's own CA keys.
        dns_propagation_delay: seconds (>= 0, default 0) before a TXT or
            CNAME record written or removed through the Alibaba endpoint
            reaches the lab DNS that Pebble validates against, as with real
            Alibaba Cloud DNS (the Alidns API shows it at once).
        aliyun_latency: seconds (>= 0, default 0) added to every answer of
            the Alibaba endpoint, as a round trip over the internet would.
            For validation taking time, see Pebble's ``PEBBLE_VA_SLEEPTIME``
            in ``pebble_env``; for polls, ``retry_after``.
        aliyun: start the local Alibaba Cloud endpoint (:mod:`acmelab.lab.aliyun`).
        detached: processes outlive this Python process (used by
            :func:`ensure_running`); otherwise they die with it.

    Raises (``start``):
        InputError: bad ``pebble_env`` / ``eab_keys`` / ``ports`` /
            ``dns_propagation_delay`` / ``aliyun_latency``.
        LabError: a binary is missing, a port is taken, a lab already runs in
            ``run_dir``, or a component died or did not answer in time (the
            message includes the tail of its log).
    """

    def __init__(self, run_dir: Path | None = None, *, ports: LabPorts | None = None,
                 pebble_env: dict[str, str] | None = None,
                 pebble_defaults: dict[str, str] = pebble_config.DEFAULT_PEBBLE_ENV, strict: bool = False,
                 eab_keys: dict[str, str] | None = None,
                 profiles: dict[str, tuple[str, int]] | None = None,
                 retry_after: dict[str, int] | None = None, key_algorithm: str = "rsa",
                 dns_propagation_delay: float = 0, aliyun_latency: float = 0,
                 aliyun: bool = True, detached: bool = False) -> None:
        self._temporary = run_dir is None
        self.run_dir = Path(run_dir).resolve() if run_dir is not None else None
        self.ports = ports or LabPorts()
        self.pebble_environment = pebble_config.pebble_environment(pebble_env, pebble_defaults)
        self.strict = bool(strict)
        self.eab_keys = pebble_config.check_eab_keys(eab_keys)
        self.profiles = pebble_config.check_profiles(profiles)
        self.retry_after = pebble_config.check_retry_after(retry_after)
        self.key_algorithm = pebble_config.check_key_algorithm(key_algorithm)
        try:
            self.dns_propagation_delay = check_seconds(dns_propagation_delay, "dns_propagation_delay")
            self.aliyun_latency = check_seconds(aliyun_latency, "aliyun_latency")
        except ValueError as error:
            raise InputError(str(error)) from None
        self.aliyun = aliyun
        self.detached = detached
        self.info: LabInfo | None = None
        self._records: list[ProcessRecord] = []
        self._previous_sigterm: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = "running" if self.info else "stopped"
        return f"Lab(run_dir={str(self.run_dir)!r}, ports={self.ports!r}, {state})"

    def __enter__(self) -> LabInfo:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- start -----------------------------------------------------------
    def start(self) -> LabInfo:
        """Start everything and return its :class:`LabInfo` (see class doc)."""
        if self.info is not None:
            return self.info
        pebble_path, challtestsrv_path = find_binaries()
        pebble, challtestsrv = str(pebble_path), str(challtestsrv_path)
        start_aliyun = self.aliyun
        ports = self.ports.to_dict()
        if not start_aliyun:
            for name in ("aliyun", "cdn_edge", "apigateway_edge", "slb_edge"):
                ports.pop(name)
        if self.run_dir is None:
            check_ports_free(ports)  # before making a directory we would throw away
            self.run_dir = Path(tempfile.mkdtemp(prefix="acmelab-lab-")).resolve()
        run_dir = self.run_dir
        with run_dir_lock(run_dir):
            alive = [record.name for record in read_records(run_dir) if record.is_ours()]
            if alive:
                raise LabError(f"a lab is already running in {run_dir} ({', '.join(alive)}); "
                               "stop it first (`acmelab lab down`) or use another run directory")
            check_ports_free(ports)
            if not self.detached:
                self._install_exit_handlers()
            try:
                return self._start_components(run_dir, pebble, challtestsrv, start_aliyun)
            except BaseException:
                self.stop()  # every process spawned so far, then re-raise
                raise

    def _start_components(self, run_dir: Path, pebble: str, challtestsrv: str, start_aliyun: bool) -> LabInfo:
        ports = self.ports
        # The throw-away CA and the listener certificates.
        authority = LabCertificateAuthority.generate()
        ca_bundle = authority.write_bundle(run_dir / "ca.pem")
        pebble_tls = authority.issue_listener(run_dir / "tls" / "pebble")
        config = pebble_config.write_pebble_config(
            run_dir / "pebble-config.json", acme_port=ports.acme, management_port=ports.management,
            certificate=pebble_tls.certificate, private_key=pebble_tls.private_key, eab_keys=self.eab_keys,
            profiles=self.profiles, retry_after=self.retry_after, key_algorithm=self.key_algorithm,
        )
        key_id, key_secret = _access_key(run_dir)
        base_env = {key: value for key, value in os.environ.items()
                    if not key.startswith("PEBBLE_") and key != ALIYUN_SECRET_ENV}

        # pebble-challtestsrv: the mock DNS Pebble validates against.
        challtestsrv_url = f"http://127.0.0.1:{ports.challtestsrv}"
        process, record = self._spawn(
            "challtestsrv", pebble_config.challtestsrv_argv(challtestsrv, ports.dns, ports.challtestsrv), base_env)
        self._wait(record, process, lambda: _tcp_accepts(ports.challtestsrv) and _udp_bound(ports.dns))

        # Pebble.
        directory_url = f"https://localhost:{ports.acme}/dir"
        process, record = self._spawn(
            "pebble", pebble_config.pebble_argv(pebble, config, ports.dns, strict=self.strict),
            self.pebble_environment)
        self._wait(record, process, lambda: _directory_answers(directory_url, ca_bundle)
                   and _https_answers(f"https://localhost:{ports.management}/roots/0", ca_bundle))

        # The local Alibaba Cloud endpoint (acmelab.lab.aliyun).
        aliyun_endpoint = None
        if start_aliyun:
            aliyun_tls = authority.issue_listener(run_dir / "tls" / "aliyun")
            state_dir = run_dir / "aliyun-state"
            state_dir.mkdir(exist_ok=True)
            argv = python_module_argv(ALIYUN_MODULE) + [
                "--listen", f"127.0.0.1:{ports.aliyun}",
                "--cert", str(aliyun_tls.certificate), "--key", str(aliyun_tls.private_key),
                "--challtestsrv", challtestsrv_url, "--state-dir", str(state_dir),
                "--access-key-id", key_id,
                "--cdn-edge-port", str(ports.cdn_edge), "--apigateway-edge-port", str(ports.apigateway_edge),
                "--slb-edge-port", str(ports.slb_edge),
                "--dns-propagation-delay", repr(self.dns_propagation_delay),
                "--api-latency", repr(self.aliyun_latency),
            ]
            # acmelab importable from the run directory too (source checkout without install)
            package_root = str(Path(__file__).resolve().parents[2])
            python_path = os.pathsep.join(p for p in (package_root, base_env.get("PYTHONPATH", "")) if p)
            env = dict(base_env, PYTHONPATH=python_path, **{ALIYUN_SECRET_ENV: key_secret})
            process, record = self._spawn("aliyun", argv, env)
            self._wait(record, process, lambda: _tls_accepts(ports.aliyun, ca_bundle))
            aliyun_endpoint = f"localhost:{ports.aliyun}"

        info = LabInfo(
            directory_url=directory_url,
            ca_bundle=ca_bundle,
            management_url=f"https://localhost:{ports.management}",
            challtestsrv_url=challtestsrv_url,
            dns_server=("127.0.0.1", ports.dns),
            aliyun_endpoint=aliyun_endpoint,
            aliyun_access_key_id=key_id,
            aliyun_access_key_secret=key_secret,
            cdn_edge_port=ports.cdn_edge,
            apigateway_edge_port=ports.apigateway_edge,
            slb_edge_port=ports.slb_edge if start_aliyun else None,
            run_dir=run_dir,
            eab_keys=dict(self.eab_keys),
            pebble_env={k: v for k, v in self.pebble_environment.items() if k.startswith("PEBBLE_")},
            pebble_version=PEBBLE_VERSION,
            profiles={name: seconds for name, (_, seconds) in self.profiles.items()},
            retry_after=dict(self.retry_after),
            dns_propagation_delay=self.dns_propagation_delay if start_aliyun else 0.0,
            aliyun_latency=self.aliyun_latency if start_aliyun else 0.0,
        )
        state = dict(info.to_dict(), ports=ports.to_dict(), strict=self.strict, detached=self.detached)
        files.write_atomically(run_dir / "lab.json", json.dumps(state, indent=2).encode(), mode=0o644, parents=True)
        self.info = info
        return info

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]):
        # Called under run_dir_lock; spawn() writes the pid file before it
        # returns, so a process is never running unrecorded.
        # The kernel's parent-death signal fires when the *thread* that
        # started the child ends, so it is only used from the main thread;
        # elsewhere atexit has to do.
        die_with_parent = not self.detached and threading.current_thread() is threading.main_thread()
        process, record = spawn(name, argv, run_dir=self.run_dir, env=env, die_with_parent=die_with_parent)
        self._records.append(record)
        return process, record

    def _wait(self, record: ProcessRecord, process, ready) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise LabError(
                    f"{record.name} exited at start (exit status {process.returncode}); "
                    f"last lines of its log {record.log}:\n{log_tail(record.log)}"
                )
            if ready():
                return
            if time.monotonic() > deadline:
                raise LabError(
                    f"{record.name} did not answer within {START_TIMEOUT:.0f} s; "
                    f"last lines of its log {record.log}:\n{log_tail(record.log)}"
                )
            time.sleep(0.05)

    # -- stop ------------------------------------------------------------
    def stop(self) -> None:
        """Stop the processes this Lab started (by pid, verified), newest
        first; remove ``lab.json``; remove the run directory if it was a
        temporary one.  Safe to call twice.

        Raises:
            LabError: a process survived SIGKILL (its pid file is kept).
        """
        run_dir = self.run_dir
        # the run directory's lock first, then this Lab's (start holds the
        # former when it calls stop after a failure)
        shared = run_dir_lock(run_dir) if run_dir is not None and run_dir.is_dir() else contextlib.nullcontext()
        with shared, self._lock:
            records, self._records = self._records, []
            survivors = [record for record in reversed(records) if run_dir is not None
                         and not stop_record(record, run_dir)]
            self._records = list(reversed(survivors))
            if run_dir is not None and not survivors:
                if records:  # only a lab.json we wrote
                    try:
                        (run_dir / "lab.json").unlink()
                    except FileNotFoundError:
                        pass
                if self._temporary:
                    shutil.rmtree(run_dir, ignore_errors=True)
                    self.run_dir = None
            self.info = None
            self._remove_exit_handlers()
            if survivors:
                raise LabError(_survivors_message(survivors))

    # -- dying with Python -------------------------------------------------
    def _install_exit_handlers(self) -> None:
        atexit.register(self.stop)
        if threading.current_thread() is threading.main_thread():
            try:
                current = signal.getsignal(signal.SIGTERM)
            except ValueError:
                return
            if current in (signal.SIG_DFL, None):
                self._previous_sigterm = current
                signal.signal(signal.SIGTERM, _raise_system_exit)

    def _remove_exit_handlers(self) -> None:
        atexit.unregister(self.stop)
        if self._previous_sigterm is not None and threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGTERM) is _raise_system_exit:
                signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None


def _survivors_message(survivors: list[ProcessRecord]) -> str:
    names = ", ".join(f"{record.name} (pid {record.pid})" for record in survivors)
    return f"could not stop {names}: still running after SIGKILL; its pid file is kept"


def _raise_system_exit(signum: int, frame: object) -> None:
    """SIGTERM -> SystemExit, so ``with Lab()`` blocks and atexit clean up."""
    raise SystemExit(128 + signum)


# --------------------------------------------------------------------------
# Readiness probes
# --------------------------------------------------------------------------

def _tcp_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _udp_bound(port: int) -> bool:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        return True  # somebody (challtestsrv) holds it
    finally:
        sock.close()
    return False


def _https_answers(url: str, ca_bundle: Path) -> bool:
    try:
        return requests.get(url, verify=str(ca_bundle), timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _directory_answers(url: str, ca_bundle: Path) -> bool:
    try:
        response = requests.get(url, verify=str(ca_bundle), timeout=2)
        return response.status_code == 200 and "newNonce" in response.json()
    except (requests.RequestException, ValueError):
        return False


def _tls_accepts(port: int, ca_bundle: Path) -> bool:
    context = ssl.create_default_context(cafile=str(ca_bundle))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
            with context.wrap_socket(raw, server_hostname="localhost"):
                return True
    except (OSError, ssl.SSLError):
        return False


# --------------------------------------------------------------------------
# The detached lab (acmelab lab up | status | down)
# --------------------------------------------------------------------------

def status(run_dir: Path | None = None) -> LabInfo | None:
    """The :class:`LabInfo` of the lab running in ``run_dir`` (default:
    :func:`default_run_dir`), or None if none is running there (also when
    only part of it is still alive).  Waits while another process starts or
    stops a lab there (:func:`run_dir_lock`).  ``LabInfo.pebble_env`` holds
    the ``PEBBLE_*`` knobs the running Pebble was started with."""
    run_dir = Path(run_dir).resolve() if run_dir is not None else default_run_dir()
    if not run_dir.is_dir():
        return None
    with run_dir_lock(run_dir):
        return _status_locked(run_dir)


def _status_locked(run_dir: Path) -> LabInfo | None:
    try:
        state = json.loads((run_dir / "lab.json").read_text())
    except (OSError, ValueError):
        return None
    records = read_records(run_dir)
    names = {record.name for record in records}
    if not records or not {"pebble", "challtestsrv"} <= names:
        return None
    if not all(record.is_ours() for record in records):
        return None
    _, key_secret = _access_key(run_dir)
    try:
        return LabInfo.from_dict(state, aliyun_access_key_secret=key_secret, eab_keys=_read_eab_keys(run_dir))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None


def ensure_running(run_dir: Path | None = None, **options: Any) -> LabInfo:
    """Return the detached lab running in ``run_dir``, starting one if
    needed (it survives this Python process; stop it with :func:`stop` or
    ``acmelab lab down``).

    A lab started here runs Pebble with the course's settings,
    :data:`COURSE_PEBBLE_ENV` (no random ``badNonce``, no authorization
    reuse, one alternate chain) and :data:`COURSE_RETRY_AFTER` (one second);
    ``pebble_env`` and ``retry_after`` are applied on top of them, key by key.  A lab that is already up is returned as it is, even
    if it runs other settings (see ``LabInfo.pebble_env``).

    Args:
        run_dir: default :func:`default_run_dir`.
        **options: :class:`Lab` keyword arguments (``ports``,
            ``pebble_env``, ``strict``, ``eab_keys``, ``aliyun``,
            ``dns_propagation_delay``, ``aliyun_latency``) used when a
            lab has to be started; ignored when one is already up.

    Raises:
        LabError, InputError: as :meth:`Lab.start`.
    """
    run_dir = Path(run_dir).resolve() if run_dir is not None else default_run_dir()
    options.pop("detached", None)
    options["pebble_defaults"] = COURSE_PEBBLE_ENV
    options["retry_after"] = {**COURSE_RETRY_AFTER, **(options.get("retry_after") or {})}
    # One starter or stopper at a time per run directory (two notebooks, a
    # notebook and `acmelab lab up`, a test session leaving).
    with run_dir_lock(run_dir):
        info = _status_locked(run_dir)
        if info is not None:
            return info
        _stop_locked(run_dir)  # leftovers of a half-dead lab
        lab = Lab(run_dir, detached=True, **options)
        info = lab.start()
        _DETACHED.append(lab)
        return info


_DETACHED: list[Lab] = []  # keeps Popen objects of detached labs referenced


def stop(run_dir: Path | None = None) -> bool:
    """Stop the lab in ``run_dir``: exactly the processes recorded in its pid
    files, each only if it is still the process that was started.  Waits
    while another process starts a lab there (:func:`run_dir_lock`).

    Returns:
        True if any process was stopped.

    Raises:
        LabError: a process survived SIGKILL (its pid file is kept).
    """
    run_dir = Path(run_dir).resolve() if run_dir is not None else default_run_dir()
    if not run_dir.is_dir():
        return False
    with run_dir_lock(run_dir):
        return _stop_locked(run_dir)


def _stop_locked(run_dir: Path) -> bool:
    stopped = False
    survivors = []
    order = {"aliyun": 0, "pebble": 1, "challtestsrv": 2}
    for record in sorted(read_records(run_dir), key=lambda r: order.get(r.name, -1)):
        stopped = record.is_ours() or stopped
        if not stop_record(record, run_dir):
            survivors.append(record)
    try:
        (run_dir / "lab.json").unlink()
    except FileNotFoundError:
        pass
    for lab in [lab for lab in _DETACHED if lab.run_dir == run_dir]:
        _DETACHED.remove(lab)
    if survivors:
        raise LabError(_survivors_message(survivors))
    return stopped
