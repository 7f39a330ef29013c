"""Nothing can fail after the money moved without telling the truth (issue 11, section 4).

The result path is checked before anything is read or sent; another batch's result (or a file
that is not a result at all) is never replaced; a full disk under the journal or the result file
after sending started ends with the journal's summary, one error line and exit 4; a damaged
journal is one line for run, status and report. Full disks are real: a small tmpfs, mounted for
the test (root only; skipped, saying so, where mount is not allowed).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from helpers import MERCHANT, SECRET, Sandbox, invoke, payroll_rows, read_result, write_csv

from batchpay.config import GatewayConfig, SendOptions
from batchpay.gateway.dispatch import Progress
from batchpay.payrun import RunRequest, run_batch


def journal_trade_nos(journal: Path) -> set[str]:
    with sqlite3.connect(journal) as db:
        return {t for (t,) in db.execute("SELECT trade_no FROM rows") if t}


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("batchpay: error:")]


def summary_batch(path: Path) -> str:
    workbook = openpyxl.load_workbook(path, read_only=True)
    items = {row[0]: row[1] for row in workbook["Summary"].iter_rows(values_only=True)}
    workbook.close()
    return str(items["batch"])


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs of the test's own: a disk that really fills up."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: a full disk cannot be made for real here")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Take all the free space of ``disk`` but ``leave`` bytes; returns the filler file."""
    stat = os.statvfs(disk)
    filler = disk / "filler"
    with filler.open("wb") as stream:
        stream.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave))
    return filler


# -- 1. the output path, before anything is read or sent -------------------------------------


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("out.txt", "must end in .xlsx or .csv"),
        ("/proc/r.csv", "no file can be created in /proc"),
        ("payroll.csv/x.csv", "is a file, not a folder"),
        ("a-folder", "it is a folder"),
        ("a-folder.xlsx", "it is a folder"),
    ],
)
def test_an_unusable_output_path_is_refused_before_anything_is_planned_or_sent(
    sandbox: Sandbox,
    gateway_env: dict[str, str],
    payroll_csv: Path,
    journal_path: Path,
    tmp_path: Path,
    target: str,
    says: str,
) -> None:
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-folder.xlsx").mkdir()
    output = target if target.startswith("/") else str(tmp_path / target)
    result = invoke("run", str(payroll_csv), "--yes", "-o", output)
    # 2: a usage error of -o, as click gives for an option's value that cannot be used.
    assert result.exit_code == 2, result.output
    [line] = error_lines(result.stderr)
    assert says in line and output in line and "-o" in line and "nothing was sent" in line
    assert "Traceback" not in result.output
    assert sandbox.gateway.payout_requests == []
    assert not journal_path.exists()  # nothing planned either


def test_folders_made_to_prove_the_output_path_are_gone_when_the_run_is_refused(
    sandbox: Sandbox, gateway_env: dict[str, str], payroll_csv: Path, tmp_path: Path
) -> None:
    output = tmp_path / "new" / "sub" / "r.csv"
    result = invoke("run", str(payroll_csv), "--yes", "--expect-count", "1", "-o", str(output))
    assert result.exit_code == 1
    assert not (tmp_path / "new").exists()
    result = invoke("run", str(payroll_csv), "--yes", "-o", str(output))
    assert result.exit_code == 0, result.output
    assert len(read_result(output)) == 12


def test_a_read_only_disk_for_the_result_is_refused_before_anything_is_sent(
    sandbox: Sandbox, gateway_env: dict[str, str], payroll_csv: Path, small_disk: Path
) -> None:
    # Root ignores a folder's modes, so a read-only mount is the real unwritable folder here.
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    output = small_disk / "r.xlsx"
    result = invoke("run", str(payroll_csv), "--yes", "-o", str(output))
    assert result.exit_code == 2, result.output
    [line] = error_lines(result.stderr)
    assert str(output) in line and "read-only" in line
    assert sandbox.gateway.payout_requests == []


