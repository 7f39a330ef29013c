"""An xlsxwriter worksheet that writes plain text cells faster, byte for byte the same.

In ``constant_memory`` mode xlsxwriter writes each cell as it leaves the row: escaping control
characters, testing for surrounding white space, escaping XML and every attribute. For a result
file of 100k rows x 17 cells that per-cell Python work is most of the time. Most cells are
plain text that needs none of it, so a formatted text cell whose text holds nothing any of
those steps would change is written here in one f-string; every other cell (and every cell
when not in ``constant_memory`` mode) goes through xlsxwriter's own ``_write_cell``.

The output is the same XML xlsxwriter writes: tests/test_results.py compares the parts of a
workbook written with this class and with xlsxwriter's own, on text chosen to need every
escape.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import CellStringTuple, Worksheet

# Anything xlsxwriter's inline-string path would change or mark: a leading or trailing white
# space (xml:space="preserve"), control characters and the _xHHHH_ escape (_x...._ escaping),
# U+FFFE and U+FFFF, XML's special characters, and "<" (which also rules out a rich string).
# Broader than needed (tab, newline and '"' come out as they are) so as to be sure.
_NEEDS_XLSXWRITER = re.compile(r'^\s|\s$|[\x00-\x1f"&<>\ufffe\uffff]|_x[0-9a-fA-F]{4}_').search


@functools.cache
def _column_name(col: int) -> str:
    name: str = xl_col_to_name(col)
    return name


class TextWorksheet(Worksheet):  # type: ignore[misc]  # xlsxwriter has no type information
    """Worksheet whose formatted plain-text cells skip xlsxwriter's per-cell escaping."""

    def _write_cell(self, row: int, col: int, cell: Any) -> None:
        if (
            type(cell) is CellStringTuple
            and cell.format is not None
            and self.constant_memory
            and _NEEDS_XLSXWRITER(cell.string) is None
        ):
            self.fh.write(
                f'<c r="{_column_name(col)}{row + 1}" s="{cell.format._get_xf_index()}" '
                f't="inlineStr"><is><t>{cell.string}</t></is></c>'
            )
        else:
            super()._write_cell(row, col, cell)
