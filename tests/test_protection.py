"""Protection across batches and processes, and what never leaks: secret, accounts, files."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from helpers import SECRET, Sandbox, invoke, payroll_rows, read_result, write_csv

from batchpay.journal.locks import batch_lock


def test_fixing_one_row_and_rerunning_the_file_sends_only_that_row(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    rows = payroll_rows(10)
    rows[6][5] = "broken-email"
    path = write_csv(tmp_path / "p.csv", rows)
    assert invoke("run", str(path), "--yes", "--skip-invalid").exit_code == 3
    first = {r["Employee"]: r for r in read_result(tmp_path / "p.result.csv")}
    assert len(sandbox.gateway.orders) == 9

    rows[6][5] = "fixed@example.com"  # a new file content: a new batch
    write_csv(path, rows)
    result = invoke("run", str(path), "--yes", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["counts"] == {"processing": 1, "repeat": 9}
    assert summary["requests"] == 1
    assert len(sandbox.gateway.orders) == 10
    for row in read_result(tmp_path / "p.result.csv"):
        if row["outcome"] == "repeat":
            earlier = first[row["Employee"]]
            assert f"as tradeNo {earlier['tradeNo']} (processing)" in row["msg"]
            assert row["platFormTradeNo"] == earlier["platFormTradeNo"]
    assert "9 row(s) match payouts placed by another batch" in result.stderr


def test_allow_repeat_or_a_passed_window_sends_the_same_payout_again(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    rows = payroll_rows(3)
    assert invoke("run", str(write_csv(tmp_path / "a.csv", rows)), "--yes").exit_code == 0
    again = write_csv(tmp_path / "b.csv", [*rows, payroll_rows(1, start=50)[0]])
    held = invoke("run", str(again), "--yes", "--json", "--expect-count", "1")
    assert held.exit_code == 0, held.output
    assert json.loads(held.stdout)["counts"] == {"processing": 1, "repeat": 3}
    sent = invoke("run", str(again), "--yes", "--json", "--allow-repeat", "--expect-count", "3")
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.stdout)["counts"] == {"processing": 4}
    assert len(sandbox.gateway.orders) == 7  # the same three people, paid twice on purpose

    third = write_csv(tmp_path / "c.csv", [*rows, *payroll_rows(1, start=60)])
    windowless = invoke("run", str(third), "--yes", "--json", "--repeat-window", "0")
    assert json.loads(windowless.stdout)["counts"] == {"processing": 4}


def test_a_second_process_on_the_same_batch_is_refused(
    sandbox: Sandbox, gateway_env: dict[str, str], payroll_csv: Path, journal_path: Path
) -> None:
    planned = invoke("run", str(payroll_csv), "--dry-run", "--json")
    batch_id = json.loads(planned.stdout)["batch"]
    with batch_lock(journal_path, batch_id):
        result = invoke("run", str(payroll_csv), "--yes")
    assert result.exit_code == 1
    assert f"batch {batch_id} is being sent by process" in result.stderr
    assert sandbox.gateway.payout_requests == []
    assert invoke("run", str(payroll_csv), "--yes").exit_code == 0


def test_verbose_logs_mask_accounts_and_never_show_the_secret(
    sandbox: Sandbox, gateway_env: dict[str, str], payroll_csv: Path
) -> None:
    result = invoke("-v", "run", str(payroll_csv), "--yes")
    assert result.exit_code == 0
    logged = result.stderr
    assert logged.count("tradeNo=") == 12
    assert "tradeNo=" not in result.stdout  # logs on stderr, results on stdout
    for order in sandbox.gateway.orders.values():
        account = order.fields["accountNo"]
        assert account not in logged
        assert "*" * (len(account) - 4) + account[-4:] in logged
    assert SECRET not in logged


def test_journal_and_result_files_are_readable_by_their_owner_only(
    sandbox: Sandbox, gateway_env: dict[str, str], payroll_csv: Path, journal_path: Path
) -> None:
    output = payroll_csv.with_name("out.xlsx")
    assert invoke("run", str(payroll_csv), "--yes", "-o", str(output)).exit_code == 0
    files = [output, *journal_path.parent.glob("journal.sqlite3*")]
    assert len(files) >= 2
    for path in files:
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert SECRET.encode() not in (path.read_bytes() if path.is_file() else b"")


def test_a_row_held_as_a_repeat_stays_held_when_the_window_has_passed(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    rows = payroll_rows(4)
    assert invoke("run", str(write_csv(tmp_path / "a.csv", rows)), "--yes").exit_code == 0
    rows[0][5] = "fixed@example.com"
    fixed = write_csv(tmp_path / "b.csv", rows)
    held = json.loads(invoke("run", str(fixed), "--yes", "--json").stdout)
    assert held["counts"] == {"processing": 1, "repeat": 3}
    # Run again after the window (or with a shorter one): the three were paid; not again.
    again = invoke("run", str(fixed), "--yes", "--json", "--repeat-window", "0")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["counts"] == {"processing": 1, "repeat": 3}
    assert len(sandbox.gateway.orders) == 5


def test_reconcile_leaves_a_batch_that_is_being_sent_to_its_run(
    sandbox: Sandbox, gateway_env: dict[str, str], payroll_csv: Path, journal_path: Path
) -> None:
    batch = json.loads(invoke("run", str(payroll_csv), "--yes", "--json").stdout)["batch"]
    with batch_lock(journal_path, batch):  # as a run sending it holds it
        result = invoke("reconcile", "--json")
    assert result.exit_code == 0, result.output
    assert f"batch {batch} is being sent right now" in result.stderr
    assert json.loads(result.stdout)["queried"] == 0 and sandbox.gateway.query_requests == []


def test_practising_on_a_folder_never_archives_its_files(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_csv(inbox / "a.csv", payroll_rows(2))
    result = invoke("run", str(inbox), "--sandbox", "--archive", str(tmp_path / "done"), "--yes")
    assert result.exit_code == 2 and "--archive" in result.output
    assert (inbox / "a.csv").exists()
