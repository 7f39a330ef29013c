"""Protection beyond one batch: the same payout placed by another batch within a window
(a fixed file re-run whole, a file sent twice), and a second process on the same batch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from .config import IN_PROCESS, SendOptions
from .errors import RefusedError
from .journal.rows import HeldRepeat, JournalRow, PlacedPayout, payout_fingerprint
from .journal.store import Journal
from .outcomes import Outcome
from .result_target import refuse_replacing

# A row of another batch that placed the same payout.
Repeat = PlacedPayout


ELSEWHERE = (
    "refused: {count} row(s) of this file match payouts sent in the last {hours:g} h on the "
    "gateway account {other} (first: batch {batch}, tradeNo {trade_no}), and this run is for "
    "{account}; nothing sent. If {account} is the same gateway at a new address, run again "
    "with --gateway-moved-from {other}. If {other} was a practice or test gateway, keep its "
    "batches in another journal; --pay-again sends these rows on {account} anyway"
)


def find_repeats(
    journal: Journal, batch_id: str, rows: Sequence[JournalRow], window_hours: float,
    account: str,
) -> dict[str, Repeat]:  # fmt: skip
    """For each row (by tradeNo), a row of another batch that placed the same payout
    (same account number, amount, names, mobile, e-mail, remark) within the window, if any:
    the earliest on this gateway account, else the earliest on another."""
    cutoff = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=window_hours)).isoformat(
        timespec="milliseconds"
    )
    by_fingerprint: dict[str, list[str]] = {}
    for row in rows:
        if row.trade_no:
            fingerprint = row.fingerprint or payout_fingerprint(row.fields)
            by_fingerprint.setdefault(fingerprint, []).append(row.trade_no)
    found: dict[str, Repeat] = {}
    for fingerprint, repeat in journal.placed_since(list(by_fingerprint), batch_id, cutoff):
        for trade_no in by_fingerprint[fingerprint]:
            known = found.get(trade_no)
            if known is None or (known.account != account and repeat.account == account):
                found[trade_no] = repeat
    return found


def mark_repeats(
    journal: Journal, repeats: dict[str, Repeat], release: Collection[str] = ()
) -> None:
    """Hold back ``repeats`` (by tradeNo, with the earlier payout they repeat) and let the
    rows ``release`` names, held back before, go back to pending."""
    journal.hold_back(
        {
            trade_no: HeldRepeat(
                f"same payout placed in batch {r.batch_id} as tradeNo {r.trade_no} "
                f"({r.outcome}) at {r.first_sent_at}; --allow-repeat sends it again",
                r.status,
                r.platform_trade_no,
            )
            for trade_no, r in repeats.items()
        },
        release,
    )


def hold_back_repeats(
    journal: Journal,
    batch_id: str,
    candidates: list[JournalRow],
    options: SendOptions,
    say: Callable[[str], None],
    *,
    account: str,
    pay_again: bool = False,
) -> list[JournalRow]:
    """The rows to send: the candidates no other batch of this gateway account placed within
    the repeat window. The held-back rows are recorded as ``repeat``; each run checks them
    again. Rows placed on another account within the window refuse the run (``ELSEWHERE``)
    unless ``pay_again``: that account may be this gateway at its old address.
    """
    found = find_repeats(journal, batch_id, candidates, options.repeat_window_hours, account)
    # Only rows never sent by this batch can be held back; the others must be resolved.
    unsent = {row.trade_no for row in candidates if not row.attempts and not row.in_flight}
    found = {t: r for t, r in found.items() if t in unsent}
    # An in-process sandbox's orders ended with its run: they hold nothing back anywhere.
    found = {t: r for t, r in found.items() if IN_PROCESS not in r.account or r.account == account}
    elsewhere = {t: r for t, r in found.items() if r.account != account}
    if elsewhere and not pay_again:
        first = next(iter(elsewhere.values()))
        raise RefusedError(
            ELSEWHERE.format(count=len(elsewhere), hours=options.repeat_window_hours,
                             other=first.account or "(unrecorded)", batch=first.batch_id,
                             trade_no=first.trade_no, account=account)
        )  # fmt: skip
    repeats = {} if options.allow_repeat else {
        t: r for t, r in found.items() if r.account == account
    }  # fmt: skip
    # A row once held back as a repeat of a placed payout stays held when the window has
    # passed since: that payout was made. Only --allow-repeat lets it go.
    held = {r.trade_no for r in candidates if r.outcome is Outcome.REPEAT and r.trade_no}
    kept = set() if options.allow_repeat else held - set(repeats)
    mark_repeats(journal, repeats, release=held - kept - set(repeats))
    if repeats or kept:
        say(
            f"{len(repeats) + len(kept)} row(s) match payouts placed by another batch and are "
            "not sent (see the msg column; --allow-repeat sends them)"
        )
    return [row for row in candidates if row.trade_no not in repeats and row.trade_no not in kept]


def refuse_replacing_result(
    output: Path, journal: Journal, batch_id: str, rows: Sequence[JournalRow],
    planned: Sequence[JournalRow], to_send: Sequence[JournalRow], *, account: str,
    sandbox: bool, window_hours: float,
) -> str:  # fmt: skip
    """Before the confirmation: the result path holds nothing but this batch's result, or a
    result whose every payout this batch names as a repeat (a note says it is replaced).
    ``planned``: the rows the plan left to send; ``to_send``: those not held back."""
    sending = {r.trade_no for r in to_send}
    held = [r for r in planned if r.trade_no not in sending]

    def carried() -> set[str]:
        found = find_repeats(journal, batch_id, held, window_hours, account)
        return {repeat.trade_no for repeat in found.values()}

    return refuse_replacing(
        output, batch_id, {r.trade_no for r in rows if r.trade_no}, journal, account=account,
        sandbox=sandbox, carried=carried,
    )  # fmt: skip
