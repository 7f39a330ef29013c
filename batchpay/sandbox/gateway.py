"""A simulated Vexora gateway (aiohttp.web) that implements the gateway contract faithfully:
merchantNo header, signature check, field rules, dedup by tradeNo with the duplicate code,
status query, and ``0015`` (processing) on placement.

Faults can be switched on for trials and tests: each is a kind and a probability, applied to a
tradeNo's first request (or to every request with ``every_request``). Payout requests and status
queries have faults of their own (``rates`` and ``query_rates``, the same kinds): a query
changes nothing, so on a query every kind simply answers so.

With ``answer_sign`` (data or envelope) every answer carries a ``sign`` over those fields
(signing.py's definition, with the gateway's salt); the fault ``bad_answer`` answers a placed
order (or a query) with a ``sign`` that verifies under no setting.
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from ..config import SANDBOX_HEADER
from ..signing import AnswerSign, Salt, sign, sign_answer, verify
from .balance import BALANCE_PATH, Ledger

PAYOUT_PATH = "/v1/paypro/payOut"
QUERY_PATH = "/v1/paypro/queryPayOutResult"

OK = "0000"
PROCESSING = "0015"

# Faults that answer without placing the order, and faults that place it and then fail to
# answer properly (the client cannot know the order exists).
FAULTS_BEFORE = ("429", "503")
FAULTS_AFTER = ("hang", "reset", "garbage", "500")
# bad_sign: the signature-error code (systemic); refuse: a parameter-error refusal (1004),
# which on a status query is neither "found" nor "not found"; bad_answer: the right answer
# (after placing the order) under a sign nobody made.
FAULT_KINDS = FAULTS_BEFORE + FAULTS_AFTER + ("bad_sign", "refuse", "bad_answer")

RULES = {
    "amount": r"[0-9]+(?:\.[0-9]{2})?",
    "accountNo": r"[0-9]+",
    "mobile": r"0[0-9]{9}",
    "email": r"[^@\s]+@[^@\s]+\.[^@\s]+",
    "firstname": r".*\S.*",
    "lastname": r".*\S.*",
    "tradeNo": r"\S+",
    "notifyUrl": r"https?://\S+",
    "timestamp": r"[0-9]{10,16}",
}


@dataclass
class Faults:
    rates: dict[str, float] = field(default_factory=dict)  # kind -> probability, payouts
    query_rates: dict[str, float] = field(default_factory=dict)  # the same, status queries
    every_request: bool = False
    latency: float = 0.0  # seconds added to every answer
    jitter: float = 0.0  # up to this many seconds more, at random
    hang_seconds: float = 3600.0
    retry_after: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        unknown = (set(self.rates) | set(self.query_rates)) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kind(s): {', '.join(sorted(unknown))}")
        self.rng = random.Random(self.seed)

    def pick(self, first_request: bool, *, query: bool = False) -> str | None:
        if not (first_request or self.every_request):
            return None
        for kind, rate in (self.query_rates if query else self.rates).items():
            if rate > 0 and self.rng.random() < rate:
                return kind
        return None


@dataclass
class Settlement:
    """How placed orders end: after ``delay`` seconds each becomes paid (``0000``) or, for a
    ``fail_rate`` share, failed (``FAILED``), or for a ``partial_rate`` share, paid in part
    (``PARTIAL``, about half the amount as ``payAmount``); with ``notify``, the final status
    is posted to the order's notifyUrl ``repeats`` times, and with ``out_of_order`` a stale
    processing callback follows it."""

    delay: float = 0.0
    fail_rate: float = 0.0
    partial_rate: float = 0.0
    notify: bool = True
    repeats: int = 1
    out_of_order: bool = False
    seed: int | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


FAILED = "0005"
PARTIAL = "0001"  # the family's "partial payment"


MESSAGES = {OK: "Success", PROCESSING: "Processing", PARTIAL: "Partial payment"}


@dataclass
class Order:
    trade_no: str
    platform_trade_no: str
    amount: str
    fields: dict[str, str]
    status: str = PROCESSING
    pay_amount: str = "0"  # what the query answers as paid (payAmount)
    created_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Codes:
    """The outer codes this gateway answers with: the family's by default; another gateway of
    the family may use others (``batchpay sandbox --code signature=1001``), which is what
    batchpay's settings and ``config check`` must cope with."""

    merchant: str = "1001"  # unknown merchant
    duplicate: str = "1002"  # duplicate tradeNo
    signature: str = "1003"  # signature error
    param: str = "1004"  # parameter error
    not_found: str = "1005"  # (status query) no such order
    balance: str = "1006"  # insufficient balance (unknown for the family: a guess)


