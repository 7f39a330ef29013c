"""Write the result file: the input columns as they were, then the run's columns.

.xlsx or .csv by the output's extension, written to a temporary file beside the target and
renamed over it, so a reader never sees half a file. Every cell is text: account numbers and
mobiles keep their digits, and nothing becomes a formula.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .journal import JournalRow
from .outcomes import Outcome
from .sheet import Sheet

RESULT_COLUMNS = (
    "outcome", "code", "msg", "status", "message", "platFormTradeNo", "attempts", "errors",
)  # fmt: skip
# A CSV cell starting with one of these is a formula to Excel; a leading ' keeps it inert.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ResultRow:
    """One input row's outcome: its journal row, or None when it was never planned."""

    journal: JournalRow | None
    errors: str


def default_output(source: Path) -> Path:
    suffix = source.suffix.lower()
    ext = ".csv" if suffix in {".csv", ".txt", ".tsv"} else ".xlsx"
    return source.with_name(f"{source.stem}.result{ext}")


def _table(sheet: Sheet, results: Sequence[ResultRow]) -> tuple[list[str], Iterator[list[str]]]:
    trade_position = sheet.columns.get("tradeNo")
    header = list(sheet.headers)
    if trade_position is None:
        header.append("tradeNo")
    header.extend(RESULT_COLUMNS)
    values = sheet.frame.to_numpy()

    def rows() -> Iterator[list[str]]:
        for cells, result in zip(values, results, strict=True):
            row = [str(c) for c in cells]
            j = result.journal
            trade_no = (j.trade_no or "") if j else ""
            if trade_position is None:
                row.append(trade_no)
            elif trade_no:
                row[trade_position] = trade_no
            if j is None:
                row.extend([Outcome.INVALID.value, "", "", "", "", "", "0", result.errors])
            else:
                row.extend(
                    [j.outcome.value, j.code, j.msg, j.status, j.message, j.platform_trade_no,
                     str(j.attempts), result.errors]
                )  # fmt: skip
            yield row

    return header, rows()


def write_results(path: Path, sheet: Sheet, results: Sequence[ResultRow]) -> None:
    suffix = path.suffix.lower()
    if suffix not in {".xlsx", ".csv"}:
        raise InputError(f"{path}: the result file must end in .xlsx or .csv")
    header, rows = _table(sheet, results)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file readable by its owner only.
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        if suffix == ".xlsx":
            _write_xlsx(temp, header, rows)
        else:
            _write_csv(temp, header, rows)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _write_csv(path: Path, header: list[str], rows: Iterator[list[str]]) -> None:
    def inert(value: str) -> str:
        return "'" + value if value.startswith(FORMULA_STARTS) else value

    # UTF-8 with a byte-order mark, so that Excel shows names with accents right.
    with path.open("w", encoding="utf-8-sig", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        for row in rows:
            writer.writerow([inert(v) for v in row])


def _write_xlsx(path: Path, header: list[str], rows: Iterator[list[str]]) -> None:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(
        str(path),
        {"constant_memory": True, "strings_to_formulas": False, "strings_to_numbers": False,
         "strings_to_urls": False},
    )  # fmt: skip
    sheet = workbook.add_worksheet("Results")
    text = workbook.add_format({"num_format": "@"})
    bold = workbook.add_format({"bold": True, "num_format": "@"})
    sheet.freeze_panes(1, 0)
    for col, name in enumerate(header):
        sheet.set_column(col, col, max(10, min(40, len(name) + 4)), text)
        sheet.write_string(0, col, name, bold)
    write = sheet.write_string
    for r, row in enumerate(rows, start=1):
        for col, value in enumerate(row):
            if value:
                write(r, col, value)
    workbook.close()
