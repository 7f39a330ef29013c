"""A journal made by the previous release (3d50392, journal version 4) opened by this one: it
is migrated (version 5: each row's content and state in two tables), reads the same, and
resumes and reconciles with the outcomes that release would have reached."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from helpers import Sandbox, invoke

from batchpay.journal.schema import VERSION
from batchpay.journal.store import Journal

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE = FIXTURES / "journals" / "journal-3d50392.sqlite3"
INPUTS = FIXTURES / "journals" / "3d50392"
OLD_ACCOUNT = "M-FIX@http://127.0.0.1:18731"
MARCH, APRIL, MAY = "6e937524d2b3", "46250a747841", "5b714fd792d0"
IN_FLIGHT = "202612012314231623638102"  # claimed by a run that died before sending it
ROW_COLUMNS = (
    "batch_id, position, sheet_row, trade_no, assigned, amount, fields, outcome, code, msg, "
    "status, message, platform_trade_no, attempts, in_flight, first_sent_at, fingerprint, cells, "
    "errors, flag, updated_at"
)


def rows_of(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute(f"SELECT {ROW_COLUMNS} FROM rows ORDER BY batch_id, position").fetchall()


def test_a_journal_of_the_previous_release_is_migrated_and_reads_the_same(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.sqlite3"
    shutil.copy(FIXTURE, path)
    before = rows_of(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 4
        callbacks = db.execute("SELECT * FROM callbacks ORDER BY id").fetchall()
    with Journal(path) as journal:
        states = {r.trade_no: (r.outcome.value, r.in_flight) for r in journal.rows(MAY)}
        assert states[IN_FLIGHT] == ("unknown", True)  # claimed, never settled
        assert [r.outcome.value for r in journal.rows(APRIL)] == ["repeat", "paid", "paid"]
    assert rows_of(path) == before  # every column of every row, through the `rows` view
    with sqlite3.connect(path) as db:
        # Version 6 (issue 15): row_state.pay_amount, empty for every row of an older journal.
        assert db.execute("PRAGMA user_version").fetchone()[0] == VERSION == 8
        paid = db.execute("SELECT DISTINCT pay_amount FROM rows").fetchall()
        assert paid == [("",)]
        assert db.execute("SELECT * FROM callbacks ORDER BY id").fetchall() == callbacks
        tables = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"row_content", "row_state"} <= tables and "rows" not in tables


def test_a_migrated_journal_shows_resumes_and_reconciles_as_before(
    tmp_path: Path, gateway_env: dict[str, str], sandbox: Sandbox, journal_path: Path
) -> None:
    shutil.copy(FIXTURE, journal_path)
    status = json.loads(invoke("status", "--json").stdout)
    counts = {b["batch"]: b["counts"] for b in status["batches"]}
    assert counts == {
        MARCH: {"paid": 3},
        APRIL: {"paid": 2, "repeat": 1},
        MAY: {"pending": 1, "unknown": 1},
    }
    moved = ["--gateway-moved-from", OLD_ACCOUNT]
    # April: the held repeat stays held, the batch is finished: nothing is sent.
    april = invoke("run", str(INPUTS / "april.csv"), "--yes", "--json", *moved,
                   "-o", str(tmp_path / "april.result.csv"))  # fmt: skip
    assert april.exit_code == 0, april.output
    summary = json.loads(april.stdout)
    assert summary["batch"] == APRIL and summary["nothing_sent"]
    assert summary["counts"] == {"paid": 2, "repeat": 1}
    # May: the row left in flight is asked about first (the gateway has no such order), then
    # both rows are sent, each once, under the tradeNos planned by the old release.
    reconciled = json.loads(invoke("reconcile", MAY, "--json").stdout)
    assert reconciled["queried"] == 1 and reconciled["batches"][0]["counts"] == {"pending": 2}
    with Journal(journal_path) as journal:
        planned = {r.trade_no for r in journal.rows(MAY)}
        assert {r.outcome.value for r in journal.rows(MAY)} == {"pending"}
    may = invoke("run", str(INPUTS / "may.csv"), "--yes", "--json",
                 "-o", str(tmp_path / "may.result.csv"))  # fmt: skip
    assert may.exit_code == 0, may.output
    summary = json.loads(may.stdout)
    assert summary["batch"] == MAY and summary["counts"] == {"processing": 2}
    sent = sandbox.gateway.payout_requests
    assert sorted(sent) == sorted(planned) and IN_FLIGHT in sent
