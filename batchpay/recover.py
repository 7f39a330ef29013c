"""A lost journal: noticed before a run, and rebuilt from a result file.

Without its journal, a re-run of a file plans the batch afresh, with new tradeNos, and pays
every row again. Two traces of an earlier run outlive the journal: the batch's lock file beside
it (``journal.locks.lock_file``) and the result file. ``refuse_if_run_before`` turns either into a
refusal before anything is planned; ``read_result_file`` and ``rebuild`` turn a result file back
into the batch a re-run of the original input computes (same rows, same content hash, the same
tradeNos), which ``Journal.restore`` writes and ``recover`` then checks with the gateway's status
query, row by row.

A result file is read as batchpay writes it: the input columns as they were, then ``tradeNo``
(when the input had none) and ``RESULT_COLUMNS``; an .xlsx also has the Summary sheet, whose
account, sandbox and content-hash rows say what the file is evidence of.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .accounts import only_practice
from .config import GatewayConfig, SendOptions
from .errors import InputError, JournalError
from .gateway.reconcile import reconcile
from .journal.locks import batch_lock, lock_file
from .journal.rows import SheetRow, content_hash
from .journal.store import Journal
from .outcomes import Outcome, exit_code
from .results import (
    ACCOUNT_ITEM,
    CONTENT_HASH_ITEM,
    RESULT_COLUMNS,
    SANDBOX_ITEM,
    SUMMARY_SHEET,
    WRITTEN_AT_ITEM,
)
from .sheets.damage import MOBILE_RESTORED
from .sheets.read import CSV_SUFFIXES, NUMBER, TEXT, Sheet, canonical_columns, read_sheet
from .sheets.validate import validate
from .sheets.write import FORMULA_STARTS

log = logging.getLogger("batchpay.recover")

# The form batchpay assigns (journal.rows.new_trade_nos): yyyyMMddHHmmss + 10 random digits.
ASSIGNED_FORM = re.compile(r"[0-9]{24}")
# The form a file may give (schemas/sheet.json).
GIVEN_FORM = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A spreadsheet keeps 15 significant digits of a number: the rest of a long tradeNo becomes 0s.
# Ten random digits that happen to end in nine zeros: one chance in a billion.
LOST_DIGITS = re.compile(r"[0-9]{15,}0{9}")
SCIENTIFIC = re.compile(r"[0-9.,]+[eE][+-]?[0-9]+")
RESTORED_MARK = MOBILE_RESTORED.partition("{fixed}")[0]  # "... lost its leading zero; read as "

LOST_JOURNAL = (
    "the journal at {journal} does not know {what}, though {evidence} shows an earlier run; "
    "nothing was planned or sent. If the journal was lost, `batchpay recover {result}` "
    "rebuilds the batch from that run's result file; if the journal was moved, point "
    "--journal (or BATCHPAY_JOURNAL) at it"
)
LOCK_ONLY = (
    "; if no payout of batch {batch} was ever sent (a dry run only), remove {lock} and run again"
)
OTHER_BATCH = (
    "; {path} is the result of batch {earlier}, not of this file's batch {batch}: recovering it "
    "first lets the repeat window see its payouts; if it needs nothing more, move it away"
)
NOT_A_RESULT = (
    "{path}: not a result file as batchpay writes it (no columns {columns} after the input's); "
    "recover needs the result file of the lost run"
)
DAMAGED = (
    "{path}: row {row}: the tradeNo {value!r} {why}; recover never guesses a tradeNo: use a "
    "copy of the result file no spreadsheet program has saved (the .xlsx batchpay wrote)"
)
CHANGED = (
    "{path}: its rows do not make the batch its Summary records (content hash {recorded}, "
    "batch {batch}); the file was changed after batchpay wrote it: recover from an unchanged copy"
)
SANDBOX_RESULT = (
    "{path} is the result of a sandbox run ({value}): its orders were never real; nothing to "
    "recover"
)
OTHER_ACCOUNT = (
    "{path} was written for the gateway account {recorded}, but the settings are for {account}: "
    "its tradeNos say nothing about this account's orders; use the settings of {recorded}"
)


@dataclass
class ResultFile:
    """A result file, read back."""

    path: Path
    sheet: Sheet  # the Results table as read, CSV cells with their formula guard removed
    summary: dict[str, str]  # the Summary sheet's items; empty for a CSV
    results_start: int  # where batchpay's columns (RESULT_COLUMNS) begin
    trade_position: int  # the column holding each row's tradeNo
    # The tradeNo column may be one batchpay added (the input had none): it is spelled exactly
    # "tradeNo" and stands right before "outcome". An input's own last column can look so too.
    maybe_added: bool

    def column(self, name: str) -> list[str]:
        position = self.sheet.headers.index(name, self.results_start)
        return [str(v) for v in self.sheet.frame[position].tolist()]

    @property
    def trade_nos(self) -> list[str]:
        return [str(v).strip() for v in self.sheet.frame[self.trade_position].tolist()]

    @property
    def sandbox(self) -> str:
        """The Summary's sandbox row when it says yes, else ''."""
        value = self.summary.get(SANDBOX_ITEM, "")
        return value if value.lower().startswith("yes") else ""

    @property
    def account(self) -> str:
        return self.summary.get(ACCOUNT_ITEM, "")


