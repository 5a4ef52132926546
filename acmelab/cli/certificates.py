"""``acmelab issue|renew|apply|list|revoke``: certificates through the engine."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import os
import sys
from pathlib import Path

from acmelab import operations
from acmelab.challenges import CHALLENGE_TYPES
from acmelab.cli.common import OPTION_GROUPS, backend_of, options, run_engine, run_options, run_services, \
    state_of
from acmelab.cli.output import EXIT_OK, console, exit_status, notify, print_json, summary, why
from acmelab.errors import AcmelabError, ConfigError, InputError

logger = logging.getLogger("acmelab.cli")


def cmd_issue(args: argparse.Namespace) -> int:
    """Issue a certificate for the names (dns-01) and store it."""
    from acmelab import csr
    from acmelab.config import Service
    from acmelab.state import certificate_name_for, check_certificate_name

    try:
        names = csr.normalize_names(args.domain)
        name = check_certificate_name(args.name) if args.name else certificate_name_for(names[0])
    except InputError as error:
        raise ConfigError(str(error)) from None
    previous = None
    try:
        previous = state_of(args).certificate(name, check_files=False)
    except AcmelabError:
        pass
    # under a name already in use: the stored spec (targets, delivery, keep_previous, region,
    # cert_region) with what this command sets
    service = Service(name, tuple(names), args.dns, args.key_type, (), args.preferred_chain, "issue",
                      args.profile, args.challenge)
    if previous is not None:
        service = dataclasses.replace(Service.from_managed(previous), domains=service.domains, dns=service.dns,
                                      key_type=service.key_type, preferred_chain=service.preferred_chain,
                                      origin="issue", profile=service.profile, challenge=service.challenge,
                                      stored=False)
    [result], backend, state = run_engine(args, [service], force=True,
                                          verify_installs=not args.skip_handshake_check, strict_preflight=True)
    managed = state.certificate(name, check_files=False) if result.ok else None
    issued = _issued_json(managed, result) if managed is not None else None
    if args.json or args.quiet or issued is None:
        extra = {"directory_url": backend.directory_url, "state_dir": str(state.root)}
        if args.json and issued is not None:
            extra["certificate"] = issued
        if args.json or args.quiet:
            return summary([result], as_json=args.json, quiet=args.quiet, extra=extra)
        print(f"acmelab: error: {result.name} {result.status}: {why(result)}", file=sys.stderr)
        return exit_status({result.status: 1})
    _print_issued(issued, result)
    return exit_status({result.status: 1})


#: what ``acmelab issue`` prints for each file of a certificate version
_FILES = (("certificate", "cert.pem", ""), ("chain", "chain.pem", "intermediates"),
          ("fullchain", "fullchain.pem", "certificate + chain: what most servers want"),
          ("private_key", "privkey.pem", "mode 0600"))


def _issued_json(managed, result) -> dict:
    """The certificate ``acmelab issue`` made: name, serial, dates and its
    files under ``current/`` (the symlink that follows renewals)."""
    current = managed.version_dir.parent / "current"
    return {"name": managed.name, "status": result.status, "names": list(managed.names),
            "serial_hex": managed.serial_hex, "not_after": managed.not_after.isoformat(),
            "profile": managed.profile, "key_type": managed.key_type,
            "files": {key: str(current / file) for key, file, _note in _FILES},
            "installed": list(result.installed), "verified": list(result.verified)}


def _print_issued(issued: dict, result) -> None:
    """``acmelab issue`` on a terminal: the certificate's name, serial and files."""
    not_after = dt.datetime.fromisoformat(issued["not_after"])
    print(f"{issued['status'].capitalize()} certificate {issued['name']!r}: serial {issued['serial_hex']}, "
          f"valid until {not_after:%Y-%m-%d %H:%M} UTC"
          + (f", profile {issued['profile']}" if issued["profile"] else "") + f", {issued['key_type']} key")
    print(f"  {'names':<12} {', '.join(issued['names'])}")
    for key, _file, note in _FILES:
        print(f"  {key.replace('_', ' '):<12} {issued['files'][key]}" + (f"  ({note})" if note else ""))
    for target in issued["installed"]:
        print(f"  {'installed':<12} {target} "
              f"({'handshake verified' if target in issued['verified'] else 'handshake not checked'})")


