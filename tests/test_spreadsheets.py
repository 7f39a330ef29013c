"""Spreadsheets batchpay writes: the template, the problem report, the result workbook."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
from helpers import HEADER, Sandbox, invoke, payroll_rows, read_result, write_csv

from batchpay.template import COLUMNS


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
    assert out.count("column 'Amount': '99'") == 3
    assert "... and 27 more" in out
    assert f"the full list: batchpay validate {path} --report FILE" in out
