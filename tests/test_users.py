"""Users and sign-in through the command line, against a real journal file: the first admin
without --as and every later change only as an admin; wrong passwords, unknown, disabled and
locked users refused in one line and audited with the truth; TOTP asked for and checked; the
TOTP secret shown once; no password, hash or secret in any output (the ``team`` fixture
checks every command's stdout and stderr)."""

from __future__ import annotations

import datetime as dt
import json
import os
import pty
import select
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pyotp
import pytest
from teamkit import (
    ADMIN,
    ADMIN_PW,
    APPROVER,
    APPROVER_PW,
    PREPARER,
    PREPARER_PW,
    Team,
    head_of,
    totp_secret,
)

from batchpay.errors import SignInError
from batchpay.journal.store import Journal
from batchpay.team.auth import LOCK_FOR, authenticate


def audit(team: Team) -> list[dict[str, object]]:
    result = team.cli("audit", "--json")
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.stdout)["rows"]
    return rows


def users(team: Team) -> dict[str, dict[str, object]]:
    result = team.cli("user", "list", "--json")
    assert result.exit_code == 0, result.output
    return {u["name"]: u for u in json.loads(result.stdout)["users"]}


def sign_in_as(team: Team, name: str, *lines: str) -> tuple[int, str]:
    """Sign in with --as through a command every role may sign in for (`policy set` then
    refuses all but an admin): the exit code and the error line."""
    result = team.cli(
        "policy", "set", "approvals=1", "--as", name, "--password-stdin",
        input="".join(f"{line}\n" for line in lines),
    )  # fmt: skip
    return result.exit_code, result.stderr.strip()


def test_the_first_admin_needs_no_as_and_after_it_every_change_does(team: Team) -> None:
    added = team.add(ADMIN, "admin", ADMIN_PW)
    assert "added user alice (admin)" in added.stdout
    head_of(added.stdout)
    # Now an admin exists: without --as, nobody may add a user, and nothing is asked first.
    refused = team.cli("user", "add", PREPARER, "--role", "preparer", "--password-stdin",
                       input=f"{PREPARER_PW}\n")  # fmt: skip
    assert refused.exit_code == 1
    assert refused.stderr.strip().startswith("batchpay: refused: this journal has an admin")
    assert "--as ADMIN" in refused.stderr
    assert PREPARER not in users(team)
    team.add(PREPARER, "preparer", PREPARER_PW)
    # A preparer signed in is still not an admin.
    by_preparer = team.cli(
        "user", "add", APPROVER, "--role", "approver", "--as", PREPARER, "--password-stdin",
        input=f"{PREPARER_PW}\n{APPROVER_PW}\n",
    )  # fmt: skip
    assert by_preparer.exit_code == 1
    assert "pat is a preparer; `batchpay user add` needs an admin" in by_preparer.stderr
    assert set(users(team)) == {ADMIN, PREPARER}
    rows = audit(team)
    assert [(r["action"], r["actor"], r["actor_kind"]) for r in rows] == [
        ("user_added", rows[0]["actor"], "journal-writer"),
        ("refused", rows[1]["actor"], "os-user"),
        ("user_added", ADMIN, "user"),
        ("refused", PREPARER, "user"),
    ]
    assert rows[2]["details"] == {"role": "preparer", "totp": False, "user": PREPARER}


def test_a_wrong_password_and_an_unknown_user_read_the_same_and_are_audited_truly(
    team: Team,
) -> None:
    team.add(ADMIN, "admin", ADMIN_PW)
    wrong = sign_in_as(team, ADMIN, "not the password at all")
    unknown = sign_in_as(team, "mallory", ADMIN_PW)
    assert wrong == unknown == (1, "batchpay: refused: wrong name or password")
    failures = [r for r in audit(team) if r["action"] == "sign_in_failed"]
    assert [(r["actor"], r["details"]["reason"]) for r in failures] == [  # type: ignore[index]
        (ADMIN, "wrong password"),
        ("mallory", "unknown user"),
    ]
    assert all("os-user" in str(r["details"]["origin"]) for r in failures)  # type: ignore[index]
    assert users(team)[ADMIN]["failed_sign_ins"] == 1
    # A success resets the count.
    assert sign_in_as(team, ADMIN, ADMIN_PW) == (0, "")
    assert users(team)[ADMIN]["failed_sign_ins"] == 0


