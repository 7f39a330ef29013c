"""Crashes and signals: a real process, killed or interrupted, and re-run until done."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import Sandbox, payroll_rows, read_result, write_csv
from test_faults import assert_placed_once, assert_truthful

from batchpay.sandbox.gateway import Faults


def start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "batchpay", *args], env=env, cwd=cwd, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


@pytest.fixture
def env(gateway_env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **gateway_env}


# The status query's faults for the kill loop's second run: the rows a kill left unknown are
# asked about through a query that fails too.
KILL_QUERY_FAULTS = {"503": 0.1, "hang": 0.05, "garbage": 0.05, "reset": 0.03}


@pytest.mark.parametrize("query_faults", [{}, KILL_QUERY_FAULTS], ids=["", "query-faults"])
def test_sigkill_at_random_moments_then_rerun_places_each_row_exactly_once(
    sandbox: Sandbox, env: dict[str, str], tmp_path: Path, journal_path: Path,
    query_faults: dict[str, float],
) -> None:  # fmt: skip
    # KILL_TEST_SEED replays a run (the fixtures clear BATCHPAY_* variables).
    seed = int(os.environ.get("KILL_TEST_SEED", random.randrange(10**6)))
    rng = random.Random(seed)
    sandbox.faults = Faults(
        rates={"503": 0.05, "hang": 0.03, "reset": 0.03, "500": 0.03},
        query_rates=query_faults, latency=0.01, jitter=0.02, hang_seconds=1, seed=seed,
    )  # fmt: skip
    path = write_csv(tmp_path / "p.csv", payroll_rows(600))
    output = tmp_path / "r.csv"
    args = ["run", str(path), "--yes", "--timeout", "0.4", "-o", str(output), "--concurrency", "16"]
    kills, kills_while_sending, codes = 0, 0, []
    for _ in range(40):
        process = start(args, env, tmp_path)
        if kills < 8:
            sending = False
            if kills % 2 == 1:
                # Any moment: start-up, reading, planning, sending or writing results.
                time.sleep(rng.uniform(0.3, 2.5))
            else:
                # A moment while requests are under way.
                seen = sandbox.gateway.arrived
                wait_for(
                    lambda seen=seen, process=process: (  # type: ignore[misc]
                        sandbox.gateway.arrived > seen or process.poll() is not None
                    )
                )
                sending = sandbox.gateway.arrived > seen
                time.sleep(rng.uniform(0.0, 0.2))
            if process.poll() is None:
                kills_while_sending += sending
                process.kill()
                process.communicate()
                kills += 1
                continue
        _, stderr = process.communicate(timeout=120)
        codes.append(process.returncode)
        assert "Traceback" not in stderr, stderr
        if process.returncode == 0:
            break
    assert codes and codes[-1] == 0, f"seed {seed}: exit codes {codes}"
    assert kills_while_sending >= 1, f"seed {seed}: no kill landed while requests were under way"
    if query_faults:
        assert sandbox.gateway.query_requests, f"seed {seed}: the status query was never asked"
    rows = read_result(output)
    assert len(rows) == 600
    assert_truthful(rows, sandbox)
    assert_placed_once(rows, sandbox)
    with sqlite3.connect(journal_path) as db:
        assert db.execute("SELECT count(*), count(DISTINCT trade_no) FROM rows").fetchone() == (
            600,
            600,
        )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_lets_requests_in_flight_finish_and_writes_a_truthful_result(
    sandbox: Sandbox, env: dict[str, str], tmp_path: Path, signum: signal.Signals
) -> None:
    sandbox.faults = Faults(latency=0.6)
    path = write_csv(tmp_path / "p.csv", payroll_rows(40))
    output = tmp_path / "r.csv"
    process = start(["run", str(path), "--yes", "--json", "--concurrency", "4", "-o", str(output)],
                    env, tmp_path)  # fmt: skip
    wait_for(lambda: sandbox.gateway.arrived >= 4)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 4, stderr
    summary = json.loads(stdout)
    assert summary["stopped"] and summary["stop_reason"] == "interrupted"
    rows = read_result(output)
    assert_truthful(rows, sandbox)
    placed = [r for r in rows if r["outcome"] == "processing"]
    assert len(placed) == len(sandbox.gateway.orders) >= 4  # the in-flight ones finished
    assert {r["outcome"] for r in rows} == {"processing", "pending"}


def test_a_second_sigint_leaves_at_once_and_a_rerun_resolves_the_rows_in_flight(
    sandbox: Sandbox, env: dict[str, str], tmp_path: Path, journal_path: Path
) -> None:
    sandbox.faults = Faults(latency=30)
    path = write_csv(tmp_path / "p.csv", payroll_rows(20))
    output = tmp_path / "r.csv"
    process = start(["run", str(path), "--yes", "--concurrency", "4", "-o", str(output)], env,
                    tmp_path)  # fmt: skip
    wait_for(lambda: sandbox.gateway.arrived >= 4)
    process.send_signal(signal.SIGINT)
    time.sleep(0.2)
    began = time.monotonic()
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=20)
    assert time.monotonic() - began < 5
    assert process.returncode == 4, stderr
    assert "interrupted twice" in stderr
    assert not output.exists()
    with sqlite3.connect(journal_path) as db:
        states = dict(db.execute("SELECT outcome, count(*) FROM rows GROUP BY outcome"))
        in_flight = db.execute("SELECT count(*) FROM rows WHERE in_flight = 1").fetchone()[0]
        unknown = [t for (t,) in db.execute("SELECT trade_no FROM rows WHERE outcome = 'unknown'")]
    # The four requests under way may have placed their orders: unknown, never pending.
    assert states == {"unknown": 4, "pending": 16}
    assert in_flight == 0
    # Each Ctrl-C said at once what it does, and the summary names the rows left unknown.
    assert (
        "stopping: 4 payouts in flight, waiting up to 10 s for their answers; Ctrl-C again"
        in stderr
    )
    assert "abandoning 4 payouts in flight: their rows stay unknown" in stderr
    assert all(trade_no in stdout for trade_no in unknown), stdout

    sandbox.faults = Faults()
    process = start(["run", str(path), "--yes", "-o", str(output)], env, tmp_path)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    rows = read_result(output)
    assert_placed_once(rows, sandbox)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_after_a_signal_no_payout_leaves_even_for_rows_waiting_for_the_rate_limit(
    sandbox: Sandbox, env: dict[str, str], tmp_path: Path, journal_path: Path,
    signum: signal.Signals,
) -> None:  # fmt: skip
    # At --rate 1 with 8 workers, rows are claimed and wait seconds for their turn: none of
    # them may be sent once the signal came (before, 7 more payouts left during the grace).
    path = write_csv(tmp_path / "p.csv", payroll_rows(12))
    output = tmp_path / "r.csv"
    args = ["run", str(path), "--yes", "--json", "--rate", "1", "--concurrency", "8", "-o",
            str(output)]  # fmt: skip
    process = start(args, env, tmp_path)
    wait_for(lambda: sandbox.gateway.arrived >= 3)
    before_signal = sandbox.gateway.arrived
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 4, stderr
    assert "Traceback" not in stderr, stderr
    # One request may have been handed over just before the signal and arrive after it.
    assert before_signal <= len(sandbox.gateway.payout_requests) <= before_signal + 1
    assert sandbox.gateway.arrived == len(sandbox.gateway.payout_requests)
    summary = json.loads(stdout)
    assert summary["stopped"] and summary["stop_reason"] == "interrupted"
    assert "stopping:" in stderr
    rows = read_result(output)
    assert_truthful(rows, sandbox)
    sent = set(sandbox.gateway.payout_requests)
    # Every row never sent is pending again (released, not in flight); the sent ones are
    # placed: their answers came well within the grace.
    assert {r["outcome"] for r in rows if r["tradeNo"] not in sent} == {"pending"}
    assert {r["outcome"] for r in rows if r["tradeNo"] in sent} == {"processing"}
    assert summary["counts"] == {"pending": 12 - len(sent), "processing": len(sent)}
    with sqlite3.connect(journal_path) as db:
        assert db.execute("SELECT count(*) FROM rows WHERE in_flight = 1").fetchone()[0] == 0

    # The next run sends only the rest, each once.
    process = start(["run", str(path), "--yes", "-o", str(output)], env, tmp_path)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert_placed_once(read_result(output), sandbox)
    assert len(sandbox.gateway.payout_requests) == 12


def test_at_a_terminal_each_ctrl_c_prints_on_a_line_of_its_own_above_the_progress_bar(
    sandbox: Sandbox, env: dict[str, str], tmp_path: Path
) -> None:
    # stderr is a pseudo-terminal, so the progress bar is drawn; the stop messages must not
    # land inside its line (each starts where the bar's line was cleared, or on a new line).
    import pty
    import re
    import select

    sandbox.faults = Faults(latency=1.5)
    path = write_csv(tmp_path / "p.csv", payroll_rows(40))
    master, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "batchpay", "run", str(path), "--yes", "--concurrency", "4",
         "-o", str(tmp_path / "r.csv")],
        env={**env, "COLUMNS": "120", "TERM": "xterm"}, cwd=tmp_path, text=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=terminal,
    )  # fmt: skip
    os.close(terminal)
    seen = bytearray()

    def read_until(pattern: bytes, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, seen):
            assert time.monotonic() < deadline, bytes(seen)
            if select.select([master], [], [], 0.05)[0]:
                seen.extend(os.read(master, 65536))

    try:
        read_until(rb"\b[1-9][0-9]*/40\b")  # the bar is drawn and rows are done
        process.send_signal(signal.SIGINT)
        read_until(b"Ctrl-C again to abandon them")
        process.send_signal(signal.SIGINT)
        read_until(b"abandoning")
        stdout, _ = process.communicate(timeout=20)
        with contextlib.suppress(OSError):  # the terminal closes with the process
            read_until(b"\x1b\\[\\?25h$", timeout=2)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    assert process.returncode == 4
    shown = seen.decode("utf-8", "replace")
    assert "sending" in shown and "Traceback" not in shown
    for text in ("stopping: 4 payouts in flight, waiting up to 10 s", "abandoning 4 payouts"):
        assert re.search(r"(?:\r\x1b\[2K|\n)" + re.escape(text), shown), shown
    assert "unknown (do not pay by hand): " in stdout
