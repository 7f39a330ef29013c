"""A console stopped in the middle of a send (`batchpay serve` in a process of its own, against
the sandbox gateway over loopback): stopped with SIGTERM it leaves the batch `stopped`, every
row not sent still pending; killed (SIGKILL) it leaves the batch `sending` with its rows in
flight unknown. Either way the journal is truthful, the restarted console's Send resumes the
batch to `done`, and the gateway holds exactly one order per row."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import MERCHANT, SECRET, new_user_env, payroll_rows, read_result, write_csv
from webclient import Client, free_port, gateway_settings, make_team

from batchpay.journal.store import Journal
from batchpay.sandbox.gateway import Faults, SandboxGateway
from batchpay.sandbox.server import serve_in_thread

ROWS = 40
BOUND = 60.0  # seconds at most for the console to reach a state: a bound, not an assertion


def until(what: str, check: object, bound: float = BOUND) -> object:
    """Poll ``check`` until it answers something true; fail naming ``what`` past the bound."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        found = check()  # type: ignore[operator]
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(f"the console never reached: {what}")


@contextmanager
def console_process(env: dict[str, str], cwd: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "batchpay", "serve", "--port", str(port)], env=env, cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:

        def started() -> bool:
            if process.poll() is not None:  # it ended: say why
                pytest.fail(process.communicate()[1])
            return healthy(port)

        until("its health check", started)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def healthy(port: int) -> bool:
    try:
        return Client(f"http://127.0.0.1:{port}").get("/healthz").status == 200
    except OSError:
        return False


def api(client: Client, batch: str) -> dict[str, object]:
    found: dict[str, object] = json.loads(client.get(f"/api/batches/{batch}").text)
    return found


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_console_stopped_mid_send_leaves_the_batch_truthful_and_send_resumes_it(
    tmp_path: Path, stop: signal.Signals
) -> None:
    journal = tmp_path / "journal.sqlite3"
    make_team(journal)
    payroll = write_csv(tmp_path / "payroll.csv", payroll_rows(ROWS))
    # Every answer takes half a second: the send is still going when the console is stopped.
    gateway = SandboxGateway(MERCHANT, SECRET, faults=Faults(latency=0.5))
    port = free_port()
    with serve_in_thread(gateway) as sandbox:
        env = {**new_user_env(tmp_path / "home"),
               **gateway_settings(sandbox.payout_url, sandbox.query_url),
               "BATCHPAY_JOURNAL": str(journal)}  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        with console_process(env, tmp_path, port) as process:
            bob, carol = Client(base), Client(base)
            bob.sign_in("bob")
            batch = bob.upload("/batches", "payroll.csv", payroll.read_bytes()).location
            batch = batch.rsplit("/", 1)[1]
            bob.get(f"/batches/{batch}")
            assert bob.post(f"/batches/{batch}/submit").status == 303
            carol.sign_in("carol")
            carol.get(f"/batches/{batch}")
            assert carol.post(f"/batches/{batch}/approve").status == 303
            assert carol.post(f"/batches/{batch}/send").status == 303
            until("a row sent", lambda: (api(carol, batch)["progress"] or {}).get("done"))
            process.send_signal(stop)
            process.wait(timeout=60)
        with Journal(journal) as opened:
            state = opened.batch_state(batch)
            counts = {t.outcome: t.count for t in opened.outcome_totals(batch)}
        if stop is signal.SIGTERM:
            # Stopped before its next row, once the requests in flight were answered.
            assert state == "stopped"
            assert counts.get("pending", 0) > 0 and "unknown" not in counts
            assert counts["pending"] + counts["processing"] == ROWS
        else:
            assert state == "sending"  # killed: nothing could say otherwise, truthfully
            assert counts.get("pending", 0) + counts.get("processing", 0) \
                + counts.get("unknown", 0) == ROWS  # fmt: skip
            assert counts.get("pending", 0) > 0
        gateway.faults = Faults()
        with console_process(env, tmp_path, port):
            carol = Client(base)
            carol.sign_in("carol")
            page = carol.get(f"/batches/{batch}").text
            assert 'id="action-send"' in page and "Resume sending" in page
            # The restarted console reads the saved upload again for the file's checks.
            assert f"{ROWS} rows: {ROWS} valid, 0 invalid" in page
            assert carol.post(f"/batches/{batch}/send").status == 303
            until("done", lambda: api(carol, batch)["state"] == "done")
            result = tmp_path / "result.csv"
            result.write_bytes(carol.get(f"/batches/{batch}/result.csv").body)
    rows = read_result(result)
    assert len(rows) == ROWS and {r["outcome"] for r in rows} == {"processing"}
    assert sorted(r["tradeNo"] for r in rows) == sorted(gateway.orders)  # one order per row
    with Journal(journal) as opened:
        actions = [r.action for r in opened.audit_rows(batch)]
    assert actions.count("send_started") == 2 and actions[-1] == "send_finished"
    if stop is signal.SIGTERM:
        assert "send_stopped" in actions