# -- 4. another batch's result is never replaced -----------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_another_batchs_result_is_refused_before_the_confirmation_and_kept(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path, suffix: str
) -> None:
    payroll = write_csv(tmp_path / "payroll.csv", payroll_rows(5))
    output = tmp_path / f"payroll.result{suffix}"
    first = invoke("run", str(payroll), "--yes", "-o", str(output), "--json")
    assert first.exit_code == 0, first.output
    kept = output.read_bytes()
    # Next month: the same file name, other rows; the old result is still beside it.
    write_csv(payroll, payroll_rows(4, start=100))
    result = invoke("run", str(payroll), "--yes", "-o", str(output))
    assert result.exit_code == 1, result.output
    [line] = error_lines(result.stderr)
    assert str(output) in line and "-o" in line and "nothing was sent" in line
    if suffix == ".xlsx":
        assert f"batch {json.loads(first.stdout)['batch']}" in line
    assert len(sandbox.gateway.payout_requests) == 5
    assert output.read_bytes() == kept
    # Named elsewhere, the run goes ahead.
    other = tmp_path / f"payroll-2.result{suffix}"
    assert invoke("run", str(payroll), "--yes", "-o", str(other)).exit_code == 0
    assert len(sandbox.gateway.orders) == 9


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_result_whose_every_payout_the_new_batch_names_as_repeat_is_carried_forward(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path, suffix: str
) -> None:
    rows = payroll_rows(4)
    path = write_csv(tmp_path / "p.csv", rows)
    output = tmp_path / f"p.result{suffix}"
    assert invoke("run", str(path), "--yes", "-o", str(output)).exit_code == 0
    earlier = {r["tradeNo"] for r in read_result(output)}
    kept = output.read_bytes()
    # One amount changed: that row is a new payout, and the old result's row for it is not
    # named by the new batch: replacing the file would lose it.
    changed = [*rows[:3], [*rows[3][:6], "5000", rows[3][7]]]
    write_csv(path, changed)
    refused = invoke("run", str(path), "--yes", "-o", str(output))
    assert refused.exit_code == 1
    assert "holds the result of" in refused.stderr
    assert output.read_bytes() == kept
    # One row added: the four earlier payouts are held back as repeats naming their tradeNos.
    write_csv(path, [*rows, payroll_rows(1, start=70)[0]])
    result = invoke("run", str(path), "--yes", "-o", str(output), "--json")
    assert result.exit_code == 0, result.output
    assert "every payout in it is named in this batch's result" in result.stderr
    assert json.loads(result.stdout)["counts"] == {"processing": 1, "repeat": 4}
    named = {r["msg"].split("as tradeNo ")[1].split()[0] for r in read_result(output)[:4]}
    assert named == earlier
    assert len(sandbox.gateway.orders) == 5


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_the_same_batchs_result_is_replaced_dry_run_then_real_run(
    sandbox: Sandbox, gateway_env: dict[str, str], payroll_csv: Path, suffix: str
) -> None:
    output = payroll_csv.with_name(f"payroll.result{suffix}")
    assert invoke("run", str(payroll_csv), "--dry-run", "-o", str(output)).exit_code == 0
    assert {r["outcome"] for r in read_result(output)} == {"pending"}
    result = invoke("run", str(payroll_csv), "--yes", "-o", str(output))
    assert result.exit_code == 0, result.output
    assert {r["outcome"] for r in read_result(output)} == {"processing"}


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_file_that_is_not_a_batchpay_result_is_never_replaced(
    sandbox: Sandbox, gateway_env: dict[str, str], payroll_csv: Path, suffix: str
) -> None:
    theirs = payroll_csv.with_name(f"budget{suffix}")
    if suffix == ".csv":
        theirs.write_text("month,budget\nJanuary,100000\n", encoding="utf-8")
    else:
        workbook = openpyxl.Workbook()
        workbook.active.append(["month", "budget"])
        workbook.save(theirs)
    before = theirs.read_bytes()
    result = invoke("run", str(payroll_csv), "--yes", "-o", str(theirs))
    assert result.exit_code == 1
    [line] = error_lines(result.stderr)
    assert "is not a batchpay result file" in line and str(theirs) in line
    assert theirs.read_bytes() == before
    assert sandbox.gateway.payout_requests == []
    # The input file itself, given as the output by mistake, is not a result either.
    result = invoke("run", str(payroll_csv), "--yes", "-o", str(payroll_csv))
    assert result.exit_code == 1
    assert "is not a batchpay result file" in result.stderr
    assert sandbox.gateway.payout_requests == []


