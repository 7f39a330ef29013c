"""Read a beneficiary sheet (CSV or workbook) with every cell as text.

Each row keeps its sheet row number (the header is row 1 of a CSV; in a workbook, the row the
header stands on), and each workbook cell keeps its source type (text, number, date, bool,
empty): an account number that a spreadsheet stored as a number reads back as plausible digits,
and only its type tells that digits may have been lost.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from .limits import (
    FIX_RANGE,
    MAX_MERGED_RANGES,
    check_cells,
    check_columns,
    check_rows,
    refuse,
)
from .read_child import read_in_child
from .read_csv import ARROW_TEXT, read_csv_cells
from .read_workbook import (
    ENCRYPTED,
    NOT_A_WORKBOOK,
    ReadFailure,
    is_zip,
    kind_problem,
    load_with_calamine,
    ods_merged_ranges,
)
from .xlsx_check import XLSX_SUFFIXES, check_zip, scan_xlsx
from .xlsx_stream import MERGED_RANGES

REQUIRED = ("amount", "accountNo", "mobile", "email", "firstname", "lastname")
OPTIONAL = ("tradeNo", "remark", "notifyUrl")
CANONICAL = REQUIRED + OPTIONAL

CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
WORKBOOK_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".ods", ".xlsb"}

TEXT, NUMBER, DATE, BOOL, EMPTY = "text", "number", "date", "bool", "empty"


def normalize_header(header: str) -> str:
    """Header names match ignoring case, spaces, underscores and hyphens."""
    return re.sub(r"[\s_\-]+", "", header).casefold()


_BY_NORMAL = {normalize_header(name): name for name in CANONICAL}


@dataclass
class Sheet:
    """A sheet read as text. ``frame`` has one column per header position (0..n-1)."""

    path: Path
    sheet_name: str | None
    headers: list[str]
    frame: pd.DataFrame
    row_numbers: np.ndarray
    columns: dict[str, int]  # canonical name -> header position
    # Source types of workbook cells, for the columns that hold anything but text (a column
    # missing here is all text); None for a CSV.
    cell_types: dict[int, np.ndarray] | None = None
    # What the values alone do not show (sheet row numbers, 0-based columns):
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)  # r0, c0, r1, c1
    formulas: set[tuple[int, int]] = field(default_factory=set)
    blank_rows: list[int] = field(default_factory=list)  # skipped between data rows
    notes: list[str] = field(default_factory=list)  # file-level warnings (encoding, ...)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def where(self) -> str:
        return f"{self.path}" + (f" (sheet {self.sheet_name!r})" if self.sheet_name else "")

    def has(self, canonical: str) -> bool:
        return canonical in self.columns

    def header_of(self, canonical: str) -> str:
        return self.headers[self.columns[canonical]]

    def text(self, canonical: str) -> pd.Series:
        """The column's values, surrounding white space removed; '' where the column is
        absent."""
        if canonical not in self.columns:
            return pd.Series("", index=self.frame.index, dtype=ARROW_TEXT)
        return self.frame[self.columns[canonical]].str.strip()

    def types(self, canonical: str) -> pd.Series | None:
        if self.cell_types is None or canonical not in self.columns:
            return None
        kinds = self.cell_types.get(self.columns[canonical])
        if kinds is None:
            kinds = np.full(len(self.frame), TEXT, dtype=object)
        return pd.Series(kinds, index=self.frame.index)


@dataclass
class _Grid:
    """Every cell of the file as text, before the header is found: row ``i`` of ``cells`` is
    sheet row ``i + 1``; columns are positions 0..n-1."""

    cells: pd.DataFrame
    types: dict[int, np.ndarray] | None = None
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)
    formulas: set[tuple[int, int]] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def read_sheet(path: Path, *, sheet: str | None = None) -> Sheet:
    """Read ``path`` as a beneficiary sheet; InputError names the file and what is wrong."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a spreadsheet")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty; export the payroll sheet again")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        if sheet:
            raise InputError(f"{path}: --sheet applies to workbooks, not to a CSV file")
        cells, notes = read_csv_cells(path)
        check_cells(str(path), cells)  # what the reader returned, whichever reader it was
        return _build(path, None, _Grid(cells, notes=notes))
    if suffix in WORKBOOK_SUFFIXES:
        sheet_name, grid = _read_workbook(path, sheet)
        return _build(path, sheet_name, grid)
    raise InputError(
        f"{path}: unsupported file type {suffix or '(none)'}; use .csv, .xlsx, .xlsm, .xls or .ods"
    )


