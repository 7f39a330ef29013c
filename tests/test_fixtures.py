"""The fixture corpus: files made by real spreadsheet programs (LibreOffice, Gnumeric) and
hand-made broken files, each checked against tests/fixtures/expected.json through the CLI.

tests/fixtures/make_fixtures.py regenerates the files (it needs soffice and ssconvert); the
suite does not run it: it reads the committed files. expected.json is written by hand and says
what SHOULD happen.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import xlsxwriter
from click.testing import CliRunner, Result

from batchpay.cli.main import cli
from batchpay.config import DEFAULT_MOBILE_PATTERN
from batchpay.sheets.load import load

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXPECTED: dict[str, dict[str, Any]] = json.loads(
    (FIXTURES / "expected.json").read_text(encoding="utf-8")
)["fixtures"]
# A file-level error must say what to do, not only what is wrong.
FIX_WORDS = re.compile(
    r"\b(rename|save|remove|format|add|keep|give|delete|fill|re-enter|enter|export|unmerge)\b",
    re.IGNORECASE,
)
FILE_ERRORS = sorted(name for name, e in EXPECTED.items() if "error_message" in e)


def validate(path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["validate", str(path), *args])


def no_traceback(result: Result) -> None:
    text = result.output + (result.stderr or "")
    assert "Traceback" not in text, text
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {result.exception!r}") from result.exception


def test_every_fixture_file_has_an_expectation_and_every_expectation_a_file():
    files = {p.name for p in FIXTURES.iterdir() if p.is_file()} - {
        "expected.json",
        "make_fixtures.py",
    }
    assert files == set(EXPECTED)


def test_the_corpus_stays_small():
    total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    assert total < 1_000_000


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_gives_its_expected_result(name: str) -> None:
    expected = EXPECTED[name]
    path = FIXTURES / name
    result = validate(path, "--json")
    no_traceback(result)
    assert result.exit_code == expected["exit"], result.output

    if "error_message" in expected:
        assert result.stdout == "", "a file-level error prints no JSON"
        lines = result.stderr.splitlines()
        assert len(lines) == 1, f"one line on stderr, got {lines}"
        line = lines[0]
        assert line.startswith("batchpay: error: "), line
        assert name in line, f"the message names the file: {line}"
        assert expected["error_message"] in line, line
        return

    document = json.loads(result.stdout)
    for kind, listed in (("errors", document["problems"]), ("warnings", document["warnings"])):
        want = {(row, column): text for row, column, text in expected[kind]}
        got = {(p["row"], p["column"]): p["problem"] for p in listed}
        assert set(got) == set(want), f"{kind}: (row, column) pairs: {listed}"
        for where, text in want.items():
            assert text in got[where], f"{kind} at {where}: {text!r} not in {got[where]!r}"
        assert len(listed) == len(got), f"{kind}: one problem per cell: {listed}"

    notes = document["notes"]
    assert len(notes) == len(expected["notes"]), notes
    for text in expected["notes"]:
        assert any(text in note for note in notes), f"no note contains {text!r}: {notes}"
    for note in notes:
        assert name in note, f"a note names the file: {note}"

    if expected.get("values"):
        loaded = load(path, sheet=None, mobile_pattern=DEFAULT_MOBILE_PATTERN)
        canonical = {loaded.sheet.header_of(c): c for c in loaded.sheet.columns}
        position = {int(row): i for i, row in enumerate(loaded.sheet.row_numbers)}
        for row, header, value in expected["values"]:
            got_value = loaded.validation.fields[canonical[header]].iat[position[row]]
            assert got_value == value, f"row {row}, {header}: {got_value!r} != {value!r}"


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n not in FILE_ERRORS))
def test_every_row_problem_names_its_row_and_column(name: str) -> None:
    """The plain (non-JSON) output: one line per problem, naming file, row and column."""
    path = FIXTURES / name
    document = json.loads(validate(path, "--json").stdout)
    result = validate(path)
    no_traceback(result)
    lines = result.stdout.splitlines()
    for problem in [*document["problems"], *document["warnings"]]:
        assert isinstance(problem["row"], int) and problem["row"] >= 2, problem
        assert problem["column"], problem
        marker = f"row {problem['row']}, column {problem['column']!r}"
        assert any(marker in line and name in line for line in lines), (marker, lines)


@pytest.mark.parametrize("name", FILE_ERRORS)
def test_file_level_error_says_how_to_fix_it(name: str) -> None:
    result = validate(FIXTURES / name, "--json")
    no_traceback(result)
    message = result.stderr.strip()
    assert FIX_WORDS.search(message), f"no fix in: {message}"


# The result workbook, read back by a real spreadsheet program.

RESULT_INPUT = [
    ["Employee", "First Name", "Last Name", "Account No", "Mobile", "Email", "Amount", "Remark"],
    ["E001", "José", "Müller", "001234567890123456", "0917123456", "jose@example.com", "1500",
     'Bonus, "March"'],
    ["E002", "Zoë", "Ångström", "880123456789012345", "0918000111", "zoe@example.com", "2000",
     "Überstunden – März"],
    ["E003", "Nguyễn", "Thị Hương", "0012345678", "0919555000", "huong@example.com", "1,250",
     "Lương tháng 3"],
    ["E004", "Łukasz", "Żółć", "6222021234567890123", "0917000222", "lz@example.com", "100",
     "0042"],
]  # fmt: skip
COMPARED = ["Employee", "First Name", "Last Name", "Account No", "Mobile", "Email", "Remark"]


def test_result_workbook_read_back_by_libreoffice_reproduces_the_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    soffice = shutil.which("soffice")
    if soffice is None:
        pytest.fail(
            "soffice not found: install libreoffice-calc-nogui (apt-get install -y "
            "libreoffice-calc-nogui) to check result workbooks with a real spreadsheet"
        )
    source = tmp_path / "payroll.xlsx"
    workbook = xlsxwriter.Workbook(str(source))
    sheet = workbook.add_worksheet("Payroll")
    text = workbook.add_format({"num_format": "@"})
    for r, row in enumerate(RESULT_INPUT):
        for c, value in enumerate(row):
            sheet.write_string(r, c, value, text)
    workbook.close()

    for variable in [v for v in os.environ if v.startswith("BATCHPAY_")]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / "data"))
    output = tmp_path / "result.xlsx"
    result = CliRunner().invoke(
        cli,
        [
            "run",
            str(source),
            "--sandbox",
            "--yes",
            "-o",
            str(output),
            "--journal",
            str(tmp_path / "j.sqlite3"),
        ],
    )
    no_traceback(result)
    assert result.exit_code == 0, result.output

    outdir = tmp_path / "csv"
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation={(tmp_path / 'lo-profile').as_uri()}",
            "--headless",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76",
            "--outdir",
            str(outdir),
            str(output),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    with (outdir / "result.csv").open(encoding="utf-8", newline="") as stream:
        back = list(csv.DictReader(stream))
    header = RESULT_INPUT[0]
    assert len(back) == len(RESULT_INPUT) - 1
    for row, got in zip(RESULT_INPUT[1:], back, strict=True):
        given = dict(zip(header, row, strict=True))
        for column in COMPARED:
            assert got[column] == given[column], f"{given['Employee']} {column}"
        assert got["Amount"] in {given["Amount"], given["Amount"].replace(",", "")}
