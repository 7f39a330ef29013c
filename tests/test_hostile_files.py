"""Hostile input files (issue 13) are refused at the door: each is made here, small, and given
to ``batchpay validate`` as a real process, which must answer exit 1 with one line naming the
file and the limit, no traceback, no abort, and a bounded peak memory (measured by the kernel
for that process and its children)."""

from __future__ import annotations

import os
import random
import shutil
import string
import struct
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hostile import (
    HEADER,
    ROW,
    inline,
    ods_cell,
    ods_row,
    payroll_ods_rows,
    payroll_rows_xml,
    write_ods,
    write_xlsx,
)

from batchpay.errors import InputError
from batchpay.sheets.limits import MAX_CELL_CHARS, MAX_COLUMNS, MAX_ROWS
from batchpay.sheets.read import read_sheet
from batchpay.sheets.read_workbook import ReadFailure, load_with_calamine
from batchpay.sheets.xlsx_check import scan_xlsx

# Far above what refusing any of these files takes (~150 MB, the interpreter with pandas),
# far below what reading them would (512 GB for a cell at XFD1048576).
MEMORY_BOUND_KB = 1024 * 1024
WALL_LIMIT = 240  # seconds: only so that a hang fails the test instead of stalling the suite


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str
    peak_kb: int  # the process's and its children's peak resident memory


