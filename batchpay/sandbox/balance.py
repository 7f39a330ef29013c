"""The simulated gateway's merchant balance (``batchpay sandbox --balance N``).

A placed payout moves its amount from available to frozen; settled paid, it leaves frozen;
settled failed, it returns to available. A payout larger than what is available is refused
with the balance code, as the family refuses each payout past the balance. Without a balance
the account has no limit, and the balance query still answers (with ``UNLIMITED``), so a run
configured with the balance URL works against any sandbox.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from decimal import Decimal

BALANCE_PATH = "/v1/paypro/queryBalance"
# What a sandbox without --balance answers: far beyond any payroll, and never reduced.
UNLIMITED = Decimal("999999999999.00")
AMOUNT = re.compile(r"[0-9]+(?:\.[0-9]{1,2})?")


def parse_amount(text: str) -> Decimal:
    """``--balance``'s value: digits with at most two decimals (ValueError otherwise)."""
    if not AMOUNT.fullmatch(text.strip()):
        raise ValueError(f"{text!r} is not an amount (digits, at most two decimals)")
    return Decimal(text.strip())


@dataclass
class Ledger:
    """The account's money. ``available`` None: no limit."""

    available: Decimal | None = None
    frozen: Decimal = Decimal(0)
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def take(self, amount: str) -> bool:
        """Hold a payout's amount (its text, as sent); False (nothing held) when the balance
        cannot cover it."""
        if self.available is None:
            return True  # no limit: nothing to count (the sandbox's speed is benchmarked)
        with self._lock:
            value = Decimal(amount)
            if value > self.available:
                return False
            self.available -= value
            self.frozen += value
            return True

    def settle(self, amount: str, *, paid: bool) -> None:
        if self.available is None:
            return
        with self._lock:
            self.frozen -= Decimal(amount)
            if not paid:
                self.available += Decimal(amount)

    def data(self) -> dict[str, str]:
        """The balance query's ``data``: amounts as strings with two decimals."""
        with self._lock:
            available = UNLIMITED if self.available is None else self.available
            return {"availableAmount": f"{available:.2f}", "freezeAmount": f"{self.frozen:.2f}"}