def test_a_sandbox_result_is_never_evidence_and_is_replaced(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    output = tmp_path / "r.xlsx"
    first = write_csv(tmp_path / "a.csv", payroll_rows(3))
    assert invoke("run", str(first), "--yes", "-o", str(output)).exit_code == 0
    # The marker the Summary sheet carries for a run against the in-process sandbox.
    workbook = openpyxl.load_workbook(output)
    workbook["Summary"].append(["sandbox", "yes: in-process sandbox, not a real payment"])
    workbook.save(output)
    second = write_csv(tmp_path / "b.csv", payroll_rows(2, start=50))
    result = invoke("run", str(second), "--yes", "-o", str(output), "--json")
    assert result.exit_code == 0, result.output
    assert summary_batch(output) == json.loads(result.stdout)["batch"]


def test_the_in_process_sandbox_can_run_again_and_again_over_its_own_results(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    journal = tmp_path / "sandbox-journal.sqlite3"
    for suffix in (".csv", ".xlsx"):
        output = tmp_path / f"practice{suffix}"
        for start in (0, 10, 20):  # other rows each time: another batch each time
            path = write_csv(tmp_path / "input.csv", payroll_rows(3, start=start))
            result = invoke(
                "run", str(path), "--sandbox", "--yes", "--journal", str(journal),
                "-o", str(output),
            )  # fmt: skip
            assert result.exit_code == 0, result.output
            assert {r["tradeNo"] for r in read_result(output)} <= journal_trade_nos(journal)


def test_a_sandbox_run_never_replaces_a_real_result(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    output = tmp_path / "r.xlsx"
    real = write_csv(tmp_path / "real.csv", payroll_rows(3))
    assert invoke("run", str(real), "--yes", "-o", str(output)).exit_code == 0
    kept = output.read_bytes()
    practice = write_csv(tmp_path / "practice.csv", payroll_rows(3, start=40))
    result = invoke(
        "run", str(practice), "--sandbox", "--yes", "-o", str(output),
        "--journal", str(tmp_path / "sandbox.sqlite3"),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "holds the result of batch" in result.stderr
    assert output.read_bytes() == kept


def test_report_replaces_its_own_batchs_result_and_refuses_another(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    a, b = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    file_a = write_csv(tmp_path / "a.csv", payroll_rows(2))
    file_b = write_csv(tmp_path / "b.csv", payroll_rows(2, start=9))
    run_a = invoke("run", str(file_a), "--yes", "-o", str(a), "--json")
    run_b = invoke("run", str(file_b), "--yes", "-o", str(b), "--json")
    batch_a = json.loads(run_a.stdout)["batch"]
    batch_b = json.loads(run_b.stdout)["batch"]
    assert invoke("report", batch_a, "-o", str(a)).exit_code == 0
    result = invoke("report", batch_b, "-o", str(a))
    assert result.exit_code == 1
    assert f"holds the result of batch {batch_a}" in result.stderr
    assert summary_batch(a) == batch_a
    assert invoke("report", batch_b, "-o", str(tmp_path / "r.txt")).exit_code == 2


# -- 2. a failure after sending started tells the truth ---------------------------------------


def test_journal_disk_full_while_sending_prints_the_journals_summary_and_exits_4(
    sandbox: Sandbox,
    gateway_env: dict[str, str],
    small_disk: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    journal = small_disk / "journal.sqlite3"
    monkeypatch.setenv("BATCHPAY_JOURNAL", str(journal))
    payroll = write_csv(tmp_path / "payroll.csv", payroll_rows(300))
    output = tmp_path / "payroll.result.csv"
    assert invoke("run", str(payroll), "--dry-run").exit_code == 0
    planned = journal_trade_nos(journal)
    # Room for the shared-memory file and a few commits of claims and answers, not for all.
    filler = fill(small_disk, 200 * 1024)

    result = invoke("run", str(payroll), "--yes")
    assert result.exit_code == 4, result.output
    assert "Traceback" not in result.output
    [line] = error_lines(result.stderr)
    assert f"the journal {journal}" in line and "the disk is full" in line
    placed = len(sandbox.gateway.orders)
    assert 0 < placed < 300  # money moved, then the journal filled up
    lines = result.stdout.splitlines()
    assert lines[0].startswith("batch ")
    listed = (x.split() for x in lines[1:])
    counts = {parts[0]: int(parts[1]) for parts in listed if len(parts) == 3}
    assert sum(counts.values()) == 300 and counts.get("pending", 0) > 0
    # Rows whose answers the journal could not keep read as unknown, never pending.
    assert counts.get("processing", 0) + counts.get("unknown", 0) >= placed
    batch = lines[0].split()[1]
    assert f"`batchpay report {batch} -o {output}`" in result.stdout
    assert "result file: not written" in result.stdout

    filler.unlink()
    again = invoke("run", str(payroll), "--yes", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["counts"] == {"processing": 300}
    # Each row paid once, under the tradeNo planned for it.
    assert set(sandbox.gateway.orders) == planned
    assert len(sandbox.gateway.payout_requests) == len(set(sandbox.gateway.payout_requests))


def test_result_file_disk_full_after_sending_exits_4_and_report_writes_it_later(
    sandbox: Sandbox, gateway_env: dict[str, str], payroll_csv: Path, small_disk: Path
) -> None:
    output = small_disk / "payroll.result.xlsx"
    filler = fill(small_disk, 0)
    result = invoke("run", str(payroll_csv), "--yes", "-o", str(output), "--json")
    assert result.exit_code == 4, result.output
    assert "Traceback" not in result.output
    summary = json.loads(result.stdout)
    assert summary["counts"] == {"processing": 12}
    assert summary["result_file"] == ""
    assert f"batchpay report {summary['batch']} -o {output}" in summary["next_step"]
    [line] = error_lines(result.stderr)
    assert f"the result file {output} was not written" in line and "disk is full" in line
    assert summary["error"] in line
    assert len(sandbox.gateway.orders) == 12
    assert [p.name for p in small_disk.iterdir()] == ["filler"]  # no half-written file left

    filler.unlink()
    report = invoke("report", summary["batch"], "-o", str(output))
    assert report.exit_code == 0, report.output
    assert {r["outcome"] for r in read_result(output)} == {"processing"}


def test_a_result_write_that_fails_without_sending_says_nothing_was_sent(
    sandbox: Sandbox, gateway_env: dict[str, str], payroll_csv: Path, small_disk: Path
) -> None:
    fill(small_disk, 0)
    result = invoke("run", str(payroll_csv), "--dry-run", "-o", str(small_disk / "r.csv"))
    assert result.exit_code == 1
    [line] = error_lines(result.stderr)
    assert "disk is full" in line
    assert sandbox.gateway.payout_requests == []


# -- 3. a damaged journal is one line ---------------------------------------------------------


def test_a_journal_damaged_in_the_middle_is_one_line_for_run_status_and_report(
    sandbox: Sandbox, gateway_env: dict[str, str], journal_path: Path, tmp_path: Path
) -> None:
    payroll = write_csv(tmp_path / "payroll.csv", payroll_rows(300))
    first = invoke("run", str(payroll), "--yes", "--json")
    assert first.exit_code == 0
    batch = json.loads(first.stdout)["batch"]
    assert not journal_path.with_name(journal_path.name + "-wal").exists()  # all in the file
    size = journal_path.stat().st_size
    with journal_path.open("r+b") as stream:  # the middle third: the rows table's pages
        stream.seek(size // 3)
        stream.write(os.urandom(size // 3))
    sent = len(sandbox.gateway.payout_requests)
    for args in (
        ["run", str(payroll), "--yes"],
        ["status"],
        ["status", batch],
        ["report", batch, "-o", str(tmp_path / "r.xlsx")],
    ):
        result = invoke(*args)
        assert result.exit_code == 1, (args, result.output)
        assert "Traceback" not in result.output
        [line] = error_lines(result.stderr)
        assert str(journal_path) in line and "damaged" in line, line
        assert result.stderr.strip() == line
    assert len(sandbox.gateway.payout_requests) == sent


# -- through run_batch's own seam: whatever fails while sending, a summary, never a raise ------


@pytest.mark.parametrize(
    ("failure", "says"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "the disk is full"),
        (RuntimeError("boom"), "unexpected RuntimeError: boom (a batchpay bug"),
    ],
    ids=["enospc", "bug"],
)
def test_run_batch_turns_any_failure_while_sending_into_a_summary_with_exit_4(
    sandbox: Sandbox, payroll_csv: Path, journal_path: Path, failure: Exception, says: str
) -> None:
    config = GatewayConfig(
        payout_url=sandbox.server.payout_url, merchant_no=MERCHANT, secret=SECRET,
        query_url=sandbox.server.query_url, notify_url="https://merchant.example.com/n",
    )  # fmt: skip
    request = RunRequest(
        file=payroll_csv, output=payroll_csv.with_name("r.csv"), journal=journal_path,
        options=SendOptions(concurrency=1), config=config,
    )  # fmt: skip

    def progress(seen: Progress) -> None:
        if seen.done == 3:  # the progress display fails after three payouts
            raise failure

    summary = run_batch(request, lambda confirmation: None, lambda line: None, progress)
    assert summary.exit_code == 4
    assert says in summary.error
    assert summary.result_file == "" and not request.output.exists()
    assert summary.counts.get("processing", 0) >= 3
    assert sum(summary.counts.values()) == 12
    assert f"batchpay report {summary.batch_id} -o {request.output}" in summary.next_step
    assert len(sandbox.gateway.orders) >= 3
