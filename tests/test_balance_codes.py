"""``BATCHPAY_INSUFFICIENT_BALANCE_CODES`` (issue 15, part 5): a payout refused for the balance
stops the run at once with the row still pending, never rejected, so that topping up and
running again sends it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import Sandbox, invoke, payroll_rows, write_csv

from batchpay.config import Protocol, protocol_from_env
from batchpay.outcomes import Answer, is_insufficient_balance, is_systemic
from batchpay.sandbox.gateway import Codes, Faults


def test_the_codes_are_unknown_by_default_and_read_from_the_setting() -> None:
    assert protocol_from_env({}).insufficient_balance_codes == frozenset()
    protocol = protocol_from_env({"BATCHPAY_INSUFFICIENT_BALANCE_CODES": "1006, 2001"})
    assert protocol.insufficient_balance_codes == {"1006", "2001"}
    answer = Answer(http_status=200, code="1006", msg="insufficient balance", has_envelope=True)
    assert is_insufficient_balance(answer, protocol) and is_systemic(answer, protocol)
    assert not is_systemic(answer, Protocol())  # without the setting: one row's refusal


def test_a_refusal_for_the_balance_stops_the_run_with_every_row_pending_then_sends_after_top_up(
    sandbox: Sandbox,
    gateway_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandbox.gateway.codes = Codes(param="1006")  # its "refuse" fault answers 1006 here
    sandbox.faults = Faults(rates={"refuse": 1.0}, every_request=True)
    monkeypatch.setenv("BATCHPAY_INSUFFICIENT_BALANCE_CODES", "1006")
    path = write_csv(tmp_path / "p.csv", payroll_rows(5))
    result = invoke("run", str(path), "--yes", "--json", "--concurrency", "1")
    assert result.exit_code == 4
    summary = json.loads(result.stdout)
    assert summary["counts"] == {"pending": 5}
    assert "balance is too low" in summary["stop_reason"]
    assert len(sandbox.gateway.payout_requests) == 1
    sandbox.faults = Faults()  # topped up
    again = invoke("run", str(path), "--yes", "--json", "--concurrency", "1")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["counts"] == {"processing": 5}
    assert len(sandbox.gateway.orders) == 5
