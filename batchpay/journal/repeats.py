"""The payouts other batches placed (the repeat window looks them up by fingerprint), and
rows held back as their repeats. What counts as a repeat is ``batchpay.protection``'s."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence

from ..outcomes import PLACED, Outcome
from .connection import Connection, among
from .rows import (
    HeldRepeat,
    PlacedPayout,
)


class Repeats(Connection):
    def placed_since(
        self, fingerprints: Sequence[str], batch_id: str, since: str
    ) -> Iterator[tuple[str, PlacedPayout]]:
        """Rows of other batches than ``batch_id`` with one of these payout fingerprints that
        may have been placed (sent or claimed; not refused, invalid or held back) at or after
        ``since``, earliest first, each with its fingerprint."""
        not_in, not_values = among({Outcome.REJECTED, Outcome.INVALID, Outcome.REPEAT})
        with self.errors():
            for start in range(0, len(fingerprints), 500):
                chunk = fingerprints[start : start + 500]
                cursor = self.db.execute(
                    "SELECT r.fingerprint, r.batch_id, r.trade_no, r.outcome, r.status, "
                    "r.platform_trade_no, r.first_sent_at, COALESCE(b.account, '') "
                    "FROM rows r JOIN batches b USING (batch_id) WHERE r.fingerprint IN "
                    f"({','.join('?' * len(chunk))}) AND r.batch_id != ? AND "
                    f"r.first_sent_at >= ? AND r.outcome NOT IN {not_in} "
                    "AND (r.attempts > 0 OR r.in_flight = 1) ORDER BY r.first_sent_at",
                    [*chunk, batch_id, since, *not_values],
                )
                for fingerprint, *earlier in cursor:
                    yield fingerprint, PlacedPayout(*earlier)

    def paid_out_since(self, account: str, batch_id: str, since: str) -> int:
        """What ``account`` paid out (or may have: unknown, in flight) from rows first sent at
        or after ``since``, and what other batches being sent now are still to send; of
        ``batch_id`` only its placed rows (the rest it is about to send, which the caller adds
        itself)."""
        money = PLACED - {Outcome.FAILED}
        out_in, out_values = among(money | {Outcome.UNKNOWN})
        placed_in, placed_values = among(money)
        with self.errors():
            (total,) = self.db.execute(
                "SELECT COALESCE(SUM(r.amount), 0) FROM rows r JOIN batches b USING (batch_id) "
                "WHERE b.account = ? AND (r.first_sent_at >= ? AND ("
                f"(r.batch_id != ? AND (r.outcome IN {out_in} OR r.in_flight = 1)) OR "
                f"(r.batch_id = ? AND r.outcome IN {placed_in} AND r.in_flight = 0)) "
                "OR (r.batch_id != ? AND r.outcome = ? AND r.batch_id IN "
                "(SELECT batch_id FROM batch_life WHERE state = 'sending')))",
                [account, since, batch_id, *out_values, batch_id, *placed_values, batch_id,
                 Outcome.PENDING.value],
            ).fetchone()  # fmt: skip
        return int(total)

    def hold_back(self, held: Mapping[str, HeldRepeat], release: Collection[str] = ()) -> None:
        """Mark rows never sent as ``repeat`` (by tradeNo, with why and the earlier payout's
        status and platform number), and let the repeat rows ``release`` names go back to
        pending, in one transaction."""
        pending, repeat = Outcome.PENDING.value, Outcome.REPEAT.value
        with self.transaction() as db:
            db.executemany(
                "UPDATE row_state SET outcome = ?, msg = '', status = '', "
                "platform_trade_no = '' WHERE trade_no = ? AND outcome = ?",
                [(pending, t, repeat) for t in release],
            )
            db.executemany(
                "UPDATE row_state SET outcome = ?, msg = ?, status = ?, platform_trade_no = ? "
                "WHERE trade_no = ? AND outcome IN (?, ?) AND attempts = 0 AND in_flight = 0",
                [(repeat, h.msg, h.status, h.platform_trade_no, trade_no, pending, repeat)
                 for trade_no, h in held.items()],
            )  # fmt: skip