def test_a_disabled_user_is_refused_even_with_the_right_password(team: Team) -> None:
    team.add(ADMIN, "admin", ADMIN_PW)
    team.add(PREPARER, "preparer", PREPARER_PW)
    disabled = team.cli("user", "disable", PREPARER, "--as", ADMIN, "--password-stdin",
                        input=f"{ADMIN_PW}\n")  # fmt: skip
    assert disabled.exit_code == 0, disabled.output
    assert "disabled user pat" in disabled.stdout
    assert users(team)[PREPARER]["disabled"] is True
    assert sign_in_as(team, PREPARER, PREPARER_PW) == (1, "batchpay: refused: pat is disabled: "
                                                          "ask an admin")  # fmt: skip
    # With a wrong password it reads like any other wrong password: nothing is given away.
    assert sign_in_as(team, PREPARER, "a guess of a password") == (
        1, "batchpay: refused: wrong name or password",
    )  # fmt: skip
    reasons = [r["details"]["reason"] for r in audit(team) if r["action"] == "sign_in_failed"]  # type: ignore[index]
    assert reasons == ["disabled", "wrong password"]


def test_the_last_enabled_admin_cannot_be_disabled(team: Team) -> None:
    team.add(ADMIN, "admin", ADMIN_PW)
    result = team.cli("user", "disable", ADMIN, "--as", ADMIN, "--password-stdin",
                      input=f"{ADMIN_PW}\n")  # fmt: skip
    assert result.exit_code == 2
    assert "alice is the last enabled admin" in result.stderr
    assert users(team)[ADMIN]["disabled"] is False


def test_five_failures_lock_for_15_minutes_and_the_right_password_then_is_refused(
    team: Team,
) -> None:
    team.add(ADMIN, "admin", ADMIN_PW)
    team.add(PREPARER, "preparer", PREPARER_PW)
    answers = [sign_in_as(team, PREPARER, f"wrong password #{i}") for i in range(1, 6)]
    assert [code for code, _ in answers] == [1] * 5
    assert all(line.startswith("batchpay: refused: wrong name or password") for _, line in answers)
    assert "pat is locked until" in answers[4][1] and "locked until" not in answers[3][1]
    locked_until = str(users(team)[PREPARER]["locked_until"])
    # The sixth, with the right password, is still refused, and that refusal is audited too.
    code, line = sign_in_as(team, PREPARER, PREPARER_PW)
    assert code == 1 and line.startswith(f"batchpay: refused: pat is locked until {locked_until}")
    rows = [r for r in audit(team) if r["actor"] == PREPARER]
    assert [r["action"] for r in rows] == ["sign_in_failed"] * 5 + ["locked", "sign_in_failed"]
    assert rows[-1]["details"]["reason"] == "locked"  # type: ignore[index]
    # After 15 minutes the lock has ended (the clock injected into the library).
    ended = dt.datetime.fromisoformat(locked_until)
    with Journal(team.journal) as journal:
        with pytest.raises(SignInError, match="locked"):
            authenticate(journal, PREPARER, PREPARER_PW, now=ended - dt.timedelta(seconds=1))
        user = authenticate(journal, PREPARER, PREPARER_PW, now=ended + dt.timedelta(seconds=1))
    assert user.name == PREPARER and user.role.value == "preparer"
    assert users(team)[PREPARER]["failed_sign_ins"] == 0
    assert users(team)[PREPARER]["locked_until"] is None


def test_a_lock_that_ended_gives_five_more_tries_not_one(team: Team) -> None:
    team.add(ADMIN, "admin", ADMIN_PW)
    start = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    with Journal(team.journal) as journal:
        for minute in range(5):
            with pytest.raises(SignInError):
                authenticate(journal, ADMIN, "wrong, wrong, wrong",
                             now=start + dt.timedelta(minutes=minute))  # fmt: skip
        later = start + dt.timedelta(minutes=4) + LOCK_FOR + dt.timedelta(seconds=1)
        with pytest.raises(SignInError) as first_after:
            authenticate(journal, ADMIN, "wrong, wrong, wrong", now=later)
        assert "locked" not in str(first_after.value)
        assert authenticate(journal, ADMIN, ADMIN_PW, now=later).name == ADMIN


