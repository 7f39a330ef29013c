"""What the journal stores, as Python values: the rows a file plans, the rows the journal
holds, the answers recorded, and the identities behind them (a row's key, a payout's
fingerprint, a batch's content hash, new tradeNos). No SQL here: that is journal.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .outcomes import Outcome

NOTE = "note"  # an Update that is not an attempt: no answer, just the row's new state


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def new_trade_nos(count: int, prefix: str = "") -> set[str]:
    """Up to ``count`` distinct tradeNos of the contract's recommended form: yyyyMMddHHmmss +
    10 random digits (fewer only when random draws collide), after ``prefix``."""
    stamp = prefix + dt.datetime.now().strftime("%Y%m%d%H%M%S")
    draws = np.frombuffer(secrets.token_bytes(8 * count), dtype=np.uint64)
    # 2**64 is not a multiple of 10**10: the digits are uniform to within 1 part in 10**9.
    return {f"{stamp}{int(d):010d}" for d in draws % np.uint64(10**10)}


@dataclass(frozen=True)
class SheetRow:
    """One row of the file, as the journal plans it."""

    sheet_row: int
    fields: dict[str, str]  # the payout fields, normalized; tradeNo '' when not given
    amount: int
    valid: bool
    cells: list[str] = field(default_factory=list)  # the row as in the file, for reports
    errors: str = ""  # validation problems and warnings, as the result file shows them

    @cached_property
    def key(self) -> str:
        return json.dumps(self.fields, sort_keys=True, ensure_ascii=False)

    @cached_property
    def fingerprint(self) -> str:
        return payout_fingerprint(self.fields)


# The fields that make two rows the same payout to the same person, whatever their tradeNo.
PAYOUT_IDENTITY = ("accountNo", "amount", "firstname", "lastname", "mobile", "email", "remark")


def payout_fingerprint(fields: dict[str, str]) -> str:
    identity = json.dumps([fields.get(name, "") for name in PAYOUT_IDENTITY], ensure_ascii=False)
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]


@dataclass
class JournalRow:
    batch_id: str
    position: int
    sheet_row: int
    trade_no: str | None
    assigned: bool
    amount: int
    fields: dict[str, str]
    outcome: Outcome
    code: str = ""
    msg: str = ""
    status: str = ""
    message: str = ""
    platform_trade_no: str = ""
    attempts: int = 0
    in_flight: bool = False  # claimed for sending and not settled: the order may exist
    flag: str = ""  # a contradiction to look at (a conflicting final callback)
    fingerprint: str = ""  # payout_fingerprint(fields), as planned


@dataclass(frozen=True)
class Update:
    """An answer to record: the row's new state and the attempt that produced it."""

    trade_no: str
    outcome: Outcome
    kind: str  # "pay" or "query"
    verdict: str
    http_status: int | None = None
    code: str = ""
    msg: str = ""
    status: str = ""
    message: str = ""
    platform_trade_no: str = ""
    detail: str = ""
    counts_as_attempt: bool = True
    settled: bool = True  # the run is done with the row: it is no longer in flight


def content_hash(rows: Sequence[SheetRow]) -> str:
    digest = hashlib.sha256()
    for key in sorted(row.key for row in rows):
        digest.update(key.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass(frozen=True)
class CallbackTarget:
    """The row a callback names, as it stands when the callback arrives."""

    outcome: Outcome
    status: str
    amount: int
    platform_trade_no: str


@dataclass(frozen=True)
class CallbackChange:
    """What a callback does to its row: ``flag`` it (a contradiction, never applied), move it
    to ``outcome`` (with the callback's message and platform number), or neither (a repeat);
    ``effect`` is what the callback log records."""

    effect: str
    flag: str = ""
    outcome: Outcome | None = None
    message: str = ""
    platform_trade_no: str = ""


@dataclass(frozen=True)
class CallbackRecord:
    """One kept callback: its fields as received without ``sign`` (JSON text)."""

    received_at: str
    trade_no: str
    status: str
    effect: str
    fields: str


@dataclass(frozen=True)
class PlacedPayout:
    """A row of another batch that may have placed a payout."""

    batch_id: str
    trade_no: str
    outcome: str
    status: str
    platform_trade_no: str
    first_sent_at: str
    account: str


@dataclass(frozen=True)
class HeldRepeat:
    """Why a row is held back as a repeat, and what the payout it repeats showed."""

    msg: str
    status: str
    platform_trade_no: str


@dataclass(frozen=True)
class OutcomeTotal:
    """One batch's rows of one (effective) outcome."""

    batch_id: str
    source: str
    created_at: str
    account: str
    outcome: str
    count: int
    amount: int
    updated_at: str
    flagged: int


@dataclass(frozen=True)
class ReportSource:
    source: str
    headers: list[str]
    content_hash: str
    stored: list[tuple[list[str], str]]  # each row's cells and errors, in order
