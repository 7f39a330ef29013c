"""The callback log: every status callback kept (without ``sign``), applied to its row or
quarantined, in one transaction with the row's change. What a callback means is decided by
``batchpay.gateway.callbacks``; this module only stores it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from ..outcomes import Outcome
from .connection import Connection
from .rows import (
    CallbackChange,
    CallbackRecord,
    CallbackTarget,
    now,
)

# A quarantined callback's effect starts "quarantined: " (callbacks.QUARANTINED).
QUARANTINED_LIKE = "quarantined:%"


class CallbackLog(Connection):
    def quarantine_callback(
        self, trade_no: str, status: str, effect: str, kept: str, *, per_trade_no: int
    ) -> None:
        """Keep a signed callback that cannot be applied (``kept``: its fields without
        ``sign``): once per distinct body, at most ``per_trade_no`` records per tradeNo."""
        with self.transaction() as db:
            same, total = db.execute(
                "SELECT coalesce(sum(fields = ?), 0), count(*) FROM callbacks "
                "WHERE trade_no = ? AND effect LIKE ?",
                (kept, trade_no, QUARANTINED_LIKE),
            ).fetchone()
            if not same and total < per_trade_no:
                self._log_callback(db, trade_no, status, effect, kept)

    def apply_callback(
        self,
        trade_no: str,
        status: str,
        kept: str,
        decide: Callable[[CallbackTarget | None], CallbackChange],
    ) -> CallbackChange:
        """Record one callback in one transaction: ``decide`` (the receiver's policy) is given
        the row as it stands (None: no row has this tradeNo) and says what the callback
        does; the row moves as it says, and the callback is logged with its effect."""
        with self.transaction() as db:
            found = db.execute(
                "SELECT outcome, status, amount, platform_trade_no FROM rows WHERE trade_no = ?",
                (trade_no,),
            ).fetchone()
            target = None if found is None else CallbackTarget(Outcome(found[0]), *found[1:])
            change = decide(target)
            stamp = now()
            if target is None:
                # Unknown to this journal: kept once per distinct body.
                db.execute(
                    "INSERT INTO callbacks (trade_no, received_at, status, effect, fields) "
                    "SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM callbacks "
                    "WHERE trade_no = ? AND effect = ? AND fields = ?)",
                    (trade_no, stamp, status[:64], change.effect, kept, trade_no, change.effect,
                     kept),
                )  # fmt: skip
                return change
            if change.flag:
                db.execute(
                    "UPDATE row_state SET flag = ?, updated_at = ? WHERE trade_no = ?",
                    (change.flag, stamp, trade_no),
                )
            elif change.outcome is not None:
                db.execute(
                    "UPDATE row_state SET outcome = ?, status = ?, message = ?, in_flight = 0, "
                    "platform_trade_no = ?, pay_amount = ?, updated_at = ? WHERE trade_no = ?",
                    (change.outcome.value, status, change.message[:500],
                     change.platform_trade_no, change.pay_amount, stamp, trade_no),
                )  # fmt: skip
            self._log_callback(db, trade_no, status, change.effect, kept)
        return change

    @staticmethod
    def _log_callback(
        db: sqlite3.Connection, trade_no: str, status: str, effect: str, kept: str
    ) -> None:
        db.execute(
            "INSERT INTO callbacks (trade_no, received_at, status, effect, fields) "
            "VALUES (?, ?, ?, ?, ?)",
            (trade_no, now(), status, effect, kept),
        )

    def callback_log(self, trade_no: str | None = None) -> list[CallbackRecord]:
        """Every callback kept (of one tradeNo), oldest first."""
        where, args = ("WHERE trade_no = ?", (trade_no,)) if trade_no else ("", ())
        with self.errors():
            return [CallbackRecord(*r) for r in self.db.execute(
                "SELECT received_at, trade_no, status, effect, fields FROM callbacks "
                f"{where} ORDER BY id", args,
            )]  # fmt: skip

    def quarantined_callbacks(
        self, batch_id: str | None, latest: int
    ) -> tuple[int, list[CallbackRecord]]:
        """How many quarantined callbacks there are (of one batch's tradeNos, or in the
        whole journal, tradeNos no batch knows included), and the ``latest`` newest."""
        where = "WHERE c.effect LIKE ?"
        args: tuple[str | int, ...] = (QUARANTINED_LIKE,)
        if batch_id:
            where += " AND c.trade_no IN (SELECT trade_no FROM rows WHERE batch_id = ?)"
            args += (batch_id,)
        with self.errors():
            [count] = self.db.execute(f"SELECT count(*) FROM callbacks c {where}", args).fetchone()
            records = [CallbackRecord(*r) for r in self.db.execute(
                "SELECT c.received_at, c.trade_no, c.status, c.effect, c.fields FROM callbacks c "
                f"{where} ORDER BY c.id DESC LIMIT ?", (*args, latest),
            )]  # fmt: skip
        return int(count), records
