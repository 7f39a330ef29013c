"""The Vexora client: one attempt in, one typed Answer out.

This is the only module that knows aiohttp's exceptions; each is mapped here to an Answer whose
``failure`` says what kind of failure it was (matched by identity elsewhere) and whose ``error``
says it in words, so the rest of batchpay reasons about answers, never exceptions.

With ``BATCHPAY_VERIFY_ANSWER_SIGN`` on, an envelope whose ``sign`` does not verify, or whose
fields are out of shape (``shapes.answer_problem``), becomes a ``Failure.UNTRUSTED`` answer
here: none of what it says (code, status, platFormTradeNo) is passed on, only the document.
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from ..config import SANDBOX_HEADER, GatewayConfig, Protocol
from ..outcomes import Answer, Failure, amount_or_empty, envelope_decides
from ..signing import AnswerSign, answer_sign_verifies, field_text, sign
from .shapes import answer_problem, shown

PAYOUT_FIELDS = (
    "amount", "accountNo", "mobile", "email", "firstname", "lastname", "tradeNo", "notifyUrl",
    "remark",
)  # fmt: skip

# A failure's words ("tls: ...", "connect: ...", "timeout", "unreadable body") are the texts
# the journal's msg and detail columns have always held: old and new journals read alike, and
# nothing reads the kind back from them.
UNREADABLE_BODY = "unreadable body"
UNTRUSTED = "untrusted answer: "
UNTRUSTED_SIGN = UNTRUSTED + "signature does not verify"
UNTRUSTED_SHAPE = UNTRUSTED + "{problem}"
UNTRUSTED_FIRST = (
    "the first answer is not believed ({why}; unverified, it said {said}): "
    "BATCHPAY_VERIFY_ANSWER_SIGN={mode} is probably wrong for this gateway (config check "
    "--live finds which setting verifies), or something between batchpay and the gateway "
    "changes its answers"
)

# Numbers kept as their JSON text, as the callback receiver keeps them: a signature covers
# them as written (1.50 is not 1.5). One decoder made once: json.loads with these arguments
# builds a new one per call, which doubled the parse's cost (measured: 9 -> 16 us an answer).
_DECODER = json.JSONDecoder(parse_int=str, parse_float=str)


def _unreadable(http_status: int, retry_after: float | None) -> Answer:
    return Answer(http_status=http_status, failure=Failure.UNREADABLE, error=UNREADABLE_BODY,
                  retry_after=retry_after)  # fmt: skip


def _reason(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else ""


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
        # Numbers are kept as their text (as callbacks keep every value): a signature covers
        # the text, and payAmount 12e3 is refused as an amount, not read as 12000.0.
        document = _DECODER.decode(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return _unreadable(http_status, retry_after)
    if not isinstance(document, dict) or "code" not in document:
        return _unreadable(http_status, retry_after)
    data = document.get("data")
    data = data if isinstance(data, dict) else {}
    pay_amount, note = _pay_amount(data)
    return Answer(
        http_status=http_status,
        code=field_text(document.get("code")),
        msg=field_text(document.get("msg")),
        status=field_text(data.get("status")),
        message=field_text(data.get("message")),
        platform_trade_no=field_text(data.get("platFormTradeNo")),
        pay_amount=pay_amount,
        note=note,
        retry_after=retry_after,
        has_envelope=True,
        document=document,
    )


def untrusted_reason(
    document: Mapping[str, Any], trade_no: str, secret: str, protocol: Protocol
) -> str | None:
    """Why an answer about ``trade_no`` is not believed under the protocol's
    ``verify_answer_sign``, in the journal's words, or None (believed; always, when off)."""
    mode = protocol.verify_answer_sign
    if mode is AnswerSign.OFF:
        return None
    if not answer_sign_verifies(
        document, secret, mode=mode, salt=protocol.sign_salt, skip_empty=protocol.sign_skip_empty
    ):
        return UNTRUSTED_SIGN
    problem = answer_problem(document, trade_no)
    return None if problem is None else UNTRUSTED_SHAPE.format(problem=problem)


def untrusted_first(answer: Answer, protocol: Protocol) -> str:
    """The stop reason when the first envelope a run (or a reconcile) reads is not believed:
    one answer of a gateway that signs another way makes every answer unbelievable, so
    nothing more is sent."""
    document = answer.document or {}
    said = f"{field_text(document.get('code'))} {field_text(document.get('msg'))}".strip()
    return UNTRUSTED_FIRST.format(
        why=answer.error.removeprefix(UNTRUSTED), said=shown(said) if said else "nothing",
        mode=protocol.verify_answer_sign.value,
    )  # fmt: skip


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
        # Read once: the check costs one attribute test per answer when it is off.
        self.verifying = config.protocol.verify_answer_sign is not AnswerSign.OFF

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

    def _believed(self, answer: Answer, trade_no: str) -> Answer:
        """The answer, or an UNTRUSTED one in its place when it is not believed."""
        if answer.document is None or answer.http_status is None:
            return answer
        if not envelope_decides(answer.http_status):
            return answer  # 429, 503, 5xx: the HTTP status decides, whatever the body says
        why = untrusted_reason(answer.document, trade_no, self.config.secret, self.config.protocol)
        if why is None:
            return answer
        return Answer(
            http_status=answer.http_status, failure=Failure.UNTRUSTED, error=why,
            retry_after=answer.retry_after, sandbox=answer.sandbox, document=answer.document,
        )  # fmt: skip

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
                if self.verifying:
                    answer = self._believed(answer, body.get("tradeNo", ""))
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
