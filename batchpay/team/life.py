"""The batch's life (team-controls.md): who may move a batch from one state to the next, and
what a send needs first.

    draft --submit--> submitted --approve (enough)--> approved --send--> sending --> done
                         \\--reject--> rejected                              \\--> stopped
    hold / cancel (admin) at any point before done; release returns a held batch to where it was

Each step is decided under the journal's write lock (``Journal.change_life``) and recorded in
the audit trail in the same transaction; a refusal changes nothing and is recorded too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from ..journal.life import ApprovalRecord, Change, Decide, LifeRecord
from ..journal.rows import JournalRow
from ..outcomes import Outcome
from .audit import Action, Actor, event, stamp, utc
from .policy import Policy
from .users import Role, User, refuse

if TYPE_CHECKING:
    from ..journal.store import Journal


class State(StrEnum):
    DRAFT = "draft"  # planned (by a run or a dry run), never submitted: no batch_life row
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    HELD = "held"
    CANCELLED = "cancelled"
    SENDING = "sending"
    STOPPED = "stopped"
    DONE = "done"


# Who may do what (team-controls.md's table; an admin may do everything an approver may).
SUBMITTERS = (Role.PREPARER, Role.ADMIN)
APPROVERS = (Role.APPROVER, Role.ADMIN)
SENDERS = (Role.PREPARER, Role.APPROVER, Role.ADMIN)
ENDED = (State.DONE, State.CANCELLED)

ALREADY_SUBMITTED = "batch {batch} was submitted already, by {who} at {when} ({state})"
CANNOT_SUBMIT = "batch {batch} is {state}: it cannot be submitted"
INVALID_ROWS = "batch {batch} has {n} invalid row(s): fix the file; it cannot be submitted"
NOT_SUBMITTED = "batch {batch} has not been submitted: batchpay submit FILE --as NAME"
CANNOT_APPROVE = "batch {batch} is {state}: only a submitted batch can be approved"
OWN_BATCH = "{name} submitted batch {batch}: someone else must approve it"
APPROVED_TWICE = (
    "{name} approved batch {batch} already, at {when}: approvals are by distinct people"
)
CHANGED = (
    "batch {batch}'s rows are not what was submitted (rows {rows} vs {was}, total {total:,} vs "
    "{was_total:,}): the journal was changed; nothing approved"
)
CANNOT_REJECT = "batch {batch} is {state}: only a submitted batch can be rejected"
NO_REASON = "a rejection needs a reason (--reason TEXT): the preparer reads it"
CANNOT_HOLD = "batch {batch} is {state}: it cannot be held"
NOT_HELD = "batch {batch} is {state}, not held: nothing to release"
CANNOT_CANCEL = "batch {batch} is {state}: it cannot be cancelled"


@dataclass(frozen=True)
class Content:
    """What an approval is bound to: the batch, its content hash, rows and total."""

    batch_id: str
    content_hash: str
    row_count: int
    total: int
    invalid: int = 0


def content_of(batch_id: str, content_hash: str, rows: Sequence[JournalRow]) -> Content:
    invalid = sum(1 for r in rows if r.outcome is Outcome.INVALID)
    total = sum(r.amount for r in rows if r.outcome is not Outcome.INVALID)
    return Content(batch_id, content_hash, len(rows), total, invalid)


def journal_content(journal: Journal, batch_id: str) -> Content:
    """The batch's content as the journal holds it now."""
    rows = journal.rows(batch_id, fields=False)
    return content_of(batch_id, journal.batch_content_hash(batch_id), rows)


def state_of(record: LifeRecord | None) -> State:
    return State.DRAFT if record is None else State(record.state)


def why(record: LifeRecord) -> str:
    return f": {record.reason}" if record.reason else ""


class Refused(Exception):
    """A decision's refusal, raised under the lock; recorded after the rollback."""


def decided(
    journal: Journal,
    actor: Actor,
    attempted: str,
    batch_id: str,
    decide: Decide,
    now: dt.datetime | None,
) -> LifeRecord:
    """The batch's new record, once ``decide`` has decided under the journal's lock; a
    refusal is audited and raised as an AccessError (nothing changed)."""
    try:
        found = journal.change_life(batch_id, decide).record
    except Refused as refused:
        refuse(journal, actor, attempted, str(refused), now, batch=batch_id)
    assert found is not None  # every decision that does not refuse makes a record
    return found


