"""The ``acmelab`` command: issue, renew, revoke, install and export
certificates for many services, against the lab, Let's Encrypt staging or
production.

Structure: :func:`build_parser` makes the top-level parser with one
subparser per command group; each group has an ``_add_<group>_commands``
function, and every leaf command is one ``cmd_<group>_<command>(args) -> int``
function set as ``func``.  The work itself lives in the library:
:mod:`acmelab.services` (services file, apply engine), :mod:`acmelab.state`
(state directory), :mod:`acmelab.client`, :mod:`acmelab.issue`,
:mod:`acmelab.deploy`, :mod:`acmelab.pkcs12`.

Commands::

    acmelab account create|show|update|rollover|deactivate
    acmelab issue -d NAME [-d NAME ...] --dns {challtestsrv,alidns} [--key-type T] [--preferred-chain CN]
    acmelab renew [--threshold FRACTION|DAYS] [--now ISO8601] [--name N ...]
    acmelab revoke CERT [--reason R]
    acmelab install {cdn,apigateway,cas} CERT ...
    acmelab export pfx CERT --profile {modern,legacy} --out FILE
    acmelab apply services.toml [--concurrency N]
    acmelab list
    acmelab lab up|status|down

Options of every command but ``lab`` (after the command name):
``--directory lab|staging|production|URL`` (default ``lab``; production
needs ``--i-mean-production``), ``--ca-bundle PEM`` (TLS trust for a private
ACME server), ``--state-dir DIR`` (else ``$ACMELAB_STATE_DIR``, else
``~/.acmelab``), ``--lab-dir DIR``, ``--json``, ``-v``/``-q``.  ``--json``,
``-v`` and ``-q`` may also come before the command (``acmelab -vv issue ...``).

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
import dataclasses
import datetime as dt
import getpass
import json
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from acmelab.challenges import CHALLENGE_TYPES
from acmelab.errors import AcmelabError, AcmeProblem, ConfigError, InputError, StateLocked, WouldOverwriteError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
EXIT_LOCKED = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

#: exit status -> meaning (documented in ``acmelab --help``)
EXIT_CODES = {
    EXIT_OK: "success (apply/renew: every service ok)",
    EXIT_ERROR: "an error; apply/renew: at least one service failed",
    EXIT_USAGE: "usage or configuration error (arguments, services file, production unconfirmed)",
    EXIT_NOT_RUNNING: "lab not running (lab status), or another acmelab run holds a lock",
    EXIT_INTERRUPTED: "interrupted (SIGINT/SIGTERM); published DNS records were removed",
    EXIT_BROKEN_PIPE: "stdout was closed early (e.g. piped into head); no traceback",
}

#: --directory shortcuts (RFC 8555 §7.1.1 directory URLs of Let's Encrypt)
DIRECTORIES = {
    "staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
    "production": "https://acme-v02.api.letsencrypt.org/directory",
}
EAB_HMAC_KEY_ENV = "ACMELAB_EAB_HMAC_KEY"
#: seconds a run waits for the account lock another run holds (one request)
ACCOUNT_LOCK_WAIT = 30.0
PFX_PASSWORD_ENV = "ACMELAB_PFX_PASSWORD"

logger = logging.getLogger("acmelab.cli")


# --------------------------------------------------------------------------
# Shared by the certificate commands: where (directory, lab), state, account
# --------------------------------------------------------------------------

@dataclass
class Context:
    """What a certificate command works with.

    Attributes:
        directory_url: the ACME directory URL.
        acme_verify: ``True`` or a CA bundle path (never False).
        lab: the lab's LabInfo for ``--directory lab``, else None.
        state: the :class:`acmelab.state.StateDir`.
    """

    directory_url: str
    acme_verify: bool | str
    lab: Any
    state: Any


def _context(args: argparse.Namespace) -> Context:
    """Resolve ``--directory`` / ``--ca-bundle`` / ``--lab-dir`` / ``--state-dir``.

    Raises ConfigError (production unconfirmed, http:// URL, missing CA
    bundle), LabError (the lab cannot be started)."""
    from acmelab.state import StateDir

    choice = args.directory
    lab_info = None
    if choice == "lab":
        from acmelab import lab

        lab_info = lab.status(args.lab_dir)
        if lab_info is None:
            logger.warning("no lab is running in %s; starting one (stop it with: acmelab lab down)",
                           args.lab_dir or lab.default_run_dir())
            lab_info = lab.ensure_running(args.lab_dir)
        directory_url, verify = lab_info.directory_url, str(args.ca_bundle or lab_info.ca_bundle)
    else:
        if choice == "production" and not args.i_mean_production:
            raise ConfigError("--directory production issues real, rate-limited certificates: "
                              "add --i-mean-production to confirm (try --directory staging first)")
        directory_url = DIRECTORIES.get(choice, choice)
        if not directory_url.startswith("https://"):
            raise ConfigError(f"--directory must be lab, staging, production or an https:// URL, not {choice!r}")
        verify = str(args.ca_bundle) if args.ca_bundle else True
    if args.ca_bundle and not Path(args.ca_bundle).is_file():
        raise ConfigError(f"--ca-bundle {args.ca_bundle} is not a file")
    return Context(directory_url, verify, lab_info, StateDir(args.state_dir))


def _client(ctx: Context, key, account_url: str | None = None):
    from acmelab.client import AcmeClient

    return AcmeClient(ctx.directory_url, key, verify=ctx.acme_verify, account_url=account_url)


def _eab(ctx: Context, kid: str | None) -> dict[str, str]:
    """External Account Binding arguments (RFC 8555 §7.3.4): the lab's own
    key when it requires EAB, else ``--eab-kid`` with the HMAC key from
    ``$ACMELAB_EAB_HMAC_KEY``."""
    if kid is None and ctx.lab is not None and ctx.lab.eab_keys:
        kid = sorted(ctx.lab.eab_keys)[0]
    if kid is None:
        return {}
    if ctx.lab is not None and kid in ctx.lab.eab_keys:
        return {"eab_kid": kid, "eab_hmac_key": ctx.lab.eab_keys[kid]}
    hmac_key = os.environ.get(EAB_HMAC_KEY_ENV)
    if not hmac_key:
        raise ConfigError(f"--eab-kid {kid} needs the HMAC key in ${EAB_HMAC_KEY_ENV}")
    return {"eab_kid": kid, "eab_hmac_key": hmac_key}


def _account(ctx: Context, *, create: bool = True, key_type: str = "ec256", contact: Sequence[str] = (),
             eab_kid: str | None = None, register: bool = False):
    """The account key and URL for ``ctx.directory_url``.

    A key with no account URL stored yet (or ``register``, ``acmelab
    account create``) is registered with newAccount (RFC 8555 §7.3: the
    key's existing account, or a new one).  A key whose account URL is
    stored is looked up with ``onlyReturnExisting`` (§7.3.1).  If the CA
    answers accountDoesNotExist, it forgot the account: the lab
    (``--directory lab``) does so on every restart, so the stored key is
    registered again (logged at info level); any other CA raises an error
    telling the user to run ``acmelab account create``.  With ``create``
    a new key (0600) is made when there is none.

    Returns (AccountRecord, key).  Raises InputError (no account and not
    ``create``; deactivated; a CA that forgot the account)."""
    from acmelab import keys
    from acmelab.errors import AccountDoesNotExist, KeyExistsError
    from acmelab.state import AccountRecord

    state = ctx.state
    # held for one request; an overlapping run waits for it instead of stopping
    with state.lock("account-" + state.server_id(ctx.directory_url), wait=ACCOUNT_LOCK_WAIT):
        record = state.account(ctx.directory_url)
        if record is None:
            if not create:
                raise InputError(f"no account for {ctx.directory_url} in {state.root}: run acmelab account create")
            try:
                record = state.create_account_key(ctx.directory_url, keys.generate_key(key_type))
            except KeyExistsError:
                record = state.account(ctx.directory_url)
        if record.status == "deactivated":
            raise InputError(f"the account {record.account_url} is deactivated; move "
                             f"{record.key_path.parent} away and run acmelab account create")
        key = record.load_key()
        with _client(ctx, key) as client:
            if register or record.account_url is None:
                # newAccount: the key's account, created if the server does not know it
                account = client.new_account(contact or record.contact, **_eab(ctx, eab_kid))
            else:
                try:   # §7.3.1 onlyReturnExisting: AccountDoesNotExist instead of a new account
                    account = client.find_account()
                except AccountDoesNotExist:
                    if ctx.lab is None:
                        raise InputError(
                            f"the CA at {ctx.directory_url} does not know the account {record.account_url} "
                            f"(key {record.key_path}): run 'acmelab account create' to register this key "
                            "again") from None
                    logger.info("the lab does not know the account %s (a fresh lab forgot it); "
                                "registering the stored key %s again", record.account_url, record.key_path)
                    account = client.new_account(contact or record.contact, **_eab(ctx, eab_kid))
        record = AccountRecord(ctx.directory_url, record.key_path, account.url,
                               account.json.get("status", "valid"),
                               tuple(account.json.get("contact") or contact or record.contact))
        state.save_account(record)
        return record, key


def _environment(args: argparse.Namespace, ctx: Context, *, verify_installs: bool = True):
    from acmelab.services import Environment

    record, key = _account(ctx)
    roots = None
    if args.trust_root:
        try:
            roots = [Path(p).read_text("ascii") for p in args.trust_root]
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"--trust-root: {error}") from None
    elif ctx.lab is not None:
        roots = ctx.lab.roots()
    return Environment(ctx.directory_url, ctx.acme_verify, key, record.account_url, lab=ctx.lab,
                       trust_roots=roots, verify_installs=verify_installs, region_id=args.region_id)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _managed(ctx: Context, name: str):
    managed = ctx.state.certificate(name)
    if managed is None:
        raise InputError(f"no certificate named {name!r} in {ctx.state.root} "
                         f"(have: {', '.join(ctx.state.certificate_names()) or 'none'})")
    return managed


# --------------------------------------------------------------------------
# Progress display and summary table
# --------------------------------------------------------------------------

class _Progress:
    """A rich progress bar on stderr (only on a terminal, not with --json/-q)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.progress = None
        self.counts = {"ok": 0, "failed": 0}
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[counts]}"), TimeElapsedColumn(),
                                     console=Console(stderr=True), transient=False)
            self.task = self.progress.add_task("services", total=total, counts="")

    def __enter__(self) -> "_Progress":
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def done(self, result) -> None:
        kind = "ok" if result.ok else "skipped" if result.status == "skipped" else "failed"
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.progress is not None:
            counts = "  ".join(f"{k} {n}" for k, n in self.counts.items() if n or k != "skipped")
            self.progress.update(self.task, advance=1, counts=counts)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _exit_status(counts: dict[str, int]) -> int:
    """130 if anything was interrupted; 3 if every service that is not ok
    was only skipped because another run holds its lock; 1 if any failed
    (or was skipped next to failures); else 0."""
    if counts.get("interrupted", 0):
        return EXIT_INTERRUPTED
    if counts.get("failed", 0):
        return EXIT_ERROR
    if counts.get("skipped", 0):
        return EXIT_LOCKED
    return EXIT_OK


