"""Read a CSV file's cells as text with Python's csv module (``strict=True``): every record is
one row of the frame, so row numbers are exact with blank lines, lone carriage returns and
byte-order marks, and a quote that does not close a value right before a delimiter or line
break (``"00123"45``) is refused, never joined to the value.

A UTF-8 file without a single quote character has no quoting to read: every line is one
record, cut at every delimiter, which pyarrow's reader (told there are no quotes) reads as
the csv module does, several times faster. It refuses a ragged line, which then goes to the
csv module, which pads it."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa

from ..errors import InputError
from .limits import (
    FIX_SHEET,
    MAX_CELL_CHARS,
    MAX_COLUMNS,
    MAX_ROWS,
    check_columns,
    refuse,
)
from .read_workbook import OLE2_MAGIC, ZIP_MAGIC

ARROW_TEXT = pd.StringDtype("pyarrow")  # vectorized string operations, compact storage


CP1252_NOTE = (
    "{path}: not UTF-8; read as Windows-1252 (cp1252). Check accented names in the result, "
    'or save the file as "CSV UTF-8" to be sure'
)


UTF16_DAMAGED = (
    "{path}: not readable as UTF-16 text ({what} at byte {at}); the file is cut short or "
    'damaged: export it again, as "CSV UTF-8" if you can'
)
NOT_READABLE = (
    "{path}: line {line}: not a readable CSV file ({reason}); check the quotes on that line: a "
    "quoted value ends with a quote right before the delimiter"
)
BINARY = "{path}: this is not a text CSV file (it holds binary data)"
LONG_FIELD = "line {line}: a value holds more characters than"
WIDE_RECORD = "line {line} has too many values:"
TOO_MANY_LINES = "the file has too many lines (rows):"
HEADER_SCAN = 8 << 20  # characters of the file's start looked at for the header's separators
# Records turned into Arrow columns at a time: the csv module gives a Python string per cell,
# and holding a million rows of them at once would take several times the file's size.
RECORDS_PER_PIECE = 65_536


def _decode(raw: bytes, path: Path) -> tuple[str, str, list[str]]:
    """The file's text, its encoding, and a note when the encoding had to be guessed."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16"), "utf-16", []  # Excel's "Unicode text"
        except UnicodeDecodeError as exc:
            # An odd number of bytes, or half of a surrogate pair.
            what = "an incomplete character" if exc.end >= len(raw) else "a lone surrogate"
            raise InputError(UTF16_DAMAGED.format(path=path, what=what, at=exc.start)) from None
    try:
        return raw.decode("utf-8-sig"), "utf-8-sig", []
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), "cp1252", [CP1252_NOTE.format(path=path)]
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: neither UTF-8 nor Windows-1252 text (byte {exc.start}); save it as "
            '"CSV UTF-8" and try again'
        ) from None