def read_summary(path: Path) -> dict[str, str]:
    """A result workbook's Summary sheet as {item: value}; {} when it has none (a CSV)."""
    if path.suffix.lower() in CSV_SUFFIXES:
        return {}
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_path(str(path))
        if SUMMARY_SHEET not in workbook.sheet_names:
            return {}
        values = workbook.get_sheet_by_name(SUMMARY_SHEET).to_python()
    except Exception as exc:  # calamine raises its own error types for every malformed file
        raise InputError(f"{path}: cannot read its Summary sheet ({exc})") from None
    return {
        str(row[0]).strip(): ("" if len(row) < 2 or row[1] is None else str(row[1]).strip())
        for row in values[1:]
        if row and row[0]
    }


def read_result_file(path: Path) -> ResultFile:
    """Read a result file back; InputError when it is not one batchpay wrote."""
    sheet = read_sheet(path)
    headers = sheet.headers
    width = len(RESULT_COLUMNS)
    starts = [
        i
        for i in range(len(headers) - width + 1)
        if tuple(headers[i : i + width]) == RESULT_COLUMNS
    ]
    if not starts or "tradeNo" not in sheet.columns:
        raise InputError(NOT_A_RESULT.format(path=path, columns=", ".join(RESULT_COLUMNS)))
    first = starts[-1]
    trade_position = sheet.columns["tradeNo"]
    if trade_position >= first:
        raise InputError(NOT_A_RESULT.format(path=path, columns=", ".join(RESULT_COLUMNS)))
    maybe_added = trade_position == first - 1 and headers[trade_position] == "tradeNo"
    if path.suffix.lower() in CSV_SUFFIXES:
        # The CSV writer guards a cell starting like a formula with a leading ': undo it.
        guarded = tuple("'" + start for start in FORMULA_STARTS)
        sheet.frame = sheet.frame.apply(
            lambda column: column.map(lambda v: v[1:] if v.startswith(guarded) else v)
        )
    return ResultFile(
        path=path, sheet=sheet, summary=read_summary(path),
        results_start=first, trade_position=trade_position, maybe_added=maybe_added,
    )  # fmt: skip


def _damage(value: str, kind: str, added: bool) -> str:
    """Why ``value`` cannot be a tradeNo batchpay sent (for this column), or ''."""
    if kind == NUMBER:
        return "is stored as a number: a spreadsheet program changed it"
    if SCIENTIFIC.fullmatch(value):
        return "is in scientific notation: a spreadsheet program turned it into a number"
    if ASSIGNED_FORM.fullmatch(value):
        if LOST_DIGITS.fullmatch(value):
            return "ends in nine zeros: a spreadsheet program kept only its first 15 digits"
        try:
            dt.datetime.strptime(value[:14], "%Y%m%d%H%M%S")
        except ValueError:
            if added:
                return "does not start with a date and time, as the tradeNos batchpay assigns do"
        return ""
    if added:
        return "is not of the form batchpay assigns (24 digits: yyyyMMddHHmmss and 10 more)"
    if not GIVEN_FORM.fullmatch(value):
        return "is not of the form a file may give (1 to 64 letters, digits, '-' or '_')"
    return ""


