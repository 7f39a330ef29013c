"""The journal: tradeNos committed before sending, batches by content, final states kept."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchpay.errors import InputError
from batchpay.journal.rows import (
    JournalRow,
    PlanRows,
    SheetRow,
    Update,
    content_hash,
    json_lists,
    payout_fingerprint,
)
from batchpay.journal.store import Journal
from batchpay.outcomes import Outcome

FIELDS = ("amount", "accountNo", "mobile", "email", "firstname", "lastname", "tradeNo", "remark",
          "notifyUrl")  # fmt: skip


def row(i: int, *, trade_no: str = "", valid: bool = True) -> SheetRow:
    values = [
        str(1000 + i), f"00{i:010d}", f"09{i:08d}", f"p{i}@example.com", f"F{i}", "L", trade_no,
        "", "https://n.example.com/cb",
    ]  # fmt: skip
    return SheetRow(sheet_row=i + 2, fields=dict(zip(FIELDS, values, strict=True)), amount=1000 + i,
                    valid=valid)  # fmt: skip


ACCOUNT = "M-1@https://gateway.example.com:443"


def plan(
    journal: Journal, rows: list[SheetRow], source: str, **options: Any
) -> tuple[str, list[JournalRow]]:
    planned = journal.plan(rows, source=source, account=options.pop("account", ACCOUNT), **options)
    return planned.batch_id, planned.rows


@pytest.fixture
def journal_at(tmp_path: Path) -> Iterator[Callable[[Path], Journal]]:
    opened: list[Journal] = []

    def open_journal(folder: Path) -> Journal:
        opened.append(Journal(folder / "j.sqlite3"))
        return opened[-1]

    yield open_journal
    for journal in opened:
        journal.close()


def test_plan_commits_every_trade_number_before_returning(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    batch_id, rows = plan(journal, [row(i) for i in range(50)], source="p.csv")
    # A second connection, as a crash-and-restart would have, sees every tradeNo.
    with sqlite3.connect(path) as other:
        stored = dict(other.execute("SELECT position, trade_no FROM rows WHERE batch_id = ?",
                                    (batch_id,)))  # fmt: skip
    assert stored == {r.position: r.trade_no for r in rows}
    assert all(len(t) == 24 and t.isdigit() for t in stored.values())
    assert len(set(stored.values())) == 50
    # The rows a new batch's plan returns are the rows as stored, field for field.
    assert journal.rows(batch_id) == rows
    journal.close()
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_the_stored_fingerprint_is_the_payout_fingerprint_of_the_rows_fields(
    tmp_path: Path, journal_at: Callable[[Path], Journal]
) -> None:
    # The repeat window looks rows up by the fingerprint stored at planning time.
    journal = journal_at(tmp_path)
    batch_id, _ = plan(journal, [row(i) for i in range(5)], source="p.csv",
                               notify_url="https://n.example.com/other")  # fmt: skip
    for loaded in journal.rows(batch_id):
        assert loaded.fingerprint == payout_fingerprint(loaded.fields)
    assert len({r.fingerprint for r in journal.rows(batch_id)}) == 5


def test_same_content_in_any_order_resumes_the_batch_with_the_same_trade_numbers(
    tmp_path: Path, journal_at: Callable[[Path], Journal]
) -> None:
    journal = journal_at(tmp_path)
    first_id, first = plan(journal, [row(i) for i in range(5)], source="a.csv")
    again_id, again = plan(journal, [row(i) for i in reversed(range(5))], source="b.xlsx")
    assert again_id == first_id
    assert [r.trade_no for r in again] == [r.trade_no for r in reversed(first)]
    other_id, _ = plan(journal, [row(i) for i in range(6)], source="c.csv")
    assert other_id != first_id


def test_identical_rows_are_distinct_rows_with_their_own_trade_numbers(
    tmp_path: Path, journal_at: Callable[[Path], Journal]
) -> None:
    journal = journal_at(tmp_path)
    _, rows = plan(journal, [row(1), row(1)], source="a.csv")
    assert rows[0].trade_no != rows[1].trade_no
    _, again = plan(journal, [row(1), row(1)], source="a.csv")
    assert {r.trade_no for r in again} == {r.trade_no for r in rows}


def test_a_trade_number_from_the_file_is_kept_and_cannot_be_used_by_another_batch(
    tmp_path: Path, journal_at: Callable[[Path], Journal]
) -> None:
    journal = journal_at(tmp_path)
    _, rows = plan(journal, [row(1, trade_no="PAY-1"), row(2)], source="a.csv")
    assert rows[0].trade_no == "PAY-1" and not rows[0].assigned
    assert rows[1].assigned
    with pytest.raises(InputError, match="tradeNo PAY-1 was already used in batch"):
        plan(journal, [row(7, trade_no="PAY-1")], source="b.csv")


def test_invalid_rows_get_no_trade_number(
    tmp_path: Path, journal_at: Callable[[Path], Journal]
) -> None:
    journal = journal_at(tmp_path)
    _, rows = plan(journal, [row(1, valid=False), row(2)], source="a.csv")
    assert rows[0].trade_no is None and rows[0].outcome is Outcome.INVALID
    assert rows[1].outcome is Outcome.PENDING


def test_a_final_outcome_is_never_replaced(
    tmp_path: Path, journal_at: Callable[[Path], Journal]
) -> None:
    journal = journal_at(tmp_path)
    batch_id, rows = plan(journal, [row(1)], source="a.csv")
    trade_no = rows[0].trade_no
    assert trade_no
    journal.record(Update(trade_no, Outcome.PAID, "query", "placed", 200, "0000", status="0000",
                          platform_trade_no="P1"))  # fmt: skip
    journal.flush()
    journal.record(Update(trade_no, Outcome.PROCESSING, "pay", "placed", 200, "0000",
                          status="0015"))  # fmt: skip
    journal.flush()
    [stored] = journal.rows(batch_id)
    assert stored.outcome is Outcome.PAID
    assert stored.platform_trade_no == "P1"
    assert [a["kind"] for a in journal.attempts(trade_no)] == ["query", "pay"]


def test_a_claimed_row_reads_as_unknown_until_it_is_settled_or_released(
    tmp_path: Path, journal_at: Callable[[Path], Journal]
) -> None:
    journal = journal_at(tmp_path)
    batch_id, rows = plan(journal, [row(1), row(2)], source="a.csv")
    first, second = (r.trade_no for r in rows)
    assert first and second
    journal.claim([first, second])
    # As a crash would leave them: claimed, no answer. The order may exist.
    assert [r.outcome for r in journal.rows(batch_id)] == [Outcome.UNKNOWN, Outcome.UNKNOWN]
    journal.record(Update(first, Outcome.PROCESSING, "pay", "placed", 200, "0000", status="0015"))
    journal.release([second])  # never started: nothing was sent for it
    assert [r.outcome for r in journal.rows(batch_id)] == [Outcome.PROCESSING, Outcome.PENDING]
    assert not any(r.in_flight for r in journal.rows(batch_id))


def test_claims_and_answers_beyond_one_statement_reach_every_row(
    tmp_path: Path, journal_at: Callable[[Path], Journal]
) -> None:
    # Claims and attempts are written many rows to a statement: 250 rows take three.
    journal = journal_at(tmp_path)
    batch_id, rows = plan(journal, [row(i) for i in range(250)], source="a.csv")
    trade_nos = [r.trade_no for r in rows if r.trade_no]
    journal.claim(trade_nos)
    assert all(r.in_flight for r in journal.rows(batch_id))
    for n, trade_no in enumerate(trade_nos):
        journal.record(Update(trade_no, Outcome.PROCESSING, "pay", "placed", 200, "0000",
                              status="0015", platform_trade_no=f"P{n}"))  # fmt: skip
    journal.flush()
    stored = journal.rows(batch_id)
    assert [r.platform_trade_no for r in stored] == [f"P{n}" for n in range(250)]
    assert all(r.outcome is Outcome.PROCESSING and not r.in_flight for r in stored)
    assert all(len(journal.attempts(t)) == 1 for t in trade_nos)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(FIELDS), st.text(), min_size=9, max_size=9),
                min_size=1, max_size=20))  # fmt: skip
def test_row_keys_and_the_content_hash_are_those_every_release_computed(
    fields: list[dict[str, str]],
) -> None:
    # Journals and result files carry the content hash: a batch of an earlier release must
    # resume, and its result file recover, under the same one (quotes, backslashes, control
    # characters and any other text included).
    rows = [SheetRow(sheet_row=i + 2, fields=f, amount=1, valid=True, cells=list(f.values()))
            for i, f in enumerate(fields)]  # fmt: skip
    planned = PlanRows.of(rows)
    keys = [json.dumps(f, sort_keys=True, ensure_ascii=False) for f in fields]
    assert planned.keys == keys
    assert planned.fingerprints == [payout_fingerprint(f) for f in fields]
    digest = hashlib.sha256()
    for key in sorted(keys):
        digest.update(key.encode("utf-8") + b"\n")
    assert content_hash(planned) == digest.hexdigest()
    cells = json_lists([pa.array([r.cells[i] for r in rows]) for i in range(9)], len(rows))
    assert cells.to_pylist() == [json.dumps(r.cells, ensure_ascii=False) for r in rows]
