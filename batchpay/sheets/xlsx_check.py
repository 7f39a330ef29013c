"""A workbook checked by streaming its parts before any reader sees it.

An .xlsx is a zip of XML parts, and a reader trusts them: calamine allocates every cell of the
used range a cell reference implies (one cell at XFD1048576 of a 1.4 KB file asks for 512 GB
and aborts the process, which no ``except`` can catch), and fills a cell's text in from the
shared strings however often one is used. So the zip's sizes are checked from its directory
first, then every part is decompressed in chunks and counted (a part's header can lie about
its size), and the sheet and the shared strings are parsed as a stream by expat: every row,
cell and merge reference, the declared dimension, the characters of every text, against the
limits in ``limits``. Nothing is held but counters, so a hostile file costs a bounded amount
of memory and is refused as soon as it goes beyond a limit.

The same pass finds the formula cells (calamine gives their cached values only), from the
parsed elements rather than a pattern over the bytes: attributes come in any order, and a
cell may have no ``r`` at all, when it stands one column right of the cell before it (and a
row without ``r`` one below the row before it), as Excel reads it.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.parsers import expat

import numpy as np

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
XLSX_SUFFIXES = {".xlsx", ".xlsm"}

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


class _Budget:
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


def _chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget) -> Iterator[bytes]:
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


def _check_range(where: str, what: str, ref: str) -> tuple[int, int, int, int]:
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


def _parser(chars: Callable[[str], None] | None = None) -> expat.XMLParserType:
    parser = expat.ParserCreate()
    parser.buffer_text = True  # one call per text, not one per line or entity

    def doctype(*_: object) -> None:
        # OOXML never declares a DOCTYPE; one can only be there to define entities.
        raise expat.ExpatError("a DOCTYPE declaration")

    parser.StartDoctypeDeclHandler = doctype
    return parser


def _feed(parser: expat.XMLParserType, chunks: Iterator[bytes]) -> None:
    for chunk in chunks:
        parser.Parse(chunk, False)
    parser.Parse(b"", True)


class _SharedStrings:
    """The characters of each shared string (``<si>``, rich-text runs included, phonetic
    guides left out as readers do)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.lengths = array("q")
        self.total = 0
        self.current = 0
        self.phonetic = 0
        self.parser = _parser()
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


class _SheetScan:
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
        self.parser = _parser()
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
            _check_range(self.where, "the declared dimension", attrs.get("ref", "A1"))
        elif tag == "mergeCell":
            _check_range(self.where, "merged range", attrs.get("ref", ""))
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


_NS_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _sheet_parts(archive: zipfile.ZipFile, budget: _Budget, sheet: str | None) -> list[str]:
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
            parser = _parser()
            parser.StartElementHandler = handler
            _feed(parser, _chunks(archive, archive.getinfo(part), budget))
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


# The plain tier: most workbooks are written by a spreadsheet program or a library in one
# regular form, and for a part in that form the checks run at the speed of a byte search
# (a 100k-row sheet in a fraction of the expat pass). Each test below only *proves* a part
# within the limits; whatever it cannot prove (a reference near a limit, a cell without
# ``r``, a namespace prefix, a comment or CDATA, an entity in a tag, a long text) goes to the
# expat pass, which decides exactly and names what is wrong.
PLAIN_PART_BYTES = 256 << 20
_FORMULA = re.compile(rb'<c\s(?:[^>]*\s)?r="([A-Z]{1,2})([0-9]{1,7})"[^>]*(?<!/)>\s*<f[\s/>]')
_RANGE_REF = re.compile(rb'<(?:mergeCell|dimension)\s(?:[^>]*\s)?ref="([A-Z0-9:$]{1,40})"[^>]*>')
# Local names readers take for a cell, row, formula, value or text, with any prefix.
_LOCAL_NAMES = (b"c", b"row", b"f", b"v", b"is", b"t", b"si", b"mergeCell", b"dimension")


_WHITE = np.frombuffer(b" \t\n\r", dtype=np.uint8)
_NAME_ENDS = np.frombuffer(b" \t\n\r/>", dtype=np.uint8)


