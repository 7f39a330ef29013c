"""Whatever the gateway does, every row is reported truthfully; systemic problems stop the run."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from helpers import SECRET, Sandbox, invoke, payroll_rows, read_result, write_csv

from batchpay.sandbox.gateway import Faults, SandboxGateway
from batchpay.sandbox.server import serve_in_thread

ALL_FAULTS = {"429": 0.1, "503": 0.1, "hang": 0.1, "reset": 0.1, "garbage": 0.1, "500": 0.1}
# The status query's faults: not answered (503, garbage, hang, reset, 500) or refused with a
# code that is not "not found" (which proves nothing, so the row stays unknown).
QUERY_FAULTS = {"503": 0.15, "garbage": 0.1, "hang": 0.1, "reset": 0.05, "500": 0.05,
                "refuse": 0.05}  # fmt: skip


def assert_truthful(rows: list[dict[str, str]], sandbox: Sandbox) -> None:
    """No row the gateway placed is reported rejected or pending; no row it did not place is
    reported processing or paid."""
    orders = sandbox.gateway.orders
    for row in rows:
        if row["tradeNo"] in orders:
            assert row["outcome"] not in {"rejected", "pending"}, row
        else:
            assert row["outcome"] not in {"processing", "paid"}, row
        if row["outcome"] == "processing":
            assert row["platFormTradeNo"] in ("", orders[row["tradeNo"]].platform_trade_no)


def assert_placed_once(rows: list[dict[str, str]], sandbox: Sandbox) -> None:
    """Against the gateway's own record: one order per row, under the row's one tradeNo."""
    orders = sandbox.gateway.orders
    accounts = [order.fields["accountNo"] for order in orders.values()]
    assert len(accounts) == len(set(accounts)) == len(rows)
    assert {r["tradeNo"] for r in rows} == set(orders)
    assert {r["outcome"] for r in rows} == {"processing"}


@pytest.mark.parametrize(
    ("query", "query_faults"),
    [(True, {}), (False, {}), (True, QUERY_FAULTS)],
    ids=["query", "no-query", "query-faults"],
)
def test_all_faults_at_once_every_row_reported_truthfully_then_a_rerun_converges(
    sandbox: Sandbox,
    gateway_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    query: bool,
    query_faults: dict[str, float],
) -> None:
    if not query:
        monkeypatch.delenv("BATCHPAY_QUERY_URL")
    sandbox.faults = Faults(
        rates=ALL_FAULTS, query_rates=query_faults, every_request=True, jitter=0.005,
        hang_seconds=2, retry_after=0.01, seed=7,
    )  # fmt: skip
    path = write_csv(tmp_path / "p.csv", payroll_rows(150))
    output = tmp_path / "r.xlsx"
    args = ("run", str(path), "--yes", "--timeout", "0.3", "--max-attempts", "3", "-o", str(output))
    first = invoke(*args, "--concurrency", "16", "--stop-after-refusals", "0")
    assert first.exit_code in (0, 3, 4), first.output
    assert_truthful(read_result(output), sandbox)

    if query_faults:
        assert len(sandbox.gateway.query_requests) > 0  # the faulty query was exercised

    sandbox.faults = Faults()
    second = invoke(*args)
    assert second.exit_code == 0, second.output
    rows = read_result(output)
    assert_truthful(rows, sandbox)
    assert_placed_once(rows, sandbox)


def test_a_query_refused_with_another_code_than_not_found_leaves_the_row_unknown(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    # Placed, then no answer; the status query is refused with 1004 (not 1005): that proves
    # nothing, so the row is neither pending nor sent again.
    sandbox.faults = Faults(rates={"500": 1.0}, query_rates={"refuse": 1.0}, every_request=True)
    path = write_csv(tmp_path / "p.csv", payroll_rows(6))
    output = tmp_path / "r.csv"
    args = ("run", str(path), "--yes", "--json", "-o", str(output))
    first = invoke(*args)
    assert first.exit_code == 3, first.output
    assert json.loads(first.stdout)["counts"] == {"unknown": 6}
    assert len(sandbox.gateway.payout_requests) == 6  # never re-sent
    assert len(sandbox.gateway.query_requests) == 6  # asked once: asking again cannot help
    assert sorted(json.loads(first.stdout)["unknown_trade_nos"]) == sorted(sandbox.gateway.orders)
    assert_truthful(read_result(output), sandbox)

    sandbox.faults = Faults()
    second = invoke(*args)
    assert second.exit_code == 0, second.output
    assert_placed_once(read_result(output), sandbox)
    assert len(sandbox.gateway.payout_requests) == 6


def test_a_not_found_code_from_the_settings_is_the_only_proof_of_absence(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # A first run without a query URL leaves the rows unknown (placed, never answered); the
    # orders are then taken away, so the gateway truly has none and answers 1005. With
    # BATCHPAY_NOT_FOUND_CODES=2005 that 1005 proves nothing: the rows stay unknown, unsent.
    query_url = gateway_env["BATCHPAY_QUERY_URL"]
    monkeypatch.delenv("BATCHPAY_QUERY_URL")
    sandbox.faults = Faults(rates={"hang": 1.0}, every_request=True, hang_seconds=0.5)
    path = write_csv(tmp_path / "p.csv", payroll_rows(4))
    args = ("run", str(path), "--yes", "--json")
    first = invoke(*args, "--max-attempts", "1", "--timeout", "0.2")
    assert json.loads(first.stdout)["counts"] == {"unknown": 4}, first.output
    sandbox.gateway.orders.clear()
    sandbox.faults = Faults()
    monkeypatch.setenv("BATCHPAY_QUERY_URL", query_url)
    monkeypatch.setenv("BATCHPAY_NOT_FOUND_CODES", "2005")
    second = invoke(*args)
    assert second.exit_code == 3, second.output
    assert json.loads(second.stdout)["counts"] == {"unknown": 4}
    assert sandbox.gateway.orders == {}
    assert len(sandbox.gateway.payout_requests) == 4  # the first run's only
    assert len(sandbox.gateway.query_requests) == 4
    monkeypatch.setenv("BATCHPAY_NOT_FOUND_CODES", "1005")
    third = invoke(*args)
    assert third.exit_code == 0, third.output
    assert json.loads(third.stdout)["counts"] == {"processing": 4}
    assert len(sandbox.gateway.orders) == 4


@pytest.mark.parametrize("fault", ["503", "garbage", "hang"])
def test_a_failing_status_query_is_asked_again_and_nothing_is_paid_twice(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path, fault: str
) -> None:
    sandbox.faults = Faults(
        rates={"500": 1.0}, query_rates={fault: 1.0}, hang_seconds=2, retry_after=0.01
    )
    path = write_csv(tmp_path / "p.csv", payroll_rows(6))
    output = tmp_path / "r.csv"
    result = invoke("run", str(path), "--yes", "--timeout", "0.5", "-o", str(output))
    assert result.exit_code == 0, result.output
    rows = read_result(output)
    assert_placed_once(rows, sandbox)
    assert len(sandbox.gateway.payout_requests) == 6  # the query answered in the end: no re-send
    assert sorted(sandbox.gateway.query_requests) == sorted(2 * list(sandbox.gateway.orders))


def test_queries_used_up_leave_the_row_unknown_and_never_re_send(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox.faults = Faults(
        rates={"500": 1.0}, query_rates={"503": 1.0}, every_request=True, retry_after=0.01
    )
    path = write_csv(tmp_path / "p.csv", payroll_rows(3))
    result = invoke("run", str(path), "--yes", "--json", "--max-attempts", "2")
    assert result.exit_code == 3, result.output
    assert json.loads(result.stdout)["counts"] == {"unknown": 3}
    assert len(sandbox.gateway.payout_requests) == 3
    assert len(sandbox.gateway.query_requests) == 6


def test_consecutive_refusals_stop_the_run_and_leave_the_rest_pending(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox.gateway.rules["accountNo"] = r"9[0-9]+"  # the gateway refuses every account
    path = write_csv(tmp_path / "p.csv", payroll_rows(10))
    result = invoke(
        "run", str(path), "--yes", "--json", "--concurrency", "1", "--stop-after-refusals", "3"
    )
    assert result.exit_code == 4
    summary = json.loads(result.stdout)
    assert summary["counts"] == {"pending": 7, "rejected": 3}
    assert "3 payouts in a row were refused (last: 1004" in summary["stop_reason"]
    assert len(sandbox.gateway.payout_requests) == 3


def test_systematic_signature_errors_stop_the_run(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox.faults = Faults(rates={"bad_sign": 1.0}, every_request=True)
    path = write_csv(tmp_path / "p.csv", payroll_rows(30))
    result = invoke("run", str(path), "--yes", "--json", "--concurrency", "2")
    assert result.exit_code == 4
    summary = json.loads(result.stdout)
    assert summary["counts"] == {"pending": 30}
    assert summary["stop_reason"].startswith("the gateway refused with 1003")
    assert (
        "stopped early (the gateway refused with 1003"
        in invoke("run", str(path), "--yes", "--concurrency", "2").stdout
    )


def test_a_wrong_gateway_url_stops_at_once_and_rows_stay_pending(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("BATCHPAY_URL", sandbox.server.base_url + "/no/such/path")
    result = invoke("run", str(write_csv(tmp_path / "p.csv", payroll_rows(20))), "--yes", "--json")
    assert result.exit_code == 4
    summary = json.loads(result.stdout)
    assert summary["counts"] == {"pending": 20}
    assert "HTTP 404" in summary["stop_reason"]


def test_an_untrusted_certificate_sends_nothing_and_a_ca_bundle_is_trusted(
    gateway_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    gateway = SandboxGateway(gateway_env["BATCHPAY_MERCHANT_NO"], SECRET)
    with serve_in_thread(gateway, ssl_context=server_context) as server:
        monkeypatch.setenv("BATCHPAY_URL", server.payout_url)
        monkeypatch.setenv("BATCHPAY_QUERY_URL", server.query_url)
        path = write_csv(tmp_path / "p.csv", payroll_rows(5))
        refused = invoke("run", str(path), "--yes", "--json")
        assert refused.exit_code == 4
        summary = json.loads(refused.stdout)
        assert summary["counts"] == {"pending": 5}
        assert summary["stop_reason"].startswith("tls:")
        assert "--ca-bundle" in summary["stop_reason"]
        assert gateway.payout_requests == []
        trusted = invoke("run", str(path), "--yes", "--json", "--ca-bundle", str(bundle))
        assert trusted.exit_code == 0, trusted.output
        assert json.loads(trusted.stdout)["counts"] == {"processing": 5}


class ClaimWatchingGateway(SandboxGateway):
    """A sandbox that, as each payout request arrives, reads the journal the way a process
    started after a crash at that moment would: through a connection of its own."""

    def __init__(self, journal: Path, merchant_no: str, secret: str, faults: Faults) -> None:
        super().__init__(merchant_no, secret, faults=faults)
        self.journal = journal
        self.unclaimed: list[str] = []  # tradeNos that arrived before their claim was committed

    async def handle_payout(self, request: web.Request) -> web.StreamResponse:
        trade_no = str((await request.json()).get("tradeNo", ""))
        with contextlib.closing(sqlite3.connect(f"file:{self.journal}?mode=ro", uri=True)) as db:
            found = db.execute(
                "SELECT in_flight, outcome FROM rows WHERE trade_no = ?", (trade_no,)
            ).fetchone()
        if found is None or (found[0] != 1 and found[1] == "pending"):
            self.unclaimed.append(trade_no)
        return await super().handle_payout(request)


@contextlib.contextmanager
def another_writer(journal: Path) -> Iterator[None]:
    """Another process's writes to the journal (as `batchpay listen` makes): it holds the
    write lock for 30 ms of every 50, so the run's commits wait for it."""
    stop = threading.Event()

    def write() -> None:
        with contextlib.closing(sqlite3.connect(journal, isolation_level=None)) as db:
            while not stop.is_set():
                db.execute("BEGIN IMMEDIATE")
                time.sleep(0.03)
                db.execute("COMMIT")
                time.sleep(0.02)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def test_no_request_leaves_before_its_rows_claim_is_committed(
    gateway_env: dict[str, str],
    journal_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Claims are committed as the rows are handed out, and here they often wait for another
    # writer: a crash at the moment any request arrives must find its row in
    # flight (unknown), never pending.
    faults = Faults(rates={"503": 0.2}, jitter=0.01, retry_after=0.01, seed=11)
    merchant = gateway_env["BATCHPAY_MERCHANT_NO"]
    gateway = ClaimWatchingGateway(journal_path, merchant, SECRET, faults)
    path = write_csv(tmp_path / "p.csv", payroll_rows(400))
    args = ("run", str(path), "--yes", "--concurrency", "24", "--max-attempts", "8")
    # The batch's tradeNos first (a dry run plans and commits them), then the sending.
    assert invoke(*args, "--dry-run").exit_code == 0
    with serve_in_thread(gateway) as server, another_writer(journal_path):
        monkeypatch.setenv("BATCHPAY_URL", server.payout_url)
        monkeypatch.setenv("BATCHPAY_QUERY_URL", server.query_url)
        result = invoke(*args, "-o", str(tmp_path / "r.csv"))
    assert result.exit_code == 0, result.output
    assert len(gateway.orders) == 400
    assert len(gateway.payout_requests) > 400  # the 503s were retried
    assert gateway.unclaimed == []
