"""The ``partial`` outcome (issue 15, part 5): a placed order whose ``data.status`` is one of
``BATCHPAY_PARTIAL_STATUSES`` (default ``0001``, the family's "partial payment") was paid in
part. It is final (never sent or asked about again), exit 3, and its result says how much was
paid and not to pay the whole amount again; read as ``failed`` it invited exactly that."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from helpers import (
    SECRET,
    Sandbox,
    batchpay,
    invoke,
    new_user_env,
    payroll_rows,
    post,
    read_result,
    sandbox_process,
    serve_app,
    write_csv,
)

from batchpay.config import Protocol, default_settings, protocol_from_env
from batchpay.errors import ConfigError
from batchpay.gateway.callbacks import callback_app, callback_change, server_options
from batchpay.gateway.client import parse_envelope
from batchpay.journal.rows import CallbackTarget
from batchpay.outcomes import FINAL, PLACED, Outcome, placed_outcome, reason
from batchpay.results import HIGHLIGHT
from batchpay.sandbox.gateway import OK, PARTIAL, PROCESSING, Faults, Settlement
from batchpay.settings_file import KEYS
from batchpay.signing import sign

DO_NOT_PAY_AGAIN = "do not pay the whole amount again"


def wait_until(condition: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def settled(sandbox: Sandbox, count: int) -> bool:
    orders = sandbox.gateway.orders.values()
    return len(orders) == count and all(o.status != PROCESSING for o in orders)


def signed(fields: dict[str, object], secret: str = SECRET) -> bytes:
    fields = {**fields, "sign": sign({k: str(v) for k, v in fields.items()}, secret)}
    return json.dumps(fields).encode()


# --- the setting and the pure rules ------------------------------------------------------


def test_partial_statuses_default_to_0001_and_are_read_from_the_setting() -> None:
    assert protocol_from_env({}).partial_statuses == {"0001"}
    assert protocol_from_env({"BATCHPAY_PARTIAL_STATUSES": "0007, 0008"}).partial_statuses == {
        "0007", "0008",
    }  # fmt: skip
    assert default_settings()["BATCHPAY_PARTIAL_STATUSES"] == "0001"
    assert KEYS["partial_statuses"] == "BATCHPAY_PARTIAL_STATUSES"


@pytest.mark.parametrize(
    "env",
    [
        {"BATCHPAY_PARTIAL_STATUSES": "0000"},
        {"BATCHPAY_PARTIAL_STATUSES": "0001,0015"},
        {"BATCHPAY_PARTIAL_STATUSES": "0016", "BATCHPAY_PROCESSING_STATUSES": "0015,0016"},
    ],
)
def test_a_status_cannot_mean_partly_paid_and_paid_or_processing(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="BATCHPAY_PARTIAL_STATUSES"):
        protocol_from_env(env)


def test_partial_is_placed_final_and_its_reason_says_not_to_pay_the_whole_again() -> None:
    assert Outcome.PARTIAL in PLACED and Outcome.PARTIAL in FINAL
    assert placed_outcome("0001", Protocol()) is Outcome.PARTIAL
    said = reason(Outcome.PARTIAL, "0000", "success", "0001", "", amount=1000, paid="500")
    assert said.startswith("partly paid: 500 of 1000 paid;") and DO_NOT_PAY_AGAIN in said
    unsaid = reason(Outcome.PARTIAL, "0000", "success", "0001", "", amount=1000)
    assert "did not say how much" in unsaid and DO_NOT_PAY_AGAIN in unsaid


def envelope(pay_amount: object) -> bytes:
    data = {"tradeNo": "T1", "status": "0001", "payAmount": pay_amount}
    return json.dumps({"code": "0000", "msg": "success", "data": data}).encode()


@pytest.mark.parametrize(
    ("given", "read"),
    [
        pytest.param("500", "500", id="whole"),
        pytest.param("500.5", "500.5", id="one-decimal"),
        pytest.param("500.50", "500.50", id="two-decimals"),
        pytest.param(500, "500", id="json-number"),
        pytest.param(500.5, "500.5", id="json-number-with-a-fraction"),
        pytest.param("12e3", "", id="exponent"),
        pytest.param("-5", "", id="negative"),
        pytest.param("abc", "", id="letters"),
        pytest.param("1,000", "", id="thousands-separator"),
        pytest.param(" 5", "", id="space"),
        pytest.param("5.123", "", id="three-decimals"),
        pytest.param("\u0665", "", id="non-ascii-digit"),
        pytest.param(True, "", id="boolean"),
        pytest.param({"v": 5}, "", id="object"),
    ],
)
def test_pay_amount_is_read_only_in_an_amounts_form(given: object, read: str) -> None:
    answer = parse_envelope(200, envelope(given), None)
    assert answer.pay_amount == read
    # A value that is not an amount is noted (for the attempt's record), never shown.
    assert bool(answer.note) is (read == "")
    assert parse_envelope(200, envelope(""), None).note == ""  # none given: nothing to note


def test_a_pay_amount_number_written_with_an_exponent_is_not_an_amount() -> None:
    body = b'{"code": "0000", "data": {"status": "0001", "payAmount": 12e3}}'
    answer = parse_envelope(200, body, None)
    assert (answer.pay_amount, answer.note) == ("", "payAmount '12e3' is not an amount: ignored")


def test_a_callback_makes_a_processing_row_partial_and_nothing_moves_it_back() -> None:
    fields = {"status": "0001", "amount": "1000", "platFormTradeNo": "P1", "payAmount": "400"}
    row = CallbackTarget(Outcome.PROCESSING, "0015", 1000, "P1")
    change = callback_change(row, fields, Protocol())
    assert (change.outcome, change.pay_amount, change.effect) == (Outcome.PARTIAL, "400", "applied")
    partial = CallbackTarget(Outcome.PARTIAL, "0001", 1000, "P1")
    stale = callback_change(partial, {**fields, "status": "0015"}, Protocol())
    assert stale.outcome is None and stale.effect == "ignored-not-final"
    paid = callback_change(partial, {**fields, "status": "0000"}, Protocol())
    assert paid.outcome is None and "contradicts" in paid.flag
    garbled = callback_change(row, {**fields, "payAmount": "12e3"}, Protocol())
    assert garbled.outcome is Outcome.PARTIAL and garbled.pay_amount == ""
    assert "payAmount '12e3' is not an amount" in garbled.effect
    # Under a setting without 0001, the same callback is a failure, as before.
    failed = callback_change(row, fields, Protocol(partial_statuses=frozenset()))
    assert failed.outcome is Outcome.FAILED and failed.pay_amount == ""


# --- through the command line, against the sandbox ---------------------------------------


def test_reconcile_finds_partly_paid_rows_and_no_later_run_sends_or_asks_about_them(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox.gateway.settlement = Settlement(delay=0, partial_rate=0.5, notify=False, seed=3)
    path = write_csv(tmp_path / "p.csv", payroll_rows(8))
    run = invoke("run", str(path), "--yes", "--json", "-o", str(tmp_path / "p.result.csv"))
    assert run.exit_code == 0, run.output
    batch = json.loads(run.stdout)["batch"]
    wait_until(lambda: settled(sandbox, 8))
    decided = {t: o.status for t, o in sandbox.gateway.orders.items()}
    assert set(decided.values()) == {OK, PARTIAL}

    reconciled = invoke("reconcile", batch, "--json")
    assert reconciled.exit_code == 3, reconciled.output
    counts = json.loads(reconciled.stdout)["batches"][0]["counts"]
    partly = sum(s == PARTIAL for s in decided.values())
    assert counts == {"paid": 8 - partly, "partial": partly}

    for suffix in (".xlsx", ".csv"):
        output = tmp_path / f"final{suffix}"
        assert invoke("report", batch, "-o", str(output)).exit_code == 0
        rows = read_result(output)
        assert list(rows[0])[-2:] == ["amountValue", "paidAmount"]
        for row in rows:
            order = sandbox.gateway.orders[row["tradeNo"]]
            if order.status == PARTIAL:
                half = str(int(row["Amount"]) // 2)
                assert (row["outcome"], row["status"], row["paidAmount"]) == (
                    "partial", PARTIAL, half,
                )  # fmt: skip
                assert row["reason"].startswith(f"partly paid: {half} of {row['Amount']} paid")
                assert DO_NOT_PAY_AGAIN in row["reason"]
            else:
                assert (row["outcome"], row["paidAmount"], row["reason"]) == ("paid", "", "")

    # Final: a run of the same file sends nothing, asks nothing, and still exits 3.
    payouts, queries = len(sandbox.gateway.payout_requests), len(sandbox.gateway.query_requests)
    again = invoke("run", str(path), "--yes", "--json", "-o", str(tmp_path / "again.csv"))
    assert again.exit_code == 3, again.output
    summary = json.loads(again.stdout)
    assert summary["counts"] == counts and summary["requests"] == 0
    assert any("partly paid" in step and DO_NOT_PAY_AGAIN in step.lower()
               for step in summary["next_steps"])  # fmt: skip
    assert len(sandbox.gateway.payout_requests) == payouts
    assert invoke("reconcile", batch, "--json").exit_code == 0  # nothing left to ask about
    assert len(sandbox.gateway.query_requests) == queries
    status = json.loads(invoke("status", batch, "--json").stdout)["batches"][0]
    assert status["counts"] == counts and status["amounts"]["partial"] == sum(
        int(r["Amount"]) for r in read_result(tmp_path / "again.csv") if r["outcome"] == "partial"
    )


def test_a_run_asking_after_an_unknown_outcome_records_the_row_partial(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    # Placed, then a 500: the run asks the status query, which says 0001 and how much.
    sandbox.gateway.settlement = Settlement(delay=0, partial_rate=1.0, notify=False)
    sandbox.faults = Faults(rates={"500": 1.0})
    path = write_csv(tmp_path / "p.csv", payroll_rows(2))
    output = tmp_path / "r.xlsx"
    run = invoke("run", str(path), "--yes", "--json", "-o", str(output))
    assert run.exit_code == 3, run.output
    assert json.loads(run.stdout)["counts"] == {"partial": 2}
    rows = read_result(output)
    assert [r["paidAmount"] for r in rows] == ["500", "500"]  # half of 1000 and of 1001
    workbook = openpyxl.load_workbook(output)
    results = workbook["Results"]
    paid_cells = [results.cell(row=r, column=results.max_column) for r in (2, 3)]
    assert [(c.value, c.data_type) for c in paid_cells] == [(500, "n"), (500, "n")]
    # A partly paid row stands out, as failed and unknown rows do.
    assert {c.fill.fgColor.rgb for c in results[2]} == {"FF" + HIGHLIGHT["partial"][1:]}
    workbook.close()
    assert len(sandbox.gateway.payout_requests) == 2  # one each: never sent again


def test_a_garbled_pay_amount_is_not_shown_and_is_noted(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "p.csv", payroll_rows(3))
    run = invoke("run", str(path), "--yes", "--json", "-o", str(tmp_path / "r.csv"))
    batch = json.loads(run.stdout)["batch"]
    for order, garbled in zip(sandbox.gateway.orders.values(), ("12e3", "-5", "abc"), strict=True):
        order.pay_amount, order.status = garbled, PARTIAL
    assert invoke("reconcile", batch).exit_code == 3
    output = tmp_path / "final.csv"
    assert invoke("report", batch, "-o", str(output)).exit_code == 0
    rows = read_result(output)
    assert [r["outcome"] for r in rows] == ["partial"] * 3
    assert [r["paidAmount"] for r in rows] == ["", "", ""]
    assert all("did not say how much" in r["reason"] for r in rows)
    with sqlite3.connect(journal_path) as db:
        kept = db.execute("SELECT DISTINCT pay_amount FROM rows").fetchall()
        details = [d for (d,) in db.execute("SELECT detail FROM attempts WHERE kind = 'query'")]
    assert kept == [("",)]
    assert sorted(details) == sorted(
        f"payAmount {v!r} is not an amount: ignored" for v in ("12e3", "-5", "abc")
    )


def test_another_partial_status_by_setting(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(tmp_path / "p.csv", payroll_rows(2))
    run = invoke("run", str(path), "--yes", "--json", "-o", str(tmp_path / "r.csv"))
    batch = json.loads(run.stdout)["batch"]
    first, second = sandbox.gateway.orders.values()
    first.status, first.pay_amount = "0007", "300"
    second.status = PARTIAL  # 0001: under this setting, a failure like any other
    monkeypatch.setenv("BATCHPAY_PARTIAL_STATUSES", "0007")
    assert invoke("reconcile", batch).exit_code == 3
    output = tmp_path / "final.csv"
    assert invoke("report", batch, "-o", str(output)).exit_code == 0
    rows = {r["tradeNo"]: r for r in read_result(output)}
    assert (rows[first.trade_no]["outcome"], rows[first.trade_no]["paidAmount"]) == (
        "partial", "300",
    )  # fmt: skip
    assert (rows[second.trade_no]["outcome"], rows[second.trade_no]["paidAmount"]) == ("failed", "")


@pytest.fixture
def listener(gateway_env: dict[str, str], journal_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[str]:  # fmt: skip
    """`batchpay listen`'s app on loopback, sharing the run's journal file."""
    app = callback_app(journal_path, SECRET, Protocol(), "/notify")
    with serve_app(app, **server_options()) as base:
        monkeypatch.setenv("BATCHPAY_NOTIFY_URL", base + "/notify")
        yield base


def test_a_callback_makes_the_row_partial_with_its_amount_and_a_stale_one_changes_nothing(
    sandbox: Sandbox, gateway_env: dict[str, str], listener: str, tmp_path: Path
) -> None:
    # Each final callback twice, then a stale "processing" one: the rows stay partial.
    sandbox.gateway.settlement = Settlement(
        delay=0.2, partial_rate=1.0, repeats=2, out_of_order=True
    )
    path = write_csv(tmp_path / "p.csv", payroll_rows(3))
    run = invoke("run", str(path), "--yes", "--json", "-o", str(tmp_path / "r.csv"))
    assert run.exit_code == 0, run.output
    batch = json.loads(run.stdout)["batch"]
    wait_until(lambda: len(sandbox.gateway.callbacks_sent) == 9)
    assert {answer for _, _, answer in sandbox.gateway.callbacks_sent} == {200}
    first = next(iter(sandbox.gateway.orders.values()))
    paid_after_all = {"status": OK, "message": "Success", "platFormTradeNo":
                      first.platform_trade_no, "tradeNo": first.trade_no, "amount": 1000,
                      "timestamp": int(time.time() * 1000)}  # fmt: skip
    assert post(listener + "/notify", signed(paid_after_all)) == (200, "OK")  # flagged

    output = tmp_path / "final.xlsx"
    assert invoke("report", batch, "-o", str(output)).exit_code == 0
    rows = read_result(output)
    assert [r["outcome"] for r in rows] == ["partial"] * 3
    assert [r["paidAmount"] for r in rows] == ["500", "500", "501"]
    assert "contradicts the recorded final status 0001" in rows[0]["errors"]
    again = invoke("run", str(path), "--yes", "--json", "-o", str(tmp_path / "again.csv"))
    assert again.exit_code == 3 and json.loads(again.stdout)["requests"] == 0


def test_the_sandbox_command_plays_partial_payments(tmp_path: Path) -> None:
    env = new_user_env(tmp_path / "home")
    payroll = write_csv(tmp_path / "p.csv", payroll_rows(3))
    options = ("--port", "0", "--settle-after", "0", "--partial-rate", "1", "--no-callbacks")
    with sandbox_process(env, tmp_path, *options) as (exports, _):
        practice = {**env, **exports}
        done = batchpay(practice, tmp_path, "run", str(payroll), "--yes", "--json")
        assert done.returncode == 0, done.stderr
        asked = batchpay(practice, tmp_path, "reconcile", "--json")
    assert asked.returncode == 3, asked.stderr
    assert json.loads(asked.stdout)["batches"][0]["counts"] == {"partial": 3}


def test_fail_and_partial_rates_over_one_are_a_usage_error() -> None:
    rates = ("--fail-rate", "0.6", "--partial-rate", "0.5")
    refused = invoke("sandbox", "--settle-after", "0", *rates)
    assert refused.exit_code == 2
    assert "at most 1 together" in refused.output
