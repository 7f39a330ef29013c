"""A run's summary: counts and amounts per outcome, what happened, and the next steps."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .journal.reads import BatchInfo
from .journal.rows import JournalRow
from .outcomes import Outcome


@dataclass
class Summary:
    batch_id: str
    source: str
    result_file: str
    journal: str
    counts: dict[str, int]
    amounts: dict[str, int]
    requests: int = 0
    seconds: float = 0.0
    exit_code: int = 0
    dry_run: bool = False
    stopped: bool = False
    stop_reason: str = ""
    next_steps: list[str] = field(default_factory=list)
    error: str = ""  # a failure after sending had started: the counts are the journal's
    account: str = ""
    sandbox: bool = False  # a run against a sandbox: never proof of a payment
    # Every row was placed in an earlier batch and --pay-again was not given: nothing sent.
    nothing_sent: bool = False
    earlier: BatchInfo | None = None
    unknown_trade_nos: list[str] = field(default_factory=list)  # rows left unknown
    # The balance read before the confirmation (BATCHPAY_BALANCE_URL), its amounts as text.
    balance: dict[str, str | None] | None = None

    @property
    def next_step(self) -> str:
        """The most urgent of the next steps (the JSON's ``next_step``, kept for scripts)."""
        return self.next_steps[0] if self.next_steps else ""

    def as_json(self) -> dict[str, Any]:
        earlier = self.earlier
        return {
            "batch": self.batch_id, "source": self.source, "result_file": self.result_file,
            "journal": self.journal, "counts": self.counts, "amounts": self.amounts,
            "requests": self.requests, "seconds": round(self.seconds, 3),
            "exit_code": self.exit_code, "dry_run": self.dry_run, "stopped": self.stopped,
            "stop_reason": self.stop_reason, "next_step": self.next_step,
            "next_steps": self.next_steps, "error": self.error, "account": self.account,
            "sandbox": self.sandbox, "nothing_sent": self.nothing_sent,
            "unknown_trade_nos": self.unknown_trade_nos, "balance": self.balance,
            "earlier_batch": None if earlier is None else {
                "batch": earlier.batch_id, "created_at": earlier.created_at,
                "rows": earlier.rows, "total": earlier.total,
            },
        }  # fmt: skip


def summarize(rows: list[JournalRow]) -> tuple[dict[str, int], dict[str, int]]:
    counts: Counter[str] = Counter()
    amounts: Counter[str] = Counter()
    for row in rows:
        counts[row.outcome.value] += 1
        amounts[row.outcome.value] += row.amount
    order = [o.value for o in Outcome]
    return (
        {k: counts[k] for k in order if counts[k]},
        {k: amounts[k] for k in order if counts[k]},
    )


PROCESSING_NEXT = (
    "{n} row(s) are processing: the gateway took the order, and it is not paid yet. "
    "`batchpay listen` records the gateway's callbacks as payouts end, or `batchpay reconcile` "
    "asks the gateway; `batchpay status` shows where they stand"
)
UNKNOWN_NEXT = (
    "{n} row(s) are unknown: the gateway may hold the order. Do not pay them by hand; run the "
    "same command again (it asks the gateway first), or `batchpay reconcile`"
)
PARTIAL_NEXT = (
    "{n} row(s) are partly paid: the person received part of the amount (the paidAmount "
    "column says how much, when the gateway said). Do not pay the whole amount again: ask the "
    "gateway, then pay only the rest, in a new file"
)
PENDING_NEXT = "run the same command again to send the {n} pending row(s)"
PENDING_AFTER_STOP = (
    "fix what stopped the run (above), then run the same command again to send the {n} "
    "pending row(s)"
)


def next_steps(counts: dict[str, int], *, fix_first: bool = False) -> list[str]:
    """What to do after the run, most urgent first: one line per kind of row left open.
    ``fix_first``: a systemic refusal stopped the run, and running again as it is would only
    meet it again."""
    steps = []
    if counts.get("pending"):
        pending = PENDING_AFTER_STOP if fix_first else PENDING_NEXT
        steps.append(pending.format(n=counts["pending"]))
    if counts.get("unknown"):
        steps.append(UNKNOWN_NEXT.format(n=counts["unknown"]))
    if counts.get("partial"):
        steps.append(PARTIAL_NEXT.format(n=counts["partial"]))
    if counts.get("rejected") or counts.get("failed"):
        steps.append("see the msg and message columns of the rejected and failed rows")
    if counts.get("processing"):
        steps.append(PROCESSING_NEXT.format(n=counts["processing"]))
    return steps


def this_run_note(nothing_sent: bool, earlier: BatchInfo | None) -> str:
    """For the Summary of a run that sent nothing because every row was placed before: the
    rows' states are that batch's, not payouts of today."""
    if not nothing_sent or earlier is None:
        return ""
    return (
        f"sent nothing: every row was placed in batch {earlier.batch_id} on {earlier.date}; "
        "the states below are that batch's (--pay-again pays them again)"
    )