def cmd_renew(args: argparse.Namespace) -> int:
    """Renew every managed certificate that is due and install it where the
    old one was installed.  Safe to run daily."""
    from acmelab.config import services_from_state

    services = services_from_state(state_of(args), args.name)
    return run_services(args, services, force=args.force, verify_installs=not args.skip_handshake_check)


def cmd_apply(args: argparse.Namespace) -> int:
    """Bring every service of a services file to a valid installed certificate."""
    from acmelab.config import load_services

    services = load_services(args.services_file)
    return run_services(args, services, force=args.force, verify_installs=not args.skip_handshake_check)


def _ari_client(args: argparse.Namespace):
    """A client for the unauthenticated renewalInfo GETs of ``list``, or None
    when the CA cannot be reached without side effects (``--directory lab``
    with no lab running: ``list`` never starts one)."""
    from acmelab import keys

    try:
        backend = backend_of(args, start_lab=False)
    except AcmelabError as error:
        logger.info("not asking the CA for renewal windows: %s", error)
        return None
    # renewalInfo needs no account: this key signs nothing
    return backend.acme_client(keys.generate_key("ec256"))


def cmd_list(args: argparse.Namespace) -> int:
    """List the managed certificates, each with its profile, renewal window
    and why it is or is not due.  The CA's renewalInfo (ARI, RFC 9773) is
    asked only where the stored answer's Retry-After has passed, and only
    when ``--directory`` names a CA (``--offline``: never)."""
    state = state_of(args)
    client = None if args.offline or not state.certificate_names() else _ari_client(args)
    rows = operations.certificate_rows(state, client)
    if args.json:
        print_json(rows)
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
    console().print(table)
    return EXIT_OK


def _looks_like_path(text: str) -> bool:
    """A CERT argument meant as a file: it has a directory part or a
    certificate file suffix (certificate names have neither a '/' nor
    these endings)."""
    return os.sep in text or "/" in text or text.lower().endswith((".pem", ".crt", ".cer"))


def _certificate_to_revoke(args: argparse.Namespace, state):
    """(x509 certificate, the managed certificate it is the live version of or None, from a file?)."""
    from cryptography import x509

    path = Path(args.certificate)
    if not path.is_file() and (path.exists() or _looks_like_path(args.certificate)):
        raise InputError(f"{args.certificate}: no such file" if not path.exists()
                         else f"{args.certificate} is not a regular file")
    if not path.is_file():
        managed = operations.managed_certificate(state, args.certificate)
        return managed.leaf(), managed, False
    try:
        certificate = x509.load_pem_x509_certificates(path.read_bytes())[0]
    except OSError as error:
        raise InputError(f"cannot read {args.certificate}: {error.strerror}") from None
    except ValueError as error:
        raise InputError(f"{args.certificate} is not a PEM certificate: {error}") from None
    return certificate, state.find_by_serial(certificate.serial_number), True


def cmd_revoke(args: argparse.Namespace) -> int:
    """Revoke a managed certificate (by name) or a PEM file (RFC 8555 §7.6).

    A PEM file holding the live version of a managed certificate (same
    serial) is recorded as revoked too, so ``list``, ``apply`` and ``renew``
    treat it as revoked and replace it; any other PEM file is only revoked
    at the CA (said on stderr)."""
    from acmelab import keys
    from acmelab.client import ReasonCode

    reason = _reason(args.reason)
    state = state_of(args)
    certificate, managed, from_file = _certificate_to_revoke(args, state)
    backend = backend_of(args)
    certificate_key = None
    if args.key is not None:
        certificate_key = keys.load_private_key(args.key)
    elif args.sign_with_certificate_key:
        if managed is None:
            raise ConfigError("--sign-with-certificate-key needs a managed certificate; for a PEM file use --key")
        certificate_key = managed.load_key()
    done = operations.revoke(backend, state, certificate, reason=reason, managed=managed,
                             certificate_key=certificate_key, notify=notify)
    if done.managed is not None and from_file:
        logger.info("%s is the live certificate %r; recorded as revoked", args.certificate, done.managed)
    elif managed is None and from_file:
        notify(f"{args.certificate} is not a managed certificate; only revoked at the CA")
    data = {"serial_hex": done.serial_hex, "reason": ReasonCode(reason).name, "certificate": args.certificate,
            "replaced_on_next_renew": done.managed is not None}
    if done.managed is not None:
        data["managed_certificate"] = done.managed
    if args.json:
        print_json(data)
    else:
        print(f"Revoked serial {done.serial_hex} (reason {ReasonCode(reason).name})."
              + (f" The next 'acmelab renew' replaces {done.managed!r}." if done.managed else ""))
    return EXIT_OK


