"""The policy: how many approvals a batch needs, above which total, and the limits. It lives in
the journal, set by an admin (every change audited, old and new value); the environment and
the configuration file may only tighten it, never loosen it, so ``BATCHPAY_APPROVALS=0`` on a
preparer's command line changes nothing when the journal says 2.

For the batch's life: ``effective_policy(journal, env) -> Policy``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import AccessError, BadValueError, ConfigError
from ..journal.audit import AuditEvent
from .audit import Action, event, stamp, utc
from .auth import require_role
from .users import Role, User, refuse

if TYPE_CHECKING:
    from ..journal.store import Journal

# policy key -> its setting in the environment (and, in lower case, the configuration file)
VARIABLES = {
    "approvals": "BATCHPAY_APPROVALS",
    "approval_above": "BATCHPAY_APPROVAL_ABOVE",
    "max_row_amount": "BATCHPAY_MAX_ROW_AMOUNT",
    "max_batch_total": "BATCHPAY_MAX_BATCH_TOTAL",
    "daily_total": "BATCHPAY_DAILY_TOTAL",
}
MAX_APPROVALS = 99
# The sheet's amount forms: 1000, 1,000, 1000.00.
AMOUNT = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.0+)?")

BAD_APPROVALS = (
    "{where} must be a whole number of approvals from 0 to {most}, or empty for the default "
    "(0), not {value!r}"
)
BAD_AMOUNT = (
    "{where} must be a whole amount in yuan (1000, 1,000 or 1000.00), or empty for none, "
    "not {value!r}"
)
UNKNOWN_KEY = "unknown policy key {key!r}; known: {known}"
NOT_ASSIGNMENT = "{text!r} is not KEY=VALUE (KEY= unsets it); keys: {known}"
TWICE = "policy key {key!r} is given twice"


@dataclass(frozen=True)
class Policy:
    """What applies now: the journal's policy tightened by the environment."""

    approvals: int = 0  # approvals from distinct approvers or admins, never the submitter
    approval_above: int | None = None  # batches totalling at most this need none
    max_row_amount: int | None = None
    max_batch_total: int | None = None
    daily_total: int | None = None  # on one gateway account, over the last 24 hours
    # Each side's (approvals, approval_above): a threshold relaxes only its own side's
    # approvals, so a threshold in the environment never lets a batch past the journal's.
    # (Derived from the fields' sources: not part of what a policy is equal to.)
    sides: tuple[tuple[int, int | None], ...] = field(default=(), compare=False, repr=False)

    def approvals_needed(self, total: int) -> int:
        """Approvals a batch of this total needs: the most any side asks for."""
        rules = self.sides or ((self.approvals, self.approval_above),)
        return max(0 if above is not None and total <= above else n for n, above in rules)


@dataclass(frozen=True)
class PolicyEntry:
    """One key as ``policy show`` tells it: each side's value, the effective one, and why."""

    key: str
    variable: str
    journal: int | None
    environment: int | None
    effective: int | None
    source: str  # "journal", the environment's label, or "default"


def parse_value(
    key: str, text: str, where: str, error: type[Exception] = ConfigError
) -> int | None:
    """A policy value from text (None: unset, for an amount key); ``where`` names it."""
    value = text.strip()
    if not value:
        return None  # unset: the other side, or the default, decides
    if key == "approvals":
        if not re.fullmatch(r"[0-9]{1,2}", value) or int(value) > MAX_APPROVALS:
            raise error(BAD_APPROVALS.format(where=where, most=MAX_APPROVALS, value=text))
        return int(value)
    if not AMOUNT.fullmatch(value) or len(value.split(".")[0].replace(",", "")) > 18:
        raise error(BAD_AMOUNT.format(where=where, value=text))
    return int(value.split(".")[0].replace(",", ""))


def _journal_side(journal: Journal) -> dict[str, int | None]:
    stored = journal.policy_values()
    return {key: parse_value(key, stored[key], f"the journal's policy {key}") if key in stored
            else None for key in VARIABLES}  # fmt: skip


def _environment_side(env: Mapping[str, str]) -> dict[str, int | None]:
    return {key: parse_value(key, env[name], name) if env.get(name, "").strip() else None
            for key, name in VARIABLES.items()}  # fmt: skip


def _tighter(key: str, journal: int | None, environment: int | None) -> int | None:
    """More approvals, a lower limit or threshold: whichever side asks for more care."""
    values = [v for v in (journal, environment) if v is not None]
    if not values:
        return None
    return max(values) if key == "approvals" else min(values)


def effective_policy(journal: Journal, env: Mapping[str, str]) -> Policy:
    """The policy in force: the journal's, each key tightened by ``env`` (the BATCHPAY_*
    settings, the configuration file's included). A malformed value is a ConfigError
    naming it (exit 2), from either side."""
    ours, theirs = _journal_side(journal), _environment_side(env)
    values = {key: _tighter(key, ours[key], theirs[key]) for key in VARIABLES}
    approvals = values.pop("approvals")
    sides = tuple((side["approvals"] or 0, side["approval_above"]) for side in (ours, theirs))
    return Policy(approvals=approvals or 0, sides=sides, **values)


def describe_policy(
    journal: Journal, env: Mapping[str, str], labels: Mapping[str, str] | None = None
) -> list[PolicyEntry]:
    """Each key for ``policy show``. ``labels``: where each variable came from (the
    environment, the configuration file), as the command line knows it."""
    ours, theirs = _journal_side(journal), _environment_side(env)
    entries = []
    for key, name in VARIABLES.items():
        effective = _tighter(key, ours[key], theirs[key])
        if effective is None:
            source = "default"
            effective = 0 if key == "approvals" else None
        elif effective == ours[key]:
            source = "journal"
        else:
            source = (labels or {}).get(name, "environment")
        entries.append(PolicyEntry(key, name, ours[key], theirs[key], effective, source))
    return entries


def parse_assignments(texts: Iterable[str]) -> dict[str, int | None]:
    """``KEY=VALUE`` arguments (``KEY=`` unsets an amount), each checked: BadValueError."""
    known = ", ".join(VARIABLES)
    found: dict[str, int | None] = {}
    for text in texts:
        key, sign, value = text.partition("=")
        key = key.strip().lower()
        if not sign:
            raise BadValueError(NOT_ASSIGNMENT.format(text=text, known=known))
        if key not in VARIABLES:
            raise BadValueError(UNKNOWN_KEY.format(key=key, known=known))
        if key in found:
            raise BadValueError(TWICE.format(key=key))
        found[key] = parse_value(key, value, f"policy {key}", BadValueError)
    return found


def set_policy(
    journal: Journal, changes: Mapping[str, int | None], *, by: User,
    now: dt.datetime | None = None,
) -> dict[str, tuple[str | None, str | None]]:  # fmt: skip
    """Set the policy (an admin only; a refusal is audited); returns what changed, key ->
    (old, new) as stored text, each change one audit row written with it."""
    try:
        require_role(by, Role.ADMIN)
    except AccessError as refused:
        refuse(journal, by.actor, "policy set", str(refused), now)
    texts = {key: None if value is None else str(value) for key, value in changes.items()}

    def events(changed: dict[str, tuple[str | None, str | None]]) -> list[AuditEvent]:
        return [
            event(by.actor, Action.POLICY_CHANGED, None, {"key": key, "old": old, "new": new}, now)
            for key, (old, new) in changed.items()
        ]

    return journal.change_policy(texts, at=stamp(utc(now)), by=by.name, events=events)
