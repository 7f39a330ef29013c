"""The whole job as a library: read -> validate -> plan in the journal -> send -> results.

cli.py parses options and calls these; tests and other programs can call them directly.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import (
    DEFAULT_MOBILE_PATTERN,
    IN_PROCESS,
    SANDBOX_MERCHANT_NO,
    GatewayConfig,
    Protocol,
    SendOptions,
)
from .dispatch import Progress
from .errors import ConfigError, InvalidRowsError, RefusedError
from .journal import BatchInfo, Journal
from .journal_rows import JournalRow, SheetRow
from .outcomes import TO_SEND, Outcome, exit_code
from .protection import batch_lock, hold_back_repeats
from .results import ResultRow, Table, summary_rows, write_results, write_tables
from .sending import SANDBOX_NOTIFY_URL, SendResult, send_to
from .sheet import CANONICAL, Sheet, read_sheet
from .signing import sign
from .validate import Problem, Validation, validate


@dataclass
class Loaded:
    sheet: Sheet
    validation: Validation

    @property
    def where(self) -> str:
        return self.sheet.where


def load(
    path: Path, *, sheet: str | None, mobile_pattern: str, strict_duplicates: bool = False
) -> Loaded:
    loaded_sheet = read_sheet(path, sheet=sheet)
    validation = validate(loaded_sheet, mobile_pattern, strict_duplicates=strict_duplicates)
    return Loaded(loaded_sheet, validation)


def sheet_rows(loaded: Loaded, notify_url: str | None) -> list[SheetRow]:
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
    records: list[dict[str, str]] = fields[list(CANONICAL)].to_dict("records")  # type: ignore[assignment]
    cells = loaded.sheet.frame.astype(str).to_numpy().tolist()
    rows = []
    for position, record in enumerate(records):
        valid = not bool(invalid[position])
        rows.append(
            SheetRow(
                sheet_row=int(loaded.sheet.row_numbers[position]),
                fields=record,
                amount=int(loaded.validation.amounts[position]),
                valid=valid,
                cells=cells[position],
                errors=loaded.validation.row_errors[position],
            )
        )
    return rows


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
        return sum(1 for r in self.rows if r.outcome not in TO_SEND | {Outcome.INVALID})


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


def dry_run_sign(config: GatewayConfig, rows: list[JournalRow]) -> None:
    """Sign every row as a send would, so a dry run exercises everything but the network."""
    for row in rows:
        sign(row.fields, config.secret, skip_empty=config.protocol.sign_skip_empty)


@dataclass
class Summary:
    batch_id: str
    source: str
    result_file: str
    journal: str
    counts: dict[str, int]
    amounts: dict[str, int]
    requests: int = 0
    seconds: float = 0.0
    exit_code: int = 0
    dry_run: bool = False
    stopped: bool = False
    stop_reason: str = ""
    next_step: str = ""
    account: str = ""
    # Every row was placed in an earlier batch and --pay-again was not given: nothing sent.
    nothing_sent: bool = False
    earlier: BatchInfo | None = None

    def as_json(self) -> dict[str, Any]:
        earlier = self.earlier
        return {
            "batch": self.batch_id, "source": self.source, "result_file": self.result_file,
            "journal": self.journal, "counts": self.counts, "amounts": self.amounts,
            "requests": self.requests, "seconds": round(self.seconds, 3),
            "exit_code": self.exit_code, "dry_run": self.dry_run, "stopped": self.stopped,
            "stop_reason": self.stop_reason, "next_step": self.next_step,
            "account": self.account, "nothing_sent": self.nothing_sent,
            "earlier_batch": None if earlier is None else {
                "batch": earlier.batch_id, "created_at": earlier.created_at,
                "rows": earlier.rows, "total": earlier.total,
            },
        }  # fmt: skip


def summarize(rows: list[JournalRow]) -> tuple[dict[str, int], dict[str, int]]:
    counts: Counter[str] = Counter()
    amounts: Counter[str] = Counter()
    for row in rows:
        counts[row.outcome.value] += 1
        amounts[row.outcome.value] += row.amount
    order = [o.value for o in Outcome]
    return (
        {k: counts[k] for k in order if counts[k]},
        {k: amounts[k] for k in order if counts[k]},
    )


def next_step(counts: dict[str, int]) -> str:
    if counts.get("pending"):
        return f"run the same command again to send the {counts['pending']} pending row(s)"
    if counts.get("unknown"):
        return (
            f"{counts['unknown']} row(s) are unknown: do not pay them by hand; run the same "
            "command again (it asks the gateway first) or check them with the gateway"
        )
    if counts.get("rejected") or counts.get("failed"):
        return "see the msg and message columns of the rejected and failed rows"
    return ""


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


def require_valid(loaded: Loaded, skip_invalid: bool) -> None:
    if loaded.validation.problems and not skip_invalid:
        count = int(loaded.validation.invalid.sum())
        raise InvalidRowsError(
            f"{loaded.where}: {count} invalid row(s); nothing was sent. Fix them, or pass "
            "--skip-invalid to send the valid rows only"
        )


SHOWN_IN_FULL = 10  # up to this many problems are listed one by one
FIRST_OF_EACH = 3  # beyond that, each kind of problem shows its first rows


def problem_lines(loaded: Loaded) -> list[str]:
    """Notes about the file, then the errors and warnings: each one when there are few,
    grouped by column and rule with the first rows of each when there are many."""
    v = loaded.validation
    problems = sorted([*v.problems, *v.warnings], key=lambda p: p.row)
    lines = list(v.notes)
    if len(problems) <= SHOWN_IN_FULL:
        return lines + [f"{loaded.where}: {p.describe()}" for p in problems]
    groups: dict[tuple[str, str, str], list[Problem]] = {}
    for problem in problems:
        groups.setdefault((problem.severity, problem.column, problem.rule), []).append(problem)
    for (severity, column, rule), members in groups.items():
        kind = "warning" if severity == "warning" else "error"
        lines.append(f"{loaded.where}: {len(members)} row(s), column {column!r} ({kind}): {rule}")
        lines += [f"  {p.describe()}" for p in members[:FIRST_OF_EACH]]
        if len(members) > FIRST_OF_EACH:
            lines.append(f"  ... and {len(members) - FIRST_OF_EACH} more")
    lines.append(
        f"{loaded.where}: the full list: batchpay validate {loaded.sheet.path} --report FILE"
    )
    return lines


def write_report(path: Path, loaded: Loaded) -> None:
    """The full problem list as a spreadsheet (.xlsx or .csv)."""
    v = loaded.validation
    problems = sorted([*v.problems, *v.warnings], key=lambda p: p.row)
    rows = [["", "", "", "note", note] for note in v.notes]
    rows += [[str(p.row), p.column, p.value, p.severity, p.rule] for p in problems]
    header = ["row", "column", "value", "severity", "problem"]
    write_tables(path, [Table("Problems", header, iter(rows))])


@dataclass(frozen=True)
class RunRequest:
    """What ``batchpay run`` was asked to do."""

    file: Path
    output: Path
    journal: Path
    options: SendOptions
    protocol: Protocol
    config: GatewayConfig | None  # None: the in-process sandbox
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


@dataclass(frozen=True)
class Confirmation:
    """What the person confirms: the rows to send, to which batch, and, for a batch paid again,
    the earlier batch that placed the same rows."""

    rows: list[JournalRow]
    batch_id: str
    earlier: BatchInfo | None = None


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
) -> Summary:
    """The whole job. ``say`` receives notes for the operator (problems, resumed rows);
    ``on_progress`` is told as rows are settled; ``working`` wraps the long quiet steps."""
    started = time.monotonic()
    with working(f"reading and validating {request.file}"):
        loaded = load(
            request.file,
            sheet=request.sheet,
            mobile_pattern=request.mobile_pattern,
            strict_duplicates=request.strict_duplicates,
        )
    for line in problem_lines(loaded):
        say(line)
    require_valid(loaded, request.skip_invalid)
    config = request.config
    notify_url = SANDBOX_NOTIFY_URL if config is None else config.notify_url
    account = in_process_account() if config is None else config.account
    rows = sheet_rows(loaded, notify_url)
    sent = SendResult()
    nothing_sent = False
    if request.ephemeral_journal:
        forget_journal(request.journal)
    with Journal(request.journal) as journal:
        adopt_accounts(journal, request, account, say)
        with working(f"planning {len(rows):,} rows in the journal"):
            planned = journal.plan(
                rows, source=str(request.file), account=account, notify_url=notify_url,
                headers=loaded.sheet.headers, pay_again=request.pay_again,
            )  # fmt: skip
        plan = Plan(planned.batch_id, planned.rows, planned.earlier)
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
            if request.dry_run:
                dry_run_sign(config or GatewayConfig("", "", secrets.token_hex(8)), to_send)
            elif to_send:
                confirm(Confirmation(to_send, plan.batch_id, plan.earlier))
                sent = asyncio.run(
                    send_to(
                        config, request.protocol, request.options, journal, to_send, on_progress
                    )
                )
            latest = reload(journal, plan)
    counts, amounts = summarize(latest)
    if sent.abandoned:
        say("interrupted twice: the result file was not written; run again to resume")
    else:
        summary = summary_rows(plan.batch_id, str(request.file), request.journal, counts,
                               amounts, dry_run=request.dry_run)  # fmt: skip
        # The in-process sandbox is known here; a sandbox in its own process (`batchpay
        # sandbox`) is to be recognized from its answers and passed the same way.
        write_results(request.output, loaded.sheet, result_rows(loaded, latest), summary,
                      sandbox=request.config is None)  # fmt: skip
    stopped = sent.stopped
    if request.dry_run:
        code = 1 if loaded.validation.problems else 0
    else:
        code = exit_code((r.outcome for r in latest), stopped=stopped)
    return Summary(
        batch_id=plan.batch_id, source=str(request.file),
        result_file="" if sent.abandoned else str(request.output), journal=str(request.journal),
        counts=counts, amounts=amounts, requests=sent.requests,
        seconds=time.monotonic() - started, exit_code=code, dry_run=request.dry_run,
        stopped=stopped, stop_reason=sent.stop_reason,
        next_step="" if request.dry_run else next_step(counts), account=account,
        nothing_sent=nothing_sent, earlier=plan.earlier,
    )  # fmt: skip


def in_process_account() -> str:
    """The in-process sandbox's account: a gateway that lives for one run, so each run's is
    another account, and no later run can mistake its orders for any gateway's."""
    return f"{SANDBOX_MERCHANT_NO}{IN_PROCESS}{secrets.token_hex(4)}"


