"""The send rules (gateway/policy.py): every branch of next_step as a named case, the reading of
a status query's answer, reconcile's rule, and properties over any sequence of answers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchpay.config import Protocol
from batchpay.gateway.policy import (
    CONTRADICTED,
    NO_DEFINITE_ANSWER,
    STOPPED,
    USED_UP,
    Action,
    Finding,
    Heard,
    Refusals,
    Request,
    RowState,
    Rules,
    Step,
    next_step,
    query_finding,
    reconciled,
)
from batchpay.outcomes import Answer, Failure, Outcome, Verdict

PROTOCOL = Protocol()
QUERY = Rules(max_attempts=3, can_query=True, protocol=PROTOCOL)
NO_QUERY = Rules(max_attempts=3, can_query=False, protocol=PROTOCOL)

NEW = RowState(ours=True)  # a pending row whose tradeNo batchpay made up
FROM_FILE = RowState(ours=False)  # a pending row whose tradeNo came from the file, never sent
ASKING = RowState(may_exist=True, ask_first=True, ours=True)  # unknown, query configured
UNKNOWN_NO_QUERY = RowState(may_exist=True, ours=True)  # unknown, no query URL


def pay(verdict: Verdict, **fields: object) -> Heard:
    return Heard(Request.PAY, verdict, **fields)  # type: ignore[arg-type]


def query(verdict: Verdict, **fields: object) -> Heard:
    return Heard(Request.QUERY, verdict, **fields)  # type: ignore[arg-type]


PLACED = pay(Verdict.PLACED, status="0015")
PAID = pay(Verdict.PLACED, status="0000")
DUPLICATE = pay(Verdict.DUPLICATE)
REFUSED = pay(Verdict.REFUSED)
SYSTEMIC = pay(Verdict.REFUSED, systemic=True)
RETRY = pay(Verdict.RETRY)
UNKNOWN = pay(Verdict.UNKNOWN)
Q_PLACED = query(Verdict.PLACED, status="0015")
Q_PAID = query(Verdict.PLACED, status="0000")
Q_FAILED = query(Verdict.PLACED, status="0005")
Q_NOT_FOUND = query(Verdict.REFUSED, not_found=True)
Q_REFUSED = query(Verdict.REFUSED)
Q_SYSTEMIC = query(Verdict.REFUSED, systemic=True)
Q_RETRY = query(Verdict.RETRY)
Q_UNKNOWN = query(Verdict.UNKNOWN)
Q_DUPLICATE = query(Verdict.DUPLICATE)


@dataclass(frozen=True)
class Case:
    state: RowState
    heard: Heard | None
    rules: Rules
    action: Action
    outcome: Outcome
    note: str = ""
    refusals: Refusals = Refusals.KEEP
    stopping: bool = False
    then: RowState | None = None  # the state after, when it matters


CASES = {
    # -- the first request --------------------------------------------------------------
    "pending-row-pays-first": Case(NEW, None, QUERY, Action.PAY, Outcome.PENDING),
    "unknown-row-asks-first-with-a-query-url": Case(
        RowState.start(Outcome.UNKNOWN, ours=True, can_query=True), None, QUERY,
        Action.QUERY, Outcome.UNKNOWN,
    ),
    "unknown-row-resends-the-same-tradeno-without-a-query-url": Case(
        RowState.start(Outcome.UNKNOWN, ours=True, can_query=False), None, NO_QUERY,
        Action.PAY, Outcome.UNKNOWN,
    ),
    "pending-row-never-asks-first": Case(
        RowState.start(Outcome.PENDING, ours=True, can_query=True), None, QUERY,
        Action.PAY, Outcome.PENDING,
    ),
    # -- stop ---------------------------------------------------------------------------
    "stop-before-a-pending-row-is-sent-leaves-it-pending": Case(
        NEW, None, QUERY, Action.SETTLE, Outcome.PENDING, STOPPED, stopping=True
    ),
    "stop-before-an-unknown-row-is-asked-leaves-it-unknown": Case(
        ASKING, None, QUERY, Action.SETTLE, Outcome.UNKNOWN, STOPPED, stopping=True
    ),
    "stop-instead-of-a-back-off-after-a-retry": Case(
        NEW, RETRY, QUERY, Action.SETTLE, Outcome.PENDING, STOPPED, stopping=True
    ),
    "stop-after-an-unknown-outcome-leaves-it-unknown": Case(
        NEW, UNKNOWN, NO_QUERY, Action.SETTLE, Outcome.UNKNOWN, STOPPED, stopping=True
    ),
    "stop-after-not-found-does-not-pay": Case(
        ASKING, Q_NOT_FOUND, QUERY, Action.SETTLE, Outcome.PENDING, STOPPED, stopping=True
    ),
    "stop-after-a-duplicate-does-not-query": Case(
        NEW, DUPLICATE, QUERY, Action.SETTLE, Outcome.UNKNOWN, STOPPED, Refusals.RESET,
        stopping=True,
    ),
    "a-placed-answer-settles-even-while-stopping": Case(
        NEW, PLACED, QUERY, Action.SETTLE, Outcome.PROCESSING, refusals=Refusals.RESET,
        stopping=True,
    ),
    # -- payout answers -----------------------------------------------------------------
    "placed-processing": Case(
        NEW, PLACED, QUERY, Action.SETTLE, Outcome.PROCESSING, refusals=Refusals.RESET
    ),
    "placed-paid": Case(NEW, PAID, QUERY, Action.SETTLE, Outcome.PAID, refusals=Refusals.RESET),
    "retry-waits-then-pays-again": Case(
        NEW, RETRY, QUERY, Action.WAIT, Outcome.PENDING, then=RowState(ours=True, pays=1, waits=1)
    ),
    "unknown-with-a-query-url-waits-then-asks": Case(
        NEW, UNKNOWN, QUERY, Action.WAIT, Outcome.UNKNOWN,
        then=RowState(may_exist=True, ask_first=True, ours=True, pays=1, waits=1),
    ),
    "unknown-without-a-query-url-waits-then-resends": Case(
        NEW, UNKNOWN, NO_QUERY, Action.WAIT, Outcome.UNKNOWN,
        then=RowState(may_exist=True, ours=True, pays=1, waits=1),
    ),
    "refusal-rejects": Case(NEW, REFUSED, QUERY, Action.SETTLE, Outcome.REJECTED,
                            refusals=Refusals.COUNT),
    "unknown-then-refusal-stays-unknown": Case(
        RowState(may_exist=True, ours=True, pays=1), REFUSED, NO_QUERY, Action.SETTLE,
        Outcome.UNKNOWN, refusals=Refusals.COUNT,
    ),
    "systemic-refusal-leaves-a-pending-row-pending": Case(
        NEW, SYSTEMIC, QUERY, Action.SETTLE, Outcome.PENDING, refusals=Refusals.COUNT
    ),
    "systemic-refusal-leaves-an-unknown-row-unknown": Case(
        UNKNOWN_NO_QUERY, SYSTEMIC, NO_QUERY, Action.SETTLE, Outcome.UNKNOWN,
        refusals=Refusals.COUNT,
    ),
    "duplicate-with-a-query-url-asks-at-once": Case(
        NEW, DUPLICATE, QUERY, Action.QUERY, Outcome.UNKNOWN, refusals=Refusals.RESET,
        then=RowState(may_exist=True, ask_first=True, ours=True, pays=1, held=True),
    ),
    "not-found-after-a-duplicate-proves-nothing-and-pays-nothing": Case(
        RowState(may_exist=True, ask_first=True, ours=True, pays=1, held=True), Q_NOT_FOUND,
        QUERY, Action.SETTLE, Outcome.UNKNOWN, CONTRADICTED,
    ),
    "duplicate-without-a-query-url-of-our-tradeno-is-processing": Case(
        NEW, DUPLICATE, NO_QUERY, Action.SETTLE, Outcome.PROCESSING, refusals=Refusals.RESET
    ),
    "duplicate-without-a-query-url-of-a-file-tradeno-is-unknown": Case(
        FROM_FILE, DUPLICATE, NO_QUERY, Action.SETTLE, Outcome.UNKNOWN, refusals=Refusals.RESET
    ),
    "duplicate-of-a-file-tradeno-after-our-own-attempt-is-processing": Case(
        RowState(ours=False, pays=1), DUPLICATE, NO_QUERY, Action.SETTLE, Outcome.PROCESSING,
        refusals=Refusals.RESET,
    ),
    "duplicate-of-a-file-tradeno-after-an-unknown-outcome-is-processing": Case(
        RowState(may_exist=True, ours=False, pays=1), DUPLICATE, NO_QUERY, Action.SETTLE,
        Outcome.PROCESSING, refusals=Refusals.RESET,
    ),
    "attempts-used-up-pending": Case(
        RowState(ours=True, pays=2), RETRY, QUERY, Action.SETTLE, Outcome.PENDING, USED_UP
    ),
    "attempts-used-up-after-unknown-stays-unknown": Case(
        RowState(may_exist=True, ours=True, pays=2), UNKNOWN, NO_QUERY, Action.SETTLE,
        Outcome.UNKNOWN, USED_UP,
    ),
    "attempts-used-up-before-the-first-request": Case(
        RowState(ours=True, pays=3), None, QUERY, Action.SETTLE, Outcome.PENDING, USED_UP
    ),
    # -- status query answers -----------------------------------------------------------
    "query-placed-processing": Case(
        ASKING, Q_PLACED, QUERY, Action.SETTLE, Outcome.PROCESSING, refusals=Refusals.RESET
    ),
    "query-placed-paid": Case(
        ASKING, Q_PAID, QUERY, Action.SETTLE, Outcome.PAID, refusals=Refusals.RESET
    ),
    "query-placed-failed": Case(
        ASKING, Q_FAILED, QUERY, Action.SETTLE, Outcome.FAILED, refusals=Refusals.RESET
    ),
    "query-refused-as-not-found-pays-at-once": Case(
        ASKING, Q_NOT_FOUND, QUERY, Action.PAY, Outcome.PENDING,
        then=RowState(ours=True, queries=1),
    ),
    "query-refused-otherwise-stays-unknown": Case(
        ASKING, Q_REFUSED, QUERY, Action.SETTLE, Outcome.UNKNOWN
    ),
    "query-refused-systemically-stays-unknown-and-stops": Case(
        ASKING, Q_SYSTEMIC, QUERY, Action.SETTLE, Outcome.UNKNOWN, refusals=Refusals.COUNT
    ),
    "query-failing-is-retried-after-a-wait": Case(
        ASKING, Q_UNKNOWN, QUERY, Action.WAIT, Outcome.UNKNOWN,
        then=RowState(may_exist=True, ask_first=True, ours=True, queries=1, waits=1),
    ),
    "query-503-is-retried-after-a-wait": Case(
        ASKING, Q_RETRY, QUERY, Action.WAIT, Outcome.UNKNOWN,
    ),
    "query-duplicate-code-is-no-answer": Case(
        ASKING, Q_DUPLICATE, QUERY, Action.WAIT, Outcome.UNKNOWN,
    ),
    "queries-used-up-stay-unknown": Case(
        RowState(may_exist=True, ask_first=True, ours=True, queries=2), Q_UNKNOWN, QUERY,
        Action.SETTLE, Outcome.UNKNOWN, NO_DEFINITE_ANSWER,
    ),
    "not-found-with-attempts-used-up-stays-pending": Case(
        RowState(may_exist=True, ask_first=True, ours=True, pays=3), Q_NOT_FOUND, QUERY,
        Action.SETTLE, Outcome.PENDING, USED_UP,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_next_step_follows_the_send_rules(case: Case) -> None:
    step = next_step(case.state, case.heard, case.rules, stopping=case.stopping)
    assert (step.action, step.outcome, step.note, step.refusals) == (
        case.action, case.outcome, case.note, case.refusals,
    )  # fmt: skip
    if case.then is not None:
        assert step.state == case.then


def test_a_row_that_met_a_systemic_refusal_is_recorded_by_that_answer() -> None:
    step = next_step(NEW, SYSTEMIC, QUERY)
    assert step.final  # the answer settles it; no note replaces its msg
    assert not next_step(NEW, None, QUERY, stopping=True).final


# -- reading answers ------------------------------------------------------------------------


def envelope(code: str, http_status: int = 200) -> Answer:
    return Answer(http_status=http_status, code=code, has_envelope=True)


FINDINGS = {
    "0000-placed": (envelope("0000"), PROTOCOL, Finding.PLACED),
    "1005-absent": (envelope("1005"), PROTOCOL, Finding.ABSENT),
    "1004-refused-proves-nothing": (envelope("1004"), PROTOCOL, Finding.REFUSED),
    "9999-refused-proves-nothing": (envelope("9999"), PROTOCOL, Finding.REFUSED),
    "1005-not-a-not-found-code-here": (
        envelope("1005"), Protocol(not_found_codes=frozenset({"2005"})), Finding.REFUSED,
    ),
    "2005-configured-not-found": (
        envelope("2005"), Protocol(not_found_codes=frozenset({"2005"})), Finding.ABSENT,
    ),
    "1003-signature-systemic": (envelope("1003"), PROTOCOL, Finding.SYSTEMIC),
    "1001-merchant-systemic": (envelope("1001"), PROTOCOL, Finding.SYSTEMIC),
    "404-page-systemic": (Answer(http_status=404), PROTOCOL, Finding.SYSTEMIC),
    "1005-with-http-500-no-answer": (envelope("1005", 500), PROTOCOL, Finding.NO_ANSWER),
    "503-no-answer": (Answer(http_status=503), PROTOCOL, Finding.NO_ANSWER),
    "garbage-no-answer": (
        Answer(http_status=200, failure=Failure.UNREADABLE, error="unreadable body"), PROTOCOL,
        Finding.NO_ANSWER,
    ),
    "timeout-no-answer": (
        Answer(failure=Failure.TIMEOUT, error="timeout"), PROTOCOL, Finding.NO_ANSWER,
    ),
}  # fmt: skip


@pytest.mark.parametrize(("answer", "protocol", "finding"), FINDINGS.values(), ids=FINDINGS.keys())
def test_query_finding_reads_a_status_query_answer(
    answer: Answer, protocol: Protocol, finding: Finding
) -> None:
    assert query_finding(Heard.of(Request.QUERY, answer, protocol)) is finding


RECONCILED = {
    "unknown-placed-paid": (Outcome.UNKNOWN, Finding.PLACED, "0000", Outcome.PAID),
    "unknown-placed-processing": (Outcome.UNKNOWN, Finding.PLACED, "0015", Outcome.PROCESSING),
    "processing-placed-failed": (Outcome.PROCESSING, Finding.PLACED, "0005", Outcome.FAILED),
    "unknown-absent-pending": (Outcome.UNKNOWN, Finding.ABSENT, "", Outcome.PENDING),
    "processing-absent-keeps-processing": (
        Outcome.PROCESSING, Finding.ABSENT, "", Outcome.PROCESSING,
    ),
    "unknown-refused-stays-unknown": (Outcome.UNKNOWN, Finding.REFUSED, "", Outcome.UNKNOWN),
    "processing-refused-keeps-processing": (
        Outcome.PROCESSING, Finding.REFUSED, "", Outcome.PROCESSING,
    ),
}  # fmt: skip


@pytest.mark.parametrize(("current", "finding", "status", "after"), RECONCILED.values(),
                         ids=RECONCILED.keys())  # fmt: skip
def test_reconciled_makes_a_row_pending_only_when_the_order_is_absent(
    current: Outcome, finding: Finding, status: str, after: Outcome
) -> None:
    assert reconciled(current, finding, status, PROTOCOL) is after


# -- properties over any sequence of answers ------------------------------------------------

ANY_HEARD = st.builds(
    Heard,
    request=st.just(Request.PAY),
    verdict=st.sampled_from(list(Verdict)),
    systemic=st.booleans(),
    not_found=st.booleans(),
    status=st.sampled_from(["0000", "0015", "0005", ""]),
)


def drive(
    start: RowState, rules: Rules, answers: list[Heard], stop_at: int | None
) -> tuple[list[tuple[RowState, Heard | None, Step]], list[Action]]:
    """Run the rules as the dispatcher does, answering each request with the next answer
    (of the request's kind); the run stops once ``stop_at`` requests were made."""
    moves: list[tuple[RowState, Heard | None, Step]] = []
    requests: list[Action] = []
    feed = iter(answers)
    state, heard = start, None
    while True:
        stopping = stop_at is not None and len(requests) >= stop_at
        step = next_step(state, heard, rules, stopping=stopping)
        moves.append((state, heard, step))
        if step.action is Action.SETTLE:
            return moves, requests
        state, heard = step.state, None
        if step.action is Action.WAIT:
            continue
        if stop_at is not None and len(requests) >= stop_at:
            continue  # the stop came while it waited for its turn: next_step settles it
        requests.append(step.action)
        given = next(feed, None) or Heard(Request.PAY, Verdict.UNKNOWN)
        kind = Request.QUERY if step.action is Action.QUERY else Request.PAY
        heard = Heard(kind, given.verdict, given.systemic, given.not_found, given.status)


@given(
    unknown=st.booleans(),
    ours=st.booleans(),
    can_query=st.booleans(),
    max_attempts=st.integers(1, 5),
    answers=st.lists(ANY_HEARD, max_size=30),
    stop_at=st.none() | st.integers(0, 10),
)
def test_any_answers_settle_within_the_attempts_and_never_deny_a_possible_order(
    unknown: bool, ours: bool, can_query: bool, max_attempts: int, answers: list[Heard],
    stop_at: int | None,
) -> None:  # fmt: skip
    rules = Rules(max_attempts, can_query, PROTOCOL)
    start = RowState.start(Outcome.UNKNOWN if unknown else Outcome.PENDING, ours=ours,
                           can_query=can_query)  # fmt: skip
    moves, requests = drive(start, rules, answers, stop_at)
    assert moves[-1][2].action is Action.SETTLE
    assert requests.count(Action.PAY) <= max_attempts
    if stop_at is not None:
        assert len(requests) <= stop_at
    if not can_query:
        assert Action.QUERY not in requests
    for before, heard, step in moves:
        # Once the order may exist, only a status query's not-found makes the row pending
        # or rejected again; and a row never claims to be placed without a placing answer.
        if before.may_exist and step.outcome in (Outcome.PENDING, Outcome.REJECTED):
            assert heard is not None and heard.request is Request.QUERY and heard.not_found
            assert heard.verdict is Verdict.REFUSED and not heard.systemic
        if step.outcome in (Outcome.PAID, Outcome.FAILED):
            assert heard is not None and heard.verdict is Verdict.PLACED
        if step.outcome is Outcome.PROCESSING:
            assert heard is not None and heard.verdict in (Verdict.PLACED, Verdict.DUPLICATE)
