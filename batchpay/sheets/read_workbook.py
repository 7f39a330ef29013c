"""What a workbook's values do not tell (which file kind it really is, its merged ranges in an
.ods), and calamine's reading of it, kept free of heavy imports so that a child process can run
it alone (``read_child``). Formula cells and the limits of an .xlsx: ``xlsx_check``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls, and encrypted .xlsx
ZIP_MAGIC = b"PK\x03\x04"  # .xlsx, .xlsm, .ods

ENCRYPTED = (
    "is password-protected (encrypted), or an old .xls file named {suffix}; remove the "
    "password (File > Info > Protect Workbook > Encrypt with Password, clear it) and save "
    "it as .xlsx again"
)
TEXT_AS_WORKBOOK = "is a text (CSV) file with a {suffix} name; rename it to .csv"
NOT_A_WORKBOOK = "is damaged or not a workbook; open it in Excel or LibreOffice and save it again"


def is_zip(path: Path) -> bool:
    with path.open("rb") as stream:
        return stream.read(4) == ZIP_MAGIC


def kind_problem(path: Path) -> str | None:
    """Why a workbook-named file is not one we can open, judged by its first bytes."""
    with path.open("rb") as stream:
        head = stream.read(512)
    suffix = path.suffix.lower()
    if suffix in {".xlsx", ".xlsm", ".ods"} and head.startswith(OLE2_MAGIC):
        return ENCRYPTED.format(suffix=suffix)
    if head.startswith((ZIP_MAGIC, OLE2_MAGIC)):
        return None
    # Text: a byte-order mark (UTF-8 or UTF-16, Excel's "Unicode text"), or no NUL byte at all.
    if head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) or b"\x00" not in head:
        return TEXT_AS_WORKBOOK.format(suffix=suffix)
    return NOT_A_WORKBOOK


@dataclass
class Loaded:
    """What calamine read of one sheet; picklable, so that a child process can return it."""

    names: list[str]
    name: str
    values: list[list[Any]]
    merged: list[tuple[int, int, int, int]]  # first row, first column, last row, last column


class ReadFailure(Exception):
    """calamine could not read the workbook. ``stage``: "open", "no-sheets", "no-sheet",
    "sheet" or "panic"; ``reason``: its first line."""

    def __init__(self, stage: str, reason: str, names: Sequence[str] = ()) -> None:
        super().__init__(stage, reason, list(names))
        self.stage, self.reason, self.names = stage, reason, list(names)


def load_with_calamine(path: str, sheet: str | None) -> Loaded:
    """The sheet's values from A1 (list index + 1 is the sheet row number) and its merged
    ranges. A panic in the reader (``pyo3_runtime.PanicException``, which derives from
    BaseException and which python-calamine does not export) becomes a ReadFailure too."""
    from python_calamine import CalamineWorkbook

    try:
        try:
            workbook = CalamineWorkbook.from_path(path)
        except Exception as exc:  # calamine raises its own error types for every malformed file
            raise ReadFailure("open", _short(exc)) from None
        names = list(workbook.sheet_names)
        if not names:
            raise ReadFailure("no-sheets", "")
        name = names[0] if sheet is None else sheet
        if name not in names:
            raise ReadFailure("no-sheet", name, names)
        try:
            worksheet = workbook.get_sheet_by_name(name)
            values = worksheet.to_python(skip_empty_area=False)
            ranges = worksheet.merged_cell_ranges or []
        except Exception as exc:
            raise ReadFailure("sheet", f"cannot read sheet {name!r} ({_short(exc)})") from None
        merged = [(r0 + 1, c0, r1 + 1, c1) for (r0, c0), (r1, c1) in ranges]
        return Loaded(names, name, values, merged)
    except ReadFailure:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:
        raise ReadFailure("panic", _short(exc)) from None


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:120] if text else type(exc).__name__


_ODS = {
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
}


def ods_merged_ranges(path: Path, sheet_name: str) -> list[tuple[int, int, int, int]]:
    """Merged ranges of an .ods sheet as (first row, first column, last row, last column):
    sheet rows from 1, columns from 0."""
    table_ns = _ODS["table"]
    name_attr = f"{{{table_ns}}}name"
    found: list[tuple[int, int, int, int]] = []
    try:
        with zipfile.ZipFile(path) as archive, archive.open("content.xml") as content:
            inside, row = False, 0
            for event, element in ElementTree.iterparse(content, events=("start", "end")):
                tag = element.tag.rpartition("}")[2]
                if tag == "table" and event == "start":
                    inside = element.get(name_attr) == sheet_name
                elif tag == "table" and event == "end":
                    if inside:
                        break
                elif inside and tag == "table-row" and event == "end":
                    column = 0
                    for cell in element:
                        cell_tag = cell.tag.rpartition("}")[2]
                        if cell_tag not in {"table-cell", "covered-table-cell"}:
                            continue
                        rows = int(cell.get(f"{{{table_ns}}}number-rows-spanned", "1"))
                        cols = int(cell.get(f"{{{table_ns}}}number-columns-spanned", "1"))
                        if cell_tag == "table-cell" and (rows > 1 or cols > 1):
                            found.append((row + 1, column, row + rows, column + cols - 1))
                        column += int(cell.get(f"{{{table_ns}}}number-columns-repeated", "1"))
                    row += int(element.get(f"{{{table_ns}}}number-rows-repeated", "1"))
                    element.clear()
    except (KeyError, zipfile.BadZipFile, ElementTree.ParseError, ValueError):
        return []
    return found
