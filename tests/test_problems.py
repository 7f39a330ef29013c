"""What a person reads: problems grouped one line each, the full list in a report, and a
next step after every run."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import openpyxl
import pytest
from helpers import Sandbox, invoke, payroll_rows, write_csv


@pytest.fixture
def damaged_workbook(tmp_path: Path) -> Path:
    """A 300-row HR file converted to .xlsx by LibreOffice, which stores the account numbers
    and mobiles as numbers."""
    soffice = shutil.which("soffice")
    if soffice is None:
        pytest.fail("soffice not found: install libreoffice-calc-nogui (the README's test command)")
    source = write_csv(tmp_path / "hr.csv", payroll_rows(300))
    subprocess.run(
        [soffice, "--headless", f"-env:UserInstallation=file://{tmp_path}/lo", "--convert-to",
         "xlsx", "--outdir", str(tmp_path), str(source)],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    return tmp_path / "hr.xlsx"


def test_a_damaged_300_row_workbook_reads_in_a_few_lines_and_reports_every_cell(
    damaged_workbook: Path, tmp_path: Path
) -> None:
    result = invoke("validate", str(damaged_workbook))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 4, result.stdout  # was 607 before issue 14
    accounts, mobiles, pointer, totals = lines
    assert "300 row(s), column 'Account No' (error)" in accounts
    assert "export it again from the source" in accounts and "re-enter" not in accounts
    assert "... and 297 more" in accounts
    assert "300 row(s), column 'Mobile' (warning)" in mobiles
    assert "one entry per cell" in pointer and "--report" in pointer
    assert "300 invalid, 300 warning(s)" in totals

    document = json.loads(invoke("validate", str(damaged_workbook), "--json").stdout)
    assert len(document["problems"]) == 300 and len(document["warnings"]) == 300
    report = tmp_path / "problems.xlsx"
    assert invoke("validate", str(damaged_workbook), "--report", str(report)).exit_code == 1
    workbook = openpyxl.load_workbook(report, read_only=True)
    assert sum(1 for _ in workbook.active.iter_rows(min_row=2)) == 600
    workbook.close()


def test_run_writes_the_report_too_and_sends_nothing(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    rows = payroll_rows(30)
    for row in rows:
        row[5] = "nobody"
    path = write_csv(tmp_path / "p.csv", rows)
    report = tmp_path / "problems.csv"
    result = invoke("run", str(path), "--yes", "--report", str(report))
    assert result.exit_code == 1
    assert len(report.read_text(encoding="utf-8-sig").splitlines()) == 31
    assert sum("column 'Email'" in line for line in result.stderr.splitlines()) == 1
    assert sandbox.gateway.payout_requests == []


def test_skip_invalid_with_no_valid_row_makes_no_batch(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path, journal_path: Path
) -> None:
    rows = payroll_rows(3)
    for row in rows:
        row[6] = "12"
    path = write_csv(tmp_path / "p.csv", rows)
    result = invoke("run", str(path), "--yes", "--skip-invalid")
    assert result.exit_code == 1
    assert "no valid row to send" in result.stderr and "no batch was made" in result.stderr
    assert "Traceback" not in result.output
    assert sandbox.gateway.payout_requests == []
    assert not journal_path.exists()


def test_a_folder_leaves_a_refused_file_with_what_to_fix_beside_it(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    inbox, done = tmp_path / "inbox", tmp_path / "done"
    inbox.mkdir()
    write_csv(inbox / "a.csv", payroll_rows(2))
    broken = payroll_rows(2, start=20)
    broken[1][6] = "99"
    write_csv(inbox / "b.csv", broken)
    result = invoke("run", str(inbox), "--archive", str(done), "--yes", "--json")
    assert result.exit_code == 1
    first, second = json.loads(result.stdout)["files"]
    assert first["result_file"] == str(done / "a.result.csv")  # where it is now
    assert (done / "a.result.csv").exists()
    assert second["problems"][0]["row"] == 3 and second["problems"][0]["column"] == "Amount"
    report = inbox / "b.problems.xlsx"
    assert second["problems_report"] == str(report) and report.exists()
    # The next scan does not take the report, or the result, for an input.
    again = invoke("run", str(inbox), "--archive", str(done), "--yes", "--json")
    assert [Path(f["source"]).name for f in json.loads(again.stdout)["files"]] == ["b.csv"]


def test_every_run_ends_with_what_to_do_next(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "p.csv", payroll_rows(3))
    result = invoke("run", str(path), "--yes")
    assert result.exit_code == 0
    [step] = [line for line in result.stdout.splitlines() if line.startswith("next: ")]
    assert "3 row(s) are processing" in step and "not paid yet" in step
    assert "batchpay listen" in step and "batchpay reconcile" in step
    summary = json.loads(invoke("run", str(path), "--yes", "--json").stdout)
    assert summary["next_steps"] == [step.removeprefix("next: ")]


def test_a_sandbox_run_says_it_is_no_real_payment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    path = write_csv(tmp_path / "p.csv", payroll_rows(2))
    shown = invoke("run", str(path), "--sandbox", "--yes")
    assert "SANDBOX: no real payment" in shown.stdout.splitlines()[0]
    summary = json.loads(invoke("run", str(path), "--sandbox", "--yes", "--json").stdout)
    assert summary["sandbox"] is True
