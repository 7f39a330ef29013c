"""The commands that read a payroll file: validate, and run (plan, confirm, send, write)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click

from ..config import (
    Gateway,
    SendOptions,
    gateway_from_env,
    journal_path,
    mobile_pattern,
    protocol_from_env,
)
from ..errors import DeclinedError, RefusedError
from . import options
from .console import (
    progress_display,
    show_progress,
    show_summary,
    stop_message,
    working,
)

if TYPE_CHECKING:  # the sheet and sending libraries load only for the commands that use them
    from ..gateway.sending import StopNotice
    from ..payrun import Confirmation, RunRequest
    from ..summary import Summary
    from ..team.audit import Actor

from .options import sheet_option, strict_duplicates_option
from .signin import Secrets, as_option, sign_in

NO_TERMINAL = (
    "refused: no terminal to confirm on; check the count and total, then pass --yes "
    "(and --expect-count/--expect-total to guard a scheduled run). Nothing was sent"
)


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@sheet_option
@strict_duplicates_option
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write every problem to this spreadsheet (.xlsx or .csv).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the problems as one JSON object.")
def validate(
    file: Path, sheet: str | None, strict_duplicates: bool, report: Path | None, as_json: bool
) -> None:
    """Read and validate FILE; print every problem by sheet row and column. Sends nothing.

    Exit code 0 when every row is valid (warnings allowed), 1 otherwise.

    \b
    Example:
        batchpay validate samples/payroll-with-errors.csv --report problems.xlsx
    """
    from ..problems import as_json as problems_json
    from ..problems import problem_lines, write_report
    from ..sheets.load import load

    quiet = options.root_options().quiet
    with working(show_progress(quiet), f"reading and validating {file}"):
        loaded = load(
            file,
            sheet=sheet,
            mobile_pattern=mobile_pattern(options.settings()),
            strict_duplicates=strict_duplicates,
        )
    v = loaded.validation
    total = int(v.amounts.sum())
    if report:
        write_report(report, v)
    if as_json:
        document = {
            "file": loaded.where, "rows": len(v.fields), "valid": v.valid_count,
            "invalid": len(v.fields) - v.valid_count, "total_valid_amount": total,
            "problems": problems_json(v.problems), "warnings": problems_json(v.warnings),
            "notes": v.notes,
        }  # fmt: skip
        click.echo(json.dumps(document, ensure_ascii=False))
    else:
        for line in problem_lines(loaded.where, file, v):
            click.echo(line)
        warned = f", {len(v.warnings)} warning(s)" if v.warnings else ""
        click.echo(
            f"{loaded.where}: {len(v.fields)} rows, {v.valid_count} valid, "
            f"{len(v.fields) - v.valid_count} invalid{warned}; valid rows total {total:,}"
            + (f"; problems written to {report}" if report else "")
        )
    sys.exit(1 if v.problems else 0)


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="Result file (.xlsx or .csv)."
)
@click.option("--dry-run", is_flag=True, help="Validate, assign tradeNos and sign; send nothing.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask to confirm the count and total.")
@click.option(
    "--expect-count",
    type=click.IntRange(min=0),
    help="Refuse unless this many rows are to be sent.",
)
@click.option(
    "--expect-total", type=click.IntRange(min=0), help="Refuse unless the rows to send total this."
)
@click.option(
    "--skip-invalid", is_flag=True, help="Send the valid rows even when some are invalid."
)
@sheet_option
@strict_duplicates_option
@options.network_options
@click.option(
    "--stop-after-refusals",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Stop after this many refusals in a row (0: never).",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds requests in flight get to finish after Ctrl-C.",
)
@click.option(
    "--repeat-window",
    type=click.FloatRange(min=0),
    default=72.0,
    show_default=True,
    metavar="HOURS",
    help="Hold back rows another batch placed within this many hours.",
)
@click.option("--allow-repeat", is_flag=True, help="Send rows even when another batch placed them.")
@click.option(
    "--pay-again",
    is_flag=True,
    help="Rows an earlier, finished batch placed (last month's file): pay them again as a new "
    "batch with new tradeNos.",
)
@click.option(
    "--confirm-account",
    is_flag=True,
    help="The journal's batches from before accounts were recorded went to this gateway "
    "account (asked once after an upgrade).",
)
@click.option(
    "--gateway-moved-from",
    metavar="ACCOUNT",
    help="This gateway account is ACCOUNT (merchant@scheme://host:port, as `status` shows it) "
    "at a new address: its batches move here and resume.",
)
@click.option("--journal", "journal_option", metavar="PATH", help="The SQLite journal.")
@click.option("--sandbox", is_flag=True, help="Use the built-in simulated gateway (own journal).")
@click.option(
    "--archive",
    type=click.Path(file_okay=False, path_type=Path),
    help="With a folder: move each finished file and its result here.",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write every problem and warning to this spreadsheet (.xlsx or .csv).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the final summary as one JSON object.")
@as_option("Who sends (a preparer, approver or admin of the journal); without it, the "
           "operating-system user, recorded as such.")  # fmt: skip
def run(
    file: Path,
    output: Path | None,
    dry_run: bool,
    yes: bool,
    expect_count: int | None,
    expect_total: int | None,
    skip_invalid: bool,
    sheet: str | None,
    strict_duplicates: bool,
    concurrency: int,
    rate: float | None,
    timeout: float,
    max_attempts: int,
    stop_after_refusals: int,
    grace: float,
    ca_bundle: Path | None,
    repeat_window: float,
    allow_repeat: bool,
    pay_again: bool,
    confirm_account: bool,
    gateway_moved_from: str | None,
    journal_option: str | None,
    sandbox: bool,
    archive: Path | None,
    report: Path | None,
    as_json: bool,
    as_user: str | None,
    password_stdin: bool,
) -> None:
    """Validate FILE, confirm the count and total, send one payout per row, write the results.

    Re-running the same file is always safe: rows already placed are reported, not sent again.
    FILE may be a folder: each spreadsheet in it is sent in turn (for cron; with --archive,
    finished ones move there with their result).

    \b
    Example:
        batchpay run samples/payroll.xlsx --sandbox --yes
        batchpay run payroll.xlsx --expect-count 120 --expect-total 1530000 --yes
        batchpay run /srv/payroll/inbox --archive /srv/payroll/done --yes
    """
    from ..folder import run_folder
    from ..payrun import RunRequest, run_batch
    from ..results import default_output

    env = options.settings()
    protocol = protocol_from_env(env)
    gateway: Gateway
    if sandbox:
        from ..sandbox.server import InProcessSandbox

        gateway, target = InProcessSandbox(protocol), "the sandbox gateway"
    else:
        config = gateway_from_env(env)  # settings first: exit 2, nothing read
        options.warn_about_secret_file(env)
        gateway, target = config, urlsplit(config.payout_url).netloc
    request = RunRequest(
        file=file,
        output=output or default_output(file),
        journal=journal_path(journal_option, env, sandbox=sandbox),
        options=SendOptions(
            concurrency=concurrency,
            rate=rate,
            timeout=timeout,
            max_attempts=max_attempts,
            stop_after_refusals=stop_after_refusals,
            grace=grace,
            ca_bundle=ca_bundle,
            repeat_window_hours=repeat_window,
            allow_repeat=allow_repeat,
        ),
        config=gateway,
        sheet=sheet,
        mobile_pattern=mobile_pattern(env),
        dry_run=dry_run,
        skip_invalid=skip_invalid,
        expect_count=expect_count,
        expect_total=expect_total,
        strict_duplicates=strict_duplicates,
        pay_again=pay_again,
        confirm_account=confirm_account,
        moved_from=gateway_moved_from,
        # The in-process sandbox forgets its orders at the end of the run: so does its journal.
        ephemeral_journal=sandbox and not journal_option,
        report=report,
        policy_env=env,
        sender=sender(journal_path(journal_option, env, sandbox=sandbox), as_user, password_stdin),
    )
    quiet = options.root_options().quiet

    def one(request: RunRequest) -> Summary:
        if sandbox:  # each file of a folder is a run of its own, on a sandbox of its own
            request = dataclasses.replace(request, config=InProcessSandbox(protocol))

        def ask(confirmation: Confirmation) -> None:
            confirm(confirmation, f"{request.file} (batch {confirmation.batch_id})", target,
                    yes=yes, quiet=quiet)  # fmt: skip

        show = show_progress(quiet)
        with progress_display(show) as display:

            def stopping(notice: StopNotice) -> None:
                if not quiet:
                    display.say(stop_message(notice))

            return run_batch(
                request, ask, display.say, display.update,
                working=lambda text: working(show, text), on_stop=stopping,
            )  # fmt: skip

    if file.is_dir():
        if sandbox and archive:
            # Practice must not empty the real inbox: the real run would find nothing waiting.
            raise click.UsageError(
                "--archive moves the files away: with --sandbox nothing was paid, so nothing is "
                "archived; leave out --archive to practise on a folder"
            )
        if output or report:
            raise click.UsageError(
                "-o and --report name one file; a folder's results and problem reports go "
                "beside each file"
            )
        done = run_folder(
            file, archive, request, one,
            say=lambda line: click.echo(f"batchpay: {line}", err=True),
            on_summary=lambda summary: None if as_json else show_summary(summary, False),
        )  # fmt: skip
        if as_json:
            click.echo(json.dumps(done.as_json(), ensure_ascii=False))
        elif not done.reports:
            click.echo(f"{file}: no spreadsheet waiting")
        sys.exit(done.exit_code)
    summary = one(request)
    show_summary(summary, as_json)
    sys.exit(summary.exit_code)


def confirm(
    confirmation: Confirmation, source: str, target: str, *, yes: bool, quiet: bool = False
) -> None:
    from ..balance_check import amount_text

    rows, earlier, balance = confirmation.rows, confirmation.earlier, confirmation.balance
    total = sum(r.amount for r in rows)
    # The balance beside the total it must cover, also under --yes: a log shows what it was.
    funds = ""
    if balance is not None and balance.available is not None:
        frozen = "" if balance.frozen is None else f", {amount_text(balance.frozen)} frozen"
        funds = f" (available balance {amount_text(balance.available)}{frozen})"
    question = f"Send {len(rows)} payout(s) totalling {total:,}{funds} from {source} to {target}?"
    if earlier is not None:
        # --pay-again: the person sees what was paid before, and when, as they decide.
        click.echo(
            f"These rows were placed before in batch {earlier.batch_id} on {earlier.date} "
            f"({earlier.rows} rows, total {earlier.total:,}); this pays them again.",
            err=True,
        )
    if yes:
        if funds and not quiet:
            click.echo(f"sending {len(rows)} payout(s) totalling {total:,}{funds}", err=True)
        return
    if not sys.stdin.isatty():
        raise RefusedError(NO_TERMINAL)
    if not click.confirm(question, default=False, err=True):
        raise DeclinedError("you answered no at the confirmation; nothing was sent")


def sender(journal: Path, as_user: str | None, password_stdin: bool) -> Actor | None:
    """The user named with --as, signed in (and allowed to send), or None: the OS user."""
    if as_user is None:
        return None
    from ..journal.store import Journal
    from ..team.auth import require_role
    from ..team.life import SENDERS

    with Journal(journal) as opened:
        user = sign_in(opened, as_user, Secrets(password_stdin))
        require_role(user, *SENDERS)
        return user.actor