def _role(
    journal: Journal,
    user: User,
    roles: Sequence[Role],
    attempted: str,
    batch: str,
    now: dt.datetime | None,
) -> None:
    if user.role not in roles:
        needed = " or ".join(r.value for r in roles)
        reason = f"{user.name} is a {user.role.value}; {attempted} needs a {needed}"
        refuse(journal, user.actor, attempted, reason, now, batch=batch)


def submit(
    journal: Journal, user: User, content: Content, policy: Policy,
    now: dt.datetime | None = None, *, pay_again: bool = False,
) -> LifeRecord:  # fmt: skip
    batch = content.batch_id
    _role(journal, user, SUBMITTERS, "submit", batch, now)
    at = stamp(utc(now))

    def decide(record: LifeRecord | None, approvals: list[ApprovalRecord]) -> Change:
        state = state_of(record)
        if content.invalid:
            raise Refused(INVALID_ROWS.format(batch=batch, n=content.invalid))
        if record is not None and state in (State.SUBMITTED, State.APPROVED):
            raise Refused(
                ALREADY_SUBMITTED.format(
                    batch=batch, who=record.submitter, when=record.submitted_at, state=state
                )
            )
        # A new round: a rejected batch, or one whose rows are left to send after the policy
        # came to need approvals (stopped, done or sending: submitting sends nothing).
        if state not in (State.DRAFT, State.REJECTED, State.STOPPED, State.DONE, State.SENDING):
            raise Refused(CANNOT_SUBMIT.format(batch=batch, state=state))
        new = LifeRecord(
            batch,
            State.SUBMITTED,
            user.name,
            at,
            content.content_hash,
            content.row_count,
            content.total,
            updated_at=at,
        )
        details = {
            "rows": content.row_count,
            "total": content.total,
            "content_hash": content.content_hash,
            "approvals_needed": policy.approvals_needed(content.total),
            "pay_again": pay_again,  # the same payouts as an earlier batch, on purpose
        }
        return Change(new, events=[event(user.actor, Action.SUBMITTED, batch, details, now)])

    return decided(journal, user.actor, "submit", batch, decide, now)


def approve(
    journal: Journal, user: User, content: Content, policy: Policy, now: dt.datetime | None = None
) -> tuple[LifeRecord, int, int]:
    """The batch's record, its approvals in this round and how many it needs."""
    batch = content.batch_id
    _role(journal, user, APPROVERS, "approve", batch, now)
    at = stamp(utc(now))
    needed = max(1, policy.approvals_needed(content.total))

    def decide(record: LifeRecord | None, approvals: list[ApprovalRecord]) -> Change:
        state = state_of(record)
        if record is None:
            raise Refused(NOT_SUBMITTED.format(batch=batch))
        if state not in (State.SUBMITTED, State.APPROVED):
            raise Refused(CANNOT_APPROVE.format(batch=batch, state=state))
        if record.submitter == user.name:
            raise Refused(OWN_BATCH.format(name=user.name, batch=batch))
        for given in approvals:
            if given.approver == user.name:
                raise Refused(
                    APPROVED_TWICE.format(name=user.name, batch=batch, when=given.approved_at)
                )
        if (record.content_hash, record.row_count, record.total) != (
            content.content_hash,
            content.row_count,
            content.total,
        ):
            raise Refused(
                CHANGED.format(
                    batch=batch,
                    rows=content.row_count,
                    was=record.row_count,
                    total=content.total,
                    was_total=record.total,
                )
            )
        approval = ApprovalRecord(
            batch,
            record.submitted_at or "",
            user.name,
            at,
            content.content_hash,
            content.row_count,
            content.total,
        )
        have = len(approvals) + 1
        new_state = State.APPROVED if have >= needed else State.SUBMITTED
        details = {
            "approval": have,
            "needed": needed,
            "rows": content.row_count,
            "total": content.total,
            "content_hash": content.content_hash,
        }
        return Change(
            replace(record, state=new_state, updated_at=at),
            approval,
            events=[event(user.actor, Action.APPROVED, batch, details, now)],
        )

    record = decided(journal, user.actor, "approve", batch, decide, now)
    return record, len(journal.approvals(batch, record.submitted_at)), needed


