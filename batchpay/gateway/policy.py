"""The send rules as data: what to do next with one row, and what the row is meanwhile.

``next_step`` is pure: the row's state, the last answer (``Heard``, or None before the first
request and after a wait), the run's ``Rules`` and whether the run is stopping go in; the next
``Action`` (pay, query, wait and retry, settle), the row's outcome and the new state come out.
The dispatcher does the I/O and asks this module; ``reconcile`` asks ``query_finding`` and
``reconciled`` the same way, so a status query's answer means the same thing everywhere.

The rules that keep money safe (gateway contract, section 5):
- a row that may have been placed is never reported ``pending`` or ``rejected``, unless a
  status query answered one of ``Protocol.not_found_codes`` (the gateway has no such order);
- any other refusal of a status query proves nothing: the row stays ``unknown``;
- an answer that is not believed (``Failure.UNTRUSTED``: its sign does not verify, or a field
  is out of shape) is an unknown outcome: after a payout the row may exist (queried before
  any re-send), after a status query it is no definite answer (the row stays ``unknown``);
- a duplicate-tradeNo answer is never a failure;
- a stopping run hands no new request over; what it has not sent keeps its state.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from ..config import Protocol
from ..outcomes import (
    Answer,
    Failure,
    Outcome,
    Verdict,
    classify,
    is_systemic,
    placed_outcome,
)

STOPPED = "stopped before this row settled"
USED_UP = "attempts used up"
NO_DEFINITE_ANSWER = "no definite answer"
CONTRADICTED = "the gateway said it holds this tradeNo, then that it has no such order"


class Action(enum.StrEnum):
    PAY = "pay"  # send the payout request (the same tradeNo every time)
    QUERY = "query"  # ask the status query about the tradeNo
    WAIT = "wait"  # back off, then ask again (with no new answer)
    SETTLE = "settle"  # this run is done with the row


class Request(enum.StrEnum):
    PAY = "pay"
    QUERY = "query"


class Refusals(enum.Enum):
    """What an answer does to the run's stop rules (consecutive and systemic refusals)."""

    KEEP = "keep"
    COUNT = "count"  # a refusal: counted, and a systemic one stops the run
    RESET = "reset"  # the gateway accepted something: the count starts again


class Finding(enum.StrEnum):
    """What a status query's answer proves about the order."""

    PLACED = "placed"  # the order exists; data.status says how it stands
    ABSENT = "absent"  # one of not_found_codes: the gateway has no such order
    REFUSED = "refused"  # another non-systemic refusal: proves nothing
    SYSTEMIC = "systemic"  # says nothing about the row, everything about the set-up
    NO_ANSWER = "no answer"  # retry, unknown, unreadable: ask again later


# The rule's values are NamedTuples, not dataclasses: they are made several times for every
# request, and a NamedTuple is made and copied (``_replace``) several times faster.


class Heard(NamedTuple):
    """The last answer, reduced to what the rules need."""

    request: Request
    verdict: Verdict
    systemic: bool = False
    not_found: bool = False  # the outer code is one of not_found_codes
    status: str = ""  # a placed order's data.status
    untrusted: bool = False  # Failure.UNTRUSTED: an answer came and is not believed

    @classmethod
    def of(cls, request: Request, answer: Answer, protocol: Protocol) -> Heard:
        verdict = classify(answer, protocol)
        return cls(
            request=request,
            verdict=verdict,
            systemic=verdict is Verdict.REFUSED and is_systemic(answer, protocol),
            not_found=answer.has_envelope and answer.code in protocol.not_found_codes,
            status=answer.status,
            untrusted=answer.failure is Failure.UNTRUSTED,
        )


class Rules(NamedTuple):
    """What holds for every row of a run."""

    max_attempts: int
    can_query: bool
    protocol: Protocol = Protocol()


class RowState(NamedTuple):
    may_exist: bool = False  # the gateway may hold this tradeNo's order
    ask_first: bool = False  # the next request is a status query
    ours: bool = False  # batchpay made this tradeNo up, or sent it in an earlier run
    pays: int = 0
    queries: int = 0
    waits: int = 0  # back-offs so far: the next one is longer
    held: bool = False  # the gateway answered "duplicate": it said it holds this tradeNo

    @classmethod
    def start(cls, outcome: Outcome, *, ours: bool, can_query: bool) -> RowState:
        """A row about to be sent: an ``unknown`` one may have been placed by an earlier run,
        so the gateway is asked first when it can be."""
        unknown = outcome is Outcome.UNKNOWN
        return cls(may_exist=unknown, ask_first=unknown and can_query, ours=ours)

    @property
    def unsettled(self) -> Outcome:
        """The row's outcome while nothing definite is known."""
        return Outcome.UNKNOWN if self.may_exist else Outcome.PENDING


class Step(NamedTuple):
    action: Action
    state: RowState
    outcome: Outcome  # the row's outcome now (recorded with the last answer, if any)
    note: str = ""  # why the row settles without the last answer settling it
    refusals: Refusals = Refusals.KEEP

    @property
    def final(self) -> bool:
        """The last answer itself settles the row (a settle with a note does it later)."""
        return self.action is Action.SETTLE and not self.note


def query_finding(heard: Heard) -> Finding:
    """What a status query's answer proves. Only a not-found code makes an order absent: a
    gateway that refuses a query for another reason (a parameter it dislikes, a rate rule)
    may still hold the order."""
    if heard.verdict is Verdict.PLACED:
        return Finding.PLACED
    if heard.verdict is Verdict.REFUSED:
        if heard.systemic:
            return Finding.SYSTEMIC
        return Finding.ABSENT if heard.not_found else Finding.REFUSED
    return Finding.NO_ANSWER


