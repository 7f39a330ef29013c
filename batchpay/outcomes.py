"""What an answer from the gateway means: pure functions, table-tested.

``classify`` turns one answer (to a payout request or to a status query) into a Verdict;
``placed_outcome`` turns a placed order's ``data.status`` into an Outcome; ``exit_code`` turns
a run's outcomes into the CLI contract's exit code.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, assert_never

from .config import Protocol


class Outcome(enum.StrEnum):
    INVALID = "invalid"
    PENDING = "pending"
    REJECTED = "rejected"
    UNKNOWN = "unknown"
    PROCESSING = "processing"
    PAID = "paid"
    FAILED = "failed"
    # Placed and paid in part (a data.status in Protocol.partial_statuses): final, never sent
    # again, for a person to settle the rest; read as "failed" it invites paying it all again.
    PARTIAL = "partial"
    # Not sent because the same payout was placed by another batch within the repeat window.
    REPEAT = "repeat"
    # Not sent, and never to be: an admin cancelled the batch (team controls).
    CANCELLED = "cancelled"


FINAL = frozenset(
    {
        Outcome.INVALID,
        Outcome.REJECTED,
        Outcome.PAID,
        Outcome.FAILED,
        Outcome.PARTIAL,
        Outcome.CANCELLED,
    }
)
PLACED = frozenset({Outcome.PROCESSING, Outcome.PAID, Outcome.FAILED, Outcome.PARTIAL})
# What a run's exit code reports as "finished, but look at these rows" (exit 3); cancelled
# rows are not among them: a person's decision, on the record.
NEEDS_A_PERSON = frozenset(
    {Outcome.REJECTED, Outcome.FAILED, Outcome.UNKNOWN, Outcome.INVALID, Outcome.PARTIAL}
)
# What a run considers sending: repeat rows are checked against the window again each run.
TO_SEND = frozenset({Outcome.PENDING, Outcome.UNKNOWN, Outcome.REPEAT})


class Failure(enum.Enum):
    """Why an attempt has no usable answer, set only in the gateway client (gateway/client.py),
    where aiohttp's exceptions and unbelievable bodies become answers; the human text stays in
    ``Answer.error``."""

    TLS = "tls"  # the server's certificate was not trusted: nothing was sent
    CONNECT = "connect"  # the connection was never made (refused, DNS): nothing was sent
    TIMEOUT = "timeout"  # no answer in time: the order may exist
    DROPPED = "dropped"  # the connection broke after the request left: the order may exist
    UNREADABLE = "unreadable"  # a body that is not the gateway's envelope: the order may exist
    # An envelope whose sign does not verify, or whose fields are out of shape, with
    # BATCHPAY_VERIFY_ANSWER_SIGN on: what it says is not believed, so the order may exist.
    UNTRUSTED = "untrusted"


class Verdict(enum.StrEnum):
    PLACED = "placed"  # outer code 0000: the order exists; data.status says how it stands
    DUPLICATE = "duplicate"  # the gateway already holds this tradeNo
    REFUSED = "refused"  # payout: not placed. query: the gateway has no such order
    RETRY = "retry"  # 429 or 503: not processed; try again later
    UNKNOWN = "unknown"  # timeout, reset, other 5xx, unreadable body: it may have been placed


@dataclass(frozen=True)
class Answer:
    """One attempt's answer, as the gateway client saw it."""

    http_status: int | None = None  # None: no HTTP answer at all
    failure: Failure | None = None  # None: an answer was read
    error: str = ""  # the failure in words, for logs and the journal's msg and detail
    code: str = ""
    msg: str = ""
    status: str = ""
    message: str = ""
    platform_trade_no: str = ""
    # data.payAmount as the gateway wrote it, when it is an amount (AMOUNT_TEXT); else "".
    pay_amount: str = ""
    # What was read but not used (a payAmount that is not an amount), for the attempt's record.
    note: str = ""
    retry_after: float | None = None
    has_envelope: bool = False  # a JSON body with an outer code was read
    sandbox: bool = False  # the answer carried SANDBOX_HEADER: a simulated gateway's
    # The JSON object the answer was read from (numbers as their JSON text), for checks that
    # need every field (the live probe's answer_sign_verifies); None when there was none.
    document: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


# HTTP statuses whose body classify never reads: the status alone decides (retry later, or
# the order may exist).
RETRY_STATUSES = (429, 503)


def envelope_decides(http_status: int) -> bool:
    """Whether ``classify`` reads an envelope answered with this HTTP status."""
    return http_status not in RETRY_STATUSES and http_status < 500


def envelope_judged(answer: Answer) -> bool:
    """An envelope was read at an HTTP status where it decides, so the answer check (with
    BATCHPAY_VERIFY_ANSWER_SIGN on) believed it or not: the first such answer of a run tells
    whether the setting fits the gateway."""
    return (
        (answer.has_envelope or answer.failure is Failure.UNTRUSTED)
        and answer.http_status is not None
        and envelope_decides(answer.http_status)
    )


