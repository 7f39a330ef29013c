"""Before the confirmation: can the account pay the rows about to be sent?

The family refuses each payout past the balance, so a batch larger than the balance would be
paid part-way: some people paid, others not, and (unless the refusal code is configured as
``insufficient_balance_codes``) the rest recorded as rejected. When ``balance_url`` is set, a
run that will send asks the balance once and refuses such a batch before anything leaves. A
balance query that fails stops the run too: an amount that could not be read is never taken
for enough.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

from .config import Gateway, SendOptions
from .errors import RefusedError
from .gateway.balance import BalanceReading, read_balance
from .journal.rows import JournalRow
from .outcomes import Failure, Outcome

log = logging.getLogger("batchpay.balance")

SHORT = (
    "refused: the {count} row(s) to send total {total:,}{unknown}, but the account's "
    "available balance is {available}; nothing was sent. Top up the balance (or send fewer "
    "rows) and run again"
)
UNKNOWN_PART = (
    " (including {n} unknown row(s) that may already be placed: `batchpay reconcile` asks the "
    "gateway about them first)"
)
FAILED = "refused: the balance could not be read: {problem}; nothing was sent. {advice}"
# What to do, by why it could not be read.
DOWN = "Run again when the gateway answers"
UNTRUSTED = "Trust the gateway's certificate authority with --ca-bundle (or BATCHPAY_CA_BUNDLE)"
SETTINGS = "Check BATCHPAY_BALANCE_URL, BATCHPAY_MERCHANT_NO, the secret and BATCHPAY_SIGN_SALT"


def amount_text(amount: Decimal) -> str:
    """An amount as the confirmation and messages show it: ``1,500.00``."""
    return f"{amount:,.2f}"


def check_balance(
    gateway: Gateway, options: SendOptions, rows: list[JournalRow]
) -> BalanceReading | None:
    """The balance, when the gateway has a balance URL (None otherwise: nothing is asked).
    Raises RefusedError (exit 1, nothing sent) when it cannot be read, or when the rows to
    send total more than is available. ``unknown`` rows count: they are sent unless the
    status query finds them placed, and the balance must cover that."""
    reading = _ask(gateway, options)
    if reading is None:
        return None
    if reading.available is None:
        raise RefusedError(FAILED.format(problem=reading.problem, advice=_advice(reading)))
    total = sum(row.amount for row in rows)
    # In the log file too: what the account held when this batch was let go (or refused).
    log.info("balance: available %s, frozen %s; %d row(s) to send total %d",
             reading.available, reading.frozen, len(rows), total)  # fmt: skip
    if total > reading.available:
        unknown = sum(1 for row in rows if row.outcome is Outcome.UNKNOWN)
        raise RefusedError(
            SHORT.format(
                count=len(rows), total=total, available=amount_text(reading.available),
                unknown=UNKNOWN_PART.format(n=unknown) if unknown else "",
            )
        )  # fmt: skip
    return reading


def _advice(reading: BalanceReading) -> str:
    failure = reading.answer.failure
    if failure is Failure.TLS:
        return UNTRUSTED
    if failure is not None and reading.answer.http_status is None:
        return DOWN  # no HTTP answer at all: refused, timed out, dropped
    return SETTINGS  # an answer came, but not one a balance can be read from


def _ask(gateway: Gateway, options: SendOptions) -> BalanceReading | None:
    if gateway.in_process:
        return None  # `run --sandbox`: no balance to ask, and no server to start for it

    async def ask() -> BalanceReading | None:
        async with gateway.connect() as config:
            if config.balance_url is None:
                return None
            return await read_balance(config, options)

    return asyncio.run(ask())