def _summary(results, *, as_json: bool, quiet: bool = False, extra: dict[str, Any] | None = None) -> int:
    """Print the summary (rich table, or JSON; with ``quiet`` only the
    services that are not ok, on stderr); return the exit status
    (:func:`_exit_status`)."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    code = _exit_status(counts)
    if as_json:
        _print_json({**(extra or {}), "counts": counts, "exit_code": code,
                     "services": [r.to_json() for r in results]})
        return code
    if quiet:
        for r in results:
            if not r.ok:
                print(f"acmelab: {r.name} {r.status}: {r.error or r.reason}", file=sys.stderr)
        return code
    from rich.table import Table

    table = Table(title=f"{_plural(len(results), 'service')}: "
                        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    table.add_column("service", overflow="fold", ratio=2)
    for column in ("status", "serial", "expires", "installed", "tls ok"):
        table.add_column(column, no_wrap=column != "serial", overflow="fold")
    table.add_column("note", overflow="fold", ratio=3)
    style = {"issued": "green", "renewed": "green", "installed": "green", "unchanged": "", "failed": "red",
             "interrupted": "yellow", "skipped": "yellow"}
    for r in results:
        note = "see below" if r.error else r.reason
        table.add_row(r.name, f"[{style[r.status]}]{r.status}[/]" if style[r.status] else r.status,
                      r.serial_hex or "", f"{r.not_after:%Y-%m-%d}" if r.not_after else "",
                      str(len(r.installed)), str(len(r.verified)), note)
    console = _console()
    console.print(table)
    for r in results:
        if r.error:   # full messages below the table, readable in a narrow terminal
            console.print(f"[bold]{r.name}[/] {r.status}: {r.error}", markup=True, highlight=False)
    return code


def _console():
    """A rich console on stdout; 160 columns when stdout is not a terminal.
    A closed stdout raises BrokenPipeError (rich would exit 1 itself; main
    handles it as every other command does)."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError(32, "stdout was closed")

    return _Console() if sys.stdout.isatty() else _Console(width=160)