# Runs the command and writes its peak memory (the command's and its children's, in KB) to a
# file. A process of its own: a child started from the test process directly would report
# the test process's own peak too (Linux carries the peak of the address space a process
# was started from into its own at exec).
MEASURE = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code if code >= 0 else 128 - code)
"""


def batchpay_validate(path: Path, tmp_path: Path, *extra: str) -> Finished:
    """``batchpay validate PATH`` as a process of its own, with its peak memory."""
    command = shutil.which("batchpay", path=str(Path(sys.executable).parent))
    assert command, "the batchpay console script is not installed beside this Python"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHPAY_")}
    env["HOME"] = str(tmp_path / "home")
    peak = tmp_path / "peak.txt"
    try:
        done = subprocess.run(
            [sys.executable, "-c", MEASURE, str(peak), command, "validate", str(path), *extra],
            capture_output=True, env=env, timeout=WALL_LIMIT,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"batchpay validate {path.name} still running after {WALL_LIMIT} s")
    return Finished(
        done.returncode,
        done.stdout.decode("utf-8", errors="replace"),
        done.stderr.decode("utf-8", errors="replace"),
        int(peak.read_text()),
    )


def assert_refused(done: Finished, path: Path, *words: str) -> str:
    """Exit 1, one line on stderr naming the file and ``words``, nothing else; the line."""
    assert done.code == 1, (done.code, done.stderr[-2000:])
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    line = lines[0]
    assert line.startswith(f"batchpay: error: {path}"), line
    for word in words:
        assert word in line, (word, line)
    for sign in ("Traceback", "panicked", "RUST_BACKTRACE"):
        assert sign not in done.stderr + done.stdout
    assert done.peak_kb < MEMORY_BOUND_KB, f"peak {done.peak_kb / 1024:.0f} MiB"
    return line


def limit(value: int) -> str:
    return f"limit of {value:,}"


# --- workbooks: references and ranges beyond the limits ---------------------------------


@pytest.mark.parametrize(
    ("name", "rows", "options", "words"),
    [
        pytest.param(
            "cell-at-xfd1048576",
            payroll_rows_xml() + '<row r="1048576">' + inline("XFD1048576", "x") + "</row>",
            {},
            ["XFD1048576", "column 16,384", "row 1,048,576", f"{MAX_COLUMNS} columns"],
            id="cell-at-XFD1048576",
        ),
        pytest.param(
            "huge-reference",
            payroll_rows_xml() + '<row r="3">' + inline("ZZZZZZ99999999999", "x") + "</row>",
            {},
            ["ZZZZZZ99999999999", f"{MAX_COLUMNS} columns", f"{MAX_ROWS:,} rows"],
            id="reference-ZZZZZZ99999999999",
        ),
        pytest.param(
            "merge-over-everything",
            payroll_rows_xml(),
            {"merges": ["A1:XFD1048576"]},
            ["merged range A1:XFD1048576", "column 16,384", f"{MAX_COLUMNS} columns"],
            id="merge-A1:XFD1048576",
        ),
        pytest.param(
            "declared-dimension",
            payroll_rows_xml(),
            {"dimension": "A1:XFD1048576"},
            ["declared dimension A1:XFD1048576", f"{MAX_COLUMNS} columns"],
            id="dimension-A1:XFD1048576",
        ),
        pytest.param(
            "row-beyond",
            payroll_rows_xml() + '<row r="2000001"/>',
            {},
            ["row 2,000,001", f"{MAX_ROWS:,} rows"],
            id="row-2000001",
        ),
        pytest.param(
            "used-range",
            payroll_rows_xml() + '<row r="2000000">' + inline("J2000000", "x") + "</row>",
            {},
            ["used range A1:J2000000", "20,000,000", limit(10_000_000)],
            id="two-cells-spanning-20M",
        ),
        pytest.param(
            "cell-without-r-beyond",
            payroll_rows_xml() + '<row r="3">' + inline(None, "x") * (MAX_COLUMNS + 1) + "</row>",
            {},
            ["GS3", f"column {MAX_COLUMNS + 1}", f"{MAX_COLUMNS} columns"],
            id="cells-without-r-counted-by-order",
        ),
    ],
)
def test_workbook_reference_beyond_the_limits_is_refused_before_reading(
    tmp_path: Path, name: str, rows: str, options: dict[str, object], words: list[str]
) -> None:
    path = write_xlsx(tmp_path / f"{name}.xlsx", rows, **options)  # type: ignore[arg-type]
    assert path.stat().st_size < 4096
    assert_refused(batchpay_validate(path, tmp_path), path, *words)


def test_a_reader_panic_is_caught_as_a_refusal(tmp_path: Path) -> None:
    """calamine itself panics on this reference (``pyo3_runtime.PanicException``, a
    BaseException): read straight, without the check before it, the panic is a ReadFailure."""
    rows = payroll_rows_xml() + '<row r="3">' + inline("ZZZZZZ99999999999", "x") + "</row>"
    path = write_xlsx(tmp_path / "panic.xlsx", rows)
    with pytest.raises(ReadFailure) as caught:
        load_with_calamine(str(path), None)
    assert caught.value.stage == "panic"


# --- workbooks: sizes, shared strings, XML -----------------------------------------------


def random_text(length: int, seed: int = 13) -> str:
    """Text that does not compress much (so that a file of it passes the ratio limit)."""
    return "".join(random.Random(seed).choices(string.ascii_letters + string.digits, k=length))


def test_shared_strings_that_pack_too_tightly_are_refused_before_reading(tmp_path: Path) -> None:
    # 20 MB of one letter packs into ~20 KB: a thousand times, where the limit is 200.
    rows = payroll_rows_xml([HEADER, ["100", "12345", "0917123456", "a@b.co", "Ann", "Lee"]])
    rows = rows.replace(inline("E2", "Ann"), '<c r="E2" t="s"><v>0</v></c>')
    path = write_xlsx(tmp_path / "bomb.xlsx", rows, shared=["A" * 20_000_000])
    assert path.stat().st_size < 100_000
    assert_refused(
        batchpay_validate(path, tmp_path), path, "decompress to", "times the file's size",
        "limit of 200 times",
    )  # fmt: skip


def test_a_part_whose_header_lies_about_its_size_is_refused(tmp_path: Path) -> None:
    """The zip's directory says the shared strings are 1,000 bytes; they decompress to 5 MB.
    Counting while streaming catches what the directory hides."""
    path = write_xlsx(tmp_path / "liar.xlsx", payroll_rows_xml(), shared=[random_text(5_000_000)])
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("xl/sharedStrings.xml")
    struct.pack_into("<I", data, info.header_offset + 22, 1000)  # local header: size
    name = b"xl/sharedStrings.xml"
    central = data.rfind(b"PK\x01\x02", 0, data.rfind(name))  # its central directory entry
    assert data[central + 46 : central + 46 + len(name)] == name
    struct.pack_into("<I", data, central + 24, 1000)  # central directory: size
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("xl/sharedStrings.xml").file_size == 1000
    assert_refused(batchpay_validate(path, tmp_path), path, "damaged")


def test_a_shared_string_beyond_the_cell_limit_is_refused(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "long.xlsx", payroll_rows_xml(), shared=["ok", random_text(MAX_CELL_CHARS + 1)]
    )
    line = assert_refused(batchpay_validate(path, tmp_path), path, "shared string 1")
    assert f"{MAX_CELL_CHARS + 1:,}, more than the {limit(MAX_CELL_CHARS)}" in line


def test_one_shared_string_used_by_many_cells_is_bounded_as_the_cells_expand(
    tmp_path: Path,
) -> None:
    """30,000 characters (within the cell limit) used by 20,000 cells: 600 million
    characters once filled in, from a file of a few hundred KB."""
    cells = "".join(f'<row r="{r}"><c r="G{r}" t="s"><v>0</v></c></row>' for r in range(3, 20_003))
    path = write_xlsx(
        tmp_path / "expand.xlsx", payroll_rows_xml() + cells, shared=[random_text(30_000)]
    )
    assert path.stat().st_size < 1_000_000
    assert_refused(
        batchpay_validate(path, tmp_path), path, "too many characters in all", "500,000,000"
    )


def test_an_inline_cell_beyond_the_cell_limit_names_the_cell(tmp_path: Path) -> None:
    rows = payroll_rows_xml() + '<row r="3">' + inline("B3", random_text(40_000)) + "</row>"
    path = write_xlsx(tmp_path / "inline.xlsx", rows)
    line = assert_refused(batchpay_validate(path, tmp_path), path, "cell B3")
    assert f"40,000, more than the {limit(MAX_CELL_CHARS)}" in line


def test_entity_declarations_are_refused(tmp_path: Path) -> None:
    """OOXML has no DOCTYPE; one can only be there to expand entities (a billion laughs)."""
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE sst [<!ENTITY a "aaaaaaaaaa">'
        + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
        + ']><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        "<si><t>&i;</t></si></sst>"
    )
    path = write_xlsx(tmp_path / "laughs.xlsx", payroll_rows_xml(), shared_xml=laughs.encode())
    assert_refused(batchpay_validate(path, tmp_path), path, "damaged", "DOCTYPE")


# --- .ods and .xls: read in a child process with a memory limit --------------------------


def test_an_ods_that_repeats_a_cell_beyond_memory_is_refused_by_the_child(tmp_path: Path) -> None:
    """95 million cells from 900 bytes: the reader's own cell limit (100 million) lets it
    through, and reading it needs several GB; the child's memory limit stops it."""
    path = write_ods(
        tmp_path / "repeat.ods", payroll_ods_rows() + ods_row(ods_cell("x", 190), 500_000)
    )
    assert path.stat().st_size < 2000
    done = batchpay_validate(path, tmp_path)
    assert_refused(done, path, "1024 MiB of memory", ".ods")


