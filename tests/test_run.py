"""End to end: the CLI against the sandbox gateway over real loopback HTTP."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import openpyxl
import pytest
from helpers import SECRET, Sandbox, invoke, payroll_rows, read_result, write_csv

from batchpay.sandbox.gateway import Faults


def journal_trade_nos(journal: Path) -> dict[int, str]:
    with sqlite3.connect(journal) as db:
        return dict(db.execute("SELECT sheet_row, trade_no FROM rows"))


def test_valid_file_ends_with_every_row_processing_with_the_gateways_number(
    sandbox: Sandbox, gateway_env: dict[str, str], payroll_csv: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out.xlsx"
    result = invoke("run", str(payroll_csv), "--yes", "-o", str(output))
    assert result.exit_code == 0, result.output
    rows = read_result(output)
    assert len(rows) == 12
    orders = sandbox.gateway.orders
    assert len(orders) == 12
    for row in rows:
        assert row["outcome"] == "processing"
        assert row["status"] == "0015"
        assert row["code"] == "0000"
        assert row["attempts"] == "1"
        assert row["platFormTradeNo"] == orders[row["tradeNo"]].platform_trade_no
        # The account number went out exactly as written, leading zeros included.
        assert orders[row["tradeNo"]].fields["accountNo"] == row["Account No"]
        assert row["Account No"].startswith("00")
    assert len(sandbox.gateway.payout_requests) == 12


def test_invalid_file_exits_1_naming_row_and_column_and_sends_nothing(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    rows = payroll_rows(5)
    rows[2][3] = "12-34"  # Account No, sheet row 4
    rows[4][6] = "99"  # Amount, sheet row 6
    path = write_csv(tmp_path / "bad.csv", rows)
    result = invoke("run", str(path), "--yes")
    assert result.exit_code == 1
    assert "row 4, column 'Account No': '12-34'" in result.stderr
    assert "row 6, column 'Amount': '99'" in result.stderr
    assert "Traceback" not in result.output
    assert sandbox.gateway.payout_requests == []
    assert not (tmp_path / "bad.result.csv").exists()


def test_skip_invalid_sends_the_valid_rows_and_reports_the_invalid_ones(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    rows = payroll_rows(4)
    rows[1][5] = "not-an-email"
    path = write_csv(tmp_path / "mixed.csv", rows)
    result = invoke("run", str(path), "--yes", "--skip-invalid", "-o", str(tmp_path / "r.xlsx"))
    assert result.exit_code == 3, result.output
    out = read_result(tmp_path / "r.xlsx")
    assert [r["outcome"] for r in out] == ["processing", "invalid", "processing", "processing"]
    assert out[1]["errors"].startswith("Email: 'not-an-email' must be an e-mail")
    assert out[1]["tradeNo"] == ""
    assert len(sandbox.gateway.orders) == 3


def test_dry_run_sends_nothing_and_the_real_run_keeps_its_trade_numbers(
    sandbox: Sandbox, gateway_env: dict[str, str], payroll_csv: Path, journal_path: Path
) -> None:
    result = invoke("run", str(payroll_csv), "--dry-run")
    assert result.exit_code == 0, result.output
    assert sandbox.gateway.payout_requests == []
    planned = journal_trade_nos(journal_path)
    assert len(planned) == 12 and all(planned.values())
    dry = (payroll_csv.parent / "payroll.result.csv").read_text(encoding="utf-8-sig")
    assert dry.count(",pending,") == 12

    result = invoke("run", str(payroll_csv), "--yes")
    assert result.exit_code == 0, result.output
    assert set(sandbox.gateway.orders) == set(planned.values())
    assert journal_trade_nos(journal_path) == planned


def test_rerunning_a_finished_file_sends_nothing(
    sandbox: Sandbox, gateway_env: dict[str, str], payroll_csv: Path
) -> None:
    assert invoke("run", str(payroll_csv), "--yes").exit_code == 0
    sent = len(sandbox.gateway.payout_requests)
    first = (payroll_csv.parent / "payroll.result.csv").read_text(encoding="utf-8-sig")
    result = invoke("run", str(payroll_csv), "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert len(sandbox.gateway.payout_requests) == sent
    summary = json.loads(result.stdout)
    assert summary["requests"] == 0
    assert summary["counts"] == {"processing": 12}
    assert "12 row(s) were already placed" in result.stderr
    assert (payroll_csv.parent / "payroll.result.csv").read_text(encoding="utf-8-sig") == first


def test_same_rows_in_another_order_and_format_resume_the_same_batch(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    rows = payroll_rows(6)
    assert invoke("run", str(write_csv(tmp_path / "a.csv", rows)), "--yes").exit_code == 0
    reordered = write_csv(tmp_path / "b.csv", list(reversed(rows)))
    result = invoke("run", str(reordered), "--yes", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["requests"] == 0
    assert len(sandbox.gateway.payout_requests) == 6


@pytest.mark.parametrize("status", ["429", "503"])
def test_429_and_503_are_retried_and_then_placed(
    sandbox: Sandbox, gateway_env: dict[str, str], payroll_csv: Path, status: str
) -> None:
    sandbox.faults = Faults(rates={status: 1.0}, retry_after=0.05)
    result = invoke("run", str(payroll_csv), "--yes", "-o", str(payroll_csv.with_suffix(".xlsx")))
    assert result.exit_code == 0, result.output
    rows = read_result(payroll_csv.with_suffix(".xlsx"))
    assert {r["outcome"] for r in rows} == {"processing"}
    assert {r["attempts"] for r in rows} == {"2"}
    assert len(sandbox.gateway.payout_requests) == 24
    assert len(sandbox.gateway.orders) == 12


def test_retries_stop_at_max_attempts_and_leave_the_row_pending(
    sandbox: Sandbox, gateway_env: dict[str, str], payroll_csv: Path
) -> None:
    sandbox.faults = Faults(rates={"503": 1.0}, every_request=True)
    result = invoke("run", str(payroll_csv), "--yes", "--max-attempts", "2", "--json")
    assert result.exit_code == 4
    assert json.loads(result.stdout)["counts"] == {"pending": 12}
    assert len(sandbox.gateway.payout_requests) == 24
    assert sandbox.gateway.orders == {}


@pytest.mark.parametrize("fault", ["hang", "reset", "garbage", "500"])
@pytest.mark.parametrize("query", [True, False], ids=["query", "no-query"])
def test_placed_then_no_answer_ends_processing_with_one_trade_number_per_row(
    sandbox: Sandbox,
    gateway_env: dict[str, str],
    payroll_csv: Path,
    journal_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    query: bool,
) -> None:
    if not query:
        monkeypatch.delenv("BATCHPAY_QUERY_URL")
    sandbox.faults = Faults(rates={fault: 1.0}, hang_seconds=5)
    result = invoke("run", str(payroll_csv), "--yes", "--timeout", "0.5", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"] == {"processing": 12}
    planned = set(journal_trade_nos(journal_path).values())
    # Every request the gateway saw carried a planned tradeNo: never a second one for a row.
    assert set(sandbox.gateway.payout_requests) == planned
    assert set(sandbox.gateway.orders) == planned
    if query:
        assert len(sandbox.gateway.payout_requests) == 12  # the query answered; no re-send
        assert sorted(sandbox.gateway.query_requests) == sorted(planned)
    else:
        assert len(sandbox.gateway.payout_requests) == 24  # re-sent, answered duplicate


def test_refused_rows_are_rejected_and_exit_3(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    rows = payroll_rows(3)
    rows[1][4] = "0917123456"
    path = write_csv(tmp_path / "p.csv", rows)
    sandbox.gateway.rules["mobile"] = r"09[0-9]{8}"  # the gateway is stricter than the file
    rows[0][4] = rows[2][4] = "0812345678"
    path = write_csv(tmp_path / "p.csv", rows)
    result = invoke("run", str(path), "--yes", "--json")
    assert result.exit_code == 3
    assert json.loads(result.stdout)["counts"] == {"rejected": 2, "processing": 1}


def test_expectations_that_do_not_match_refuse_before_sending(
    sandbox: Sandbox, gateway_env: dict[str, str], payroll_csv: Path
) -> None:
    total = sum(1000 + i for i in range(12))
    result = invoke("run", str(payroll_csv), "--yes", "--expect-count", "11")
    assert result.exit_code == 1
    assert "--expect-count says 11" in result.stderr
    result = invoke("run", str(payroll_csv), "--yes", "--expect-total", str(total + 1))
    assert result.exit_code == 1
    assert sandbox.gateway.payout_requests == []
    result = invoke(
        "run", str(payroll_csv), "--yes", "--expect-count", "12", "--expect-total", str(total)
    )
    assert result.exit_code == 0


def test_without_a_terminal_and_without_yes_run_refuses(
    sandbox: Sandbox, gateway_env: dict[str, str], payroll_csv: Path
) -> None:
    result = invoke("run", str(payroll_csv), input="y\n")
    assert result.exit_code == 1
    assert "no terminal to confirm on" in result.stderr
    assert sandbox.gateway.payout_requests == []


def test_missing_settings_exit_2_before_reading_the_file(
    gateway_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("BATCHPAY_URL")
    result = invoke("run", str(tmp_path / "does-not-exist.csv"), "--yes")
    assert result.exit_code == 2
    assert "BATCHPAY_URL" in result.stderr
    assert "Traceback" not in result.output


def test_the_secret_appears_in_no_output_journal_or_result_file(
    sandbox: Sandbox, gateway_env: dict[str, str], payroll_csv: Path, journal_path: Path
) -> None:
    sandbox.faults = Faults(rates={"500": 0.5}, seed=3)
    result = invoke("run", str(payroll_csv), "--yes")
    assert SECRET not in result.output
    for path in [journal_path, *journal_path.parent.glob("*")]:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_result_workbook_cells_are_text_and_never_formulas(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    rows = payroll_rows(2)
    rows[0][7] = '=HYPERLINK("http://evil.example","click")'
    rows[1][7] = "@SUM(A1:A2)"
    path = write_csv(tmp_path / "p.csv", rows)
    assert invoke("run", str(path), "--yes", "-o", str(tmp_path / "r.xlsx")).exit_code == 0
    workbook = openpyxl.load_workbook(tmp_path / "r.xlsx")
    sheet = workbook.active
    # Every cell is text but the amountValue column's, a number to add up (issue 14).
    amount_value = [c.value for c in sheet[1]].index("amountValue") + 1
    assert {
        (cell.column == amount_value and cell.row > 1, cell.data_type)
        for row in sheet.iter_rows()
        for cell in row
        if cell.value
    } == {(False, "s"), (True, "n")}
    assert sheet["H2"].value == rows[0][7]
    assert sheet["D2"].value == rows[0][3] and sheet["D2"].value.startswith("00")
    workbook.close()
    assert invoke("run", str(path), "--yes", "-o", str(tmp_path / "r.csv")).exit_code == 0
    text = (tmp_path / "r.csv").read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in text and "'@SUM" in text


def test_the_summary_gives_counts_amounts_the_result_file_and_the_next_step(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    rows = payroll_rows(3)
    rows[1][4] = "0812345678"
    sandbox.gateway.rules["mobile"] = r"09[0-9]{8}"  # the gateway refuses row 3
    path = write_csv(tmp_path / "p.csv", rows)
    result = invoke("run", str(path), "--yes")
    assert result.exit_code == 3
    lines = result.stdout.splitlines()
    assert lines[0].startswith("batch ") and "(3 request(s)" in lines[0]
    assert lines[1].split() == ["rejected", "1", "1,001"]
    assert lines[2].split() == ["processing", "2", "2,002"]
    assert lines[3] == f"result file: {tmp_path / 'p.result.csv'}"
    assert lines[4] == "next: see the msg and message columns of the rejected and failed rows"
