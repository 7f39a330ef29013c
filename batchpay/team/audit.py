"""The audit trail: who did what, when, to which batch. Every action is one row, chained to the
one before by a hash (``batchpay.journal.audit``), so an edited, deleted or reordered row is
found by ``verify``; the head (the latest row's number and hash) printed where copies outlive
the journal shows a rewrite or a cut tail.

For the batch's life and the console: ``record(journal, actor, action, batch, **details)``,
``audit_head(journal)``, and ``Actor`` for a signed-in user (``User.actor``), the
operating-system user (``os_actor()``), or whoever writes a journal that has no admin yet.
"""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from ..errors import BadValueError
from ..journal.audit import (
    GENESIS,
    AuditEvent,
    AuditRow,
    canonical_details,
    chain_hash,
)

if TYPE_CHECKING:
    from ..journal.store import Journal

__all__ = ["Action", "Actor", "ActorKind", "AuditRow", "audit_head", "record", "verify"]


class ActorKind(StrEnum):
    USER = "user"  # a batchpay user who signed in (--as, the console)
    OS_USER = "os-user"  # the operating system's user, for what needs no sign-in (a plain run)
    JOURNAL_WRITER = "journal-writer"  # before any admin exists: whoever can write the journal


class Action(StrEnum):
    """Every action the trail records (team-controls.md), the batch's life included."""

    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    HELD = "held"
    RELEASED = "released"
    CANCELLED = "cancelled"
    SEND_STARTED = "send_started"
    SEND_STOPPED = "send_stopped"
    SEND_FINISHED = "send_finished"
    # Options and settings that affect money.
    ALLOW_REPEAT = "allow_repeat"
    PAY_AGAIN = "pay_again"
    RECOVER = "recover"
    POLICY_CHANGED = "policy_changed"
    # People.
    USER_ADDED = "user_added"
    USER_DISABLED = "user_disabled"
    PASSWORD_CHANGED = "password_changed"
    SIGN_IN_FAILED = "sign_in_failed"
    LOCKED = "locked"
    # Someone signed in (or at the terminal) tried what their role may not do.
    REFUSED = "refused"


@dataclass(frozen=True)
class Actor:
    """Who did it, and how batchpay knows: a signed-in user, the OS user, a journal writer."""

    name: str
    kind: ActorKind


def os_user_name() -> str:
    """The operating system's name for the person running batchpay (as the OS tells it:
    anyone who can set $USER can change it, which is why such an actor is marked so)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no passwd entry and no $USER (a bare container)
        return "unknown"


def os_actor(kind: ActorKind = ActorKind.OS_USER) -> Actor:
    return Actor(os_user_name(), kind)


def utc(now: dt.datetime | None = None) -> dt.datetime:
    """``now`` (an injected clock's reading, for tests) in UTC, else the current time."""
    return dt.datetime.now(dt.UTC) if now is None else now.astimezone(dt.UTC)


def stamp(now: dt.datetime) -> str:
    """A time as the journal keeps it: UTC, ISO 8601, milliseconds (sorts as text)."""
    return now.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def event(
    actor: Actor, action: Action, batch: str | None, details: Mapping[str, object],
    now: dt.datetime | None = None,
) -> AuditEvent:  # fmt: skip
    """A row to append (the journal chains it); ``now`` for an injected clock."""
    return AuditEvent(stamp(utc(now)), actor.name, actor.kind.value, action.value, batch,
                      canonical_details(dict(details)))  # fmt: skip


def record(
    journal: Journal, actor: Actor, action: Action, batch: str | None = None, **details: object
) -> AuditRow:
    """Append one row now, in a transaction of its own (the read of the last hash and the
    insert under one lock: concurrent appenders take turns). ``details`` must be JSON values;
    never put a password, hash or secret in them."""
    return journal.append_audit(event(actor, action, batch, details))


def audit_head(journal: Journal) -> tuple[int, str] | None:
    """The latest row's number and hash (hex), or None for an empty trail. Print it where a
    copy outlives the journal (``head_text``): an earlier copy then shows a rewrite or a cut."""
    last = journal.audit_last()
    return (last.id, last.hash) if last else None


def head_text(head: tuple[int, str] | None) -> str:
    if head is None:
        return "audit head: none (no rows yet)"
    return f"audit head: #{head[0]} sha256:{head[1]}"


@dataclass(frozen=True)
class Verification:
    rows: int  # rows checked (up to and including the first that does not fit)
    head: tuple[int, str] | None  # the latest row as stored
    broken_id: int | None = None  # the first row that does not fit
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_id is None


def verify(journal: Journal) -> Verification:
    """Recompute the whole chain; the first row that does not fit, and why. An edited row
    fails its own hash; a deleted one leaves an id gap (or, renumbered, a prev_hash that is
    not the row before's); a moved one fails its hash, which covers its id."""
    expected_id, prev_hash, checked = 1, GENESIS, 0
    broken: tuple[int, str] | None = None
    for row in journal.audit_rows():
        checked += 1
        if row.id != expected_id:
            missing = f"row #{expected_id} before it is"
            if row.id > expected_id + 1:
                missing = f"rows #{expected_id} to #{row.id - 1} before it are"
            broken = (row.id, f"{missing} missing (deleted)")
        elif row.prev_hash != prev_hash:
            before = "the chain's start" if row.id == 1 else f"row #{row.id - 1}'s hash"
            broken = (row.id, f"its prev_hash is not {before} (a row before it was changed or "
                      "replaced)")  # fmt: skip
        elif chain_hash(row.prev_hash, row.content()) != row.hash:
            broken = (row.id, "its content does not match its hash (edited)")
        if broken:
            break
        expected_id, prev_hash = row.id + 1, row.hash
    head = audit_head(journal)
    if broken is None:
        return Verification(checked, head)
    return Verification(checked, head, broken[0], broken[1])


def batch_rows(journal: Journal, batch: str | None) -> list[AuditRow]:
    """Every row, or those of one batch (named by an unambiguous prefix of its id)."""
    if batch is None:
        return list(journal.audit_rows())
    found = journal.audit_batches_like(batch)
    if len(found) > 1:
        raise BadValueError(
            f"batch {batch!r} is ambiguous in the audit trail: {', '.join(found[:5])}"
        )
    return list(journal.audit_rows(found[0] if found else batch))
