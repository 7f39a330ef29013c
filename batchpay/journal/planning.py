"""Planning a batch: the file's rows committed with every tradeNo before the first request
leaves (``plan``), or a lost batch rebuilt from its result file (``restore``). A batch is the
multiset of a file's normalized rows, so the same content, re-read in any order or format,
resumes the same batch with the same tradeNos."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from ..config import IN_PROCESS, SANDBOX_TRADE_NO_PREFIX
from ..errors import InputError, JournalError, RefusedError
from ..outcomes import PLACED, Outcome
from .connection import SENT_SQL, among
from .reads import BatchInfo, Reads
from .rows import (
    JournalRow,
    PlanRows,
    SheetRow,
    content_hash,
    json_objects,
    new_trade_nos,
    now,
)

OTHER_ACCOUNT = (
    "refused: these rows were already sent in batch {batch} on {date} to the gateway account "
    "{other}, and this run is for {account}; nothing sent. If {account} is the same gateway "
    "at a new address, run again with --gateway-moved-from {other} (it moves that account's "
    "batches here, and they resume). If {other} was a practice or test gateway, keep its "
    "batches in another journal; --pay-again pays these rows on {account} as a new batch"
)


RECOVERED_NOTE = "recovered from a result file; no answer from the gateway yet"


UNRECORDED = (
    "refused: the journal {path} holds {count} batch(es) made before batchpay recorded the "
    "gateway account each batch was sent to; nothing sent. If they were sent to {account} "
    "(this run's merchant and gateway), run again with --confirm-account (once; it is recorded "
    "in the journal). If they went to another gateway (a sandbox, a test system), give this "
    "gateway a journal of its own with --journal"
)


@dataclass
class Planned:
    """The batch a file's rows belong to, and how the journal came to it."""

    batch_id: str
    rows: list[JournalRow]  # in the order of the file's rows
    created: bool  # a new batch (or the file's first run)
    # The earlier batch that placed these rows: the resumed batch itself when it has nothing
    # left to send (a run sends nothing unless --pay-again), or the batch a --pay-again batch
    # pays again.
    earlier: BatchInfo | None = None