def test_a_plain_ods_is_read_through_the_child(tmp_path: Path) -> None:
    path = write_ods(tmp_path / "ok.ods", payroll_ods_rows())
    done = batchpay_validate(path, tmp_path)
    assert done.code == 0, done.stderr
    assert "1 rows, 1 valid" in done.stdout


# --- CSV ---------------------------------------------------------------------------------


def header_csv(path: Path, header: str, rows: list[str] | None = None) -> Path:
    path.write_text("\n".join([header, *(rows or [",".join(ROW)])]) + "\n", encoding="utf-8")
    return path


def test_a_header_of_a_million_commas_is_refused_before_parsing(tmp_path: Path) -> None:
    path = header_csv(tmp_path / "commas.csv", ",".join(HEADER) + "," * 1_000_000)
    line = assert_refused(batchpay_validate(path, tmp_path), path, "too many columns")
    assert f"1,000,006, more than the {limit(MAX_COLUMNS)}" in line


def test_a_data_line_of_a_million_commas_is_refused(tmp_path: Path) -> None:
    path = header_csv(tmp_path / "wide.csv", ",".join(HEADER), [",".join(ROW) + "," * 1_000_000])
    line = assert_refused(batchpay_validate(path, tmp_path), path, "line 2 has too many values")
    assert limit(MAX_COLUMNS) in line


def test_more_lines_than_the_row_limit_are_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "lines.csv"
    path.write_bytes((",".join(HEADER) + "\n").encode() + b"\n" * MAX_ROWS)
    assert_refused(batchpay_validate(path, tmp_path), path, "too many lines", limit(MAX_ROWS))


