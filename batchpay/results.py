"""Write the result file: the input columns as they were, then the run's columns.

.xlsx or .csv by the output's extension, written to a temporary file beside the target and
renamed over it, so a reader never sees half a file. Every cell is text: account numbers and
mobiles keep their digits, and nothing becomes a formula.
"""

from __future__ import annotations

import csv
import itertools
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .journal_rows import JournalRow, now
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
            row = cells.tolist()  # already text
            j = result.journal
            trade_no = (j.trade_no or "") if j else ""
            if trade_position is None:
                row.append(trade_no)
            elif trade_no:
                row[trade_position] = trade_no
            if j is None:
                row.extend([Outcome.INVALID.value, "", "", "", "", "", "0", result.errors])
            else:
                errors = "; ".join(e for e in (result.errors, j.flag and f"flagged: {j.flag}") if e)
                row.extend(
                    [j.outcome.value, j.code, j.msg, j.status, j.message, j.platform_trade_no,
                     str(j.attempts), errors]
                )  # fmt: skip
            yield row

    return header, rows()


# Row highlighting in result workbooks, by outcome.
HIGHLIGHT = {
    Outcome.INVALID.value: "#F8CBAD",
    Outcome.REJECTED.value: "#F8CBAD",
    Outcome.FAILED.value: "#F8CBAD",
    Outcome.UNKNOWN.value: "#FFE699",
    Outcome.PENDING.value: "#FFF2CC",
}
WIDTH_SAMPLE = 1000  # rows looked at to size the columns


@dataclass(frozen=True)
class Table:
    """A sheet to write: a header, rows of text, and what marks a row."""

    name: str
    header: list[str]
    rows: Iterator[list[str]]
    mark_column: int | None = None  # whose value picks the row's highlight


def write_results(
    path: Path, sheet: Sheet, results: Sequence[ResultRow], summary: list[list[str]] | None = None
) -> None:
    header, rows = _table(sheet, results)
    tables = [Table("Results", header, rows, mark_column=header.index("outcome"))]
    if summary:
        tables.append(Table(SUMMARY_SHEET, ["item", "value"], iter(summary)))
    write_tables(path, tables)


def write_tables(path: Path, tables: Sequence[Table]) -> None:
    """Write .xlsx (every table a sheet) or .csv (the first table), atomically, owner-only."""
    suffix = path.suffix.lower()
    if suffix not in {".xlsx", ".csv"}:
        raise InputError(f"{path}: the output file must end in .xlsx or .csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file readable by its owner only.
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        if suffix == ".xlsx":
            _write_xlsx(temp, tables)
        else:
            _write_csv(temp, tables[0])
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _write_csv(path: Path, table: Table) -> None:
    def inert(value: str) -> str:
        return "'" + value if value.startswith(FORMULA_STARTS) else value

    # UTF-8 with a byte-order mark, so that Excel shows names with accents right.
    with path.open("w", encoding="utf-8-sig", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(table.header)
        for row in table.rows:
            writer.writerow([inert(v) for v in row])


def _write_xlsx(
    path: Path, tables: Sequence[Table], *, worksheet_class: type | None = None
) -> None:
    """``worksheet_class``: xlsxwriter's own Worksheet in tests, to compare the output with."""
    import xlsxwriter

    from .textsheet import TextWorksheet

    workbook = xlsxwriter.Workbook(
        str(path),
        {"constant_memory": True, "strings_to_formulas": False, "strings_to_numbers": False,
         "strings_to_urls": False},
    )  # fmt: skip
    text = workbook.add_format({"num_format": "@"})
    bold = workbook.add_format({"bold": True, "num_format": "@", "bottom": 1})
    marks = {
        outcome: workbook.add_format({"num_format": "@", "bg_color": color})
        for outcome, color in HIGHLIGHT.items()
    }
    for table in tables:
        sheet = workbook.add_worksheet(table.name, worksheet_class or TextWorksheet)
        sheet.freeze_panes(1, 0)
        sample = list(itertools.islice(table.rows, WIDTH_SAMPLE))
        for col, name in enumerate(table.header):
            longest = max([len(name), *(len(r[col]) for r in sample if col < len(r))])
            sheet.set_column(col, col, min(60, max(8, longest + 2)), text)
            sheet.write_string(0, col, name, bold)
        write = sheet.write_string
        mark_column = table.mark_column
        last = 0
        for last, row in enumerate(itertools.chain(sample, table.rows), start=1):
            mark = marks.get(row[mark_column]) if mark_column is not None else None
            if mark is None:
                for col, value in enumerate(row):
                    if value:
                        # The column's text format given with the cell (the same index in the
                        # file) lets TextWorksheet write the cell without looking it up.
                        write(last, col, value, text)
            else:
                for col, value in enumerate(row):
                    write(last, col, value, mark)  # the whole row, empty cells too
        sheet.autofilter(0, 0, last, len(table.header) - 1)
    workbook.close()


SUMMARY_SHEET = "Summary"
# The Summary rows that say what a result file is evidence of (recover.py reads them back).
ACCOUNT_ITEM = "account"
SANDBOX_ITEM = "sandbox"
CONTENT_HASH_ITEM = "content hash"
WRITTEN_AT_ITEM = "written at (UTC)"
IN_PROCESS_SANDBOX = "yes: in-process sandbox, not a real payment"
NOT_SANDBOX = "no"
SANDBOX_UNKNOWN = "not recorded (rewritten from the journal by batchpay report)"


def summary_rows(
    batch_id: str, source: str, journal: Path, counts: dict[str, int], amounts: dict[str, int],
    *, dry_run: bool | None = None, account: str = "", sandbox: bool | None = None,
    content_hash: str = "",
) -> list[list[str]]:  # fmt: skip
    """The result workbook's Summary sheet (``dry_run`` None: not a run, a report).

    ``account`` (the gateway account the rows were sent to, "" when not known) and
    ``sandbox`` (None: not known) say what the file is evidence of, for a later run whose
    journal was lost and for ``batchpay recover``; ``content_hash`` names the batch fully.
    """
    if sandbox is None:
        sandbox_text = SANDBOX_UNKNOWN
    else:
        sandbox_text = IN_PROCESS_SANDBOX if sandbox else NOT_SANDBOX
    rows = [
        ["batch", batch_id], ["source file", source], ["journal", str(journal)],
        [WRITTEN_AT_ITEM, now()], [ACCOUNT_ITEM, account], [SANDBOX_ITEM, sandbox_text],
        [CONTENT_HASH_ITEM, content_hash],
    ]  # fmt: skip
    if dry_run is not None:
        rows.append(["dry run", "yes" if dry_run else "no"])
    for outcome, count in counts.items():
        rows.append([f"{outcome}: rows", str(count)])
        rows.append([f"{outcome}: amount", str(amounts[outcome])])
    rows.append(["total: rows", str(sum(counts.values()))])
    rows.append(["total: amount", str(sum(amounts.values()))])
    return rows
