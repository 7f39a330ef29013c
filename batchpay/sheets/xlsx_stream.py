"""An .xlsx checked by streaming its parts: the zip's budget of decompressed bytes, and the
sheet and shared strings parsed as a stream by expat against the limits in ``limits``.

A reader trusts the parts: calamine allocates every cell of the used range a cell reference
implies (one cell at XFD1048576 of a 1.4 KB file asks for 512 GB and aborts the process, which
no ``except`` can catch), and fills a cell's text in from the shared strings however often one
is used. So every part is decompressed in chunks and counted (a part's header can lie about
its size), and every row, cell and merge reference, the declared dimension and the characters
of every text are checked as they stream past. Nothing is held but counters, so a hostile file
costs a bounded amount of memory and is refused as soon as it goes beyond a limit.

The same pass finds the formula cells (calamine gives their cached values only), from the
parsed elements rather than a pattern over the bytes: attributes come in any order, and a
cell may have no ``r`` at all, when it stands one column right of the cell before it (and a
row without ``r`` one below the row before it), as Excel reads it.
"""

from __future__ import annotations

import re
import zipfile
from array import array
from collections.abc import Callable, Iterator
from xml.parsers import expat

from ..errors import InputError
from .limits import (
    CELL_TOO_LONG,
    FIX_RANGE,
    MAX_CELL_CHARS,
    MAX_COLUMNS,
    MAX_MERGED_RANGES,
    MAX_ROWS,
    MAX_SHEET_CELLS,
    MAX_TEXT_CHARS,
    MAX_UNPACK_RATIO,
    MAX_UNPACKED_BYTES,
    cell_name,
    refuse,
)

CHUNK = 1 << 20

DAMAGED = (
    "is damaged or not a workbook ({reason}); open it in Excel or LibreOffice and save it again"
)
UNPACKED = "the workbook's parts decompress to too many bytes:"
UNPACKED_RATIO = "the workbook's parts decompress to {found:,} bytes,"
BEYOND = (
    "{where}: cell {ref} (column {column:,}, row {row:,}) is beyond the limits of "
    f"{MAX_COLUMNS} columns and {MAX_ROWS:,} rows" + FIX_RANGE
)
RANGE_BEYOND = (
    "{where}: {what} {ref} reaches column {column:,}, row {row:,}, beyond the limits of "
    f"{MAX_COLUMNS} columns and {MAX_ROWS:,} rows" + FIX_RANGE
)
ROW_BEYOND = f"{{where}}: row {{row:,}} is beyond the limit of {MAX_ROWS:,} rows" + FIX_RANGE
NOT_A_REFERENCE = "{where}: {what} {ref!r} is not a cell reference; " + DAMAGED.format(
    reason="a damaged sheet"
)
USED_RANGE = "the sheet's used range {range} spans too many cells:"
MERGED_RANGES = "the sheet has too many merged ranges:"
SHARED_STRING_TOO_LONG = "shared string {index} (a text cell's value) holds too many characters:"
SHARED_TEXT = "the workbook's shared strings hold too many characters in all:"
SHEET_TEXT = "the sheet's cells hold too many characters in all (shared strings filled in):"

_REFERENCE = re.compile(r"\$?([A-Za-z]{1,16})\$?([0-9]{1,20})")


class Budget:
    """Bytes decompressed so far, against the limits of the whole workbook."""

    def __init__(self, where: str, file_size: int) -> None:
        self.where = where
        self.limit = min(MAX_UNPACKED_BYTES, MAX_UNPACK_RATIO * max(file_size, 1))
        self.file_size = file_size
        self.used = 0

    def add(self, count: int) -> None:
        self.used += count
        if self.used > self.limit:
            raise self.refusal(self.used)

    def refusal(self, found: int) -> InputError:
        if found > MAX_UNPACKED_BYTES:
            return refuse(self.where, UNPACKED, found, MAX_UNPACKED_BYTES, " bytes")
        ratio = f"{found / max(self.file_size, 1):,.0f} times the file's size"
        return InputError(
            f"{self.where}: {UNPACKED_RATIO.format(found=found)} {ratio}, more than the limit "
            f"of {MAX_UNPACK_RATIO} times; a workbook that packs this tightly is not a payroll"
        )


def part_chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: Budget) -> Iterator[bytes]:
    """A part's bytes as they decompress, counted against the budget."""
    with archive.open(info) as stream:
        while chunk := stream.read(CHUNK):
            budget.add(len(chunk))
            yield chunk


