"""What the journal stores, as Python values: the rows a file plans, the rows the journal
holds, the answers recorded, and the identities behind them (a row's key, a payout's
fingerprint, a batch's content hash, new tradeNos). No SQL here: that is store.py.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..outcomes import Outcome


class Kind(enum.StrEnum):
    """What an Update records: a payout request, a status query, or a note (no request, no
    answer: just the row's new state, e.g. settled by a callback or held back)."""

    PAY = "pay"
    QUERY = "query"
    NOTE = "note"


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
    """One row of the file, as the journal plans it (``PlanRows.of`` takes a list of them)."""

    sheet_row: int
    fields: dict[str, str]  # the payout fields, normalized; tradeNo '' when not given
    amount: int
    valid: bool
    cells: list[str] = field(default_factory=list)  # the row as in the file, for reports
    errors: str = ""  # validation problems and warnings, as the result file shows them


# The fields that make two rows the same payout to the same person, whatever their tradeNo.
PAYOUT_IDENTITY = ("accountNo", "amount", "firstname", "lastname", "mobile", "email", "remark")


def payout_fingerprint(fields: dict[str, str]) -> str:
    identity = json.dumps([fields.get(name, "") for name in PAYOUT_IDENTITY], ensure_ascii=False)
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]


# What json.dumps(text, ensure_ascii=False) escapes; any other text it writes as "text".
_JSON_ESCAPED = r'[\x00-\x1f"\\]'


def json_texts(values: pa.Array | Sequence[str]) -> pa.Array:
    """Each text as ``json.dumps(text, ensure_ascii=False)`` writes it, for a whole column at
    once: quoted as it is, or through json.dumps itself when it holds a character JSON
    escapes (a quote, a backslash, a control character: rare in a payroll)."""
    texts = pc.fill_null(pa.array(values, type=pa.string()), "")
    quoted = pc.binary_join_element_wise('"', texts, '"', "")
    escaped = np.flatnonzero(
        pc.match_substring_regex(texts, _JSON_ESCAPED).to_numpy(zero_copy_only=False)
    )
    if not len(escaped):
        return quoted
    written = quoted.to_pylist()
    for position in escaped.tolist():
        written[position] = json.dumps(texts[position].as_py(), ensure_ascii=False)
    return pa.array(written, type=pa.string())


def json_lists(columns: Sequence[pa.Array], length: int) -> pa.Array:
    """Row by row, ``json.dumps([column values], ensure_ascii=False)``."""
    if not columns:
        return pa.array(["[]"] * length, type=pa.string())
    items = pc.binary_join_element_wise(*(json_texts(c) for c in columns), ", ")
    return pc.binary_join_element_wise("[", items, "]", "")


def json_objects(columns: Mapping[str, pa.Array], length: int) -> pa.Array:
    """Row by row, ``json.dumps({name: value, ...}, ensure_ascii=False)`` in the mapping's
    order (sort the names for ``sort_keys=True``)."""
    if not columns:
        return pa.array(["{}"] * length, type=pa.string())
    members = [
        pc.binary_join_element_wise(json.dumps(name, ensure_ascii=False) + ": ", json_texts(c), "")
        for name, c in columns.items()
    ]
    items = pc.binary_join_element_wise(*members, ", ")
    return pc.binary_join_element_wise("{", items, "}", "")


@dataclass
class PlanRows:
    """A file's rows as the journal plans them, column by column: a 100k-row batch is keyed,
    fingerprinted and stored without one Python object per row.

    ``keys[i]`` is the row's content key (its fields as sorted JSON: a batch is the multiset
    of its rows' keys), ``fingerprints[i]`` its payout fingerprint (``payout_fingerprint``).
    """

    sheet_rows: list[int]
    fields: dict[str, pa.Array]  # the payout fields, normalized; tradeNo '' when not given
    amounts: list[int]
    valid: list[bool]
    cells: pa.Array  # each row as in the file (JSON list), for reports
    errors: list[str]  # validation problems and warnings, as the result file shows them

    @classmethod
    def of(cls, rows: Sequence[SheetRow]) -> PlanRows:
        names = list(rows[0].fields) if rows else []
        return cls(
            sheet_rows=[r.sheet_row for r in rows],
            fields={n: pa.array([r.fields[n] for r in rows], type=pa.string()) for n in names},
            amounts=[r.amount for r in rows],
            valid=[r.valid for r in rows],
            cells=pa.array([json.dumps(r.cells, ensure_ascii=False) for r in rows], pa.string()),
            errors=[r.errors for r in rows],
        )

    def __len__(self) -> int:
        return len(self.sheet_rows)

    def values(self, name: str) -> list[str]:
        return self._values[name]

    @cached_property
    def _values(self) -> dict[str, list[str]]:
        return {name: column.to_pylist() for name, column in self.fields.items()}

    @cached_property
    def keys(self) -> list[str]:
        ordered = {name: self.fields[name] for name in sorted(self.fields)}
        return json_objects(ordered, len(self)).to_pylist()  # type: ignore[no-any-return]

    @cached_property
    def key_digests(self) -> list[str]:
        return [key_digest(key) for key in self.keys]

    @cached_property
    def fingerprints(self) -> list[str]:
        empty = pa.array([""] * len(self), type=pa.string())
        identity = json_lists([self.fields.get(n, empty) for n in PAYOUT_IDENTITY], len(self))
        return [
            hashlib.sha256(text.encode("utf-8")).hexdigest()[:32] for text in identity.to_pylist()
        ]


def key_digest(key: str) -> str:
    """What the journal stores of a row's content key: enough to pair a file's row with its
    journal row, in a tenth of the space."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


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
    pay_amount: str = ""  # what the last answer said was paid (data.payAmount), when it did


@dataclass(frozen=True)
class Update:
    """An answer to record: the row's new state and the attempt that produced it."""

    trade_no: str
    outcome: Outcome
    kind: Kind
    verdict: str
    http_status: int | None = None
    code: str = ""
    msg: str = ""
    status: str = ""
    message: str = ""
    platform_trade_no: str = ""
    pay_amount: str = ""  # data.payAmount, held to an amount's form ("" when none)
    detail: str = ""
    counts_as_attempt: bool = True
    settled: bool = True  # the run is done with the row: it is no longer in flight


def content_hash(rows: PlanRows | Sequence[SheetRow]) -> str:
    """The batch's identity: SHA-256 of its rows' keys, sorted, each ending in a newline (as
    every release has computed it: result files and journals carry it)."""
    planned = rows if isinstance(rows, PlanRows) else PlanRows.of(rows)
    keys = sorted(planned.keys)
    return hashlib.sha256("".join(key + "\n" for key in keys).encode("utf-8")).hexdigest()


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
    pay_amount: str = ""  # a partly paid row's paid amount, when the callback says it


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
