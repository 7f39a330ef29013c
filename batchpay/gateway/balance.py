"""The balance query (the family's ``queryBalance``): what the merchant account can pay now.

``query_balance`` is the one public coroutine: ``run`` calls it (through ``read_balance``)
before the confirmation, and ``config check --live`` calls it as a probe. It never raises for
anything the gateway or the network does: a reading without an amount carries a one-line
``problem`` instead, and a caller stops on it (never a guess).

The amounts are held to a strict form, as callbacks' are: digits with at most two decimals,
as a JSON string or number, and nothing else (no sign, no exponent, no ``true``, no field
named twice), because a balance read wrong is a batch sent past it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp

from ..config import GatewayConfig, SendOptions
from ..outcomes import Answer, Failure
from .client import GatewayClient
from .dispatch import ssl_context

__all__ = ["BalanceReading", "parse_balance", "query_balance", "read_balance"]

OK = "0000"
# One country's page of the family spells the field without its second "e": both are read.
AVAILABLE_FIELDS = ("availableAmount", "availablAmount")
AMOUNT = re.compile(r"[0-9]{1,18}(?:\.[0-9]{1,2})?")

NO_ANSWER = "the balance query got no answer ({error})"
NOT_ENVELOPE = "the balance query's answer (HTTP {status}) is not the gateway's JSON envelope"
REFUSED = "the gateway answered the balance query with {code} {msg!r} (HTTP {status})"
UNTRUSTED = (
    "the balance query's answer is not believed ({error}): is BATCHPAY_VERIFY_ANSWER_SIGN "
    "right? `batchpay config check --live` finds it"
)
NO_AMOUNT = "the balance query's answer has no data.availableAmount"
GARBLED = "the balance query's answer has data.{name} = {value}, not an amount"
TWICE = "the balance query's answer names a field twice ({name})"
BOTH_SPELLINGS = (
    "the balance query's answer has both data.availableAmount ({first}) and "
    "data.availablAmount ({second})"
)


@dataclass(frozen=True)
class BalanceReading:
    """One balance query: what came back, and the amounts read from it. ``available`` is
    None exactly when ``problem`` says why no amount could be read."""

    answer: Answer
    available: Decimal | None = None
    frozen: Decimal | None = None  # data.freezeAmount, when the gateway sends it
    unsettled: Decimal | None = None  # data.unsettledAmount, when the gateway sends it
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.available is not None

    def as_json(self) -> dict[str, str | None]:
        """The amounts as text (``"1500.00"``), for ``--json``: a float would round."""
        return {
            "available": None if self.available is None else f"{self.available:.2f}",
            "frozen": None if self.frozen is None else f"{self.frozen:.2f}",
            "unsettled": None if self.unsettled is None else f"{self.unsettled:.2f}",
            "problem": self.problem,
        }


class _Garbled(ValueError):
    """A body that is JSON but not in a shape an amount can be trusted from."""


class _Number(str):
    """A JSON number's text as written (json.loads would make 1000.10 a float)."""


def _refuse_constant(name: str) -> Any:
    raise _Garbled(f"the balance query's answer holds {name}")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _Garbled(TWICE.format(name=key))
        found[key] = value
    return found


def _amount(data: dict[str, Any], name: str) -> Decimal | None:
    """The field as an amount, None when absent; anything else is garbled."""
    if name not in data or data[name] is None:
        return None
    value = data[name]
    # bool is not a str (a JSON true arrives as True); a number arrives as its own text.
    if isinstance(value, str) and AMOUNT.fullmatch(value):
        return Decimal(value)
    shown = json.dumps(value) if not isinstance(value, _Number) else str(value)
    raise _Garbled(GARBLED.format(name=name, value=shown[:40]))


def parse_balance(answer: Answer, body: bytes) -> BalanceReading:
    """A balance query's answer and body, read (pure: table-tested)."""
    if answer.failure is Failure.UNTRUSTED:  # BATCHPAY_VERIFY_ANSWER_SIGN on, and it failed
        return BalanceReading(answer, problem=UNTRUSTED.format(error=answer.error))
    if answer.http_status is not None and not answer.has_envelope:  # HTML, a proxy's page
        return BalanceReading(answer, problem=NOT_ENVELOPE.format(status=answer.http_status))
    if answer.failure is not None or not answer.has_envelope:
        return BalanceReading(answer, problem=NO_ANSWER.format(error=answer.error))
    if answer.code != OK or answer.http_status != 200:
        problem = REFUSED.format(code=answer.code, msg=answer.msg, status=answer.http_status)
        return BalanceReading(answer, problem=problem)
    try:
        document = json.loads(
            body.decode("utf-8"), parse_float=_Number, parse_int=_Number,
            parse_constant=_refuse_constant, object_pairs_hook=_pairs,
        )  # fmt: skip
        data = document.get("data")
        if not isinstance(data, dict):
            raise _Garbled(NO_AMOUNT)
        spelled = [_amount(data, name) for name in AVAILABLE_FIELDS]
        if None not in spelled and spelled[0] != spelled[1]:
            raise _Garbled(BOTH_SPELLINGS.format(first=spelled[0], second=spelled[1]))
        available = spelled[0] if spelled[0] is not None else spelled[1]
        if available is None:
            raise _Garbled(NO_AMOUNT)
        frozen = _amount(data, "freezeAmount")
        unsettled = _amount(data, "unsettledAmount")
    except _Garbled as exc:
        return BalanceReading(answer, problem=str(exc))
    except (UnicodeDecodeError, ValueError):  # parse_envelope read it: not expected
        return BalanceReading(answer, problem=NOT_ENVELOPE.format(status=answer.http_status))
    return BalanceReading(answer, available, frozen, unsettled)


async def query_balance(client: GatewayClient) -> BalanceReading:
    """Ask the gateway once for the account's balance (the client's ``balance_url``, signed
    as every request is). Never raises for the network or the answer: see ``problem``."""
    answer, body = await client.balance()
    return parse_balance(answer, body)


async def read_balance(config: GatewayConfig, options: SendOptions) -> BalanceReading:
    """``query_balance`` over a session of its own, with the TLS settings sending uses."""
    connector = aiohttp.TCPConnector(limit=1, ssl=ssl_context(options))
    async with aiohttp.ClientSession(connector=connector) as session:
        return await query_balance(GatewayClient(config, session, timeout=options.timeout))
