"""Write spreadsheets from a header and rows of text: .xlsx (every table a sheet) or .csv
(the first table), atomically, readable by their owner only.

Every cell is text (account numbers and mobiles keep their digits, and nothing becomes a
formula) but the columns a table names as numbers, written as number cells to add up. Rows
are highlighted by the value of one column. Every sheet prints landscape, one page wide, with
its header row on every page. Nothing here knows what the rows mean.
"""

from __future__ import annotations

import csv
import functools
import itertools
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FileWriteError, OutputError, mapped

# A CSV cell starting with one of these is a formula to Excel; a leading ' keeps it inert.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
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
    # A row whose mark_column holds one of these values is filled with its colour.
    highlights: Mapping[str, str] = field(default_factory=dict)


# Every printed page says which file and sheet it is and where it stands in the whole.
PAGE_FOOTER = "&L&F: &A&RPage &P of &N"
AMOUNT_FORMAT = "#,##0"


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
                write_xlsx(temp, tables)
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


def write_xlsx(path: Path, tables: Sequence[Table]) -> None:
    import xlsxwriter
    import xlsxwriter.exceptions

    workbook = xlsxwriter.Workbook(
        str(path),
        {"constant_memory": True, "strings_to_formulas": False, "strings_to_numbers": False,
         "strings_to_urls": False},
    )  # fmt: skip
    text = workbook.add_format({"num_format": "@"})
    plain_run = workbook.add_format()
    number = workbook.add_format({"num_format": AMOUNT_FORMAT})
    bold = workbook.add_format({"bold": True, "num_format": "@", "bottom": 1})
    title_format = workbook.add_format(
        {"bold": True, "font_color": "#9C0006", "bg_color": "#FFC7CE", "num_format": "@"}
    )
    for table in tables:
        marks = {
            value: workbook.add_format({"num_format": "@", "bg_color": color})
            for value, color in table.highlights.items()
        }
        number_marks = {
            value: workbook.add_format({"num_format": AMOUNT_FORMAT, "bg_color": color})
            for value, color in table.highlights.items()
        }
        sheet = workbook.add_worksheet(table.name)
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
        write = functools.partial(_write_text, sheet, plain_run)
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
                        write(last, col, value, text)
                for col in range(split, len(row)):
                    if row[col]:
                        _number_or_text(write, sheet, last, col, row[col], number, text)
            else:
                for col, value in enumerate(row[:split] if split < len(row) else row):
                    write(last, col, value, mark)  # the whole row, empty cells too
                number_mark = number_marks[row[mark_column]]  # type: ignore[index]
                for col in range(split, len(row)):
                    if row[col]:
                        _number_or_text(write, sheet, last, col, row[col], number_mark, mark)
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


# xlsxwriter takes a string written as "<r>...</r>" for the XML of a rich string and writes it
# unescaped ("<r>a & b</r>" makes the workbook unreadable); a result must hold any text.
RICH_MARKUP = ("<r>", "</r>")


def _write_text(
    sheet: Any, plain_run: Any, row: int, col: int, value: str, cell_format: Any
) -> None:
    """``plain_run``: a format of no properties, for the second run of a rich string."""
    if value.startswith(RICH_MARKUP[0]) and value.endswith(RICH_MARKUP[1]):
        # As a rich string of two runs in the default font: xlsxwriter escapes each run.
        sheet.write_rich_string(row, col, value[:1], plain_run, value[1:], cell_format)
    else:
        sheet.write_string(row, col, value, cell_format)


def _number_or_text(write: Any, sheet: Any, row: int, col: int, value: str, number: Any,
                    text: Any) -> None:  # fmt: skip
    """A whole number as a number cell; anything else stays text: the result file is written
    after the money moved, and must be written whatever a value turns out to be."""
    try:
        amount = int(value)
    except ValueError:
        write(row, col, value, text)
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
