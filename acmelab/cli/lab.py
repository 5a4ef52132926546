"""``acmelab lab up|status|down``: the local ACME lab (Pebble, mock DNS, Alibaba endpoint).

Options of ``lab up`` go into :func:`add_commands` (the parser) and, when
they are recorded in ``LabInfo``, into :func:`_ignored_lab_options` (the
warning when a running lab does not match them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from acmelab.cli.output import EXIT_NOT_RUNNING, EXIT_OK
from acmelab.errors import ConfigError, InputError


def _port_options() -> tuple[str, ...]:
    """The ``--<name>-port`` options: one per :class:`acmelab.lab.LabPorts` field
    (a product's edge listener, ``<product>_edge``, comes with it)."""
    from dataclasses import fields

    from acmelab.lab import LabPorts

    return tuple(f.name for f in fields(LabPorts))


def _key_value(text: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _lab_ports(args: argparse.Namespace):
    from acmelab.lab import LabPorts

    chosen = {name: getattr(args, f"{name}_port") for name in _port_options()
              if getattr(args, f"{name}_port") is not None}
    if args.free_ports:
        if chosen:
            raise InputError("--free-ports cannot be combined with explicit --*-port options")
        return LabPorts.free()
    return LabPorts(**chosen) if chosen else None


def _print_info(info, *, as_json: bool, heading: str) -> None:
    if as_json:
        print(info.to_json())
        return
    print(heading)
    print(f"  ACME directory     {info.directory_url}")
    print(f"  Pebble             {info.pebble_version}  profiles {', '.join(info.profiles) or '-'}  "
          f"Retry-After authz {info.retry_after.get('authz', 0)} s, order {info.retry_after.get('order', 0)} s")
    print(f"  CA bundle (verify) {info.ca_bundle}")
    print(f"  Pebble management  {info.management_url}  (/roots/0, /intermediates/0)")
    print(f"  challtestsrv       {info.challtestsrv_url}")
    print(f"  DNS server         {info.dns_server[0]}:{info.dns_server[1]}")
    if info.aliyun_endpoint:
        print(f"  Alibaba endpoint   https://{info.aliyun_endpoint}  AccessKeyId {info.aliyun_access_key_id}"
              f"  (secret in {info.run_dir / 'aliyun-access-key.json'})")
    if info.dns_propagation_delay or info.aliyun_latency:
        print(f"  latency            DNS propagation {info.dns_propagation_delay:g} s, "
              f"Alibaba API {info.aliyun_latency:g} s per answer")
    if info.eab_keys:
        print(f"  EAB key ids        {', '.join(sorted(info.eab_keys))}")
    print(f"  run directory      {info.run_dir}  (logs/ holds Pebble's and challtestsrv's logs)")


def _ignored_lab_options(args: argparse.Namespace, info, pebble_env: dict[str, str],
                         eab_keys: dict[str, str]) -> list[str]:
    """The ``lab up`` options the running lab ``info`` does not match
    (``--strict`` is not recorded, so it always counts)."""
    from urllib.parse import urlsplit

    running_ports = {
        "acme": urlsplit(info.directory_url).port, "management": urlsplit(info.management_url).port,
        "dns": info.dns_server[1], "challtestsrv": urlsplit(info.challtestsrv_url).port,
        "aliyun": urlsplit(f"https://{info.aliyun_endpoint}").port if info.aliyun_endpoint else None,
    }
    for name in _port_options():    # the products' edge listeners: LabInfo.<product>_edge_port
        running_ports.setdefault(name, getattr(info, f"{name}_port", None))
    ignored = []
    if args.free_ports:
        ignored.append("--free-ports")
    for name in _port_options():
        wanted = getattr(args, f"{name}_port")
        if wanted is not None and wanted != running_ports[name]:
            ignored.append(f"--{name.replace('_', '-')}-port {wanted}")
    ignored += [f"--pebble-env {key}={value}" for key, value in sorted(pebble_env.items())
                if info.pebble_env.get(key) != value]
    if args.strict:
        ignored.append("--strict")
    ignored += [f"--eab {kid}=..." for kid, key in sorted(eab_keys.items()) if info.eab_keys.get(kid) != key]
    if args.no_aliyun and info.aliyun_endpoint:
        ignored.append("--no-aliyun")
    ignored += [f"--retry-after {key}={value}" for key, value in (args.retry_after or [])
                if str(info.retry_after.get(key)) != value]
    ignored += [f"--profile {key}={value}" for key, value in (args.profile or [])
                if str(info.profiles.get(key)) != value]
    ignored += [f"--{name.replace('_', '-')} {getattr(args, name):g}"
                for name in ("dns_propagation_delay", "aliyun_latency")
                if getattr(args, name) and getattr(args, name) != getattr(info, name)]
    return ignored


def _whole_seconds(text: str, option: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{option}: {text!r} is not a whole number of seconds") from None
    if value < 0:
        raise ConfigError(f"{option}: {text!r} must not be negative")
    return value


def cmd_lab_up(args: argparse.Namespace) -> int:
    """Start a detached lab, or report the one already up.  Options the
    running lab does not match are ignored with a warning on stderr (stop it
    with ``acmelab lab down`` first); ``--pebble-env`` must name a knob of
    :data:`acmelab.lab.pebble.PEBBLE_KNOBS` either way."""
    from acmelab import lab
    from acmelab.lab.pebble import PEBBLE_KNOBS, check_eab_keys

    pebble_env = dict(args.pebble_env or [])
    unknown = sorted(set(pebble_env) - set(PEBBLE_KNOBS))
    if unknown:
        raise ConfigError(f"--pebble-env: unknown Pebble knob(s) {', '.join(unknown)}; "
                          f"known: {', '.join(PEBBLE_KNOBS)}")
    eab_keys = dict(args.eab or [])
    check_eab_keys(eab_keys)     # InputError, as starting a lab with them would
    retry_after = {key: _whole_seconds(value, "--retry-after") for key, value in (args.retry_after or [])}
    profiles = {key: (f"{key} ({value} s)", _whole_seconds(value, "--profile"))
                for key, value in (args.profile or [])} or None
    ports = _lab_ports(args)
    info = lab.status(args.run_dir)
    if info is not None:
        ignored = _ignored_lab_options(args, info, pebble_env, eab_keys)
        if ignored:
            print(f"acmelab: warning: a lab is already running in {info.run_dir}; it is kept and these "
                  f"options are ignored: {', '.join(ignored)} (run `acmelab lab down"
                  + (f" --lab-dir {args.run_dir}" if args.run_dir else "") + "` first to change them)",
                  file=sys.stderr)
    else:
        info = lab.ensure_running(args.run_dir, ports=ports, pebble_env=pebble_env,
                                  strict=args.strict, eab_keys=eab_keys, aliyun=not args.no_aliyun,
                                  retry_after=retry_after, profiles=profiles,
                                  dns_propagation_delay=args.dns_propagation_delay,
                                  aliyun_latency=args.aliyun_latency)
    _print_info(info, as_json=args.json, heading="The lab is up:")
    return EXIT_OK


def cmd_lab_status(args: argparse.Namespace) -> int:
    """Report the lab in the run directory; exit status 3 when it is not up."""
    from acmelab import lab

    info = lab.status(args.run_dir)
    if info is None:
        if args.json:
            print("null")
        else:
            print(f"No lab is running in {args.run_dir or lab.default_run_dir()}.")
        return EXIT_NOT_RUNNING
    if args.inventory:
        _print_inventory(info.inventory(), info, as_json=args.json)
        return EXIT_OK
    _print_info(info, as_json=args.json, heading="The lab is up:")
    return EXIT_OK


def _print_inventory(inventory: dict, info, *, as_json: bool) -> None:
    """``lab status --inventory``: the lab's zones, CDN domains, API groups,
    load balancers and CAS certificates, each with the serial it serves.  Serials in acmelab's one spelling (the JSON keeps the
    endpoint's answer as it is)."""
    from acmelab.certificates import serial_hex
    if as_json:
        print(json.dumps({**info.to_dict(), "inventory": inventory}, indent=2))
        return
    def serial(item: dict, spelled: str) -> str:
        return spelled.format(serial_hex(item["Serial"])) if item.get("Serial") else ""

    print(f"Zones ({len(inventory['Zones'])}): " + ", ".join(z["DomainName"] for z in inventory["Zones"]))
    print("CDN domains:")
    for domain in inventory["CdnDomains"]:
        print(f"  {domain['DomainName']:<32} HTTPS {domain['ServerCertificateStatus']}"
              + serial(domain, "  serial {}"))
    print("API Gateway groups:")
    for group in inventory["ApiGroups"]:
        print(f"  {group['GroupId']}  {group['GroupName']}: "
              + ", ".join(d["DomainName"] + serial(d, " (serial {})") for d in group["CustomDomains"]))
    print("Load balancers (SLB):")
    for balancer in inventory["LoadBalancers"]:
        print(f"  {balancer['LoadBalancerId']}  {balancer['LoadBalancerName']}  HTTPS listeners "
              + ", ".join(str(listener["ListenerPort"]) + serial(listener, " (serial {})")
                          for listener in balancer["Listeners"]))
    print("Certificate Management Service (CAS):" + ("" if inventory.get("CasCertificates") else " none"))
    for certificate in inventory.get("CasCertificates", []):
        print(f"  {certificate['CertId']}  {certificate['Name']}" + serial(certificate, "  serial {}"))
    print(f"  (edges: CDN {info.cdn_edge_port}, API Gateway {info.apigateway_edge_port}, SLB {info.slb_edge_port})")


def cmd_lab_down(args: argparse.Namespace) -> int:
    """Stop exactly the processes the lab in the run directory started."""
    from acmelab import lab

    run_dir = args.run_dir or lab.default_run_dir()
    if lab.stop(run_dir):
        print(f"The lab in {run_dir} is down.")
    else:
        print(f"No lab was running in {run_dir}.")
    return EXIT_OK


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    lab_parser = subparsers.add_parser(
        "lab", help="the local ACME lab (Pebble, mock DNS, Alibaba endpoint)",
        description="The local ACME lab on 127.0.0.1: the pinned Pebble build (the CA), pebble-challtestsrv "
                    "(mock DNS) and the offline Alibaba Cloud endpoint (DNS, CDN, API Gateway, CAS, SLB), "
                    "with its run directory (default $ACMELAB_LAB_DIR, else .lab/).")
    commands = lab_parser.add_subparsers(dest="lab_command", required=True, metavar="{up,status,down}")

    def common(parser: argparse.ArgumentParser) -> None:
        # --lab-dir, as every other command names it; --run-dir is its old spelling
        parser.add_argument("--lab-dir", "--run-dir", dest="run_dir", type=Path, default=None, metavar="DIR",
                            help="lab run directory (default $ACMELAB_LAB_DIR, else .lab/ in the repo)")

    up = commands.add_parser(
        "up", help="start the lab in the background (no-op if it is up)",
        description="Start the lab in the background and print where everything listens (directory URL, CA "
                    "bundle to trust, management URLs; no secrets).  If a lab is already up in the run directory "
                    "it is kept, and options it does not match are named in a warning.")
    common(up)
    up.add_argument("--json", action="store_true", help="print the lab's info as JSON (no secrets)")
    up.add_argument("--free-ports", action="store_true", help="use free ephemeral ports instead of the defaults")
    for name in _port_options():
        up.add_argument(f"--{name.replace('_', '-')}-port", dest=f"{name}_port", type=int, metavar="PORT")
    up.add_argument("--pebble-env", action="append", type=_key_value, metavar="PEBBLE_KNOB=VALUE",
                    help="a Pebble environment knob, e.g. PEBBLE_WFE_NONCEREJECT=0 (repeatable)")
    up.add_argument("--strict", action="store_true", help="run pebble -strict")
    up.add_argument("--eab", action="append", type=_key_value, metavar="KID=B64URL_HMAC_KEY",
                    help="require External Account Binding with this key (repeatable)")
    up.add_argument("--retry-after", action="append", type=_key_value, metavar="authz|order=SECONDS",
                    help="the Retry-After Pebble sends on processing authorizations / orders "
                         "(default 1 s each; 0 sends none)")
    up.add_argument("--profile", action="append", type=_key_value, metavar="NAME=SECONDS",
                    help="offer this profile and lifetime instead of Let's Encrypt's classic, tlsserver, "
                         "shortlived (repeatable)")
    up.add_argument("--no-aliyun", action="store_true", help="do not start the local Alibaba Cloud endpoint")
    up.add_argument("--dns-propagation-delay", type=float, default=0.0, metavar="S",
                    help="seconds before a record written through the Alibaba endpoint reaches the lab DNS "
                         "(default 0)")
    up.add_argument("--aliyun-latency", type=float, default=0.0, metavar="S",
                    help="seconds added to every Alibaba endpoint answer (default 0)")
    up.set_defaults(func=cmd_lab_up)

    status = commands.add_parser(
        "status", help="show the running lab (exit status 3 if none)",
        description="Show the lab running in the run directory (exit status 3 if none); --inventory lists what "
                    "its Alibaba Cloud account holds: zones, CDN domains, API groups, load balancers.")
    common(status)
    status.add_argument("--json", action="store_true", help="print the lab's info as JSON (no secrets)")
    status.add_argument("--inventory", action="store_true",
                        help="list the lab account's zones, CDN domains, API groups, load balancers and CAS "
                             "certificates, with the serial each serves")
    status.set_defaults(func=cmd_lab_status)

    down = commands.add_parser(
        "down", help="stop the processes the lab started",
        description="Stop exactly the processes 'acmelab lab up' started in the run directory (by their pid "
                    "files); nothing else is touched.")
    common(down)
    down.set_defaults(func=cmd_lab_down)


