"""When something fails after payouts may have left: never an exception (which would read as
exit 1, "nothing sent"), always a summary from the journal, one error line, the next step and
exit 4."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING

from .errors import BatchpayError, FileWriteError, describe
from .gateway.dispatch import Progress
from .journal.rows import JournalRow
from .journal.store import Journal
from .summary import Summary, summarize

if TYPE_CHECKING:
    from .payrun import RunRequest

log = logging.getLogger("batchpay.payrun")


# What can fail once payouts may have left: the journal (mapped to JournalError), the result
# file (FileWriteError), and anything else, a bug included: raised, it would read as exit 1,
# "nothing sent", after money moved.
AFTER_SENDING_FAILURES = (Exception,)
UNEXPECTED = "unexpected {kind}: {error} (a batchpay bug: please report it with the log file)"
JOURNAL_UNREADABLE = "the journal could not be read back either ({why}): the counts are not shown"
NEXT_AFTER_JOURNAL = (
    "fix the cause, then run the same command again: it resumes batch {batch} (rows left "
    "unknown are asked about first, never paid twice) and writes the result file; "
    "`batchpay report {batch} -o {output}` writes the result file from the journal alone"
)
NEXT_AFTER_RESULT = (
    "every answer is in the journal: `batchpay report {batch} -o {output}` writes the result "
    "file once there is room (or give another path with -o)"
)


def watching(
    watched: list[Progress], on_progress: Callable[[Progress], None] | None
) -> Callable[[Progress], None]:
    """Keep the dispatcher's progress (its request count) for a summary after a failure."""

    def seen(progress: Progress) -> None:
        watched[:] = [progress]
        if on_progress is not None:
            on_progress(progress)

    return seen


def rows_as_far_as_known(journal: Journal, batch_id: str) -> list[JournalRow] | str:
    """The batch's rows as the journal holds them after a failure while sending, or why they
    cannot be read. Answers not yet committed are tried once more; if that fails too they are
    dropped (their rows stay in flight, so they read as unknown: a re-run asks the gateway),
    which lets the journal close cleanly."""
    # flush takes the answers off the queue first: if it fails, nothing is left to fail on
    # close.
    with suppress(BatchpayError):
        journal.flush()
    try:
        return journal.rows(batch_id, fields=False)
    except BatchpayError as exc:
        return str(exc)


def failed_after_sending(
    request: RunRequest,
    batch_id: str,
    error: BaseException,
    latest: list[JournalRow] | str,
    watched: list[Progress],
    started: float,
) -> Summary:
    """The summary of a run that failed after payouts may have left: never an exception
    (which would read as "nothing sent"), always exit 4 with the next step."""
    if isinstance(error, BatchpayError):
        message = str(error)
    elif isinstance(error, OSError | sqlite3.Error):
        message = describe(error)
    else:
        message = UNEXPECTED.format(kind=type(error).__name__, error=error)
    # The traceback goes to the log file (and -v), never to the operator's screen.
    log.info("run failed after sending started", exc_info=error)
    counts: dict[str, int] = {}
    amounts: dict[str, int] = {}
    if isinstance(latest, str):
        message += "; " + JOURNAL_UNREADABLE.format(why=latest)
    else:
        counts, amounts = summarize(latest)
    journal_failed = not isinstance(error, FileWriteError)
    step = NEXT_AFTER_JOURNAL if journal_failed else NEXT_AFTER_RESULT
    return Summary(
        batch_id=batch_id, source=str(request.file), result_file="",
        journal=str(request.journal), counts=counts, amounts=amounts,
        requests=watched[0].requests if watched else 0,
        seconds=time.monotonic() - started, exit_code=4, stopped=journal_failed,
        stop_reason="the journal failed while sending" if journal_failed else "",
        next_steps=[step.format(batch=batch_id, output=request.output)], error=message,
    )  # fmt: skip
