"""Signing in: a name, a password and, for a user with TOTP, a one-time code, checked against
the journal; every failure counted (five lock the user for 15 minutes) and audited.

The caller's message never says which of "unknown user" and "wrong password" it was (that
would tell a guesser which names exist); the audit row records the truth. A disabled user
is told so only after the right password, for the same reason.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import TYPE_CHECKING

import pyotp
from argon2.exceptions import InvalidHashError, VerificationError
from pyotp.exceptions import OTPVerificationError

from ..errors import AccessError, SignInError
from ..journal.audit import AuditEvent
from .audit import Action, Actor, ActorKind, event, stamp, utc
from .users import HASHER, NAME_PATTERN, Role, User

if TYPE_CHECKING:
    from ..journal.store import Journal

LOCK_AFTER = 5  # failed sign-ins in a row
LOCK_FOR = dt.timedelta(minutes=15)
TOTP_WINDOW = 1  # steps of 30 s either side: a phone's clock a little off still signs in

WRONG_NAME_OR_PASSWORD = "wrong name or password"
LOCKED = (
    "{name} is locked until {until} after {count} failed sign-ins: try again then, or ask an "
    "admin for a new password (batchpay user passwd {name})"
)
NOW_LOCKED = "; that was the {count}th failed sign-in in a row: {name} is locked until {until}"
DISABLED = "{name} is disabled: ask an admin"
CODE_MISSING = (
    "{name} signs in with a one-time code too (from the authenticator app); with "
    "--password-stdin it is the line after the password"
)
CODE_WRONG = "wrong one-time code for {name}"
CODE_REUSED = "that one-time code for {name} was used already: wait for the next one"
WRONG_ROLE = "{name} is a {role}; this needs {needed}"


@cache
def _dummy_hash() -> str:
    # An unknown name still costs one hash check, so the time taken does not tell it apart.
    return HASHER.hash("no such user: a fixed text that is nobody's password")


def authenticate(
    journal: Journal, name: str, password: str, code: str | None = None, *,
    now: dt.datetime | None = None, origin: str | None = None,
) -> User:  # fmt: skip
    """The user ``name`` signed in, or a ``SignInError`` with a one-line message. ``now``
    injects the clock (the lock's 15 minutes in tests); ``origin`` (the OS user at the
    terminal, a console client's address) goes into the audit rows of failures."""
    moment = utc(now)
    at = stamp(moment)
    given = name if NAME_PATTERN.fullmatch(name) else None
    record = journal.user_record(given) if given else None
    actor = Actor(given or "(not a user name)", ActorKind.USER)
    base: dict[str, object] = {} if origin is None else {"origin": origin}
    if given is None:
        base["name_given"] = ascii(name[:64])

    def failed(reason: str, **more: object) -> AuditEvent:
        return event(actor, Action.SIGN_IN_FAILED, None, {**base, "reason": reason, **more}, now)

    if record is None:
        _password_matches(_dummy_hash(), password)
        journal.append_audit(failed("unknown user"))
        raise SignInError(WRONG_NAME_OR_PASSWORD)
    if record.locked_until is not None and record.locked_until > at:
        journal.append_audit(failed("locked", locked_until=record.locked_until))
        raise SignInError(
            LOCKED.format(name=name, until=record.locked_until, count=record.failed_sign_ins)
        )

    def counted(reason: str, message: str) -> SignInError:
        until = stamp(moment + LOCK_FOR)

        def events(count: int, locked: bool) -> list[AuditEvent]:
            found = [failed(reason, failed_in_a_row=count)]
            if locked:
                details = {**base, "locked_until": until, "after": count}
                found.append(event(actor, Action.LOCKED, None, details, now))
            return found

        count, locked = journal.count_failure(
            name, at=at, limit=LOCK_AFTER, lock_until=until, events=events
        )
        if locked:
            message += NOW_LOCKED.format(count=count, name=name, until=until)
        return SignInError(message)

    if not _password_matches(record.password_hash, password):
        raise counted("wrong password", WRONG_NAME_OR_PASSWORD)
    if record.disabled:
        journal.append_audit(failed("disabled"))
        raise SignInError(DISABLED.format(name=name))
    step = None
    if record.totp_secret is not None:
        if not code or not code.strip():
            raise counted("one-time code missing", CODE_MISSING.format(name=name))
        step = _totp_step(record.totp_secret, code.strip(), moment)
        if step is None:
            raise counted("wrong one-time code", CODE_WRONG.format(name=name))
    rehashed = HASHER.hash(password) if HASHER.check_needs_rehash(record.password_hash) else None
    if not journal.sign_in_succeeded(name, at=at, totp_step=step, password_hash=rehashed):
        raise counted("one-time code used again", CODE_REUSED.format(name=name))
    return User.of(record)


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _totp_step(secret: str, code: str, moment: dt.datetime) -> int | None:
    """The time step whose code ``code`` is (within the window), or None. The step is kept,
    so a code is accepted once: someone who saw it typed cannot reuse it."""
    try:
        return pyotp.TOTP(secret).verify_and_get_timecode(
            code, for_time=moment, valid_window=TOTP_WINDOW
        )
    except OTPVerificationError:
        return None


def require_role(user: User, *roles: Role) -> None:
    """Refuse (``AccessError``, one line) unless ``user`` has one of ``roles``. Pure: the
    caller records the refusal (``users.refuse``) with what was attempted."""
    if user.role not in roles:
        needed = " or ".join(f"the role {r.value}" for r in roles)
        raise AccessError(WRONG_ROLE.format(name=user.name, role=user.role.value, needed=needed))
