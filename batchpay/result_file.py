"""A result file read back as batchpay wrote it: the input columns as they were, then
``tradeNo`` (when the input had none) and ``RESULT_COLUMNS``; an .xlsx also has the Summary
sheet, whose account, sandbox and content-hash rows say what the file is evidence of."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .results import (
    ACCOUNT_ITEM,
    RESULT_COLUMNS,
    SANDBOX_ITEM,
    SUMMARY_SHEET,
)
from .sheets.read import CSV_SUFFIXES, Sheet, read_sheet
from .sheets.write import FORMULA_STARTS

NOT_A_RESULT = (
    "{path}: not a result file as batchpay writes it (no columns {columns} after the input's); "
    "recover needs the result file of the lost run"
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
