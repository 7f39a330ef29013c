"""Folder mode for cron: each waiting spreadsheet once, finished ones archived, one run
at a time."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import Sandbox, invoke, payroll_rows, write_csv

from batchpay.folder import folder_lock


def test_a_folder_run_sends_each_file_once_and_archives_the_finished_ones(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    inbox, done = tmp_path / "inbox", tmp_path / "done"
    inbox.mkdir()
    write_csv(inbox / "a-november.csv", payroll_rows(3))
    write_csv(inbox / "b-bonus.csv", payroll_rows(2, start=10))
    broken = payroll_rows(2, start=20)
    broken[1][6] = "99"
    write_csv(inbox / "c-broken.csv", broken)
    (inbox / "~$a-november.xlsx").write_bytes(b"excel lock file")
    (inbox / "old.result.csv").write_text("not an input")

    result = invoke("run", str(inbox), "--archive", str(done), "--yes", "--json")
    assert result.exit_code == 1, result.output  # the broken file: input error, nothing sent
    report = json.loads(result.stdout)
    assert [Path(f["source"]).name for f in report["files"]] == [
        "a-november.csv", "b-bonus.csv", "c-broken.csv",
    ]  # fmt: skip
    assert sorted(p.name for p in done.iterdir()) == [
        "a-november.csv", "a-november.result.csv", "b-bonus.csv", "b-bonus.result.csv",
    ]  # fmt: skip
    assert (inbox / "c-broken.csv").exists() and "row 3, column 'Amount'" in result.stderr
    assert len(sandbox.gateway.orders) == 5

    again = invoke("run", str(inbox), "--archive", str(done), "--yes", "--json")
    assert [Path(f["source"]).name for f in json.loads(again.stdout)["files"]] == ["c-broken.csv"]
    assert len(sandbox.gateway.payout_requests) == 5


def test_an_overlapping_folder_run_sends_nothing(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_csv(inbox / "a.csv", payroll_rows(2))
    with folder_lock(inbox):
        result = invoke("run", str(inbox), "--yes")
    assert result.exit_code == 1
    assert "another batchpay run (process" in result.stderr
    assert sandbox.gateway.payout_requests == []
    assert invoke("run", str(inbox), "--yes").exit_code == 0


def test_an_empty_folder_is_not_an_error(gateway_env: dict[str, str], tmp_path: Path) -> None:
    result = invoke("run", str(tmp_path), "--yes")
    assert result.exit_code == 0
    assert "no spreadsheet waiting" in result.stdout


def test_last_months_file_dropped_again_stays_with_the_reason(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    inbox, done = tmp_path / "inbox", tmp_path / "done"
    inbox.mkdir()
    write_csv(inbox / "october.csv", payroll_rows(3))
    assert invoke("run", str(inbox), "--archive", str(done), "--yes").exit_code == 0
    write_csv(inbox / "november.csv", payroll_rows(3))  # the same people and amounts
    result = invoke("run", str(inbox), "--archive", str(done), "--yes", "--json")
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)["files"]
    assert report["nothing_sent"] and "not archived" in report["kept"]
    assert "--pay-again" in result.stderr
    assert (inbox / "november.csv").exists() and not (done / "november.csv").exists()
    assert len(sandbox.gateway.payout_requests) == 3
