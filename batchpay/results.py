"""Write the result file: the input columns as they were, then the run's columns.

.xlsx or .csv by the output's extension, written to a temporary file beside the target and
renamed over it, so a reader never sees half a file. Every cell is text (account numbers and
mobiles keep their digits, and nothing becomes a formula) but the amounts a person adds up:
``amountValue`` and the Summary's amounts are number cells. Every sheet prints landscape, one
page wide, with its header row on every page.
"""

from __future__ import annotations

import csv
import itertools
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import FileWriteError, OutputError, mapped
from .journal.rows import JournalRow, now
from .outcomes import Outcome, reason
from .sheet import Sheet

RESULT_COLUMNS = (
    "outcome", "code", "msg", "status", "message", "platFormTradeNo", "attempts", "errors",
    "reason", "amountValue",
)  # fmt: skip
AMOUNT_VALUE = "amountValue"  # the last column: the whole amount as a number, to add up
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


INVALID_REASON = reason(Outcome.INVALID, "", "", "", "")


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
                row.extend([Outcome.INVALID.value, "", "", "", "", "", "0", result.errors,
                            INVALID_REASON, ""])  # fmt: skip
            else:
                errors = "; ".join(e for e in (result.errors, j.flag and f"flagged: {j.flag}") if e)
                row.extend(
                    [j.outcome.value, j.code, j.msg, j.status, j.message, j.platform_trade_no,
                     str(j.attempts), errors, reason(j.outcome, j.code, j.msg, j.status, j.message),
                     str(j.amount)]
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
    # The columns from this one to the last are whole numbers written as number cells (empty
    # text: no cell), in every row or, with ``numbers_when``, in the rows it accepts.
    numbers_from: int | None = None
    numbers_when: Callable[[list[str]], bool] | None = None
    title: str = ""  # a line above the header, on screen and on paper
    page_header: str = ""  # printed at the top of every page (xlsxwriter's header codes)
    tab_color: str = ""


# The mark of a practice run: a result file is shown as proof of payment, and a practice
# file must never pass for one. Printed and on screen; no "&" (a code in page headers).
SANDBOX_MARK = "SANDBOX: not a real payment"
SANDBOX_NOTE = "a practice run against a simulated gateway; no money moved"
SANDBOX_PAGE_HEADER = f'&C&"-,Bold"{SANDBOX_MARK}'
# Every printed page says which file and sheet it is and where it stands in the whole.
PAGE_FOOTER = "&L&F: &A&RPage &P of &N"
AMOUNT_FORMAT = "#,##0"
SUMMARY_AMOUNT = ": amount"  # the Summary's labels of amounts (summary_rows)


def write_results(
    path: Path,
    sheet: Sheet,
    results: Sequence[ResultRow],
    summary: list[list[str]] | None = None,
    *,
    sandbox: bool = False,
) -> None:
    """``sandbox``: the run went to a simulated gateway; every sheet says so."""
    header, rows = _table(sheet, results)
    page_header, tab_color = (SANDBOX_PAGE_HEADER, "red") if sandbox else ("", "")
    tables = [
        Table("Results", header, rows, mark_column=header.index("outcome"),
              numbers_from=header.index(AMOUNT_VALUE), page_header=page_header,
              tab_color=tab_color)
    ]  # fmt: skip
    if summary:
        tables.append(
            Table(SUMMARY_SHEET, ["item", "value"], iter(summary), numbers_from=1,
                  numbers_when=lambda row: row[0].endswith(SUMMARY_AMOUNT),
                  title=f"{SANDBOX_MARK} ({SANDBOX_NOTE})" if sandbox else "",
                  page_header=page_header, tab_color=tab_color)
        )  # fmt: skip
    write_tables(path, tables)


def write_tables(path: Path, tables: Sequence[Table]) -> None:
    """Write .xlsx (every table a sheet) or .csv (the first table), atomically, owner-only."""
    suffix = path.suffix.lower()
    if suffix not in {".xlsx", ".csv"}:
        raise OutputError(f"{path}: the output file must end in .xlsx or .csv")
    with mapped(FileWriteError, f"the result file {path} was not written"):
        path.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp creates the file readable by its owner only.
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(handle)
        temp = Path(name)
        try:
            if suffix == ".xlsx":
                _write_xlsx(temp, tables)
            else:
                _write_csv(temp, tables[0])
            os.replace(temp, path)
        except BaseException:
            with suppress(OSError):  # its own failure must not hide the one that matters
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
    import xlsxwriter.exceptions

    from .textsheet import TextWorksheet

    workbook = xlsxwriter.Workbook(
        str(path),
        {"constant_memory": True, "strings_to_formulas": False, "strings_to_numbers": False,
         "strings_to_urls": False},
    )  # fmt: skip
    text = workbook.add_format({"num_format": "@"})
    number = workbook.add_format({"num_format": AMOUNT_FORMAT})
    bold = workbook.add_format({"bold": True, "num_format": "@", "bottom": 1})
    title_format = workbook.add_format(
        {"bold": True, "font_color": "#9C0006", "bg_color": "#FFC7CE", "num_format": "@"}
    )
    marks = {
        outcome: workbook.add_format({"num_format": "@", "bg_color": color})
        for outcome, color in HIGHLIGHT.items()
    }
    number_marks = {
        outcome: workbook.add_format({"num_format": AMOUNT_FORMAT, "bg_color": color})
        for outcome, color in HIGHLIGHT.items()
    }
    for table in tables:
        sheet = workbook.add_worksheet(table.name, worksheet_class or TextWorksheet)
        top = 1 if table.title else 0  # the header's row
        if table.title:
            sheet.write_string(0, 0, table.title, title_format)
        _page_setup(sheet, table, top)
        sample = list(itertools.islice(table.rows, WIDTH_SAMPLE))
        numbers_from = len(table.header) if table.numbers_from is None else table.numbers_from
        for col, name in enumerate(table.header):
            longest = max([len(name), *(len(r[col]) for r in sample if col < len(r))])
            # An amount gains a thousands separator every three digits.
            width = longest + longest // 3 if col >= numbers_from else longest
            column_format = number if col >= numbers_from and not table.numbers_when else text
            sheet.set_column(col, col, min(60, max(8, width + 2)), column_format)
            sheet.write_string(top, col, name, bold)
        write = sheet.write_string
        mark_column = table.mark_column
        numbers_when = table.numbers_when
        last = top
        for last, row in enumerate(itertools.chain(sample, table.rows), start=top + 1):
            mark = marks.get(row[mark_column]) if mark_column is not None else None
            split = len(row)
            if numbers_from < split and (numbers_when is None or numbers_when(row)):
                split = numbers_from
            if mark is None:
                for col, value in enumerate(row[:split] if split < len(row) else row):
                    if value:
                        # The column's text format given with the cell (the same index in the
                        # file) lets TextWorksheet write the cell without looking it up.
                        write(last, col, value, text)
                for col in range(split, len(row)):
                    if row[col]:
                        _number_or_text(sheet, last, col, row[col], number, text)
            else:
                for col, value in enumerate(row[:split] if split < len(row) else row):
                    write(last, col, value, mark)  # the whole row, empty cells too
                number_mark = number_marks[row[mark_column]]  # type: ignore[index]
                for col in range(split, len(row)):
                    if row[col]:
                        _number_or_text(sheet, last, col, row[col], number_mark, mark)
                    else:
                        sheet.write_blank(last, col, None, number_mark)
        sheet.autofilter(top, 0, last, len(table.header) - 1)
    try:
        workbook.close()
    except xlsxwriter.exceptions.FileCreateError as exc:
        # xlsxwriter wraps the OSError (a full disk, a folder gone read-only): unwrap it, so
        # that it is reported as any other failed write.
        cause = exc.args[0] if exc.args and isinstance(exc.args[0], OSError) else None
        raise cause or OSError(str(exc)) from exc


def _number_or_text(sheet: Any, row: int, col: int, value: str, number: Any, text: Any) -> None:
    """A whole number as a number cell; anything else stays text: the result file is written
    after the money moved, and must be written whatever a value turns out to be."""
    try:
        amount = int(value)
    except ValueError:
        sheet.write_string(row, col, value, text)
    else:
        sheet.write_number(row, col, amount, number)


def _page_setup(sheet: Any, table: Table, top: int) -> None:
    """Printed readably: landscape, one page wide (as many tall as it takes), the header on
    every page. The paper is left to the printer's default (A4 or Letter): one page wide
    holds on either."""
    sheet.freeze_panes(top + 1, 0)
    sheet.set_landscape()
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(0, top)
    sheet.hide_gridlines(0)  # the cells' lines printed too, to follow a row across the page
    sheet.set_footer(PAGE_FOOTER)
    if table.page_header:
        sheet.set_header(table.page_header)
    if table.tab_color:
        sheet.set_tab_color(table.tab_color)


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
    content_hash: str = "", this_run: str = "",
) -> list[list[str]]:  # fmt: skip
    """The result workbook's Summary sheet (``dry_run`` None: not a run, a report;
    ``this_run``: what the run that wrote it did, when that is not what the rows show).

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
    if this_run:
        rows.append(["this run", this_run])
    for outcome, count in counts.items():
        rows.append([f"{outcome}: rows", str(count)])
        rows.append([f"{outcome}: amount", str(amounts[outcome])])
    rows.append(["total: rows", str(sum(counts.values()))])
    rows.append(["total: amount", str(sum(amounts.values()))])
    return rows
