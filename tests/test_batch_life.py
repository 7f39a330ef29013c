"""The batch's life (issue 16) through the command line: submit, approve, reject, hold,
release, cancel, and what a run may send. The whole flow runs against `batchpay sandbox` in a
process of its own; the rest against the in-process sandbox, whose requests a test can count.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner

from batchpay.cli.main import cli as main_cli
from batchpay.sandbox.gateway import Faults

from .helpers import Sandbox, invoke, new_user_env, payroll_rows, sandbox_process, write_csv

PASSWORDS = {
    "alice": "orange-Kettle-river-1",  # admin
    "bob": "purple-Lantern-hill-22",  # preparer
    "carol": "silver-Teapot-field-3",  # approver
    "dave": "golden-Window-brook-44",  # approver
    "vera": "amber-Pillow-meadow-55",  # viewer
}
ROLES = {
    "alice": "admin",
    "bob": "preparer",
    "carol": "approver",
    "dave": "approver",
    "vera": "viewer",
}


def lines(*texts: str) -> str:
    return "".join(f"{t}\n" for t in texts)


def as_(name: str) -> tuple[list[str], str]:
    return ["--as", name, "--password-stdin"], lines(PASSWORDS[name])


@pytest.fixture(scope="session")
def team_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A journal holding the team (alice first, with no admin yet; the others added by her),
    made once: each Argon2id hash costs a noticeable fraction of a second, on purpose."""
    path = tmp_path_factory.mktemp("team") / "journal.sqlite3"
    made = invoke(
        "user",
        "add",
        "alice",
        "--role",
        "admin",
        "--password-stdin",
        "--journal",
        str(path),
        input=lines(PASSWORDS["alice"]),
    )
    assert made.exit_code == 0, made.output
    for name in ("bob", "carol", "dave", "vera"):
        added = invoke(
            "user",
            "add",
            name,
            "--role",
            ROLES[name],
            "--as",
            "alice",
            "--password-stdin",
            "--journal",
            str(path),
            input=lines(PASSWORDS["alice"], PASSWORDS[name]),
        )
        assert added.exit_code == 0, added.output
    return path


@pytest.fixture
def team(team_template: Path, journal_path: Path, gateway_env: dict[str, str]) -> object:
    """The team in this test's journal; call it with the policy alice sets."""
    shutil.copy(team_template, journal_path)

    def set_policy(*policy: str) -> None:
        result = invoke(
            "policy",
            "set",
            *(policy or ["approvals=2"]),
            "--as",
            "alice",
            "--password-stdin",
            input=lines(PASSWORDS["alice"]),
        )
        assert result.exit_code == 0, result.output

    return set_policy


def submit(path: Path, name: str = "bob") -> str:
    options, password = as_(name)
    result = invoke("submit", str(path), *options, "--json", input=password)
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["batch"])


def act(command: str, batch: str, name: str, *more: str) -> tuple[int, str]:
    options, password = as_(name)
    result = invoke(command, batch, *options, *more, input=password)
    for secret in PASSWORDS.values():
        assert secret not in result.output
    return result.exit_code, result.output


def test_nothing_is_sent_before_enough_distinct_approvals_and_then_the_batch_is_placed(
    sandbox: Sandbox, gateway_env: dict[str, str], team: Any, tmp_path: Path
) -> None:
    team()
    path = write_csv(tmp_path / "p.csv", payroll_rows(4))
    unsubmitted = invoke("run", str(path), "--yes")
    assert unsubmitted.exit_code == 1
    assert "needs 2 approval(s) before anything is sent and has not been submitted" in (
        unsubmitted.stderr
    )
    batch = submit(path)
    code, said = act("approve", batch, "bob")
    assert code == 1 and "bob is a preparer; approve needs a approver or admin" in said
    code, said = act("approve", batch, "carol")
    assert code == 0 and "approvals: 1 of the 2 it needs" in said
    code, said = act("approve", batch, "carol")
    assert code == 1 and "carol approved batch" in said and "distinct people" in said
    one = invoke("run", str(path), "--yes")
    assert one.exit_code == 1
    assert "needs 2 approval(s) before anything is sent and has 1 (carol)" in one.stderr
    assert sandbox.gateway.payout_requests == []
    assert act("approve", batch, "dave")[0] == 0
    options, password = as_("bob")
    placed = invoke("run", str(path), "--yes", "--json", *options, input=password)
    assert placed.exit_code == 0, placed.output
    assert json.loads(placed.stdout)["counts"] == {"processing": 4}
    assert len(sandbox.gateway.payout_requests) == 4


