"""What sending writes: claims (committed before a row is handed to a sender) and answers,
recorded in grouped commits (``flush``). Losing the last group to a crash is safe: the rows it
held are re-sent under the same tradeNo, which the gateway deduplicates. Only the narrow
``row_state`` records change."""

from __future__ import annotations

from collections.abc import Sequence

from ..outcomes import Outcome
from .connection import FINAL_IN, FINAL_VALUES, ROWS_PER_STATEMENT, Connection
from .rows import (
    Kind,
    Update,
    now,
)

# The batch states (batchpay.team.life.State) in which none of a batch's rows may be claimed.
STOPPED_STATES = ("held", "cancelled")


class Sending(Connection):
    def claim(self, trade_nos: Sequence[str]) -> set[str]:
        """Mark rows as in flight, committed before any of them is sent; the tradeNos claimed.

        Until a row is settled, a crash leaves it ``unknown`` (it may be placed), never
        ``pending``: a re-run then asks the gateway, or re-sends the same tradeNo.
        """
        return self.write(self.take_pending(), trade_nos)

    def release(self, trade_nos: Sequence[str]) -> None:
        """Rows claimed and then never started (the run stopped first) are as they were.

        Give only rows that were not in flight before the claim: a row an earlier run left in
        flight may be placed and must stay so.
        """
        self.flush()
        with self.transaction() as db:
            db.executemany(
                "UPDATE row_state SET in_flight = 0 WHERE trade_no = ? AND outcome = ?",
                [(t, Outcome.PENDING.value) for t in trade_nos],
            )

    def record(self, update: Update) -> None:
        """Queue an answer; it is written by the next flush()."""
        self._pending.append(update)

    @property
    def unflushed(self) -> int:
        return len(self._pending)

    def flush(self) -> None:
        """Commit the queued answers in one transaction."""
        self.write(self.take_pending())

    def take_pending(self) -> list[Update]:
        """The queued answers, for ``write`` (which may run on another thread)."""
        pending, self._pending = self._pending, []
        return pending

    def write(self, pending: Sequence[Update], claim: Sequence[str] = ()) -> set[str]:
        """Commit answers taken from the queue, and claim rows (see ``claim``), in one
        transaction; the tradeNos claimed. A final outcome (paid, failed, rejected) is never
        replaced by another. A row is claimed only while it is not final (a callback may have
        settled it) and its batch is not held or cancelled: a hold or cancel committed by
        another process a moment before is obeyed here, under the same write lock, so no row
        it stopped is ever sent."""
        if not pending and not claim:
            return set()
        stamp = now()
        claimed: set[str] = set()
        answers = [u for u in pending if u.kind != Kind.NOTE]
        with self.transaction() as db:
            # Attempts and claims go many rows to a statement: each statement is one call into
            # SQLite, made on the event loop while requests wait.
            for start in range(0, len(answers), ROWS_PER_STATEMENT):
                chunk = answers[start : start + ROWS_PER_STATEMENT]
                db.execute(
                    "INSERT INTO attempts (trade_no, kind, sent_at, http_status, code, status, "
                    "verdict, detail) VALUES "
                    + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk)),
                    [
                        value
                        for u in chunk
                        for value in (u.trade_no, u.kind, stamp, u.http_status, u.code,
                                      u.status, u.verdict, u.detail[:500])
                    ],
                )  # fmt: skip
            db.executemany(
                "UPDATE row_state SET outcome = ?, code = ?, msg = ?, status = ?, message = ?, "
                "platform_trade_no = CASE WHEN ? = '' THEN platform_trade_no ELSE ? END, "
                "pay_amount = ?, "
                "attempts = attempts + ?, in_flight = CASE WHEN ? THEN 0 ELSE in_flight END, "
                f"updated_at = ? WHERE trade_no = ? AND outcome NOT IN {FINAL_IN}",
                [
                    (u.outcome.value, u.code, u.msg[:500], u.status, u.message[:500],
                     u.platform_trade_no, u.platform_trade_no, u.pay_amount,
                     int(u.counts_as_attempt),
                     u.settled, stamp, u.trade_no, *FINAL_VALUES)
                    for u in answers
                ],
            )  # fmt: skip
            # Notes settle a row without an answer: its last answer's code and msg stay.
            db.executemany(
                "UPDATE row_state SET outcome = ?, msg = CASE WHEN msg = '' THEN ? ELSE msg END, "
                "in_flight = 0, updated_at = ? "
                f"WHERE trade_no = ? AND outcome NOT IN {FINAL_IN}",
                [
                    (u.outcome.value, u.msg[:500], stamp, u.trade_no, *FINAL_VALUES)
                    for u in pending
                    if u.kind == Kind.NOTE
                ],
            )
            for start in range(0, len(claim), ROWS_PER_STATEMENT):
                trade_nos = claim[start : start + ROWS_PER_STATEMENT]
                found = db.execute(
                    "UPDATE row_state SET in_flight = 1, "
                    "first_sent_at = COALESCE(first_sent_at, ?) "
                    f"WHERE trade_no IN ({', '.join('?' * len(trade_nos))}) "
                    f"AND outcome NOT IN {FINAL_IN} AND NOT EXISTS (SELECT 1 FROM batch_life l "
                    "WHERE l.batch_id = row_state.batch_id AND l.state IN (?, ?)) "
                    "RETURNING trade_no",
                    [stamp, *trade_nos, *FINAL_VALUES, *STOPPED_STATES],
                )
                claimed.update(trade_no for (trade_no,) in found)
        return claimed

    def settle(self, trade_no: str, outcome: Outcome, note: str) -> None:
        """Queue the end of a row's run without an answer (stopped, interrupted)."""
        self.record(Update(trade_no, outcome, Kind.NOTE, "", msg=note, counts_as_attempt=False))