def _run_services(args: argparse.Namespace, services, *, force: bool = False, verify_installs: bool = True) -> int:
    """Run the apply engine with a progress display; SIGINT stops it cleanly."""
    from acmelab.services import RenewalThreshold, apply_services

    if not services:
        if args.json:
            _print_json({"counts": {}, "exit_code": EXIT_OK, "services": []})
        elif not args.quiet:
            print("No certificates to work on.")
        return EXIT_OK
    threshold = RenewalThreshold.parse(args.threshold) if args.threshold else None
    now = _parse_now(args.now)
    if args.concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, not {args.concurrency}")
    ctx = _context(args)
    lab_only = sorted(s.name for s in services if s.dns == "challtestsrv")
    if ctx.lab is None and lab_only:
        raise ConfigError(f"dns = \"challtestsrv\" works only with --directory lab "
                          f"(services: {', '.join(lab_only[:5])}{' ...' if len(lab_only) > 5 else ''})")
    if ctx.lab is None and any(s.dns == "alidns" or s.install for s in services):
        from acmelab.aliyun import Credentials

        try:   # checked before any request, so a missing key fails once, not per service
            Credentials.resolve()
        except InputError as error:
            raise ConfigError(f"Alibaba Cloud credentials: {error}") from None
    env = _environment(args, ctx, verify_installs=verify_installs)
    _check_profiles(env, services)
    cancel = threading.Event()
    previous = _install_sigint(cancel)
    show = not args.json and not args.quiet and sys.stderr.isatty()
    try:
        with _Progress(len(services), show) as progress:
            results = apply_services(services, env, ctx.state, threshold=threshold, now=now,
                                     concurrency=args.concurrency, force=force, cancel=cancel,
                                     on_result=progress.done)
    finally:
        for signum, handler in (previous or {}).items():
            signal.signal(signum, handler)
    return _summary(results, as_json=args.json, quiet=args.quiet,
                    extra={"directory_url": ctx.directory_url, "state_dir": str(ctx.state.root)})


def _check_profiles(env, services) -> None:
    """Every profile the services name is in the directory's
    ``meta.profiles`` (draft-ietf-acme-profiles), checked before any order.

    Raises ConfigError naming the services and what the CA offers."""
    from acmelab.errors import UnknownProfile

    client = env.acme_client()
    problems = []
    for profile in sorted({s.profile for s in services if s.profile is not None}):
        try:
            client.check_profile(profile)
        except UnknownProfile as error:
            users = sorted(s.name for s in services if s.profile == profile)
            problems.append(f"{error} (service{'s' if len(users) > 1 else ''} {', '.join(users[:5])})")
    if problems:
        raise ConfigError("; ".join(problems))


def _install_sigint(cancel: threading.Event):
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