@dataclass
class Rebuilt:
    """A lost batch as a re-run of its input would plan it, with the earlier run's tradeNos."""

    rows: list[SheetRow]
    trade_nos: list[str | None]  # per row; None for invalid rows
    outcomes: list[Outcome]  # as the result file says
    attempts: list[int]  # payout requests sent per row, as the result file says
    headers: list[str]
    source: str  # for the journal: the input file the Summary names, else the result file
    digest: str
    sent_at: str  # when the result file was written, as it says ('' when it does not)
    notes: list[str] = field(default_factory=list)

    input_file: str = ""  # the input file the Summary names ('' for a CSV)
    # The batch id the Summary names: a --pay-again batch's is not its content's.
    named_batch: str = ""

    @property
    def batch_id(self) -> str:
        return self.named_batch or self.digest[:12]


def rebuild(result: ResultFile, mobile_pattern: str) -> Rebuilt:
    """The batch the result file was written for. Refuses (InputError naming the row) a
    tradeNo a spreadsheet damaged, and rows that no longer make the batch the file records."""
    sheet, path = result.sheet, result.path
    outcome_texts = result.column("outcome")
    known = {o.value for o in Outcome}
    outcomes = []
    for position, text in enumerate(outcome_texts):
        if text not in known:
            row = int(sheet.row_numbers[position])
            raise InputError(f"{path}: row {row}: outcome {text!r} is not one batchpay writes")
        outcomes.append(Outcome(text))
    values = result.trade_nos
    recorded = result.summary.get(CONTENT_HASH_ITEM, "")
    readings = _readings(result, outcomes, values, bool(recorded))
    rebuilt = None
    refusal = None
    for added, assigned_form_was_assigned in readings:
        try:
            _check_trade_nos(result, outcomes, values, added)
        except InputError as exc:
            refusal = refusal or exc
            continue
        rebuilt = _rebuild(
            result, outcomes, values, mobile_pattern, added, assigned_form_was_assigned
        )
        if not recorded or rebuilt.digest == recorded:
            break
    if rebuilt is None:
        assert refusal is not None
        raise refusal
    if recorded and rebuilt.digest != recorded:
        batch = result.summary.get("batch", recorded[:12])
        raise InputError(CHANGED.format(path=path, recorded=recorded, batch=batch))
    if not recorded:
        rebuilt.notes.append(
            f"{path} records no content hash (a CSV): the batch id {rebuilt.batch_id} is "
            "computed from its rows alone"
        )
    return rebuilt


def _readings(
    result: ResultFile, outcomes: list[Outcome], values: list[str], recorded: bool
) -> list[tuple[bool, bool]]:
    """The ways to read the tradeNo column, most likely first: (batchpay added the column,
    a value of the assigned form in an input's own column was assigned to an empty cell).

    With the Summary's content hash every reading is tried and the hash decides. Without it
    (a CSV), a column that may be batchpay's is read so when its values are of the assigned
    form (a stray one is then refused by name), as the input's when none is; in an input's
    own column a value of the assigned form is read as assigned to an empty cell.
    """
    if recorded:
        own = [(False, True), (False, False)]
        return [(True, True), *own] if result.maybe_added else own
    if not result.maybe_added:
        return [(False, True)]
    planned = [v for v, o in zip(values, outcomes, strict=True) if o is not Outcome.INVALID]
    if planned and not any(ASSIGNED_FORM.fullmatch(v) for v in planned):
        return [(False, False)]
    return [(True, True)]


