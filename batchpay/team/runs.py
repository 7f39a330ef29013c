"""A run under the team's controls: the journal's policy (limits, approvals), who sends, and
what the batch's life and the audit trail say of the run. ``payrun.run_batch`` calls these in
order: ``check`` before the confirmation, ``start`` once confirmed, ``finish`` after sending.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..journal.rows import JournalRow
from ..limits import Limits, enforce
from ..outcomes import Outcome
from .audit import Action, Actor, audit_head, head_text, os_actor
from .life import Content, content_of
from .policy import Policy, effective_policy
from .sending import finish_sending, may_send, people_rows, start_sending, watch

if TYPE_CHECKING:
    from ..journal.store import Journal

log = logging.getLogger("batchpay.team")


@dataclass
class RunControls:
    journal: Journal
    actor: Actor
    policy: Policy
    content: Content
    account: str
    money_options: tuple[Action, ...] = ()
    rows: Sequence[JournalRow] = ()  # the batch's rows, as checked

    @classmethod
    def of(
        cls, journal: Journal, env: Mapping[str, str], sender: Actor | None, *, batch_id: str,
        content_hash: str, rows: Sequence[JournalRow], account: str, practice: bool,
        allow_repeat: bool, pay_again: bool,
    ) -> RunControls:  # fmt: skip
        policy = effective_policy(journal, env)
        if practice:
            # An in-process sandbox's batch lives for one run in a journal of its own: nobody
            # could approve it. Its limits still apply, as practice for the real ones.
            policy = replace(policy, approvals=0, sides=())
        options = tuple(
            action
            for action, used in ((Action.ALLOW_REPEAT, allow_repeat),
                                 (Action.PAY_AGAIN, pay_again))
            if used
        )  # fmt: skip
        content = content_of(batch_id, content_hash, rows)
        return cls(journal, sender or os_actor(), policy, content, account, options)

    @property
    def limits(self) -> Limits:
        p = self.policy
        return Limits(p.max_row_amount, p.max_batch_total, p.daily_total)

    def check(self, rows: Sequence[JournalRow], to_send: Sequence[JournalRow], *,
              sending: bool) -> None:  # fmt: skip
        """Before the confirmation: the limits (dry runs too), and whether the batch may be
        sent (its state, its approvals) when it is about to be."""
        self.rows = rows
        enforce(self.limits, self.journal, self.account, self.content.batch_id, rows, to_send)
        if sending and to_send:
            may_send(self.journal, self.actor, self.content, self.policy)

    def start(self, to_send: Sequence[JournalRow]) -> None:
        rows, self.rows = self.rows, ()  # not held past the start (a 100k-row batch)
        start_sending(
            self.journal, self.actor, self.content, self.policy, rows=len(to_send),
            amount=sum(r.amount for r in to_send), options=[a.value for a in self.money_options],
            recheck=lambda: enforce(self.limits, self.journal, self.account,
                                    self.content.batch_id, rows, to_send),
        )  # fmt: skip

    def watch(self) -> str | None:
        return watch(self.journal, self.content.batch_id)

    def watcher(self, stop: Callable[[], str | None] | None) -> Callable[[], str | None]:
        """What the sender asks before each row: the caller's own stop first (a console
        shutting down), then the journal's (a hold or cancel by another process)."""
        if stop is None:
            return self.watch
        return lambda: stop() or self.watch()

    def finish(self, *, stopped: bool, reason: str) -> None:
        totals = self.journal.outcome_totals(self.content.batch_id)
        counts = {t.outcome: t.count for t in totals}
        left = bool(counts.get(Outcome.PENDING.value))
        finish_sending(self.journal, self.actor, self.content.batch_id, stopped=stopped or left,
                       reason=reason, counts=counts)  # fmt: skip
        # In every log: a later copy of the trail must contain this row, unchanged.
        log.info("batch %s: %s", self.content.batch_id, head_text(audit_head(self.journal)))

    def people(self) -> list[list[str]]:
        return people_rows(self.journal, self.content.batch_id)