def _parse_now(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--now {text!r} is not an ISO 8601 time (e.g. 2030-01-01T00:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


# --------------------------------------------------------------------------
# acmelab account ...
# --------------------------------------------------------------------------

def _account_json(record, account=None) -> dict[str, Any]:
    from acmelab import keys

    data = {"directory_url": record.directory_url, "account_url": record.account_url,
            "status": record.status, "contact": list(record.contact), "key_file": str(record.key_path),
            "key_thumbprint": keys.thumbprint(record.load_key())}
    if account is not None:
        data.update(status=account.json.get("status", record.status),
                    contact=list(account.json.get("contact") or []))
    return data


def _print_account(data: dict[str, Any], as_json: bool, heading: str) -> None:
    if as_json:
        _print_json(data)
        return
    print(heading)
    for key in ("directory_url", "account_url", "status", "contact", "key_file", "key_thumbprint"):
        value = ", ".join(data[key]) if isinstance(data[key], list) else data[key]
        print(f"  {key.replace('_', ' '):16} {value or '-'}")


def cmd_account_create(args: argparse.Namespace) -> int:
    """Create the ACME account (RFC 8555 §7.3), or show the existing one."""
    ctx = _context(args)
    record, _key = _account(ctx, key_type=args.key_type, contact=args.contact or (), eab_kid=args.eab_kid,
                            register=True)
    _print_account(_account_json(record), args.json, "ACME account:")
    return EXIT_OK


def cmd_account_show(args: argparse.Namespace) -> int:
    """Fetch the account object (RFC 8555 §7.3.3, POST-as-GET)."""
    ctx = _context(args)
    record, key = _account(ctx, create=False)
    with _client(ctx, key, record.account_url) as client:
        account = client.fetch_account()
    _print_account(_account_json(record, account), args.json, "ACME account:")
    return EXIT_OK


def cmd_account_update(args: argparse.Namespace) -> int:
    """Replace the account's contacts (RFC 8555 §7.3.2)."""
    from acmelab.state import AccountRecord

    ctx = _context(args)
    contact = [] if args.no_contact else list(args.contact or [])
    if not contact and not args.no_contact:
        raise ConfigError("give --contact URL (repeatable) or --no-contact")
    record, key = _account(ctx, create=False)
    with _client(ctx, key, record.account_url) as client:
        account = client.update_account(contact)
    record = ctx.state.save_account(AccountRecord(record.directory_url, record.key_path, record.account_url,
                                                  account.json.get("status", "valid"), tuple(contact)))
    _print_account(_account_json(record, account), args.json, "ACME account updated:")
    return EXIT_OK


def cmd_account_rollover(args: argparse.Namespace) -> int:
    """Replace the account key (RFC 8555 §7.3.5, keyChange).  The new key is
    saved (0600) before the request; the old one is kept as
    ``account.key.<time>.old``."""
    from acmelab import keys

    ctx = _context(args)
    record, key = _account(ctx, create=False)
    pending = record.key_path.with_name("account.key.next")
    if pending.exists():
        raise InputError(f"{pending} exists: an earlier rollover was interrupted.  If 'acmelab account show' "
                         f"fails with accountDoesNotExist, the server has the new key: move {pending.name} to "
                         f"account.key; otherwise remove {pending.name}")
    new_key = keys.generate_key(args.key_type)
    keys.save_private_key(new_key, pending)
    with ctx.state.lock("account-" + ctx.state.server_id(ctx.directory_url)):
        with _client(ctx, key, record.account_url) as client:
            try:
                client.change_key(new_key)
            except (AcmeProblem, InputError):
                # the CA refused (or nothing was sent): the old key stays the account's
                pending.unlink(missing_ok=True)
                raise
            except BaseException as error:
                # NetworkError after the POST went out, KeyboardInterrupt, ...:
                # the CA may already have switched keys.  Ask it.
                if not _resolve_rollover(ctx, record, new_key, pending, error):
                    raise
        ctx.state.replace_account_key(record, pending)
        ctx.state.save_account(record)
    _print_account(_account_json(record), args.json, "ACME account key rolled over:")
    return EXIT_OK


def _resolve_rollover(ctx: Context, record, new_key, pending: Path, error: BaseException) -> bool:
    """After a keyChange whose answer never came (RFC 8555 §7.3.5), find out
    which key the CA knows with ``onlyReturnExisting`` (§7.3.1) signed by the
    new key.  No key is ever deleted unless the CA said it does not know it.

    Returns True if the CA has the new key (it is promoted to account.key by
    the caller; the rollover succeeded), False if the CA still has the old
    key (the pending new key is removed) or if that could not be found out
    (both keys kept; guidance printed).  The caller re-raises on False."""
    from acmelab.errors import AccountDoesNotExist

    print(f"acmelab: the key rollover's answer was lost ({type(error).__name__}: {error}); "
          f"asking the CA which key it knows", file=sys.stderr)
    try:
        with _client(ctx, new_key) as probe:
            account = probe.find_account()
    except AccountDoesNotExist:
        pending.unlink(missing_ok=True)
        print("acmelab: the CA does not know the new key: the account keeps its old key "
              "(nothing changed); run 'acmelab account rollover' again", file=sys.stderr)
        return False
    except BaseException as lookup_error:  # noqa: BLE001 - keep both keys, whatever happened
        print(f"acmelab: could not ask the CA ({type(lookup_error).__name__}: {lookup_error}).  Both keys are "
              f"kept: {record.key_path} (old) and {pending} (new).  When the CA is reachable, run "
              f"'acmelab account show': if it fails with accountDoesNotExist the CA has the new key -- move "
              f"{pending.name} to {record.key_path.name}; otherwise remove {pending.name}", file=sys.stderr)
        return False
    if account.url != record.account_url:
        print(f"acmelab: the new key belongs to another account ({account.url}), not {record.account_url}; "
              f"both keys are kept ({record.key_path}, {pending})", file=sys.stderr)
        return False
    print("acmelab: the CA has the new key: the rollover went through; the new key is now account.key",
          file=sys.stderr)
    return True


def cmd_account_deactivate(args: argparse.Namespace) -> int:
    """Deactivate the account for good (RFC 8555 §7.3.6)."""
    from acmelab.state import AccountRecord

    if not args.yes:
        raise ConfigError("deactivation cannot be undone: add --yes to confirm")
    ctx = _context(args)
    record, key = _account(ctx, create=False)
    with _client(ctx, key, record.account_url) as client:
        account = client.deactivate_account()
    record = ctx.state.save_account(AccountRecord(record.directory_url, record.key_path, record.account_url,
                                                  account.json.get("status", "deactivated"), record.contact))
    _print_account(_account_json(record, account), args.json, "ACME account deactivated:")
    return EXIT_OK


# --------------------------------------------------------------------------
# acmelab issue / renew / apply / list
# --------------------------------------------------------------------------

def cmd_issue(args: argparse.Namespace) -> int:
    """Issue a certificate for the names (dns-01) and store it."""
    from acmelab import csr
    from acmelab.services import Service
    from acmelab.state import certificate_name_for, check_certificate_name

    try:
        names = csr.normalize_names(args.domain)
        name = check_certificate_name(args.name) if args.name else certificate_name_for(names[0])
    except InputError as error:
        raise ConfigError(str(error)) from None
    previous = None
    try:
        previous = _context_state(args).certificate(name, check_files=False)
    except AcmelabError:
        pass
    targets = Service.from_managed(previous).install if previous else ()
    service = Service(name, tuple(names), args.dns, args.key_type, targets, args.preferred_chain, "issue",
                      args.profile, args.challenge)
    return _run_services(args, [service], force=True, verify_installs=not args.skip_handshake_check)


def _context_state(args: argparse.Namespace):
    from acmelab.state import StateDir

    return StateDir(args.state_dir)


def cmd_renew(args: argparse.Namespace) -> int:
    """Renew every managed certificate that is due and install it where the
    old one was installed.  Safe to run daily."""
    from acmelab.services import services_from_state

    services = services_from_state(_context_state(args), args.name)
    return _run_services(args, services, force=args.force, verify_installs=not args.skip_handshake_check)


def cmd_apply(args: argparse.Namespace) -> int:
    """Bring every service of a services file to a valid installed certificate."""
    from acmelab.services import load_services

    services = load_services(args.services_file)
    return _run_services(args, services, force=args.force, verify_installs=not args.skip_handshake_check)


def _renewal_json(decision) -> dict[str, Any]:
    window = decision.window
    return {
        "renewal_window": {"start": window[0].isoformat(), "end": window[1].isoformat()} if window else None,
        "ari_next_check": decision.next_check.isoformat() if decision.next_check else None,
        "renew_at": decision.renew_at.isoformat() if decision.renew_at else None,
        "due": decision.due, "reason": decision.reason,
    }


def _ari_client(args: argparse.Namespace):
    """A client for the unauthenticated renewalInfo GETs of ``list``, or None
    when the CA cannot be reached without side effects (``--directory lab``
    with no lab running: ``list`` never starts one)."""
    from acmelab import keys

    if args.directory == "lab":
        from acmelab import lab

        if lab.status(args.lab_dir) is None:
            return None
    try:
        ctx = _context(args)
    except AcmelabError as error:
        logger.info("not asking the CA for renewal windows: %s", error)
        return None
    # renewalInfo needs no account: this key signs nothing
    return _client(ctx, keys.generate_key("ec256"))


def cmd_list(args: argparse.Namespace) -> int:
    """List the managed certificates, each with its profile, renewal window
    and why it is or is not due.  The CA's renewalInfo (ARI, RFC 9773) is
    asked only where the stored answer's Retry-After has passed, and only
    when ``--directory`` names a CA (``--offline``: never)."""
    from acmelab.renewal import AriState, RenewalPolicy
    from acmelab.services import Service, refresh_renewal_info

    state = _context_state(args)
    client = None if args.offline or not state.certificate_names() else _ari_client(args)
    policy = RenewalPolicy()
    rows = []
    for name in state.certificate_names():
        try:
            managed = state.certificate(name)
            service = Service.from_managed(managed)
            if client is not None:
                managed = refresh_renewal_info(managed, client, state)
            decision = policy.decide(managed, names=service.domains, key_type=service.key_type,
                                     profile=service.profile, ari=AriState.from_dict(managed.ari))
            rows.append({**managed.to_json(), **_renewal_json(decision)})
        except AcmelabError as error:
            rows.append({"name": name, "error": str(error)})
    if args.json:
        _print_json(rows)
        return EXIT_OK
    from rich.table import Table

    table = Table(title=f"certificates in {state.root}")
    for column in ("name", "names", "status", "serial", "profile", "not after", "installed on", "renewal"):
        table.add_column(column, overflow="fold")
    now = dt.datetime.now(dt.timezone.utc)
    for row in rows:
        if "error" in row:
            status = "[red]unreadable[/]"
        elif row.get("revoked"):
            status = "[red]revoked[/]"
        elif dt.datetime.fromisoformat(row["not_after"]) <= now:
            status = "[red]expired[/]"
        else:
            status = "valid"
        table.add_row(row["name"], ", ".join(row.get("names", [])), status, row.get("serial_hex", row.get("error", "")),
                      row.get("profile") or "", (row.get("not_after") or "")[:10], ", ".join(row.get("installed", {})),
                      row.get("reason", ""))
    _console().print(table)
    return EXIT_OK


# --------------------------------------------------------------------------
# acmelab revoke / install / export
# --------------------------------------------------------------------------

def cmd_dns_persist_list(args: argparse.Namespace) -> int:
    """List the standing dns-persist-01 records the certificates rely on."""
    from acmelab.services import standing_records

    records = standing_records(_context_state(args))
    if args.json:
        _print_json(records)
        return EXIT_OK
    if not records:
        print("No standing dns-persist-01 records.")
    for record in records:
        print(f"{record['certificate']}: TXT {record['name']} = \"{record['value']}\" ({record['provider']})")
    return EXIT_OK


def cmd_dns_persist_remove(args: argparse.Namespace) -> int:
    """Remove the standing dns-persist-01 records of one certificate."""
    from acmelab.services import remove_standing_records

    ctx = _context(args)
    removed = remove_standing_records(ctx.state, _environment(args, ctx, verify_installs=False), args.certificate)
    if args.json:
        _print_json({"certificate": args.certificate, "removed": removed})
    elif not args.quiet:
        print(f"Removed {_plural(len(removed), 'standing record')}: {', '.join(removed) or '-'}")
    return EXIT_OK


def _looks_like_path(text: str) -> bool:
    """A CERT argument meant as a file: it has a directory part or a
    certificate file suffix (certificate names have neither a '/' nor
    these endings)."""
    return os.sep in text or "/" in text or text.lower().endswith((".pem", ".crt", ".cer"))


def cmd_revoke(args: argparse.Namespace) -> int:
    """Revoke a managed certificate (by name) or a PEM file (RFC 8555 §7.6).

    A PEM file holding the live version of a managed certificate (same
    serial) is recorded as revoked too, so ``list``, ``apply`` and ``renew``
    treat it as revoked and replace it; any other PEM file is only revoked
    at the CA (said on stderr)."""
    from cryptography import x509

    from acmelab import keys
    from acmelab.client import ReasonCode
    from acmelab.state import serial_hex

    reason = _reason(args.reason)
    path = Path(args.certificate)
    if not path.is_file() and (path.exists() or _looks_like_path(args.certificate)):
        raise InputError(f"{args.certificate}: no such file" if not path.exists()
                         else f"{args.certificate} is not a regular file")
    ctx = _context(args)
    managed = None
    from_file = path.is_file()
    if from_file:
        try:
            certificate = x509.load_pem_x509_certificates(path.read_bytes())[0]
        except OSError as error:
            raise InputError(f"cannot read {args.certificate}: {error.strerror}") from None
        except ValueError as error:
            raise InputError(f"{args.certificate} is not a PEM certificate: {error}") from None
        managed = ctx.state.find_by_serial(certificate.serial_number)
    else:
        managed = _managed(ctx, args.certificate)
        certificate = managed.leaf()
    certificate_key = None
    if args.key is not None:
        certificate_key = keys.load_private_key(args.key)
    elif args.sign_with_certificate_key:
        if managed is None:
            raise ConfigError("--sign-with-certificate-key needs a managed certificate; for a PEM file use --key")
        certificate_key = managed.load_key()
    if certificate_key is not None:
        # §7.6: signed by the certificate's own key (jwk header); no account needed
        with _client(ctx, certificate_key) as client:
            client.revoke_certificate(certificate, reason=reason, certificate_key=certificate_key)
    else:
        record, key = _account(ctx, create=False)
        with _client(ctx, key, record.account_url) as client:
            client.revoke_certificate(certificate, reason=reason)
    serial = serial_hex(certificate.serial_number)
    if managed is not None:
        # recorded under the certificate's lock, only if still the live version
        try:
            marked = ctx.state.mark_revoked(managed.name, certificate.serial_number)
        except StateLocked as error:
            marked = None
            print(f"acmelab: revoked at the CA, but not recorded: {error}; once that run is done, replace "
                  f"it with 'acmelab renew --name {managed.name} --force'", file=sys.stderr)
        else:
            if marked is None:
                print(f"acmelab: serial {serial} is no longer the live certificate of {managed.name!r} "
                      f"(another run renewed it meanwhile); revoked at the CA only, nothing recorded for "
                      f"the live one", file=sys.stderr)
            elif from_file:
                logger.info("%s is the live certificate %r; recorded as revoked", args.certificate, managed.name)
        if marked is None:
            managed = None
    elif from_file:
        print(f"acmelab: {args.certificate} is not a managed certificate; only revoked at the CA",
              file=sys.stderr)
    data = {"serial_hex": serial, "reason": ReasonCode(reason).name, "certificate": args.certificate,
            "replaced_on_next_renew": managed is not None}
    if managed is not None:
        data["managed_certificate"] = managed.name
    if args.json:
        _print_json(data)
    else:
        print(f"Revoked serial {serial} (reason {ReasonCode(reason).name})."
              + (f" The next 'acmelab renew' replaces {managed.name!r}." if managed else ""))
    return EXIT_OK


def _reason(text: str) -> int:
    from acmelab.client import ReasonCode

    if text.isdigit():
        return int(text)
    try:
        return int(ReasonCode[text])
    except KeyError:
        raise ConfigError(f"--reason {text!r}: use a number or one of "
                          f"{', '.join(r.name for r in ReasonCode)}") from None


def cmd_install(args: argparse.Namespace) -> int:
    """Install a managed certificate on CDN, API Gateway or CAS, verify it
    with a TLS handshake, and remember the target for renewals."""
    from acmelab.services import InstallTarget, Service, apply_services

    domain = getattr(args, "domain", None)
    target = InstallTarget(args.product, domain, getattr(args, "group_id", None))
    ctx = _context(args)
    managed = _managed(ctx, args.certificate)
    service = Service.from_managed(managed)
    if target not in service.install:
        service = dataclasses.replace(service, install=(*service.install, target))
    env = _environment(args, ctx, verify_installs=not args.skip_handshake_check)
    # Only the new target is worked on; the spec (what renew reinstalls) is
    # stored only once it is installed.
    [result] = apply_services([service], env, ctx.state, threshold=_never_due(), concurrency=1,
                              targets=(target,), remember_service=False)
    if result.ok:
        stored = ctx.state.certificate(managed.name, check_files=False)
        ctx.state.write_meta(type(stored)(**{**stored.__dict__, "service": service.to_dict()}))
        if result.installed and result.status == "unchanged":
            result = dataclasses.replace(result, status="installed")
    return _summary([result], as_json=args.json, quiet=args.quiet)


def _never_due():
    from acmelab.services import RenewalThreshold

    return RenewalThreshold(0.0, None)   # due only once expired


def _pfx_password(args: argparse.Namespace) -> str | None:
    """The PKCS#12 password: --password-file, $ACMELAB_PFX_PASSWORD, or a
    prompt (twice); None with --no-password.  Never from argv."""
    if args.no_password:
        if args.password_file:
            raise ConfigError("--no-password and --password-file exclude each other")
        return None
    if args.password_file:
        try:
            text = Path(args.password_file).read_text("utf-8").rstrip("\r\n")
        except OSError as error:
            raise ConfigError(f"cannot read --password-file {args.password_file}: {error.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"--password-file {args.password_file} is not UTF-8 text") from None
        if not text:
            raise ConfigError(f"--password-file {args.password_file} is empty")
        return text
    if os.environ.get(PFX_PASSWORD_ENV):
        return os.environ[PFX_PASSWORD_ENV]
    if not sys.stdin.isatty():
        raise ConfigError(f"no password: use --password-file FILE, set ${PFX_PASSWORD_ENV}, run on a "
                          "terminal to be asked, or --no-password for an unencrypted bundle")
    first = getpass.getpass("PKCS#12 password: ")
    if not first or first != getpass.getpass("Again: "):
        raise ConfigError("the passwords were empty or did not match")
    return first


def cmd_export_pfx(args: argparse.Namespace) -> int:
    """Export a managed certificate as PKCS#12 (.pfx) for Windows IIS."""
    from acmelab import pkcs12

    state = _context_state(args)
    managed = state.certificate(args.certificate)
    if managed is None:
        raise InputError(f"no certificate named {args.certificate!r} in {state.root}")
    if args.out is not None and str(args.out) == "-":
        raise ConfigError("--out -: a PKCS#12 bundle is binary and holds the private key, so it is not "
                          "written to stdout; give a file name")
    password = _pfx_password(args)
    out = Path(args.out or f"{managed.name}.pfx")
    try:
        pkcs12.write_pkcs12(out, managed.load_key(), managed.fullchain_pem(), password=password,
                            friendly_name=args.friendly_name, profile=args.profile,
                            unencrypted=password is None, overwrite=args.overwrite)
    except WouldOverwriteError:
        raise WouldOverwriteError(f"{out} exists: use --overwrite to replace it") from None
    data = {"file": str(out), "profile": args.profile, "serial_hex": managed.serial_hex,
            "encrypted": password is not None}
    if args.json:
        _print_json(data)
    else:
        print(f"Wrote {out} ({args.profile} profile, {'encrypted' if password else 'UNENCRYPTED'}, mode 0600).")
    return EXIT_OK


# --------------------------------------------------------------------------
# Parsers of the certificate commands
# --------------------------------------------------------------------------

def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("where and how")
    group.add_argument("--directory", default="lab", metavar="lab|staging|production|URL",
                       help="ACME server (default: lab, the local Pebble; production needs --i-mean-production)")
    group.add_argument("--i-mean-production", action="store_true",
                       help="confirm --directory production (real, rate-limited certificates)")
    group.add_argument("--ca-bundle", type=Path, metavar="PEM",
                       help="CA bundle trusted for the ACME server's TLS (private CAs); never turns verification off")
    group.add_argument("--state-dir", type=Path, metavar="DIR",
                       help="state directory (default $ACMELAB_STATE_DIR, else ~/.acmelab)")
    group.add_argument("--lab-dir", type=Path, metavar="DIR",
                       help="lab run directory for --directory lab (default as 'acmelab lab up')")
    group.add_argument("--region-id", default="cn-hangzhou", help="Alibaba Cloud region (default cn-hangzhou)")
    group.add_argument("--trust-root", action="append", type=Path, metavar="PEM",
                       help="root(s) the installed chains must validate to in the TLS check "
                            "(default: the lab's Pebble roots, else the system store)")
    group.add_argument("--json", action="store_true", help="machine-readable JSON on stdout (no progress display)")
    group.add_argument("-v", "--verbose", action="count", default=0, help="more log output on stderr (-vv: debug)")
    group.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    return common


def _run_options(parser: argparse.ArgumentParser) -> None:
    from acmelab.services import DEFAULT_CONCURRENCY

    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N",
                        help=f"services worked on at once (default {DEFAULT_CONCURRENCY})")
    parser.add_argument("--threshold", metavar="FRACTION|DAYS",
                        help="renew when less than this is left: a fraction of the lifetime (0.33) "
                             "or days (30, 30d); default one third of the lifetime")
    parser.add_argument("--now", metavar="ISO8601", help="pretend it is this time for renewal decisions (testing)")
    parser.add_argument("--force", action="store_true", help="issue new certificates even if not due")
    parser.add_argument("--skip-handshake-check", action="store_true", help="skip the TLS handshake check after installing")


def _add_certificate_commands(subparsers: argparse._SubParsersAction) -> None:
    from acmelab import keys
    from acmelab.client import ReasonCode
    from acmelab.services import DNS_PROVIDERS

    common = _common_options()

    account = subparsers.add_parser("account", help="the ACME account (RFC 8555 §7.3)")
    account_commands = account.add_subparsers(dest="account_command", required=True,
                                              metavar="{create,show,update,rollover,deactivate}")
    create = account_commands.add_parser("create", parents=[common], help="create the account (or show the existing one)")
    create.add_argument("--contact", action="append", metavar="URL", help="e.g. mailto:admin@example.com (repeatable)")
    create.add_argument("--key-type", choices=keys.KEY_TYPES, default="ec256", help="account key type (default ec256)")
    create.add_argument("--eab-kid", metavar="KID",
                        help=f"External Account Binding key id; the HMAC key comes from ${EAB_HMAC_KEY_ENV}")
    create.set_defaults(func=cmd_account_create)
    show = account_commands.add_parser("show", parents=[common], help="show the account as the server has it")
    show.set_defaults(func=cmd_account_show)
    update = account_commands.add_parser("update", parents=[common], help="replace the account's contacts")
    update.add_argument("--contact", action="append", metavar="URL", help="contact URL (repeatable)")
    update.add_argument("--no-contact", action="store_true", help="remove every contact")
    update.set_defaults(func=cmd_account_update)
    rollover = account_commands.add_parser("rollover", parents=[common], help="replace the account key (keyChange)")
    rollover.add_argument("--key-type", choices=keys.KEY_TYPES, default="ec256", help="new key type (default ec256)")
    rollover.set_defaults(func=cmd_account_rollover)
    deactivate = account_commands.add_parser("deactivate", parents=[common], help="deactivate the account for good")
    deactivate.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
    deactivate.set_defaults(func=cmd_account_deactivate)

    issue = subparsers.add_parser(
        "issue", parents=[common], help="issue a certificate (dns-01) and store it",
        description="Issue a certificate for the names by dns-01 (RFC 8555 §7.4, §8.4) and store it in the "
                    "state directory.  Issuing again under an existing name replaces that certificate and "
                    "installs the new one wherever the old one was installed.")
    issue.add_argument("-d", "--domain", action="append", required=True, metavar="NAME",
                       help="DNS name (repeatable; the first is the CN; *.example.com for a wildcard)")
    issue.add_argument("--dns", choices=DNS_PROVIDERS, required=True, help="who publishes the TXT records")
    issue.add_argument("--key-type", choices=keys.KEY_TYPES, default="ec256", help="certificate key (default ec256)")
    issue.add_argument("--preferred-chain", metavar="NAME", help="issuer CN of the chain to prefer (RFC 8555 §7.4.2)")
    issue.add_argument("--profile", metavar="NAME",
                       help="ACME profile from the directory's meta.profiles, e.g. classic, tlsserver, shortlived "
                            "(default: classic where offered)")
    issue.add_argument("--challenge", choices=CHALLENGE_TYPES, default="dns-01",
                       help="how to prove control: dns-01 (default), dns-account-01, dns-persist-01 "
                            "(a standing record, left in place)")
    issue.add_argument("--name", help="certificate name in the state directory (default: the first domain)")
    issue.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    issue.add_argument("--skip-handshake-check", action="store_true", help="skip the TLS check of earlier install targets")
    issue.set_defaults(func=cmd_issue, threshold=None, now=None)

    renew = subparsers.add_parser("renew", parents=[common],
                                  help="renew managed certificates that are due and reinstall them")
    renew.add_argument("--name", action="append", metavar="CERT", help="only these certificates (repeatable)")
    _run_options(renew)
    renew.set_defaults(func=cmd_renew)

    revoke = subparsers.add_parser("revoke", parents=[common], help="revoke a certificate (RFC 8555 §7.6)")
    revoke.add_argument("certificate", metavar="CERT", help="a managed certificate's name, or a PEM file")
    revoke.add_argument("--reason", default="unspecified", metavar="R",
                        help="RFC 5280 reason: a number or one of " + ", ".join(r.name for r in ReasonCode))
    revoke.add_argument("--key", type=Path, metavar="PEM",
                        help="sign with this certificate key instead of the account key (e.g. a lost account)")
    revoke.add_argument("--sign-with-certificate-key", action="store_true",
                        help="sign with the managed certificate's own key instead of the account key")
    revoke.set_defaults(func=cmd_revoke)

    install = subparsers.add_parser("install", help="install a managed certificate on CDN, API Gateway or CAS")
    products = install.add_subparsers(dest="product", required=True, metavar="{cdn,apigateway,cas}")
    cdn = products.add_parser("cdn", parents=[common], help="SetCdnDomainSSLCertificate (CDN 2018-05-10)")
    cdn.add_argument("certificate", metavar="CERT", help="managed certificate name")
    cdn.add_argument("--domain", required=True, help="the CDN accelerated domain")
    apigateway = products.add_parser("apigateway", parents=[common],
                                     help="SetDomainCertificate (API Gateway 2016-07-14)")
    apigateway.add_argument("certificate", metavar="CERT", help="managed certificate name")
    apigateway.add_argument("--group-id", required=True, help="the API group's GroupId")
    apigateway.add_argument("--domain", required=True, help="the group's custom domain")
    cas = products.add_parser("cas", parents=[common], help="UploadUserCertificate (CAS 2020-04-07)")
    cas.add_argument("certificate", metavar="CERT", help="managed certificate name")
    for product_parser in (cdn, apigateway, cas):
        product_parser.add_argument("--skip-handshake-check", action="store_true", help="skip the TLS handshake check")
        product_parser.set_defaults(func=cmd_install)

    dns = subparsers.add_parser("dns", help="DNS records acmelab keeps (dns-persist-01)")
    dns_commands = dns.add_subparsers(dest="dns_command", required=True, metavar="{persist}")
    persist = dns_commands.add_parser("persist", help="the standing dns-persist-01 records, left in place by design")
    persist_commands = persist.add_subparsers(dest="persist_command", required=True, metavar="{list,remove}")
    persist_list = persist_commands.add_parser("list", parents=[common], help="list them (no network)")
    persist_list.set_defaults(func=cmd_dns_persist_list)
    persist_remove = persist_commands.add_parser("remove", parents=[common],
                                                 help="remove a certificate's standing records from DNS")
    persist_remove.add_argument("certificate", metavar="CERT", help="managed certificate name")
    persist_remove.set_defaults(func=cmd_dns_persist_remove)

    export = subparsers.add_parser("export", help="export a managed certificate")
    formats = export.add_subparsers(dest="format", required=True, metavar="{pfx}")
    pfx = formats.add_parser("pfx", parents=[common], help="PKCS#12 for Windows IIS",
                             allow_abbrev=False)  # "--password" must not pass for --password-file
    pfx.add_argument("certificate", metavar="CERT", help="managed certificate name")
    pfx.add_argument("--profile", choices=("modern", "legacy"), required=True,
                     help="modern: AES-256/SHA-256 (Windows Server 2019+); legacy: 3DES/SHA-1 (2016 and older)")
    pfx.add_argument("--out", type=Path, metavar="FILE", help="output file (default CERT.pfx; not '-')")
    pfx.add_argument("--password-file", type=Path, metavar="FILE", help="read the password from this file")
    pfx.add_argument("--no-password", action="store_true", help="write an UNENCRYPTED bundle (explicit)")
    pfx.add_argument("--friendly-name", help="the name IIS shows")
    pfx.add_argument("--overwrite", action="store_true", help="replace an existing file")
    pfx.set_defaults(func=cmd_export_pfx)

    apply = subparsers.add_parser("apply", parents=[common],
                                  help="bring every service of a services file to a valid installed certificate")
    apply.add_argument("services_file", type=Path, metavar="services.toml")
    _run_options(apply)
    apply.set_defaults(func=cmd_apply)

    listing = subparsers.add_parser("list", parents=[common], help="list the managed certificates")
    listing.add_argument("--offline", action="store_true",
                         help="do not ask the CA's renewalInfo (ARI); show the stored windows")
    listing.set_defaults(func=cmd_list)


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
        "cdn_edge": info.cdn_edge_port, "apigateway_edge": info.apigateway_edge_port,
    }
    ignored = []
    if args.free_ports:
        ignored.append("--free-ports")
    for name in _PORT_OPTIONS:
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
                  f"options are ignored: {', '.join(ignored)} (run `acmelab lab down` first to change them)",
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
    epilog = "exit status:\n" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="acmelab", description="Learn Let's Encrypt's ACME v2 (RFC 8555) by doing it.",
        epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    # the output options are accepted before the command too (acmelab -vv issue ...);
    # own dests, since a subcommand's defaults would overwrite them (merged in main)
    parser.add_argument("--json", dest="global_json", action="store_true", help="as the command's --json")
    parser.add_argument("-v", "--verbose", dest="global_verbose", action="count", default=0,
                        help="as the command's -v (-vv: debug)")
    parser.add_argument("-q", "--quiet", dest="global_quiet", action="store_true", help="as the command's -q")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_certificate_commands(subparsers)
    _add_lab_commands(subparsers)
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
