"""The Vexora client: one attempt in, one typed Answer out.

This is the only module that knows aiohttp's exceptions; each is mapped here to an Answer whose
``failure`` says what kind of failure it was (matched by identity elsewhere) and whose ``error``
says it in words, so the rest of batchpay reasons about answers, never exceptions.
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from ..config import SANDBOX_HEADER, GatewayConfig
from ..outcomes import Answer, Failure, amount_or_empty
from ..signing import sign

PAYOUT_FIELDS = (
    "amount", "accountNo", "mobile", "email", "firstname", "lastname", "tradeNo", "notifyUrl",
    "remark",
)  # fmt: skip

# A failure's words ("tls: ...", "connect: ...", "timeout", "unreadable body") are the texts
# the journal's msg and detail columns have always held: old and new journals read alike, and
# nothing reads the kind back from them.
UNREADABLE_BODY = "unreadable body"


def _unreadable(http_status: int, retry_after: float | None) -> Answer:
    return Answer(http_status=http_status, failure=Failure.UNREADABLE, error=UNREADABLE_BODY,
                  retry_after=retry_after)  # fmt: skip


def _reason(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else ""


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def parse_envelope(http_status: int, body: bytes, retry_after: float | None) -> Answer:
    """An HTTP answer's body read as the gateway's envelope (both layers)."""
    try:
        # A JSON number with a fraction or exponent is kept as its text, as callbacks keep
        # every value: payAmount 12e3 is then refused as an amount, not read as 12000.0.
        document = json.loads(body.decode("utf-8"), parse_float=str)
    except (UnicodeDecodeError, ValueError):
        return _unreadable(http_status, retry_after)
    if not isinstance(document, dict) or "code" not in document:
        return _unreadable(http_status, retry_after)
    data = document.get("data")
    data = data if isinstance(data, dict) else {}
    pay_amount, note = _pay_amount(data)
    return Answer(
        http_status=http_status,
        code=_text(document.get("code")),
        msg=_text(document.get("msg")),
        status=_text(data.get("status")),
        message=_text(data.get("message")),
        platform_trade_no=_text(data.get("platFormTradeNo")),
        pay_amount=pay_amount,
        note=note,
        retry_after=retry_after,
        has_envelope=True,
    )


PAY_AMOUNT_IGNORED = "payAmount {value} is not an amount: ignored"


def _pay_amount(data: Mapping[str, Any]) -> tuple[str, str]:
    """data.payAmount held to an amount's form (a JSON number by its text), and a note
    when one was there and is not an amount: a person would act on a garbled figure."""
    value = data.get("payAmount")
    if value is None or value == "":
        return "", ""
    text = value if isinstance(value, str) else json.dumps(value)
    if isinstance(value, bool | dict | list) or not amount_or_empty(text):
        return "", PAY_AMOUNT_IGNORED.format(value=repr(text[:40]))
    return text, ""


class GatewayClient:
    """Signs and posts payout requests, status queries and the balance query over one aiohttp
    session."""

    def __init__(
        self, config: GatewayConfig, session: aiohttp.ClientSession, *, timeout: float
    ) -> None:
        self.config = config
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    @property
    def can_query(self) -> bool:
        return self.config.query_url is not None

    def payout_body(self, fields: Mapping[str, str]) -> dict[str, str]:
        body = {name: fields[name] for name in PAYOUT_FIELDS if fields.get(name)}
        body["amount"] = self.config.protocol.amount_text(int(fields["amount"]))
        return self._signed(body)

    def _signed(self, body: dict[str, str]) -> dict[str, str]:
        body["timestamp"] = str(time.time_ns() // 1_000_000)  # fresh for every attempt
        body["sign"] = sign(
            body,
            self.config.secret,
            skip_empty=self.config.protocol.sign_skip_empty,
            salt=self.config.protocol.sign_salt,
        )
        return body

    async def pay(self, fields: Mapping[str, str]) -> Answer:
        return (await self._post(self.config.payout_url, self.payout_body(fields)))[0]

    async def query(self, trade_no: str) -> Answer:
        assert self.config.query_url is not None
        return (await self._post(self.config.query_url, self._signed({"tradeNo": trade_no})))[0]

    async def balance(self) -> tuple[Answer, bytes]:
        """The balance query (``balance_url``, a body of timestamp and sign only): its answer
        and the body as received, from which ``gateway.balance`` reads the amounts (an Answer
        carries no amounts)."""
        assert self.config.balance_url is not None
        return await self._post(self.config.balance_url, self._signed({}))

    async def _post(self, url: str, body: dict[str, Any]) -> tuple[Answer, bytes]:
        """The answer, and the body as received (empty when none was read)."""
        headers = {"merchantNo": self.config.merchant_no}
        try:
            async with self.session.post(
                url, json=body, headers=headers, timeout=self.timeout
            ) as response:
                retry_after = _retry_after(response.headers.get("Retry-After"))
                raw = await response.read()
                answer = parse_envelope(response.status, raw, retry_after)
                if SANDBOX_HEADER in response.headers:
                    answer = dataclasses.replace(answer, sandbox=True)
                return answer, raw
        except TimeoutError:
            return Answer(failure=Failure.TIMEOUT, error="timeout"), b""
        except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError) as exc:
            tls = f"tls: {type(exc).__name__}: {_reason(exc)}"
            return Answer(failure=Failure.TLS, error=tls), b""
        except aiohttp.ClientConnectorError as exc:
            why = exc.os_error.strerror or type(exc).__name__
            return Answer(failure=Failure.CONNECT, error=f"connect: {why}"), b""
        except aiohttp.ClientPayloadError:
            return Answer(failure=Failure.UNREADABLE, error=UNREADABLE_BODY), b""
        except aiohttp.ClientError as exc:
            return Answer(failure=Failure.DROPPED, error=f"connection: {type(exc).__name__}"), b""