def _check_trade_nos(
    result: ResultFile, outcomes: list[Outcome], values: list[str], added: bool
) -> None:
    """Refuse (naming the row) a tradeNo a spreadsheet damaged, or one that cannot be the
    tradeNo batchpay sent for its row when the column is read as ``added`` or not."""
    sheet, path = result.sheet, result.path
    kinds = sheet.types("tradeNo")
    seen: dict[str, int] = {}
    for position, (value, outcome) in enumerate(zip(values, outcomes, strict=True)):
        row = int(sheet.row_numbers[position])
        if outcome is Outcome.INVALID:
            continue  # never planned: no tradeNo of batchpay's
        if not value:
            raise InputError(f"{path}: row {row}: no tradeNo, though its outcome is {outcome}")
        kind = "" if kinds is None else str(kinds.iat[position])
        why = _damage(value, kind, added)
        if why:
            raise InputError(DAMAGED.format(path=path, row=row, value=value, why=why))
        if value in seen:
            raise InputError(
                f"{path}: rows {seen[value]} and {row} have the same tradeNo {value}: a "
                "spreadsheet program changed at least one of them; recover never guesses"
            )
        seen[value] = row


def _rebuild(
    result: ResultFile,
    outcomes: list[Outcome],
    values: list[str],
    mobile_pattern: str,
    added: bool,
    assigned_form_was_assigned: bool,
) -> Rebuilt:
    sheet = result.sheet
    width = result.trade_position if added else result.results_start
    frame = sheet.frame.iloc[:, :width].copy()
    given = [""] * len(values)
    if not added:
        for position, (value, outcome) in enumerate(zip(values, outcomes, strict=True)):
            if outcome is Outcome.INVALID:
                given[position] = str(frame.iat[position, result.trade_position])
            elif not (assigned_form_was_assigned and ASSIGNED_FORM.fullmatch(value)):
                given[position] = value
        frame[result.trade_position] = pd.Series(given, dtype=frame[result.trade_position].dtype)
    headers = sheet.headers[:width]
    types = {c: k for c, k in (sheet.cell_types or {}).items() if c < width}
    errors_column = result.column("errors")
    columns = canonical_columns(headers, str(result.path))
    # A mobile the input stored as a number had its zero restored, with a warning the errors
    # column keeps; the result's text cell lost the type: give it back, and the same
    # restoration makes the same payout fields.
    marker = f"warning: {headers[columns['mobile']]}: "
    restored = [i for i, e in enumerate(errors_column) if marker in e and RESTORED_MARK in e]
    if restored:
        mobile_at = columns["mobile"]
        kinds = types.get(mobile_at, np.full(len(frame), TEXT, dtype=object)).copy()
        kinds[restored] = NUMBER
        types[mobile_at] = kinds
    source_sheet = Sheet(
        path=result.path, sheet_name=sheet.sheet_name, headers=headers, frame=frame,
        row_numbers=sheet.row_numbers, columns=columns, cell_types=types,
    )  # fmt: skip
    validation = validate(source_sheet, mobile_pattern)
    records: list[dict[str, str]] = validation.fields[
        ["amount", "accountNo", "mobile", "email", "firstname", "lastname", "tradeNo", "remark",
         "notifyUrl"]
    ].to_dict("records")  # type: ignore[assignment]  # fmt: skip
    amount_texts = source_sheet.text("amount").tolist()
    cells = frame.astype(str).to_numpy().tolist()
    rows: list[SheetRow] = []
    trade_nos: list[str | None] = []
    attempts = [int(n) if n.isdigit() else 0 for n in result.column("attempts")]
    for position, (record, outcome) in enumerate(zip(records, outcomes, strict=True)):
        row_number = int(sheet.row_numbers[position])
        valid = outcome is not Outcome.INVALID
        if valid and validation.invalid[position]:
            raise InputError(
                f"{result.path}: row {row_number} was planned (outcome {outcome}) but its cells "
                f"no longer pass validation ({validation.row_errors[position]}): the file was "
                "changed after batchpay wrote it, or the input held a cell type a result file "
                "does not keep; recover from an unchanged copy, never by guessing"
            )
        if not valid:
            record = {**record, "amount": str(amount_texts[position])}  # invalid rows keep text
        errors = "; ".join(
            part for part in errors_column[position].split("; ") if part and
            not part.startswith("flagged: ")
        )  # fmt: skip
        rows.append(
            SheetRow(
                sheet_row=row_number, fields=record,
                amount=int(validation.amounts[position]) if valid else 0, valid=valid,
                cells=cells[position], errors=errors,
            )
        )  # fmt: skip
        trade_nos.append(values[position] if valid else None)
    input_file = result.summary.get("source file", "")
    return Rebuilt(
        rows=rows, trade_nos=trade_nos, outcomes=outcomes, attempts=attempts,
        headers=headers, source=input_file or str(result.path), input_file=input_file,
        digest=content_hash(rows), sent_at=result.summary.get(WRITTEN_AT_ITEM, ""),
        named_batch=result.summary.get("batch", ""),
    )  # fmt: skip


