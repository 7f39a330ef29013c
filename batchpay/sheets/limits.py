"""Limits on what an input file may hold, and the checks that hold them for every reader.

No payroll comes near them; every hostile file found so far (a cell at XFD1048576, a
million commas, shared strings that expand to a gigabyte) goes beyond one. Each refusal is
one line naming the file, the limit and the value found, and where it applies the row and
column. The workbook checks run on the file's XML before any reader sees it
(``xlsx_check``); the checks here run on what a reader returns, whichever reader it was.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError

MAX_COLUMNS = 200
MAX_ROWS = 2_000_000
MAX_CELL_CHARS = 32_767  # Excel's own limit on the characters of one cell
# The used range of a workbook sheet (last row x last column): calamine allocates every cell
# of it, empty or not, so two cells at A1 and J2000000 cost as much as 20 million.
MAX_SHEET_CELLS = 10_000_000
# Characters of text in a workbook: its shared strings, and its cells with them filled in
# (one shared string may be used by every cell of a sheet).
MAX_TEXT_CHARS = 500_000_000
MAX_UNPACKED_BYTES = 1_000_000_000  # what the parts of a workbook decompress to, in all
MAX_UNPACK_RATIO = 200  # ... and at most this many times the file's own size
MAX_MERGED_RANGES = 100_000

LIMIT = "{where}: {what} {found:,}, more than the limit of {limit:,}{fix}"
TOO_MANY_COLUMNS = "the file has too many columns:"
TOO_MANY_ROWS = "the file has too many rows:"
CELL_TOO_LONG = "cell {cell} holds too many characters:"
FIX_SHEET = "; is this the payroll sheet? Export it again with only its own rows and columns"
FIX_RANGE = "; delete the rows and columns beyond the payroll (select them, Delete) and save again"


def refuse(where: str, what: str, found: int, limit: int, fix: str = "") -> InputError:
    """The one-line refusal every limit gives."""
    return InputError(LIMIT.format(where=where, what=what, found=found, limit=limit, fix=fix))


def cell_name(column: int, row: int) -> str:
    """``A1`` style, from a 0-based column and a sheet row number."""
    letters = ""
    column += 1
    while column:
        column, rest = divmod(column - 1, 26)
        letters = chr(65 + rest) + letters
    return f"{letters}{row}"


def check_columns(where: str, count: int) -> None:
    if count > MAX_COLUMNS:
        raise refuse(where, TOO_MANY_COLUMNS, count, MAX_COLUMNS, FIX_SHEET)


def check_rows(where: str, count: int) -> None:
    if count > MAX_ROWS:
        raise refuse(where, TOO_MANY_ROWS, count, MAX_ROWS, FIX_SHEET)


def check_cells(where: str, cells: pd.DataFrame) -> None:
    """Columns, rows and the characters of every cell of a grid a reader returned (row ``i``
    is sheet row ``i + 1``)."""
    check_columns(where, cells.shape[1])
    check_rows(where, cells.shape[0])
    for position in range(cells.shape[1]):
        values = pa.array(cells.iloc[:, position])
        lengths = pc.utf8_length(values)
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > MAX_CELL_CHARS:
            row = int(pc.index(lengths, longest).as_py()) + 1
            what = CELL_TOO_LONG.format(cell=cell_name(position, row))
            raise refuse(where, what, int(longest), MAX_CELL_CHARS)