class _Bytes:
    """The part's bytes, with room past the end, for looking at offsets from many positions
    at once."""

    def __init__(self, data: bytes) -> None:
        self.padded = np.frombuffer(data + bytes(16), dtype=np.uint8)
        self.marks: np.ndarray | None = None
        self.after = self.padded[:0]

    def tags(self, opens: np.ndarray, name: bytes) -> int:
        """How many of the tags starting at ``opens`` open an element ``name``."""
        return len(self.named(opens, name))

    def named(self, marks: np.ndarray, name: bytes) -> np.ndarray:
        """The positions in ``marks`` followed by ``name`` and the end of a name."""
        if marks is not self.marks:  # one gather of the byte after each mark, for every name
            self.marks, self.after = marks, self.padded[marks + 1]
        found = marks[self.after == name[0]]
        for offset, letter in enumerate(name[1:], start=2):
            found = found[self.padded[found + offset] == letter]
        ends: np.ndarray = found[np.isin(self.padded[found + len(name) + 1], _NAME_ENDS)]
        return ends

    def followed_by(self, positions: np.ndarray, text: bytes) -> np.ndarray:
        """Per position, whether ``text`` starts there."""
        found = np.ones(len(positions), dtype=bool)
        for offset, letter in enumerate(text):
            found &= self.padded[positions + offset] == letter
        return found

    def columns(self, starts: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """The 0-based column of the reference at each start, and how many letters it has:
        one or two capitals followed by a digit, else None."""
        first, second = self.padded[starts], self.padded[starts + 1]
        two = (second >= ord("A")) & (second <= ord("Z"))
        after = self.padded[starts + 1 + two]
        capital = (first >= ord("A")) & (first <= ord("Z"))
        if not (capital & (after >= ord("0")) & (after <= ord("9"))).all():
            return None, two.astype(np.int64)
        one = first.astype(np.int64) - 64
        both = one * 26 + second.astype(np.int64) - 64
        return np.where(two, both, one) - 1, two.astype(np.int64) + 1

    def number(self, starts: np.ndarray) -> np.ndarray | None:
        """The whole number of 1 to 7 digits closed by '"' at each start, else None."""
        values = np.zeros(len(starts), dtype=np.int64)
        open_ = np.ones(len(starts), dtype=bool)  # still reading digits
        for offset in range(8):
            byte = self.padded[starts + offset]
            digit = (byte >= ord("0")) & (byte <= ord("9")) & open_
            if offset == 0 and not digit.all():
                return None
            closed = open_ & ~digit
            if (closed & (byte != ord('"'))).any():
                return None
            values = np.where(digit, values * 10 + byte.astype(np.int64) - 48, values)
            open_ = digit
        return None if open_.any() else values

    def r_attributes(self) -> int | None:
        """How many attributes are written ' r="'; None when an '=' has white space before
        it, or an r attribute is written any other way (quotes, white space), which the
        byte searches would not see."""
        equals = np.flatnonzero(self.padded == ord("="))
        before, after = self.padded[equals - 1], self.padded[equals + 1]
        if np.isin(before, _WHITE).any():
            return None
        named_r = (before == ord("r")) & np.isin(self.padded[equals - 2], _WHITE)
        if (named_r & (after != ord('"'))).any():
            return None
        if (named_r & (self.padded[equals - 2] != ord(" "))).any():
            return None
        return int(named_r.sum())


def _plain_xml(data: bytes) -> tuple[_Bytes, np.ndarray] | None:
    """Where each tag starts, when there is no comment, CDATA, DOCTYPE or processing
    instruction (one XML declaration first), no prefixed element that readers take for a
    cell, row or text, and no run of text beyond the cell limit: the byte searches of the
    plain tier then see the tags a reader sees. None otherwise."""
    start = data.find(b"?>") + 2 if data.startswith(b"<?xml") else 0
    if start == 1 or b"<!" in data or data.find(b"<?", start) >= 0:
        return None
    view = _Bytes(data)
    raw = view.padded[: len(data)]
    colons = np.flatnonzero(raw == ord(":"))
    if len(colons) and any(len(view.named(colons, name)) for name in _LOCAL_NAMES):
        return None
    # A text of more characters than the limit is a longer run of bytes without a '<'.
    opens = np.flatnonzero(raw == ord("<"))
    edges = np.concatenate(([-1], opens, [len(data)]))
    if np.diff(edges).max() > MAX_CELL_CHARS + 1:
        return None
    return view, opens


def _plain_shared_lengths(data: bytes) -> int | None:
    """The most bytes one shared string spans (a bound on its characters), or None when the
    part is not plain."""
    start = data.find(b"?>") + 2 if data.startswith(b"<?xml") else 0
    if start == 1 or b"<!" in data or data.find(b"<?", start) >= 0:
        return None
    # Characters never outnumber bytes (an entity is longer than what it stands for).
    longest = max(map(len, data.split(b"</si>")), default=0)
    return longest if longest <= MAX_CELL_CHARS else None


def _plain_sheet(where: str, data: bytes, longest_shared: int) -> set[tuple[int, int]] | None:
    """The sheet's formula cells when its plain form proves it within every limit; None
    when the expat pass must decide."""
    plain = _plain_xml(data)
    if plain is None:
        return None
    view, opens = plain
    all_cells = view.named(opens, b"c")
    all_rows = view.named(opens, b"row")
    # Every cell and row written '<c r="' / '<row r="', and no other r attribute anywhere.
    cells = all_cells[view.followed_by(all_cells + 2, b' r="')]
    rows = all_rows[view.followed_by(all_rows + 4, b' r="')]
    if len(cells) != len(all_cells) or len(rows) != len(all_rows):
        return None  # a cell without r (placed by its order), or r not first
    if view.r_attributes() != len(cells) + len(rows):
        return None  # an r attribute these did not take: a duplicate, or one after a '>'
    columns, letters = view.columns(cells + 6)
    if columns is None:
        return None  # not one or two capital letters: near a limit, or odd
    numbers = [view.number(cells + 6 + letters), view.number(rows + 8)]
    if any(n is None for n in numbers):
        return None
    row_numbers = np.concatenate([n for n in numbers if n is not None])
    last_column = int(columns.max(initial=-1))
    last_row = int(row_numbers.max(initial=0))
    if last_column >= MAX_COLUMNS or last_row > MAX_ROWS or int(row_numbers.min(initial=1)) < 1:
        return None
    if last_row * (last_column + 1) > MAX_SHEET_CELLS:
        return None  # the expat pass counts only the cells that hold anything
    if len(cells) * longest_shared + len(data) > MAX_TEXT_CHARS:
        return None
    marks = np.concatenate([view.named(opens, b"mergeCell"), view.named(opens, b"dimension")])
    if len(marks) > MAX_MERGED_RANGES:
        return None
    for mark in marks.tolist():
        found = _RANGE_REF.match(data, mark)
        if not found:
            return None
        what = "merged range" if found.group(0).startswith(b"<m") else "the declared dimension"
        _check_range(where, what, found.group(1).decode("ascii"))
    formula_tags = view.tags(opens, b"f")
    formulas = _FORMULA.findall(data) if formula_tags else []
    if len(formulas) != formula_tags:
        return None  # a formula this pattern does not place
    return {(int(row), _column(column)) for column, row in formulas}


def _column(letters: bytes) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + letter - 64
    return index - 1


def check_zip(path: Path) -> None:
    """Refuse a zip workbook (.xlsx, .xlsm, .ods, .xlsb) whose parts decompress to more than
    the limits, judged from its directory and then by decompressing every part in chunks."""
    _scan(path, None, xml=False)


def scan_xlsx(path: Path, sheet: str | None) -> set[tuple[int, int]]:
    """Check an .xlsx/.xlsm against every limit before it is read; the formula cells of the
    sheet to be read, as (sheet row, 0-based column)."""
    return _scan(path, sheet, xml=True)


def _scan(path: Path, sheet: str | None, *, xml: bool) -> set[tuple[int, int]]:
    where = str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            budget = _Budget(where, path.stat().st_size)
            declared = sum(info.file_size for info in infos)
            if declared > budget.limit:
                raise budget.refusal(declared)
            return _scan_parts(archive, infos, budget, sheet, xml=xml)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise InputError(f"{where}: {DAMAGED.format(reason=_first_line(exc))}") from None
    except expat.ExpatError as exc:
        reason = f"its XML is not well formed: {_first_line(exc)}"
        raise InputError(f"{where}: {DAMAGED.format(reason=reason)}") from None


def _scan_parts(
    archive: zipfile.ZipFile,
    infos: list[zipfile.ZipInfo],
    budget: _Budget,
    sheet: str | None,
    *,
    xml: bool,
) -> set[tuple[int, int]]:
    if not xml:
        for info in infos:
            for _ in _chunks(archive, info, budget):
                pass
        return set()
    parts = _sheet_parts(archive, budget, sheet)
    strings = [i for i in infos if i.filename.lower().endswith("sharedstrings.xml")]
    # Shared strings first: a sheet's cells are measured with them filled in. Each such part
    # is held to the limits; the cells are measured against the one readers use.
    used = next((i.filename for i in strings if i.filename == "xl/sharedStrings.xml"), None)
    used = used or (strings[0].filename if strings else None)
    longest = 0  # a bound on the characters of any shared string
    exact: dict[str, array[int]] = {}
    plain: dict[str, bytes] = {}
    for info in strings:
        data = _plain_candidate(archive, info, budget)
        bound = None if data is None else _plain_shared_lengths(data)
        if bound is None:
            shared = _SharedStrings(budget.where)
            _feed(shared.parser, _chunks(archive, info, budget) if data is None else iter([data]))
            exact[info.filename] = shared.lengths
            bound = max(shared.lengths, default=0)
        elif info.filename == used:
            plain[info.filename] = data  # type: ignore[assignment]  # not None: bound is not
        longest = max(longest, bound)

    def lengths() -> array[int]:
        """Each shared string's characters, for the expat pass over a sheet."""
        if used in plain:
            shared = _SharedStrings(budget.where)
            _feed(shared.parser, iter([plain.pop(used)]))
            exact[used] = shared.lengths
        return exact.get(used or "", array("q"))

    found: list[set[tuple[int, int]]] = []
    for info in infos:
        if info.filename in parts:
            data = _plain_candidate(archive, info, budget)
            formulas = None if data is None else _plain_sheet(budget.where, data, longest)
            if formulas is None:
                scan = _SheetScan(budget.where, lengths())
                stream = _chunks(archive, info, budget) if data is None else iter([data])
                _feed(scan.parser, stream)
                scan.finish()
                formulas = scan.formulas
            found.append(formulas)
        elif info not in strings:
            for _ in _chunks(archive, info, budget):
                pass  # counted: the reader may decompress it too
    return found[0] if len(found) == 1 else set()


def _plain_candidate(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget
) -> bytes | None:
    """The part whole, when it is small enough to be held for the plain tier; None leaves it
    to be streamed."""
    if info.file_size > PLAIN_PART_BYTES:
        return None
    return b"".join(_chunks(archive, info, budget))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:120] if text else type(exc).__name__