def test_an_admin_who_submits_cannot_approve_it_and_a_viewer_cannot_approve_at_all(
    sandbox: Sandbox, gateway_env: dict[str, str], team: Any, tmp_path: Path
) -> None:
    team()
    batch = submit(write_csv(tmp_path / "p.csv", payroll_rows(2)), "alice")
    code, said = act("approve", batch, "alice")
    assert code == 1 and f"alice submitted batch {batch}: someone else must approve it" in said
    code, said = act("approve", batch, "vera")
    assert code == 1 and "vera is a viewer" in said
    code, said = act("hold", batch, "carol")
    assert code == 1 and "carol is a approver; hold needs a admin" in said
    audit = json.loads(invoke("audit", batch, "--json").stdout)
    refused = [r for r in audit["rows"] if r["action"] == "refused"]
    assert len(refused) == 3


def test_a_wrong_password_is_refused_and_changes_nothing(
    sandbox: Sandbox, gateway_env: dict[str, str], team: Any, tmp_path: Path
) -> None:
    team()
    batch = submit(write_csv(tmp_path / "p.csv", payroll_rows(2)))
    result = invoke(
        "approve", batch, "--as", "carol", "--password-stdin", input=lines("not-carols-password")
    )
    assert result.exit_code == 1
    assert result.output.strip().endswith("wrong name or password")
    assert "not-carols-password" not in result.output
    audit = json.loads(invoke("audit", "--json").stdout)
    assert [r["action"] for r in audit["rows"]][-1] == "sign_in_failed"
    assert not [r for r in audit["rows"] if r["action"] == "approved"]


def test_a_changed_file_is_another_batch_and_unapproved(
    sandbox: Sandbox, gateway_env: dict[str, str], team: Any, tmp_path: Path
) -> None:
    team()
    rows = payroll_rows(3)
    path = write_csv(tmp_path / "p.csv", rows)
    batch = submit(path)
    act("approve", batch, "carol")
    act("approve", batch, "dave")
    rows[1][6] = "1999"  # one amount changed after the approvals
    changed = write_csv(tmp_path / "p.csv", rows)
    result = invoke("run", str(changed), "--yes")
    assert result.exit_code == 1
    assert "has not been submitted" in result.stderr
    assert sandbox.gateway.payout_requests == []


def test_an_approval_is_bound_to_the_content_the_journal_holds(
    sandbox: Sandbox, gateway_env: dict[str, str], team: Any, journal_path: Path, tmp_path: Path
) -> None:
    team()
    path = write_csv(tmp_path / "p.csv", payroll_rows(3))
    batch = submit(path)
    act("approve", batch, "carol")
    act("approve", batch, "dave")
    # Someone with write access raises an amount in the journal after the approvals.
    with contextlib.closing(sqlite3.connect(journal_path)) as db, db:
        db.execute("UPDATE row_content SET amount = amount + 5000 WHERE position = 0")
    result = invoke("run", str(path), "--yes")
    assert result.exit_code == 1
    assert "needs 2 approval(s) before anything is sent and has 0" in result.stderr
    assert sandbox.gateway.payout_requests == []


def test_a_rejected_batch_is_not_sent_and_submitted_again_needs_its_approvals_again(
    sandbox: Sandbox, gateway_env: dict[str, str], team: Any, tmp_path: Path
) -> None:
    team()
    path = write_csv(tmp_path / "p.csv", payroll_rows(2))
    batch = submit(path)
    act("approve", batch, "carol")
    assert act("reject", batch, "dave", "--reason", "row 2 is last month's rate")[0] == 0
    refused = invoke("run", str(path), "--yes")
    assert refused.exit_code == 1
    assert "was rejected (by dave at" in refused.stderr
    assert "row 2 is last month's rate" in refused.stderr
    assert act("approve", batch, "carol")[0] == 1  # a rejected batch cannot be approved
    assert submit(path) == batch
    act("approve", batch, "dave")
    again = invoke("run", str(path), "--yes")
    assert "has 1 (dave)" in again.stderr  # carol's approval was of the rejected round
    assert sandbox.gateway.payout_requests == []


