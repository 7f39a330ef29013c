"""The plain tier of the .xlsx checks: byte searches that prove a part within the limits.

Most workbooks are written by a spreadsheet program or a library in one regular form, and for
a part in that form the checks run at the speed of a byte search (a 100k-row sheet in a
fraction of the expat pass in ``xlsx_stream``). Each test here only *proves* a part within the
limits; whatever it cannot prove goes to the expat pass, which decides exactly and names what
is wrong.
"""

from __future__ import annotations

import re

import numpy as np

from .limits import (
    MAX_CELL_CHARS,
    MAX_COLUMNS,
    MAX_MERGED_RANGES,
    MAX_ROWS,
    MAX_SHEET_CELLS,
    MAX_TEXT_CHARS,
)
from .xlsx_stream import check_range

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


def plain_shared_lengths(data: bytes) -> int | None:
    """The most bytes one shared string spans (a bound on its characters), or None when the
    part is not plain."""
    start = data.find(b"?>") + 2 if data.startswith(b"<?xml") else 0
    if start == 1 or b"<!" in data or data.find(b"<?", start) >= 0:
        return None
    # Characters never outnumber bytes (an entity is longer than what it stands for).
    longest = max(map(len, data.split(b"</si>")), default=0)
    return longest if longest <= MAX_CELL_CHARS else None


def plain_sheet(where: str, data: bytes, longest_shared: int) -> set[tuple[int, int]] | None:
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
        check_range(where, what, found.group(1).decode("ascii"))
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
