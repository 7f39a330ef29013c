"""The command line's shared parts: the group's decisions (Root), settings, and the options
several commands take."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..config import (
    journal_path,
    secret_file_warnings,
)

if TYPE_CHECKING:  # each command imports what it needs: --version and completion start fast
    from ..journal.store import Journal


@dataclass
class Root:
    """What the top-level group decided, kept as click's context object: the one place the
    command line's settings are read (the process environment included, read once)."""

    environ: Mapping[str, str]  # the process environment
    env: Mapping[str, str]  # BATCHPAY_* settings: the environment over the configuration file
    from_file: Mapping[str, str] = field(default_factory=dict)
    config_file: Path | None = None
    profile: str | None = None
    quiet: bool = False
    verbose: int = 0
    log_file: Path | None = None
    log_format: str = "text"


def root_options() -> Root:
    """The top-level group's decisions, for the command running now."""
    root = click.get_current_context().find_object(Root)
    if root is None:  # a command is only ever run under the group, which sets it
        raise RuntimeError("batchpay's commands run under the batchpay group")
    return root


def settings() -> Mapping[str, str]:
    """BATCHPAY_* settings: the environment over the configuration file (options apply on
    top, in each command)."""
    return root_options().env


def warn_about_secret_file(env: Mapping[str, str]) -> list[str]:
    """Print the secret file's permission warnings on stderr (not under -q); returns them."""
    warnings = secret_file_warnings(env)
    if not root_options().quiet:
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
    return warnings


def journal_option(func: Any) -> Any:
    return click.option(
        "--journal", "journal_option", metavar="PATH",
        help="The SQLite journal (default: $BATCHPAY_JOURNAL, else the user data directory).",
    )(func)  # fmt: skip


def open_journal(option: str | None) -> Journal:
    from ..journal.store import Journal

    path = journal_path(option, settings(), sandbox=False)
    if not path.exists():
        raise click.ClickException(f"no journal at {path}: nothing has been run with it yet")
    return Journal(path)


ca_bundle_option = click.option(
    "--ca-bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="BATCHPAY_CA_BUNDLE",
    help="Extra CA certificates (PEM) to trust. TLS verification cannot be turned off.",
)  # fmt: skip


def network_options(func: Any) -> Any:
    """The options of every command that talks to the gateway (run, reconcile)."""
    options = [
        click.option("--concurrency", type=click.IntRange(1, 1024), default=8,
                     show_default=True, help="Requests in flight at once."),
        click.option("--rate", type=click.FloatRange(min=0, min_open=True),
                     help="At most R requests a second."),
        click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
                     show_default=True, help="Seconds per attempt."),
        click.option("--max-attempts", type=click.IntRange(1, 100), default=5,
                     show_default=True, help="Attempts per row for retryable answers."),
        ca_bundle_option,
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def sheet_option(func: Any) -> Any:
    return click.option(
        "--sheet", metavar="NAME", help="Worksheet of a workbook (default: the first)."
    )(func)


def strict_duplicates_option(func: Any) -> Any:
    return click.option(
        "--strict-duplicates",
        is_flag=True,
        help="Make the same account number and amount twice an error, not a warning.",
    )(func)
