"""Reading a CSV file's cells: exactly the records Python's csv module (strict) reads, one row
per record, whatever the file's accidents (blank lines, lone carriage returns, BOMs, quoted
line breaks), and a refusal where the csv module refuses."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchpay.errors import InputError
from batchpay.sheets.read import _any_filled
from batchpay.sheets.read_csv import ARROW_TEXT, read_csv_cells

# Pieces of cells: leading zeros, white space of several kinds, the three delimiters, quotes,
# line breaks, non-ASCII text.
TOKENS = ["a", "0", "0012", "1e5", " ", "\u00a0", "\u3000", "é", "漢", ",", ";", "\t", '"',
          "\n", "\r\n", ""]  # fmt: skip
# A lone carriage return (a line break), a Unicode line separator (a line break for
# str.splitlines, not for the csv module).
ODD_TOKENS = ["\r", "\u2028"]


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """A CSV file as a spreadsheet program writes it, with the accidents of real files: blank
    and white-space-only lines (above the header too), a BOM, CRLF, no newline at the end,
    lone carriage returns and line separators in cells, header cells that need quoting."""
    cell = st.lists(st.sampled_from(TOKENS + ODD_TOKENS), max_size=4)
    width = draw(st.integers(1, 4))
    row = st.lists(cell.map("".join), min_size=width, max_size=width)
    rows = draw(st.lists(row, min_size=1, max_size=7))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    terminator = draw(st.sampled_from(["\n", "\r\n"]))
    records = []
    for values in rows:
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=delimiter, lineterminator=terminator).writerow(values)
        records.append(buffer.getvalue())
    blank = st.sampled_from(["", " ", "\t"]).map(lambda line: line + terminator)
    extra = draw(st.lists(st.tuples(st.integers(0, len(records)), blank), max_size=3))
    for position, line in sorted(extra, reverse=True):
        records.insert(position, line)
    text = "".join(records)
    if draw(st.booleans()) and text.endswith(terminator):
        text = text[: -len(terminator)]
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text.encode("utf-8")


def csv_module_cells(raw: bytes) -> pd.DataFrame | None:
    """What the csv module (strict) reads from the file, one row per record, short records
    padded with empty cells; None when it refuses the file. The delimiter is the first line
    with anything on it's most frequent of , ; and tab (comma when it has none)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    header = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    delimiter = max(counts, key=lambda d: counts[d]) if max(counts.values()) else ","
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
    except csv.Error:
        return None
    width = max((len(r) for r in records), default=0)
    padded = [r + [""] * (width - len(r)) for r in records]
    return pd.DataFrame(padded, columns=range(width), dtype=object).astype(ARROW_TEXT)