@pytest.mark.parametrize("length", [MAX_CELL_CHARS + 1, 200_000])
def test_a_csv_cell_beyond_the_cell_limit_is_refused(tmp_path: Path, length: int) -> None:
    """Either reader: pyarrow takes the shorter; the csv module refuses the longer itself."""
    row = list(ROW)
    row[HEADER.index("firstname")] = random_text(length)
    path = header_csv(tmp_path / "cell.csv", ",".join(HEADER), [",".join(row)])
    line = assert_refused(batchpay_validate(path, tmp_path), path, limit(MAX_CELL_CHARS))
    if length == MAX_CELL_CHARS + 1:
        assert f"cell E2 holds too many characters: {length:,}" in line


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        pytest.param(
            "odd.csv", "\ufeffamount,accountNo\n1".encode("utf-16-le") + b"\x00",
            ["UTF-16", "incomplete character"], id="odd-length",
        ),
        pytest.param(
            "surrogate.csv",
            "\ufeffamount\n".encode("utf-16-le") + b"\x00\xd8" + "1\n".encode("utf-16-le"),
            ["UTF-16", "lone surrogate"], id="lone-surrogate",
        ),
    ],
)  # fmt: skip
def test_damaged_utf16_is_one_line(
    tmp_path: Path, name: str, data: bytes, words: list[str]
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    assert_refused(batchpay_validate(path, tmp_path), path, *words)


# --- formula cells found by parsing -----------------------------------------------------


def test_formulas_are_found_whatever_the_attribute_order_and_without_r(tmp_path: Path) -> None:
    def cells(values: list[str], row: int) -> str:
        return "".join(inline(f"{chr(65 + i)}{row}", v) for i, v in enumerate(values))

    row2 = (
        cells(ROW[:2], 2)
        + '<c s="0" r="C2" t="str"><f>"0"&amp;"917123456"</f><v>0917123456</v></c>'
        + "".join(inline(None, v) for v in ROW[3:])
    )
    row3 = (
        "".join(inline(None, v) for v in ROW[:3])
        + '<c t="str"><f>"b@example.com"</f><v>b@example.com</v></c>'
        + "".join(inline(None, v) for v in ROW[4:])
    )
    rows = f'<row r="1">{cells(HEADER, 1)}</row><row r="2">{row2}</row><row>{row3}</row>'
    path = write_xlsx(tmp_path / "formulas.xlsx", rows)
    sheet = read_sheet(path)
    assert sheet.formulas == {(2, 2), (3, 3)}
    done = batchpay_validate(path, tmp_path)
    assert done.code == 0, done.stderr
    assert "warning: row 2, column 'mobile': '0917123456' is a formula" in done.stdout
    assert "warning: row 3, column 'email': 'b@example.com' is a formula" in done.stdout


@pytest.mark.parametrize("exact", [False, True], ids=["plain-tier", "expat-pass"])
def test_both_tiers_of_the_check_agree_on_formulas(tmp_path: Path, exact: bool) -> None:
    """A sheet in the regular form is proved within the limits by byte searches; a comment
    anywhere sends it to the expat pass. Both find the same formula cells."""
    cells = "".join(inline(f"{chr(65 + i)}1", v) for i, v in enumerate(HEADER))
    data = "".join(
        f'<c r="{chr(65 + i)}{r}" s="1"><f>1+1</f><v>{v}</v></c>'
        if (r + i) % 4 == 0 else inline(f"{chr(65 + i)}{r}", v)
        for r in range(2, 12) for i, v in enumerate(ROW)
    )  # fmt: skip
    comment = "<!-- a comment -->" if exact else ""
    rows = f'<row r="1">{cells}</row>{comment}<row r="2">{data}</row>'
    path = write_xlsx(tmp_path / "tiers.xlsx", rows)
    expected = {(r, i) for r in range(2, 12) for i in range(len(ROW)) if (r + i) % 4 == 0}
    assert scan_xlsx(path, None) == expected


# --- field lengths ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "length", "most"),
    [
        ("firstname", "A" * 101, 101, 100),
        ("lastname", "B" * 101, 101, 100),
        ("email", "a" * 245 + "@example.com", 257, 254),
    ],
)
def test_a_field_beyond_its_length_names_the_limit_and_length(
    tmp_path: Path, column: str, value: str, length: int, most: int
) -> None:
    row = list(ROW)
    row[HEADER.index(column)] = value
    path = header_csv(tmp_path / "fields.csv", ",".join(HEADER), [",".join(row)])
    done = batchpay_validate(path, tmp_path)
    assert done.code == 1
    assert f"has {length} characters, more than the limit of {most} for this column" in done.stdout
    assert "Traceback" not in done.stderr


def test_an_account_number_beyond_34_digits_is_refused_by_its_rule(tmp_path: Path) -> None:
    row = list(ROW)
    row[HEADER.index("accountNo")] = "1" * 35
    path = header_csv(tmp_path / "account.csv", ",".join(HEADER), [",".join(row)])
    done = batchpay_validate(path, tmp_path)
    assert done.code == 1
    assert "1 to 34 digits" in done.stdout


def test_values_at_the_limits_are_accepted(tmp_path: Path) -> None:
    row = list(ROW)
    row[HEADER.index("firstname")] = "A" * 100
    row[HEADER.index("email")] = "a" * 242 + "@example.com"
    row[HEADER.index("accountNo")] = "1" * 34
    path = header_csv(
        tmp_path / "edge.csv", ",".join([*HEADER, "remark"]), [",".join([*row, "r" * 256])]
    )
    done = batchpay_validate(path, tmp_path)
    assert done.code == 0, done.stdout


def test_read_sheet_raises_input_error_not_base_exception(tmp_path: Path) -> None:
    rows = payroll_rows_xml() + '<row r="3">' + inline("ZZZZZZ99999999999", "x") + "</row>"
    path = write_xlsx(tmp_path / "z.xlsx", rows)
    with pytest.raises(InputError):
        read_sheet(path)
