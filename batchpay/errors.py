"""batchpay's exceptions, one tree; each class carries the exit code the CLI returns for it.

    BatchpayError                 (exit 1 unless a subclass says otherwise)
    ├── InputError                the file cannot be read, or is not a beneficiary sheet  -> 1
    │   └── InvalidRowsError      rows failed validation; nothing was sent                -> 1
    ├── RefusedError              a confirmation or an expectation refused the run        -> 1
    │   └── DeclinedError         the person answered no at the confirmation              -> 1
    ├── ConfigError               a setting is missing or malformed                       -> 2
    └── JournalError              the journal cannot be opened or is inconsistent         -> 1

Exit codes 3 (some rows rejected, failed or unknown) and 4 (stopped early) are outcomes of a
run, not exceptions: see ``batchpay.outcomes.exit_code``.
"""

from __future__ import annotations

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


class JournalError(BatchpayError):
    """The journal cannot be opened or used."""
