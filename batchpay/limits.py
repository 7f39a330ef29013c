"""The limits a batch is held to before anything is sent: the largest row, the batch's total,
and the total one gateway account may pay out in 24 hours.

A limit is a refusal made before the first payout (exit 1, nothing sent), never a stop half-way:
a payroll paid in part is worse than one not paid yet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import RefusedError
from .journal.rows import JournalRow
from .journal.store import Journal
from .outcomes import Outcome

DAY = dt.timedelta(hours=24)

ROW_ABOVE = (
    "refused: sheet row {sheet_row} pays {amount:,}, above the limit max_row_amount {limit:,}"
    "{more}; nothing sent"
)
BATCH_ABOVE = (
    "refused: the batch totals {total:,}, above the limit max_batch_total {limit:,}; nothing sent"
)
DAY_ABOVE = (
    "refused: the {rows} row(s) still to send ({to_send:,}) and the {placed:,} this gateway "
    "account paid out in the last 24 hours (or is sending now) make {total:,}, above the limit "
    "daily_total "
    "{limit:,}; nothing sent"
)


@dataclass(frozen=True)
class Limits:
    """None: no such limit."""

    max_row_amount: int | None = None
    max_batch_total: int | None = None
    daily_total: int | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.max_row_amount, self.max_batch_total,
                                           self.daily_total))  # fmt: skip


def enforce(
    limits: Limits,
    journal: Journal,
    account: str,
    batch_id: str,
    rows: Sequence[JournalRow],
    to_send: Sequence[JournalRow],
) -> None:
    """``check_limits`` with what the journal knows of the account's last 24 hours."""
    if not limits.any or not to_send:
        return  # limits are about what is sent
    placed_today = 0
    if limits.daily_total is not None and to_send:
        placed_today = journal.paid_out_since(account, batch_id, since())
    check_limits(limits, rows, to_send, placed_today)


def batch_total(rows: Sequence[JournalRow]) -> int:
    """The batch's total: every row that is not invalid (what a person approves)."""
    return sum(r.amount for r in rows if r.outcome is not Outcome.INVALID)


def since(now: dt.datetime | None = None) -> str:
    """The start of the daily window, as the journal's timestamps are written."""
    start = (now or dt.datetime.now(dt.UTC)) - DAY
    return start.isoformat(timespec="milliseconds")


def check_limits(
    limits: Limits, rows: Sequence[JournalRow], to_send: Sequence[JournalRow], placed_today: int
) -> None:
    """Refuse (RefusedError, exit 1) when ``to_send`` or the batch ``rows`` break a limit;
    ``placed_today`` is what the account paid out in the last 24 hours, this batch's rows
    still to send left out."""
    if limits.max_row_amount is not None:
        above = [r for r in to_send if r.amount > limits.max_row_amount]
        if above:
            more = f" ({len(above) - 1} more row(s) above it)" if len(above) > 1 else ""
            first = min(above, key=lambda r: r.sheet_row)
            limit = limits.max_row_amount
            raise RefusedError(ROW_ABOVE.format(sheet_row=first.sheet_row, amount=first.amount,
                                                limit=limit, more=more))  # fmt: skip
    total = batch_total(rows)
    if limits.max_batch_total is not None and total > limits.max_batch_total:
        raise RefusedError(BATCH_ABOVE.format(total=total, limit=limits.max_batch_total))
    if limits.daily_total is not None and to_send:
        sending = sum(r.amount for r in to_send)
        if sending + placed_today > limits.daily_total:
            raise RefusedError(DAY_ABOVE.format(
                rows=len(to_send), to_send=sending, placed=placed_today,
                total=sending + placed_today, limit=limits.daily_total,
            ))  # fmt: skip