def forget_journal(path: Path) -> None:
    """Remove a journal and its companions (the in-process sandbox's, before each run)."""
    for companion in ("", "-wal", "-shm"):
        path.with_name(path.name + companion).unlink(missing_ok=True)
    shutil.rmtree(path.with_name(path.name + ".locks"), ignore_errors=True)


MOVED_FROM_UNKNOWN = (
    "--gateway-moved-from {old}: the journal {path} has no batches of that account; the "
    "accounts it has: {known}"
)


def adopt_accounts(
    journal: Journal, request: RunRequest, account: str, say: Callable[[str], None]
) -> None:
    """Apply what the person said about the journal's accounts, before anything is planned."""
    if request.confirm_account and journal.unrecorded_batches():
        moved = journal.move_account(None, account, "run --confirm-account")
        say(f"{moved} batch(es) made before accounts were recorded are now {account}'s")
    if request.moved_from and request.moved_from != account:
        known = journal.accounts()
        if request.moved_from not in known:
            raise ConfigError(
                MOVED_FROM_UNKNOWN.format(old=request.moved_from, path=journal.path,
                                          known=", ".join(known) or "none")
            )  # fmt: skip
        moved = journal.move_account(request.moved_from, account, "run --gateway-moved-from")
        say(f"{moved} batch(es) of {request.moved_from} are now {account}'s (the same gateway "
            "at a new address; recorded in the journal)")  # fmt: skip
