"""Spreadsheets batchpay writes: the template, the problem report, the result workbook."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import openpyxl
import pytest
from helpers import HEADER, Sandbox, invoke, payroll_rows, read_result, write_csv

from batchpay.sheets.template import COLUMNS


def test_template_xlsx_has_text_columns_validation_and_instructions(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    result = invoke("template", str(path))
    assert result.exit_code == 0, result.output
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["Beneficiaries", "Instructions"]
    sheet = workbook["Beneficiaries"]
    assert [c.value for c in sheet[1]] == [name for name, _, _ in COLUMNS]
    text_columns = {
        column
        for dim in sheet.column_dimensions.values()
        if dim.number_format == "@"
        for column in range(dim.min, dim.max + 1)
    }
    assert text_columns == set(range(1, len(COLUMNS) + 1))
    validations = {str(v.sqref): v for v in sheet.data_validations.dataValidation}
    assert (
        validations["D2:D10001"].type == "textLength" and validations["D2:D10001"].formula1 == "10"
    )
    assert "VALUE(F2)>=100" in (validations["F2:F10001"].formula1 or "")
    instructions = " ".join(
        str(c.value) for row in workbook["Instructions"].iter_rows() for c in row
    )
    assert "formatted as Text" in instructions and "leading zeros" in instructions
    workbook.close()


def test_template_refuses_to_overwrite_and_writes_a_csv_header(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    assert invoke("template", str(path)).exit_code == 0
    assert path.read_text(encoding="utf-8-sig").splitlines() == [",".join(n for n, _, _ in COLUMNS)]
    again = invoke("template", str(path))
    assert again.exit_code == 1
    assert "already exists" in again.stderr and "--force" in again.stderr
    assert invoke("template", str(path), "--force").exit_code == 0
    assert invoke("template", str(tmp_path / "t.ods")).exit_code == 1


def test_a_filled_template_validates(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    invoke("template", str(path))
    workbook = openpyxl.load_workbook(path)
    sheet = workbook["Beneficiaries"]
    sheet.append(["Maria", "Dela Cruz", "000123456789", "0917123456", "m@example.ph", "15000",
                  "Nov"])  # fmt: skip
    workbook.save(path)
    result = invoke("validate", str(path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["valid"] == 1


def test_validate_report_lists_every_problem_and_warning(tmp_path: Path) -> None:
    rows = payroll_rows(4)
    rows[1][6] = "99"
    rows[3][3], rows[3][6] = rows[2][3], rows[2][6]  # same account and amount as row 4
    path = write_csv(tmp_path / "p.csv", rows)
    for suffix in (".xlsx", ".csv"):
        report = tmp_path / f"report{suffix}"
        result = invoke("validate", str(path), "--report", str(report))
        assert result.exit_code == 1
        assert f"problems written to {report}" in result.stdout
        listed = {(r["row"], r["column"], r["severity"]) for r in read_result(report)}
        assert listed == {
            ("3", "Amount", "error"),
            ("4", "Account No", "warning"),
            ("5", "Account No", "warning"),
        }


def test_duplicate_payouts_are_warned_before_sending_or_refused_when_strict(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    rows = payroll_rows(3)
    rows[2][3], rows[2][6] = rows[0][3], rows[0][6]
    path = write_csv(tmp_path / "p.csv", rows)
    strict = invoke("run", str(path), "--yes", "--strict-duplicates")
    assert strict.exit_code == 1
    assert "row 4, column 'Account No'" in strict.stderr
    assert sandbox.gateway.payout_requests == []
    warned = invoke("run", str(path), "--yes")
    assert warned.exit_code == 0
    assert "warning: row 2, column 'Account No'" in warned.stderr
    assert "same account number and amount as row 4" in warned.stderr


def test_result_workbook_highlights_problem_rows_and_has_a_summary(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    rows = payroll_rows(3)
    rows[1][5] = "nobody"
    path = write_csv(tmp_path / "p.csv", rows)
    output = tmp_path / "r.xlsx"
    result = invoke("run", str(path), "--yes", "--skip-invalid", "-o", str(output), "--json")
    assert result.exit_code == 3
    batch = json.loads(result.stdout)["batch"]
    workbook = openpyxl.load_workbook(output)
    results = workbook["Results"]
    assert results.freeze_panes == "A2"
    fills = [results.cell(row=r, column=1).fill.fgColor.rgb for r in (2, 3, 4)]
    assert fills[1].endswith("F8CBAD") and not fills[0].endswith("F8CBAD")
    assert results.column_dimensions["A"].width >= len(HEADER[0])
    summary = {row[0].value: row[1].value for row in workbook["Summary"].iter_rows(min_row=2)}
    assert summary["batch"] == batch
    assert summary["processing: rows"] == "2" and summary["invalid: rows"] == "1"
    assert summary["processing: amount"] == 1000 + 1002  # a number cell (issue 14)
    workbook.close()


def test_many_problems_are_grouped_with_the_first_rows_of_each(tmp_path: Path) -> None:
    rows = payroll_rows(30)
    for row in rows:
        row[6] = "99"
    rows[5][5] = "nobody"
    path = write_csv(tmp_path / "p.csv", rows)
    result = invoke("validate", str(path))
    assert result.exit_code == 1
    out = result.stdout
    assert "30 row(s), column 'Amount' (error): must be a whole amount" in out
    assert "1 row(s), column 'Email' (error)" in out
    # One line per column and kind of problem, naming its first rows (issue 14).
    assert "row 2 '99', row 3 '99', row 4 '99' ... and 27 more" in out
    assert "column 'Email' (error): must be" in out and ": row 7 'nobody'" in out
    assert len(out.splitlines()) == 4  # two groups, the pointer to the full list, the totals
    assert f"the full list, one entry per cell: batchpay validate {path} --report FILE" in out


# -- printed and re-opened by a real spreadsheet (issue 14) -------------------------------

# A page object of a PDF (not the /Pages tree above it).
PDF_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
PDF_MEDIA_BOX = re.compile(rb"/MediaBox\s*\[\s*([-\d.\s]+)\]")
PDF_PAGE_TREE_COUNT = re.compile(rb"/Type\s*/Pages\b.*?/Count\s+(\d+)", re.S)


def pdf_pages(path: Path) -> list[tuple[float, float]]:
    """Each page's (width, height) in points, from the page objects' /MediaBox.

    LibreOffice writes page objects as plain dictionaries (only content streams are
    compressed); the count is checked against the page tree's own /Count, so a page this
    reading missed would fail the test rather than pass it."""
    data = path.read_bytes()
    pages = []
    for body in re.findall(rb"\d+\s+0\s+obj\s*(<<.*?)endobj", data, re.S):
        if b"stream" in body or not PDF_PAGE.search(body):
            continue
        box = PDF_MEDIA_BOX.search(body)
        assert box is not None, body[:200]
        x0, y0, x1, y1 = (float(n) for n in box[1].split())
        pages.append((x1 - x0, y1 - y0))
    assert max(int(n) for n in PDF_PAGE_TREE_COUNT.findall(data)) == len(pages)
    return pages


def soffice_convert(tmp_path: Path, target: str, outdir: Path, *files: Path) -> None:
    soffice = shutil.which("soffice")
    if soffice is None:
        pytest.fail(
            "soffice not found: install libreoffice-calc-nogui (apt-get install -y "
            "libreoffice-calc-nogui) to check result workbooks with a real spreadsheet"
        )
    subprocess.run(
        [soffice, f"-env:UserInstallation={(tmp_path / 'lo-profile').as_uri()}", "--headless",
         "--convert-to", target, "--outdir", str(outdir), *map(str, files)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip


def test_result_and_template_print_one_page_wide_and_survive_libreoffice(tmp_path: Path) -> None:
    rows = payroll_rows(30)
    path = write_csv(tmp_path / "payroll.csv", rows)
    result_file = tmp_path / "payroll.result.xlsx"
    run = invoke("run", str(path), "--sandbox", "--yes", "-o", str(result_file),
                 "--journal", str(tmp_path / "j.sqlite3"))  # fmt: skip
    assert run.exit_code == 0, run.output
    template = tmp_path / "template.xlsx"
    assert invoke("template", str(template)).exit_code == 0

    # Printed: every sheet one page wide. 30 rows and the Summary fit one page each, so the
    # result prints on exactly two pages (before issue 14: five portrait pages across and a
    # Summary split from its values, six in all), the template on two (before: five).
    soffice_convert(tmp_path, "pdf", tmp_path / "pdf", result_file, template)
    result_pages = pdf_pages(tmp_path / "pdf" / "payroll.result.pdf")
    assert len(result_pages) == 2
    assert all(width > height for width, height in result_pages)  # landscape
    template_pages = pdf_pages(tmp_path / "pdf" / "template.pdf")
    assert len(template_pages) == 2
    assert template_pages[0][0] > template_pages[0][1]  # Beneficiaries: landscape

    # Re-opened and saved by LibreOffice: the values, the cell kinds and the page setup stay.
    soffice_convert(tmp_path, "xlsx", tmp_path / "back", result_file, template)
    workbook = openpyxl.load_workbook(tmp_path / "back" / "payroll.result.xlsx")
    results = workbook["Results"]
    header = [c.value for c in results[1]]
    assert header == [*HEADER, "tradeNo", "outcome", "code", "msg", "status", "message",
                      "platFormTradeNo", "attempts", "errors", "reason", "amountValue",
                      "paidAmount"]  # fmt: skip
    for given, got in zip(rows, results.iter_rows(min_row=2), strict=True):
        assert [c.value for c in got[: len(HEADER)]] == given
        assert {c.data_type for c in got[: len(HEADER)]} == {"s"}
        amount_value = got[header.index("amountValue")]
        assert amount_value.value == int(given[6]) and amount_value.data_type == "n"
        assert got[-1].value in (None, "")  # paidAmount: no row is partly paid
        assert got[header.index("reason")].value in (None, "")  # processing: nothing to do
    summary = workbook["Summary"]
    assert str(summary["A1"].value).startswith("SANDBOX: not a real payment")
    amounts = {r[0].value: r[1].value for r in summary.iter_rows(min_row=3)}
    assert amounts["total: amount"] == sum(int(r[6]) for r in rows)
    for sheet in (results, summary):
        assert sheet.page_setup.orientation == "landscape", sheet.title
        assert sheet.sheet_properties.pageSetUpPr.fitToPage, sheet.title
        assert (sheet.page_setup.fitToWidth or 1) == 1, sheet.title
        assert "SANDBOX: not a real payment" in str(sheet.oddHeader.center.text), sheet.title
    assert results.print_title_rows == "$1:$1" and summary.print_title_rows == "$1:$2"
    workbook.close()

    workbook = openpyxl.load_workbook(tmp_path / "back" / "template.xlsx")
    assert [c.value for c in workbook["Beneficiaries"][1]] == [n for n, _, _ in COLUMNS]
    notes = workbook["Instructions"]
    lines = [str(row[1].value) for row in notes.iter_rows() if row[1].value]
    rules = [line for line in lines if line.startswith(("required:", "optional:"))]
    assert len(rules) == len(COLUMNS)
    for row in notes.iter_rows():
        if row[1].value and row[1].value != "Rule (example)":  # the table's header: one word
            text = str(row[1].value)
            assert text.count("e.g.") + text.count("such as") <= 1, text  # one example each
            assert row[1].alignment.wrap_text, text
            # The row is as tall as its wrapped lines, so no text prints over the next row.
            height = notes.row_dimensions[row[1].row].height
            assert height is not None and height >= 15 * (len(text) // 100 + 1), text
    workbook.close()
