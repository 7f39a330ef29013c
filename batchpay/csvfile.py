"""Read a CSV file's cells as text: pyarrow's multithreaded reader when the row numbers
provably stay exact, Python's csv module otherwise (blank lines, ragged rows, UTF-16,
Windows-1252)."""

from __future__ import annotations

import csv
import io
import mmap
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import InputError
from .limits import (
    FIX_SHEET,
    MAX_CELL_CHARS,
    MAX_COLUMNS,
    MAX_ROWS,
    check_columns,
    refuse,
)
from .workbook import OLE2_MAGIC, ZIP_MAGIC

ARROW_TEXT = pd.StringDtype("pyarrow")  # vectorized string operations, compact storage


CP1252_NOTE = (
    "{path}: not UTF-8; read as Windows-1252 (cp1252). Check accented names in the result, "
    'or save the file as "CSV UTF-8" to be sure'
)


UTF16_DAMAGED = (
    "{path}: not readable as UTF-16 text ({what} at byte {at}); the file is cut short or "
    'damaged: export it again, as "CSV UTF-8" if you can'
)
LONG_FIELD = "line {line}: a value holds more characters than"
WIDE_RECORD = "line {line} has too many values:"
TOO_MANY_LINES = "the file has too many lines (rows):"
HEADER_SCAN = 8 << 20  # bytes of the first line looked at for its separators


def _decode(raw: bytes, path: Path) -> tuple[str, list[str]]:
    """The file's text, and a note when the encoding had to be guessed."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16"), []  # Excel's "Unicode text"
        except UnicodeDecodeError as exc:
            # An odd number of bytes, or half of a surrogate pair.
            what = "an incomplete character" if exc.end >= len(raw) else "a lone surrogate"
            raise InputError(UTF16_DAMAGED.format(path=path, what=what, at=exc.start)) from None
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), [CP1252_NOTE.format(path=path)]
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: neither UTF-8 nor Windows-1252 text (byte {exc.start}); save it as "
            '"CSV UTF-8" and try again'
        ) from None


def read_csv_cells(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Every cell as text (row i of the frame is record i + 1, the header being record 1),
    and notes about the file (a guessed encoding)."""
    with _contents(path) as raw:
        head = raw[:8]
        if head.startswith((ZIP_MAGIC, OLE2_MAGIC)):
            raise InputError(f"{path}: is a workbook with a {path.suffix} name; rename it to .xlsx")
        utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
        if raw.find(b"\x00") >= 0 and not utf16:
            raise InputError(f"{path}: this is not a text CSV file (it holds binary data)")
        # Before any parser: a header of a million commas makes a million columns, and a file
        # of line breaks as many rows, whichever reader reads it.
        _check_header(raw, path, utf16)
        lines = 0 if utf16 else _line_count(raw)  # UTF-16: counted once decoded
        if lines > MAX_ROWS:
            raise refuse(str(path), TOO_MANY_LINES, lines, MAX_ROWS, FIX_SHEET)
        if not utf16:
            cells = _read_csv_arrow(raw)
            if cells is not None:
                return cells, []
        data = raw[:]  # the careful path works on a copy of its own
    return _read_csv_python(data, path)


@contextmanager
def _contents(path: Path) -> Iterator[bytes | mmap.mmap]:
    """The file's bytes, mapped into memory rather than copied: the fast path only scans them
    and hands them to pyarrow, which copies the values it parses out."""
    with path.open("rb") as stream:
        try:
            mapped = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # an empty file, or one that cannot be mapped
            yield stream.read()
            return
    try:
        yield mapped
    finally:
        # A view of it may outlive the call in an exception's traceback: then the mapping
        # goes when that view does.
        with suppress(BufferError):
            mapped.close()


def _read_csv_python(raw: bytes, path: Path) -> tuple[pd.DataFrame, list[str]]:
    """The careful path: Python's csv module on the decoded text, one record per row."""
    text, notes = _decode(raw, path)
    if "\x00" in text:
        raise InputError(f"{path}: this is not a text CSV file (it holds binary data)")
    lines = max(text.count("\n"), text.count("\r")) + (not text.endswith(("\n", "\r")))
    if lines > MAX_ROWS:
        raise refuse(str(path), TOO_MANY_LINES, lines, MAX_ROWS, FIX_SHEET)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    records = []
    try:
        for record in reader:
            if len(record) > MAX_COLUMNS:
                what = WIDE_RECORD.format(line=reader.line_num)
                raise refuse(str(path), what, len(record), MAX_COLUMNS, FIX_SHEET)
            records.append(record)
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            what = LONG_FIELD.format(line=reader.line_num)
            raise refuse(str(path), what, csv.field_size_limit(), MAX_CELL_CHARS) from None
        raise InputError(
            f"{path}: line {reader.line_num}: not a readable CSV file ({exc}); check the quotes "
            "on that line: a quoted value ends with a quote right before the delimiter"
        ) from None
    width = max((len(r) for r in records), default=0)
    padded = [r + [""] * (width - len(r)) for r in records]
    cells = pd.DataFrame(padded, columns=range(width), dtype=object).astype(ARROW_TEXT)
    return cells, notes


