"""Limits (issue 16): the largest row, the batch's total and an account's 24 hours, each checked
before anything is sent, each a one-line refusal naming the limit (exit 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .helpers import Sandbox, invoke, payroll_rows, write_csv

# payroll_rows(n, start=s) pays 1000 + i for i in s..s+n-1; sheet row = i - s + 2.


def test_a_row_above_max_row_amount_refuses_the_batch_and_names_the_row(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(tmp_path / "p.csv", payroll_rows(6))
    monkeypatch.setenv("BATCHPAY_MAX_ROW_AMOUNT", "1003")
    result = invoke("run", str(path), "--yes")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "batchpay: error: refused: sheet row 6 pays 1,004, above the limit max_row_amount 1,003 "
        "(1 more row(s) above it); nothing sent"
    )
    assert sandbox.gateway.payout_requests == []
    # A dry run checks what a send would, and refuses the same way.
    assert invoke("run", str(path), "--dry-run").exit_code == 1
    monkeypatch.setenv("BATCHPAY_MAX_ROW_AMOUNT", "1005")
    placed = invoke("run", str(path), "--yes", "--json")
    assert placed.exit_code == 0, placed.output
    assert json.loads(placed.stdout)["counts"] == {"processing": 6}


def test_a_batch_above_max_batch_total_is_refused_and_one_at_it_is_placed(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(tmp_path / "p.csv", payroll_rows(3))  # 1000 + 1001 + 1002
    monkeypatch.setenv("BATCHPAY_MAX_BATCH_TOTAL", "3002")
    refused = invoke("run", str(path), "--yes")
    assert refused.exit_code == 1
    assert "refused: the batch totals 3,003, above the limit max_batch_total 3,002" in (
        refused.stderr
    )
    assert sandbox.gateway.payout_requests == []
    monkeypatch.setenv("BATCHPAY_MAX_BATCH_TOTAL", "3003")
    assert invoke("run", str(path), "--yes").exit_code == 0
    assert len(sandbox.gateway.orders) == 3


def test_the_daily_total_counts_what_the_account_paid_in_24_hours_and_the_rows_to_send(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHPAY_DAILY_TOTAL", "6035")
    first = write_csv(tmp_path / "first.csv", payroll_rows(3))  # 3,003
    assert invoke("run", str(first), "--yes").exit_code == 0
    second = write_csv(tmp_path / "second.csv", payroll_rows(3, start=10))  # 3,033
    refused = invoke("run", str(second), "--yes")
    assert refused.exit_code == 1
    assert (
        "refused: the 3 row(s) still to send (3,033) and the 3,003 this gateway account paid "
        "out in the last 24 hours (or is sending now) make 6,036, above the limit daily_total "
        "6,035; nothing sent"
    ) in refused.stderr
    assert len(sandbox.gateway.payout_requests) == 3  # the first batch's only
    # Running the first file again sends nothing and counts its placed rows once: it fits.
    assert invoke("run", str(first), "--yes").exit_code == 0
    assert len(sandbox.gateway.payout_requests) == 3
    monkeypatch.setenv("BATCHPAY_DAILY_TOTAL", "6036")
    assert invoke("run", str(second), "--yes").exit_code == 0
    assert len(sandbox.gateway.orders) == 6


def test_rows_the_gateway_refused_are_not_counted_in_the_daily_total(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchpay.sandbox.gateway import Faults

    sandbox.faults = Faults(rates={"refuse": 1.0})  # a parameter error: rejected, not placed
    refused = write_csv(tmp_path / "refused.csv", payroll_rows(2))
    assert invoke("run", str(refused), "--yes", "--concurrency", "1").exit_code == 3
    sandbox.faults = Faults()
    monkeypatch.setenv("BATCHPAY_DAILY_TOTAL", "2021")  # 1010 + 1011: nothing else counts
    second = write_csv(tmp_path / "second.csv", payroll_rows(2, start=10))
    assert invoke("run", str(second), "--yes").exit_code == 0


def test_a_folder_leaves_a_file_above_a_limit_waiting_with_the_reason(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, done = tmp_path / "inbox", tmp_path / "done"
    inbox.mkdir()
    write_csv(inbox / "big.csv", payroll_rows(3))
    write_csv(inbox / "small.csv", payroll_rows(1, start=20))
    monkeypatch.setenv("BATCHPAY_MAX_BATCH_TOTAL", "2000")
    result = invoke("run", str(inbox), "--archive", str(done), "--yes")
    assert result.exit_code == 1
    assert "above the limit max_batch_total 2,000" in result.stderr
    assert (inbox / "big.csv").exists() and (done / "small.csv").exists()
    assert len(sandbox.gateway.orders) == 1


@pytest.mark.parametrize("value", ["abc", "-5", "1.5", "1e6"])
def test_a_limit_that_is_not_a_whole_amount_is_a_settings_error_and_nothing_is_sent(
    sandbox: Sandbox,
    gateway_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    value: str,
) -> None:
    monkeypatch.setenv("BATCHPAY_DAILY_TOTAL", value)
    result = invoke("run", str(write_csv(tmp_path / "p.csv", payroll_rows(2))), "--yes")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "batchpay: error: BATCHPAY_DAILY_TOTAL must be a whole amount in yuan (1000, 1,000 or "
        f"1000.00), or empty for none, not {value!r}"
    )
    assert sandbox.gateway.payout_requests == []
