"""The command line: parse options, build settings, call the library, map errors to exit codes."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from .. import settings_file
from ..errors import BatchpayError, mapped
from . import batches, life, options, serve, team, web
from . import run as run_commands
from .audit import audit_command
from .config import config_group
from .console import (
    configure_logging,
)


class UserError(click.ClickException):
    """A BatchpayError shown as one line, with the error's own exit code."""

    def __init__(self, error: BatchpayError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code  # type: ignore[misc]
        self.label = error.label

    def show(self, file: Any = None) -> None:
        click.echo(f"batchpay: {self.label}: {self.format_message()}", err=True)


class Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            # The library maps the errors of its journal and files where they arise; this
            # catches any the library missed, so that no command ever ends in a traceback.
            with mapped(BatchpayError, "failed"):
                return super().invoke(ctx)
        except BatchpayError as exc:
            raise UserError(exc) from None


@click.group(cls=Group)
@click.version_option(package_name="batchpay", prog_name="batchpay")
@click.option("-v", "--verbose", count=True, help="Log each request to stderr (-vv: more).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr; no progress display.")
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also log every event to this file (owner-only), whatever -v and -q say.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one object per line, with batch, tradeNo and outcome as fields.",
)
@click.option(
    "--config",
    "config_file",
    envvar="BATCHPAY_CONFIG",
    metavar="PATH",
    help="Configuration file (TOML). Default: $BATCHPAY_CONFIG, else config.toml in your "
    "user configuration directory when it exists.",
)
@click.option(
    "--profile",
    envvar="BATCHPAY_PROFILE",
    metavar="NAME",
    help="Use the [profile.NAME] table of the configuration file ($BATCHPAY_PROFILE).",
)
@click.pass_context
def cli(
    ctx: click.Context,
    verbose: int,
    quiet: bool,
    log_file: Path | None,
    log_format: str,
    config_file: str | None,
    profile: str | None,
) -> None:
    """Pay many beneficiaries at once from a payroll spreadsheet through the Vexora gateway.

    \b
    Example:
        batchpay run samples/payroll.xlsx --sandbox --yes
    """
    configure_logging(verbose, quiet, log_file, log_format)
    path, asked = settings_file.config_path(config_file)
    try:
        from_file = settings_file.load(path, asked, profile)
    except BatchpayError as exc:
        raise UserError(exc) from None
    environ = os.environ  # the one place the command line reads the environment
    ctx.obj = options.Root(
        environ=environ, env=settings_file.effective(from_file, environ), from_file=from_file,
        config_file=path, profile=profile, quiet=quiet, verbose=verbose, log_file=log_file,
        log_format=log_format,
    )  # fmt: skip


for command in (
    run_commands.validate,
    run_commands.run,
    batches.status,
    batches.report,
    batches.reconcile_command,
    batches.recover_command,
    serve.listen,
    serve.sandbox_command,
    serve.template,
    web.serve_command,
    config_group,
    team.user_group,
    team.policy_group,
    audit_command,
    life.submit_command,
    life.approve_command,
    life.reject_command,
    life.hold_command,
    life.release_command,
    life.cancel_command,
):
    cli.add_command(command)


def _late_verbosity(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """-q and -v typed after the command (`batchpay run x -q`), as people type them."""
    root = ctx.find_object(options.Root)
    if not value or root is None:
        return
    if param.name == "late_quiet":
        root.quiet = True
    else:
        root.verbose = max(root.verbose, value)
    configure_logging(root.verbose, root.quiet, root.log_file, root.log_format)


def _accept_verbosity_anywhere(group: click.Group) -> None:
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _accept_verbosity_anywhere(command)
            continue
        command.params += [
            click.Option(["-v", "--verbose", "late_verbose"], count=True, expose_value=False,
                         callback=_late_verbosity, help="As before the command: log each "
                         "request (-vv more)."),
            click.Option(["-q", "--quiet", "late_quiet"], is_flag=True, expose_value=False,
                         callback=_late_verbosity, help="As before the command: only errors."),
        ]  # fmt: skip


_accept_verbosity_anywhere(cli)


def main() -> None:
    try:
        cli(prog_name="batchpay")
    except KeyboardInterrupt:
        # Before sending starts (sending handles its own signals): nothing was sent.
        click.echo("batchpay: interrupted", err=True)
        sys.exit(4)