def test_totp_is_asked_for_checked_and_a_code_is_accepted_once(team: Team) -> None:
    team.add(ADMIN, "admin", ADMIN_PW)
    added = team.add(APPROVER, "approver", APPROVER_PW, totp=True)
    assert "shown this once and never again" in added.stdout
    secret = totp_secret(added)
    totp = pyotp.TOTP(secret)
    # No code line at all is a usage error; an empty one is a sign-in without the code.
    code, line = sign_in_as(team, APPROVER, APPROVER_PW)
    assert code == 2 and "line 2 (one-time code for abe) is missing" in line
    code, line = sign_in_as(team, APPROVER, APPROVER_PW, "")
    assert code == 1 and "signs in with a one-time code too" in line
    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    assert sign_in_as(team, APPROVER, APPROVER_PW, wrong) == (
        1, "batchpay: refused: wrong one-time code for abe",
    )  # fmt: skip
    now_code = totp.now()
    assert sign_in_as(team, APPROVER, APPROVER_PW, now_code)[0] == 1  # signed in; not an admin
    refused = [r for r in audit(team) if r["action"] == "refused"]
    assert refused and refused[-1]["actor"] == APPROVER
    # The same code again is refused: someone who watched it typed cannot reuse it.
    code, line = sign_in_as(team, APPROVER, APPROVER_PW, now_code)
    assert code == 1 and "was used already" in line
    reasons = [r["details"]["reason"] for r in audit(team) if r["action"] == "sign_in_failed"]  # type: ignore[index]
    assert reasons == ["one-time code missing", "wrong one-time code", "one-time code used again"]
    # The secret is never shown again: not by user list, not in the audit trail.
    for listing in (team.cli("user", "list"), team.cli("user", "list", "--json"),
                    team.cli("audit"), team.cli("audit", "--json")):  # fmt: skip
        assert secret not in listing.output and "otpauth" not in listing.output
    assert "totp" in team.cli("user", "list").stdout


def test_an_admin_with_totp_gives_the_code_on_the_second_line(team: Team) -> None:
    first = team.cli("user", "add", ADMIN, "--role", "admin", "--totp", "--password-stdin",
                     input=f"{ADMIN_PW}\n", shows_totp=True)  # fmt: skip
    assert first.exit_code == 0, first.output
    totp = pyotp.TOTP(totp_secret(first))
    added = team.cli(
        "user", "add", PREPARER, "--role", "preparer", "--as", ADMIN, "--password-stdin",
        input=f"{ADMIN_PW}\n{totp.now()}\n{PREPARER_PW}\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert PREPARER in users(team)


def test_names_roles_and_passwords_are_refused_in_one_line(team: Team) -> None:
    for name in ("Alice", "a", "bob smith", "x" * 33, "1abc", "ann\n"):
        result = team.cli("user", "add", name, "--role", "admin", "--password-stdin",
                          input=f"{ADMIN_PW}\n")  # fmt: skip
        assert result.exit_code == 2, name
        assert result.stderr.count("\n") == 1 and "is not allowed" in result.stderr
    role = team.cli("user", "add", "ann", "--role", "boss", "--password-stdin", input="x\n")
    assert role.exit_code == 2 and "'boss' is not one of" in role.stderr
    for password, why in (("short pw", "too short"), ("ann-is-my-password", "user's name"),
                          ("tab\tinside a password", "control characters")):  # fmt: skip
        result = team.cli("user", "add", "ann", "--role", "admin", "--password-stdin",
                          input=f"{password}\n")  # fmt: skip
        assert result.exit_code == 2 and why in result.stderr, result.stderr
    missing = team.cli("user", "add", "ann", "--role", "admin", "--password-stdin", input="")
    assert missing.exit_code == 2
    assert "line 1 (new password for ann) is missing" in missing.stderr
    assert users(team) == {}


def test_without_a_terminal_a_password_needs_password_stdin(team: Team) -> None:
    result = team.cli("user", "add", ADMIN, "--role", "admin", input=f"{ADMIN_PW}\n")
    assert result.exit_code == 2
    assert "no terminal to ask for the new password for alice on" in result.stderr
    assert "--password-stdin" in result.stderr


def test_a_new_password_by_an_admin_or_oneself_and_it_ends_a_lock(team: Team) -> None:
    team.add(ADMIN, "admin", ADMIN_PW)
    team.add(PREPARER, "preparer", PREPARER_PW)
    team.add(APPROVER, "approver", APPROVER_PW)
    for i in range(5):
        sign_in_as(team, PREPARER, f"forgot it again {i}")
    assert users(team)[PREPARER]["locked_until"] is not None
    by_admin = team.cli("user", "passwd", PREPARER, "--as", ADMIN, "--password-stdin",
                        input=f"{ADMIN_PW}\nthe new payroll password\n")  # fmt: skip
    assert by_admin.exit_code == 0, by_admin.output
    assert users(team)[PREPARER]["locked_until"] is None
    assert sign_in_as(team, PREPARER, PREPARER_PW)[1] == "batchpay: refused: wrong name or password"
    own = team.cli("user", "passwd", PREPARER, "--as", PREPARER, "--password-stdin",
                   input="the new payroll password\nmy own choice, longer\n")  # fmt: skip
    assert own.exit_code == 0, own.output
    others = team.cli("user", "passwd", APPROVER, "--as", PREPARER, "--password-stdin",
                      input="my own choice, longer\nnot yours to change\n")  # fmt: skip
    assert others.exit_code == 1 and "pat is a preparer" in others.stderr
    changes = [(r["actor"], r["details"]) for r in audit(team) if r["action"] == "password_changed"]
    assert changes == [(ADMIN, {"user": PREPARER}), (PREPARER, {"user": PREPARER})]


def test_the_journal_is_made_owner_only_when_users_exist(team: Team) -> None:
    Journal(team.journal).close()
    os.chmod(team.journal, 0o644)  # a journal copied in, or made by an older release
    team.add(ADMIN, "admin", ADMIN_PW)
    assert stat.S_IMODE(team.journal.stat().st_mode) == 0o600
    with sqlite3.connect(team.journal) as db:  # the secret is kept, as it cannot be hashed
        (stored,) = db.execute("SELECT password_hash FROM users").fetchone()
    assert stored.startswith("$argon2id$") and ADMIN_PW not in stored


def test_at_a_terminal_the_new_password_is_asked_twice(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHPAY_")}
    env["BATCHPAY_JOURNAL"] = str(tmp_path / "j.sqlite3")
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "batchpay", "user", "add", ADMIN, "--role", "admin"],
        stdin=terminal, stdout=terminal, stderr=terminal, env=env, cwd=tmp_path,
    )  # fmt: skip
    os.close(terminal)
    seen, read_to = b"", 0

    def until(text: bytes) -> None:
        """Wait for ``text`` after what was waited for before (a prompt seen twice)."""
        nonlocal seen, read_to
        while text not in seen[read_to:]:
            ready, _, _ = select.select([controller], [], [], 60)
            assert ready, seen
            seen += os.read(controller, 1024)
        read_to = seen.index(text, read_to) + len(text)

    until(b"New password for alice: ")
    os.write(controller, ADMIN_PW.encode() + b"\n")
    until(b"Repeat for confirmation: ")
    os.write(controller, b"a different one, mistyped\n")
    until(b"do not match")
    until(b"New password for alice: ")
    os.write(controller, ADMIN_PW.encode() + b"\n")
    until(b"Repeat for confirmation: ")
    os.write(controller, ADMIN_PW.encode() + b"\n")
    until(b"audit head: #1")
    assert process.wait(60) == 0
    os.close(controller)
    assert ADMIN_PW.encode() not in seen  # hidden input: nothing echoed
    with Journal(tmp_path / "j.sqlite3") as journal:
        assert authenticate(journal, ADMIN, ADMIN_PW).name == ADMIN


