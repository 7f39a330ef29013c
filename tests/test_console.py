"""What the operator sees besides results: log files (text or JSON lines) and progress."""

from __future__ import annotations

import json
import os
import pty
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

from helpers import SECRET, Sandbox, invoke, payroll_rows, write_csv


def test_a_json_log_file_has_one_event_per_request_with_masked_accounts(
    sandbox: Sandbox, gateway_env: dict[str, str], payroll_csv: Path, tmp_path: Path
) -> None:
    log = tmp_path / "logs" / "batchpay.log"
    result = invoke("-q", "--log-file", str(log), "--log-format", "json", "run",
                    str(payroll_csv), "--yes", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # -q: nothing but errors on stderr
    batch = json.loads(result.stdout)["batch"]
    events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    requests = [e for e in events if "tradeNo" in e]
    assert len(requests) == 12
    assert {e["batch"] for e in requests} == {batch}
    assert {e["outcome"] for e in requests} == {"processing"}
    text = log.read_text(encoding="utf-8")
    for order in sandbox.gateway.orders.values():
        assert order.fields["accountNo"] not in text
        assert any(e["account"].endswith(order.fields["accountNo"][-4:]) for e in requests)
    assert SECRET not in text
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def run_in_terminal(
    args: list[str], env: dict[str, str], cwd: Path, answer: str | None = None
) -> str:
    """Run batchpay with a pseudo-terminal as its stdin, stdout and stderr; answer its
    confirmation question when given; return the screen and the exit code's line."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "batchpay", *args], stdin=follower, stdout=follower,
        stderr=follower, env={**env, "COLUMNS": "120", "TERM": "xterm"}, cwd=cwd,
    )  # fmt: skip
    os.close(follower)
    screen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
            if answer is not None and b"[y/N]" in screen:
                os.write(leader, answer.encode() + b"\n")
                answer = None
        elif process.poll() is not None:
            break
    process.wait(10)
    os.close(leader)
    return screen.decode("utf-8", errors="replace") + f"\nexit {process.returncode}"


def test_progress_shows_at_a_terminal_and_not_in_a_pipe(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "p.csv", payroll_rows(40))
    env = {**os.environ, **gateway_env}
    screen = run_in_terminal(["run", str(path), "--yes", "--concurrency", "2"], env, tmp_path)
    assert "sending" in screen and "40/40" in screen, screen
    assert "reading and validating" in screen and "planning 40 rows" in screen
    quiet = run_in_terminal(["-q", "run", str(path), "--yes"], env, tmp_path)
    assert "sending" not in quiet
    piped = subprocess.run(
        [sys.executable, "-m", "batchpay", "run", str(write_csv(tmp_path / "q.csv",
         payroll_rows(5, start=100))), "--yes"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert "sending" not in piped.stderr


def test_at_a_terminal_run_asks_for_the_count_and_total_and_honours_the_answer(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "p.csv", payroll_rows(3))
    env = {**os.environ, **gateway_env}
    refused = run_in_terminal(["run", str(path)], env, tmp_path, answer="n")
    assert "Send 3 payout(s) totalling 3,003 from" in refused
    assert refused.endswith("exit 1") and "nothing was sent" in refused
    assert sandbox.gateway.payout_requests == []
    accepted = run_in_terminal(["run", str(path)], env, tmp_path, answer="y")
    assert accepted.endswith("exit 0"), accepted
    assert len(sandbox.gateway.orders) == 3


def test_answering_no_is_a_decision_not_an_error_and_q_works_after_the_command(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "p.csv", payroll_rows(3))
    env = {**os.environ, **gateway_env}
    refused = run_in_terminal(["run", str(path)], env, tmp_path, answer="n")
    assert "batchpay: not sent: you answered no" in refused and "error" not in refused
    quiet = run_in_terminal(["run", str(path), "--yes", "-q"], env, tmp_path)
    assert quiet.endswith("exit 0") and "sending" not in quiet