def reject(
    journal: Journal, user: User, batch: str, reason: str, now: dt.datetime | None = None
) -> LifeRecord:
    _role(journal, user, APPROVERS, "reject", batch, now)
    at = stamp(utc(now))

    def decide(record: LifeRecord | None, approvals: list[ApprovalRecord]) -> Change:
        state = state_of(record)
        if not reason.strip():
            raise Refused(NO_REASON)
        if record is None or state not in (State.SUBMITTED, State.APPROVED):
            raise Refused(CANNOT_REJECT.format(batch=batch, state=state))
        new = replace(record, state=State.REJECTED, reason=reason.strip(), updated_at=at)
        details = {"reason": reason.strip()}
        return Change(new, events=[event(user.actor, Action.REJECTED, batch, details, now)])

    return decided(journal, user.actor, "reject", batch, decide, now)


def blank(content: Content, at: str) -> LifeRecord:
    """A draft's first record (made by a hold, a cancel or a send)."""
    return LifeRecord(
        content.batch_id,
        State.DRAFT,
        content_hash=content.content_hash,
        row_count=content.row_count,
        total=content.total,
        updated_at=at,
    )


def hold(
    journal: Journal, user: User, content: Content, reason: str = "",
    now: dt.datetime | None = None,
) -> LifeRecord:  # fmt: skip
    """Nothing of the batch is sent until an admin releases it (back to where it was)."""
    return _halt(journal, user, content, reason, now, State.HELD,
                 refused_in=(*ENDED, State.HELD), message=CANNOT_HOLD)  # fmt: skip


def release(journal: Journal, user: User, batch: str, now: dt.datetime | None = None) -> LifeRecord:
    _role(journal, user, (Role.ADMIN,), "release", batch, now)
    at = stamp(utc(now))

    def decide(record: LifeRecord | None, approvals: list[ApprovalRecord]) -> Change:
        state = state_of(record)
        if record is None or state is not State.HELD:
            raise Refused(NOT_HELD.format(batch=batch, state=state))
        back = State(record.held_from or State.DRAFT)
        # A batch held while it was sending was stopped by the hold.
        back = State.STOPPED if back is State.SENDING else back
        new = replace(record, state=back, held_from=None, reason="", updated_at=at)
        details = {"to": back.value}
        return Change(new, events=[event(user.actor, Action.RELEASED, batch, details, now)])

    return decided(journal, user.actor, "release", batch, decide, now)


def cancel(
    journal: Journal, user: User, content: Content, reason: str = "",
    now: dt.datetime | None = None,
) -> LifeRecord:  # fmt: skip
    """The batch's rows not placed are cancelled, never to be sent. Cancelling a cancelled
    batch again cancels rows a reconcile has since found never placed (unknown -> pending);
    a done batch has nothing left to cancel."""
    return _halt(journal, user, content, reason, now, State.CANCELLED,
                 refused_in=(State.DONE,), message=CANNOT_CANCEL)  # fmt: skip


def _halt(
    journal: Journal, user: User, content: Content, reason: str, now: dt.datetime | None,
    to: State, *, refused_in: tuple[State, ...], message: str,
) -> LifeRecord:  # fmt: skip
    """A hold or a cancel (admins): the batch's state, the rows a cancel cancels, one audit
    row, in one transaction."""
    batch, attempted = content.batch_id, "hold" if to is State.HELD else "cancel"
    _role(journal, user, (Role.ADMIN,), attempted, batch, now)
    at = stamp(utc(now))

    def decide(record: LifeRecord | None, approvals: list[ApprovalRecord]) -> Change:
        state = state_of(record)
        if state in refused_in:
            raise Refused(message.format(batch=batch, state=state))
        held_from = state.value if to is State.HELD else None  # what a release returns to
        new = replace(record or blank(content, at), state=to, held_from=held_from,
                      reason=reason, updated_at=at)  # fmt: skip
        action = Action.HELD if to is State.HELD else Action.CANCELLED
        details = {"from": state.value, "reason": reason}
        return Change(new, cancel_rows=to is State.CANCELLED,
                      events=[event(user.actor, action, batch, details, now)])  # fmt: skip

    return decided(journal, user.actor, attempted, batch, decide, now)
