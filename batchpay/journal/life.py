"""The batch's life in the journal: its state (submitted, approved, held, ...) and its
approvals, each change made in one transaction with the audit rows that record it. What may
change into what, and who may change it, is ``batchpay.team.life``'s: it decides under this
module's write lock (``change_life``), so two people acting at once take turns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..outcomes import Outcome
from .audit import AuditEvent, AuditTrail, append
from .rows import now

LIFE_COLUMNS = (
    "batch_id, state, submitter, submitted_at, content_hash, row_count, total, reason, "
    "held_from, sender, sender_kind, sent_at, updated_at"
)
APPROVAL_COLUMNS = "batch_id, round, approver, approved_at, content_hash, row_count, total"


@dataclass(frozen=True)
class LifeRecord:
    """A batch_life row. ``submitted_at`` names the approval round: approvals count only for
    the submission they were given to."""

    batch_id: str
    state: str
    submitter: str | None = None
    submitted_at: str | None = None
    content_hash: str = ""
    row_count: int = 0
    total: int = 0
    reason: str = ""
    held_from: str | None = None  # the state a release returns to
    sender: str | None = None
    sender_kind: str | None = None
    sent_at: str | None = None
    updated_at: str = ""


@dataclass(frozen=True)
class ApprovalRecord:
    batch_id: str
    round: str  # the submission's submitted_at
    approver: str
    approved_at: str
    content_hash: str
    row_count: int
    total: int


@dataclass(frozen=True)
class Change:
    """What a decision does: the batch's new record, an approval to add, rows to cancel, and
    the audit rows that say so (appended in the same transaction)."""

    record: LifeRecord | None = None
    approval: ApprovalRecord | None = None
    cancel_rows: bool = False
    events: Sequence[AuditEvent] = field(default_factory=tuple)


Decide = Callable[[LifeRecord | None, list[ApprovalRecord]], Change]


class BatchLife(AuditTrail):
    def life(self, batch_id: str) -> LifeRecord | None:
        with self.errors():
            found = self.db.execute(
                f"SELECT {LIFE_COLUMNS} FROM batch_life WHERE batch_id = ?", (batch_id,)
            ).fetchone()
        return LifeRecord(*found) if found else None

    def lives(self) -> dict[str, LifeRecord]:
        with self.errors():
            found = self.db.execute(f"SELECT {LIFE_COLUMNS} FROM batch_life").fetchall()
        return {row[0]: LifeRecord(*row) for row in found}

    def approvals(self, batch_id: str, round: str | None = None) -> list[ApprovalRecord]:
        """The batch's approvals, of one round (a submission) or all, oldest first."""
        where, values = "batch_id = ?", [batch_id]
        if round is not None:
            where, values = where + " AND round = ?", [batch_id, round]
        with self.errors():
            found = self.db.execute(
                f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE {where} ORDER BY id", values
            ).fetchall()
        return [ApprovalRecord(*row) for row in found]

    def batch_content_hash(self, batch_id: str) -> str:
        with self.errors():
            (found,) = self.db.execute(
                "SELECT content_hash FROM batches WHERE batch_id = ?", (batch_id,)
            ).fetchone()
        return str(found)

    def batch_state(self, batch_id: str) -> str | None:
        """The batch's state alone: read by a sender before each row it hands out, so that a
        hold or a cancel made by another process stops it (one primary-key lookup)."""
        with self.errors():
            found = self.db.execute(
                "SELECT state FROM batch_life WHERE batch_id = ?", (batch_id,)
            ).fetchone()
        return found[0] if found else None

    def change_life(self, batch_id: str, decide: Decide) -> Change:
        """Run ``decide`` on the batch's record and its current round's approvals under the
        journal's write lock, then apply what it returns, audit rows included, in the same
        transaction. ``decide`` raises to refuse: nothing is changed."""
        with self.transaction() as db:
            found = db.execute(
                f"SELECT {LIFE_COLUMNS} FROM batch_life WHERE batch_id = ?", (batch_id,)
            ).fetchone()
            record = LifeRecord(*found) if found else None
            round = record.submitted_at if record else None
            approvals = [
                ApprovalRecord(*row)
                for row in db.execute(
                    f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE batch_id = ? AND round = ? "
                    "ORDER BY id",
                    (batch_id, round or ""),
                )
            ]
            change = decide(record, approvals)
            if change.record is not None:
                new = change.record
                db.execute(
                    f"INSERT OR REPLACE INTO batch_life ({LIFE_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (new.batch_id, new.state, new.submitter, new.submitted_at, new.content_hash,
                     new.row_count, new.total, new.reason, new.held_from, new.sender,
                     new.sender_kind, new.sent_at, new.updated_at or now()),
                )  # fmt: skip
            if change.approval is not None:
                a = change.approval
                db.execute(
                    f"INSERT INTO approvals ({APPROVAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (a.batch_id, a.round, a.approver, a.approved_at, a.content_hash,
                     a.row_count, a.total),
                )  # fmt: skip
            if change.cancel_rows:
                # Rows not placed and not being sent (pending: never sent, or the gateway said it
                # holds no such order); placed and unknown rows stay as they are.
                db.execute(
                    "UPDATE row_state SET outcome = ?, updated_at = ? WHERE batch_id = ? "
                    "AND outcome IN (?, ?) AND in_flight = 0",
                    (Outcome.CANCELLED.value, now(), batch_id, Outcome.PENDING.value,
                     Outcome.REPEAT.value),
                )  # fmt: skip
            for event in change.events:
                append(db, event)
        return change