# -- before a run ------------------------------------------------------------------------------


def unknown_trade_nos(journal: Journal, path: Path, account: str) -> tuple[list[str], str]:
    """The tradeNos of an earlier result file at ``path`` that ``journal`` does not know, and
    the batch its Summary names ('' for a CSV): none when there is no such file, when it is no
    batchpay result, a sandbox's, or another account's (its orders say nothing about this
    journal's)."""
    if not path.is_file():
        return [], ""
    try:
        result = read_result_file(path)
    except InputError:
        return [], ""  # not a result file: no evidence of anything
    if result.sandbox or (result.account and result.account != account):
        return [], ""
    outcomes = result.column("outcome")
    listed = [t for t, o in zip(result.trade_nos, outcomes, strict=True) if t and o != "invalid"]
    unknown = sorted(set(listed) - journal.known_trade_nos(listed))
    if unknown and not result.summary and only_practice(unknown):
        return [], ""
    return unknown, result.summary.get("batch", "")


def refuse_if_run_before(
    journal: Journal, batch_id: str, outputs: Sequence[Path], account: str, *,
    check_lock: bool = True,
) -> None:  # fmt: skip
    """Refuse (JournalError, exit 1) a run of a batch new to ``journal`` when an earlier run
    left traces: a result file at one of ``outputs`` (this run's, and the default one beside
    the input) with tradeNos the journal does not know, or the batch's lock file beside the
    journal (``check_lock``: only when no batch of this content is in the journal on any
    account, since such a batch leaves the same lock). Call it for a batch this account does
    not have in the journal."""
    for output in dict.fromkeys(outputs):  # each path once, in order
        unknown, earlier = unknown_trade_nos(journal, output, account)
        if not unknown:
            continue
        shown = ", ".join(unknown[:3]) + (", ..." if len(unknown) > 3 else "")
        refusal = LOST_JOURNAL.format(
            journal=journal.path, what=f"these {len(unknown)} tradeNo(s) ({shown})",
            evidence=output, result=output,
        )  # fmt: skip
        if earlier and earlier != batch_id:
            refusal += OTHER_BATCH.format(earlier=earlier, batch=batch_id, path=output)
        raise JournalError(refusal)
    lock = lock_file(journal.path, batch_id)
    if check_lock and lock.exists():
        raise JournalError(
            LOST_JOURNAL.format(
                journal=journal.path, what=f"batch {batch_id}",
                evidence=f"its lock file {lock}", result="RESULT_FILE",
            )
            + LOCK_ONLY.format(batch=batch_id, lock=lock)
        )  # fmt: skip


# -- recover -----------------------------------------------------------------------------------


@dataclass
class Recovered:
    batch_id: str
    source: str  # the input the batch was read from, as its Summary names it ('' for a CSV)
    rows: int
    counts: dict[str, int]
    queried: int
    requests: int
    stop_reason: str
    notes: list[str]
    exit_code: int

    def as_json(self) -> dict[str, object]:
        return {
            "batch": self.batch_id, "source": self.source, "rows": self.rows, "counts": self.counts,
            "queried": self.queried, "requests": self.requests,
            "stop_reason": self.stop_reason, "notes": self.notes, "exit_code": self.exit_code,
        }  # fmt: skip


