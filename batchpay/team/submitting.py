"""``batchpay submit``: a file read, validated and planned in the journal as a batch (its
tradeNos assigned, nothing sent), then submitted for approval by a signed-in user."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import RefusedError
from ..journal.life import LifeRecord
from ..journal.rows import content_hash
from ..payrun import NOTHING_SENT, require_valid, sheet_rows
from ..recover import refuse_if_run_before
from ..results import default_output
from ..sheets.load import Loaded, load
from .life import Content, content_of, submit
from .policy import Policy
from .users import User

if TYPE_CHECKING:
    from ..journal.store import Journal


@dataclass(frozen=True)
class Submission:
    """What ``batchpay submit`` sends for approval (a file, its sheet, where it will go)."""

    file: Path
    account: str  # the gateway account the batch will be paid from
    notify_url: str | None
    sheet: str | None = None
    mobile_pattern: str = ""
    strict_duplicates: bool = False
    pay_again: bool = False


@dataclass(frozen=True)
class Submitted:
    record: LifeRecord
    content: Content
    approvals_needed: int


def plan_draft(journal: Journal, what: Submission, loaded: Loaded) -> Content:
    """A file already read and validated, with no invalid row, planned as a batch in the
    journal (its tradeNos assigned, nothing sent): a draft until it is submitted. A batch
    that was paid before (the same rows, already finished) is refused, as a run refuses it."""
    require_valid(loaded, skip_invalid=False)
    rows = sheet_rows(loaded, what.notify_url)
    digest = content_hash(rows)
    if journal.has_batch(digest, what.account) is None:
        # As a run does: a journal that lost this batch must not plan it afresh.
        refuse_if_run_before(
            journal, digest[:12], [default_output(what.file)], what.account,
            check_lock=journal.has_batch(digest) is None,
        )  # fmt: skip
    planned = journal.plan(
        rows, source=str(what.file), account=what.account, notify_url=what.notify_url,
        headers=loaded.sheet.headers, pay_again=what.pay_again, allow_repeat=False,
    )  # fmt: skip
    if planned.created:
        journal.checkpoint()
    earlier = planned.earlier
    if earlier is not None and earlier.batch_id == planned.batch_id:
        raise RefusedError(
            NOTHING_SENT.format(batch=earlier.batch_id, date=earlier.date, rows=earlier.rows,
                                total=earlier.total).replace("nothing sent", "not submitted")
        )  # fmt: skip
    return content_of(planned.batch_id, digest, planned.rows)


def load_file(what: Submission) -> Loaded:
    """The file read and validated with the command line's reader, limits and damage checks."""
    return load(
        what.file, sheet=what.sheet, mobile_pattern=what.mobile_pattern,
        strict_duplicates=what.strict_duplicates,
    )  # fmt: skip


def submit_file(journal: Journal, user: User, what: Submission, policy: Policy) -> Submitted:
    """Read and validate the file (a file with invalid rows cannot be submitted), plan it as
    a batch and submit that batch; a refusal changes nothing else and is audited."""
    content = plan_draft(journal, what, load_file(what))
    record = submit(journal, user, content, policy, pay_again=what.pay_again)
    return Submitted(record, content, policy.approvals_needed(content.total))