def read_csv_cells(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Every cell as text (row i of the frame is record i + 1, the header being record 1),
    and notes about the file (a guessed encoding)."""
    raw = path.read_bytes()  # a copy: the file may change while it is parsed
    if raw.startswith((ZIP_MAGIC, OLE2_MAGIC)):
        raise InputError(f"{path}: is a workbook with a {path.suffix} name; rename it to .xlsx")
    if b"\x00" in raw and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(BINARY.format(path=path))
    text, encoding, notes = _decode(raw, path)
    if "\x00" in text:
        raise InputError(BINARY.format(path=path))
    # Before the parser: a header of a million commas makes a million columns, and a file of
    # line breaks as many rows. Every record takes at least one line; a carriage return alone
    # ends lines in old Mac files, and CRLF counts once.
    check_columns(str(path), _header_width(text))
    lines = max(text.count("\n"), text.count("\r")) + (not text.endswith(("\n", "\r")))
    if lines > MAX_ROWS:
        raise refuse(str(path), TOO_MANY_LINES, lines, MAX_ROWS, FIX_SHEET)
    delimiter = _delimiter(text)
    del text
    if encoding == "utf-8-sig" and b'"' not in raw:
        cells = _read_unquoted(raw, delimiter)
        if cells is not None:
            return cells, notes
    # Parsed from the bytes, decoded again as a stream (the whole text decoded already, so
    # this cannot fail): a StringIO of the text would hold four bytes per character.
    stream = io.TextIOWrapper(io.BytesIO(raw), encoding=encoding, newline="")
    reader = csv.reader(stream, delimiter=delimiter, strict=True)

    def records() -> Iterator[list[str]]:
        for record in reader:
            if len(record) > MAX_COLUMNS:
                what = WIDE_RECORD.format(line=reader.line_num)
                raise refuse(str(path), what, len(record), MAX_COLUMNS, FIX_SHEET)
            yield record

    pieces: list[tuple[int, list[pa.Array]]] = []  # (records, columns)
    each = records()
    try:
        while piece := list(itertools.islice(each, RECORDS_PER_PIECE)):
            pieces.append((len(piece), _columns(piece)))
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            what = LONG_FIELD.format(line=reader.line_num)
            raise refuse(str(path), what, csv.field_size_limit(), MAX_CELL_CHARS) from None
        line = reader.line_num
        raise InputError(NOT_READABLE.format(path=path, line=line, reason=exc)) from None
    return _frame(pieces), notes


def _read_unquoted(raw: bytes, delimiter: str) -> pd.DataFrame | None:
    """A file without quote characters read by pyarrow, every column as text; None when a
    line has more or fewer values than the first (a blank line is a row of empty values)."""
    import pyarrow.csv as pacsv

    start = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    if raw.startswith(b"\xef\xbb\xbf", start):
        return None  # pyarrow would drop a second byte-order mark too; the csv module keeps it
    first_line = raw[start:].split(b"\n", 1)[0].split(b"\r", 1)[0]
    if not first_line:
        return None  # a record of no values to the csv module, of one empty value to pyarrow
    width = first_line.count(delimiter.encode()) + 1
    try:
        table = pacsv.read_csv(
            pa.py_buffer(memoryview(raw)[start:]),
            read_options=pacsv.ReadOptions(autogenerate_column_names=True),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, quote_char=False, ignore_empty_lines=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={f"f{i}": pa.large_string() for i in range(width)},
                strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None
    # One chunk a column: pyarrow.compute runs each rule once per chunk (one regex compile).
    table = table.combine_chunks()
    frame: pd.DataFrame = table.to_pandas(types_mapper={pa.large_string(): ARROW_TEXT}.get)
    frame.columns = pd.RangeIndex(frame.shape[1])
    return frame


def _columns(records: list[list[str]]) -> list[pa.Array]:
    """Records as Arrow text columns, a short record padded with empty cells."""
    width = max(len(record) for record in records)
    padded = [r if len(r) == width else r + [""] * (width - len(r)) for r in records]
    return [pa.array([r[i] for r in padded], pa.large_string()) for i in range(width)]


def _frame(pieces: list[tuple[int, list[pa.Array]]]) -> pd.DataFrame:
    """The pieces' columns end to end; a column a piece lacks (its records were all shorter)
    is empty text there."""
    width = max((len(columns) for _, columns in pieces), default=0)
    frame: dict[int, pd.Series] = {}
    for position in range(width):
        chunks = [
            piece[position] if position < len(piece)
            else pa.repeat(pa.scalar("", pa.large_string()), count)
            for count, piece in pieces
        ]  # fmt: skip
        # One chunk a column: pyarrow.compute runs each rule once per chunk.
        array = pa.chunked_array([pa.chunked_array(chunks, pa.large_string()).combine_chunks()])
        frame[position] = pd.Series(pd.arrays.ArrowStringArray(array), copy=False)
    rows = pd.RangeIndex(sum(count for count, _ in pieces))
    return pd.DataFrame(frame, index=rows, columns=pd.RangeIndex(width))


def _header_width(text: str) -> int:
    """Values of the header line, counting its separators (a quoted header name holding one
    counts it too: no payroll header is near the limit)."""
    header = next((line for line in text[:HEADER_SCAN].splitlines() if line.strip()), "")
    return 1 + max(header.count(d) for d in (",", ";", "\t"))


def _delimiter(text: str) -> str:
    """The header line's most frequent of , ; and tab. Sniffing the header alone is robust to
    quoted data fields that hold delimiters and newlines, which confuse csv.Sniffer."""
    header = next((line for line in text[:65536].splitlines() if line.strip()), "")
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","
