"""``batchpay reconcile``: ask the status query about rows that are ``processing`` or
``unknown`` and record the answers. An ``unknown`` row becomes ``pending`` (safe to send
again) only on the query's definite "no such order".
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aiohttp

from .config import GatewayConfig, SendOptions
from .dispatch import RateLimiter, retry_delay, ssl_context
from .gateway import GatewayClient
from .journal import Journal
from .journal_rows import JournalRow, Update
from .outcomes import Answer, Outcome, Verdict, classify, is_systemic, placed_outcome

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

    def record(row: JournalRow, answer: Answer, verdict: Verdict, outcome: Outcome) -> None:
        assert row.trade_no is not None
        journal.record(
            Update(
                trade_no=row.trade_no, outcome=outcome, kind="query", verdict=verdict.value,
                http_status=answer.http_status, code=answer.code, msg=answer.msg or answer.error,
                status=answer.status, message=answer.message,
                platform_trade_no=answer.platform_trade_no, detail=answer.error,
                counts_as_attempt=False,
            )
        )  # fmt: skip

    async def settle(client: GatewayClient, row: JournalRow) -> None:
        assert row.trade_no is not None
        trade_no = row.trade_no
        for attempt in range(options.max_attempts):
            if stop.is_set():
                return
            await limiter.wait()
            result.requests += 1
            answer = await client.query(trade_no)
            verdict = classify(answer, config.protocol)
            if verdict is Verdict.PLACED:
                record(row, answer, verdict, placed_outcome(answer.status, config.protocol))
                return
            if verdict is Verdict.REFUSED and is_systemic(answer, config.protocol):
                result.stop_reason = f"the status query was refused: {answer.code} {answer.msg}"
                stop.set()
                return
            if verdict is Verdict.REFUSED and answer.code in config.protocol.not_found_codes:
                # No such order: an unknown row is safe to send again; a processing row keeps
                # its state (the gateway did answer it placed) and the answer is on record.
                keep: Outcome = Outcome.PENDING if row.outcome is Outcome.UNKNOWN else row.outcome
                if absent is not None:
                    keep = absent.get(trade_no, keep)
                record(row, answer, verdict, keep)
                return
            if verdict is Verdict.REFUSED:
                # Any other refusal says nothing about the order: the row keeps its state (an
                # unknown row stays unknown) and the answer is on record.
                record(row, answer, verdict, row.outcome)
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
