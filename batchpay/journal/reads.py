"""What the journal answers about batches and rows without changing them (status, report,
resume), and the few account records beside them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..outcomes import Outcome
from .connection import OUTCOMES, Connection, effective_outcome
from .rows import (
    JournalRow,
    OutcomeTotal,
    ReportSource,
    now,
)


@dataclass(frozen=True)
class BatchInfo:
    """A batch as a person recognizes it: when it was made, its rows and total."""

    batch_id: str
    created_at: str
    rows: int
    total: int
    account: str | None

    @property
    def date(self) -> str:
        return self.created_at[:10]


def trade_nos_known_to(path: Path, trade_nos: Iterable[str]) -> set[str]:
    """Those of ``trade_nos`` that the journal at ``path`` holds, read without changing it
    (never created, migrated or written: it may be another run's practice journal). Empty
    when there is no such journal, or it cannot be read."""
    wanted = list(dict.fromkeys(trade_nos))
    if not wanted or not path.is_file():
        return set()
    found: set[str] = set()
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                found.update(r[0] for r in db.execute(
                    f"SELECT trade_no FROM rows WHERE trade_no IN ({','.join('?' * len(chunk))})",
                    chunk,
                ))  # fmt: skip
        finally:
            db.close()
    except sqlite3.Error:
        return set()
    return found


class Reads(Connection):
    @staticmethod
    def _info(db: sqlite3.Connection, batch_id: str) -> BatchInfo:
        created, count, total, account = db.execute(
            "SELECT b.created_at, b.row_count, "
            "(SELECT COALESCE(sum(amount), 0) FROM rows r WHERE r.batch_id = b.batch_id "
            "AND r.outcome != ?), b.account FROM batches b WHERE b.batch_id = ?",
            (Outcome.INVALID.value, batch_id),
        ).fetchone()
        return BatchInfo(batch_id, created, count, total, account)

    def batch_ids(self, prefix: str) -> list[str]:
        """The ids of the batches that start with ``prefix`` (a whole id is its own prefix)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return [r[0] for r in self.db.execute(
            "SELECT batch_id FROM batches WHERE batch_id LIKE ? ESCAPE '\\' ORDER BY batch_id",
            (escaped + "%",),
        )]  # fmt: skip

    def batch_info(self, batch_id: str) -> BatchInfo:
        return self._info(self.db, batch_id)

    def has_batch(self, digest: str, account: str | None = None) -> str | None:
        """The id of the newest batch with this content hash on this gateway account (None:
        on any), if the journal holds one. Read-only: a run asks before planning whether its
        rows are new to this journal."""
        where, args = ("AND account = ?", (digest, account)) if account else ("", (digest,))
        with self.errors():
            found = self.db.execute(
                f"SELECT batch_id FROM batches WHERE content_hash = ? {where} "
                "ORDER BY rowid DESC LIMIT 1",
                args,
            ).fetchone()
        return None if found is None else str(found[0])

    def _rows(self, batch_id: str, *, fields: bool = True) -> Iterable[tuple[str, JournalRow]]:
        with self.errors():
            yield from self._read_rows(batch_id, fields=fields)

    def _read_rows(self, batch_id: str, *, fields: bool) -> Iterable[tuple[str, JournalRow]]:
        outcome_sql, outcome_values = effective_outcome()
        cursor = self.db.execute(
            f"SELECT key_digest, position, sheet_row, trade_no, assigned, amount, "
            f"{'fields' if fields else 'NULL'}, {outcome_sql}, "
            "code, msg, status, message, platform_trade_no, attempts, in_flight, flag, "
            "fingerprint, pay_amount FROM rows "
            "WHERE batch_id = ? ORDER BY position",
            (*outcome_values, batch_id),
        )
        for r in cursor:
            outcome = OUTCOMES[r[7]]
            yield r[0], JournalRow(
                batch_id=batch_id, position=r[1], sheet_row=r[2], trade_no=r[3],
                assigned=bool(r[4]), amount=r[5], fields=json.loads(r[6]) if fields else {},
                outcome=outcome,
                code=r[8], msg=r[9], status=r[10], message=r[11], platform_trade_no=r[12],
                attempts=r[13], in_flight=bool(r[14]), flag=r[15], fingerprint=r[16],
                pay_amount=r[17],
            )  # fmt: skip

    def rows(self, batch_id: str, *, fields: bool = True) -> list[JournalRow]:
        """The batch's rows in order; ``fields=False`` leaves each row's payout fields out
        (empty), for reports, which need only the rows' states."""
        return [row for _, row in self._rows(batch_id, fields=fields)]

    def attempts(self, trade_no: str) -> list[dict[str, Any]]:
        with self.errors():
            cursor = self.db.execute(
                "SELECT kind, sent_at, http_status, code, status, verdict, detail FROM attempts "
                "WHERE trade_no = ? ORDER BY id",
                (trade_no,),
            )
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, r, strict=True)) for r in cursor]

    def known_trade_nos(self, trade_nos: Iterable[str]) -> set[str]:
        """Those of ``trade_nos`` that some batch of this journal holds."""
        wanted = list(dict.fromkeys(trade_nos))
        found: set[str] = set()
        with self.errors():
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                cursor = self.db.execute(
                    f"SELECT trade_no FROM rows WHERE trade_no IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
                found.update(r[0] for r in cursor)
        return found

    def outcome_totals(self, batch_id: str | None = None) -> list[OutcomeTotal]:
        """Per batch (or one) and effective outcome: rows, amount, last update, flagged rows;
        in the order batches were created."""
        outcome_sql, outcome_values = effective_outcome("r")
        where, args = ("WHERE r.batch_id = ?", (batch_id,)) if batch_id else ("", ())
        with self.errors():
            return [OutcomeTotal(*r) for r in self.db.execute(
                f"SELECT r.batch_id, b.source, b.created_at, COALESCE(b.account, ''), "
                f"{outcome_sql}, count(*), sum(r.amount), max(r.updated_at), "
                "sum(r.flag != '') "
                f"FROM rows r JOIN batches b USING (batch_id) {where} "
                "GROUP BY r.batch_id, 5 ORDER BY b.created_at, r.batch_id",
                (*outcome_values, *args),
            )]  # fmt: skip

    def report_source(self, batch_id: str) -> ReportSource:
        """What a batch's result file is rebuilt from: its source, headers and content hash,
        and each row's cells and validation errors as planned, in order."""
        with self.errors():
            source, headers, digest = self.db.execute(
                "SELECT source, headers, content_hash FROM batches WHERE batch_id = ?",
                (batch_id,),
            ).fetchone()
            cursor = self.db.execute(
                "SELECT cells, errors FROM rows WHERE batch_id = ? ORDER BY position",
                (batch_id,),
            )
            stored = [(json.loads(cells), errors) for cells, errors in cursor]
        return ReportSource(source, json.loads(headers), digest, stored)

    def unrecorded_batches(self) -> int:
        """Batches made before the journal recorded accounts (release 0.1.0)."""
        (count,) = self.db.execute("SELECT count(*) FROM batches WHERE account IS NULL").fetchone()
        return int(count)

    def accounts(self) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT account FROM batches WHERE account IS NOT NULL ORDER BY account"
        )]  # fmt: skip

    def move_account(self, from_account: str | None, to_account: str, reason: str) -> int:
        """Give ``from_account``'s batches (None: the unrecorded ones) to ``to_account``: a
        person said they are the same gateway account. Logged in account_changes."""
        with self.transaction() as db:
            moved = db.execute(
                "UPDATE batches SET account = ? WHERE account IS ?", (to_account, from_account)
            ).rowcount
            db.execute(
                "INSERT INTO account_changes (changed_at, from_account, to_account, batches, "
                "reason) VALUES (?, ?, ?, ?, ?)",
                (now(), from_account, to_account, moved, reason),
            )
        return int(moved)

    def sandbox_account(self, account: str, *, seen: bool | None = None) -> bool:
        """Whether ``account``'s answers said it is a sandbox. ``seen``: this run's answers all
        said so (True), or some did not (False: the account is not taken for one again)."""
        with self.errors():
            if seen:
                self.db.execute(
                    "INSERT OR IGNORE INTO sandbox_accounts (account, seen_at) VALUES (?, ?)",
                    (account, now()),
                )
            elif seen is False:
                self.db.execute("DELETE FROM sandbox_accounts WHERE account = ?", (account,))
            found = self.db.execute(
                "SELECT 1 FROM sandbox_accounts WHERE account = ?", (account,)
            ).fetchone()
        return found is not None