def _reason(text: str) -> int:
    """``--reason``: a number or a name (any case) of the reasons Let's
    Encrypt accepts from subscribers (:data:`acmelab.resources.SUBSCRIBER_REASONS`)."""
    from acmelab.resources import SUBSCRIBER_REASONS

    for reason in SUBSCRIBER_REASONS:
        if text.strip().lower() in (reason.name.lower(), str(int(reason))):
            return int(reason)
    raise ConfigError(f"--reason {text!r}: use one of "
                      + ", ".join(f"{r.name} ({int(r)})" for r in SUBSCRIBER_REASONS)
                      + " (the reasons Let's Encrypt accepts from subscribers)")


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    from acmelab import keys
    from acmelab.config import DNS_PROVIDERS
    from acmelab.resources import SUBSCRIBER_REASONS

    issue = subparsers.add_parser(
        "issue", parents=options(*OPTION_GROUPS), help="issue a certificate (dns-01) and store it",
        description="Issue a certificate for the names by a DNS challenge (RFC 8555 §7.4, §8.4) and store it in "
                    "the state directory; prints its name, serial and the files to point a server at.  Issuing "
                    "again under an existing name replaces that certificate and installs the new one wherever "
                    "the old one was installed.")
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

    renew = subparsers.add_parser(
        "renew", parents=options(*OPTION_GROUPS), help="renew managed certificates that are due and reinstall them",
        description="Renew every managed certificate that is due -- ARI first (RFC 9773: the CA's suggested "
                    "window), else with a third of its lifetime left -- and install it wherever the old one was "
                    "installed, proven by a TLS handshake.  Safe to run daily: each result says why it was or "
                    "was not renewed.")
    renew.add_argument("--name", action="append", metavar="CERT", help="only these certificates (repeatable)")
    run_options(renew)
    renew.set_defaults(func=cmd_renew)

    revoke = subparsers.add_parser(
        "revoke", parents=options("acme", "state", "output"), help="revoke a certificate (RFC 8555 §7.6)",
        description="Revoke a managed certificate (by name) or a PEM file (RFC 8555 §7.6), signed with the "
                    "account key or the certificate's own key.  A revoked managed certificate is replaced by the "
                    "next 'acmelab renew' or 'apply'.")
    revoke.add_argument("certificate", metavar="CERT", help="a managed certificate's name, or a PEM file")
    revoke.add_argument("--reason", default="unspecified", metavar="R",
                        help="RFC 5280 reason, a number or a name: " + ", ".join(r.name for r in SUBSCRIBER_REASONS)
                             + " (what Let's Encrypt accepts from subscribers; default unspecified)")
    revoke.add_argument("--key", type=Path, metavar="PEM",
                        help="sign with this certificate key instead of the account key (e.g. a lost account)")
    revoke.add_argument("--sign-with-certificate-key", action="store_true",
                        help="sign with the managed certificate's own key instead of the account key")
    revoke.set_defaults(func=cmd_revoke)


def add_listing_commands(subparsers: argparse._SubParsersAction) -> None:
    apply = subparsers.add_parser(
        "apply", parents=options(*OPTION_GROUPS),
        help="bring every service of a services file to a valid installed certificate",
        description="Bring every service of a services file (TOML, see the README) to a valid certificate that "
                    "is installed on its targets and proven by a TLS handshake: issue when there is none, when "
                    "names, key type or profile changed, after a revocation or when due; install wherever the "
                    "served serial is not the live one.  One failing service does not stop the others.")
    apply.add_argument("services_file", type=Path, metavar="services.toml")
    run_options(apply)
    apply.set_defaults(func=cmd_apply)

    listing = subparsers.add_parser(
        "list", parents=options("acme", "state", "output"), help="list the managed certificates",
        description="List the managed certificates of the state directory: names, serial, profile, expiry, "
                    "where installed, and why each is or is not due.  The CA's renewalInfo (ARI, RFC 9773) is "
                    "asked only when its Retry-After has passed; a lab that is not running is not started.")
    listing.add_argument("--offline", action="store_true",
                         help="do not ask the CA's renewalInfo (ARI); show the stored windows")
    listing.set_defaults(func=cmd_list)
