"""A result file turned back into the batch a re-run of the original input computes: the same
rows, the same content hash, the same tradeNos (``Journal.restore`` writes it; ``recover`` then
checks it with the gateway). A tradeNo is never guessed: a damaged one refuses the file."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import InputError
from .journal.rows import SheetRow, content_hash
from .outcomes import Outcome
from .result_file import ResultFile
from .results import (
    CONTENT_HASH_ITEM,
    WRITTEN_AT_ITEM,
)
from .sheets.damage import MOBILE_RESTORED
from .sheets.read import NUMBER, TEXT, Sheet, canonical_columns
from .sheets.validate import validate

# The form batchpay assigns (journal.rows.new_trade_nos): yyyyMMddHHmmss + 10 random digits.
ASSIGNED_FORM = re.compile(r"[0-9]{24}")
# The form a file may give (schemas/sheet.json).
GIVEN_FORM = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A spreadsheet keeps 15 significant digits of a number: the rest of a long tradeNo becomes 0s.
# Ten random digits that happen to end in nine zeros: one chance in a billion.
LOST_DIGITS = re.compile(r"[0-9]{15,}0{9}")
SCIENTIFIC = re.compile(r"[0-9.,]+[eE][+-]?[0-9]+")
RESTORED_MARK = MOBILE_RESTORED.partition("{fixed}")[0]  # "... lost its leading zero; read as "

DAMAGED = (
    "{path}: row {row}: the tradeNo {value!r} {why}; recover never guesses a tradeNo: use a "
    "copy of the result file no spreadsheet program has saved (the .xlsx batchpay wrote)"
)
CHANGED = (
    "{path}: its rows do not make the batch its Summary records (content hash {recorded}, "
    "batch {batch}); the file was changed after batchpay wrote it: recover from an unchanged copy"
)


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
