"""The audit trail: append-only (triggers refuse UPDATE and DELETE), hash-chained so that
`batchpay audit --verify` names the first row that was edited, deleted or moved by someone
with write access to the journal, and a head that changes when the tail is cut."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from teamkit import ADMIN, ADMIN_PW, PREPARER, PREPARER_PW, Team, head_of

from batchpay.journal.audit import chain_hash
from batchpay.journal.store import Journal
from batchpay.team.audit import Action, Actor, ActorKind, audit_head, record, verify

SEND_STARTED_BY = Actor("pat", ActorKind.USER)


@pytest.fixture
def trail(team: Team) -> Team:
    """A journal with a few rows of every kind the foundation writes, and batch rows."""
    team.add(ADMIN, "admin", ADMIN_PW)
    team.add(PREPARER, "preparer", PREPARER_PW)
    assert team.cli("policy", "set", "approvals=1", "--as", ADMIN, "--password-stdin",
                    input=f"{ADMIN_PW}\n").exit_code == 0  # fmt: skip
    with Journal(team.journal) as journal:
        record(journal, SEND_STARTED_BY, Action.SUBMITTED, "3f2a9c81d07e", rows=3, total=4500)
        record(journal, Actor(ADMIN, ActorKind.USER), Action.APPROVED, "3f2a9c81d07e")
        record(journal, Actor("ops", ActorKind.OS_USER), Action.SEND_STARTED, "3f2a9c81d07e")
        record(journal, SEND_STARTED_BY, Action.SUBMITTED, "3f9900aa0000", rows=1, total=100)
    return team


def verified(team: Team) -> tuple[int, str]:
    result = team.cli("audit", "--verify")
    return result.exit_code, result.output


def tamper(path: Path, *statements: str) -> None:
    """What someone with write access to the journal can do: drop the guard, then change."""
    with sqlite3.connect(path) as db:
        db.execute("DROP TRIGGER audit_no_update")
        db.execute("DROP TRIGGER audit_no_delete")
        for statement in statements:
            db.execute(statement)


def test_a_good_chain_verifies_and_prints_its_head(trail: Team) -> None:
    code, output = verified(trail)
    assert code == 0, output
    assert "audit trail verified: 7 row(s)" in output
    with Journal(trail.journal) as journal:
        head = audit_head(journal)
        assert head is not None and head[0] == 7
        assert verify(journal).ok
    assert head_of(output) == f"audit head: #7 sha256:{head[1]}"
    assert head_of(trail.cli("audit").stdout) == head_of(output)


def test_the_triggers_refuse_to_change_or_delete_a_row(trail: Team) -> None:
    with sqlite3.connect(trail.journal) as db:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit SET actor = 'someone else' WHERE id = 2")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM audit WHERE id = 7")
    assert verified(trail)[0] == 0


def test_an_edited_row_is_named(trail: Team) -> None:
    tamper(trail.journal, """UPDATE audit SET details = '{"rows":3,"total":450000}' WHERE id = 5""")
    code, output = verified(trail)
    assert code == 1
    assert "batchpay: error: audit row #5 does not fit the chain: its content does not match " \
        "its hash (edited)" in output  # fmt: skip
    head_of(output)  # printed even so
    # The edited row's hash recomputed too: the next row's prev_hash then tells.
    with sqlite3.connect(trail.journal) as db:
        (prev_hash,) = db.execute("SELECT prev_hash FROM audit WHERE id = 5").fetchone()
        with Journal(trail.journal) as journal:
            row = next(r for r in journal.audit_rows() if r.id == 5)
        db.execute(
            "UPDATE audit SET hash = ? WHERE id = 5", (chain_hash(prev_hash, row.content()),)
        )
    code, output = verified(trail)
    assert (
        code == 1 and "audit row #6 does not fit the chain: its prev_hash is not row #5's" in output
    )


def test_a_deleted_middle_row_is_named(trail: Team) -> None:
    tamper(trail.journal, "DELETE FROM audit WHERE id = 4")
    code, output = verified(trail)
    assert code == 1
    assert "audit row #5 does not fit the chain: row #4 before it is missing (deleted)" in output
    tamper_more = "UPDATE audit SET id = id - 1 WHERE id > 4"  # renumbered to hide the gap
    with sqlite3.connect(trail.journal) as db:
        db.execute(tamper_more)
    code, output = verified(trail)
    assert code == 1 and "audit row #4 does not fit the chain" in output


def test_reordered_rows_are_named(trail: Team) -> None:
    columns = "at, actor, actor_kind, action, batch, details, hash"
    with sqlite3.connect(trail.journal) as db:
        fifth, sixth = db.execute(f"SELECT {columns} FROM audit WHERE id IN (5, 6) ORDER BY id")
    assignments = ", ".join(f"{c} = ?" for c in columns.split(", "))
    with sqlite3.connect(trail.journal) as db:
        db.execute("DROP TRIGGER audit_no_update")
        # Rows 5 and 6 swap places, each keeping its own content and hash.
        db.execute("UPDATE audit SET hash = 'moving' WHERE id = 6")
        db.execute(f"UPDATE audit SET {assignments} WHERE id = 5", sixth)
        db.execute(f"UPDATE audit SET {assignments} WHERE id = 6", fifth)
    code, output = verified(trail)
    assert code == 1 and "audit row #5 does not fit the chain" in output


def test_a_cut_tail_verifies_but_the_head_shows_it(trail: Team) -> None:
    before = head_of(verified(trail)[1])
    tamper(trail.journal, "DELETE FROM audit WHERE id >= 7")
    code, output = verified(trail)
    assert code == 0  # a keyless chain cannot see its own end cut off...
    assert head_of(output) != before  # ...but any copy of the head kept elsewhere does
    assert head_of(output).startswith("audit head: #6 ")


def test_a_batch_s_rows_by_a_prefix_of_its_id(trail: Team) -> None:
    result = trail.cli("audit", "3f2a", "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert [r["action"] for r in found["rows"]] == ["submitted", "approved", "send_started"]
    assert found["rows"][0]["details"] == {"rows": 3, "total": 4500}
    assert found["rows"][0]["actor"] == "pat" and found["rows"][2]["actor_kind"] == "os-user"
    assert found["head"]["id"] == 7 and found["head"]["hash"].startswith("sha256:")
    ambiguous = trail.cli("audit", "3f")
    assert ambiguous.exit_code == 2 and "ambiguous" in ambiguous.stderr
    none = trail.cli("audit", "ffff")
    assert none.exit_code == 0 and "no audit rows for batch ffff" in none.stdout


def test_verify_as_json(trail: Team) -> None:
    good = json.loads(trail.cli("audit", "--verify", "--json").stdout)
    assert good["verified"] is True and good["broken"] is None
    tamper(trail.journal, "UPDATE audit SET actor = 'bob' WHERE id = 2")
    result = trail.cli("audit", "--verify", "--json")
    assert result.exit_code == 1
    found = json.loads(result.stdout)
    assert found["verified"] is False and found["broken"]["id"] == 2


APPEND = """
import sys
from pathlib import Path
from batchpay.journal.store import Journal
from batchpay.team.audit import Action, Actor, ActorKind, record

