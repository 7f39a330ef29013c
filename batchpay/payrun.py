"""The whole job as a library: read -> validate -> plan in the journal -> send -> results.

cli.py parses options and calls these; tests and other programs can call them directly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from .accounts import adopt_accounts, forget_journal
from .aftersend import AFTER_SENDING_FAILURES, failed_after_sending, rows_as_far_as_known, watching
from .balance_check import check_balance
from .config import DEFAULT_MOBILE_PATTERN, Gateway, SendOptions
from .errors import (
    ConfigError,
    InvalidRowsError,
    RefusedError,
)
from .gateway.balance import BalanceReading
from .gateway.dispatch import Progress
from .gateway.sending import SendResult, StopCallback, send_to
from .journal.locks import batch_lock
from .journal.reads import BatchInfo
from .journal.rows import JournalRow, PlanRows, content_hash, json_lists
from .journal.store import Journal
from .outcomes import TO_SEND, Outcome, exit_code
from .problems import as_json, problem_lines, write_report
from .protection import hold_back_repeats, refuse_replacing_result
from .recover import refuse_if_run_before
from .result_target import check_output_path
from .results import ResultRow, default_output, summary_rows, write_results
from .sheets.load import Loaded, load
from .sheets.read import CANONICAL
from .signing import sign
from .summary import Summary, next_steps, summarize, this_run_note
from .team.audit import Actor
from .team.runs import RunControls

log = logging.getLogger("batchpay.payrun")


def sheet_rows(loaded: Loaded, notify_url: str | None) -> PlanRows:
    """The rows as the journal plans them. Without a default notify URL, every valid row
    must carry its own."""
    fields = loaded.validation.fields
    invalid = loaded.validation.invalid
    if notify_url is None:
        lacking = (fields["notifyUrl"] == "") & ~invalid
        if lacking.any():
            first = int(loaded.sheet.row_numbers[int(lacking.to_numpy().argmax())])
            raise ConfigError(
                f"{loaded.where}: {int(lacking.sum())} row(s) have no notifyUrl (first: row "
                f"{first}); set BATCHPAY_NOTIFY_URL or fill the column"
            )
    frame = loaded.sheet.frame
    texts = [frame.iloc[:, i].astype(str) for i in range(frame.shape[1])]
    cells = json_lists([pa.array(t, pa.string()) for t in texts], len(frame))
    return PlanRows(
        sheet_rows=np.asarray(loaded.sheet.row_numbers).tolist(),
        fields={name: pa.array(fields[name], pa.string()) for name in CANONICAL},
        amounts=np.asarray(loaded.validation.amounts).tolist(),
        valid=(~np.asarray(invalid, dtype=bool)).tolist(),
        cells=cells,
        errors=list(loaded.validation.row_errors),
    )


@dataclass
class Plan:
    batch_id: str
    rows: list[JournalRow]  # in file order
    earlier: BatchInfo | None = None  # the finished batch these rows were placed in before

    @property
    def to_send(self) -> list[JournalRow]:
        return [r for r in self.rows if r.outcome in TO_SEND]

    @property
    def already_placed(self) -> int:
        not_placed = TO_SEND | {Outcome.INVALID, Outcome.CANCELLED}
        return sum(1 for r in self.rows if r.outcome not in not_placed)


def check_expectations(
    rows: list[JournalRow], expect_count: int | None, expect_total: int | None
) -> None:
    count, total = len(rows), sum(r.amount for r in rows)
    if expect_count is not None and expect_count != count:
        raise RefusedError(
            f"refused: {count} rows to send, but --expect-count says {expect_count}; nothing sent"
        )
    if expect_total is not None and expect_total != total:
        raise RefusedError(
            f"refused: the rows to send total {total}, but --expect-total says {expect_total}; "
            "nothing sent"
        )


def dry_run_sign(gateway: Gateway, rows: list[JournalRow]) -> None:
    """Sign every row as a send would, so a dry run exercises everything but the network."""
    for row in rows:
        sign(
            row.fields,
            gateway.secret,
            skip_empty=gateway.protocol.sign_skip_empty,
            salt=gateway.protocol.sign_salt,
        )


def result_rows(loaded: Loaded, rows: list[JournalRow]) -> list[ResultRow]:
    errors = loaded.validation.row_errors
    return [
        ResultRow(None if row.outcome is Outcome.INVALID else row, errors[i])
        for i, row in enumerate(rows)
    ]


def reload(journal: Journal, plan: Plan) -> list[JournalRow]:
    """The plan's rows with their latest state (without their payout fields: the result file
    does not show them), in file order. The plan's own rows are let go first: a 100k-row
    batch need not be held twice."""
    order = [(row.position, row.sheet_row) for row in plan.rows]
    plan.rows = []
    latest = {row.position: row for row in journal.rows(plan.batch_id, fields=False)}
    fresh = []
    for position, sheet_row in order:
        current = latest.pop(position)
        current.sheet_row = sheet_row
        fresh.append(current)
    return fresh


NO_VALID_ROW = (
    "{where}: no valid row to send ({count} invalid); nothing was sent and no batch was made. "
    "Fix the rows and run again"
)


def require_valid(loaded: Loaded, skip_invalid: bool) -> None:
    validation = loaded.validation
    count = int(validation.invalid.sum())
    if validation.problems and not skip_invalid:
        raise InvalidRowsError(
            f"{loaded.where}: {count} invalid row(s); nothing was sent. Fix them, or pass "
            "--skip-invalid to send the valid rows only",
            problems=as_json(validation.problems),
        )
    if count and count == len(validation.fields):
        raise InvalidRowsError(
            NO_VALID_ROW.format(where=loaded.where, count=count),
            problems=as_json(validation.problems),
        )


@dataclass(frozen=True)
class RunRequest:
    """What ``batchpay run`` was asked to do."""

    file: Path
    output: Path
    journal: Path
    options: SendOptions
    # Where the payouts go: a GatewayConfig, or sandbox.InProcessSandbox for --sandbox.
    config: Gateway
    sheet: str | None = None
    mobile_pattern: str = DEFAULT_MOBILE_PATTERN
    dry_run: bool = False
    skip_invalid: bool = False
    expect_count: int | None = None
    expect_total: int | None = None
    strict_duplicates: bool = False
    # Plan a new batch for rows that an earlier, finished batch placed (next month's payroll
    # of the same people and amounts), and send rows another gateway account placed.
    pay_again: bool = False
    # The journal's batches from before accounts were recorded went to this run's account.
    confirm_account: bool = False
    # This run's gateway account is this account of the journal's at a new address.
    moved_from: str | None = None
    # The journal holds only this run: the in-process sandbox forgets its orders when the run
    # ends, so a journal that remembered them would report orders no gateway holds.
    ephemeral_journal: bool = False
    report: Path | None = None  # every problem and warning, one per cell (--report)
    refusal_report: Path | None = None  # the same, only when invalid rows refuse the run
    # The settings (the environment, the configuration file) that may tighten the journal's
    # policy; who sends (None: the operating-system user, marked as such).
    policy_env: Mapping[str, str] = field(default_factory=dict)
    sender: Actor | None = None
    stop: Callable[[], str | None] | None = None  # asked before each row: why to stop, or None


@dataclass(frozen=True)
class Confirmation:
    """What the person confirms: the rows to send, to which batch, and, for a batch paid again,
    the earlier batch that placed the same rows."""

    rows: list[JournalRow]
    batch_id: str
    earlier: BatchInfo | None = None
    balance: BalanceReading | None = None  # read just now, when BATCHPAY_BALANCE_URL is set


Confirm = Callable[[Confirmation], None]  # raises to refuse

NOTHING_SENT = (
    "nothing sent: every row was placed in batch {batch} on {date} ({rows} rows, total "
    "{total:,}); to pay them again (a new batch, new tradeNos): --pay-again"
)


def run_batch(
    request: RunRequest,
    confirm: Confirm,
    say: Callable[[str], None],
    on_progress: Callable[[Progress], None] | None = None,
    working: Callable[[str], AbstractContextManager[None]] = lambda text: nullcontext(),
    on_stop: StopCallback | None = None,
) -> Summary:
    """The whole job. ``say`` receives notes for the operator (problems, resumed rows);
    ``on_progress`` is told as rows are settled; ``working`` wraps the long quiet steps;
    ``on_stop`` is told what a SIGINT or SIGTERM while sending does.

    Every refusal comes before the confirmation. Once sending has started, a failure (a full
    disk under the journal or the result file) is not raised: the summary says what the
    journal knows, ``error`` what failed, and the exit code is 4."""
    started = time.monotonic()
    check_output_path(request.output)
    sending = False
    watched: list[Progress] = []
    with working(f"reading and validating {request.file}"):
        loaded = load(
            request.file,
            sheet=request.sheet,
            mobile_pattern=request.mobile_pattern,
            strict_duplicates=request.strict_duplicates,
        )
    for line in problem_lines(loaded.where, request.file, loaded.validation):
        say(line)
    if request.report is not None:
        write_report(request.report, loaded.validation)
        say(f"{loaded.where}: every problem and warning written to {request.report}")
    try:
        require_valid(loaded, request.skip_invalid)
    except InvalidRowsError:
        if request.refusal_report is not None:
            write_report(request.refusal_report, loaded.validation)
            say(f"{loaded.where}: what to fix is in {request.refusal_report}")
        raise
    gateway = request.config
    notify_url, account = gateway.notify_url, gateway.account
    rows = sheet_rows(loaded, notify_url)
    sent = SendResult()
    nothing_sent = False
    balance: BalanceReading | None = None
    digest = content_hash(rows)
    if request.ephemeral_journal:
        forget_journal(request.journal)
    with Journal(request.journal) as journal:
        adopt_accounts(journal, account, say, confirm_account=request.confirm_account,
                       moved_from=request.moved_from)  # fmt: skip
        if not gateway.in_process and journal.has_batch(digest, account) is None:
            # A batch new to this journal's account that an earlier run left traces of: the
            # journal was lost or moved, and planning it afresh would pay every row again.
            with working(f"looking for traces of an earlier run of batch {digest[:12]}"):
                outputs = [request.output, default_output(request.file)]
                refuse_if_run_before(
                    journal, digest[:12], outputs, account,
                    check_lock=journal.has_batch(digest) is None,
                )  # fmt: skip
        with working(f"planning {len(rows):,} rows in the journal"):
            planned = journal.plan(
                rows, source=str(request.file), account=account, notify_url=notify_url,
                headers=loaded.sheet.headers, pay_again=request.pay_again,
                allow_repeat=request.options.allow_repeat,
            )  # fmt: skip
        plan = Plan(planned.batch_id, planned.rows, planned.earlier)
        if planned.created:
            # The new batch's tradeNos into the main file before the first payout leaves: a
            # crash that then loses the -wal loses answers (re-sent under the same tradeNos,
            # which the gateway deduplicates), never the batch.
            journal.checkpoint()
        del rows, planned  # planned: the journal rows carry on
        with batch_lock(request.journal, plan.batch_id):
            placed = plan.already_placed
            if placed:
                say(
                    f"batch {plan.batch_id}: {placed} row(s) were already placed "
                    "and are not sent again"
                )
            if plan.earlier is not None and plan.earlier.batch_id == plan.batch_id:
                # Last month's file again: resuming would report last month's payouts as this
                # month's. Say so first and loudly; a person decides with --pay-again.
                nothing_sent, to_send = True, []
                earlier = plan.earlier
                say(NOTHING_SENT.format(batch=earlier.batch_id, date=earlier.date,
                                        rows=earlier.rows, total=earlier.total))  # fmt: skip
            else:
                to_send = hold_back_repeats(
                    journal, plan.batch_id, plan.to_send, request.options, say,
                    account=account, pay_again=request.pay_again,
                )  # fmt: skip
                check_expectations(to_send, request.expect_count, request.expect_total)
            team = RunControls.of(
                journal, request.policy_env, request.sender, batch_id=plan.batch_id,
                content_hash=digest, rows=plan.rows, account=account,
                practice=gateway.in_process, allow_repeat=request.options.allow_repeat,
                pay_again=request.pay_again,
            )  # fmt: skip
            team.check(plan.rows, to_send, sending=not request.dry_run)
            replacing = refuse_replacing_result(
                request.output, journal, plan.batch_id, plan.rows, plan.to_send, to_send,
                account=account, sandbox=gateway.in_process,
                window_hours=request.options.repeat_window_hours,
            )  # fmt: skip
            if replacing:
                say(replacing)
            try:
                if request.dry_run:
                    dry_run_sign(gateway, to_send)
                elif to_send:
                    balance = check_balance(gateway, request.options, to_send)
                    confirm(Confirmation(to_send, plan.batch_id, plan.earlier, balance))
                    team.start(to_send)
                    sending = True
                    sent = asyncio.run(
                        send_to(
                            gateway, request.options, journal, to_send,
                            watching(watched, on_progress), on_stop, team.watcher(request.stop),
                        )
                    )  # fmt: skip
                if sending:  # before reading the rows: a cancel made meanwhile cancels some
                    team.finish(stopped=sent.stopped, reason=sent.stop_reason)
                latest = reload(journal, plan)
                people = team.people()
                # Practice is marked as such: the in-process sandbox, or a gateway whose answers
                # said it is a sandbox, now or on an earlier run of this account.
                sandbox = gateway.in_process or journal.sandbox_account(account, seen=sent.sandbox)
            except AFTER_SENDING_FAILURES as exc:
                if not sending:
                    raise
                known = rows_as_far_as_known(journal, plan.batch_id)
                return failed_after_sending(request, plan.batch_id, exc, known, watched, started)
    counts, amounts = summarize(latest)
    if sent.abandoned:
        say("interrupted twice: the result file was not written; run again to resume")
    else:
        summary = summary_rows(
            plan.batch_id, str(request.file), request.journal, counts, amounts,
            # The Summary's sandbox row is evidence for later runs and `recover`: only the
            # in-process sandbox is sure to be one (a header anyone can send is not proof).
            dry_run=request.dry_run, account=account, sandbox=gateway.in_process,
            content_hash=digest, this_run=this_run_note(nothing_sent, plan.earlier),
            people=people,
        )  # fmt: skip
        try:
            # The in-process sandbox is known here; a sandbox in its own process (`batchpay
            # sandbox`) is to be recognized from its answers and passed the same way.
            write_results(request.output, loaded.sheet, result_rows(loaded, latest), summary,
                          sandbox=sandbox)  # fmt: skip
        except AFTER_SENDING_FAILURES as exc:
            if not sending:
                raise
            return failed_after_sending(request, plan.batch_id, exc, latest, watched, started)
    stopped = sent.stopped
    if request.dry_run:
        code = 1 if loaded.validation.problems else 0
    else:
        # A person's stop (a hold, a cancel) is told by the rows it leaves: pending ones (held)
        # exit 4; cancelled ones do not.
        code = exit_code((r.outcome for r in latest), stopped=stopped and not sent.halted)
    return Summary(
        batch_id=plan.batch_id, source=str(request.file),
        result_file="" if sent.abandoned else str(request.output), journal=str(request.journal),
        counts=counts, amounts=amounts, requests=sent.requests,
        seconds=time.monotonic() - started, exit_code=code, dry_run=request.dry_run,
        stopped=stopped, stop_reason=sent.stop_reason,
        next_steps=[] if request.dry_run else next_steps(counts, fix_first=sent.systemic),
        account=account, sandbox=sandbox,
        nothing_sent=nothing_sent, earlier=plan.earlier,
        balance=None if balance is None else balance.as_json(),
        unknown_trade_nos=[r.trade_no for r in latest
                           if r.outcome is Outcome.UNKNOWN and r.trade_no],
    )  # fmt: skip