def next_step(
    state: RowState, heard: Heard | None, rules: Rules, *, stopping: bool = False
) -> Step:
    """The next thing to do with a row, and its outcome meanwhile."""
    if heard is None:
        return _request(state, state.unsettled, rules, stopping=stopping)
    if heard.request is Request.QUERY:
        return _after_query(state._replace(queries=state.queries + 1), heard, rules, stopping)
    return _after_pay(state._replace(pays=state.pays + 1), heard, rules, stopping)


def _request(
    state: RowState,
    outcome: Outcome,
    rules: Rules,
    *,
    stopping: bool,
    wait: bool = False,
    refusals: Refusals = Refusals.KEEP,
) -> Step:
    """The next request (after a wait when ``wait``), unless the run stops or the row's
    attempts are used up: then it settles as it stands."""
    if stopping:
        return Step(Action.SETTLE, state, state.unsettled, STOPPED, refusals)
    if state.ask_first and state.queries >= rules.max_attempts:
        return Step(Action.SETTLE, state, Outcome.UNKNOWN, NO_DEFINITE_ANSWER, refusals)
    if not state.ask_first and state.pays >= rules.max_attempts:
        return Step(Action.SETTLE, state, state.unsettled, USED_UP, refusals)
    if wait:
        return Step(Action.WAIT, state._replace(waits=state.waits + 1), outcome, "", refusals)
    action = Action.QUERY if state.ask_first else Action.PAY
    return Step(action, state, outcome, "", refusals)


def _after_query(state: RowState, heard: Heard, rules: Rules, stopping: bool) -> Step:
    finding = query_finding(heard)
    if finding is Finding.PLACED:
        outcome = placed_outcome(heard.status, rules.protocol)
        return Step(Action.SETTLE, state, outcome, refusals=Refusals.RESET)
    if finding is Finding.ABSENT and state.held:
        # It said it holds this tradeNo: a later "no such order" proves nothing. Paying again
        # could pay twice; a refusal then would read "rejected" for a placed order.
        return Step(Action.SETTLE, state, Outcome.UNKNOWN, CONTRADICTED)
    if finding is Finding.ABSENT:
        # The gateway has no such order: sending the same tradeNo is safe, at once.
        absent = state._replace(may_exist=False, ask_first=False)
        return _request(absent, Outcome.PENDING, rules, stopping=stopping)
    if finding is Finding.REFUSED:
        # Asking again would be refused again, and paying could pay twice.
        return Step(Action.SETTLE, state, Outcome.UNKNOWN)
    if finding is Finding.SYSTEMIC:
        # The run stops (the dispatcher's stop rules): the row stays as it stands.
        return Step(Action.SETTLE, state, state.unsettled, refusals=Refusals.COUNT)
    if heard.untrusted:
        # Asking again is most likely answered the same way (a setting, something in the
        # way): the row stays unknown for reconcile or the next run to ask.
        return Step(Action.SETTLE, state, Outcome.UNKNOWN, NO_DEFINITE_ANSWER)
    return _request(state, Outcome.UNKNOWN, rules, stopping=stopping, wait=True)


def _after_pay(state: RowState, heard: Heard, rules: Rules, stopping: bool) -> Step:
    verdict = heard.verdict
    if verdict is Verdict.PLACED:
        outcome = placed_outcome(heard.status, rules.protocol)
        return Step(Action.SETTLE, state, outcome, refusals=Refusals.RESET)
    if verdict is Verdict.DUPLICATE:
        if rules.can_query:
            # The gateway holds this tradeNo: its status query says how the order stands.
            asking = state._replace(may_exist=True, ask_first=True, held=True)
            return _request(
                asking, Outcome.UNKNOWN, rules, stopping=stopping, refusals=Refusals.RESET
            )
        # Without a query: batchpay made this tradeNo up, or sent it before, so the order the
        # gateway holds is this row's. A tradeNo taken from the file and never sent may be
        # another order's: that stays unknown.
        ours = state.ours or state.pays > 1 or state.may_exist
        outcome = Outcome.PROCESSING if ours else Outcome.UNKNOWN
        return Step(Action.SETTLE, state, outcome, refusals=Refusals.RESET)
    if verdict is Verdict.REFUSED:
        if heard.systemic:
            # Says nothing about this row: it stays to be sent once the set-up is fixed.
            return Step(Action.SETTLE, state, state.unsettled, refusals=Refusals.COUNT)
        # A refusal after an unknown outcome proves nothing: the first attempt may be placed.
        outcome = Outcome.UNKNOWN if state.may_exist else Outcome.REJECTED
        return Step(Action.SETTLE, state, outcome, refusals=Refusals.COUNT)
    if verdict is Verdict.UNKNOWN:
        state = state._replace(may_exist=True, ask_first=rules.can_query)
    return _request(state, state.unsettled, rules, stopping=stopping, wait=True)


def reconciled(current: Outcome, finding: Finding, status: str, protocol: Protocol) -> Outcome:
    """A row's outcome after ``batchpay reconcile`` asked about it (``current``: processing or
    unknown). Only an absent order makes an unknown row pending; a processing row keeps its
    state then (the gateway did say it placed it), and the answer is on record."""
    if finding is Finding.PLACED:
        return placed_outcome(status, protocol)
    if finding is Finding.ABSENT and current is Outcome.UNKNOWN:
        return Outcome.PENDING
    return current
