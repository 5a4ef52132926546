"""Shared by the certificate commands: the common options, where they run
(the backend), the state directory, and running the engine with SIGINT handling."""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

from acmelab.backends import Backend, open_backend
from acmelab.cli.output import EXIT_OK, Progress, print_json, summary
from acmelab.errors import ConfigError
from acmelab.records import utc


class CommandParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` that answers a mistyped command
    (or sub-command) with the closest one (:func:`difflib.get_close_matches`):
    ``acmelab isue`` -> ``unknown command 'isue'; did you mean 'issue'?``,
    exit status 2.  Sub-parsers are made of the same class."""

    def _check_value(self, action: argparse.Action, value: object) -> None:
        if isinstance(action, argparse._SubParsersAction) and value not in action.choices:
            choices = list(action.choices)
            close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.6)
            # "unknown command", or "unknown account command" under `acmelab account`
            where = self.prog.split(" ", 1)[1] + " " if " " in self.prog else ""
            hint = f"did you mean {close[0]!r}?" if close else f"choose from {', '.join(choices)}"
            self.error(f"unknown {where}command {value!r}; {hint}")
        super()._check_value(action, value)

    def parse_known_args(self, args=None, namespace=None):
        """A command (a parser with no sub-commands) refuses an option it
        does not know itself, with its own usage and the closest option
        (``acmelab list --ofline`` -> ``unrecognized arguments: --ofline;
        did you mean --offline?``), instead of the top-level usage."""
        namespace, extras = super().parse_known_args(args, namespace)
        if self._subparsers is None and self.prog.count(" "):
            unknown = [e for e in extras if e.startswith("-") and e.split("=", 1)[0] not in ROOT_OPTIONS]
            if unknown:
                option = unknown[0].split("=", 1)[0]
                known = [o for action in self._actions for o in action.option_strings if o.startswith("--")]
                close = difflib.get_close_matches(option, known, n=1, cutoff=0.6)
                self.error(f"unrecognized arguments: {' '.join(extras)}" + (f"; did you mean {close[0]}?" if close else ""))
        return namespace, extras


#: options of ``acmelab`` itself, which may also follow a command (``acmelab list --json``)
ROOT_OPTIONS = frozenset({"--json", "-v", "--verbose", "-q", "--quiet", "-vv", "-h", "--help"})


#: the option groups a command may take (:func:`options`): each command gets
#: exactly the ones it reads, so ``acmelab <command> -h`` shows nothing it ignores
OPTION_GROUPS = ("acme", "state", "cloud", "verify", "output")


def _acme_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("ACME server")
    group.add_argument("--directory", default="lab", metavar="lab|staging|production|URL",
                       help="ACME server (default: lab, the local Pebble; production needs --i-mean-production)")
    group.add_argument("--i-mean-production", action="store_true",
                       help="confirm --directory production (real, rate-limited certificates)")
    group.add_argument("--ca-bundle", type=Path, metavar="PEM",
                       help="CA bundle trusted for the ACME server's TLS (private CAs); never turns verification off")
    group.add_argument("--lab-dir", type=Path, metavar="DIR",
                       help="lab run directory for --directory lab (default as 'acmelab lab up')")


def _state_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("state")
    group.add_argument("--state-dir", type=Path, metavar="DIR",
                       help="state directory (default $ACMELAB_STATE_DIR, else ~/.acmelab)")


def _cloud_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Alibaba Cloud (outside the lab)")
    group.add_argument("--region-id", default="cn-hangzhou", help="Alibaba Cloud region (default cn-hangzhou)")
    group.add_argument("--aliyun-profile", metavar="NAME",
                       help="Alibaba Cloud credentials: this profile of the aliyun CLI's ~/.aliyun/config.json "
                            "(modes AK, StsToken, RamRoleArn, EcsRamRole); wins over the environment's keys")


def _verify_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("TLS check of installed certificates")
    group.add_argument("--trust-root", action="append", type=Path, metavar="PEM",
                       help="root(s) the installed chains must validate to in the TLS check "
                            "(default: the lab's Pebble roots, else the system store)")


def _output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument("--json", action="store_true", help="machine-readable JSON on stdout (no progress display)")
    group.add_argument("-v", "--verbose", action="count", default=0, help="more log output on stderr (-vv: debug)")
    group.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")


_ADDERS = {"acme": _acme_options, "state": _state_options, "cloud": _cloud_options,
           "verify": _verify_options, "output": _output_options}


def options(*groups: str) -> list[argparse.ArgumentParser]:
    """Parent parsers with the named option groups (:data:`OPTION_GROUPS`):
    ``acme`` (``--directory``, ``--i-mean-production``, ``--ca-bundle``,
    ``--lab-dir``), ``state`` (``--state-dir``), ``cloud`` (``--region-id``,
    ``--aliyun-profile``), ``verify`` (``--trust-root``), ``output``
    (``--json``, ``-v``, ``-q``).  For ``add_parser(..., parents=options(...))``."""
    unknown = set(groups) - set(OPTION_GROUPS)
    if unknown:
        raise ValueError(f"unknown option groups {sorted(unknown)}")
    parent = argparse.ArgumentParser(add_help=False)
    for name in OPTION_GROUPS:        # one order in every command's help
        if name in groups:
            _ADDERS[name](parent)
    return [parent]


def common_options() -> argparse.ArgumentParser:
    """Every common option in one parent parser (what a command that works on
    installed certificates takes: issue, renew, apply, install)."""
    return options(*OPTION_GROUPS)[0]


def run_options(parser: argparse.ArgumentParser) -> None:
    """The options of the commands that run the engine (renew, apply)."""
    from acmelab.engine import DEFAULT_CONCURRENCY

    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N",
                        help=f"services worked on at once (default {DEFAULT_CONCURRENCY})")
    parser.add_argument("--threshold", metavar="FRACTION|DAYS",
                        help="renew when less than this is left: a fraction of the lifetime (0.33) "
                             "or days (30, 30d); default one third of the lifetime")
    parser.add_argument("--now", metavar="ISO8601", help="pretend it is this time for renewal decisions (testing)")
    parser.add_argument("--force", action="store_true", help="issue new certificates even if not due")
    parser.add_argument("--skip-handshake-check", action="store_true", help="skip the TLS handshake check after installing")


def state_of(args: argparse.Namespace):
    """The :class:`acmelab.state.StateDir` of ``--state-dir``."""
    from acmelab.state import StateDir

    return StateDir(args.state_dir)


def _trust_roots(args: argparse.Namespace) -> list[str] | None:
    if not getattr(args, "trust_root", None):
        return None
    try:
        return [Path(p).read_text("ascii") for p in args.trust_root]
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"--trust-root: {error}") from None


def backend_of(args: argparse.Namespace, *, start_lab: bool = True) -> Backend:
    """The backend of ``--directory`` / ``--ca-bundle`` / ``--lab-dir`` /
    ``--trust-root`` / ``--region-id`` (:func:`acmelab.backends.open_backend`).

    Raises ConfigError (production unconfirmed, http:// URL, missing CA
    bundle, unreadable trust root), LabError (the lab cannot be started)."""
    return open_backend(args.directory, lab_dir=args.lab_dir, ca_bundle=args.ca_bundle,
                        production_confirmed=args.i_mean_production, trust_roots=_trust_roots(args),
                        region_id=getattr(args, "region_id", "cn-hangzhou"), start_lab=start_lab)


def parse_now(text: str | None) -> dt.datetime | None:
    """``--now`` as an aware datetime (UTC when no zone is given), or None."""
    if not text:
        return None
    try:
        return utc(text)
    except ValueError:
        raise ConfigError(f"--now {text!r} is not an ISO 8601 time (e.g. 2030-01-01T00:00:00Z)") from None


def install_sigint(cancel: threading.Event):
    """First SIGINT (or SIGTERM, as a timer or CI stops a job): set
    ``cancel`` -- finish the running steps, remove DNS records, report.
    A second one: the default KeyboardInterrupt.  Returns the previous
    handlers (None outside the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: object) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print(f"acmelab: {signal.Signals(signum).name}: finishing the steps in flight and removing their "
              "DNS records (Ctrl-C again to force)", file=sys.stderr, flush=True)

    return {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}


def run_engine(args: argparse.Namespace, services: Sequence[Any], *, force: bool = False,
               verify_installs: bool = True, strict_preflight: bool = False):
    """Run the apply engine over ``services`` (at least one) with a progress
    display; SIGINT stops it cleanly.  Returns (results, backend, state).
    ``strict_preflight`` (``acmelab issue``): a missing target or zone is a
    ConfigError (exit 2) before any order is placed."""
    from acmelab import operations
    from acmelab.engine import apply_services
    from acmelab.renewal import RenewalThreshold

    threshold = RenewalThreshold.parse(args.threshold) if args.threshold else None
    now = parse_now(args.now)
    if args.concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, not {args.concurrency}")
    backend = backend_of(args)
    state = state_of(args)
    backend.check_services(services)
    env = operations.environment(backend, state, verify_installs=verify_installs)
    operations.check_profiles(env, services)
    if strict_preflight:   # acmelab issue: a missing target or zone is a usage error (exit 2), no order placed
        operations.preflight(env, services)    # once: the engine is told it was done (preflighted)
    cancel = threading.Event()
    previous = install_sigint(cancel)
    show = not args.json and not args.quiet and sys.stderr.isatty()
    try:
        with Progress(len(services), show) as progress:
            results = apply_services(services, env, state, threshold=threshold, now=now,
                                     concurrency=args.concurrency, force=force, cancel=cancel,
                                     on_result=progress.done, preflighted=strict_preflight)
    finally:
        for signum, handler in (previous or {}).items():
            signal.signal(signum, handler)
    return results, backend, state


def run_services(args: argparse.Namespace, services: Sequence[Any], *, force: bool = False,
                 verify_installs: bool = True) -> int:
    """Run the apply engine (:func:`run_engine`) and print the summary; the exit status."""
    if not services:
        if args.json:
            print_json({"counts": {}, "exit_code": EXIT_OK, "services": []})
        elif not args.quiet:
            print("No certificates to work on.")
        return EXIT_OK
    results, backend, state = run_engine(args, services, force=force, verify_installs=verify_installs)
    return summary(results, as_json=args.json, quiet=args.quiet,
                   extra={"directory_url": backend.directory_url, "state_dir": str(state.root)})