def _reference(where: str, what: str, ref: str) -> tuple[int, int]:
    """(0-based column, row number) of ``A1`` or ``$A$1``."""
    found = _REFERENCE.fullmatch(ref)
    if not found:
        raise InputError(NOT_A_REFERENCE.format(where=where, what=what, ref=ref[:40]))
    column = 0
    for letter in found.group(1).upper():
        column = column * 26 + ord(letter) - 64
    return column - 1, int(found.group(2))


def check_range(where: str, what: str, ref: str) -> tuple[int, int, int, int]:
    """(first column, first row, last column, last row) of ``A1:B2`` (or ``A1``) within the
    limits."""
    first, _, last = ref.partition(":")
    c0, r0 = _reference(where, what, first)
    c1, r1 = _reference(where, what, last or first)
    for column, row in ((c0, r0), (c1, r1)):
        if column >= MAX_COLUMNS or row > MAX_ROWS or row < 1:
            raise InputError(
                RANGE_BEYOND.format(where=where, what=what, ref=ref, column=column + 1, row=row)
            )
    return c0, r0, c1, r1


def xml_parser(chars: Callable[[str], None] | None = None) -> expat.XMLParserType:
    parser = expat.ParserCreate()
    parser.buffer_text = True  # one call per text, not one per line or entity

    def doctype(*_: object) -> None:
        # OOXML never declares a DOCTYPE; one can only be there to define entities.
        raise expat.ExpatError("a DOCTYPE declaration")

    parser.StartDoctypeDeclHandler = doctype
    return parser


def feed(parser: expat.XMLParserType, chunks: Iterator[bytes]) -> None:
    for chunk in chunks:
        parser.Parse(chunk, False)
    parser.Parse(b"", True)


