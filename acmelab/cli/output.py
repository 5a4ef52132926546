"""What the commands print: JSON, the summary table, the progress bar, exit statuses."""

from __future__ import annotations

import json
import sys
from typing import Any, Sequence

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


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (datetimes and paths as text)."""
    print(json.dumps(data, indent=2, default=str))


def notify(message: str) -> None:
    """A message for the person at the terminal: ``acmelab: <message>`` on stderr."""
    print(f"acmelab: {message}", file=sys.stderr)


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def console():
    """A rich console on stdout; 160 columns when stdout is not a terminal.
    A closed stdout raises BrokenPipeError (rich would exit 1 itself; main
    handles it as every other command does)."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError(32, "stdout was closed")

    return _Console() if sys.stdout.isatty() else _Console(width=160)


class Progress:
    """A rich progress bar on stderr (only on a terminal, not with --json/-q)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.progress = None
        self.counts = {"ok": 0, "failed": 0}
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, \
                TimeElapsedColumn

            self.progress = RichProgress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                         TextColumn("{task.fields[counts]}"), TimeElapsedColumn(),
                                         console=Console(stderr=True), transient=False)
            self.task = self.progress.add_task("services", total=total, counts="")

    def __enter__(self) -> "Progress":
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def done(self, result) -> None:
        kind = "ok" if result.ok else result.status if result.status in ("skipped", "scheduled") else "failed"
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.progress is not None:
            counts = "  ".join(f"{k} {n}" for k, n in self.counts.items() if n or k != "skipped")
            self.progress.update(self.task, advance=1, counts=counts)


def exit_status(counts: dict[str, int]) -> int:
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


def why(result: Any) -> str:
    """One line saying what happened to a :class:`~acmelab.engine.ServiceResult`
    and why, from its fields as they are: the engine's ``reason`` (e.g.
    ``"not due: 61.0 days left, ..."``), then what happened on the targets:
    the engine's ``notes`` (one per target, e.g.
    ``"installed: cdn:cdn.example.com (serial 05a1..., handshake verified)"``).
    For an ``acmelab install`` (status ``installed``) the targets come first."""
    if result.error:
        return result.error
    targets = [note for note in result.notes if note]
    reason = [result.reason] if result.reason else []
    return "; ".join(targets + reason if result.status == "installed" else reason + targets)


_STYLE = {"issued": "green", "renewed": "green", "installed": "green", "unchanged": "", "failed": "red",
          "interrupted": "yellow", "skipped": "yellow", "scheduled": "yellow"}


def summary(results: Sequence[Any], *, as_json: bool, quiet: bool = False,
            extra: dict[str, Any] | None = None) -> int:
    """Print the summary of :class:`~acmelab.engine.ServiceResult` objects
    (rich table, or JSON; with ``quiet`` only the services that are not ok,
    on stderr); return the exit status (:func:`exit_status`).  Every row's
    note says why (:func:`why`)."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    code = exit_status(counts)
    if as_json:
        print_json({**(extra or {}), "counts": counts, "exit_code": code,
                    "services": [r.to_json() for r in results]})
        return code
    if quiet:
        for r in results:
            if not r.ok:
                print(f"acmelab: {r.name} {r.status}: {why(r)}", file=sys.stderr)
        return code
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{plural(len(results), 'service')}: "
                        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    table.add_column("service", overflow="fold", ratio=2)
    for column in ("status", "serial", "expires", "installed", "tls ok"):
        table.add_column(column, no_wrap=column != "serial", overflow="fold")
    table.add_column("note", overflow="fold", ratio=3)
    for r in results:
        note = "see below" if r.error else why(r)
        style = _STYLE.get(r.status, "")
        table.add_row(r.name, f"[{style}]{r.status}[/]" if style else r.status,
                      r.serial_hex or "", f"{r.not_after:%Y-%m-%d}" if r.not_after else "",
                      str(len(r.installed)), str(len(r.verified)), Text(note))
    out = console()
    out.print(table)
    for r in results:
        if r.error:   # full messages below the table, readable in a narrow terminal
            out.print(f"[bold]{r.name}[/] {r.status}: {r.error}", markup=True, highlight=False)
    return code