def _cell(value: object) -> tuple[str, str]:
    """A workbook cell that is not text, as (text, source type)."""
    if value is None or value == "":
        return "", EMPTY
    if isinstance(value, str):
        return value, TEXT
    if isinstance(value, bool):
        return ("TRUE" if value else "FALSE"), BOOL
    if isinstance(value, int):
        return str(value), NUMBER
    if isinstance(value, float):
        # A whole number reads back as digits, however large: 8.80123456789012e17 becomes
        # 880123456789011968, plausible and wrong, which is why the type is kept beside it.
        if value.is_integer():
            return str(int(value)), NUMBER
        return repr(value), NUMBER
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat(), DATE
    if isinstance(value, dt.timedelta):
        return str(value), DATE
    return str(value), TEXT


# Workbooks calamine reads in this process once xlsx_check has held them to the limits; the
# others are read in a child process with a memory limit (read_child).
CHECKED_FIRST = XLSX_SUFFIXES
ZIP_WORKBOOKS = {".xlsx", ".xlsm", ".ods", ".xlsb"}
READER_PANIC = (
    "the workbook reader failed on this file ({reason}); it is damaged or not a workbook: "
    "open it in Excel or LibreOffice and save it again"
)


def _read_workbook(path: Path, sheet: str | None) -> tuple[str, _Grid]:
    problem = kind_problem(path)
    if problem:
        raise InputError(f"{path}: {problem}")
    suffix = path.suffix.lower()
    formulas: set[tuple[int, int]] = set()
    if suffix in CHECKED_FIRST:  # a zip: kind_problem refused anything else
        formulas = scan_xlsx(path, sheet)
    elif is_zip(path):
        check_zip(path)
    try:
        if suffix in CHECKED_FIRST:
            loaded = load_with_calamine(str(path), sheet)
        else:
            loaded = read_in_child(path, sheet)
    except ReadFailure as failure:
        raise InputError(f"{path}: {_failure_message(path, failure)}") from None
    name = loaded.name
    if not loaded.values:
        raise InputError(f"{path}: sheet {name!r} is empty")
    where = f"{path} (sheet {name!r})"
    # What the reader returned, whichever it was: its columns, rows and cells' characters.
    check_columns(where, max((len(row) for row in loaded.values), default=0))
    check_rows(where, len(loaded.values))
    grid = _workbook_grid(loaded.values)
    del loaded.values[:]
    check_cells(where, grid.cells)
    merged = loaded.merged
    if not merged and suffix == ".ods":
        merged = ods_merged_ranges(path, name)  # calamine gives no merged ranges for .ods
    if len(merged) > MAX_MERGED_RANGES:
        raise refuse(where, MERGED_RANGES, len(merged), MAX_MERGED_RANGES, FIX_RANGE)
    grid.merged = merged
    grid.formulas = formulas
    return name, grid


def _failure_message(path: Path, failure: ReadFailure) -> str:
    if failure.stage == "open":
        reason = failure.reason
        if "password" in reason.lower() or "encrypt" in reason.lower():
            return ENCRYPTED.format(suffix=path.suffix.lower())
        return f"{NOT_A_WORKBOOK} ({reason})"
    if failure.stage == "no-sheets":
        return "the workbook has no sheets"
    if failure.stage == "no-sheet":
        return f"no sheet named {failure.reason!r}; its sheets are {', '.join(failure.names)}"
    if failure.stage == "sheet":
        return failure.reason
    return READER_PANIC.format(reason=failure.reason)


def _workbook_grid(values: Sequence[Sequence[object]]) -> _Grid:
    """Cells as text, column by column; only the cells that are not text are converted one
    by one, and only columns holding such cells get a type array."""
    raw = pd.DataFrame(values, dtype=object)
    texts: dict[int, pd.Series] = {}
    types: dict[int, np.ndarray] = {}
    for column in raw.columns:
        cells = raw[column].to_numpy()
        if pd.api.types.infer_dtype(cells, skipna=False) == "string":  # a C loop: all text
            texts[int(column)] = pd.Series(cells, dtype=ARROW_TEXT)
            continue
        other = np.fromiter((v.__class__ is not str for v in cells), dtype=bool, count=len(cells))
        if other.any():
            cells = cells.copy()
            kinds = np.full(len(cells), TEXT, dtype=object)
            for i in np.flatnonzero(other):
                cells[i], kinds[i] = _cell(cells[i])
            types[int(column)] = kinds
        texts[int(column)] = pd.Series(cells, dtype=ARROW_TEXT)
    return _Grid(pd.DataFrame(texts), types=types)


