"""The fast CSV path (pyarrow) against the careful one (Python's csv module): on every file the
fast path accepts, both must give the same cells, and the fast path's cheaper checks must
decide as the plain checks they replaced did."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchpay import csvfile
from batchpay.csvfile import ARROW_TEXT, _read_csv_arrow, _read_csv_python, read_csv_cells
from batchpay.errors import InputError
from batchpay.sheet import _any_filled

PATH = Path("pay.csv")  # only named in messages


def reference_arrow(raw: bytes) -> pd.DataFrame | None:
    """The fast path as it was before it was made faster (git e58d972): every newline of the
    file counted with numpy, every newline inside a value with pyarrow's count_substring,
    newlines_in_values always on, string columns converted by pandas. One fix since: a first
    line that the csv module refuses (a lone carriage return) sends the file down the careful
    path instead of raising csv.Error."""
    start = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    newline = raw.find(b"\n")
    try:
        first_line = raw[start : newline if newline >= 0 else len(raw)].decode("utf-8")
    except UnicodeDecodeError:
        return None
    delimiter = csvfile._delimiter(first_line)
    try:
        fields = len(next(csv.reader([first_line], delimiter=delimiter), []))
    except csv.Error:
        return None
    try:
        table = pacsv.read_csv(
            pa.py_buffer(memoryview(raw)[start:]),
            read_options=pacsv.ReadOptions(autogenerate_column_names=True),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(fields)},
                strings_can_be_null=False, quoted_strings_can_be_null=False,
            ),
        )  # fmt: skip
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if any(not pa.types.is_string(column.type) for column in table.columns):
        return None
    lines = int(np.count_nonzero(np.frombuffer(raw, dtype=np.uint8) == 10))
    lines += 0 if raw.endswith(b"\n") else 1
    inside = sum(
        int(pc.sum(pc.count_substring(column, "\n")).as_py() or 0) for column in table.columns
    )
    if lines != table.num_rows + inside:
        return None
    frame: pd.DataFrame = table.to_pandas(types_mapper={pa.string(): ARROW_TEXT}.get)
    frame.columns = pd.RangeIndex(frame.shape[1])
    return frame


def same(fast: pd.DataFrame | str | None, other: pd.DataFrame | str | None) -> None:
    if isinstance(fast, pd.DataFrame) and isinstance(other, pd.DataFrame):
        pd.testing.assert_frame_equal(fast, other, check_exact=True)
    else:
        assert fast is other or fast == other


def fast_or_error(raw: bytes) -> pd.DataFrame | str | None:
    try:
        return _read_csv_arrow(raw)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def reference_or_error(raw: bytes) -> pd.DataFrame | str | None:
    try:
        return reference_arrow(raw)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


# Pieces of cells: leading zeros, white space of several kinds, the three delimiters, quotes,
# line breaks, non-ASCII text.
TOKENS = ["a", "0", "0012", "1e5", " ", "\u00a0", "\u3000", "é", "漢", ",", ";", "\t", '"',
          "\n", "\r\n", ""]  # fmt: skip
# What the fast path has always read differently from the careful one: a lone carriage return
# (a line break for both readers, but not for the fast path's line count and first line), a
# Unicode line separator (a line break for the careful path's delimiter guess only).
ODD_TOKENS = ["\r", "\u2028"]


@st.composite
def csv_files(draw: st.DrawFn, *, odd: bool = True) -> bytes:
    """A CSV file as a spreadsheet program writes it, with the accidents of real files: blank
    and white-space-only lines, a BOM, CRLF, no newline at the end. ``odd=False`` leaves out
    what the fast path has always read differently: lone carriage returns and line separators
    in cells, a white-space-only line above the header, header cells that need quoting (the
    fast path finds the delimiter on the file's first line, the careful one on the first line
    that holds anything, split at every kind of line break; after a wrong guess, pyarrow reads
    text after a closing quote into the value where the csv module refuses the file)."""
    cell = st.lists(st.sampled_from(TOKENS + ODD_TOKENS if odd else TOKENS), max_size=4)
    width = draw(st.integers(1, 4))
    row = st.lists(cell.map("".join), min_size=width, max_size=width)
    rows = draw(st.lists(row, min_size=1, max_size=7))
    if not odd:  # a header line with names on it, and nothing that needs quoting
        rows[0] = ["h" + "".join(c for c in value if c not in '\r\n,;\t"') for value in rows[0]]
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
        if odd or position > 0:
            records.insert(position, line)
    text = "".join(records)
    if draw(st.booleans()) and text.endswith(terminator):
        text = text[: -len(terminator)]
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text.encode("utf-8")


def careful(raw: bytes) -> pd.DataFrame | None:
    try:
        return _read_csv_python(raw, PATH)[0]
    except Exception:
        return None


def assert_fast_is_careful(raw: bytes) -> None:
    """When the fast path accepts a file, the careful path reads it too, to the same cells."""
    fast = _read_csv_arrow(raw)
    if fast is not None:
        expected = careful(raw)
        assert expected is not None, "the fast path read a file the careful path refuses"
        pd.testing.assert_frame_equal(fast, expected, check_exact=True)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files())
def test_fast_path_gives_the_careful_paths_cells_on_every_file_it_accepts(raw):
    assert_fast_is_careful(raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files(odd=False))
def test_fast_path_takes_every_well_written_file_it_took_before(raw):
    before = reference_or_error(raw)
    if isinstance(before, pd.DataFrame):
        same(fast_or_error(raw), before)


# Byte soup: anything a damaged or hand-edited file may hold around the structure characters.
PIECES = [b"a", b"0", b" ", b",", b";", b"\t", b'"', b"\n", b"\r", b"\r\n", b"\xef\xbb\xbf",
          b"\xc3\xa9", b"\xe9", b"\xc2\xa0"]  # fmt: skip
soup = st.lists(st.sampled_from(PIECES), max_size=40).map(b"".join)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(soup)
def test_fast_path_gives_the_careful_paths_cells_on_byte_soup(raw):
    assert_fast_is_careful(raw)


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
    assert_fast_is_careful(raw)


# What the fast path (pyarrow) read differently from the careful path (the csv module) before
# its checks caught them: text after a closing quote, read into the value; a lone carriage
# return and a blank line that cancelled out in the line count, shifting later row numbers;
# an unclosed quote; a quote inside an unquoted value.
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
    # The quoting cases go the careful way (which refuses them); the carriage return and
    # blank line case is read by pyarrow with blank lines kept, to the same cells.
    assert_fast_is_careful(raw)
    path = tmp_path / "p.csv"
    path.write_bytes(raw)
    try:
        cells, _ = read_csv_cells(path)
    except InputError as exc:
        assert "not a readable CSV file" in str(exc)
    else:
        pd.testing.assert_frame_equal(cells, careful(raw), check_exact=True)


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


@pytest.mark.parametrize("quoted", [False, True])
@pytest.mark.parametrize("crlf", [False, True])
def test_a_file_of_many_blocks_reads_the_same_both_ways(quoted, crlf):
    raw = big_file(60_000, quoted=quoted, crlf=crlf)
    assert len(raw) > 2 * 2**20
    assert (b'"' in raw) == quoted
    fast = _read_csv_arrow(raw)
    assert fast is not None
    pd.testing.assert_frame_equal(fast, careful(raw), check_exact=True)
    same(fast, reference_arrow(raw))


def test_a_file_of_many_blocks_with_a_blank_line_keeps_every_row_number(tmp_path):
    raw = big_file(60_000, quoted=False, crlf=True)
    middle = raw.index(b"\r\n", len(raw) // 2) + 2
    raw = raw[:middle] + b"\r\n" + raw[middle:]
    fast = _read_csv_arrow(raw)  # blank lines are kept as rows of empty cells
    assert fast is not None
    pd.testing.assert_frame_equal(fast, careful(raw), check_exact=True)
    path = tmp_path / "pay.csv"
    path.write_bytes(raw)
    cells, notes = read_csv_cells(path)
    assert notes == []
    pd.testing.assert_frame_equal(cells, careful(raw), check_exact=True)


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


# -- the file is mapped into memory, not copied ----------------------------------------------


def test_cells_do_not_change_when_the_file_is_rewritten_after_reading(tmp_path):
    path = tmp_path / "pay.csv"
    raw = big_file(20_000, quoted=False, crlf=False)
    path.write_bytes(raw)
    cells, _ = read_csv_cells(path)
    expected = careful(raw)
    with path.open("r+b") as stream:  # in place, same size: a mapping would see it
        stream.write(raw.replace(b"salary", b"SALARY").replace(b"E00", b"X99"))
    pd.testing.assert_frame_equal(cells, expected, check_exact=True)
    path.write_bytes(b"")  # truncated: reading a mapping past the end would crash
    pd.testing.assert_frame_equal(cells, expected, check_exact=True)


def test_the_careful_path_reads_a_mapped_file_too(tmp_path):
    path = tmp_path / "pay.csv"
    raw = b"\r\nh1,h2\r\n" + "é,\u00a0x\r\n".encode()  # a blank first line: the careful way
    path.write_bytes(raw)
    assert _read_csv_arrow(raw) is None
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
    """Excel for Mac's "CSV (Macintosh)": the fast path used to raise csv.Error on it."""
    path = tmp_path / "pay.csv"
    path.write_bytes(b"h1,h2\r0012,\xc2\xa0x\r\r3,4\r")
    cells, notes = read_csv_cells(path)
    assert notes == []
    assert cells.to_numpy().tolist() == [["h1", "h2"], ["0012", "\u00a0x"], ["", ""], ["3", "4"]]