class SharedStrings:
    """The characters of each shared string (``<si>``, rich-text runs included, phonetic
    guides left out as readers do)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.lengths = array("q")
        self.total = 0
        self.current = 0
        self.phonetic = 0
        self.parser = xml_parser()
        self.parser.StartElementHandler = self.start
        self.parser.EndElementHandler = self.end

    def start(self, name: str, attrs: dict[str, str]) -> None:
        tag = name.rpartition(":")[2]
        if tag == "si":
            self.current = 0
        elif tag == "rPh":
            self.phonetic += 1
        elif tag == "t" and not self.phonetic:
            self.parser.CharacterDataHandler = self.chars

    def chars(self, data: str) -> None:
        self.current += len(data)

    def end(self, name: str) -> None:
        tag = name.rpartition(":")[2]
        if tag == "t":
            self.parser.CharacterDataHandler = None
        elif tag == "rPh":
            self.phonetic -= 1
        elif tag == "si":
            index = len(self.lengths)
            if self.current > MAX_CELL_CHARS:
                what = SHARED_STRING_TOO_LONG.format(index=index)
                raise refuse(self.where, what, self.current, MAX_CELL_CHARS)
            self.total += self.current
            if self.total > MAX_TEXT_CHARS:
                raise refuse(self.where, SHARED_TEXT, self.total, MAX_TEXT_CHARS)
            self.lengths.append(self.current)


class SheetScan:
    """One worksheet's references, texts and formulas, checked as they stream past."""

    def __init__(self, where: str, shared: array[int]) -> None:
        self.where = where
        self.shared = shared
        self.row = 0  # the row being read (sheet row number)
        self.column = -1  # the last cell's column in it (0-based)
        self.cell_row = 0
        self.cell_type = ""
        self.has_value = False
        self.text = 0
        self.index: list[str] = []
        self.in_value = False
        self.last_row = 0  # of cells that hold anything
        self.last_column = -1
        self.expanded = 0
        self.merged = 0
        self.formulas: set[tuple[int, int]] = set()
        self.parser = xml_parser()
        self.parser.StartElementHandler = self.start
        self.parser.EndElementHandler = self.end

    def start(self, name: str, attrs: dict[str, str]) -> None:
        tag = name.rpartition(":")[2]
        if tag == "c":
            ref = attrs.get("r")
            if ref is None:
                column, row = self.column + 1, max(self.row, 1)
            else:
                column, row = _reference(self.where, "cell", ref)
            if column >= MAX_COLUMNS or row > MAX_ROWS or row < 1:
                cell = ref if ref is not None else cell_name(column, row)
                raise InputError(
                    BEYOND.format(where=self.where, ref=cell, column=column + 1, row=row)
                )
            self.column, self.cell_row = column, row
            self.cell_type = attrs.get("t", "n")
            self.has_value = False
        elif tag == "v" or tag == "t":
            self.has_value = True
            self.in_value = True
            self.text = 0
            self.index.clear()
            self.parser.CharacterDataHandler = self.chars
        elif tag == "f":
            self.has_value = True
            self.formulas.add((self.cell_row, self.column))
        elif tag == "row":
            number = attrs.get("r")
            if number is None:
                row = self.row + 1
            elif number.isdigit() and len(number) <= 20:
                row = int(number)
            else:
                raise InputError(NOT_A_REFERENCE.format(where=self.where, what="row", ref=number))
            if row > MAX_ROWS or row < 1:
                raise InputError(ROW_BEYOND.format(where=self.where, row=row))
            self.row, self.column = row, -1
        elif tag == "dimension":
            check_range(self.where, "the declared dimension", attrs.get("ref", "A1"))
        elif tag == "mergeCell":
            check_range(self.where, "merged range", attrs.get("ref", ""))
            self.merged += 1
            if self.merged > MAX_MERGED_RANGES:
                raise refuse(self.where, MERGED_RANGES, self.merged, MAX_MERGED_RANGES, FIX_RANGE)

    def chars(self, data: str) -> None:
        self.text += len(data)
        if self.cell_type == "s" and self.text <= 20:
            self.index.append(data)

    def end(self, name: str) -> None:
        tag = name.rpartition(":")[2]
        if self.in_value and (tag == "v" or tag == "t"):
            self.parser.CharacterDataHandler = None
            self.in_value = False
            length = self.text
            if self.cell_type == "s" and tag == "v":
                digits = "".join(self.index).strip()
                if digits.isdigit() and int(digits) < len(self.shared):
                    length = self.shared[int(digits)]
            if length > MAX_CELL_CHARS:
                what = CELL_TOO_LONG.format(cell=cell_name(self.column, self.cell_row))
                raise refuse(self.where, what, length, MAX_CELL_CHARS)
            self.expanded += length
            if self.expanded > MAX_TEXT_CHARS:
                raise refuse(self.where, SHEET_TEXT, self.expanded, MAX_TEXT_CHARS)
        elif tag == "c" and self.has_value:
            self.last_row = max(self.last_row, self.cell_row)
            self.last_column = max(self.last_column, self.column)

    def finish(self) -> None:
        cells = self.last_row * (self.last_column + 1)
        if cells > MAX_SHEET_CELLS:
            used = f"A1:{cell_name(self.last_column, self.last_row)}"
            raise refuse(
                self.where, USED_RANGE.format(range=used), cells, MAX_SHEET_CELLS, FIX_RANGE
            )


def sheet_parts(archive: zipfile.ZipFile, budget: Budget, sheet: str | None) -> list[str]:
    """The part of the sheet the reader will read: the first sheet, or the one named. Every
    XML part but the shared strings when that cannot be told (the reader may find a sheet
    this does not, wherever it is)."""
    names = archive.namelist()
    worksheets = [
        n for n in names
        if n.lower().endswith(".xml") and not n.lower().endswith("sharedstrings.xml")
    ]  # fmt: skip
    try:
        sheets: list[tuple[str, str]] = []  # (name, relationship id)
        targets: dict[str, str] = {}

        def on_workbook(name: str, attrs: dict[str, str]) -> None:
            if name.rpartition(":")[2] == "sheet":
                rid = next((v for k, v in attrs.items() if k.rpartition(":")[2] == "id"), "")
                sheets.append((attrs.get("name", ""), rid))

        def on_rels(name: str, attrs: dict[str, str]) -> None:
            if name.rpartition(":")[2] == "Relationship":
                targets[attrs.get("Id", "")] = attrs.get("Target", "")

        for part, handler in (
            ("xl/workbook.xml", on_workbook),
            ("xl/_rels/workbook.xml.rels", on_rels),
        ):
            parser = xml_parser()
            parser.StartElementHandler = handler
            feed(parser, part_chunks(archive, archive.getinfo(part), budget))
    except (KeyError, expat.ExpatError):
        return worksheets
    chosen = (
        sheets[0] if sheets and sheet is None else next((s for s in sheets if s[0] == sheet), None)
    )
    if chosen is None:
        return worksheets
    target = targets.get(chosen[1], "")
    member = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    return [member] if member in worksheets else worksheets