def test_held_is_not_sent_until_released_and_cancelled_is_never_sent(
    sandbox: Sandbox, gateway_env: dict[str, str], team: Any, tmp_path: Path
) -> None:
    team("approvals=0")
    path = write_csv(tmp_path / "p.csv", payroll_rows(3))
    assert invoke("run", str(path), "--dry-run").exit_code == 0
    batch = json.loads(invoke("status", "--json").stdout)["batches"][0]["batch"]
    assert act("hold", batch, "alice", "--reason", "bank asked us to wait")[0] == 0
    held = invoke("run", str(path), "--yes")
    assert held.exit_code == 1
    assert f"batch {batch} is held (by alice at" in held.stderr
    assert "bank asked us to wait" in held.stderr
    assert act("release", batch, "alice")[1].startswith(f"alice released batch {batch}: now draft")
    other = write_csv(tmp_path / "q.csv", payroll_rows(2, start=10))
    assert invoke("run", str(other), "--dry-run").exit_code == 0
    second = next(
        b["batch"]
        for b in json.loads(invoke("status", "--json").stdout)["batches"]
        if b["batch"] != batch
    )
    assert act("cancel", second, "alice", "--reason", "paid by transfer")[0] == 0
    # Its rows are cancelled: a run sends none of them and says so (exit 0: a person's
    # decision, on the record).
    cancelled = invoke("run", str(other), "--yes", "--json")
    assert cancelled.exit_code == 0
    assert json.loads(cancelled.stdout)["counts"] == {"cancelled": 2}
    assert act("release", second, "alice")[0] == 1
    assert invoke("run", str(path), "--yes").exit_code == 0
    assert len(sandbox.gateway.payout_requests) == 3  # the released batch's only
    report = tmp_path / "q.report.csv"
    assert invoke("report", second, "-o", str(report)).exit_code == 0
    with report.open(encoding="utf-8-sig") as stream:
        text = stream.read()
    assert text.count(",cancelled,") == 2


