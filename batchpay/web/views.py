"""What the pages and the JSON API show of batches, read from the journal (``reporting``'s
summaries, the batch's life, its approvals and audit rows), and which actions a user may take
on a batch: only those are rendered, and the server refuses the rest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..journal.audit import AuditRow
from ..journal.store import Journal
from ..outcomes import Outcome
from ..reporting import summaries
from ..team.audit import batch_rows
from ..team.life import APPROVERS, ENDED, SENDERS, SUBMITTERS, State
from ..team.policy import effective_policy
from ..team.users import Role, User

ACTIONS = ("submit", "approve", "reject", "hold", "release", "cancel", "send")
# Who may ask for each action at all (the library decides the rest, and says why not).
ROLES: dict[str, tuple[Role, ...]] = {
    "submit": SUBMITTERS, "approve": APPROVERS, "reject": APPROVERS, "hold": (Role.ADMIN,),
    "release": (Role.ADMIN,), "cancel": (Role.ADMIN,), "send": SENDERS,
}  # fmt: skip
UPLOADERS = SUBMITTERS
NAME_SUFFIX = ".name"  # beside a saved upload: the client's file name, for display


@dataclass
class BatchView:
    batch: str
    state: str
    source: str  # what a person calls the file
    rows: int
    total: int  # of the rows that are not invalid
    invalid: int
    outcomes: dict[str, int]
    amounts: dict[str, int]
    created_at: str
    last_activity: str
    account: str
    prepared_by: str | None = None
    submitted_at: str | None = None
    approved_by: list[str] = field(default_factory=list)
    approvals: list[tuple[str, str]] = field(default_factory=list)  # (who, when)
    sent_by: str | None = None
    sent_at: str | None = None
    reason: str = ""
    approvals_needed: int = 0
    path: str = ""  # the source as the journal has it (a saved upload's server-side path)

    def as_json(self) -> dict[str, Any]:
        return {"batch": self.batch, "state": self.state, "rows": self.rows, "total": self.total,
                "outcomes": self.outcomes, "prepared_by": self.prepared_by,
                "approved_by": self.approved_by, "sent_by": self.sent_by,
                "source": self.source, "created_at": self.created_at,
                "last_activity": self.last_activity,
                "approvals_needed": self.approvals_needed}  # fmt: skip


def shown_source(source: str) -> str:
    """A console upload is shown by the name it was uploaded with; any other by its name."""
    path = Path(source)
    label = path.with_name(path.name + NAME_SUFFIX)
    try:
        return label.read_text(encoding="utf-8").strip() or path.name
    except OSError:
        return path.name


def batch_views(
    journal: Journal, env: Mapping[str, str], batch_id: str | None = None
) -> list[BatchView]:
    policy = effective_policy(journal, env)
    lives = journal.lives()
    views = []
    for entry in summaries(journal, batch_id):
        batch = entry["batch"]
        amounts: dict[str, int] = entry["amounts"]
        counts: dict[str, int] = entry["counts"]
        total = sum(a for outcome, a in amounts.items() if outcome != Outcome.INVALID.value)
        view = BatchView(
            batch, entry["state"], shown_source(entry["source"]), entry["rows"], total,
            counts.get(Outcome.INVALID.value, 0), counts, amounts, entry["created_at"],
            entry["updated_at"], entry["account"], approvals_needed=policy.approvals_needed(total),
            path=entry["source"],
        )  # fmt: skip
        life = lives.get(batch)
        if life is not None:
            view.prepared_by, view.submitted_at = life.submitter, life.submitted_at
            view.sent_by, view.sent_at, view.reason = life.sender, life.sent_at, life.reason
            view.last_activity = max(view.last_activity, life.updated_at)
            if life.submitted_at:
                given = journal.approvals(batch, life.submitted_at)
                view.approvals = [(a.approver, a.approved_at) for a in given]
                view.approved_by = [a.approver for a in given]
        views.append(view)
    return sorted(views, key=lambda v: v.last_activity, reverse=True)


def audit_trail(journal: Journal, batch: str) -> list[AuditRow]:
    return [row for row in batch_rows(journal, batch) if row.batch == batch]


def allowed(user: User, action: str) -> bool:
    return user.role in ROLES[action]


def actions_for(user: User, view: BatchView, sending_here: bool) -> list[str]:
    """The actions this user may take on the batch now (the buttons the page shows)."""
    state = State(view.state)
    found = []
    if allowed(user, "submit") and state in (State.DRAFT, State.REJECTED) and not view.invalid:
        found.append("submit")
    if (allowed(user, "approve") and state is State.SUBMITTED and view.prepared_by != user.name
            and user.name not in view.approved_by):  # fmt: skip
        found.append("approve")
    if allowed(user, "reject") and state in (State.SUBMITTED, State.APPROVED):
        found.append("reject")
    if allowed(user, "hold") and state not in (*ENDED, State.HELD):
        found.append("hold")
    if allowed(user, "release") and state is State.HELD:
        found.append("release")
    if allowed(user, "cancel") and state not in ENDED:
        found.append("cancel")
    ready = state in (State.APPROVED, State.STOPPED, State.SENDING) or (
        view.approvals_needed == 0 and state in (State.DRAFT, State.SUBMITTED)
    )
    if allowed(user, "send") and ready and not sending_here and not view.invalid:
        found.append("send")
    return found
