"""Status callbacks, reconcile, status and report: every row ends with certainty."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import SECRET, Sandbox, invoke, payroll_rows, post, read_result, serve_app, write_csv

from batchpay.config import Protocol
from batchpay.gateway.callbacks import MAX_BODY, callback_app, server_options
from batchpay.sandbox.gateway import FAILED, OK, Settlement
from batchpay.signing import sign


@pytest.fixture
def listener(gateway_env: dict[str, str], journal_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[str]:  # fmt: skip
    """`batchpay listen`'s app on loopback, sharing the run's journal file."""
    app = callback_app(journal_path, SECRET, Protocol(), "/notify")
    with serve_app(app, **server_options()) as base:
        monkeypatch.setenv("BATCHPAY_NOTIFY_URL", base + "/notify")
        yield base


def signed(fields: dict[str, object], secret: str = SECRET) -> bytes:
    fields = {**fields, "sign": sign({k: str(v) for k, v in fields.items()}, secret)}
    return json.dumps(fields).encode()


def wait_until(condition: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_callbacks_take_the_batch_to_paid_and_failed_exactly_as_the_gateway_decided(
    sandbox: Sandbox, gateway_env: dict[str, str], listener: str, tmp_path: Path
) -> None:
    sandbox.gateway.settlement = Settlement(
        delay=1.0, fail_rate=0.3, repeats=2, out_of_order=True, seed=4
    )
    path = write_csv(tmp_path / "p.csv", payroll_rows(30))
    run = invoke("run", str(path), "--yes", "--json")
    assert run.exit_code == 0, run.output
    batch = json.loads(run.stdout)["batch"]
    # Two final callbacks and one stale processing callback per order, all answered OK.
    wait_until(lambda: len(sandbox.gateway.callbacks_sent) == 90)
    assert {answer for _, _, answer in sandbox.gateway.callbacks_sent} == {200}

    output = tmp_path / "final.xlsx"
    assert invoke("report", batch, "-o", str(output)).exit_code == 0
    rows = read_result(output)
    decided = {t: o.status for t, o in sandbox.gateway.orders.items()}
    assert {r["tradeNo"]: r["status"] for r in rows} == decided
    for row in rows:
        assert row["outcome"] == ("paid" if decided[row["tradeNo"]] == OK else "failed")
        assert row["Account No"].startswith("00")  # the input columns, from the journal
    assert FAILED in decided.values() and OK in decided.values()

    status = json.loads(invoke("status", batch, "--json").stdout)["batches"][0]
    assert status["counts"] == {
        "paid": sum(s == OK for s in decided.values()),
        "failed": sum(s == FAILED for s in decided.values()),
    }
    # Re-running the same file reports the latest states and sends nothing.
    again = invoke("run", str(path), "--yes", "--json")
    assert again.exit_code == 3  # some rows failed
    assert json.loads(again.stdout)["requests"] == 0
    assert json.loads(again.stdout)["counts"] == status["counts"]


def test_forged_unknown_and_contradicting_callbacks_change_nothing_silently(
    sandbox: Sandbox, gateway_env: dict[str, str], listener: str, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "p.csv", payroll_rows(2))
    run = invoke("run", str(path), "--yes", "--json")
    batch = json.loads(run.stdout)["batch"]
    first, second = sandbox.gateway.orders.values()
    url = listener + "/notify"
    base = {"status": OK, "message": "Success", "platFormTradeNo": first.platform_trade_no,
            "tradeNo": first.trade_no, "amount": 1000,
            "timestamp": int(time.time() * 1000)}  # fmt: skip

    assert post(url, signed(base, secret="forged"))[0] == 401
    assert post(url, signed({**base, "tradeNo": "NO-SUCH"}))[0] == 404
    assert post(url, b"{not json")[0] == 400
    assert post(url, b"x" * (MAX_BODY + 1))[0] == 413
    counts = json.loads(invoke("status", batch, "--json").stdout)["batches"][0]["counts"]
    assert counts == {"processing": 2}

    assert post(url, signed(base)) == (200, "OK")
    assert post(url, signed(base)) == (200, "OK")  # a repeat changes nothing more
    assert post(url, signed({**base, "status": "0015"})) == (200, "OK")  # stale: ignored
    assert post(url, signed({**base, "status": FAILED})) == (200, "OK")  # contradiction
    wrong_amount = {**base, "tradeNo": second.trade_no, "amount": 999999}
    assert post(url, signed(wrong_amount)) == (200, "OK")

    output = tmp_path / "r.csv"
    invoke("report", batch, "-o", str(output))
    rows = {r["tradeNo"]: r for r in read_result(output)}
    assert rows[first.trade_no]["outcome"] == "paid"
    assert (
        "flagged: callback status 0005 contradicts the recorded final status 0000"
        in rows[first.trade_no]["errors"]
    )
    assert rows[second.trade_no]["outcome"] == "processing"
    assert "callback amount 999999 differs" in rows[second.trade_no]["errors"]
    summary = json.loads(invoke("status", batch, "--json").stdout)["batches"][0]
    assert summary["flagged"] == 2
    with urllib.request.urlopen(listener + "/health", timeout=5) as health:
        assert json.loads(health.read()) == {"status": "ok"}


def test_reconcile_alone_resolves_processing_and_unknown_rows(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchpay.sandbox.gateway import Faults

    sandbox.gateway.settlement = Settlement(delay=0, fail_rate=0.25, notify=False, seed=9)
    sandbox.faults = Faults(rates={"hang": 0.3}, hang_seconds=2, seed=2)
    monkeypatch.delenv("BATCHPAY_QUERY_URL")  # the run cannot ask: hung rows stay unknown
    path = write_csv(tmp_path / "p.csv", payroll_rows(20))
    run = invoke("run", str(path), "--yes", "--json", "--timeout", "0.3", "--max-attempts", "1")
    summary = json.loads(run.stdout)
    assert summary["counts"].get("unknown", 0) > 0 and run.exit_code == 3
    batch = summary["batch"]
    # One unknown row never reached the gateway's books: reconcile must make it pending.
    output = tmp_path / "before.csv"
    invoke("report", batch, "-o", str(output))
    unknown = [r["tradeNo"] for r in read_result(output) if r["outcome"] == "unknown"]
    lost = unknown[0]
    del sandbox.gateway.orders[lost]

    assert invoke("reconcile", batch).exit_code == 2  # no query URL: a configuration error
    monkeypatch.setenv("BATCHPAY_QUERY_URL", sandbox.server.query_url)
    result = invoke("reconcile", batch, "--json")
    # A row is pending again: exit 4, "run again to resume", as the CLI contract says.
    assert result.exit_code == 4, result.output
    invoke("report", batch, "-o", str(output))
    rows = {r["tradeNo"]: r for r in read_result(output)}
    assert rows[lost]["outcome"] == "pending"
    for trade_no, order in sandbox.gateway.orders.items():
        assert rows[trade_no]["outcome"] == ("paid" if order.status == OK else "failed")

    rerun = invoke("run", str(path), "--yes", "--json")
    assert json.loads(rerun.stdout)["requests"] == 1  # only the lost row is sent again
    assert lost in sandbox.gateway.orders


def test_status_lists_every_batch_and_report_refuses_an_unknown_batch(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    invoke("run", str(write_csv(tmp_path / "a.csv", payroll_rows(2))), "--yes")
    invoke("run", str(write_csv(tmp_path / "b.csv", payroll_rows(3, start=10))), "--yes")
    listed = invoke("status")
    assert listed.exit_code == 0
    assert listed.stdout.count("batch ") == 2 and "processing" in listed.stdout
    missing = invoke("report", "nosuchbatch", "-o", str(tmp_path / "x.csv"))
    assert missing.exit_code == 1 and "no batch 'nosuchbatch'" in missing.stderr
