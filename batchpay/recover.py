"""A lost journal: noticed before a run, and rebuilt from a result file.

Without its journal, a re-run of a file plans the batch afresh, with new tradeNos, and pays
every row again. Two traces of an earlier run outlive the journal: the batch's lock file beside
it (``journal.locks.lock_file``) and the result file. ``refuse_if_run_before`` turns either into a
refusal before anything is planned; ``result_file.read_result_file`` and ``rebuild.rebuild``
turn a result file back
into the batch a re-run of the original input computes (same rows, same content hash, the same
tradeNos), which ``Journal.restore`` writes and ``recover`` then checks with the gateway's status
query, row by row.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .accounts import only_practice
from .config import GatewayConfig, SendOptions
from .errors import InputError, JournalError
from .gateway.reconcile import reconcile
from .journal.locks import batch_lock, lock_file
from .journal.store import Journal
from .outcomes import PLACED, Outcome, exit_code
from .rebuild import Rebuilt
from .result_file import ResultFile, read_result_file

log = logging.getLogger("batchpay.recover")

LOST_JOURNAL = (
    "the journal at {journal} does not know {what}, though {evidence} shows an earlier run; "
    "nothing was planned or sent. If the journal was lost, `batchpay recover {result}` "
    "rebuilds the batch from that run's result file; if the journal was moved, point "
    "--journal (or BATCHPAY_JOURNAL) at it"
)
LOCK_ONLY = (
    "; if no payout of batch {batch} was ever sent (a dry run only), remove {lock} and run again"
)
OTHER_BATCH = (
    "; {path} is the result of batch {earlier}, not of this file's batch {batch}: recovering it "
    "first lets the repeat window see its payouts; if it needs nothing more, move it away"
)
SANDBOX_RESULT = (
    "{path} is the result of a sandbox run ({value}): its orders were never real; nothing to "
    "recover"
)
OTHER_ACCOUNT = (
    "{path} was written for the gateway account {recorded}, but the settings are for {account}: "
    "its tradeNos say nothing about this account's orders; use the settings of {recorded}"
)


def unknown_trade_nos(journal: Journal, path: Path, account: str) -> tuple[list[str], str]:
    """The tradeNos of an earlier result file at ``path`` that ``journal`` does not know, and
    the batch its Summary names ('' for a CSV): none when there is no such file, when it is no
    batchpay result, a sandbox's, or another account's (its orders say nothing about this
    journal's)."""
    if not path.is_file():
        return [], ""
    try:
        result = read_result_file(path)
    except InputError:
        return [], ""  # not a result file: no evidence of anything
    if result.sandbox or (result.account and result.account != account):
        return [], ""
    outcomes = result.column("outcome")
    listed = [t for t, o in zip(result.trade_nos, outcomes, strict=True) if t and o != "invalid"]
    unknown = sorted(set(listed) - journal.known_trade_nos(listed))
    if unknown and not result.summary and only_practice(unknown):
        return [], ""
    return unknown, result.summary.get("batch", "")


def refuse_if_run_before(
    journal: Journal, batch_id: str, outputs: Sequence[Path], account: str, *,
    check_lock: bool = True,
) -> None:  # fmt: skip
    """Refuse (JournalError, exit 1) a run of a batch new to ``journal`` when an earlier run
    left traces: a result file at one of ``outputs`` (this run's, and the default one beside
    the input) with tradeNos the journal does not know, or the batch's lock file beside the
    journal (``check_lock``: only when no batch of this content is in the journal on any
    account, since such a batch leaves the same lock). Call it for a batch this account does
    not have in the journal."""
    for output in dict.fromkeys(outputs):  # each path once, in order
        unknown, earlier = unknown_trade_nos(journal, output, account)
        if not unknown:
            continue
        shown = ", ".join(unknown[:3]) + (", ..." if len(unknown) > 3 else "")
        refusal = LOST_JOURNAL.format(
            journal=journal.path, what=f"these {len(unknown)} tradeNo(s) ({shown})",
            evidence=output, result=output,
        )  # fmt: skip
        if earlier and earlier != batch_id:
            refusal += OTHER_BATCH.format(earlier=earlier, batch=batch_id, path=output)
        raise JournalError(refusal)
    lock = lock_file(journal.path, batch_id)
    if check_lock and lock.exists():
        raise JournalError(
            LOST_JOURNAL.format(
                journal=journal.path, what=f"batch {batch_id}",
                evidence=f"its lock file {lock}", result="RESULT_FILE",
            )
            + LOCK_ONLY.format(batch=batch_id, lock=lock)
        )  # fmt: skip


# -- recover -----------------------------------------------------------------------------------


@dataclass
class Recovered:
    batch_id: str
    source: str  # the input the batch was read from, as its Summary names it ('' for a CSV)
    rows: int
    counts: dict[str, int]
    queried: int
    requests: int
    stop_reason: str
    notes: list[str]
    exit_code: int

    def as_json(self) -> dict[str, object]:
        return {
            "batch": self.batch_id, "source": self.source, "rows": self.rows, "counts": self.counts,
            "queried": self.queried, "requests": self.requests,
            "stop_reason": self.stop_reason, "notes": self.notes, "exit_code": self.exit_code,
        }  # fmt: skip


def check_evidence(result: ResultFile, account: str) -> None:
    """Refuse a result file whose tradeNos say nothing about ``account``'s orders."""
    if result.sandbox:
        raise InputError(SANDBOX_RESULT.format(path=result.path, value=result.sandbox))
    if result.account and result.account != account:
        raise InputError(
            OTHER_ACCOUNT.format(path=result.path, recorded=result.account, account=account)
        )


def absent_outcome(file_says: dict[str, Outcome]) -> dict[str, Outcome]:
    """For each tradeNo, its row's outcome when the gateway holds no such order: pending (never
    placed: the next run sends it), except a row the file reports rejected, which stays so (a
    rejected row is final: the lost journal would not have sent it again), and a repeat, held
    back for good (its payout was made, under another batch's tradeNo: never pay it again)."""
    # A repeat's payout was made by another batch; a cancelled row is never to be sent.
    kept = {Outcome.REJECTED, Outcome.REPEAT, Outcome.CANCELLED}
    return {t: o if o in kept else Outcome.PENDING for t, o in file_says.items()}


def recover(
    config: GatewayConfig,
    options: SendOptions,
    journal: Journal,
    rebuilt: Rebuilt,
) -> Recovered:
    """Write the rebuilt batch into the journal (every row unknown), then ask the status query
    about each tradeNo: an order the gateway holds -> processing, paid or failed; a definite
    "no such order" (``not_found_codes``) -> pending; any other answer leaves it unknown."""
    with batch_lock(journal.path, rebuilt.batch_id):
        batch_id, planned = journal.restore(
            rebuilt.rows, rebuilt.trade_nos, rebuilt.source, account=config.account,
            notify_url=config.notify_url,
            headers=rebuilt.headers, attempts=rebuilt.attempts, sent_at=rebuilt.sent_at,
            batch_id=rebuilt.batch_id,
        )  # fmt: skip
        journal.checkpoint()  # the rebuilt batch into the main file before the first query
        asked = [row for row in planned if row.outcome is Outcome.UNKNOWN]
        file_says = {t: o for t, o in zip(rebuilt.trade_nos, rebuilt.outcomes, strict=True) if t}
        result = asyncio.run(
            reconcile(config, options, journal, asked, absent=absent_outcome(file_says))
        )
        journal.count_placed_as_sent(batch_id, rebuilt.sent_at)
        latest = journal.rows(batch_id, fields=False)
    counts: Counter[str] = Counter(row.outcome.value for row in latest)
    order = [o.value for o in Outcome]
    notes = list(rebuilt.notes)
    contradicted = [
        row for row in latest
        if row.trade_no and row.outcome is Outcome.PENDING
        and file_says.get(row.trade_no) in PLACED
    ]  # fmt: skip
    if contradicted:
        notes.append(
            f"{len(contradicted)} row(s) the result file reports placed are unknown to the "
            f"gateway (first: tradeNo {contradicted[0].trade_no}); check the account before "
            "the next run sends them"
        )
    log.info(
        "batch=%s recovered from a result file (%s) into the journal %s: %s",
        batch_id, rebuilt.source, journal.path,
        ", ".join(f"{n} {o}" for o, n in sorted(counts.items())),
        extra={"event": {"batch": batch_id, "source": rebuilt.source, "counts": dict(counts)}},
    )  # fmt: skip
    code = exit_code(
        (row.outcome for row in latest if row.outcome is not Outcome.INVALID),
        stopped=bool(result.stop_reason),
    )
    return Recovered(
        batch_id=batch_id, source=rebuilt.input_file, rows=len(latest),
        counts={k: counts[k] for k in order if counts[k]},
        queried=result.queried, requests=result.requests, stop_reason=result.stop_reason,
        notes=notes, exit_code=code,
    )  # fmt: skip