with Journal(Path(sys.argv[1])) as journal:
    for i in range(int(sys.argv[3])):
        record(journal, Actor(sys.argv[2], ActorKind.OS_USER), Action.SEND_FINISHED, None, i=i)
"""


def test_two_processes_appending_at_once_never_fork_the_chain(team: Team) -> None:
    Journal(team.journal).close()
    writers = [
        subprocess.Popen([sys.executable, "-c", APPEND, str(team.journal), name, "40"])
        for name in ("first", "second")
    ]
    assert [w.wait(120) for w in writers] == [0, 0]
    with Journal(team.journal) as journal:
        rows = list(journal.audit_rows())
        checked = verify(journal)
    assert [r.id for r in rows] == list(range(1, 81))
    assert checked.ok and checked.rows == 80
    for name in ("first", "second"):
        assert [r.details for r in rows if r.actor == name] == [f'{{"i":{i}}}' for i in range(40)]


def test_every_action_of_the_design_is_named() -> None:
    assert {a.value for a in Action} >= {
        "submitted", "approved", "rejected", "held", "released", "cancelled", "send_started",
        "send_stopped", "send_finished", "allow_repeat", "pay_again", "recover",
        "policy_changed", "user_added", "user_disabled", "password_changed", "sign_in_failed",
        "locked",
    }  # fmt: skip


def test_an_empty_trail_verifies_with_no_head(team: Team) -> None:
    Journal(team.journal).close()
    result = team.cli("audit", "--verify")
    assert result.exit_code == 0
    assert "audit head: none" in result.stdout
