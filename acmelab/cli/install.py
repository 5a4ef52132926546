"""``acmelab install <product> CERT ...`` (one sub-command per deployer of
:data:`acmelab.deploy.DEPLOYERS`), ``acmelab export pfx``, ``acmelab dns persist``."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from acmelab import operations
from acmelab.cli.common import OPTION_GROUPS, backend_of, options, state_of
from acmelab.cli.output import EXIT_OK, plural, print_json, summary
from acmelab.errors import ConfigError, InputError, WouldOverwriteError

PFX_PASSWORD_ENV = "ACMELAB_PFX_PASSWORD"


def cmd_install(args: argparse.Namespace) -> int:
    """Install a managed certificate on one target, verify it with a TLS
    handshake, and remember the target for renewals."""
    from acmelab.deploy import deployer

    target = deployer(args.product).from_arguments(args)
    backend = backend_of(args)
    state = state_of(args)
    operations.managed_certificate(state, args.certificate)
    env = operations.environment(backend, state, verify_installs=not args.skip_handshake_check)
    result = operations.install(env, state, args.certificate, target)
    # the note says "installed: cdn:cdn.example.com (serial ..., handshake verified); <why>"
    return summary([result], as_json=args.json, quiet=args.quiet)


def add_install_commands(subparsers: argparse._SubParsersAction) -> None:
    from acmelab.deploy import DEPLOYERS

    names = ", ".join(DEPLOYERS)
    install = subparsers.add_parser(
        "install", help=f"install a managed certificate ({names})",
        description="Install a managed certificate on one Alibaba Cloud product, check it with a TLS handshake, "
                    "and remember the target: 'renew' and 'apply' reinstall there.  The lab's Alibaba endpoint "
                    "stands in for Alibaba Cloud with --directory lab.")
    products = install.add_subparsers(dest="product", required=True, metavar="{" + ",".join(DEPLOYERS) + "}")
    for product, deployer in DEPLOYERS.items():
        parser = products.add_parser(
            product, parents=options(*OPTION_GROUPS), help=deployer.api,
            description=f"Install a managed certificate through {deployer.api}, then check with a TLS handshake "
                        "that the target serves its serial; the target is remembered for renewals.")
        parser.add_argument("certificate", metavar="CERT", help="managed certificate name")
        deployer.add_arguments(parser)
        parser.add_argument("--skip-handshake-check", action="store_true", help="skip the TLS handshake check")
        parser.set_defaults(func=cmd_install)


# --------------------------------------------------------------------------
# acmelab dns persist list|remove
# --------------------------------------------------------------------------

def cmd_dns_persist_list(args: argparse.Namespace) -> int:
    """List the standing dns-persist-01 records the certificates rely on."""
    from acmelab.journal import standing_records

    records = standing_records(state_of(args))
    if args.json:
        print_json(records)
        return EXIT_OK
    if not records:
        print("No standing dns-persist-01 records.")
    for record in records:
        print(f"{record['certificate']}: TXT {record['name']} = \"{record['value']}\" ({record['provider']})")
    return EXIT_OK


def cmd_dns_persist_remove(args: argparse.Namespace) -> int:
    """Remove the standing dns-persist-01 records of one certificate (DNS
    only: no ACME account is looked up or made)."""
    from acmelab.journal import remove_standing_records

    backend = backend_of(args)
    state = state_of(args)
    removed = remove_standing_records(state, backend.dns_provider, args.certificate)
    if args.json:
        print_json({"certificate": args.certificate, "removed": removed})
    elif not args.quiet:
        print(f"Removed {plural(len(removed), 'standing record')}: {', '.join(removed) or '-'}")
    return EXIT_OK


def add_dns_commands(subparsers: argparse._SubParsersAction) -> None:
    dns = subparsers.add_parser(
        "dns", help="DNS records acmelab keeps (dns-persist-01)",
        description="DNS records acmelab leaves in place on purpose (dns-01 TXT records are always removed).")
    dns_commands = dns.add_subparsers(dest="dns_command", required=True, metavar="{persist}")
    persist = dns_commands.add_parser(
        "persist", help="the standing dns-persist-01 records, left in place by design",
        description="The standing dns-persist-01 records (_validation-persist.<name>, draft-ietf-acme-dns-persist): "
                    "written once, they let every renewal validate without a new DNS record.")
    persist_commands = persist.add_subparsers(dest="persist_command", required=True, metavar="{list,remove}")
    persist_list = persist_commands.add_parser(
        "list", parents=options("state", "output"), help="list them (no network)",
        description="List the standing dns-persist-01 records the state directory knows of (no network).")
    persist_list.set_defaults(func=cmd_dns_persist_list)
    persist_remove = persist_commands.add_parser(
        "remove", parents=options("acme", "state", "cloud", "output"),
        help="remove a certificate's standing records from DNS",
        description="Remove a certificate's standing dns-persist-01 records from DNS (the lab's, or Alibaba "
                    "Cloud DNS); its next renewal then writes a dns-01 record again or a new standing one.")
    persist_remove.add_argument("certificate", metavar="CERT", help="managed certificate name")
    persist_remove.set_defaults(func=cmd_dns_persist_remove)


# --------------------------------------------------------------------------
# acmelab export pfx
# --------------------------------------------------------------------------

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

    state = state_of(args)
    managed = operations.managed_certificate(state, args.certificate)
    if args.out is not None and str(args.out) == "-":
        raise ConfigError("--out -: a PKCS#12 bundle is binary and holds the private key, so it is not "
                          "written to stdout; give a file name")
    if managed.revoked:   # exporting is allowed (e.g. to look at it), but say it plainly
        print(f"acmelab: warning: {managed.name} (serial {managed.serial_hex}) was revoked; "
              "a server given this bundle serves a revoked certificate ('acmelab renew' replaces it)",
              file=sys.stderr)
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
        print_json(data)
    else:
        print(f"Wrote {out} ({args.profile} profile, {'encrypted' if password else 'UNENCRYPTED'}, mode 0600).")
    return EXIT_OK


def add_export_commands(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser(
        "export", help="export a managed certificate",
        description="Export a managed certificate with its key in another format (no network).")
    formats = export.add_subparsers(dest="format", required=True, metavar="{pfx}")
    pfx = formats.add_parser(
        "pfx", parents=options("state", "output"), help="PKCS#12 for Windows IIS",
        description="Write the certificate, its chain and key as PKCS#12 (.pfx, mode 0600) for Windows IIS.  "
                    "The password comes from --password-file, $" + PFX_PASSWORD_ENV + " or a prompt, never "
                    "from the command line.",
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
