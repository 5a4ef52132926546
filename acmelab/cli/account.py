"""``acmelab account create|show|update|rollover|deactivate`` (RFC 8555 §7.3)."""

from __future__ import annotations

import argparse
from typing import Any

from acmelab import operations
from acmelab.backends import EAB_HMAC_KEY_ENV
from acmelab.cli.common import backend_of, options, state_of
from acmelab.cli.output import EXIT_OK, notify, print_json
from acmelab.errors import ConfigError


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
        print_json(data)
        return
    print(heading)
    for key in ("directory_url", "account_url", "status", "contact", "key_file", "key_thumbprint"):
        value = ", ".join(data[key]) if isinstance(data[key], list) else data[key]
        print(f"  {key.replace('_', ' '):16} {value or '-'}")


def cmd_account_create(args: argparse.Namespace) -> int:
    """Create the ACME account (RFC 8555 §7.3), or show the existing one."""
    record, _key = operations.account(backend_of(args), state_of(args), key_type=args.key_type,
                                      contact=args.contact or (), eab_kid=args.eab_kid, register=True)
    _print_account(_account_json(record), args.json, "ACME account:")
    return EXIT_OK


def cmd_account_show(args: argparse.Namespace) -> int:
    """Fetch the account object (RFC 8555 §7.3.3, POST-as-GET)."""
    record, account = operations.fetch(backend_of(args), state_of(args))
    _print_account(_account_json(record, account), args.json, "ACME account:")
    return EXIT_OK


def cmd_account_update(args: argparse.Namespace) -> int:
    """Replace the account's contacts (RFC 8555 §7.3.2)."""
    backend = backend_of(args)
    contact = [] if args.no_contact else list(args.contact or [])
    if not contact and not args.no_contact:
        raise ConfigError("give --contact URL (repeatable) or --no-contact")
    record, account = operations.update_contacts(backend, state_of(args), contact)
    _print_account(_account_json(record, account), args.json, "ACME account updated:")
    return EXIT_OK


def cmd_account_rollover(args: argparse.Namespace) -> int:
    """Replace the account key (RFC 8555 §7.3.5, keyChange)."""
    record = operations.rollover(backend_of(args), state_of(args), key_type=args.key_type, notify=notify)
    _print_account(_account_json(record), args.json, "ACME account key rolled over:")
    return EXIT_OK


def cmd_account_deactivate(args: argparse.Namespace) -> int:
    """Deactivate the account for good (RFC 8555 §7.3.6)."""
    if not args.yes:
        raise ConfigError("deactivation cannot be undone: add --yes to confirm")
    record, account = operations.deactivate(backend_of(args), state_of(args))
    _print_account(_account_json(record, account), args.json, "ACME account deactivated:")
    return EXIT_OK


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    from acmelab import keys

    common = options("acme", "state", "output")
    account = subparsers.add_parser(
        "account", help="the ACME account (RFC 8555 §7.3)",
        description="The ACME account of --directory: its key is kept in the state directory (0600), one per "
                    "ACME server.  Every certificate command creates it when missing.")
    commands = account.add_subparsers(dest="account_command", required=True,
                                      metavar="{create,show,update,rollover,deactivate}")
    create = commands.add_parser(
        "create", parents=common, help="create the account (or show the existing one)",
        description="Create the ACME account (newAccount, RFC 8555 §7.3) with a new key, or show the one the "
                    "state directory already holds for this server.")
    create.add_argument("--contact", action="append", metavar="URL", help="e.g. mailto:admin@example.com (repeatable)")
    create.add_argument("--key-type", choices=keys.KEY_TYPES, default="ec256", help="account key type (default ec256)")
    create.add_argument("--eab-kid", metavar="KID",
                        help=f"External Account Binding key id; the HMAC key comes from ${EAB_HMAC_KEY_ENV}")
    create.set_defaults(func=cmd_account_create)
    show = commands.add_parser(
        "show", parents=common, help="show the account as the server has it",
        description="Fetch the account object from the server (POST-as-GET, RFC 8555 §7.3.3) and show its URL, "
                    "status, contacts, key file and key thumbprint (RFC 7638).")
    show.set_defaults(func=cmd_account_show)
    update = commands.add_parser(
        "update", parents=common, help="replace the account's contacts",
        description="Replace the account's contact URLs (RFC 8555 §7.3.2).  Let's Encrypt keeps no contacts "
                    "since mid-2025 and ignores the update; Pebble stores them.")
    update.add_argument("--contact", action="append", metavar="URL", help="contact URL (repeatable)")
    update.add_argument("--no-contact", action="store_true", help="remove every contact")
    update.set_defaults(func=cmd_account_update)
    rollover = commands.add_parser(
        "rollover", parents=common, help="replace the account key (keyChange)",
        description="Replace the account key (keyChange, RFC 8555 §7.3.5).  The new key is saved (0600) before "
                    "the request and the old one is kept as account.key.<time>.old; a lost answer is resolved "
                    "by asking the server which key it knows.")
    rollover.add_argument("--key-type", choices=keys.KEY_TYPES, default="ec256", help="new key type (default ec256)")
    rollover.set_defaults(func=cmd_account_rollover)
    deactivate = commands.add_parser(
        "deactivate", parents=common, help="deactivate the account for good",
        description="Deactivate the account (RFC 8555 §7.3.6).  This cannot be undone: the server refuses every "
                    "later request signed with its key.  Needs --yes.")
    deactivate.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
    deactivate.set_defaults(func=cmd_account_deactivate)