def classify(answer: Answer, protocol: Protocol) -> Verdict:
    if answer.failure is Failure.TLS:
        return Verdict.REFUSED  # never sent: the server is not the one we trust
    if answer.failure is Failure.UNTRUSTED:
        return Verdict.UNKNOWN  # an answer came, and what it says cannot be believed
    if answer.http_status in RETRY_STATUSES or answer.failure is Failure.CONNECT:
        # Not processed: the gateway said so, or no connection was ever made.
        return Verdict.RETRY
    if answer.http_status is None or answer.http_status >= 500 or not answer.has_envelope:
        # No answer, a server error, or a body we cannot read: the order may exist. A 4xx
        # without an envelope was refused by something in front of the gateway.
        if answer.http_status is not None and 400 <= answer.http_status < 500:
            return Verdict.REFUSED
        return Verdict.UNKNOWN
    if answer.code == "0000":
        return Verdict.PLACED
    if answer.code in protocol.duplicate_codes:
        return Verdict.DUPLICATE
    return Verdict.REFUSED


def is_systemic(answer: Answer, protocol: Protocol) -> bool:
    """A refusal that says nothing about the row and everything about the set-up: a signature
    error, an unknown merchant, or a 4xx from something that is not the gateway's API (wrong
    URL, a proxy's login page). Sending more rows cannot help."""
    if answer.failure is Failure.TLS:
        return True
    if answer.has_envelope:
        return answer.code in protocol.systemic_codes or is_insufficient_balance(answer, protocol)
    return answer.http_status is not None and 400 <= answer.http_status < 500


def is_insufficient_balance(answer: Answer, protocol: Protocol) -> bool:
    """A payout refused for the account's balance: the row was fine, the money was not there;
    it stays pending (systemic), to be sent once the balance is topped up."""
    return answer.has_envelope and answer.code in protocol.insufficient_balance_codes


def placed_outcome(status: str, protocol: Protocol) -> Outcome:
    """A placed order's outcome from its data.status."""
    if status == protocol.paid_status:
        return Outcome.PAID
    if status == "" or status in protocol.processing_statuses:
        return Outcome.PROCESSING
    if status in protocol.partial_statuses:
        return Outcome.PARTIAL
    return Outcome.FAILED


# An amount as the gateway may write one: digits, optionally one or two decimals. Anything else
# ("12e3", "-5", "1,000", " 5") is not shown as an amount: a person would act on it.
AMOUNT_TEXT = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,2})?")


def amount_or_empty(value: str) -> str:
    """``value`` when it is an amount (``AMOUNT_TEXT``), else ""."""
    return value if AMOUNT_TEXT.fullmatch(value) else ""


def exit_code(outcomes: Iterable[Outcome], *, stopped: bool = False) -> int:
    """0 all placed and not failed; 3 some rejected, failed, partly paid or unknown; 4 some
    still pending."""
    seen = set(outcomes)
    if stopped or Outcome.PENDING in seen:
        return 4
    if seen & NEEDS_A_PERSON:
        # repeat rows are not a failure: the same payout was placed by an earlier batch;
        # cancelled rows are a person's decision, on the record.
        return 3
    return 0


# Why a row is not paid, in the words a finance clerk reads (the raw codes keep their columns).
REASON_INVALID = "not sent: invalid (see errors)"
REASON_PENDING = "not sent yet: run again"
REASON_UNKNOWN = (
    "unknown: the gateway may hold this order; do not pay by hand, run again or reconcile"
)
# Part of the money reached the person: paying the row's whole amount again by hand would pay
# that part twice.
REASON_PARTIAL = (
    "partly paid: {paid} of {amount} paid; do not pay the whole amount again: ask the gateway "
    "and pay only the rest"
)
REASON_PARTIAL_UNKNOWN = (
    "partly paid (the gateway did not say how much); do not pay the whole amount again: ask "
    "the gateway and pay only the rest"
)
REASON_REPEAT = "not sent: the same payout was placed in batch {batch} (tradeNo {trade_no})"
REASON_CANCELLED = "not sent: the batch was cancelled (see the audit trail); never sent"
REASON_REPEAT_UNNAMED = "not sent: the same payout was placed by another batch (see msg)"
# protection.mark_repeats writes a repeat row's msg as "same payout placed in batch B as tradeNo T".
_REPEAT_MSG = re.compile(r"placed in batch (?P<batch>\S+) as tradeNo (?P<trade_no>\S+)")


def reason(
    outcome: Outcome, code: str, msg: str, status: str, message: str,
    *, amount: int | None = None, paid: str = "",
) -> str:  # fmt: skip
    """In plain words, why a row with this outcome and these codes is not paid ('' when it is
    paid or on its way: nothing for a person to do). ``amount``: the row's whole amount;
    ``paid``: what the gateway said was paid (a partly paid row's payAmount), when known."""
    match outcome:
        case Outcome.PAID | Outcome.PROCESSING:
            return ""
        case Outcome.FAILED:
            return " ".join(["payout failed:", *(p for p in (status, message) if p)])
        case Outcome.REJECTED:
            said = " ".join(p for p in (code, msg) if p) or "no reason given"
            return f"refused: {said}"
        case Outcome.PARTIAL:
            if not paid:
                return REASON_PARTIAL_UNKNOWN
            whole = "the amount" if amount is None else str(amount)
            return REASON_PARTIAL.format(paid=paid, amount=whole)
        case Outcome.INVALID:
            return REASON_INVALID
        case Outcome.PENDING:
            return REASON_PENDING
        case Outcome.UNKNOWN:
            return REASON_UNKNOWN
        case Outcome.CANCELLED:
            return REASON_CANCELLED
        case Outcome.REPEAT:
            found = _REPEAT_MSG.search(msg)
            if found is None:
                return REASON_REPEAT_UNNAMED
            return REASON_REPEAT.format(**found.groupdict())
        case _:  # a new outcome must say its reason here
            assert_never(outcome)
