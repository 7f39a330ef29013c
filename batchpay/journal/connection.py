"""The journal's connection: one SQLite file (WAL), owner-only, brought to this release's
version on opening; every use of it maps SQLite's and the OS's errors to a JournalError.

Also the two things every statement shares: outcome names bound from the enum (``among``),
and the one definition of the outcome a reader sees (``effective_outcome``).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path

from ..errors import JournalError, mapped
from ..outcomes import FINAL, Outcome
from .rows import (
    Update,
)
from .schema import MIGRATIONS, VERSION, statements

ROWS_PER_STATEMENT = 100  # 8 values each: under SQLite's oldest limit of 999 per statement


# A row of which the gateway may hold an order: sent at least once, or claimed for sending.
SENT_SQL = "(attempts > 0 OR in_flight = 1)"


def among(outcomes: Iterable[Outcome]) -> tuple[str, list[str]]:
    """``(?, ?, ...)`` and its values: outcome names reach SQL as bound values, never as text
    of the statement, so the enum is their one spelling."""
    values = sorted(o.value for o in outcomes)
    return f"({', '.join('?' * len(values))})", values


FINAL_IN, FINAL_VALUES = among(FINAL)


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


class Connection:
    """The connection and its transactions; the Journal's other parts build on it."""

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

    def checkpoint(self) -> bool:
        """Copy every committed transaction from the WAL into the main file (waiting, within
        the busy timeout, for readers such as ``listen`` to move on). False when a reader kept
        part of it in the WAL: the WAL still holds it, as it always does."""
        with self.errors():
            busy, _, _ = self.db.execute("PRAGMA wal_checkpoint(FULL)").fetchone()
        return not busy
