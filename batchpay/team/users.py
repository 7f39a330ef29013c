"""People and roles: users kept in the journal, each with an Argon2id password hash (never the
password) and, optionally, a TOTP secret shown once as an otpauth URI.

Who may manage users: until an admin exists, whoever can write the journal (``by=None``: the
actor is the OS user, marked ``journal-writer``); once one exists, an admin signed in with
``authenticate`` (``by=user``), and for ``change_password`` also the user themselves. Every
change, and every refusal, is one audit row written with it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, NoReturn

import pyotp
from argon2 import PasswordHasher

from ..errors import AccessError, BadValueError
from ..journal.team import Added, UserRecord
from .audit import Action, Actor, ActorKind, event, os_actor, stamp, utc

if TYPE_CHECKING:
    from ..journal.store import Journal


class Role(StrEnum):
    PREPARER = "preparer"  # submits a file, sends an approved batch
    APPROVER = "approver"  # approves or rejects others' batches, sends an approved batch
    ADMIN = "admin"  # an approver who may also hold and cancel, and manages users and policy
    VIEWER = "viewer"  # reads batches, results and the audit trail


# Lower case only, so that "Alice" and "alice" are never two people.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9._-]{1,31}")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # far beyond any passphrase; bounds the hashing work an input can ask for

BAD_NAME = (
    "user name {name!r} is not allowed: 2-32 characters, lower-case letters, digits, '.', '_' "
    "and '-', starting with a letter"
)
BAD_ROLE = "role {role!r} is not one of: {roles}"
SHORT_PASSWORD = f"the password is too short: at least {MIN_PASSWORD} characters"
LONG_PASSWORD = f"the password is too long: at most {MAX_PASSWORD} characters"
NAME_AS_PASSWORD = "the password must not contain the user's name"
CONTROL_IN_PASSWORD = "the password must not contain control characters (tabs, newlines)"
NO_SUCH_USER = "no user {name!r} in the journal (batchpay user list shows them)"
TAKEN = "a user {name!r} exists already"
NEEDS_ADMIN = (
    "this journal has an admin: `batchpay user {command}` needs --as ADMIN (an admin's name; "
    "the password is asked for, or read with --password-stdin)"
)
NOT_ADMIN = "{name} is a {role}; `batchpay user {command}` needs an admin"
LAST_ADMIN = (
    "{name} is the last enabled admin: add another admin first, or nobody could manage users"
)

HASHER = PasswordHasher()  # argon2-cffi's defaults: Argon2id, its recommended cost


@dataclass(frozen=True)
class User:
    """A user as the rest of batchpay sees them: never their hash or TOTP secret."""

    name: str
    role: Role
    has_totp: bool
    disabled: bool
    failed_sign_ins: int
    locked_until: str | None
    created_at: str

    @property
    def actor(self) -> Actor:
        return Actor(self.name, ActorKind.USER)

    @classmethod
    def of(cls, record: UserRecord) -> User:
        return cls(record.name, Role(record.role), record.totp_secret is not None,
                   record.disabled, record.failed_sign_ins, record.locked_until,
                   record.created_at)  # fmt: skip


@dataclass(frozen=True)
class NewUser:
    user: User
    # The TOTP secret as an otpauth URI (for an authenticator app's QR code or entry): shown
    # once, now; the journal keeps the secret and nothing ever shows it again.
    otpauth_uri: str | None = None


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise BadValueError(BAD_NAME.format(name=name))
    return name


def parse_role(text: str) -> Role:
    try:
        return Role(text.strip().lower())
    except ValueError:
        raise BadValueError(
            BAD_ROLE.format(role=text, roles=", ".join(r.value for r in Role))
        ) from None


def check_password(name: str, password: str) -> str:
    """A password fit to hash: long enough, not the name, one line. One-line refusals."""
    if len(password) < MIN_PASSWORD:
        raise BadValueError(SHORT_PASSWORD)
    if len(password) > MAX_PASSWORD:
        raise BadValueError(LONG_PASSWORD)
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        raise BadValueError(CONTROL_IN_PASSWORD)
    if name.lower() in password.lower():
        raise BadValueError(NAME_AS_PASSWORD)
    return password


def list_users(journal: Journal) -> list[User]:
    return [User.of(record) for record in journal.user_records()]


def find_user(journal: Journal, name: str) -> User | None:
    record = journal.user_record(name)
    return User.of(record) if record else None


def admin_exists(journal: Journal) -> bool:
    """Whether user management needs an admin's --as (a disabled admin counts: the last
    enabled one cannot be disabled, so one always remains who can sign in)."""
    return journal.count_users(Role.ADMIN.value) > 0


def acting_for(
    journal: Journal, by: User | None, command: str, now: dt.datetime | None = None,
    *, self_name: str | None = None,
) -> Actor:  # fmt: skip
    """Who does the user-management ``command`` (add, disable, passwd), refused (and
    audited) when they may not: call it before asking for a new password, too."""
    if not admin_exists(journal):
        return by.actor if by is not None else os_actor(ActorKind.JOURNAL_WRITER)
    if by is None:
        refuse(journal, os_actor(), command, NEEDS_ADMIN.format(command=command), now)
    if by.role is not Role.ADMIN and by.name != self_name:
        reason = NOT_ADMIN.format(name=by.name, role=by.role.value, command=command)
        refuse(journal, by.actor, command, reason, now)
    return by.actor


def refuse(
    journal: Journal, actor: Actor, attempted: str, reason: str,
    now: dt.datetime | None = None, batch: str | None = None,
) -> NoReturn:  # fmt: skip
    """Record the refusal, then raise it: a refusal is on the record like an action."""
    journal.append_audit(
        event(actor, Action.REFUSED, batch, {"attempted": attempted, "reason": reason}, now)
    )
    raise AccessError(reason)


def add_user(
    journal: Journal, name: str, role: Role, password: str, *, by: User | None,
    totp: bool = False, now: dt.datetime | None = None,
) -> NewUser:  # fmt: skip
    """Add a user (``by``: the signed-in admin, or None while no admin exists). With
    ``totp`` a new secret is made, kept in the journal, and returned once as a URI."""
    check_name(name)
    check_password(name, password)
    actor = acting_for(journal, by, "add", now)
    when = stamp(utc(now))
    secret = pyotp.random_base32() if totp else None
    record = UserRecord(name, role.value, HASHER.hash(password), secret, None, False, 0, None,
                        when, when)  # fmt: skip
    details = {"user": name, "role": role.value, "totp": totp}
    added = journal.insert_user(
        record,
        event(actor, Action.USER_ADDED, None, details, now),
        unless_role_exists=None if by is not None and by.role is Role.ADMIN else Role.ADMIN.value,
    )
    if added is Added.TAKEN:
        raise BadValueError(TAKEN.format(name=name))
    if added is Added.CLOSED:  # an admin was added by someone else since the check above
        who = by.actor if by is not None else os_actor()
        refuse(journal, who, "add", NEEDS_ADMIN.format(command="add"), now)
    journal.make_owner_only()  # it holds TOTP secrets (and who may approve) from now on
    uri = None
    if secret is not None:
        uri = pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name="batchpay")
    return NewUser(User.of(record), uri)


def disable_user(
    journal: Journal, name: str, *, by: User | None, now: dt.datetime | None = None
) -> bool:
    """Disable ``name`` for good (no sign-in, no action); False when it was already."""
    actor = acting_for(journal, by, "disable", now)
    found = journal.user_record(name)
    if found is None:
        raise BadValueError(NO_SUCH_USER.format(name=name))
    if found.disabled:
        return False
    done = journal.disable_user(
        name,
        stamp(utc(now)),
        event(actor, Action.USER_DISABLED, None, {"user": name}, now),
        keep_role=Role.ADMIN.value,
    )
    if not done:
        raise BadValueError(LAST_ADMIN.format(name=name))
    return True


def change_password(
    journal: Journal, name: str, password: str, *, by: User | None,
    now: dt.datetime | None = None,
) -> None:  # fmt: skip
    """A new password for ``name`` (by an admin, or by ``name`` signed in); it also clears
    the failed sign-ins and a lock."""
    actor = acting_for(journal, by, "passwd", now, self_name=name)
    if journal.user_record(name) is None:
        raise BadValueError(NO_SUCH_USER.format(name=name))
    check_password(name, password)
    journal.set_password_hash(
        name, HASHER.hash(password), stamp(utc(now)),
        event(actor, Action.PASSWORD_CHANGED, None, {"user": name}, now),
    )  # fmt: skip