def read_bytes(raw: bytes) -> pd.DataFrame | None:
    """read_csv_cells on a file holding ``raw``; None when it refuses the file as unreadable."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pay.csv"
        path.write_bytes(raw)
        try:
            return read_csv_cells(path)[0]
        except InputError as exc:
            assert "not a readable CSV file" in str(exc)
            return None


def assert_read_as_the_csv_module_reads(raw: bytes) -> None:
    expected, cells = csv_module_cells(raw), read_bytes(raw)
    if expected is None or cells is None:
        assert cells is expected is None
    else:
        pd.testing.assert_frame_equal(cells, expected, check_exact=True, check_index_type=False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files())
def test_every_file_is_read_as_the_csv_module_reads_it(raw):
    assert_read_as_the_csv_module_reads(raw)


@st.composite
def unquoted_files(draw: st.DrawFn) -> bytes:
    """A file without a quote character (the kind pyarrow reads): ragged and blank lines,
    every kind of line break, a BOM, non-ASCII text."""
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    plain = [t for t in TOKENS if t not in '",;\t\r\n' and t not in ("\r\n",)]
    cell = st.lists(st.sampled_from([*plain, "\u2028", "\x0c"]), max_size=3).map("".join)
    width = draw(st.integers(1, 4))
    line = st.one_of(
        st.lists(cell, min_size=width, max_size=width),
        st.lists(cell, min_size=0, max_size=width + 1),  # ragged, or blank
    ).map(delimiter.join)
    lines = draw(st.lists(line, min_size=1, max_size=8))
    ends = draw(st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=len(lines),
                         max_size=len(lines)))  # fmt: skip
    text = "".join(a + b for a, b in zip(lines, ends, strict=True))
    if draw(st.booleans()):
        text = text.rstrip("\r\n")
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text.encode("utf-8")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(unquoted_files())
def test_a_file_without_quotes_is_read_as_the_csv_module_reads_it(raw):
    assert_read_as_the_csv_module_reads(raw)


# Byte soup: anything a damaged or hand-edited file may hold around the structure characters.
PIECES = [b"a", b"0", b" ", b",", b";", b"\t", b'"', b"\n", b"\r", b"\r\n", b"\xef\xbb\xbf",
          b"\xc3\xa9", b"\xe9", b"\xc2\xa0"]  # fmt: skip
soup = st.lists(st.sampled_from(PIECES), max_size=40).map(b"".join)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(soup)
def test_byte_soup_is_read_as_the_csv_module_reads_it(raw):
    assert_read_as_the_csv_module_reads(raw)


TRICKY = [
    b"h1,h2\na,b\n",
    b"h1,h2\na,b",
    b"h1,h2\r\na,b\r\n",
    b"h1,h2\r\na,b",
    b"\xef\xbb\xbfh1,h2\r\na,b\r\n",
    b'h1,h2\r\n"x\r\ny",b\r\n"",""\r\n',
    b'h1,h2\n"x\n\ny",b\n',
    b"h1,h2\n\na,b\n",
    b"h1,h2\na,b\n\n",
    b"h1,h2\na,b\n\n\n",
    b"\nh1,h2\na,b\n",
    b"h1,h2\n  ,\t\n,\na,b\n",
    b"h1;h2\n0012;\xc2\xa0x\xc2\xa0\n",
    b"h1\th2\n 0012 \t880123456789012345678\n",
    b'h1,h2\na,"b,c"\n',
    b'h1,h2\na,b"c"\n',
    b"h1\n\na\n",
    b"h1\n\n",
]


@pytest.mark.parametrize("raw", TRICKY)
def test_tricky_files(raw):
    assert_read_as_the_csv_module_reads(raw)


# What pyarrow's CSV reader reads differently from the csv module: text after a closing quote,
# read into the value; a lone carriage return and a blank line that cancelled out in a line
# count, shifting later row numbers; an unclosed quote; a quote inside an unquoted value.
LENIENT = [
    b'h1,h2\na,"00123"45\n',
    b'h1,h2\na,"00,123"45\n',
    b'h1,h2\n"x",b\n"a,"45,c\n',
    b"h1,h2\na,b\rc,d\n\ne,f\n",
    b'h1,h2\na,"b\nc,d\n',
    b'h1,h2\na,b"c\n',
    b'h1,h2\na,"b"""c\n',
    b"\xef\xbb\xbf\xef\xbb\xbfh1,h2\na,b\n",
]


@pytest.mark.parametrize("raw", LENIENT)
def test_files_pyarrow_would_read_leniently_read_as_the_careful_path_reads_them(raw, tmp_path):
    # The quoting cases are refused, as the csv module refuses them; the carriage return and
    # blank line case is read to the csv module's cells, blank line kept.
    path = tmp_path / "p.csv"
    path.write_bytes(raw)
    try:
        cells, _ = read_csv_cells(path)
    except InputError as exc:
        assert "not a readable CSV file" in str(exc)
    else:
        pd.testing.assert_frame_equal(cells, csv_module_cells(raw), check_exact=True)


