"""What a workbook's values do not tell: which file kind it really is, and which cells hold
formulas (calamine returns formulas' cached values only).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
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

_NS = {
    "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "rel": "http://schemas.openxmlformats.org/package/2006/relationships",
}
# In OOXML a cell's <f> (formula) comes first inside <c>, before its cached <v>.
_FORMULA_CELL = re.compile(rb'<c r="([A-Z]+)([0-9]+)"[^>]*?(?<!/)>\s*<f[\s>/]')


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


def column_index(letters: bytes) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + letter - 64
    return index - 1


def xlsx_formula_cells(path: Path, sheet_name: str) -> set[tuple[int, int]]:
    """(sheet row, 0-based column) of every formula cell of an .xlsx/.xlsm sheet."""
    try:
        with zipfile.ZipFile(path) as archive:
            workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
            rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
            targets = {
                r.get("Id"): r.get("Target", "") for r in rels.findall("rel:Relationship", _NS)
            }
            for sheet in workbook.iterfind("m:sheets/m:sheet", _NS):
                if sheet.get("name") == sheet_name:
                    target = targets.get(sheet.get(f"{{{_NS['r']}}}id"), "")
                    break
            else:
                return set()
            member = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            xml = archive.read(member)
    except (KeyError, zipfile.BadZipFile, ElementTree.ParseError):
        return set()
    if b"<f" not in xml:
        return set()
    return {(int(row), column_index(col)) for col, row in _FORMULA_CELL.findall(xml)}


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