def test_the_secret_check_sees_a_secret_shown(tmp_path: Path) -> None:
    # The team fixture's check passes trivially if it cannot see anything: it can.
    from teamkit import Shown

    checker = Team(tmp_path / "none.sqlite3", secrets={ADMIN_PW})
    checker.shown.append(Shown(("user", "list"), f"password {ADMIN_PW}\n", "", False))
    with pytest.raises(AssertionError, match="user list showed a secret on stdout"):
        checker.assert_nothing_secret_shown()
    uri = Team(tmp_path / "none.sqlite3", secrets={"JBSWY3DPEHPK3PXP"})
    uri.shown.append(Shown(("user", "add"), "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP\n", "", True))
    uri.assert_nothing_secret_shown()  # the one URI a --totp add shows
    uri.shown.append(Shown(("user", "list"), "JBSWY3DPEHPK3PXP\n", "", True))
    with pytest.raises(AssertionError):
        uri.assert_nothing_secret_shown()


def test_two_people_setting_up_at_once_cannot_both_skip_as(team: Team) -> None:
    # The check "no admin yet" and the insert share one lock: the second of two first admins
    # (both past the early check) is refused by the journal itself, and nothing is written.
    from batchpay.journal.audit import AuditEvent
    from batchpay.journal.team import Added, UserRecord

    team.add(ADMIN, "admin", ADMIN_PW)

    def late(name: str) -> tuple[UserRecord, AuditEvent]:
        at = "2026-12-01T09:00:00.000+00:00"
        record = UserRecord(name, "admin", "$argon2id$x", None, None, False, 0, None, at, at)
        return record, AuditEvent(at, "root", "journal-writer", "user_added", None, "{}")

    with Journal(team.journal) as journal:
        assert journal.insert_user(*late("mallory"), unless_role_exists="admin") is Added.CLOSED
        assert journal.insert_user(*late(ADMIN), unless_role_exists=None) is Added.TAKEN
        assert [u.name for u in journal.user_records()] == [ADMIN]
        assert [r.action for r in journal.audit_rows()] == ["user_added"]