def test_text_after_a_closing_quote_is_refused_not_joined_to_the_value(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(b'Account No,Amount\n"00123"45,100\n')
    with pytest.raises(InputError, match="line 2: not a readable CSV file"):
        read_csv_cells(path)


def big_file(rows: int, *, quoted: bool, crlf: bool) -> bytes:
    """Several of pyarrow's 1 MiB blocks, so that the file is parsed in parallel; with quoted
    newlines spread all over it when ``quoted``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(["Employee", "Account No", "Remark", "Amount"])
    for i in range(rows):
        remark = f"line one\nline {i}, two" if quoted and i % 7 == 3 else f"salary {i % 12}"
        writer.writerow([f"E{i:07d}", f"00{i * 7919:016d}", remark, str(i % 5000 * 50)])
    return buffer.getvalue().encode("utf-8")


# Quoted line breaks with CRLF (the csv module reads it), none with LF (pyarrow reads it).
@pytest.mark.parametrize(("quoted", "crlf"), [(False, False), (True, True)])
def test_a_big_file_is_read_as_the_csv_module_reads_it(quoted, crlf):
    raw = big_file(70_000, quoted=quoted, crlf=crlf)  # more records than one piece holds
    assert (b'"' in raw) == quoted
    cells = read_bytes(raw)
    assert cells is not None and len(cells) == 70_001
    pd.testing.assert_frame_equal(cells, csv_module_cells(raw), check_exact=True)


def test_a_file_of_many_blocks_with_a_blank_line_keeps_every_row_number(tmp_path):
    raw = big_file(60_000, quoted=False, crlf=True)
    middle = raw.index(b"\r\n", len(raw) // 2) + 2
    raw = raw[:middle] + b"\r\n" + raw[middle:]
    path = tmp_path / "pay.csv"
    path.write_bytes(raw)
    cells, notes = read_csv_cells(path)
    assert notes == []
    pd.testing.assert_frame_equal(cells, csv_module_cells(raw), check_exact=True)


# -- which rows hold anything ----------------------------------------------------------------

blankish = st.sampled_from(["", " ", "\t", "\u00a0", "\u3000", "\n", "a", " a ", "0"])


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 4).flatmap(
        lambda width: st.lists(st.lists(blankish, min_size=width, max_size=width), max_size=8)
    ),
    st.data(),
)
def test_rows_holding_anything_are_found_as_cell_by_cell(rows, data):
    width = len(rows[0]) if rows else 0
    cells = pd.DataFrame(rows, columns=range(width), dtype=object).astype(ARROW_TEXT)
    if not rows:
        cells = pd.DataFrame({c: pd.Series([], dtype=ARROW_TEXT) for c in range(width)})
    low = data.draw(st.integers(0, width))
    high = data.draw(st.integers(low, width))
    filled = [
        (cells[c].ne("") & ~cells[c].str.isspace()).to_numpy(dtype=bool)
        for c in cells.columns[low:high]
    ]
    expected = np.logical_or.reduce(filled) if filled else np.zeros(len(cells), bool)
    assert _any_filled(cells, range(low, high)).tolist() == expected.tolist()


# -- the file is read into memory, not mapped ----------------------------------------------


def test_cells_do_not_change_when_the_file_is_rewritten_after_reading(tmp_path):
    path = tmp_path / "pay.csv"
    raw = big_file(20_000, quoted=False, crlf=False)
    path.write_bytes(raw)
    cells, _ = read_csv_cells(path)
    expected = csv_module_cells(raw)
    with path.open("r+b") as stream:  # in place, same size: a mapping would see it
        stream.write(raw.replace(b"salary", b"SALARY").replace(b"E00", b"X99"))
    pd.testing.assert_frame_equal(cells, expected, check_exact=True)
    path.write_bytes(b"")  # truncated: reading a mapping past the end would crash
    pd.testing.assert_frame_equal(cells, expected, check_exact=True)


def test_a_blank_first_line_is_a_row_of_its_own(tmp_path):
    path = tmp_path / "pay.csv"
    raw = b"\r\nh1,h2\r\n" + "é,\u00a0x\r\n".encode()
    path.write_bytes(raw)
    cells, notes = read_csv_cells(path)
    assert notes == []
    assert cells.to_numpy().tolist() == [["", ""], ["h1", "h2"], ["é", "\u00a0x"]]


@pytest.mark.parametrize("raw", [b"", b"\x00", b"h1,h2\na,b\x00\n"])
def test_empty_and_binary_files_read_as_before(tmp_path, raw):
    path = tmp_path / "pay.csv"
    path.write_bytes(raw)
    if b"\x00" in raw:
        with pytest.raises(InputError, match="holds binary data"):
            read_csv_cells(path)
    else:
        cells, notes = read_csv_cells(path)
        assert cells.shape == (0, 0) and notes == []


def test_a_file_with_carriage_returns_alone_as_line_ends_is_read(tmp_path):
    """Excel for Mac's "CSV (Macintosh)"."""
    path = tmp_path / "pay.csv"
    path.write_bytes(b"h1,h2\r0012,\xc2\xa0x\r\r3,4\r")
    cells, notes = read_csv_cells(path)
    assert notes == []
    assert cells.to_numpy().tolist() == [["h1", "h2"], ["0012", "\u00a0x"], ["", ""], ["3", "4"]]