class Planning(Reads):
    def plan(
        self,
        rows: PlanRows | Sequence[SheetRow],
        source: str,
        *,
        account: str,
        notify_url: str | None = None,
        headers: Sequence[str] = (),
        pay_again: bool = False,
        allow_repeat: bool = False,
    ) -> Planned:
        """The batch for these rows on this gateway account, created with every tradeNo
        committed, or resumed.

        The newest batch with the same content on the same account is resumed, unless it has
        nothing left to send and ``pay_again`` asks for a new batch (new id, new tradeNos).
        The same content sent on another account is refused (``OTHER_ACCOUNT``) unless
        ``pay_again``: a gateway at a new address would otherwise pay every row twice.
        ``notify_url`` fills the rows that have none when the batch is created; it is not part
        of the batch's content, so changing the setting never makes a second batch.
        """
        rows = rows if isinstance(rows, PlanRows) else PlanRows.of(rows)
        digest = content_hash(rows)
        with self.transaction() as db:
            if unrecorded := self.unrecorded_batches():
                # Guessing their account could report another gateway's orders as placed here.
                raise RefusedError(
                    UNRECORDED.format(path=self.path, count=unrecorded, account=account)
                )
            found = db.execute(
                "SELECT batch_id, pay_again_of FROM batches WHERE content_hash = ? AND "
                "account = ? ORDER BY rowid DESC LIMIT 1",
                (digest, account),
            ).fetchone()
            earlier = None
            if found is not None:
                # Rows left to send: pending or unknown (claimed ones read unknown). A repeat
                # row is held back for good (the payout it repeats was made): not left, unless
                # --allow-repeat lets it go.
                to_send = {Outcome.PENDING, Outcome.UNKNOWN}
                left_in, left_values = among(
                    to_send | {Outcome.REPEAT} if allow_repeat else to_send
                )
                left = db.execute(
                    f"SELECT 1 FROM rows WHERE batch_id = ? AND outcome IN {left_in} LIMIT 1",
                    (found[0], *left_values),
                ).fetchone()
                if left is None:
                    earlier = self._info(db, found[0])
                elif found[1]:  # a batch paid again, still being sent: what it pays again
                    earlier = self._info(db, found[1])
                if left is not None or not pay_again:
                    batch_id = found[0]
                    resumed = True
                else:
                    resumed = False
            else:
                resumed = False
                elsewhere = db.execute(
                    "SELECT b.batch_id, b.account FROM batches b WHERE b.content_hash = ? "
                    "AND b.account IS NOT NULL AND b.account != ? AND instr(b.account, ?) = 0 "
                    f"AND EXISTS (SELECT 1 FROM rows r WHERE r.batch_id = b.batch_id AND "
                    f"{SENT_SQL}) ORDER BY b.rowid DESC LIMIT 1",
                    (digest, account, IN_PROCESS),
                ).fetchone()
                if elsewhere is not None and not pay_again:
                    info = self._info(db, elsewhere[0])
                    raise RefusedError(
                        OTHER_ACCOUNT.format(batch=info.batch_id, date=info.date,
                                             other=elsewhere[1], account=account)
                    )  # fmt: skip
            if not resumed:
                # A new batch's rows are what was just written: no need to read them back.
                batch_id, planned = self._create(
                    db, digest, rows, source, notify_url, headers, account,
                    earlier.batch_id if earlier else None,
                )  # fmt: skip
                return Planned(batch_id, planned, created=True, earlier=earlier)
        return Planned(batch_id, self._match(batch_id, rows), created=False, earlier=earlier)

    def restore(
        self,
        rows: PlanRows | Sequence[SheetRow],
        trade_nos: Sequence[str | None],
        source: str,
        *,
        account: str,
        notify_url: str | None = None,
        headers: Sequence[str] = (),
        attempts: Sequence[int] = (),
        sent_at: str = "",
        batch_id: str = "",
    ) -> tuple[str, list[JournalRow]]:
        """Rebuild a lost batch: the rows as ``plan`` would create them, each valid row with
        its tradeNo as an earlier run assigned it (``trade_nos``, in the order of ``rows``) and
        the payout requests the earlier run sent for it (``attempts``, as its result file says).

        Every valid row starts ``unknown``: until the gateway has been asked, any of them may
        be placed. A row with attempts counts as first sent at ``sent_at`` (the repeat window
        must see it). Refused when the journal already holds the batch or any of the tradeNos.
        """
        rows = rows if isinstance(rows, PlanRows) else PlanRows.of(rows)
        digest = content_hash(rows)
        with self.transaction() as db:
            found = db.execute(
                "SELECT batch_id FROM batches WHERE content_hash = ? AND account = ?",
                (digest, account),
            ).fetchone()
            if found is not None:
                raise InputError(
                    f"the journal {self.path} already holds batch {found[0]}: nothing to "
                    f"recover (`batchpay status {found[0]}` shows it)"
                )
            used = self._first_used(db, [t for t in trade_nos if t])
            if used:
                raise InputError(
                    f"tradeNo {used[0]} is already in batch {used[1]} of the journal "
                    f"{self.path}; refusing to recover a batch that shares it"
                )
            batch_id, planned = self._create(
                db, digest, rows, source, notify_url, headers, account, None,
                trade_nos=trade_nos, batch_id=batch_id,
            )  # fmt: skip
            stamp = sent_at or now()
            sent = list(attempts) or [0] * len(rows)
            db.executemany(
                "UPDATE row_state SET outcome = ?, attempts = ?, "
                "first_sent_at = CASE WHEN ? > 0 THEN ? END, msg = ? "
                "WHERE batch_id = ? AND position = ? AND outcome = ?",
                [
                    (
                        Outcome.UNKNOWN.value,
                        n,
                        n,
                        stamp,
                        RECOVERED_NOTE,
                        batch_id,
                        position,
                        Outcome.PENDING.value,
                    )
                    for position, n in enumerate(sent)
                ],
            )
        for row in planned:
            if row.outcome is Outcome.PENDING:
                row.outcome = Outcome.UNKNOWN
        return batch_id, planned

    def count_placed_as_sent(self, batch_id: str, sent_at: str = "") -> None:
        """A recovered row the gateway holds was sent at least once, whatever its result file
        said (a dry run's, say): count it so, for the repeat window of later batches."""
        placed_in, placed_values = among(PLACED)
        with self.transaction() as db:
            db.execute(
                "UPDATE row_state SET attempts = max(attempts, 1), "
                "first_sent_at = COALESCE(first_sent_at, ?) "
                f"WHERE batch_id = ? AND outcome IN {placed_in}",
                (sent_at or now(), batch_id, *placed_values),
            )

    def _create(
        self,
        db: sqlite3.Connection,
        digest: str,
        rows: PlanRows,
        source: str,
        notify_url: str | None,
        headers: Sequence[str],
        account: str,
        pay_again_of: str | None,
        *,
        trade_nos: Sequence[str | None] | None = None,
        batch_id: str = "",
    ) -> tuple[str, list[JournalRow]]:
        """``trade_nos``: a recovered batch's own (``restore``), else the file's or new ones;
        ``batch_id``: a recovered batch's own id (refused when another batch has it).

        Written column by column (one wide INSERT per table): the per-row work of a 100k-row
        batch is a few list comprehensions."""
        valid = rows.valid
        given_trade_nos = rows.values("tradeNo")
        given = [t for t, ok in zip(given_trade_nos, valid, strict=True) if ok and t]
        used = self._first_used(db, given)
        if used:
            raise InputError(
                f"tradeNo {used[0]} was already used in batch {used[1]} (row {used[2]}); "
                "a tradeNo must be unique forever: remove it or give a new one"
            )
        if batch_id:
            if db.execute("SELECT 1 FROM batches WHERE batch_id = ?", (batch_id,)).fetchone():
                raise InputError(
                    f"the journal {self.path} already has a batch {batch_id} (of other rows): "
                    "refusing to recover another under its id"
                )
        else:
            batch_id = digest[:12]
        while db.execute("SELECT 1 FROM batches WHERE batch_id = ?", (batch_id,)).fetchone():
            # The same content once more (another account, or paid again): a fresh id.
            batch_id = secrets.token_hex(6)
        stamp = now()
        db.execute(
            "INSERT INTO batches (batch_id, content_hash, source, row_count, created_at, headers, "
            "account, pay_again_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (batch_id, digest, source, len(rows), stamp, json.dumps(list(headers)), account,
             pay_again_of),
        )  # fmt: skip
        wanted = [ok and not t for t, ok in zip(given_trade_nos, valid, strict=True)]
        if trade_nos is None:
            fresh = self._fresh_trade_nos(
                db, sum(wanted), set(given),
                SANDBOX_TRADE_NO_PREFIX if IN_PROCESS in account else "",
            )  # fmt: skip
        else:
            # The earlier run's assigned tradeNos, taken in row order (fresh.pop() takes the last).
            fresh = [t for w, t in zip(wanted, trade_nos, strict=True) if w and t][::-1]
        fresh.reverse()  # the first row to be assigned one takes the first
        taken = iter(fresh)
        planned_trade_nos: list[str | None] = [
            next(taken) if w else (t if ok else None)
            for w, t, ok in zip(wanted, given_trade_nos, valid, strict=True)
        ]
        notify_urls = [
            given_url or (notify_url if ok else "") or ""
            for given_url, ok in zip(rows.values("notifyUrl"), valid, strict=True)
        ]
        columns = dict(rows.fields)
        columns["tradeNo"] = pa.array(
            [t or g for t, g in zip(planned_trade_nos, given_trade_nos, strict=True)], pa.string()
        )
        columns["notifyUrl"] = pa.array(notify_urls, pa.string())
        fields_json = json_objects(columns, len(rows)).to_pylist()
        outcomes = [(Outcome.PENDING if ok else Outcome.INVALID) for ok in valid]
        pending, invalid = Outcome.PENDING.value, Outcome.INVALID.value
        positions = range(len(rows))
        db.executemany(
            "INSERT INTO row_content (batch_id, position, key_digest, sheet_row, trade_no, "
            "assigned, amount, fields, fingerprint, cells, errors) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            zip([batch_id] * len(rows), positions, rows.key_digests, rows.sheet_rows,
                planned_trade_nos, wanted, rows.amounts, fields_json, rows.fingerprints,
                rows.cells.to_pylist(), rows.errors, strict=True),
        )  # fmt: skip
        db.executemany(
            "INSERT INTO row_state (batch_id, position, trade_no, outcome, updated_at) "
            "VALUES (?, ?, ?, ?, ?)",
            zip([batch_id] * len(rows), positions, planned_trade_nos,
                [pending if ok else invalid for ok in valid], [stamp] * len(rows), strict=True),
        )  # fmt: skip
        names = list(columns)
        values = [columns[name].to_pylist() for name in names]
        planned = [
            JournalRow(
                batch_id=batch_id, position=position, sheet_row=sheet_row, trade_no=trade_no,
                assigned=assigned, amount=amount, fields=dict(zip(names, row_fields, strict=True)),
                outcome=outcome, fingerprint=fingerprint,
            )
            for position, sheet_row, trade_no, assigned, amount, outcome, fingerprint, *row_fields
            in zip(positions, rows.sheet_rows, planned_trade_nos, wanted, rows.amounts, outcomes,
                   rows.fingerprints, *values, strict=True)
        ]  # fmt: skip
        return batch_id, planned

    @staticmethod
    def _first_used(
        db: sqlite3.Connection, trade_nos: Sequence[str]
    ) -> tuple[str, str, int] | None:
        """A row of the journal holding one of ``trade_nos`` (tradeNo, batch, sheet row)."""
        for start in range(0, len(trade_nos), 500):
            chunk = trade_nos[start : start + 500]
            used = db.execute(
                "SELECT trade_no, batch_id, sheet_row FROM row_content WHERE trade_no IN "
                f"({','.join('?' * len(chunk))}) LIMIT 1",
                chunk,
            ).fetchone()
            if used:
                return used[0], used[1], used[2]
        return None

    @staticmethod
    def _fresh_trade_nos(
        db: sqlite3.Connection, count: int, taken: set[str], prefix: str
    ) -> list[str]:
        """``count`` new tradeNos, none in ``taken`` nor anywhere in the journal."""
        fresh: set[str] = set()
        while len(fresh) < count:
            candidates = new_trade_nos(count - len(fresh), prefix) - taken - fresh
            listed = list(candidates)
            for start in range(0, len(listed), 500):
                chunk = listed[start : start + 500]
                used = db.execute(
                    f"SELECT trade_no FROM rows WHERE trade_no IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
                candidates -= {r[0] for r in used}
            fresh |= candidates
        return sorted(fresh)

    def _match(self, batch_id: str, rows: PlanRows) -> list[JournalRow]:
        """Pair each row of the file with its journal row by content (any order)."""
        by_key: dict[str, list[JournalRow]] = {}
        for key, row in self._rows(batch_id):
            by_key.setdefault(key, []).append(row)
        for same in by_key.values():
            same.reverse()  # identical rows pair up in their order of position
        matched = []
        for key, sheet_row in zip(rows.key_digests, rows.sheet_rows, strict=True):
            candidates = by_key.get(key)
            if not candidates:
                raise JournalError(f"batch {batch_id} in {self.path} does not match the file")
            journal_row = candidates.pop()
            journal_row.sheet_row = sheet_row  # where the row stands in this file
            matched.append(journal_row)
        return matched
