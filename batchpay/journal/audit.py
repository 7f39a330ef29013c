"""The audit trail's table: rows appended, each chained to the one before by a hash, and read
back. What an action is and who did it are ``batchpay.team.audit``'s; this module only stores
text and computes the chain, so that the writer and the verifier hash the same bytes.

A row's hash is SHA-256 over the previous row's hash and the row's canonical content (its id,
time, actor, actor kind, action, batch and details, as one JSON array), so an edited row, a
deleted one (an id gap, or a prev_hash that does not match) and a reordering are all found by
recomputing. The chain has no key: whoever can write the journal can recompute all of it, and
a cut-off tail leaves nothing behind. That is why the latest row's number and hash (the head)
are printed where copies outlive the journal (``audit --verify``, results, logs).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

from .connection import Connection

GENESIS = "0" * 64  # the prev_hash of the first row: nothing came before it

COLUMNS = "id, at, actor, actor_kind, action, batch, details, prev_hash, hash"


@dataclass(frozen=True)
class AuditEvent:
    """A row to append, as text: the journal gives it its id and its place in the chain."""

    at: str  # UTC, ISO 8601
    actor: str
    actor_kind: str
    action: str
    batch: str | None
    details: str  # JSON, sorted keys (``canonical_details``)


@dataclass(frozen=True)
class AuditRow:
    """One row of the audit trail as stored."""

    id: int
    at: str
    actor: str
    actor_kind: str
    action: str
    batch: str | None
    details: str
    prev_hash: str
    hash: str

    def content(self) -> str:
        return content(self.id, AuditEvent(self.at, self.actor, self.actor_kind, self.action,
                                           self.batch, self.details))  # fmt: skip


def canonical_details(details: object) -> str:
    """Details as the chain stores them: JSON, sorted keys, no spaces, Unicode as itself."""
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content(row_id: int, event: AuditEvent) -> str:
    """A row's canonical content: what its hash covers besides the previous hash."""
    return json.dumps(
        [row_id, event.at, event.actor, event.actor_kind, event.action, event.batch,
         event.details],
        separators=(",", ":"), ensure_ascii=False,
    )  # fmt: skip


def chain_hash(prev_hash: str, row_content: str) -> str:
    """The hash of a row: SHA-256 (hex) over the previous row's hash, a newline, its content."""
    return hashlib.sha256(f"{prev_hash}\n{row_content}".encode()).hexdigest()


def append(db: sqlite3.Connection, event: AuditEvent) -> AuditRow:
    """Append ``event`` inside the caller's transaction, which must be ``BEGIN IMMEDIATE``:
    the last row is read and the new one inserted under the same write lock, so two processes
    appending at once take turns and never fork the chain."""
    last = db.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    row_id, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
    digest = chain_hash(prev_hash, content(row_id, event))
    db.execute(
        f"INSERT INTO audit ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (row_id, event.at, event.actor, event.actor_kind, event.action, event.batch,
         event.details, prev_hash, digest),
    )  # fmt: skip
    return AuditRow(row_id, event.at, event.actor, event.actor_kind, event.action, event.batch,
                    event.details, prev_hash, digest)  # fmt: skip


class AuditTrail(Connection):
    def append_audit(self, event: AuditEvent) -> AuditRow:
        """Append one row in a transaction of its own."""
        with self.transaction() as db:
            return append(db, event)

    def audit_rows(self, batch: str | None = None) -> Iterator[AuditRow]:
        """Every row in id order, or only those of ``batch``."""
        where, values = ("WHERE batch = ?", [batch]) if batch is not None else ("", [])
        with self.errors():
            cursor = self.db.execute(f"SELECT {COLUMNS} FROM audit {where} ORDER BY id", values)
            for found in cursor:
                yield AuditRow(*found)

    def audit_batches_like(self, prefix: str) -> list[str]:
        """The batches named in the audit trail whose id starts with ``prefix``."""
        with self.errors():
            found = self.db.execute(
                "SELECT DISTINCT batch FROM audit WHERE batch IS NOT NULL "
                "AND substr(batch, 1, ?) = ? ORDER BY batch",
                (len(prefix), prefix),
            ).fetchall()
        return [batch for (batch,) in found]

    def audit_last(self) -> AuditRow | None:
        with self.errors():
            found = self.db.execute(
                f"SELECT {COLUMNS} FROM audit ORDER BY id DESC LIMIT 1"
            ).fetchone()
        return AuditRow(*found) if found else None
