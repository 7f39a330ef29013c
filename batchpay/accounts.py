"""Which gateway account a run's batches belong to, and what a person said about the journal's
accounts (``--confirm-account``, ``--gateway-moved-from``)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Collection
from pathlib import Path

from .config import SANDBOX_TRADE_NO_PREFIX, practice_journal_path
from .errors import ConfigError
from .journal.reads import trade_nos_known_to
from .journal.store import Journal


def only_practice(trade_nos: Collection[str]) -> bool:
    """Whether these tradeNos are all practice, never evidence of a payment: assigned for an
    in-process sandbox (``SBX...``), or held by the journal that ``batchpay sandbox``'s printed
    settings practise with. A CSV result has no Summary sheet to say so; its tradeNos do."""
    wanted = set(trade_nos)
    if not wanted:
        return False
    if all(t.startswith(SANDBOX_TRADE_NO_PREFIX) for t in wanted):
        return True
    return trade_nos_known_to(practice_journal_path(), wanted) == wanted


def forget_journal(path: Path) -> None:
    """Remove a journal and its companions (the in-process sandbox's, before each run)."""
    for companion in ("", "-wal", "-shm"):
        path.with_name(path.name + companion).unlink(missing_ok=True)
    shutil.rmtree(path.with_name(path.name + ".locks"), ignore_errors=True)


MOVED_FROM_UNKNOWN = (
    "--gateway-moved-from {old}: the journal {path} has no batches of that account; the "
    "accounts it has: {known}"
)


def adopt_accounts(
    journal: Journal,
    account: str,
    say: Callable[[str], None],
    *,
    confirm_account: bool,
    moved_from: str | None,
) -> None:
    """Apply what the person said about the journal's accounts, before anything is planned."""
    if confirm_account and journal.unrecorded_batches():
        moved = journal.move_account(None, account, "run --confirm-account")
        say(f"{moved} batch(es) made before accounts were recorded are now {account}'s")
    if moved_from and moved_from != account:
        known = journal.accounts()
        if moved_from not in known:
            raise ConfigError(
                MOVED_FROM_UNKNOWN.format(old=moved_from, path=journal.path,
                                          known=", ".join(known) or "none")
            )  # fmt: skip
        moved = journal.move_account(moved_from, account, "run --gateway-moved-from")
        say(f"{moved} batch(es) of {moved_from} are now {account}'s (the same gateway "
            "at a new address; recorded in the journal)")  # fmt: skip
