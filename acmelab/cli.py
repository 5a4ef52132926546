"""The ``acmelab`` command.

Structure: :func:`build_parser` makes the top-level parser with one
subparser per command group; each group has an ``_add_<group>_commands``
function, and every leaf command is one ``cmd_<group>_<command>(args) -> int``
function set as ``func``.  To add a command, write its ``cmd_*`` function and
register it in an ``_add_*_commands`` function called from
:func:`build_parser`.

Commands so far::

    acmelab lab up [--free-ports | --acme-port N ...] [--strict] [--pebble-env K=V]... [--eab KID=KEY]... [--json]
    acmelab lab status [--json]     exit status 0 when up, 3 when not
    acmelab lab down

The run directory is ``--run-dir``, else ``$ACMELAB_LAB_DIR``, else ``.lab/``
in a source checkout, else ``~/.acmelab/lab``.  Output never contains a
secret (the lab's access key secret stays in its 0600 file).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from acmelab.errors import AcmelabError, InputError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_NOT_RUNNING = 3


# --------------------------------------------------------------------------
# acmelab lab ...
# --------------------------------------------------------------------------

_PORT_OPTIONS = ("acme", "management", "dns", "challtestsrv", "aliyun", "cdn_edge", "apigateway_edge")


def _key_value(text: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _lab_ports(args: argparse.Namespace):
    from acmelab.lab import LabPorts

    chosen = {name: getattr(args, f"{name}_port") for name in _PORT_OPTIONS
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
    print(f"  CA bundle (verify) {info.ca_bundle}")
    print(f"  Pebble management  {info.management_url}  (/roots/0, /intermediates/0)")
    print(f"  challtestsrv       {info.challtestsrv_url}")
    print(f"  DNS server         {info.dns_server[0]}:{info.dns_server[1]}")
    if info.aliyun_endpoint:
        print(f"  Alibaba endpoint   https://{info.aliyun_endpoint}  AccessKeyId {info.aliyun_access_key_id}"
              f"  (secret in {info.run_dir / 'aliyun-access-key.json'})")
    if info.eab_keys:
        print(f"  EAB key ids        {', '.join(sorted(info.eab_keys))}")
    print(f"  run directory      {info.run_dir}  (logs/ holds Pebble's and challtestsrv's logs)")


def cmd_lab_up(args: argparse.Namespace) -> int:
    """Start a detached lab (or report the one already up)."""
    from acmelab import lab

    pebble_env = dict(args.pebble_env or [])
    eab_keys = dict(args.eab or [])
    info = lab.ensure_running(args.run_dir, ports=_lab_ports(args), pebble_env=pebble_env,
                              strict=args.strict, eab_keys=eab_keys, aliyun=not args.no_aliyun)
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
    _print_info(info, as_json=args.json, heading="The lab is up:")
    return EXIT_OK


def cmd_lab_down(args: argparse.Namespace) -> int:
    """Stop exactly the processes the lab in the run directory started."""
    from acmelab import lab

    run_dir = args.run_dir or lab.default_run_dir()
    if lab.stop(run_dir):
        print(f"The lab in {run_dir} is down.")
    else:
        print(f"No lab was running in {run_dir}.")
    return EXIT_OK


def _add_lab_commands(subparsers: argparse._SubParsersAction) -> None:
    lab_parser = subparsers.add_parser("lab", help="the local ACME lab (Pebble, mock DNS, Alibaba endpoint)")
    commands = lab_parser.add_subparsers(dest="lab_command", required=True, metavar="{up,status,down}")

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--run-dir", type=Path, default=None,
                            help="lab run directory (default $ACMELAB_LAB_DIR, else .lab/ in the repo)")

    up = commands.add_parser("up", help="start the lab in the background (no-op if it is up)")
    common(up)
    up.add_argument("--json", action="store_true", help="print the lab's info as JSON (no secrets)")
    up.add_argument("--free-ports", action="store_true", help="use free ephemeral ports instead of the defaults")
    for name in _PORT_OPTIONS:
        up.add_argument(f"--{name.replace('_', '-')}-port", dest=f"{name}_port", type=int, metavar="PORT")
    up.add_argument("--pebble-env", action="append", type=_key_value, metavar="PEBBLE_KNOB=VALUE",
                    help="a Pebble environment knob, e.g. PEBBLE_WFE_NONCEREJECT=0 (repeatable)")
    up.add_argument("--strict", action="store_true", help="run pebble -strict")
    up.add_argument("--eab", action="append", type=_key_value, metavar="KID=B64URL_HMAC_KEY",
                    help="require External Account Binding with this key (repeatable)")
    up.add_argument("--no-aliyun", action="store_true", help="do not start the local Alibaba Cloud endpoint")
    up.set_defaults(func=cmd_lab_up)

    status = commands.add_parser("status", help="show the running lab (exit status 3 if none)")
    common(status)
    status.add_argument("--json", action="store_true", help="print the lab's info as JSON (no secrets)")
    status.set_defaults(func=cmd_lab_status)

    down = commands.add_parser("down", help="stop the processes the lab started")
    common(down)
    down.set_defaults(func=cmd_lab_down)


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    """The ``acmelab`` argument parser with every command group."""
    parser = argparse.ArgumentParser(
        prog="acmelab", description="Learn Let's Encrypt's ACME v2 (RFC 8555) by doing it.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_lab_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``acmelab`` command; returns the exit status (0 ok, 1 error,
    2 usage error, 3 lab not running)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except AcmelabError as error:
        print(f"acmelab: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("acmelab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