def _build(path: Path, sheet_name: str | None, grid: _Grid) -> Sheet:
    where = f"{path}" + (f" (sheet {sheet_name!r})" if sheet_name else "")
    cells = grid.cells
    count = cells.shape[1]
    nonblank = _any_filled(cells, range(count))
    if not nonblank.any():
        raise InputError(f"{where}: the file has no header and no rows")
    first = int(np.argmax(nonblank))  # the header is the first row with any text
    header = [str(h).strip() for h in cells.iloc[first]]
    # The sheet is as wide as its last header; a value beyond it has no column to belong to.
    width = len(header)
    while width and not header[width - 1]:
        width -= 1
    header = header[:width]
    columns = canonical_columns(header, where)
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise InputError(f"{where}: " + _missing_message(missing, header))
    if count > width:
        beyond = _any_filled(cells.iloc[first + 1 :], range(width, count))
        if beyond.any():
            row = first + 2 + int(np.argmax(beyond))
            raise InputError(
                f"{where}: row {row} has values beyond the last header column ({width} "
                "columns); give those values a header or remove them"
            )
    if count > width:
        data = _any_filled(cells.iloc[first + 1 :], range(width))
    else:
        data = nonblank[first + 1 :]
    if not data.any():
        raise InputError(
            f"{where}: the sheet has a header but no rows; add one row per beneficiary"
        )
    keep = np.flatnonzero(data)
    row_numbers = first + 2 + keep
    blank = first + 2 + np.flatnonzero(~data)
    frame = cells.iloc[first + 1 :, :width]
    if len(keep) < len(frame):
        frame = frame.iloc[keep]
    frame = frame.reset_index(drop=True)
    frame.columns = pd.RangeIndex(width)
    types = None
    if grid.types is not None:
        types = {c: kinds[first + 1 :][keep] for c, kinds in grid.types.items() if c < width}
    return Sheet(
        path=path,
        sheet_name=sheet_name,
        headers=header,
        frame=frame,
        row_numbers=row_numbers.astype(np.int64),
        columns=columns,
        cell_types=types,
        merged=grid.merged,
        formulas=grid.formulas,
        blank_rows=[int(r) for r in blank if r < row_numbers[-1]],  # trailing ones are no news
        notes=grid.notes,
    )


def _any_filled(cells: pd.DataFrame, positions: range) -> np.ndarray:
    """Per row of ``cells``: whether any of the columns at ``positions`` holds anything but
    white space. Each column is looked at only on the rows not settled yet, so the first
    column usually settles nearly every row."""
    found = np.zeros(len(cells), dtype=bool)
    for position in positions:
        todo = np.flatnonzero(~found)
        if not len(todo):
            break
        column = cells.iloc[:, position]
        if len(todo) < len(found):
            column = column.iloc[todo]
        found[todo] = (column.ne("") & ~column.str.isspace()).to_numpy(dtype=bool)
    return found


def canonical_columns(header: list[str], where: str) -> dict[str, int]:
    """Which header position holds each known column."""
    columns: dict[str, int] = {}
    for position, name in enumerate(header):
        canonical = _BY_NORMAL.get(normalize_header(name))
        if canonical is None:
            continue
        if canonical in columns:
            first = header[columns[canonical]]
            raise InputError(
                f"{where}: columns {first!r} and {name!r} both mean {canonical}; keep one of them"
            )
        columns[canonical] = position
    return columns


def _missing_message(missing: list[str], header: list[str]) -> str:
    parts = []
    normal = {normalize_header(h): h for h in header if h}
    for name in missing:
        close = difflib.get_close_matches(normalize_header(name), list(normal), n=1, cutoff=0.6)
        hint = f" (closest header: {normal[close[0]]!r})" if close else ""
        parts.append(f"{name}{hint}")
    return (
        f"missing required column{'s' if len(missing) > 1 else ''}: {', '.join(parts)}; "
        f"the header row has {', '.join(repr(h) for h in header if h) or 'no names'}. "
        "Rename the closest header, or add the column"
    )