class SandboxGateway:
    def __init__(
        self,
        merchant_no: str,
        secret: str,
        *,
        faults: Faults | None = None,
        mobile_pattern: str = RULES["mobile"],
        settlement: Settlement | None = None,
        announce: bool = False,
        salt: Salt = Salt.SUFFIX,
        codes: Codes | None = None,
        answer_sign: AnswerSign = AnswerSign.OFF,
        balance: Decimal | None = None,
    ) -> None:
        # `batchpay sandbox` says what it is in every answer (SANDBOX_HEADER), so a run against
        # it is marked as practice; tests that play a real gateway leave it out.
        self.announce = announce
        self.merchant_no = merchant_no
        self.settlement = settlement  # None: orders stay processing
        self.callbacks_sent: list[tuple[str, str, int | None]] = []  # tradeNo, status, HTTP
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: ClientSession | None = None
        self._secret = secret
        self.salt = salt  # where this gateway wants the secret in the signed string
        self.codes = codes or Codes()
        self.answer_sign = answer_sign  # what the sign of its answers covers
        self.faults = faults or Faults()
        self.ledger = Ledger(balance)  # no balance: no limit
        self.balance_requests = 0  # balance queries received
        self.rules = {**RULES, "mobile": mobile_pattern}
        self.orders: dict[str, Order] = {}
        self.payout_requests: list[str] = []  # tradeNo of every payout request, in order
        self._seen: set[str] = set()
        self._asked: set[str] = set()  # tradeNos a status query has asked about
        self.query_requests: list[str] = []  # tradeNo of every status query, in order
        self.arrived = 0  # payout requests received, counted before any latency
        self._lock = threading.Lock()

    # -- the app ----------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_post(PAYOUT_PATH, self.handle_payout)
        app.router.add_post(QUERY_PATH, self.handle_query)
        app.router.add_post(BALANCE_PATH, self.handle_balance)
        if self.announce:

            async def announce(request: web.Request, response: web.StreamResponse) -> None:
                response.headers[SANDBOX_HEADER] = "simulated gateway: no real payment"

            app.on_response_prepare.append(announce)
        return app

    def _envelope(
        self, code: str, msg: str, data: Mapping[str, Any] | None = None, *, untrue: bool = False
    ) -> web.Response:
        body: dict[str, Any] = {
            "msg": msg,
            "code": code,
            "timestamp": int(time.time() * 1000),
            "success": code == OK,
            "data": dict(data) if data else None,
        }
        if untrue:
            body["sign"] = "0" * 32  # the signature of nothing this gateway says
        elif self.answer_sign is not AnswerSign.OFF:
            body["sign"] = sign_answer(
                body, self._secret, mode=self.answer_sign, salt=self.salt, skip_empty=True
            )
        return web.json_response(body)

    async def _read(
        self, request: web.Request
    ) -> tuple[dict[str, Any] | None, web.Response | None]:
        if request.headers.get("merchantNo") != self.merchant_no:
            return None, self._envelope(self.codes.merchant, "unknown merchant")
        try:
            body = await request.json()
        except ValueError:
            return None, self._envelope(self.codes.param, "body is not JSON")
        except ConnectionResetError:
            # The client went away before its body arrived (an abandoned run): nothing to
            # process and no one to answer, and nothing for the operator's terminal.
            raise web.HTTPBadRequest(text="connection lost") from None
        if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
            return None, self._envelope(self.codes.param, "every value must be a string")
        if not verify(body, self._secret, salt=self.salt):
            return None, self._envelope(self.codes.signature, "signature error")
        return body, None

    async def _delay(self) -> None:
        wait = self.faults.latency + (
            random.uniform(0, self.faults.jitter) if self.faults.jitter else 0
        )
        if wait:
            await asyncio.sleep(wait)

    async def handle_payout(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.arrived += 1
        await self._delay()
        body, refusal = await self._read(request)
        trade_no = str(body.get("tradeNo", "")) if body else ""
        with self._lock:
            first = trade_no not in self._seen
            self._seen.add(trade_no)
            self.payout_requests.append(trade_no)
            fault = self.faults.pick(first)
        if fault in FAULTS_BEFORE or fault in ("bad_sign", "refuse"):
            return await self._fault(request, fault)
        if refusal is not None:
            return refusal
        assert body is not None
        for name, pattern in self.rules.items():
            if not re.fullmatch(pattern, body.get(name, "")):
                return self._envelope(self.codes.param, f"parameter error: {name}")
        if int(body["amount"].split(".")[0]) < 100:
            return self._envelope(self.codes.param, "parameter error: amount below minimum 100")
        with self._lock:
            if trade_no in self.orders:
                return self._envelope(self.codes.duplicate, "duplicate tradeNo")
            if not self.ledger.take(body["amount"]):
                return self._envelope(self.codes.balance, "insufficient balance")
            # Only what the sandbox needs later: callbacks and the tests' checks.
            kept: dict[str, str] = {
                k: body[k] for k in ("accountNo", "notifyUrl", "remark") if k in body
            }
            order = Order(trade_no, "sbx" + secrets.token_hex(8), body["amount"], kept)
            self.orders[trade_no] = order
        if self.settlement is not None:
            task = asyncio.create_task(self._settle(order, self.settlement))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if fault in FAULTS_AFTER:
            return await self._fault(request, fault)
        data = self._order_data(order, body.get("remark", ""))
        return self._envelope(OK, "success", data, untrue=fault == "bad_answer")

    async def _settle(self, order: Order, plan: Settlement) -> None:
        await asyncio.sleep(plan.delay)
        draw = plan.rng.random()
        if draw < plan.fail_rate:
            order.status = FAILED
        elif draw < plan.fail_rate + plan.partial_rate:
            order.pay_amount = str(int(order.amount.split(".")[0]) // 2)
            order.status = PARTIAL
        else:
            order.pay_amount, order.status = order.amount, OK
        self.ledger.settle(order.amount, paid=order.status != FAILED)
        url = order.fields.get("notifyUrl", "")
        if not plan.notify or not url:
            return
        for _ in range(max(1, plan.repeats)):
            await self._notify(url, order, order.status)
        if plan.out_of_order:
            await self._notify(url, order, PROCESSING)

    async def _notify(self, url: str, order: Order, status: str) -> None:
        """Post a signed callback; amount and timestamp go as JSON numbers, as some gateways
        send them, and the signature covers their text."""
        amount = order.amount.split(".")[0]
        timestamp = int(time.time() * 1000)
        fields: dict[str, object] = {
            "status": status,
            "message": MESSAGES.get(status, "Failed"),
            "platFormTradeNo": order.platform_trade_no,
            "tradeNo": order.trade_no,
            "amount": int(amount),
            "successTime": time.strftime("%Y-%m-%d %H:%M:%S") if status == OK else "",
            "timestamp": timestamp,
        }
        if status == PARTIAL:
            fields["payAmount"] = order.pay_amount
        fields["sign"] = sign({k: str(v) for k, v in fields.items()}, self._secret, salt=self.salt)
        if self._session is None:
            self._session = ClientSession()
        answer: int | None = None
        for attempt in range(3):  # the real gateway retries 8 times in 24 hours
            try:
                async with self._session.post(
                    url, json=fields, timeout=ClientTimeout(total=5)
                ) as r:
                    answer = r.status
                    if r.status == 200 and (await r.text()).strip() == "OK":
                        break
            except (ClientError, TimeoutError):
                answer = None
            await asyncio.sleep(0.05 * (attempt + 1))
        with self._lock:
            self.callbacks_sent.append((order.trade_no, status, answer))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _fault(self, request: web.Request, fault: str) -> web.StreamResponse:
        """The answer a fault gives (after placing the order, for a payout's FAULTS_AFTER)."""
        if fault == "bad_sign":
            return self._envelope(self.codes.signature, "signature error")
        if fault == "refuse":
            return self._envelope(self.codes.param, "parameter error: try later")
        if fault in FAULTS_BEFORE:
            headers = {"Retry-After": f"{self.faults.retry_after:g}"}
            return web.Response(status=int(fault), text="try again later", headers=headers)
        if fault == "hang":
            await asyncio.sleep(self.faults.hang_seconds)
        elif fault == "reset" and request.transport is not None:
            request.transport.abort()
        elif fault == "garbage":
            return web.Response(status=200, text="<html>gateway error", content_type="text/html")
        return web.Response(status=500, text="internal error")

    @staticmethod
    def _order_data(order: Order, remark: str) -> dict[str, str]:
        return {
            "tradeNo": order.trade_no,
            "platFormTradeNo": order.platform_trade_no,
            "status": order.status,
            "message": "Processing" if order.status == PROCESSING else "",
            "remark": remark,
        }

    async def handle_balance(self, request: web.Request) -> web.StreamResponse:
        await self._delay()
        with self._lock:
            self.balance_requests += 1
        _, refusal = await self._read(request)
        return refusal or self._envelope(OK, "success", self.ledger.data())

    async def handle_query(self, request: web.Request) -> web.StreamResponse:
        await self._delay()
        body, refusal = await self._read(request)
        trade_no = str(body.get("tradeNo", "")) if body else ""
        with self._lock:
            first = trade_no not in self._asked
            self._asked.add(trade_no)
            fault = self.faults.pick(first, query=True)
            self.query_requests.append(trade_no)
            order = self.orders.get(trade_no)
        untrue = fault == "bad_answer"
        if fault is not None and not untrue:
            return await self._fault(request, fault)
        if refusal is not None:
            return refusal
        if order is None:
            return self._envelope(self.codes.not_found, "order not found", untrue=untrue)
        data = {
            "tradeNo": order.trade_no,
            "platFormTradeNo": order.platform_trade_no,
            "orderAmount": order.amount,
            "payAmount": order.pay_amount,
            "status": order.status,
            "message": "Processing" if order.status == PROCESSING else "",
            "successTime": "",
        }
        return self._envelope(OK, "success", data, untrue=untrue)