def _read_csv_arrow(raw: bytes | mmap.mmap) -> pd.DataFrame | None:
    """The fast path: pyarrow's multithreaded reader, every column as text, for UTF-8 files.

    None sends the file down the careful path: not UTF-8, ragged rows (a blank line among
    rows of several values is one: pyarrow is told to keep blank lines, so that no row number
    shifts), or quoting that pyarrow would read more leniently than the csv module.
    """
    import pyarrow.csv as pacsv

    start = 3 if raw[:3] == b"\xef\xbb\xbf" else 0
    if raw[start : start + 3] == b"\xef\xbb\xbf":
        return None  # pyarrow would drop a second byte-order mark too; the csv module keeps it
    newline = raw.find(b"\n")
    try:
        first_line = raw[start : newline if newline >= 0 else len(raw)].decode("utf-8")
    except UnicodeDecodeError:
        return None
    # The careful path guesses the delimiter on the first line that holds anything, split at
    # every kind of line break: only a plain header line is read here.
    header = first_line.removesuffix("\r")
    if not header.strip() or len(header.splitlines()) != 1 or header.count('"') % 2:
        return None
    delimiter = _delimiter(first_line)
    try:
        fields = len(next(csv.reader([first_line], delimiter=delimiter), []))
    except csv.Error:  # a carriage return alone ends lines: the careful path reads those
        return None
    body = np.frombuffer(raw, dtype=np.uint8)[start:]
    # Only a quoted value can hold a newline: without a quote character in the file, pyarrow
    # may split the file into blocks at every newline, which parses in parallel much faster.
    quoted = raw.find(b'"') >= 0
    if quoted and not _quotes_well_formed(body, ord(delimiter)):
        return None
    try:
        table = pacsv.read_csv(
            pa.py_buffer(memoryview(raw)[start:]),
            read_options=pacsv.ReadOptions(autogenerate_column_names=True),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=quoted, ignore_empty_lines=False
            ),
            convert_options=pacsv.ConvertOptions(
                # large_string: what pandas' Arrow strings hold, so no conversion follows
                column_types={f"f{i}": pa.large_string() for i in range(fields)},
                strings_can_be_null=False, quoted_strings_can_be_null=False,
            ),
        )  # fmt: skip
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    text = (pa.string(), pa.large_string())
    if any(column.type not in text for column in table.columns):
        return None
    frame: pd.DataFrame = table.to_pandas(types_mapper=dict.fromkeys(text, ARROW_TEXT).get)
    frame.columns = pd.RangeIndex(frame.shape[1])
    return frame


def _quotes_well_formed(body: np.ndarray, delimiter: int) -> bool:
    """Whether every quote character stands where the csv module (strict) reads it the same
    way as pyarrow: opening a value at its start, doubled inside it, or closing it right
    before a delimiter or line break. pyarrow is lenient where the csv module refuses the
    file: ``"00123"45`` would read as 0012345, a changed account number.

    Runs of consecutive quotes are what matters. A run of odd length toggles between outside
    and inside a quoted value (it opens one, or closes one, after any doubled quotes); a run of
    even length leaves the state as it was (doubled quotes inside a value, or an empty or
    all-quotes value outside). So the state before each run is the parity of the odd runs
    before it, and every rule is checked on all runs at once.
    """
    quotes = np.flatnonzero(body == 34)
    if not len(quotes):
        return True
    new_run = np.empty(len(quotes), dtype=bool)
    new_run[0] = True
    np.not_equal(quotes[1:], quotes[:-1] + 1, out=new_run[1:])
    starts = quotes[new_run]
    ends = np.append(quotes[np.flatnonzero(new_run)[1:] - 1], quotes[-1])  # last of each run
    odd = (ends - starts) % 2 == 0
    inside_before = (np.cumsum(odd) - odd) % 2 == 1
    outside_after = inside_before == odd

    def breaks(at: np.ndarray) -> np.ndarray:
        """Whether each position is the start or end of the file, a delimiter or line break."""
        edge = (at < 0) | (at >= len(body))
        byte = body[np.clip(at, 0, len(body) - 1)]
        found: np.ndarray = edge | (byte == delimiter) | (byte == 10) | (byte == 13)
        return found

    opens_badly = ~inside_before & ~breaks(starts - 1)  # a quote inside an unquoted value
    closes_badly = outside_after & ~breaks(ends + 1)  # text after a closing quote
    unclosed = bool(odd.sum() % 2)
    return not (unclosed or opens_badly.any() or closes_badly.any())


def _check_header(raw: bytes | mmap.mmap, path: Path, utf16: bool) -> None:
    """Refuse a header line of more than MAX_COLUMNS values, counting its separators (a
    quoted header name holding one counts it too: no payroll header is near the limit)."""
    head = raw[: HEADER_SCAN - HEADER_SCAN % 2]
    text = head.decode("utf-16" if utf16 else "utf-8", errors="replace")
    header = next((line for line in text.splitlines() if line.strip()), "")
    count = 1 + max(header.count(d) for d in (",", ";", "\t"))
    check_columns(str(path), count)


def _line_count(raw: bytes | mmap.mmap) -> int:
    """Lines of the file, counted in slices (every record takes at least one). A carriage
    return alone ends lines in old Mac files; CRLF counts once."""
    breaks = {10: 0, 13: 0}
    for start in range(0, len(raw), HEADER_SCAN):
        piece = raw[start : start + HEADER_SCAN]
        for byte in breaks:
            breaks[byte] += piece.count(byte)
    ends_in_a_break = len(raw) > 0 and raw[len(raw) - 1] in breaks
    return max(breaks.values()) + (not ends_in_a_break)


def _delimiter(text: str) -> str:
    """The header line's most frequent of , ; and tab. Sniffing the header alone is robust to
    quoted data fields that hold delimiters and newlines, which confuse csv.Sniffer."""
    header = next((line for line in text[:65536].splitlines() if line.strip()), "")
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","
