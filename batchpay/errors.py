"""batchpay's exceptions, one tree; each class carries the exit code the CLI returns for it.

    BatchpayError                 (exit 1 unless a subclass says otherwise)
    ├── InputError                the file cannot be read, or is not a beneficiary sheet  -> 1
    │   └── InvalidRowsError      rows failed validation; nothing was sent                -> 1
    ├── RefusedError              a confirmation or an expectation refused the run        -> 1
    │   └── DeclinedError         the person answered no at the confirmation              -> 1
    ├── ConfigError               a setting is missing or malformed                       -> 2
    ├── BadValueError             a value given (a user's name, a password, a policy key) -> 2
    ├── AccessError               this user, or their role, may not do that; nothing done -> 1
    │   └── SignInError           wrong name or password, disabled, locked, code wrong    -> 1
    ├── AuditChainError           the audit trail does not verify (edited, cut, reordered)-> 1
    ├── OutputError               the result file's path cannot be used (-o)              -> 2
    ├── FileWriteError            a file could not be written (disk full, read-only)      -> 1
    └── JournalError              the journal cannot be opened, read or written           -> 1

Exit codes 3 (some rows rejected, failed or unknown) and 4 (stopped early) are outcomes of a
run, not exceptions: see ``batchpay.outcomes.exit_code``. A failure after sending started is
an outcome too: ``run_batch`` turns it into a summary with exit code 4, never an exception.

``mapped`` is the one place where the standard library's ``sqlite3.Error`` and ``OSError``
become one of these, with a one-line message that names the file and what to do.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class BatchpayError(Exception):
    """Base of every error batchpay reports to a user as one line."""

    exit_code = 1
    label = "error"  # what the line starts with: "batchpay: error: ..."


class InputError(BatchpayError):
    """The input file is unreadable, or its header is not a beneficiary sheet's."""


class InvalidRowsError(InputError):
    """One or more rows failed validation. ``problems``: each, one entry per cell, as data
    (for --json reports)."""

    def __init__(self, message: str, *, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class RefusedError(BatchpayError):
    """The user, or an --expect-* option, refused the run."""


class DeclinedError(RefusedError):
    """The person answered no at the confirmation: a decision, not an error."""

    label = "not sent"


class ConfigError(BatchpayError):
    """A required setting is missing or malformed."""

    exit_code = 2


class BadValueError(BatchpayError):
    """A value given on the command line or standard input cannot be used: a user's name
    outside the pattern, a password too short, an unknown role or policy key. A usage error."""

    exit_code = 2


class AccessError(BatchpayError):
    """The user (or, without --as, the person at the terminal) may not do this: their role, a
    missing --as where an admin is needed. Nothing was done; the refusal is audited."""

    label = "refused"


class SignInError(AccessError):
    """A sign-in failed. The message never says which of "unknown user" and "wrong password"
    it was; the audit row records the truth."""


class AuditChainError(BatchpayError):
    """The audit trail does not verify: a row was edited, deleted or moved."""


class OutputError(BatchpayError):
    """The result file cannot go where it was asked to (its suffix, its folder), found before
    anything is read or sent. A usage error of ``-o``: the command line exits 2 for an option's
    value that cannot be used (a path that is not writable), and so does this."""

    exit_code = 2


class FileWriteError(BatchpayError):
    """Writing a file failed (the disk is full, the folder went read-only)."""


class JournalError(BatchpayError):
    """The journal cannot be opened or used."""


# Why a file operation failed, in words an operator acts on; the library's own text follows.
DISK_FULL = "the disk is full; free some space"
DAMAGED = (
    "the file is damaged; keep it as it is (it holds every tradeNo sent) and restore the "
    "journal from a backup before running again"
)
LOCKED = "another process holds it locked; try again when it has finished"
NOT_ALLOWED = "permission denied"
READ_ONLY = "the file system is read-only"

_ERRNO_REASONS = {
    errno.ENOSPC: DISK_FULL,
    errno.EDQUOT: "the disk quota is used up; free some space",
    errno.EACCES: NOT_ALLOWED,
    errno.EPERM: NOT_ALLOWED,
    errno.EROFS: READ_ONLY,
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder",
}


def describe(exc: BaseException, *, name_file: bool = True) -> str:
    """One line for an ``OSError`` or ``sqlite3.Error``: what it means, then its own words
    (and the file it names, unless ``name_file`` is false: the caller names a better one)."""
    if isinstance(exc, sqlite3.Error):
        text = str(exc) or type(exc).__name__
        lowered = text.lower()
        if "full" in lowered:
            reason = DISK_FULL
        elif "malformed" in lowered or "not a database" in lowered or "corrupt" in lowered:
            reason = DAMAGED
        elif "locked" in lowered or "busy" in lowered:
            reason = LOCKED
        elif "readonly" in lowered or "read-only" in lowered:
            reason = READ_ONLY
        else:
            return f"{text} (sqlite3.{type(exc).__name__})"
        return f"{reason} ({text})"
    if isinstance(exc, OSError):
        words = exc.strerror or str(exc) or type(exc).__name__
        where = f" ({exc.filename})" if exc.filename and name_file else ""
        known = _ERRNO_REASONS.get(exc.errno or 0)
        if known is None:
            return f"{words}{where}"
        return f"{known} ({words}){where}"
    return str(exc) or type(exc).__name__


@contextmanager
def mapped(error: type[BatchpayError], subject: str) -> Iterator[None]:
    """Turn ``sqlite3.Error`` and ``OSError`` raised inside into ``error`` with a one-line
    message, ``"{subject}: {why}"``, chained to the original for logs and debuggers."""
    try:
        yield
    except BatchpayError:
        raise
    except (sqlite3.Error, OSError) as exc:
        raise error(f"{subject}: {describe(exc)}") from exc
