"""``batchpay reconcile``: ask the status query about rows that are ``processing`` or
``unknown`` and record the answers. An ``unknown`` row becomes ``pending`` (safe to send
again) only on the query's definite "no such order" (``Protocol.not_found_codes``); any other
refusal leaves it ``unknown``, and so does an answer that is not believed (``Failure.UNTRUSTED``,
with ``BATCHPAY_VERIFY_ANSWER_SIGN`` on); when the first answer is one, the sweep stops (the
setting is probably wrong). The answers are read by the send rules' own ``query_finding``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aiohttp

from ..config import GatewayConfig, SendOptions
from ..journal.rows import JournalRow, Kind, Update
from ..journal.store import Journal
from ..outcomes import Answer, Failure, Outcome, Verdict, envelope_judged
from .client import GatewayClient, untrusted_first
from .dispatch import RateLimiter, retry_delay, ssl_context
from .policy import Finding, Heard, Request, query_finding, reconciled

NEEDS_RECONCILE = frozenset({Outcome.PROCESSING, Outcome.UNKNOWN})


@dataclass
class ReconcileResult:
    queried: int = 0
    requests: int = 0
    stop_reason: str = ""


async def reconcile(
    config: GatewayConfig,
    options: SendOptions,
    journal: Journal,
    rows: Sequence[JournalRow],
    *,
    absent: Mapping[str, Outcome] | None = None,
) -> ReconcileResult:
    """Ask about each row and record the answers. ``absent``: by tradeNo, the outcome a row
    takes when the gateway holds no such order (default: an unknown row becomes pending, any
    other keeps its state). Rows whose queries get no definite answer are left as they are."""
    result = ReconcileResult()
    limiter = RateLimiter(options.rate)
    rng = random.Random()
    stop = asyncio.Event()
    queue = iter(rows)
    connector = aiohttp.TCPConnector(limit=options.concurrency, ssl=ssl_context(options))
    envelope_read = False  # an envelope has been read (believed or not)

    def record(row: JournalRow, answer: Answer, verdict: Verdict, outcome: Outcome) -> None:
        assert row.trade_no is not None
        journal.record(
            Update(
                trade_no=row.trade_no, outcome=outcome, kind=Kind.QUERY, verdict=verdict.value,
                http_status=answer.http_status, code=answer.code, msg=answer.msg or answer.error,
                status=answer.status, message=answer.message,
                platform_trade_no=answer.platform_trade_no, pay_amount=answer.pay_amount,
                detail=answer.error or answer.note, counts_as_attempt=False,
            )
        )  # fmt: skip

    async def settle(client: GatewayClient, row: JournalRow) -> None:
        assert row.trade_no is not None
        trade_no = row.trade_no
        for attempt in range(options.max_attempts):
            if stop.is_set():
                return
            await limiter.wait()
            if stop.is_set():
                return
            result.requests += 1
            answer = await client.query(trade_no)
            nonlocal envelope_read
            if not envelope_read and envelope_judged(answer):
                envelope_read = True
                if answer.failure is Failure.UNTRUSTED:
                    result.stop_reason = untrusted_first(answer, config.protocol)
                    stop.set()
                    return
            heard = Heard.of(Request.QUERY, answer, config.protocol)
            if heard.untrusted:
                return  # no definite answer, and asking again is answered the same way
            finding = query_finding(heard)
            if finding is Finding.SYSTEMIC:
                result.stop_reason = f"the status query was refused: {answer.code} {answer.msg}"
                stop.set()
                return
            if finding is not Finding.NO_ANSWER:
                outcome = reconciled(row.outcome, finding, answer.status, config.protocol)
                if finding is Finding.ABSENT and absent is not None:
                    outcome = absent.get(trade_no, outcome)
                record(row, answer, heard.verdict, outcome)
                return
            await asyncio.sleep(retry_delay(attempt, answer.retry_after, options, rng))

    async def worker(client: GatewayClient) -> None:
        for row in queue:
            if stop.is_set():
                return
            await settle(client, row)
            result.queried += 1
            if journal.unflushed >= 256:
                journal.flush()

    async with aiohttp.ClientSession(connector=connector) as session:
        client = GatewayClient(config, session, timeout=options.timeout)
        try:
            await asyncio.gather(
                *(worker(client) for _ in range(max(1, min(options.concurrency, len(rows)))))
            )
        finally:
            journal.flush()
    return result
