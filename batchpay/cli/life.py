"""The batch's life at the command line: ``submit``, ``approve``, ``reject``, ``hold``,
``release``, ``cancel``. Each signs the user in (``--as``), and the library
(``batchpay.team.life``) decides, changes and audits; this module only prints."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import options
from .options import journal_option, open_journal, settings, sheet_option
from .signin import Secrets, as_option, sign_in

if TYPE_CHECKING:
    from ..journal.store import Journal
    from ..team.users import User


def _head(journal: Journal) -> str:
    from ..team.audit import audit_head, head_text

    return head_text(audit_head(journal))


@click.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@as_option("Who submits (a preparer or an admin).", required=True)
@sheet_option
@options.strict_duplicates_option
@click.option(
    "--pay-again",
    is_flag=True,
    help="Submit a new batch for rows an earlier, finished batch placed.",
)
@journal_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def submit_command(
    file: Path, as_user: str, password_stdin: bool, sheet: str | None, strict_duplicates: bool,
    pay_again: bool, journal_option: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Read, validate and plan FILE as a batch (nothing is sent) and submit it for approval. A
    file with invalid rows cannot be submitted.

    \b
    Example:
        batchpay submit payroll.xlsx --as bob
    """
    from ..config import gateway_account, mobile_pattern
    from ..errors import ConfigError
    from ..team.policy import effective_policy
    from ..team.submitting import Submission, submit_file

    env = settings()
    missing = [n for n in ("BATCHPAY_URL", "BATCHPAY_MERCHANT_NO") if not env.get(n)]
    if missing:
        raise ConfigError(f"missing setting(s): {', '.join(missing)} (the gateway the batch "
                          "will be paid through)")  # fmt: skip
    what = Submission(
        file, gateway_account(env["BATCHPAY_MERCHANT_NO"].strip(), env["BATCHPAY_URL"].strip()),
        env.get("BATCHPAY_NOTIFY_URL") or None, sheet=sheet, mobile_pattern=mobile_pattern(env),
        strict_duplicates=strict_duplicates, pay_again=pay_again,
    )  # fmt: skip
    from .team import journal_for_writing

    with journal_for_writing(journal_option) as journal:
        user = sign_in(journal, as_user, Secrets(password_stdin))
        done = submit_file(journal, user, what, effective_policy(journal, env))
        content = done.content
        if as_json:
            click.echo(json.dumps({
                "batch": content.batch_id, "state": done.record.state, "rows": content.row_count,
                "total": content.total, "approvals_needed": done.approvals_needed,
                "submitter": user.name,
            }))  # fmt: skip
            return
        click.echo(f"submitted batch {content.batch_id}: {content.row_count} rows, total "
                   f"{content.total:,}; it needs {done.approvals_needed} approval(s)")  # fmt: skip
        click.echo(_head(journal))


def _act(
    batch: str, as_user: str, password_stdin: bool, journal_option: str | None,
    act: Callable[[Journal, User, str], Any], done: str,
) -> None:  # fmt: skip
    from ..reporting import require_batch

    with open_journal(journal_option) as journal:
        batch_id = require_batch(journal, batch)
        user = sign_in(journal, as_user, Secrets(password_stdin))
        record = act(journal, user, batch_id)
        click.echo(done.format(batch=batch_id, state=record.state, user=user.name))
        click.echo(_head(journal))


@click.command("approve")
@click.argument("batch")
@as_option("Who approves (an approver or an admin, never the submitter).", required=True)
@journal_option
def approve_command(
    batch: str, as_user: str, password_stdin: bool, journal_option: str | None
) -> None:
    """Approve submitted BATCH (an id or a unique prefix). It is bound to the batch's rows as
    they are: a changed file is another batch, which needs its own approvals.

    \b
    Example:
        batchpay approve 3f2a9c --as carol
    """
    from ..team.life import approve, journal_content
    from ..team.policy import effective_policy

    env = settings()
    counted: list[tuple[int, int]] = []

    def act(journal: Journal, user: User, batch_id: str) -> Any:
        record, have, needed = approve(
            journal, user, journal_content(journal, batch_id), effective_policy(journal, env)
        )
        counted.append((have, needed))
        return record

    _act(batch, as_user, password_stdin, journal_option, act,
         "{user} approved batch {batch}: now {state}")  # fmt: skip
    have, needed = counted[0]
    click.echo(f"approvals: {have} of the {needed} it needs")


@click.command("reject")
@click.argument("batch")
@as_option("Who rejects (an approver or an admin).", required=True)
@click.option("--reason", required=True, help="Why: the preparer reads it.")
@journal_option
def reject_command(
    batch: str, as_user: str, password_stdin: bool, reason: str, journal_option: str | None
) -> None:
    """Reject submitted BATCH, with a reason; nothing of it is sent. Fixed, the file is
    submitted again.

    \b
    Example:
        batchpay reject 3f2a9c --as carol --reason "row 12 is last month's rate"
    """
    from ..team.life import reject

    _act(batch, as_user, password_stdin, journal_option,
         lambda journal, user, batch_id: reject(journal, user, batch_id, reason),
         "{user} rejected batch {batch}")  # fmt: skip


@click.command("hold")
@click.argument("batch")
@as_option("An admin's name.", required=True)
@click.option("--reason", default="", help="Why, for the record.")
@journal_option
def hold_command(
    batch: str, as_user: str, password_stdin: bool, reason: str, journal_option: str | None
) -> None:
    """Hold BATCH: nothing of it is sent until an admin releases it. A process sending it
    stops before its next row.

    \b
    Example:
        batchpay hold 3f2a9c --as alice --reason "bank asked us to wait"
    """
    from ..team.life import hold, journal_content

    _act(batch, as_user, password_stdin, journal_option,
         lambda journal, user, batch_id: hold(journal, user, journal_content(journal, batch_id),
                                              reason),
         "{user} held batch {batch}")  # fmt: skip


@click.command("release")
@click.argument("batch")
@as_option("An admin's name.", required=True)
@journal_option
def release_command(
    batch: str, as_user: str, password_stdin: bool, journal_option: str | None
) -> None:
    """Release held BATCH: it returns to the state it was held in.

    \b
    Example:
        batchpay release 3f2a9c --as alice
    """
    from ..team.life import release

    _act(batch, as_user, password_stdin, journal_option,
         lambda journal, user, batch_id: release(journal, user, batch_id),
         "{user} released batch {batch}: now {state}")  # fmt: skip


@click.command("cancel")
@click.argument("batch")
@as_option("An admin's name.", required=True)
@click.option("--reason", default="", help="Why, for the record.")
@journal_option
def cancel_command(
    batch: str, as_user: str, password_stdin: bool, reason: str, journal_option: str | None
) -> None:
    """Cancel BATCH for good: its rows not sent become `cancelled` and are never sent; rows
    placed stay as they are, and unknown ones are still reconciled. A process sending it
    stops before its next row.

    \b
    Example:
        batchpay cancel 3f2a9c --as alice --reason "paid by bank transfer instead"
    """
    from ..team.life import cancel, journal_content

    _act(batch, as_user, password_stdin, journal_option,
         lambda journal, user, batch_id: cancel(journal, user,
                                                journal_content(journal, batch_id), reason),
         "{user} cancelled batch {batch}")  # fmt: skip