@pytest.mark.parametrize("command", ["hold", "cancel"])
def test_a_hold_or_cancel_from_another_process_stops_a_sender_before_its_next_row(
    sandbox: Sandbox, gateway_env: dict[str, str], team: Any, tmp_path: Path, command: str
) -> None:
    team("approvals=0")
    sandbox.faults = Faults(latency=0.15)
    path = write_csv(tmp_path / "p.csv", payroll_rows(40))
    sender = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "batchpay",
            "run",
            str(path),
            "--yes",
            "--json",
            "--concurrency",
            "1",
        ],
        env={**os.environ, **gateway_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(sandbox.gateway.payout_requests) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        batch = json.loads(invoke("status", "--json").stdout)["batches"][0]["batch"]
        assert act(command, batch, "alice")[0] == 0
        out, err = sender.communicate(timeout=60)
    finally:
        if sender.poll() is None:
            sender.kill()
    summary = json.loads(out)
    sent = len(sandbox.gateway.payout_requests)
    assert 3 <= sent < 40
    assert summary["stopped"] is True
    left = "pending" if command == "hold" else "cancelled"
    assert summary["counts"] == {"processing": sent, left: 40 - sent}, err
    assert (
        f"batch {batch} was {'held' if command == 'hold' else 'cancelled'} by alice"
        in (summary["stop_reason"])
    )
    assert summary["exit_code"] == (4 if command == "hold" else 0)


def test_the_environment_may_tighten_the_policy_but_never_loosen_it(
    sandbox: Sandbox,
    gateway_env: dict[str, str],
    team: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    team()
    monkeypatch.setenv("BATCHPAY_APPROVALS", "0")
    path = write_csv(tmp_path / "p.csv", payroll_rows(2))
    result = invoke("run", str(path), "--yes")
    assert result.exit_code == 1 and "needs 2 approval(s)" in result.stderr
    monkeypatch.setenv("BATCHPAY_APPROVALS", "3")
    batch = submit(path)
    act("approve", batch, "carol")
    act("approve", batch, "dave")
    three = invoke("run", str(path), "--yes")
    assert three.exit_code == 1 and "needs 3 approval(s)" in three.stderr
    assert sandbox.gateway.payout_requests == []


def test_batches_at_or_below_approval_above_need_no_approval(
    sandbox: Sandbox, gateway_env: dict[str, str], team: Any, tmp_path: Path
) -> None:
    team("approvals=2", "approval_above=2001")
    small = write_csv(tmp_path / "small.csv", payroll_rows(2))  # 1000 + 1001
    assert invoke("run", str(small), "--yes").exit_code == 0
    big = write_csv(tmp_path / "big.csv", payroll_rows(2, start=10))  # 1010 + 1011
    assert invoke("run", str(big), "--yes").exit_code == 1
    assert len(sandbox.gateway.payout_requests) == 2


def test_the_whole_flow_against_a_sandbox_in_its_own_process(tmp_path: Path) -> None:
    """Issue 16's story: a team, a policy of two approvals and a batch limit; nothing sent
    before approval; the limit refuses before sending; the result names who did what; an
    edited audit row is found."""
    env = new_user_env(tmp_path / "home")
    with sandbox_process(env, tmp_path) as (exports, _server):
        journal = tmp_path / "journal.sqlite3"
        run_env = {**env, **exports, "BATCHPAY_JOURNAL": str(journal)}

        def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
            """The command line, in this process (the sandbox is the other process)."""
            result = CliRunner(env=run_env).invoke(main_cli, list(args), input=stdin)
            assert result.exception is None or isinstance(result.exception, SystemExit), (
                result.exception
            )
            done = subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)
            for secret in PASSWORDS.values():
                assert secret not in done.stdout + done.stderr
            return done

        def attempts() -> int:
            with contextlib.closing(sqlite3.connect(journal)) as db:
                return int(db.execute("SELECT COALESCE(sum(attempts), 0) FROM rows").fetchone()[0])

        assert (
            cli(
                "user",
                "add",
                "alice",
                "--role",
                "admin",
                "--password-stdin",
                stdin=lines(PASSWORDS["alice"]),
            ).returncode
            == 0
        )
        for name in ("bob", "carol", "dave"):
            added = cli(
                "user",
                "add",
                name,
                "--role",
                ROLES[name],
                "--as",
                "alice",
                "--password-stdin",
                stdin=lines(PASSWORDS["alice"], PASSWORDS[name]),
            )
            assert added.returncode == 0, added.stderr
        assert (
            cli(
                "policy",
                "set",
                "approvals=2",
                "max_batch_total=10000",
                "--as",
                "alice",
                "--password-stdin",
                stdin=lines(PASSWORDS["alice"]),
            ).returncode
            == 0
        )
        big = tmp_path / "big.xlsx"
        workbook = openpyxl.Workbook()
        sheet = workbook.active
        assert sheet is not None
        sheet.append(
            [
                "Employee",
                "First Name",
                "Last Name",
                "Account No",
                "Mobile",
                "Email",
                "Amount",
                "Remark",
            ]
        )
        for row in payroll_rows(11):
            sheet.append(row)
        workbook.save(big)
        refused = cli("run", str(big), "--yes")
        assert refused.returncode == 1
        assert "above the limit max_batch_total 10,000" in refused.stderr
        path = write_csv(tmp_path / "p.csv", payroll_rows(5))
        workbook_path = tmp_path / "p.xlsx"
        submitted = cli(
            "submit",
            str(path),
            "--as",
            "bob",
            "--password-stdin",
            "--json",
            stdin=lines(PASSWORDS["bob"]),
        )
        assert submitted.returncode == 0, submitted.stderr
        batch = json.loads(submitted.stdout)["batch"]
        assert cli("run", str(path), "--yes").returncode == 1
        assert attempts() == 0
        for name in ("carol", "dave"):
            approved = cli(
                "approve", batch, "--as", name, "--password-stdin", stdin=lines(PASSWORDS[name])
            )
            assert approved.returncode == 0, approved.stderr
        sent = cli(
            "run",
            str(path),
            "--yes",
            "--json",
            "-o",
            str(workbook_path),
            "--as",
            "bob",
            "--password-stdin",
            stdin=lines(PASSWORDS["bob"]),
        )
        assert sent.returncode == 0, sent.stderr
        assert json.loads(sent.stdout)["counts"] == {"processing": 5}
        summary = dict(openpyxl.load_workbook(workbook_path)["Summary"].iter_rows(values_only=True))
        assert str(summary["submitted by"]).startswith("bob at ")
        approvers = [
            r
            for r in openpyxl.load_workbook(workbook_path)["Summary"].iter_rows(values_only=True)
            if r[0] == "approved by"
        ]
        assert sorted(str(r[1]).split()[0] for r in approvers) == ["carol", "dave"]
        assert str(summary["sent by"]).startswith("bob (user) at ")
        head = str(summary["audit head"])
        verified = cli("audit", "--verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        trail = json.loads(cli("audit", batch, "--json").stdout)["rows"]
        actions = [r["action"] for r in trail]
        # The run before the approvals was refused, on the record.
        assert actions == [
            "submitted",
            "refused",
            "approved",
            "approved",
            "send_started",
            "send_finished",
        ]
        # The head in the result file is an earlier copy: the trail has grown past it, never
        # changed under it.
        assert head.startswith("audit head: #")
        with contextlib.closing(sqlite3.connect(journal)) as db, db:
            db.execute("DROP TRIGGER audit_no_update")
            db.execute("UPDATE audit SET details = '{\"total\":1}' WHERE action = 'approved'")
        broken = cli("audit", "--verify")
        assert broken.returncode == 1
        first = next(r["id"] for r in trail if r["action"] == "approved")
        assert f"#{first}" in broken.stdout + broken.stderr


@pytest.mark.parametrize("command", ["hold", "cancel"])
def test_a_claim_made_after_a_hold_or_cancel_claims_nothing_and_the_rows_stay_unsent(
    sandbox: Sandbox, gateway_env: dict[str, str], team: Any, tmp_path: Path,
    journal_path: Path, command: str,
) -> None:  # fmt: skip
    """The race a sender's check before each row cannot close alone: a hold or cancel that
    commits between that check and the claim. The claim itself obeys it (one statement under
    the write lock), so no row it stopped is ever handed to the HTTP client."""
    from batchpay.journal.store import Journal

    team("approvals=0")
    path = write_csv(tmp_path / "p.csv", payroll_rows(3))
    assert invoke("run", str(path), "--dry-run").exit_code == 0
    batch = json.loads(invoke("status", "--json").stdout)["batches"][0]["batch"]
    assert act(command, batch, "alice")[0] == 0
    with Journal(journal_path) as journal:
        rows = journal.rows(batch, fields=False)
        claimed = journal.claim([r.trade_no for r in rows if r.trade_no])
        after = journal.rows(batch, fields=False)
    assert claimed == set()
    assert not any(r.in_flight for r in after)
    expected = "pending" if command == "hold" else "cancelled"
    assert {r.outcome.value for r in after} == {expected}


def test_a_threshold_in_the_environment_never_relaxes_the_journals_approvals(
    sandbox: Sandbox, gateway_env: dict[str, str], team: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    team("approvals=2")
    monkeypatch.setenv("BATCHPAY_APPROVAL_ABOVE", "999999999")
    result = invoke("run", str(write_csv(tmp_path / "p.csv", payroll_rows(3))), "--yes")
    assert result.exit_code == 1 and "needs 2 approval(s)" in result.stderr
    # The environment's own approvals, below its own threshold, need none: the journal's do.
    monkeypatch.setenv("BATCHPAY_APPROVALS", "3")
    again = invoke("run", str(tmp_path / "p.csv"), "--yes")
    assert again.exit_code == 1 and "needs 2 approval(s)" in again.stderr
    assert sandbox.gateway.payout_requests == []


def test_an_approval_by_a_user_disabled_since_no_longer_counts(
    sandbox: Sandbox, gateway_env: dict[str, str], team: Any, tmp_path: Path
) -> None:
    team("approvals=1")
    path = write_csv(tmp_path / "p.csv", payroll_rows(2))
    batch = submit(path)
    assert act("approve", batch, "carol")[0] == 0
    disabled = invoke("user", "disable", "carol", "--as", "alice", "--password-stdin",
                      input=lines(PASSWORDS["alice"]))  # fmt: skip
    assert disabled.exit_code == 0, disabled.output
    result = invoke("run", str(path), "--yes")
    assert result.exit_code == 1 and "needs 1 approval(s)" in result.stderr
    assert sandbox.gateway.payout_requests == []
    assert act("approve", batch, "dave")[0] == 0
    assert invoke("run", str(path), "--yes").exit_code == 0


def test_a_stopped_batch_is_submitted_again_when_approvals_come_to_be_needed(
    sandbox: Sandbox, gateway_env: dict[str, str], team: Any, tmp_path: Path
) -> None:
    team("approvals=0")
    sandbox.faults = Faults(rates={"bad_sign": 1.0})  # a systemic refusal: the run stops
    path = write_csv(tmp_path / "p.csv", payroll_rows(3))
    stopped = json.loads(invoke("run", str(path), "--yes", "--json").stdout)
    assert stopped["counts"] == {"pending": 3}
    batch = stopped["batch"]
    assert json.loads(invoke("status", "--json").stdout)["batches"][0]["state"] == "stopped"
    sandbox.faults = Faults()
    team("approvals=1")
    assert invoke("run", str(path), "--yes").exit_code == 1  # needs its approval now
    assert submit(path) == batch  # a new round for the rows left to send
    assert act("approve", batch, "carol")[0] == 0
    done = invoke("run", str(path), "--yes", "--json")
    assert done.exit_code == 0 and json.loads(done.stdout)["counts"] == {"processing": 3}


def test_the_daily_total_counts_the_rows_another_batch_being_sent_has_still_to_send(
    sandbox: Sandbox, gateway_env: dict[str, str], team: Any, tmp_path: Path,
    journal_path: Path,
) -> None:  # fmt: skip
    """Two runs confirmed at once: the limit is checked again when sending starts, under the
    journal's write lock, and a batch marked sending counts with the rows it has left."""
    from batchpay.journal.store import Journal
    from batchpay.team.audit import os_actor
    from batchpay.team.life import journal_content
    from batchpay.team.policy import Policy
    from batchpay.team.sending import start_sending

    team("daily_total=3000")
    first = write_csv(tmp_path / "a.csv", payroll_rows(2))  # 2,001
    assert invoke("run", str(first), "--dry-run").exit_code == 0
    batch = json.loads(invoke("status", "--json").stdout)["batches"][0]["batch"]
    with Journal(journal_path) as journal:  # as a run that has just started sending it
        start_sending(journal, os_actor(), journal_content(journal, batch), Policy(),
                      rows=2, amount=2001)  # fmt: skip
    second = write_csv(tmp_path / "b.csv", payroll_rows(2, start=10))  # 2,021
    refused = invoke("run", str(second), "--yes")
    assert refused.exit_code == 1
    said = "the 2,001 this gateway account paid out in the last 24 hours (or is sending now)"
    assert said in refused.stderr
    assert sandbox.gateway.payout_requests == []


def test_cancelling_again_cancels_rows_a_reconcile_later_found_never_placed(
    sandbox: Sandbox, gateway_env: dict[str, str], team: Any, tmp_path: Path,
    journal_path: Path,
) -> None:  # fmt: skip
    team("approvals=0")
    path = write_csv(tmp_path / "p.csv", payroll_rows(3))
    assert invoke("run", str(path), "--dry-run").exit_code == 0
    batch = json.loads(invoke("status", "--json").stdout)["batches"][0]["batch"]
    assert act("cancel", batch, "alice")[0] == 0
    # As after a reconcile whose query said "no such order" for a row once left unknown.
    with contextlib.closing(sqlite3.connect(journal_path)) as db, db:
        db.execute(
            "UPDATE row_state SET outcome = 'pending', attempts = 1 WHERE batch_id = ? "
            "AND position = 0", (batch,),
        )  # fmt: skip
    assert act("cancel", batch, "alice")[0] == 0
    counts = json.loads(invoke("status", "--json").stdout)["batches"][0]["counts"]
    assert counts == {"cancelled": 3}
