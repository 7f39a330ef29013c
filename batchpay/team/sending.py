"""What a send needs from the batch's life, and what it leaves there: ``start_sending``
refuses a held, cancelled or rejected batch, or one without the approvals the policy asks for
(bound to this very content), and marks it sending by whom; ``finish_sending`` marks it done or
stopped; ``watch`` tells a sender, before each row, that another process held or cancelled
the batch; ``summary_rows`` names the people for the result's Summary sheet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..errors import RefusedError
from ..journal.life import ApprovalRecord, Change, LifeRecord
from .audit import Action, Actor, audit_head, event, head_text, stamp, utc
from .life import APPROVERS, Content, Refused, State, blank, decided, state_of, why
from .policy import Policy
from .users import refuse

APPROVER_ROLES = {role.value for role in APPROVERS}

if TYPE_CHECKING:
    from ..journal.store import Journal

HELD = (
    "batch {batch} is held (by {who} at {when}{why}): nothing sent; an admin releases it with "
    "batchpay release {batch} --as ADMIN"
)
CANCELLED = "batch {batch} was cancelled (by {who} at {when}{why}): nothing sent"
REJECTED = (
    "batch {batch} was rejected (by {who} at {when}: {why}): nothing sent; fix the file and "
    "submit it again"
)
NEEDS_APPROVALS = (
    "batch {batch} needs {needed} approval(s) before anything is sent and has {have}{names}: "
    "nothing sent; ask an approver: batchpay approve {batch} --as NAME"
)
NEEDS_SUBMITTING = (
    "batch {batch} needs {needed} approval(s) before anything is sent and has not been "
    "submitted: nothing sent; batchpay submit FILE --as NAME, then an approver approves it"
)
HOLD_STOP = "batch {batch} was held by {who}: the rows not sent are still pending"
CANCEL_STOP = "batch {batch} was cancelled by {who}: the rows not sent are cancelled"


@dataclass(frozen=True)
class SendStart:
    record: LifeRecord
    approvals: list[ApprovalRecord]


def _refusal(
    journal: Journal,
    record: LifeRecord | None,
    approvals: list[ApprovalRecord],
    content: Content,
    policy: Policy,
) -> tuple[str, list[ApprovalRecord]]:
    """Why the batch may not be sent now ('' when it may), and the approvals bound to this
    very content (hash, rows, total)."""
    batch, state = content.batch_id, state_of(record)
    bound = [
        a
        for a in approvals
        if (a.content_hash, a.row_count, a.total)
        == (content.content_hash, content.row_count, content.total)
        and _may_approve(journal, a.approver)
    ]
    if record is not None and state in (State.HELD, State.CANCELLED, State.REJECTED):
        words = {State.HELD: (HELD, Action.HELD), State.CANCELLED: (CANCELLED, Action.CANCELLED),
                 State.REJECTED: (REJECTED, Action.REJECTED)}[state]  # fmt: skip
        said = record.reason if state is State.REJECTED else why(record)
        who = _last(journal, batch, words[1])
        return words[0].format(batch=batch, who=who, when=record.updated_at, why=said), bound
    needed = policy.approvals_needed(content.total)
    if needed and (record is None or record.submitted_at is None):
        return NEEDS_SUBMITTING.format(batch=batch, needed=needed), bound
    if len(bound) < needed:
        names = f" ({', '.join(a.approver for a in bound)})" if bound else ""
        return NEEDS_APPROVALS.format(batch=batch, needed=needed, have=len(bound),
                                      names=names), bound  # fmt: skip
    return "", bound


def _may_approve(journal: Journal, name: str) -> bool:
    """Whether an approval by ``name`` still counts: a user disabled since, or no longer an
    approver or admin, approves nothing any more."""
    record = journal.user_record(name)
    return record is not None and not record.disabled and record.role in APPROVER_ROLES


def may_send(journal: Journal, actor: Actor, content: Content, policy: Policy) -> None:
    """Before the confirmation: refused (AccessError, audited) when ``start_sending`` would
    refuse; nothing changes either way."""
    record = journal.life(content.batch_id)
    approvals = journal.approvals(content.batch_id, record.submitted_at or "") if record else []
    refusal, _ = _refusal(journal, record, approvals, content, policy)
    if refusal:
        refuse(journal, actor, "send", refusal, batch=content.batch_id)


def start_sending(
    journal: Journal,
    actor: Actor,
    content: Content,
    policy: Policy,
    *,
    rows: int,
    amount: int,
    options: Sequence[str] = (),
    recheck: Callable[[], None] | None = None,
    now: dt.datetime | None = None,
) -> SendStart:
    """The batch, about to send ``rows`` rows (``amount`` in all), marked sending by ``actor``:
    refused (AccessError, audited, nothing changed) when it is held, cancelled or rejected,
    or lacks the approvals the policy asks for (bound to this very content). ``recheck`` (the
    limits) runs under the same write lock: two runs confirmed at once take turns, and the
    second sees the first as sending."""
    batch = content.batch_id
    at = stamp(utc(now))
    kept: list[ApprovalRecord] = []

    def decide(record: LifeRecord | None, approvals: list[ApprovalRecord]) -> Change:
        state = state_of(record)
        refusal, bound = _refusal(journal, record, approvals, content, policy)
        if refusal:
            raise Refused(refusal)
        if recheck is not None:
            try:
                recheck()
            except RefusedError as refused:
                raise Refused(str(refused)) from None
        kept.extend(bound)
        current = record or blank(content, at)
        new = replace(
            current,
            state=State.SENDING,
            sender=actor.name,
            sender_kind=actor.kind.value,
            sent_at=at,
            updated_at=at,
        )
        details: dict[str, object] = {
            "rows": rows,
            "amount": amount,
            "state_was": state.value,
            "approvals": [a.approver for a in bound],
        }
        events = [event(actor, Action.SEND_STARTED, batch, details, now)]
        for option in options:  # the options that affect money, each on the record
            events.append(event(actor, Action(option), batch, {}, now))
        return Change(new, events=events)

    return SendStart(decided(journal, actor, "send", batch, decide, now), kept)


def finish_sending(
    journal: Journal,
    actor: Actor,
    batch: str,
    *,
    stopped: bool,
    reason: str,
    counts: dict[str, int],
    now: dt.datetime | None = None,
) -> LifeRecord | None:
    """The end of a send: done, or stopped (interrupted, a systemic refusal, rows left). A
    batch held or cancelled meanwhile stays so."""
    at = stamp(utc(now))

    def decide(record: LifeRecord | None, approvals: list[ApprovalRecord]) -> Change:
        action = Action.SEND_STOPPED if stopped else Action.SEND_FINISHED
        details: dict[str, object] = {"counts": counts, "reason": reason}
        events = [event(actor, action, batch, details, now)]
        if record is None or state_of(record) is not State.SENDING:
            return Change(
                None,
                cancel_rows=record is not None and state_of(record) is State.CANCELLED,
                events=events,
            )
        state = State.STOPPED if stopped else State.DONE
        return Change(replace(record, state=state, updated_at=at), events=events)

    return journal.change_life(batch, decide).record


def _last(journal: Journal, batch: str, action: Action) -> str:
    """Who last did ``action`` to the batch, from the audit trail."""
    for row in reversed(list(journal.audit_rows(batch))):
        if row.action == action.value:
            return row.actor
    return "someone"


def watch(journal: Journal, batch: str) -> str | None:
    """For a sender, before each row: why to stop now (a hold or a cancel by another
    process), or None."""
    state = journal.batch_state(batch)
    if state == State.HELD:
        return HOLD_STOP.format(batch=batch, who=_last(journal, batch, Action.HELD))
    if state == State.CANCELLED:
        return CANCEL_STOP.format(batch=batch, who=_last(journal, batch, Action.CANCELLED))
    return None


def people_rows(journal: Journal, batch_id: str) -> list[list[str]]:
    """For the result's Summary sheet: who submitted, approved and sent the batch, when, and
    the audit trail's head (a later copy of the trail must contain it)."""
    record = journal.life(batch_id)
    rows: list[list[str]] = []
    if record is not None and record.submitter:
        rows.append(["submitted by", f"{record.submitter} at {record.submitted_at}"])
    if record is not None and record.submitted_at:
        for given in journal.approvals(batch_id, record.submitted_at):
            rows.append(["approved by", f"{given.approver} at {given.approved_at}"])
    if record is not None and record.sender:
        rows.append(["sent by", f"{record.sender} ({record.sender_kind}) at {record.sent_at}"])
    head = audit_head(journal)
    if head is not None:
        rows.append(["audit head", head_text(head)])
    return rows
