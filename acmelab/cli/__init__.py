"""The ``acmelab`` command: issue, renew, revoke, install and export
certificates for many services, against the lab, Let's Encrypt staging or
production.

Structure: :func:`build_parser` makes the top-level parser; each command
group is one module of this package with an ``add_commands`` function, and
every leaf command is one ``cmd_<group>_<command>(args) -> int`` function
set as ``func``: it parses, calls :mod:`acmelab.operations` (or the engine,
:mod:`acmelab.engine`), and prints (:mod:`acmelab.cli.output`).

* :mod:`acmelab.cli.common` -- the common options, the backend, running the engine;
* :mod:`acmelab.cli.output` -- JSON, the summary table, progress, exit statuses;
* :mod:`acmelab.cli.account` -- ``account ...``;
* :mod:`acmelab.cli.certificates` -- ``issue``, ``renew``, ``revoke``, ``apply``, ``list``;
* :mod:`acmelab.cli.install` -- ``install <product>`` (one per deployer), ``dns persist``, ``export pfx``;
* :mod:`acmelab.cli.lab` -- ``lab up|status|down``.

Commands::

    acmelab account create|show|update|rollover|deactivate
    acmelab issue -d NAME [-d NAME ...] --dns {challtestsrv,alidns} [--key-type T] [--preferred-chain CN]
    acmelab renew [--threshold FRACTION|DAYS] [--now ISO8601] [--name N ...]
    acmelab revoke CERT [--reason R]
    acmelab install {cdn,apigateway,cas,slb} CERT ...
    acmelab export pfx CERT --profile {modern,legacy} --out FILE
    acmelab apply services.toml [--concurrency N]
    acmelab list
    acmelab lab up|status|down

Each command takes only the common options it uses
(:func:`acmelab.cli.common.options`): the ACME server (``--directory
lab|staging|production|URL``, default ``lab``; production needs
``--i-mean-production``; ``--ca-bundle PEM``, ``--lab-dir DIR``), the state
directory (``--state-dir DIR``, else ``$ACMELAB_STATE_DIR``, else
``~/.acmelab``), Alibaba Cloud (``--region-id``, ``--aliyun-profile``), the
TLS check (``--trust-root PEM``) and output (``--json``, ``-v``/``-q``; these
three may also come before the command: ``acmelab -vv issue ...``).  A
mistyped command is answered with the closest one ("did you mean").

Secrets never come from the command line: Alibaba Cloud credentials from
``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET`` (the
lab's are read from its run directory), EAB HMAC key from
``ACMELAB_EAB_HMAC_KEY``, PKCS#12 passwords from ``--password-file``,
``ACMELAB_PFX_PASSWORD`` or a prompt.  No output contains a secret.

Exit status (:data:`EXIT_CODES`): 0 everything done; 1 an error, or some
services failed; 2 usage or configuration error (bad arguments, invalid
services file, production without ``--i-mean-production``); 3 the lab is
not running (``lab status``), or every service that is not done was only
skipped because another run holds its lock; 130 interrupted (SIGINT or
SIGTERM) -- DNS records already published are removed first; 141 stdout was
closed early (``acmelab list | head -1``): like a filter killed by SIGPIPE
(128 + 13), but without a traceback -- stdout is pointed at /dev/null and the
command stops.  (A reader that takes everything before closing sees 0.)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from acmelab.cli import account, certificates, install, lab
from acmelab.cli.common import CommandParser
from acmelab.cli.lab import cmd_lab_down, cmd_lab_status, cmd_lab_up
from acmelab.cli.output import EXIT_BROKEN_PIPE, EXIT_CODES, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_LOCKED, \
    EXIT_NOT_RUNNING, EXIT_OK, EXIT_USAGE, summary
from acmelab.errors import AcmelabError, ConfigError, StateLocked

__all__ = [
    "EXIT_BROKEN_PIPE", "EXIT_CODES", "EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_LOCKED", "EXIT_NOT_RUNNING",
    "EXIT_OK", "EXIT_USAGE", "build_parser", "cmd_lab_down", "cmd_lab_status", "cmd_lab_up", "main",
]

logger = logging.getLogger("acmelab.cli")

#: the summary printer under its earlier name (tests call it)
_summary = summary


def build_parser() -> argparse.ArgumentParser:
    """The ``acmelab`` argument parser with every command group."""
    epilog = "exit status:\n" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())
    parser = CommandParser(
        prog="acmelab", description="Learn Let's Encrypt's ACME v2 (RFC 8555) by doing it.",
        epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    # the output options are accepted before the command too (acmelab -vv issue ...);
    # own dests, since a subcommand's defaults would overwrite them (merged in main)
    parser.add_argument("--json", dest="global_json", action="store_true", help="as the command's --json")
    parser.add_argument("-v", "--verbose", dest="global_verbose", action="count", default=0,
                        help="as the command's -v (-vv: debug)")
    parser.add_argument("-q", "--quiet", dest="global_quiet", action="store_true", help="as the command's -q")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    account.add_commands(subparsers)
    certificates.add_commands(subparsers)
    install.add_install_commands(subparsers)
    install.add_dns_commands(subparsers)
    install.add_export_commands(subparsers)
    certificates.add_listing_commands(subparsers)
    lab.add_commands(subparsers)
    return parser


def _setup_logging(args: argparse.Namespace) -> None:
    verbose = getattr(args, "verbose", 0)
    level = logging.ERROR if getattr(args, "quiet", False) else (
        logging.WARNING if not verbose else logging.INFO if verbose == 1 else logging.DEBUG)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_acmelab", False)]:
        root.removeHandler(old)           # main() called again (tests): today's stderr
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler._acmelab = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # the Alibaba SDK logs every refused call at ERROR itself; we report it once, clearly
    logging.getLogger("aliyunsdkcore").setLevel(logging.DEBUG if verbose >= 2 else logging.CRITICAL)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``acmelab`` command; returns the exit status (see
    :data:`EXIT_CODES`: 0 ok, 1 error / some services failed, 2 usage or
    configuration error, 3 lab not running or locked, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.verbose = getattr(args, "verbose", 0) + args.global_verbose
    args.quiet = getattr(args, "quiet", False) or args.global_quiet
    if args.global_json:
        if not hasattr(args, "json"):
            parser.error(f"--json does not apply to '{args.command}'")
        args.json = True
    _setup_logging(args)
    if getattr(args, "aliyun_profile", None):   # read by acmelab.aliyun.resolve_credentials
        os.environ["ACMELAB_ALIYUN_PROFILE"] = args.aliyun_profile
    try:
        code = args.func(args)
        sys.stdout.flush()   # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        # The reader of stdout went away (acmelab list | head -1): as any Unix
        # filter, stop quietly.  Point stdout at /dev/null so the interpreter's
        # final flush does not raise again; exit 141 (128 + SIGPIPE) as a shell
        # reports a process killed by SIGPIPE.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    except ConfigError as error:
        print(f"acmelab: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except StateLocked as error:
        print(f"acmelab: error: {error}", file=sys.stderr)
        return EXIT_LOCKED
    except AcmelabError as error:
        print(f"acmelab: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("acmelab: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