def check_evidence(result: ResultFile, account: str) -> None:
    """Refuse a result file whose tradeNos say nothing about ``account``'s orders."""
    if result.sandbox:
        raise InputError(SANDBOX_RESULT.format(path=result.path, value=result.sandbox))
    if result.account and result.account != account:
        raise InputError(
            OTHER_ACCOUNT.format(path=result.path, recorded=result.account, account=account)
        )


def absent_outcome(file_says: dict[str, Outcome]) -> dict[str, Outcome]:
    """For each tradeNo, its row's outcome when the gateway holds no such order: pending (never
    placed: the next run sends it), except a row the file reports rejected, which stays so (a
    rejected row is final: the lost journal would not have sent it again), and a repeat, held
    back for good (its payout was made, under another batch's tradeNo: never pay it again)."""
    kept = {Outcome.REJECTED, Outcome.REPEAT}  # a repeat's payout was made by another batch
    return {t: o if o in kept else Outcome.PENDING for t, o in file_says.items()}


def recover(
    config: GatewayConfig,
    options: SendOptions,
    journal: Journal,
    rebuilt: Rebuilt,
) -> Recovered:
    """Write the rebuilt batch into the journal (every row unknown), then ask the status query
    about each tradeNo: an order the gateway holds -> processing, paid or failed; a definite
    "no such order" (``not_found_codes``) -> pending; any other answer leaves it unknown."""
    with batch_lock(journal.path, rebuilt.batch_id):
        batch_id, planned = journal.restore(
            rebuilt.rows, rebuilt.trade_nos, rebuilt.source, account=config.account,
            notify_url=config.notify_url,
            headers=rebuilt.headers, attempts=rebuilt.attempts, sent_at=rebuilt.sent_at,
            batch_id=rebuilt.batch_id,
        )  # fmt: skip
        journal.checkpoint()  # the rebuilt batch into the main file before the first query
        asked = [row for row in planned if row.outcome is Outcome.UNKNOWN]
        file_says = {t: o for t, o in zip(rebuilt.trade_nos, rebuilt.outcomes, strict=True) if t}
        result = asyncio.run(
            reconcile(config, options, journal, asked, absent=absent_outcome(file_says))
        )
        journal.count_placed_as_sent(batch_id, rebuilt.sent_at)
        latest = journal.rows(batch_id, fields=False)
    counts: Counter[str] = Counter(row.outcome.value for row in latest)
    order = [o.value for o in Outcome]
    notes = list(rebuilt.notes)
    contradicted = [
        row for row in latest
        if row.trade_no and row.outcome is Outcome.PENDING
        and file_says.get(row.trade_no) in {Outcome.PROCESSING, Outcome.PAID, Outcome.FAILED}
    ]  # fmt: skip
    if contradicted:
        notes.append(
            f"{len(contradicted)} row(s) the result file reports placed are unknown to the "
            f"gateway (first: tradeNo {contradicted[0].trade_no}); check the account before "
            "the next run sends them"
        )
    log.info(
        "batch=%s recovered from a result file (%s) into the journal %s: %s",
        batch_id, rebuilt.source, journal.path,
        ", ".join(f"{n} {o}" for o, n in sorted(counts.items())),
        extra={"event": {"batch": batch_id, "source": rebuilt.source, "counts": dict(counts)}},
    )  # fmt: skip
    code = exit_code(
        (row.outcome for row in latest if row.outcome is not Outcome.INVALID),
        stopped=bool(result.stop_reason),
    )
    return Recovered(
        batch_id=batch_id, source=rebuilt.input_file, rows=len(latest),
        counts={k: counts[k] for k in order if counts[k]},
        queried=result.queried, requests=result.requests, stop_reason=result.stop_reason,
        notes=notes, exit_code=code,
    )  # fmt: skip
