"""The journal: one SQLite file (WAL) that remembers every batch, row, tradeNo and attempt.

The safety rule it exists for: a row's tradeNo is committed before the first request for it
leaves, and never changes. A batch is the multiset of a file's normalized rows, so the same
content, re-read in any order or format, resumes the same batch with the same tradeNos.

Answers are recorded in grouped commits (``flush``). Losing the last group to a crash is safe:
the rows it held are re-sent under the same tradeNo, which the gateway deduplicates.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..config import IN_PROCESS, SANDBOX_TRADE_NO_PREFIX
from ..errors import InputError, JournalError, RefusedError, mapped
from ..outcomes import FINAL, PLACED, Outcome
from .rows import (
    NOTE,
    CallbackChange,
    CallbackRecord,
    CallbackTarget,
    HeldRepeat,
    JournalRow,
    OutcomeTotal,
    PlacedPayout,
    PlanRows,
    ReportSource,
    SheetRow,
    Update,
    content_hash,
    json_objects,
    new_trade_nos,
    now,
)
from .schema import MIGRATIONS, VERSION, statements

ROWS_PER_STATEMENT = 100  # 8 values each: under SQLite's oldest limit of 999 per statement
# A row of which the gateway may hold an order: sent at least once, or claimed for sending.
_SENT_SQL = "(attempts > 0 OR in_flight = 1)"


def _among(outcomes: Iterable[Outcome]) -> tuple[str, list[str]]:
    """``(?, ?, ...)`` and its values: outcome names reach SQL as bound values, never as text
    of the statement, so the enum is their one spelling."""
    values = sorted(o.value for o in outcomes)
    return f"({', '.join('?' * len(values))})", values


_FINAL_IN, _FINAL_VALUES = _among(FINAL)
# By name: Outcome(name) per row is a tenth of reading a 100k-row batch.
OUTCOMES = {o.value: o for o in Outcome}


def effective_outcome(table: str = "") -> tuple[str, list[str]]:
    """The SQL expression of a row's outcome as every reader must see it, and its values: a
    row claimed for sending and never settled (the process died) reads ``unknown``, because
    its order may exist. Defined here only; ``rows`` and ``summaries`` both read through it."""
    prefix = f"{table}." if table else ""
    return (
        f"CASE WHEN {prefix}outcome = ? AND {prefix}in_flight THEN ? ELSE {prefix}outcome END",
        [Outcome.PENDING.value, Outcome.UNKNOWN.value],
    )


NEWER_JOURNAL = (
    "{path} was made by a newer batchpay (journal version {found}; this one knows {known}): "
    "upgrade batchpay to use it"
)
OTHER_ACCOUNT = (
    "refused: these rows were already sent in batch {batch} on {date} to the gateway account "
    "{other}, and this run is for {account}; nothing sent. If {account} is the same gateway "
    "at a new address, run again with --gateway-moved-from {other} (it moves that account's "
    "batches here, and they resume). If {other} was a practice or test gateway, keep its "
    "batches in another journal; --pay-again pays these rows on {account} as a new batch"
)

# A quarantined callback's effect starts "quarantined: " (callbacks.QUARANTINED).
QUARANTINED_LIKE = "quarantined:%"
RECOVERED_NOTE = "recovered from a result file; no answer from the gateway yet"

UNRECORDED = (
    "refused: the journal {path} holds {count} batch(es) made before batchpay recorded the "
    "gateway account each batch was sent to; nothing sent. If they were sent to {account} "
    "(this run's merchant and gateway), run again with --confirm-account (once; it is recorded "
    "in the journal). If they went to another gateway (a sandbox, a test system), give this "
    "gateway a journal of its own with --journal"
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


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._pending: list[Update] = []
        with mapped(JournalError, f"cannot open the journal {path}"):
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                # Owner-only from the first byte: the journal holds account numbers.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            self.db = sqlite3.connect(
                path, isolation_level=None, timeout=30, check_same_thread=False
            )
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self._migrate()

    def errors(self) -> AbstractContextManager[None]:
        """Wrap every use of the connection: a ``sqlite3.Error`` or ``OSError`` becomes a
        ``JournalError`` naming this journal (a full disk, a damaged file), never a traceback."""
        return mapped(JournalError, f"the journal {self.path}")

    def _migrate(self) -> None:
        """Bring the journal to this release's version, one committed step at a time; the
        version is read again inside each step's lock, so two processes opening an old
        journal at once migrate it once."""
        while True:
            with self.transaction() as db:
                found = db.execute("PRAGMA user_version").fetchone()[0]
                if found > VERSION:
                    raise JournalError(
                        NEWER_JOURNAL.format(path=self.path, found=found, known=VERSION)
                    )
                if found == VERSION:
                    return
                migration = MIGRATIONS[found]
                if isinstance(migration, str):
                    for statement in statements(migration):
                        db.execute(statement)
                else:
                    migration(db)
                db.execute(f"PRAGMA user_version = {found + 1}")

    def close(self) -> None:
        try:
            self.flush()
        finally:
            with self.errors():
                self.db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.errors():
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                # SQLite may have rolled back already (a full disk does): a ROLLBACK then
                # fails, and its error must not hide the one that matters.
                if self.db.in_transaction:
                    with suppress(sqlite3.Error):
                        self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    # -- planning ---------------------------------------------------------------------------

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
                left_in, left_values = _among(
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
                    f"{_SENT_SQL}) ORDER BY b.rowid DESC LIMIT 1",
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

    @staticmethod
    def _info(db: sqlite3.Connection, batch_id: str) -> BatchInfo:
        created, count, total, account = db.execute(
            "SELECT b.created_at, b.row_count, "
            "(SELECT COALESCE(sum(amount), 0) FROM rows r WHERE r.batch_id = b.batch_id "
            "AND r.outcome != ?), b.account FROM batches b WHERE b.batch_id = ?",
            (Outcome.INVALID.value, batch_id),
        ).fetchone()
        return BatchInfo(batch_id, created, count, total, account)

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

    def batch_ids(self, prefix: str) -> list[str]:
        """The ids of the batches that start with ``prefix`` (a whole id is its own prefix)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return [r[0] for r in self.db.execute(
            "SELECT batch_id FROM batches WHERE batch_id LIKE ? ESCAPE '\\' ORDER BY batch_id",
            (escaped + "%",),
        )]  # fmt: skip

    def batch_info(self, batch_id: str) -> BatchInfo:
        return self._info(self.db, batch_id)

    # -- gateway accounts -------------------------------------------------------------------

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

    def checkpoint(self) -> bool:
        """Copy every committed transaction from the WAL into the main file (waiting, within
        the busy timeout, for readers such as ``listen`` to move on). False when a reader kept
        part of it in the WAL: the WAL still holds it, as it always does."""
        with self.errors():
            busy, _, _ = self.db.execute("PRAGMA wal_checkpoint(FULL)").fetchone()
        return not busy

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
        placed_in, placed_values = _among(PLACED)
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

    def _rows(self, batch_id: str, *, fields: bool = True) -> Iterable[tuple[str, JournalRow]]:
        with self.errors():
            yield from self._read_rows(batch_id, fields=fields)

    def _read_rows(self, batch_id: str, *, fields: bool) -> Iterable[tuple[str, JournalRow]]:
        outcome_sql, outcome_values = effective_outcome()
        cursor = self.db.execute(
            f"SELECT key_digest, position, sheet_row, trade_no, assigned, amount, "
            f"{'fields' if fields else 'NULL'}, {outcome_sql}, "
            "code, msg, status, message, platform_trade_no, attempts, in_flight, flag, "
            "fingerprint FROM rows "
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

    # -- recording --------------------------------------------------------------------------

    def claim(self, trade_nos: Sequence[str]) -> None:
        """Mark rows as in flight, committed before any of them is sent.

        Until a row is settled, a crash leaves it ``unknown`` (it may be placed), never
        ``pending``: a re-run then asks the gateway, or re-sends the same tradeNo.
        """
        self.write(self.take_pending(), trade_nos)

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

    def write(self, pending: Sequence[Update], claim: Sequence[str] = ()) -> None:
        """Commit answers taken from the queue, and claim rows (see ``claim``), in one
        transaction. A final outcome (paid, failed, rejected) is never replaced by another.
        """
        if not pending and not claim:
            return
        stamp = now()
        answers = [u for u in pending if u.kind != NOTE]
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
                "attempts = attempts + ?, in_flight = CASE WHEN ? THEN 0 ELSE in_flight END, "
                f"updated_at = ? WHERE trade_no = ? AND outcome NOT IN {_FINAL_IN}",
                [
                    (u.outcome.value, u.code, u.msg[:500], u.status, u.message[:500],
                     u.platform_trade_no, u.platform_trade_no, int(u.counts_as_attempt),
                     u.settled, stamp, u.trade_no, *_FINAL_VALUES)
                    for u in answers
                ],
            )  # fmt: skip
            # Notes settle a row without an answer: its last answer's code and msg stay.
            db.executemany(
                "UPDATE row_state SET outcome = ?, msg = CASE WHEN msg = '' THEN ? ELSE msg END, "
                "in_flight = 0, updated_at = ? "
                f"WHERE trade_no = ? AND outcome NOT IN {_FINAL_IN}",
                [
                    (u.outcome.value, u.msg[:500], stamp, u.trade_no, *_FINAL_VALUES)
                    for u in pending
                    if u.kind == NOTE
                ],
            )
            for start in range(0, len(claim), ROWS_PER_STATEMENT):
                trade_nos = claim[start : start + ROWS_PER_STATEMENT]
                db.execute(
                    "UPDATE row_state SET in_flight = 1, "
                    "first_sent_at = COALESCE(first_sent_at, ?) "
                    f"WHERE trade_no IN ({', '.join('?' * len(trade_nos))})",
                    [stamp, *trade_nos],
                )

    def settle(self, trade_no: str, outcome: Outcome, note: str) -> None:
        """Queue the end of a row's run without an answer (stopped, interrupted)."""
        self.record(Update(trade_no, outcome, NOTE, "", msg=note, counts_as_attempt=False))

    # -- callbacks --------------------------------------------------------------------------

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
                    "platform_trade_no = ?, updated_at = ? WHERE trade_no = ?",
                    (change.outcome.value, status, change.message[:500],
                     change.platform_trade_no, stamp, trade_no),
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

    # -- repeats ----------------------------------------------------------------------------

    def placed_since(
        self, fingerprints: Sequence[str], batch_id: str, since: str
    ) -> Iterator[tuple[str, PlacedPayout]]:
        """Rows of other batches than ``batch_id`` with one of these payout fingerprints that
        may have been placed (sent or claimed; not refused, invalid or held back) at or after
        ``since``, earliest first, each with its fingerprint."""
        not_in, not_values = _among({Outcome.REJECTED, Outcome.INVALID, Outcome.REPEAT})
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

    # -- reports ----------------------------------------------------------------------------

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
