"""The journal: one SQLite file that remembers every batch, row, tradeNo, attempt and callback.

The safety rule it exists for: a row's tradeNo is committed before the first request for it
leaves, and never changes. ``Journal`` is its one owner of SQL, made of parts by job:
connection (opening, migrating, transactions), reads, planning, sending, callbacks, repeats,
and the team's records (users, policy, the audit trail).
"""

from __future__ import annotations

from .callbacks import CallbackLog
from .life import BatchLife
from .planning import Planning
from .repeats import Repeats
from .sending import Sending
from .team import TeamRecords


class Journal(Sending, CallbackLog, Repeats, Planning, TeamRecords, BatchLife):
    """One journal file, opened (and migrated) for this process. Not shared between threads."""

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
