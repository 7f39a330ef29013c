"""The result file's ``reason`` column: in plain words, why a row is not paid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import Sandbox, invoke, payroll_rows, read_result, write_csv

from batchpay.outcomes import Outcome, reason
from batchpay.sandbox.gateway import FAILED, OK, Settlement

REPEAT_MSG = (
    "same payout placed in batch 3f2a9c81d07e as tradeNo 202611250700001234567890 (paid) at "
    "2026-11-25T07:00:01.000+00:00; --allow-repeat sends it again"
)
UNKNOWN = "unknown: the gateway may hold this order; do not pay by hand, run again or reconcile"


@pytest.mark.parametrize(
    ("outcome", "code", "msg", "status", "message", "expected"),
    [
        pytest.param(Outcome.PAID, "0000", "success", "0000", "Success", "", id="paid"),
        pytest.param(Outcome.PROCESSING, "0000", "success", "0015", "Processing", "",
                     id="processing"),
        pytest.param(Outcome.PROCESSING, "1002", "duplicate tradeNo", "", "", "",
                     id="processing-after-duplicate"),
        pytest.param(Outcome.FAILED, "0000", "success", "0005", "Failed",
                     "payout failed: 0005 Failed", id="failed-says-its-own-status-not-success"),
        pytest.param(Outcome.FAILED, "0000", "success", "0007", "",
                     "payout failed: 0007", id="failed-without-message"),
        pytest.param(Outcome.REJECTED, "1004", "parameter error", "", "",
                     "refused: 1004 parameter error", id="rejected"),
        pytest.param(Outcome.REJECTED, "", "http 403: forbidden", "", "",
                     "refused: http 403: forbidden", id="rejected-without-envelope"),
        pytest.param(Outcome.REJECTED, "", "", "", "", "refused: no reason given",
                     id="rejected-silently"),
        pytest.param(Outcome.INVALID, "", "", "", "", "not sent: invalid (see errors)",
                     id="invalid"),
        pytest.param(Outcome.PENDING, "", "", "", "", "not sent yet: run again", id="pending"),
        pytest.param(Outcome.PENDING, "1003", "signature error", "", "",
                     "not sent yet: run again", id="pending-after-systemic-refusal"),
        pytest.param(Outcome.UNKNOWN, "", "timeout", "", "", UNKNOWN, id="unknown"),
        pytest.param(Outcome.UNKNOWN, "1004", "parameter error", "", "", UNKNOWN,
                     id="unknown-refused-after-a-timeout"),
        pytest.param(Outcome.REPEAT, "", REPEAT_MSG, "0000", "", "not sent: the same payout was "
                     "placed in batch 3f2a9c81d07e (tradeNo 202611250700001234567890)",
                     id="repeat-names-the-batch"),
        pytest.param(Outcome.REPEAT, "", "", "", "",
                     "not sent: the same payout was placed by another batch (see msg)",
                     id="repeat-without-msg"),
    ],
)  # fmt: skip
def test_reason_says_in_plain_words_why_a_row_is_not_paid(
    outcome: Outcome, code: str, msg: str, status: str, message: str, expected: str
) -> None:
    assert reason(outcome, code, msg, status, message) == expected


def test_every_outcome_has_a_reason_and_only_paid_and_processing_are_empty() -> None:
    empty = {o for o in Outcome if reason(o, "", "", "", "") == ""}
    assert empty == {Outcome.PAID, Outcome.PROCESSING}


def test_run_and_report_give_each_row_its_reason_and_amount(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox.gateway.settlement = Settlement(delay=0, fail_rate=0.4, notify=False, seed=3)
    rows = payroll_rows(10)
    rows[2][6] = "99"  # below the minimum amount: invalid
    path = write_csv(tmp_path / "p.csv", rows)
    output = tmp_path / "run.csv"
    run = invoke("run", str(path), "--yes", "--skip-invalid", "-o", str(output), "--json")
    assert run.exit_code == 3, run.output
    batch = json.loads(run.stdout)["batch"]
    sent = read_result(output)
    assert [r["reason"] for r in sent] == [
        "not sent: invalid (see errors)" if i == 2 else "" for i in range(10)
    ]
    assert [r["amountValue"] for r in sent] == ["" if i == 2 else str(1000 + i) for i in range(10)]
    # Issue 15 adds paidAmount after them (empty: no row here is partly paid).
    assert list(sent[0])[-4:] == ["errors", "reason", "amountValue", "paidAmount"]
    assert {r["paidAmount"] for r in sent} == {""}

    assert invoke("reconcile", batch).exit_code == 3  # some payouts failed
    report = tmp_path / "report.csv"
    assert invoke("report", batch, "-o", str(report)).exit_code == 0
    orders = {t: o.status for t, o in sandbox.gateway.orders.items()}
    assert FAILED in orders.values() and OK in orders.values()
    for i, row in enumerate(read_result(report)):
        if i == 2:
            assert (row["outcome"], row["reason"]) == ("invalid", "not sent: invalid (see errors)")
        elif orders[row["tradeNo"]] == OK:
            assert (row["outcome"], row["reason"]) == ("paid", "")
        else:
            # The raw codes stay in their columns; the reason is the payout's own state.
            assert row["outcome"] == "failed" and row["status"] == FAILED
            assert row["reason"] == f"payout failed: {FAILED} {row['message']}".strip()
        assert row["amountValue"] == ("" if i == 2 else str(1000 + i))


def test_a_repeat_row_names_the_batch_that_placed_it(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    first = invoke("run", str(write_csv(tmp_path / "a.csv", payroll_rows(3))), "--yes", "--json")
    assert first.exit_code == 0, first.output
    earlier = json.loads(first.stdout)["batch"]
    # Row 7 fixed and the whole file sent again: the three paid rows are repeats.
    output = tmp_path / "b.result.csv"
    again = invoke("run", str(write_csv(tmp_path / "b.csv", payroll_rows(4))), "--yes",
                   "-o", str(output))  # fmt: skip
    assert again.exit_code == 0, again.output
    rows = read_result(output)
    assert [r["outcome"] for r in rows] == ["repeat"] * 3 + ["processing"]
    for row in rows[:3]:
        assert row["reason"].startswith(
            f"not sent: the same payout was placed in batch {earlier} (tradeNo "
        )
    assert rows[3]["reason"] == ""
