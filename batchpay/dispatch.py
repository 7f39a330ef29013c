"""Send the planned rows: concurrency, rate limit, retries, and the safety rules of the
gateway contract's section 5, one row at a time per worker.

A row's path: pay; on 429/503 wait and pay again; on an unknown outcome ask the status query
first (when configured), else re-send the same tradeNo; a duplicate-tradeNo answer is never a
failure. Every answer is recorded in the journal.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field

import aiohttp

from .config import GatewayConfig, SendOptions
from .gateway import GatewayClient
from .journal import Journal, JournalRow, Update
from .outcomes import Answer, Outcome, Verdict, classify, placed_outcome

FLUSH_EVERY_ROWS = 256
FLUSH_EVERY_SECONDS = 0.25


def retry_delay(
    retry: int, retry_after: float | None, options: SendOptions, rng: random.Random
) -> float:
    """Exponential backoff with jitter, never shorter than the gateway's Retry-After."""
    ceiling = min(options.backoff_cap, options.backoff_base * 2**retry)
    delay = rng.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, options.backoff_cap * 4))
    return delay


class RateLimiter:
    """At most ``rate`` starts per second, spaced evenly."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next_at = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        start = max(now, self.next_at)
        self.next_at = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


@dataclass
class Progress:
    total: int
    done: int = 0
    requests: int = 0
    on_change: Callable[[Progress], None] | None = field(default=None, repr=False)

    def row_done(self) -> None:
        self.done += 1
        if self.on_change:
            self.on_change(self)


class Dispatcher:
    def __init__(
        self,
        config: GatewayConfig,
        options: SendOptions,
        journal: Journal,
        *,
        rng: random.Random | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.config = config
        self.options = options
        self.journal = journal
        self.rng = rng or random.Random()
        self.limiter = RateLimiter(options.rate)
        self.stop = asyncio.Event()
        self.on_progress = on_progress

    async def send(self, rows: Sequence[JournalRow]) -> Progress:
        """Send every row; returns when all are settled or ``stop`` was set."""
        progress = Progress(total=len(rows), on_change=self.on_progress)
        queue = iter(rows)
        connector = aiohttp.TCPConnector(limit=self.options.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            client = GatewayClient(self.config, session, timeout=self.options.timeout)
            flusher = asyncio.create_task(self._flush_periodically())
            try:
                workers = [
                    asyncio.create_task(self._worker(client, queue, progress))
                    for _ in range(max(1, min(self.options.concurrency, len(rows))))
                ]
                await asyncio.gather(*workers)
            finally:
                flusher.cancel()
                self.journal.flush()
        return progress

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_SECONDS)
            self.journal.flush()

    async def _worker(
        self, client: GatewayClient, queue: Iterator[JournalRow], progress: Progress
    ) -> None:
        for row in queue:
            if self.stop.is_set():
                return
            await self._send_row(client, row, progress)
            progress.row_done()
            if self.journal.unflushed >= FLUSH_EVERY_ROWS:
                self.journal.flush()

    async def _call(self, progress: Progress, request: Callable[[], Awaitable[Answer]]) -> Answer:
        await self.limiter.wait()
        progress.requests += 1
        return await request()

    async def _send_row(self, client: GatewayClient, row: JournalRow, progress: Progress) -> None:
        assert row.trade_no is not None
        trade_no = row.trade_no
        protocol = self.config.protocol
        # The order may exist when an earlier run left the row unknown.
        maybe_placed = row.outcome is Outcome.UNKNOWN
        need_query = maybe_placed and client.can_query
        pays = queries = retries = 0

        def record(answer: Answer, kind: str, verdict: Verdict, outcome: Outcome) -> None:
            self.journal.record(
                Update(
                    trade_no=trade_no, outcome=outcome, kind=kind, verdict=verdict.value,
                    http_status=answer.http_status, code=answer.code, msg=answer.msg or
                    answer.error, status=answer.status, message=answer.message,
                    platform_trade_no=answer.platform_trade_no, detail=answer.error,
                    counts_as_attempt=kind == "pay",
                )
            )  # fmt: skip

        while True:
            if need_query:
                if queries >= self.options.max_attempts:
                    return  # the last query's answer was recorded as unknown
                answer = await self._call(progress, lambda: client.query(trade_no))
                queries += 1
                verdict = classify(answer, protocol)
                if verdict is Verdict.PLACED:
                    record(answer, "query", verdict, placed_outcome(answer.status, protocol))
                    return
                if verdict is Verdict.REFUSED:
                    # The gateway has no such order: sending the same tradeNo is safe.
                    record(answer, "query", verdict, Outcome.PENDING)
                    need_query = maybe_placed = False
                    continue
                record(answer, "query", verdict, Outcome.UNKNOWN)
                await asyncio.sleep(
                    retry_delay(retries, answer.retry_after, self.options, self.rng)
                )
                retries += 1
                continue

            if pays >= self.options.max_attempts:
                return  # the last answer was recorded: pending (never placed) or unknown
            answer = await self._call(progress, lambda: client.pay(row.fields))
            pays += 1
            verdict = classify(answer, protocol)
            if verdict is Verdict.PLACED:
                record(answer, "pay", verdict, placed_outcome(answer.status, protocol))
                return
            if verdict is Verdict.DUPLICATE:
                if client.can_query:
                    record(answer, "pay", verdict, Outcome.UNKNOWN)
                    need_query = maybe_placed = True
                    continue
                # Without a query: batchpay made this tradeNo up, or sent it before, so the
                # order the gateway holds is this row's. A tradeNo taken from the file and
                # never sent may be another order's: that stays unknown.
                ours = row.assigned or row.attempts > 0 or pays > 1 or maybe_placed
                record(answer, "pay", verdict, Outcome.PROCESSING if ours else Outcome.UNKNOWN)
                return
            if verdict is Verdict.REFUSED:
                # A refusal after an unknown outcome proves nothing: the first may be placed.
                record(
                    answer, "pay", verdict, Outcome.UNKNOWN if maybe_placed else Outcome.REJECTED
                )
                return
            if verdict is Verdict.UNKNOWN:
                maybe_placed = True
                need_query = client.can_query
            record(answer, "pay", verdict, Outcome.UNKNOWN if maybe_placed else Outcome.PENDING)
            if pays >= self.options.max_attempts:
                return
            await asyncio.sleep(retry_delay(retries, answer.retry_after, self.options, self.rng))
            retries += 1
