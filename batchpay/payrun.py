"""The whole job as a library: read -> validate -> plan in the journal -> send -> results.

cli.py parses options and calls these; tests and other programs can call them directly.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import (
    DEFAULT_MOBILE_PATTERN,
    GatewayConfig,
    Protocol,
    SendOptions,
)
from .dispatch import Progress
from .errors import ConfigError, InvalidRowsError, RefusedError
from .journal import Journal
from .journal_rows import JournalRow, SheetRow
from .outcomes import TO_SEND, Outcome, exit_code
from .protection import batch_lock, hold_back_repeats
from .results import ResultRow, Table, summary_rows, write_results, write_tables
from .sending import SANDBOX_NOTIFY_URL, SendResult, StopCallback, send_to
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
    unknown_trade_nos: list[str] = field(default_factory=list)  # rows left unknown

    def as_json(self) -> dict[str, Any]:
        return {
            "batch": self.batch_id, "source": self.source, "result_file": self.result_file,
            "journal": self.journal, "counts": self.counts, "amounts": self.amounts,
            "requests": self.requests, "seconds": round(self.seconds, 3),
            "exit_code": self.exit_code, "dry_run": self.dry_run, "stopped": self.stopped,
            "stop_reason": self.stop_reason, "next_step": self.next_step,
            "unknown_trade_nos": self.unknown_trade_nos,
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


Confirm = Callable[[list[JournalRow], str], None]  # (rows to send, batch id); raises to refuse


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
    ``on_stop`` is told what a SIGINT or SIGTERM while sending does."""
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
    rows = sheet_rows(loaded, notify_url)
    sent = SendResult()
    with Journal(request.journal) as journal:
        with working(f"planning {len(rows):,} rows in the journal"):
            planned = journal.plan(
                rows, source=str(request.file), notify_url=notify_url,
                headers=loaded.sheet.headers,
            )  # fmt: skip
        plan = Plan(*planned)
        del rows  # planned: the journal rows carry on
        with batch_lock(request.journal, plan.batch_id):
            to_send = hold_back_repeats(journal, plan.batch_id, plan.to_send, request.options, say)
            check_expectations(to_send, request.expect_count, request.expect_total)
            placed = plan.already_placed
            if placed:
                say(
                    f"batch {plan.batch_id}: {placed} row(s) were already placed "
                    "and are not sent again"
                )
            if request.dry_run:
                dry_run_sign(config or GatewayConfig("", "", secrets.token_hex(8)), to_send)
            elif to_send:
                confirm(to_send, plan.batch_id)
                sent = asyncio.run(
                    send_to(
                        config,
                        request.protocol,
                        request.options,
                        journal,
                        to_send,
                        on_progress,
                        on_stop,
                    )
                )
            latest = reload(journal, plan)
    counts, amounts = summarize(latest)
    if sent.abandoned:
        say("interrupted twice: the result file was not written; run again to resume")
    else:
        summary = summary_rows(plan.batch_id, str(request.file), request.journal, counts,
                               amounts, dry_run=request.dry_run)  # fmt: skip
        write_results(request.output, loaded.sheet, result_rows(loaded, latest), summary)
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
        next_step="" if request.dry_run else next_step(counts),
        unknown_trade_nos=[r.trade_no for r in latest
                           if r.outcome is Outcome.UNKNOWN and r.trade_no],
    )  # fmt: skip
