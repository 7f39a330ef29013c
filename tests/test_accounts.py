"""A journal belongs to gateway accounts: practice never counts as paid on the real gateway,
the same file next month is not "already placed", and an old journal is confirmed, not guessed.
Each against `batchpay sandbox` in processes of its own, or a sandbox over loopback HTTP."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import openpyxl
import pytest
from helpers import (
    MERCHANT,
    SECRET,
    Sandbox,
    batchpay,
    invoke,
    new_user_env,
    payroll_rows,
    read_result,
    sandbox_process,
    write_csv,
)

from batchpay.config import gateway_account
from batchpay.journal.schema import VERSION
from batchpay.journal.store import Journal
from batchpay.sandbox.gateway import Faults, SandboxGateway
from batchpay.sandbox.server import serve_in_thread

FIXTURES = Path(__file__).parent / "fixtures"


def test_practice_with_the_printed_settings_never_holds_back_the_real_run(tmp_path: Path) -> None:
    """The README's two-terminal practice, then the real run with the default journal."""
    env = new_user_env(tmp_path / "home")
    payroll = write_csv(tmp_path / "p.csv", payroll_rows(6))
    with sandbox_process(env, tmp_path) as (practice, _):
        done = batchpay({**env, **practice}, tmp_path, "run", str(payroll), "--yes", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["counts"] == {"processing": 6}
        assert "practice-journal" in json.loads(done.stdout)["journal"]
    # "Production": another gateway (another port), the real settings, the default journal.
    with sandbox_process(env, tmp_path) as (real, _):
        settings = {k: v for k, v in real.items() if k != "BATCHPAY_JOURNAL"}
        paid = batchpay({**env, **settings}, tmp_path, "run", str(payroll), "--yes", "--json")
    assert paid.returncode == 0, paid.stderr
    summary = json.loads(paid.stdout)
    assert summary["counts"] == {"processing": 6}
    assert summary["requests"] == 6  # every row sent to the real gateway
    assert "already placed" not in paid.stderr


def test_rows_sent_on_another_account_in_the_same_journal_are_refused_naming_both(
    tmp_path: Path,
) -> None:
    env = new_user_env(tmp_path / "home")
    env["BATCHPAY_JOURNAL"] = str(tmp_path / "shared-journal.sqlite3")
    payroll = write_csv(tmp_path / "p.csv", payroll_rows(4))
    with sandbox_process(env, tmp_path) as (first, _):
        practice = {**env, **first, "BATCHPAY_JOURNAL": env["BATCHPAY_JOURNAL"]}
        assert batchpay(practice, tmp_path, "run", str(payroll), "--yes").returncode == 0
        old = gateway_account(first["BATCHPAY_MERCHANT_NO"], first["BATCHPAY_URL"])
    with sandbox_process(env, tmp_path, "--port", "0") as (second, _):
        real = {**env, **second, "BATCHPAY_JOURNAL": env["BATCHPAY_JOURNAL"]}
        new = gateway_account(second["BATCHPAY_MERCHANT_NO"], second["BATCHPAY_URL"])
        refused = batchpay(real, tmp_path, "run", str(payroll), "--yes", "--json")
        assert refused.returncode == 1, refused.stderr
        assert old in refused.stderr and new in refused.stderr
        assert "nothing sent" in refused.stderr and "--gateway-moved-from" in refused.stderr
        # A fixed file (one row changed) is refused too: its other rows were sent there.
        rows = payroll_rows(4)
        rows[0][5] = "fixed@example.com"
        fixed = write_csv(tmp_path / "fixed.csv", rows)
        held = batchpay(real, tmp_path, "run", str(fixed), "--yes")
        assert held.returncode == 1 and old in held.stderr and "3 row(s)" in held.stderr
        # The practice gateway was not this one: pay the rows here as a new batch.
        # (beside the file stays the practice's result: this batch's goes elsewhere)
        again = batchpay(real, tmp_path, "run", str(payroll), "--yes", "--json", "--pay-again",
                         "-o", str(tmp_path / "paid.csv"))  # fmt: skip
        assert again.returncode == 0, again.stderr
        summary = json.loads(again.stdout)
        assert summary["requests"] == 4 and summary["counts"] == {"processing": 4}
        assert summary["account"] == new
        # The repeat window counts this account's rows only: the fixed file holds back the
        # three rows just paid here, not the practice's.
        resent = batchpay(real, tmp_path, "run", str(fixed), "--yes", "--json")
        assert resent.returncode == 0, resent.stderr
        assert json.loads(resent.stdout)["counts"] == {"processing": 1, "repeat": 3}


def test_the_same_gateway_at_a_new_address_resumes_its_batches_when_told(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path, journal_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    payroll = write_csv(tmp_path / "p.csv", payroll_rows(5))
    assert invoke("run", str(payroll), "--yes").exit_code == 0
    old = gateway_account(MERCHANT, gateway_env["BATCHPAY_URL"])
    moved = gateway_env["BATCHPAY_URL"].replace("127.0.0.1", "localhost")
    monkeypatch.setenv("BATCHPAY_URL", moved)
    refused = invoke("run", str(payroll), "--yes")
    assert refused.exit_code == 1 and old in refused.stderr
    wrong = invoke("run", str(payroll), "--yes", "--gateway-moved-from", "M-9@https://x:443")
    assert wrong.exit_code == 2 and old in wrong.stderr  # names the accounts it has
    result = invoke("run", str(payroll), "--yes", "--json", "--gateway-moved-from", old)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["requests"] == 0 and summary["counts"] == {"processing": 5}
    assert summary["account"] == gateway_account(MERCHANT, moved)
    assert len(sandbox.gateway.orders) == 5  # the same orders: nobody paid twice
    with sqlite3.connect(journal_path) as db:
        logged = db.execute("SELECT from_account, to_account, batches FROM account_changes")
        assert logged.fetchall() == [(old, gateway_account(MERCHANT, moved), 1)]


def test_the_same_file_next_month_says_nothing_was_sent_until_paid_again(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    payroll = write_csv(tmp_path / "p.csv", payroll_rows(5))
    first = json.loads(invoke("run", str(payroll), "--yes", "--json").stdout)
    before = {r["Employee"]: r["tradeNo"] for r in read_result(tmp_path / "p.result.csv")}
    again = invoke("run", str(payroll), "--yes", "--json")
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)
    assert summary["nothing_sent"] is True and summary["requests"] == 0
    assert summary["earlier_batch"]["batch"] == first["batch"]
    assert summary["earlier_batch"]["total"] == sum(1000 + i for i in range(5))
    notice = f"nothing sent: every row was placed in batch {first['batch']} on "
    assert notice in again.stderr and "--pay-again" in again.stderr
    assert len(sandbox.gateway.payout_requests) == 5

    # --pay-again: a new batch, new tradeNos; the repeat window still holds them back...
    held = json.loads(invoke("run", str(payroll), "--yes", "--json", "--pay-again").stdout)
    assert held["batch"] != first["batch"] and held["counts"] == {"repeat": 5}
    assert held["earlier_batch"]["batch"] == first["batch"]
    assert len(sandbox.gateway.payout_requests) == 5
    # A held row stays held even once the window has passed (that payout was made)...
    later = invoke("run", str(payroll), "--yes", "--json", "--repeat-window", "0")
    assert json.loads(later.stdout)["counts"] == {"repeat": 5}
    assert len(sandbox.gateway.payout_requests) == 5
    # ...until --allow-repeat lets it go. The run resumes the newest batch, stopped here.
    sandbox.faults = Faults(rates={"503": 1.0}, every_request=True)
    stopped = invoke("run", str(payroll), "--yes", "--json", "--allow-repeat",
                     "--max-attempts", "1")  # fmt: skip
    assert stopped.exit_code == 4, stopped.output
    assert json.loads(stopped.stdout)["batch"] == held["batch"]
    sandbox.faults = Faults()
    paid = invoke("run", str(payroll), "--yes", "--json", "--allow-repeat")
    assert paid.exit_code == 0, paid.output
    summary = json.loads(paid.stdout)
    assert summary["batch"] == held["batch"] and summary["counts"] == {"processing": 5}
    after = {r["Employee"]: r["tradeNo"] for r in read_result(tmp_path / "p.result.csv")}
    assert set(after.values()).isdisjoint(before.values())
    assert len(sandbox.gateway.orders) == 10  # the same five people, paid twice on purpose
    # And once more: the newest batch is finished, so nothing is sent.
    last = json.loads(invoke("run", str(payroll), "--yes", "--json").stdout)
    assert last["nothing_sent"] and last["earlier_batch"]["batch"] == held["batch"]


def test_paying_again_shows_the_earlier_batch_before_sending(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    payroll = write_csv(tmp_path / "p.csv", payroll_rows(2))
    first = json.loads(invoke("run", str(payroll), "--yes", "--json").stdout)
    # Last month's result stays beside the file (another batch's): this one goes elsewhere.
    refused = invoke("run", str(payroll), "--yes", "--pay-again", "--allow-repeat")
    assert refused.exit_code == 1 and "-o" in refused.stderr
    assert len(sandbox.gateway.payout_requests) == 2
    again = invoke("run", str(payroll), "--yes", "--pay-again", "--allow-repeat", "-o",
                   str(tmp_path / "december.result.csv"))  # fmt: skip
    assert again.exit_code == 0, again.output
    assert f"placed before in batch {first['batch']} on " in again.stderr
    assert "total 2,001" in again.stderr


def test_a_journal_of_release_0_1_is_migrated_and_its_account_confirmed_once(
    tmp_path: Path, gateway_env: dict[str, str], sandbox: Sandbox, journal_path: Path
) -> None:
    # Made by batchpay 0.1.0: a 5-row batch sent (processing) and a 2-row dry run.
    shutil.copy(FIXTURES / "journals" / "journal-0.1.0.sqlite3", journal_path)
    status = invoke("status")
    assert status.exit_code == 0 and "(not recorded" in status.stdout
    with sqlite3.connect(journal_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == VERSION
    payroll = write_csv(tmp_path / "p.csv", payroll_rows(5))
    refused = invoke("run", str(payroll), "--yes")
    assert refused.exit_code == 1
    assert "--confirm-account" in refused.stderr and "2 batch(es)" in refused.stderr
    confirmed = invoke("run", str(payroll), "--yes", "--json", "--confirm-account")
    assert confirmed.exit_code == 0, confirmed.output
    summary = json.loads(confirmed.stdout)
    assert summary["batch"] == "6ed1114e87f2"  # the old batch, resumed
    assert summary["nothing_sent"] and summary["counts"] == {"processing": 5}
    assert sandbox.gateway.payout_requests == []
    dry = write_csv(tmp_path / "dry.csv", payroll_rows(2, start=40))
    sent = json.loads(invoke("run", str(dry), "--yes", "--json").stdout)
    assert sent["batch"] == "93d5871973bc" and sent["counts"] == {"processing": 2}


def test_two_processes_opening_an_old_journal_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    shutil.copy(FIXTURES / "journals" / "journal-0.1.0.sqlite3", path)
    first, second = Journal(path), Journal(path)
    assert first.unrecorded_batches() == second.unrecorded_batches() == 2
    first.close()
    second.close()


def test_a_journal_of_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    Journal(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {VERSION + 1}")
    result = invoke("status", "--journal", str(path))
    assert result.exit_code == 1 and "newer batchpay" in result.stderr


def test_the_built_in_sandbox_tells_the_truth_run_after_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    payroll = write_csv(tmp_path / "p.csv", payroll_rows(3))
    for _ in range(2):  # its orders end with each run: nothing is "already placed"
        result = invoke("run", str(payroll), "--sandbox", "--yes", "--json")
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["requests"] == 3 and summary["counts"] == {"processing": 3}
        assert not summary["nothing_sent"]
    dry = invoke("run", str(payroll), "--sandbox", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["counts"] == {"pending": 3}


def test_reconcile_asks_only_about_its_own_accounts_batches(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = SandboxGateway(MERCHANT, SECRET)
    with serve_in_thread(other) as server:
        monkeypatch.setenv("BATCHPAY_URL", server.payout_url)
        monkeypatch.setenv("BATCHPAY_QUERY_URL", server.query_url)
        payroll = write_csv(tmp_path / "p.csv", payroll_rows(3))
        assert invoke("run", str(payroll), "--yes").exit_code == 0
    monkeypatch.setenv("BATCHPAY_URL", sandbox.server.payout_url)
    monkeypatch.setenv("BATCHPAY_QUERY_URL", sandbox.server.query_url)
    result = invoke("reconcile", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["queried"] == 0
    assert sandbox.gateway.query_requests == []
    assert "1 batch(es) of other gateway accounts" in result.stderr


def test_a_run_against_batchpay_sandbox_is_marked_as_practice(tmp_path: Path) -> None:
    env = new_user_env(tmp_path / "home")
    payroll = write_csv(tmp_path / "p.csv", payroll_rows(2))
    output = tmp_path / "p.result.xlsx"
    with sandbox_process(env, tmp_path) as (practice, _):
        done = batchpay({**env, **practice}, tmp_path, "run", str(payroll), "--yes", "-o",
                        str(output))  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "SANDBOX: no real payment" in done.stdout.splitlines()[0]
        as_json = batchpay({**env, **practice}, tmp_path, "run", str(payroll), "--yes", "--json",
                           "-o", str(output))  # fmt: skip
    assert json.loads(as_json.stdout)["sandbox"] is True
    workbook = openpyxl.load_workbook(output, read_only=True)
    assert str(workbook["Summary"]["A1"].value).startswith("SANDBOX")
    workbook.close()


def test_a_systemic_stop_names_the_secret_file_it_read(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("not-the-secret")
    secret_file.chmod(0o600)
    monkeypatch.delenv("BATCHPAY_SECRET")
    monkeypatch.setenv("BATCHPAY_SECRET_FILE", str(secret_file))
    result = invoke("run", str(write_csv(tmp_path / "p.csv", payroll_rows(2))), "--yes", "--json")
    assert result.exit_code == 4
    reason = json.loads(result.stdout)["stop_reason"]
    assert f"the secret in BATCHPAY_SECRET_FILE ({secret_file})" in reason
    assert "not-the-secret" not in result.output
