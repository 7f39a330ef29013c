"""Users and the policy in the journal: every statement that reads or changes them, each change
in one transaction with the audit rows that record it (a change is never on the record without
having happened, nor the other way round). Who may do what is ``batchpay.team``'s."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from .audit import AuditEvent, AuditTrail, append

USER_COLUMNS = (
    "name, role, password_hash, totp_secret, totp_last_step, disabled, failed_sign_ins, "
    "locked_until, created_at, updated_at"
)


@dataclass(frozen=True)
class UserRecord:
    """A users row. The hash and the TOTP secret stay out of repr(), so no log or traceback
    can show them."""

    name: str
    role: str
    password_hash: str = field(repr=False)
    totp_secret: str | None = field(repr=False)
    totp_last_step: int | None
    disabled: bool
    failed_sign_ins: int
    locked_until: str | None
    created_at: str
    updated_at: str


class Added(StrEnum):
    ADDED = "added"
    TAKEN = "taken"  # a user of that name exists
    CLOSED = "closed"  # an admin exists, and the caller was not one (checked under the lock)


class TeamRecords(AuditTrail):
    def user_record(self, name: str) -> UserRecord | None:
        with self.errors():
            found = self.db.execute(
                f"SELECT {USER_COLUMNS} FROM users WHERE name = ?", (name,)
            ).fetchone()
        return _user(found) if found else None

    def user_records(self) -> list[UserRecord]:
        with self.errors():
            found = self.db.execute(f"SELECT {USER_COLUMNS} FROM users ORDER BY name").fetchall()
        return [_user(row) for row in found]

    def count_users(self, role: str | None = None, *, enabled: bool = False) -> int:
        where, values = [], []
        if role is not None:
            where.append("role = ?")
            values.append(role)
        if enabled:
            where.append("disabled = 0")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self.errors():
            (count,) = self.db.execute(f"SELECT COUNT(*) FROM users{clause}", values).fetchone()
        return int(count)

    def insert_user(
        self, record: UserRecord, event: AuditEvent, *, unless_role_exists: str | None = None
    ) -> Added:
        """Add a user and its audit row; refused (nothing written) when the name is taken or,
        with ``unless_role_exists``, when a user of that role exists: the check and the insert
        share one lock, so two people setting up a journal at once cannot both skip --as."""
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM users WHERE name = ?", (record.name,)).fetchone():
                return Added.TAKEN
            if (
                unless_role_exists is not None
                and db.execute(
                    "SELECT 1 FROM users WHERE role = ?", (unless_role_exists,)
                ).fetchone()
            ):
                return Added.CLOSED
            db.execute(
                f"INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.name, record.role, record.password_hash, record.totp_secret,
                 record.totp_last_step, int(record.disabled), record.failed_sign_ins,
                 record.locked_until, record.created_at, record.updated_at),
            )  # fmt: skip
            append(db, event)
        return Added.ADDED

    def disable_user(self, name: str, at: str, event: AuditEvent, *, keep_role: str) -> bool:
        """Disable ``name``; refused (False, nothing written) when it is the last enabled user
        of ``keep_role``: a journal whose every admin is disabled could never be managed."""
        with self.transaction() as db:
            role = db.execute("SELECT role FROM users WHERE name = ?", (name,)).fetchone()
            if role is not None and role[0] == keep_role:
                (others,) = db.execute(
                    "SELECT COUNT(*) FROM users WHERE role = ? AND disabled = 0 AND name != ?",
                    (keep_role, name),
                ).fetchone()
                if others == 0:
                    return False
            db.execute("UPDATE users SET disabled = 1, updated_at = ? WHERE name = ?", (at, name))
            append(db, event)
        return True

    def set_password_hash(self, name: str, password_hash: str, at: str, event: AuditEvent) -> None:
        """A new password: the failed count and any lock go with the old one."""
        with self.transaction() as db:
            db.execute(
                "UPDATE users SET password_hash = ?, failed_sign_ins = 0, locked_until = NULL, "
                "updated_at = ? WHERE name = ?",
                (password_hash, at, name),
            )
            append(db, event)

    def count_failure(
        self, name: str, *, at: str, limit: int, lock_until: str,
        events: Callable[[int, bool], list[AuditEvent]],
    ) -> tuple[int, bool]:  # fmt: skip
        """One more failed sign-in for ``name``; at ``limit`` the user is locked until
        ``lock_until``. A lock that has ended starts the count afresh. ``events(count,
        locked)`` gives the audit rows, written in the same transaction. Returns (count,
        locked now)."""
        with self.transaction() as db:
            found = db.execute(
                "SELECT failed_sign_ins, locked_until FROM users WHERE name = ?", (name,)
            ).fetchone()
            count, until = (found[0], found[1]) if found else (0, None)
            if until is not None and until <= at:
                count = 0
            count += 1
            locked = count >= limit
            db.execute(
                "UPDATE users SET failed_sign_ins = ?, locked_until = ?, updated_at = ? "
                "WHERE name = ?",
                (count, lock_until if locked else None, at, name),
            )
            for event in events(count, locked):
                append(db, event)
        return count, locked

    def sign_in_succeeded(
        self, name: str, *, at: str, totp_step: int | None, password_hash: str | None
    ) -> bool:
        """Reset the failed count (and a lock that has ended), keep the TOTP step just used
        (a code is accepted once: False, nothing written, when this step or a later one was
        used already), and replace the hash when it needs rehashing."""
        with self.transaction() as db:
            if totp_step is not None:
                changed = db.execute(
                    "UPDATE users SET totp_last_step = ? WHERE name = ? AND "
                    "(totp_last_step IS NULL OR totp_last_step < ?)",
                    (totp_step, name, totp_step),
                ).rowcount
                if not changed:
                    return False
            db.execute(
                "UPDATE users SET failed_sign_ins = 0, locked_until = NULL, "
                "password_hash = COALESCE(?, password_hash), updated_at = ? WHERE name = ?",
                (password_hash, at, name),
            )
        return True

    def policy_values(self) -> dict[str, str]:
        with self.errors():
            found = self.db.execute("SELECT key, value FROM policy ORDER BY key").fetchall()
        return dict(found)

    def change_policy(
        self, changes: Mapping[str, str | None], *, at: str, by: str,
        events: Callable[[dict[str, tuple[str | None, str | None]]], list[AuditEvent]],
    ) -> dict[str, tuple[str | None, str | None]]:  # fmt: skip
        """Set (or, for None, unset) policy keys; returns what changed, key -> (old, new),
        with ``events(changed)``'s audit rows written in the same transaction. Keys set to the
        value they have are left alone and not audited."""
        with self.transaction() as db:
            old = dict(db.execute("SELECT key, value FROM policy").fetchall())
            changed = {
                key: (old.get(key), new) for key, new in changes.items() if old.get(key) != new
            }
            for key, (_, new) in changed.items():
                if new is None:
                    db.execute("DELETE FROM policy WHERE key = ?", (key,))
                else:
                    db.execute(
                        "INSERT INTO policy (key, value, set_at, set_by) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                        "set_at = excluded.set_at, set_by = excluded.set_by",
                        (key, new, at, by),
                    )
            for event in events(changed) if changed else []:
                append(db, event)
        return changed

    def make_owner_only(self) -> None:
        """The journal (and SQLite's -wal and -shm beside it) readable and writable by its
        owner only: it holds TOTP secrets once users exist. On Windows nothing is done (no
        such mode bits; the folder's ACL decides)."""
        if os.name == "nt":
            return
        with self.errors():
            for suffix in ("", "-wal", "-shm"):
                path = self.path.with_name(self.path.name + suffix)
                if path.exists():
                    os.chmod(path, 0o600)


def _user(found: tuple[object, ...]) -> UserRecord:
    name, role, password_hash, secret, step, disabled, failed, until, created, updated = found
    return UserRecord(
        str(name), str(role), str(password_hash), None if secret is None else str(secret),
        None if step is None else int(str(step)), bool(disabled), int(str(failed)),
        None if until is None else str(until), str(created), str(updated),
    )  # fmt: skip
