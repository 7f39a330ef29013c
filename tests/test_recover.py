"""A lost journal is noticed before a run, and rebuilt from a result file by `recover`."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from helpers import MERCHANT, Sandbox, invoke, payroll_rows, read_result, serve_app, write_csv

from batchpay.config import gateway_account
from batchpay.journal.store import Journal
from batchpay.result_file import read_summary
from batchpay.sandbox.gateway import Faults


def forget(journal: Path) -> None:
    """The journal is lost: the file and its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{journal}{suffix}").unlink(missing_ok=True)


def orders_per_row(sandbox: Sandbox) -> dict[str, int]:
    """The sandbox's own record: how many orders each account number has."""
    counts: dict[str, int] = {}
    for order in sandbox.gateway.orders.values():
        counts[order.fields["accountNo"]] = counts.get(order.fields["accountNo"], 0) + 1
    return counts


def rewrite_csv(path: Path, change: dict[tuple[int, str], str]) -> None:
    """Change cells of a CSV result file ((data row index, column) -> value), as a person
    editing it would."""
    with path.open(encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.DictReader(stream))
    for (index, column), value in change.items():
        rows[index][column] = value
    with path.open("w", encoding="utf-8-sig", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_lost_journal_refuses_the_rerun_and_recover_lets_it_pay_each_row_once(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path,
    suffix: str,
) -> None:  # fmt: skip
    # Some rows meet a 503 on their only attempt and stay pending: they were never placed.
    sandbox.faults = Faults(rates={"503": 0.4}, seed=5)
    path = write_csv(tmp_path / "payroll.csv", payroll_rows(15))
    output = tmp_path / f"payroll.result{suffix}"
    first = invoke("run", str(path), "-o", str(output), "--yes", "--json", "--max-attempts", "1")
    summary = json.loads(first.stdout)
    placed = len(sandbox.gateway.orders)
    assert summary["counts"]["pending"] == 15 - placed and 0 < placed < 15
    before = {r["Account No"]: r["tradeNo"] for r in read_result(output)}

    forget(journal_path)
    refused = invoke("run", str(path), "-o", str(output), "--yes")
    assert refused.exit_code == 1
    assert f"does not know these {placed + summary['counts']['pending']} tradeNo(s)" in (
        refused.output
    )
    assert f"batchpay recover {output}" in refused.output
    assert len(sandbox.gateway.orders) == placed  # nothing sent
    with Journal(journal_path) as journal:  # nothing planned
        assert journal.db.execute("SELECT count(*) FROM batches").fetchone()[0] == 0

    sandbox.faults = Faults()
    recovered = invoke("recover", str(output), "--json")
    done = json.loads(recovered.stdout)
    assert done["batch"] == summary["batch"]  # the same batch a re-run computes
    assert done["counts"] == {"pending": 15 - placed, "processing": placed}
    assert recovered.exit_code == 4  # pending rows: run again
    assert done["queried"] == 15
    # The Summary names the input to run again; a CSV has none.
    assert done["source"] == (str(path) if suffix == ".xlsx" else "")

    rerun = invoke("run", str(path), "-o", str(output), "--yes", "--json")
    again = json.loads(rerun.stdout)
    assert rerun.exit_code == 0, rerun.output
    assert again["batch"] == summary["batch"]
    assert again["requests"] == 15 - placed  # only the rows the gateway never saw
    assert orders_per_row(sandbox) == {account: 1 for account in before}
    after = {r["Account No"]: r["tradeNo"] for r in read_result(output)}
    assert after == before  # every row kept its tradeNo
    assert set(sandbox.gateway.orders) == set(before.values())


def test_recover_prints_what_it_did_and_the_next_step(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "payroll.csv", payroll_rows(4))
    assert invoke("run", str(path), "--yes").exit_code == 0
    forget(journal_path)
    shown = invoke("recover", str(tmp_path / "payroll.result.csv"))
    assert shown.exit_code == 0, shown.output
    assert "rebuilt batch" in shown.output and "4 rows" in shown.output
    assert "processing        4" in shown.output
    assert "next: nothing left to send" in shown.output
    assert "records no content hash (a CSV)" in shown.stderr
    assert invoke("run", str(path), "--yes").exit_code == 0
    assert len(sandbox.gateway.orders) == 4


def test_a_lost_wal_after_a_kill_loses_answers_never_the_batch(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path
) -> None:
    """The measured case: only the -wal is lost (the machine crashed) while `listen` kept the
    journal open, so SQLite never copied the run's commits into the main file by itself. The
    new batch was copied before the first payout: the re-run resumes it under the same
    tradeNos, and the gateway's duplicate answer and status query settle every row."""
    env = {**os.environ, **gateway_env}
    log = tmp_path / "listen.log"
    with log.open("w") as stream:
        listener = subprocess.Popen(
            [sys.executable, "-m", "batchpay", "listen", "--port", "0", "--journal",
             str(journal_path)],
            env=env, stdout=stream, stderr=stream,
        )  # fmt: skip
    try:
        # The listener opens its connection when it starts serving: wait for the WAL to exist.
        deadline = time.monotonic() + 30
        while not Path(f"{journal_path}-wal").exists():
            assert listener.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the listener never opened the journal"
            time.sleep(0.05)
        path = write_csv(tmp_path / "payroll.csv", payroll_rows(10))
        output = tmp_path / "out.xlsx"
        first = invoke("run", str(path), "-o", str(output), "--yes", "--json")
        assert first.exit_code == 0, first.output
        batch = json.loads(first.stdout)["batch"]
        before = {r["Account No"]: r["tradeNo"] for r in read_result(output)}
    finally:
        listener.send_signal(signal.SIGKILL)
        listener.wait(10)
    wal = Path(f"{journal_path}-wal")
    assert wal.stat().st_size > 0  # the run's answers live only there
    wal.unlink()
    Path(f"{journal_path}-shm").unlink(missing_ok=True)
    with Journal(journal_path) as journal:
        assert journal.has_batch(journal.db.execute("SELECT content_hash FROM batches")
                                 .fetchone()[0]) == batch  # fmt: skip
        assert {r.outcome.value for r in journal.rows(batch)} == {"pending"}  # answers lost

    rerun = invoke("run", str(path), "-o", str(output), "--yes", "--json")
    assert rerun.exit_code == 0, rerun.output
    assert json.loads(rerun.stdout)["batch"] == batch
    assert {r["Account No"]: r["tradeNo"] for r in read_result(output)} == before
    assert set(orders_per_row(sandbox).values()) == {1} and len(sandbox.gateway.orders) == 10


def test_a_batch_lost_with_its_wal_is_refused_and_recovered(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path
) -> None:
    """A journal whose main file is older than the batch (copied back from last night's backup,
    say): the batch lives nowhere but the result file."""
    path = write_csv(tmp_path / "payroll.csv", payroll_rows(10))
    output = tmp_path / "out.xlsx"
    Journal(journal_path).close()  # the backup: a journal without this batch
    backup = journal_path.read_bytes()
    first = invoke("run", str(path), "-o", str(output), "--yes", "--json")
    assert first.exit_code == 0, first.output
    forget(journal_path)
    journal_path.write_bytes(backup)

    refused = invoke("run", str(path), "-o", str(output), "--yes")
    assert refused.exit_code == 1 and "does not know" in refused.output
    assert len(sandbox.gateway.orders) == 10
    recovered = invoke("recover", str(output), "--json")
    assert json.loads(recovered.stdout)["counts"] == {"processing": 10}
    rerun = invoke("run", str(path), "-o", str(output), "--yes", "--json")
    assert rerun.exit_code == 0 and json.loads(rerun.stdout)["requests"] == 0
    assert json.loads(rerun.stdout)["batch"] == json.loads(first.stdout)["batch"]
    assert set(orders_per_row(sandbox).values()) == {1}


def test_the_lock_file_alone_refuses_a_run_of_a_batch_the_journal_lost(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "payroll.csv", payroll_rows(3))
    batch = json.loads(invoke("run", str(path), "--yes", "--json").stdout)["batch"]
    forget(journal_path)
    (tmp_path / "payroll.result.csv").unlink()  # the result file is gone too
    refused = invoke("run", str(path), "--yes")
    assert refused.exit_code == 1
    lock = f"{journal_path}.locks/{batch}.lock"
    assert f"does not know batch {batch}, though its lock file {lock} shows" in refused.output
    assert f"remove {lock}" in refused.output
    assert invoke("run", str(path), "--yes", "--dry-run").exit_code == 1  # a dry run too
    assert len(sandbox.gateway.orders) == 3


def test_practice_results_are_no_evidence(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "payroll.csv", payroll_rows(3))
    output = tmp_path / "payroll.result.xlsx"
    practice = tmp_path / "practice.sqlite3"
    args = ["run", str(path), "-o", str(output), "--yes"]
    assert invoke(*args, "--sandbox", "--journal", str(practice)).exit_code == 0
    assert invoke(*args, "--sandbox", "--journal", str(tmp_path / "other.sqlite3")).exit_code == 0
    summary = read_summary(output)
    assert summary["sandbox"] == "yes: in-process sandbox, not a real payment"
    assert summary["account"].startswith("SANDBOX-MERCHANT@in-process-sandbox:")  # per run
    refused = invoke("recover", str(output))
    assert refused.exit_code == 1 and "result of a sandbox run" in refused.output

    real = invoke(*args, "--json")  # the real run after practice is not held back
    assert real.exit_code == 0, real.output
    assert len(sandbox.gateway.orders) == 3
    summary = read_summary(output)
    port = sandbox.server.payout_url.split(":")[2].split("/")[0]
    assert summary["account"] == f"{MERCHANT}@http://127.0.0.1:{port}"
    assert summary["sandbox"] == "no"


def test_a_result_of_another_account_is_no_evidence_and_recover_refuses_it(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    path = write_csv(tmp_path / "payroll.csv", payroll_rows(3))
    output = tmp_path / "payroll.result.xlsx"
    other = sandbox.server.payout_url.replace("127.0.0.1", "localhost")
    # Another account, with a journal of its own (its lock files beside it, not this one's).
    monkeypatch.setenv("BATCHPAY_URL", other)
    monkeypatch.setenv("BATCHPAY_JOURNAL", str(tmp_path / "other.sqlite3"))
    assert invoke("run", str(path), "-o", str(output), "--yes").exit_code == 0
    monkeypatch.setenv("BATCHPAY_URL", sandbox.server.payout_url)
    monkeypatch.setenv("BATCHPAY_JOURNAL", str(journal_path))
    refused = invoke("recover", str(output))
    assert refused.exit_code == 1
    port = sandbox.server.payout_url.split(":")[2].split("/")[0]
    assert f"account {MERCHANT}@http://localhost:{port}" in refused.output
    assert f"settings are for {MERCHANT}@http://127.0.0.1:{port}" in refused.output
    # For this account the file says nothing: the run is not refused as a lost journal's (its
    # result goes elsewhere: the file at -o is another account's record, kept).
    assert invoke("run", str(path), "-o", str(tmp_path / "this.xlsx"), "--yes").exit_code == 0


def test_recover_refuses_without_a_query_url(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(tmp_path / "payroll.csv", payroll_rows(2))
    assert invoke("run", str(path), "--yes").exit_code == 0
    monkeypatch.delenv("BATCHPAY_QUERY_URL")
    refused = invoke("recover", str(tmp_path / "payroll.result.csv"))
    assert refused.exit_code == 2
    assert "recover needs BATCHPAY_QUERY_URL" in refused.output


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        ("2.02604E+23", "is in scientific notation"),
        ("202604011200001000000000", "ends in nine zeros"),
        ("20260401120000123", "is not of the form batchpay assigns"),
    ],
)
def test_recover_refuses_a_trade_number_a_spreadsheet_damaged(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path,
    damage: str, why: str,
) -> None:  # fmt: skip
    path = write_csv(tmp_path / "payroll.csv", payroll_rows(5))
    assert invoke("run", str(path), "--yes").exit_code == 0
    forget(journal_path)
    result = tmp_path / "payroll.result.csv"
    rewrite_csv(result, {(2, "tradeNo"): damage})
    refused = invoke("recover", str(result))
    assert refused.exit_code == 1
    assert f"row 4: the tradeNo {damage!r} {why}" in refused.output
    assert "never guesses" in refused.output
    with Journal(journal_path) as journal:
        assert journal.db.execute("SELECT count(*) FROM rows").fetchone()[0] == 0
    assert sandbox.gateway.query_requests == []


def test_recover_refuses_a_batch_or_trade_numbers_the_journal_has(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "payroll.csv", payroll_rows(3))
    batch = json.loads(invoke("run", str(path), "--yes", "--json").stdout)["batch"]
    result = tmp_path / "payroll.result.csv"
    refused = invoke("recover", str(result))
    assert refused.exit_code == 1
    assert f"already holds batch {batch}: nothing to recover" in refused.output
    # Another batch (one row changed) that shares the tradeNos of this one.
    rewrite_csv(result, {(0, "Amount"): "5000"})
    refused = invoke("recover", str(result))
    assert refused.exit_code == 1 and "is already in batch" in refused.output
    assert len(sandbox.gateway.orders) == 3


def test_a_workbook_result_changed_by_hand_is_refused(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path
) -> None:
    import openpyxl

    path = write_csv(tmp_path / "payroll.csv", payroll_rows(3))
    output = tmp_path / "payroll.result.xlsx"
    assert invoke("run", str(path), "-o", str(output), "--yes").exit_code == 0
    forget(journal_path)
    workbook = openpyxl.load_workbook(output)
    workbook["Results"]["G2"] = "9999"  # the first row's amount
    workbook.save(output)
    refused = invoke("recover", str(output))
    assert refused.exit_code == 1
    assert "do not make the batch its Summary records" in refused.output


@pytest.fixture
def query_gateway(sandbox: Sandbox) -> Iterator[tuple[str, dict[str, str]]]:
    """A status query that answers by tradeNo: "found" asks the sandbox's own record, "1004"
    refuses with another code, "503" is never available."""
    plan: dict[str, str] = {}

    async def query(request: web.Request) -> web.Response:
        trade_no = (await request.json())["tradeNo"]
        how = plan.get(trade_no, "found")
        if how == "503":
            return web.Response(status=503, text="busy")
        if how == "1004":
            return web.json_response({"code": "1004", "msg": "parameter error"})
        order = sandbox.gateway.orders.get(trade_no)
        if order is None:
            return web.json_response({"code": "1005", "msg": "order not found"})
        return web.json_response(
            {"code": "0000", "msg": "success",
             "data": {"status": order.status, "platFormTradeNo": order.platform_trade_no}}
        )  # fmt: skip

    app = web.Application()
    app.router.add_post("/query", query)
    with serve_app(app) as base:
        yield f"{base}/query", plan


def test_only_not_found_makes_a_row_pending_any_other_answer_leaves_it_unknown(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path,
    query_gateway: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    path = write_csv(tmp_path / "payroll.csv", payroll_rows(6))
    output = tmp_path / "payroll.result.xlsx"
    assert invoke("run", str(path), "-o", str(output), "--yes", "--dry-run").exit_code == 0
    forget(journal_path)
    trade_nos = [r["tradeNo"] for r in read_result(output)]
    url, plan = query_gateway
    plan[trade_nos[0]] = "1004"
    plan[trade_nos[1]] = "503"
    monkeypatch.setenv("BATCHPAY_QUERY_URL", url)
    recovered = invoke("recover", str(output), "--json", "--max-attempts", "2")
    done = json.loads(recovered.stdout)
    assert done["counts"] == {"pending": 4, "unknown": 2}
    assert recovered.exit_code == 4
    with Journal(journal_path) as journal:
        states = {r.trade_no: r.outcome.value for r in journal.rows(done["batch"])}
    assert states[trade_nos[0]] == states[trade_nos[1]] == "unknown"
    # The next run asks about the unknown rows first, and sends each row once.
    monkeypatch.setenv("BATCHPAY_QUERY_URL", sandbox.server.query_url)
    rerun = invoke("run", str(path), "-o", str(output), "--yes", "--json")
    assert rerun.exit_code == 0, rerun.output
    assert set(orders_per_row(sandbox).values()) == {1} and len(sandbox.gateway.orders) == 6


def test_recover_keeps_the_gateways_answer_for_placed_rows(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path
) -> None:
    from batchpay.sandbox.gateway import Settlement

    sandbox.gateway.settlement = Settlement(delay=0, fail_rate=0.5, notify=False, seed=3)
    path = write_csv(tmp_path / "payroll.csv", payroll_rows(8))
    invoke("run", str(path), "--yes")
    forget(journal_path)
    done = json.loads(invoke("recover", str(tmp_path / "payroll.result.csv"), "--json").stdout)
    expected: dict[str, int] = {}
    for order in sandbox.gateway.orders.values():
        outcome = "paid" if order.status == "0000" else "failed"
        expected[outcome] = expected.get(outcome, 0) + 1
    assert done["counts"] == expected
    assert done["exit_code"] == (3 if "failed" in expected else 0)


def test_report_summary_records_the_content_hash_and_the_account(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "payroll.csv", payroll_rows(2))
    batch = json.loads(invoke("run", str(path), "--yes", "--json").stdout)["batch"]
    output = tmp_path / "report.xlsx"
    assert invoke("report", batch, "-o", str(output)).exit_code == 0
    summary = read_summary(output)
    assert summary["content hash"].startswith(batch)
    # The journal records each batch's gateway account (issue 11 section 1): report says it.
    assert summary["account"] == gateway_account(MERCHANT, gateway_env["BATCHPAY_URL"])
    assert summary["sandbox"] == "no"


def test_a_workbook_input_with_a_restored_mobile_is_rebuilt_as_the_same_batch(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path
) -> None:
    """The result workbook keeps only text; the errors column says which mobile lost its zero,
    so the rebuilt rows are the ones the original workbook made."""
    import openpyxl
    from helpers import HEADER

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    for number, row in enumerate(payroll_rows(4)):
        cells: list[object] = list(row)
        if number == 1:
            cells[4] = int(row[4])  # the mobile stored as a number: its zero is gone
        sheet.append(cells)
    path = tmp_path / "payroll.xlsx"
    workbook.save(path)
    first = invoke("run", str(path), "--yes", "--json")
    assert first.exit_code == 0, first.output
    batch = json.loads(first.stdout)["batch"]
    forget(journal_path)
    recovered = invoke("recover", str(tmp_path / "payroll.result.xlsx"), "--json")
    assert recovered.exit_code == 0, recovered.output
    assert json.loads(recovered.stdout)["batch"] == batch
    rerun = invoke("run", str(path), "--yes", "--json")
    assert json.loads(rerun.stdout)["requests"] == 0 and rerun.exit_code == 0
    assert len(sandbox.gateway.orders) == 4


def test_a_csv_practice_result_is_no_evidence_when_the_sandbox_journal_holds_it(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CSV result has no Summary: the in-process sandbox's own journal says it was practice."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    path = write_csv(tmp_path / "payroll.csv", payroll_rows(3))
    assert invoke("run", str(path), "--sandbox", "--yes").exit_code == 0
    assert (tmp_path / "data" / "batchpay" / "sandbox-journal.sqlite3").exists()
    real = invoke("run", str(path), "--yes")
    assert real.exit_code == 0, real.output
    assert len(sandbox.gateway.orders) == 3


def test_recovered_rows_hold_back_the_same_payouts_in_a_fixed_file(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path
) -> None:
    """Recovered placed rows count for the repeat window: "I fixed a row and ran the whole
    file again" after a recovery sends only the fixed row."""
    path = write_csv(tmp_path / "payroll.csv", payroll_rows(3))
    assert invoke("run", str(path), "--yes").exit_code == 0
    forget(journal_path)
    assert invoke("recover", str(tmp_path / "payroll.result.csv")).exit_code == 0
    fixed = write_csv(tmp_path / "fixed.csv", payroll_rows(4))
    again = invoke("run", str(fixed), "--yes", "--json")
    summary = json.loads(again.stdout)
    assert summary["counts"] == {"processing": 1, "repeat": 3}
    assert set(orders_per_row(sandbox).values()) == {1} and len(sandbox.gateway.orders) == 4


def test_a_run_sends_an_unknown_row_only_after_the_gateway_says_it_has_no_such_order(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path,
    query_gateway: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    path = write_csv(tmp_path / "payroll.csv", payroll_rows(3))
    output = tmp_path / "payroll.result.xlsx"
    assert invoke("run", str(path), "-o", str(output), "--yes", "--dry-run").exit_code == 0
    forget(journal_path)
    first, second, _ = [r["tradeNo"] for r in read_result(output)]
    url, plan = query_gateway
    plan[first] = plan[second] = "503"
    monkeypatch.setenv("BATCHPAY_QUERY_URL", url)
    recovered = invoke("recover", str(output), "--json", "--max-attempts", "1")
    assert json.loads(recovered.stdout)["counts"] == {"pending": 1, "unknown": 2}
    plan[first] = "1004"  # a refusal that is not "no such order"
    del plan[second]  # now answered: no such order
    run = invoke("run", str(path), "-o", str(output), "--yes", "--json", "--max-attempts", "2")
    assert run.exit_code == 3, run.output
    rows = {r["tradeNo"]: r for r in read_result(output)}
    assert rows[first]["outcome"] == "unknown" and first not in sandbox.gateway.orders
    assert rows[second]["outcome"] == "processing" and second in sandbox.gateway.orders
    assert len(sandbox.gateway.orders) == 2


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
@pytest.mark.parametrize(
    ("heading", "given"),
    [("tradeNo", ["PAY-1", "PAY-2", "PAY-3", "PAY-4"]), ("Trade No", ["PAY-1", "", "PAY-3", ""])],
)
def test_an_input_with_its_own_trade_numbers_is_rebuilt_as_the_same_batch(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path,
    suffix: str, heading: str, given: list[str],
) -> None:  # fmt: skip
    """The input's own tradeNo column, last (spelled as batchpay's own would be) or with empty
    cells batchpay filled: the rebuilt batch is the one a re-run computes."""
    from helpers import HEADER

    rows = [[*row, trade_no] for row, trade_no in zip(payroll_rows(4), given, strict=True)]
    path = write_csv(tmp_path / "payroll.csv", rows, header=[*HEADER, heading])
    output = tmp_path / f"payroll.result{suffix}"
    first = invoke("run", str(path), "-o", str(output), "--yes", "--json")
    assert first.exit_code == 0, first.output
    forget(journal_path)
    recovered = invoke("recover", str(output), "--json")
    assert recovered.exit_code == 0, recovered.output
    assert json.loads(recovered.stdout)["batch"] == json.loads(first.stdout)["batch"]
    rerun = invoke("run", str(path), "-o", str(output), "--yes", "--json")
    assert rerun.exit_code == 0 and json.loads(rerun.stdout)["requests"] == 0
    assert len(sandbox.gateway.orders) == 4


def test_a_rejected_row_the_gateway_holds_no_order_for_stays_rejected(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path
) -> None:
    """A rejected row is final: the lost journal would not have sent it again, nor does the
    recovered one; rows of a file with invalid rows keep them invalid."""
    rows = payroll_rows(4)
    rows[0][4] = "0812345678"
    rows[3][6] = "99"  # invalid: below the minimum
    sandbox.gateway.rules["mobile"] = r"09[0-9]{8}"  # the gateway is stricter than the file
    path = write_csv(tmp_path / "p.csv", rows)
    first = invoke("run", str(path), "--yes", "--json", "--skip-invalid")
    assert json.loads(first.stdout)["counts"] == {"invalid": 1, "rejected": 1, "processing": 2}
    forget(journal_path)
    recovered = invoke("recover", str(tmp_path / "p.result.csv"), "--json")
    done = json.loads(recovered.stdout)
    assert done["batch"] == json.loads(first.stdout)["batch"]
    assert done["counts"] == {"invalid": 1, "rejected": 1, "processing": 2}
    assert recovered.exit_code == 3
    rerun = invoke("run", str(path), "--yes", "--json", "--skip-invalid")
    assert json.loads(rerun.stdout)["requests"] == 0
    assert len(sandbox.gateway.orders) == 2


def test_the_default_result_beside_the_input_is_evidence_for_a_run_with_another_output(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "payroll.csv", payroll_rows(3))
    assert invoke("run", str(path), "--yes").exit_code == 0
    forget(journal_path)
    refused = invoke("run", str(path), "--yes", "-o", str(tmp_path / "elsewhere.xlsx"))
    assert refused.exit_code == 1
    assert f"batchpay recover {tmp_path / 'payroll.result.csv'}" in refused.output
    assert len(sandbox.gateway.orders) == 3


def test_an_earlier_result_of_another_batch_is_named_as_such(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path
) -> None:
    """Last month's result beside this month's file of the same name, on a new journal."""
    path = write_csv(tmp_path / "payroll.csv", payroll_rows(3))
    output = tmp_path / "payroll.result.xlsx"
    earlier = json.loads(invoke("run", str(path), "-o", str(output), "--yes", "--json").stdout)
    forget(journal_path)
    write_csv(path, payroll_rows(3, start=50))  # this month's people and amounts
    refused = invoke("run", str(path), "-o", str(output), "--yes")
    assert refused.exit_code == 1
    assert f"is the result of batch {earlier['batch']}, not of this file's batch" in (
        refused.output
    )
    assert "move it away" in refused.output
    assert len(sandbox.gateway.orders) == 3


def test_recovering_a_fixed_files_result_never_pays_its_repeats_again(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path
) -> None:
    """Monday's file pays 3; Tuesday's fixed file (one row changed) holds those 3 back as
    repeats and pays 1; its result replaces Monday's. The journal is lost and the result
    recovered: the 3 repeats stay held, and the next run pays nobody again."""
    rows = payroll_rows(3)
    path = write_csv(tmp_path / "payroll.csv", rows)
    assert invoke("run", str(path), "--yes").exit_code == 0
    fixed = write_csv(tmp_path / "payroll.csv", [*rows, *payroll_rows(1, start=50)])
    tuesday = json.loads(invoke("run", str(fixed), "--yes", "--json").stdout)
    assert tuesday["counts"] == {"processing": 1, "repeat": 3}
    forget(journal_path)
    recovered = invoke("recover", str(tmp_path / "payroll.result.csv"), "--json")
    assert recovered.exit_code == 0, recovered.output
    assert json.loads(recovered.stdout)["counts"] == {"processing": 1, "repeat": 3}
    rerun = invoke("run", str(fixed), "--yes", "--json", "--repeat-window", "0")
    assert rerun.exit_code == 0, rerun.output
    assert json.loads(rerun.stdout)["requests"] == 0
    assert len(sandbox.gateway.orders) == 4  # each person paid once


def test_a_paid_again_batch_is_recovered_under_its_own_id(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "payroll.csv", payroll_rows(2))
    first = json.loads(invoke("run", str(path), "--yes", "--json").stdout)
    output = tmp_path / "december.result.xlsx"
    again = invoke("run", str(path), "--yes", "--json", "--pay-again", "--allow-repeat", "-o",
                   str(output))  # fmt: skip
    batch = json.loads(again.stdout)["batch"]
    assert batch != first["batch"] and len(sandbox.gateway.orders) == 4
    forget(journal_path)
    recovered = invoke("recover", str(output), "--json")
    assert recovered.exit_code == 0, recovered.output
    assert json.loads(recovered.stdout)["batch"] == batch
    rerun = json.loads(invoke("run", str(path), "--yes", "--json", "-o", str(output)).stdout)
    assert rerun["batch"] == batch and rerun["nothing_sent"] and rerun["requests"] == 0
    assert read_summary(output)["this run"].startswith(f"sent nothing: every row was placed in "
                                                       f"batch {batch} on ")  # fmt: skip
    assert len(sandbox.gateway.orders) == 4
