"""Send the planned rows: concurrency, rate limit, retries, stop rules, and the safety rules of
the gateway contract's section 5, one row at a time per worker.

A row's path is decided by the send rules (``policy.next_step``): pay; on 429/503 wait and pay
again; on an unknown outcome ask the status query first (when configured), else re-send the
same tradeNo; a duplicate-tradeNo answer is never a failure. Rows are claimed in the journal
(committed) before they are sent, and every answer is recorded, so a crash at any moment leaves
each row either settled or ``unknown``.

Stopping: after ``request_stop`` (a signal, or a systemic refusal) no request is handed to the
HTTP client, whatever a row was waiting for (its turn under ``--rate``, a back-off, its claim, a
worker): those rows keep their state (``pending`` ones are released). Requests already handed
over finish; ``abandon`` cancels them, and their rows stay ``unknown`` (they may have left).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import ssl
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import aiohttp

from ..config import GatewayConfig, SendOptions
from ..journal.rows import JournalRow, Kind, Update
from ..journal.store import Journal
from ..outcomes import (
    Answer,
    Failure,
    Outcome,
    Verdict,
    envelope_judged,
    is_insufficient_balance,
    is_systemic,
)
from .client import GatewayClient, untrusted_first
from .policy import Action, Heard, Refusals, Request, RowState, Rules, next_step

log = logging.getLogger("batchpay.dispatch")

FLUSH_EVERY_ROWS = 256
FLUSH_EVERY_SECONDS = 0.25

SYSTEMIC_HINT = (
    "check BATCHPAY_MERCHANT_NO, {secret} and BATCHPAY_URL; running again as it is meets "
    "the same refusal: fix the setting first, then run again (the rows not sent are still "
    "pending)"
)
TLS_HINT = (
    "the gateway's certificate is not trusted; if your organisation uses its own CA, pass it "
    "with --ca-bundle (verification cannot be turned off); nothing was sent"
)
BALANCE_HINT = (
    "the account's balance is too low (BATCHPAY_INSUFFICIENT_BALANCE_CODES); top it up, then "
    "run again: the rows not sent are still pending"
)
UNTRUSTED_ROWS = (
    "; the row it answered is unknown (asked about before any re-send), the rows not sent "
    "are still pending"
)
REFUSALS_HINT = (
    "check the msg column (balance, account limits) before running again; the rows not sent "
    "are still pending"
)


def mask_account(account: str) -> str:
    """Only the last four digits of an account number appear in logs."""
    return "*" * max(0, len(account) - 4) + account[-4:]


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

    def reserve(self) -> float:
        """Take the next start; returns how many seconds to wait for it."""
        if not self.interval:
            return 0.0
        now = time.monotonic()
        start = max(now, self.next_at)
        self.next_at = start + self.interval
        return start - now

    async def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


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


def ssl_context(options: SendOptions) -> ssl.SSLContext | bool:
    """TLS verification is always on; a CA bundle only adds trusted certificates."""
    if options.ca_bundle is None:
        return True
    return ssl.create_default_context(cafile=str(options.ca_bundle))


class Dispatcher:
    def __init__(
        self,
        config: GatewayConfig,
        options: SendOptions,
        journal: Journal,
        *,
        rng: random.Random | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        watch: Callable[[], str | None] | None = None,
    ) -> None:
        self.config = config
        # Asked before each row is handed out: why a person (a hold, a cancel made by another
        # process) wants the run to stop, or None.
        self.watch = watch
        self.halted = False
        self.options = options
        self.journal = journal
        self.rng = rng or random.Random()
        self.limiter = RateLimiter(options.rate)
        self.on_progress = on_progress
        self.stop = asyncio.Event()
        self.stop_reason = ""
        self.abandoned = False
        # Answers that said they came from a sandbox (`batchpay sandbox`), and answers that
        # did not: the run is practice only when every answer said so.
        self.marked = self.unmarked = 0
        self._refusals = 0  # consecutive refusals
        self._envelope_read = False  # the run has read a gateway envelope (believed or not)
        # Requests handed to the HTTP client and not yet answered, by kind.
        self.in_flight: Counter[Request] = Counter()
        self._claimed: deque[JournalRow] = deque()  # committed in flight, not yet started
        self._workers: list[asyncio.Task[None]] = []

    def request_stop(self, reason: str) -> None:
        """Start no new row and no new attempt; requests in flight finish."""
        if not self.stop.is_set():
            self.stop_reason = reason
            self.stop.set()

    def abandon(self) -> None:
        """Cancel the requests in flight too (their rows stay unknown)."""
        self.request_stop("interrupted")
        self.abandoned = True
        for worker in self._workers:
            worker.cancel()

    async def send(self, rows: Sequence[JournalRow]) -> Progress:
        """Send every row; returns when all are settled, or stopped."""
        progress = Progress(total=len(rows), on_change=self.on_progress)
        queue = iter(rows)
        connector = aiohttp.TCPConnector(
            limit=self.options.concurrency, ssl=ssl_context(self.options)
        )
        async with aiohttp.ClientSession(connector=connector) as session:
            client = GatewayClient(self.config, session, timeout=self.options.timeout)
            flusher = asyncio.create_task(self._flush_periodically())
            try:
                self._workers = [
                    asyncio.create_task(self._worker(client, queue, progress))
                    for _ in range(max(1, min(self.options.concurrency, len(rows))))
                ]
                results = await asyncio.gather(*self._workers, return_exceptions=True)
                for result in results:
                    if isinstance(result, Exception):
                        raise result
            finally:
                flusher.cancel()
                # Claimed but never started: nothing was sent for them.
                self.journal.release(
                    [r.trade_no for r in self._claimed if r.trade_no and not r.in_flight]
                )
                self.journal.flush()
        return progress

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_SECONDS)
            if self.journal.unflushed:
                self.journal.flush()

    def _next_row(self, queue: Iterator[JournalRow]) -> JournalRow | None:
        """The next row to send. Rows are handed out only once their claim is committed (a
        crash after that leaves them unknown): when none is left claimed, the next group of
        rows is claimed, with the answers recorded so far, in one commit. The commit runs on
        the event loop: measured on this machine's disk, a writer thread made sending slower
        (the GIL hand-over on each SQLite call cost more than the fsync it overlapped)."""
        if self.stop.is_set():
            return None  # rows claimed and not handed out are released at the end
        halt = self.watch() if self.watch is not None else None
        if halt is not None:
            self.halted = True
            self.request_stop(halt)
            return None
        while not self._claimed:
            chunk = list(itertools.islice(queue, self.options.concurrency))
            if not chunk:
                return None
            claimed = self.journal.write(
                self.journal.take_pending(), [r.trade_no for r in chunk if r.trade_no]
            )
            self._claimed.extend(r for r in chunk if r.trade_no in claimed)
            if len(claimed) < len(chunk):
                # Not claimed: settled meanwhile (a callback), or the batch was held or
                # cancelled by another process after the check above: never sent.
                halt = self.watch() if self.watch is not None else None
                if halt is not None:
                    self.halted = True
                    self.request_stop(halt)
                    return None
        return self._claimed.popleft()

    async def _worker(
        self, client: GatewayClient, queue: Iterator[JournalRow], progress: Progress
    ) -> None:
        while not self.stop.is_set():
            row = self._next_row(queue)
            if row is None:
                return
            await self._send_row(client, row, progress)
            progress.row_done()
            if self.journal.unflushed >= FLUSH_EVERY_ROWS:
                self.journal.flush()

    async def _turn(self) -> bool:
        """Wait for the rate limit's next start; False when the run stopped meanwhile. This is
        the last check before a request is handed to the HTTP client: after a stop nothing
        more is sent, however long a row waited for its turn, its claim or a worker."""
        if self.stop.is_set():
            return False
        delay = self.limiter.reserve()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), delay)
        return not self.stop.is_set()

    async def _request(
        self, progress: Progress, client: GatewayClient, kind: Request, row: JournalRow
    ) -> Answer:
        """Hand one request to the HTTP client; counted in flight until its answer comes."""
        assert row.trade_no is not None
        progress.requests += 1
        self.in_flight[kind] += 1
        try:
            if kind is Request.QUERY:
                answer = await client.query(row.trade_no)
            else:
                answer = await client.pay(row.fields)
        finally:
            self.in_flight[kind] -= 1
        if not self._envelope_read and envelope_judged(answer):
            self._envelope_read = True
            if answer.failure is Failure.UNTRUSTED:
                # Before the send rules see it, so that this row settles as a stopped one.
                self.request_stop(untrusted_first(answer, self.config.protocol) + UNTRUSTED_ROWS)
        if answer.http_status is not None:
            if answer.sandbox:
                self.marked += 1
            else:
                self.unmarked += 1
        return answer

    async def _pause(self, retry: int, answer: Answer) -> None:
        """Back off before the next attempt; a stop cuts the wait short."""
        delay = retry_delay(retry, answer.retry_after, self.options, self.rng)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), delay)

    def _refused(self, answer: Answer) -> None:
        if is_systemic(answer, self.config.protocol):
            if answer.failure is Failure.TLS:
                self.request_stop(f"{answer.error}: {TLS_HINT}")
            elif is_insufficient_balance(answer, self.config.protocol):
                what = f"{answer.code} {answer.msg}".strip()
                self.request_stop(f"the gateway refused with {what}: {BALANCE_HINT}")
            elif answer.has_envelope:
                what = f"{answer.code} {answer.msg}".strip()
                hint = SYSTEMIC_HINT.format(secret=self.config.secret_source)
                self.request_stop(f"the gateway refused with {what}: {hint}")
            else:
                self.request_stop(
                    f"the gateway URL answered HTTP {answer.http_status}: "
                    + SYSTEMIC_HINT.format(secret=self.config.secret_source)
                )
            return
        self._refusals += 1
        limit = self.options.stop_after_refusals
        if limit and self._refusals >= limit:
            self.request_stop(
                f"{self._refusals} payouts in a row were refused (last: {answer.code} "
                f"{answer.msg}): {REFUSALS_HINT}"
            )

    async def _send_row(self, client: GatewayClient, row: JournalRow, progress: Progress) -> None:
        """One row's requests, as the send rules (``policy.next_step``) say; here only I/O."""
        assert row.trade_no is not None
        trade_no = row.trade_no
        protocol = self.config.protocol
        rules = Rules(self.options.max_attempts, client.can_query, protocol)
        state = RowState.start(
            row.outcome, ours=row.assigned or row.attempts > 0, can_query=client.can_query
        )
        step = next_step(state, None, rules, stopping=self.stop.is_set())
        answer = Answer()
        handed = False  # a request is with the HTTP client: it may have left
        try:
            while True:
                state = step.state
                if step.action is Action.SETTLE:
                    if step.note:
                        self.journal.settle(trade_no, step.outcome, step.note)
                    return
                if step.action is Action.WAIT:
                    await self._pause(state.waits - 1, answer)
                    step = next_step(state, None, rules, stopping=self.stop.is_set())
                    continue
                kind = Request.QUERY if step.action is Action.QUERY else Request.PAY
                if not await self._turn():
                    # Stopped while waiting for its turn: this request was never handed over.
                    step = next_step(state, None, rules, stopping=True)
                    continue
                handed = True
                answer = await self._request(progress, client, kind, row)
                handed = False
                heard = Heard.of(kind, answer, protocol)
                step = next_step(state, heard, rules, stopping=self.stop.is_set())
                if step.refusals is Refusals.COUNT:
                    self._refused(answer)
                elif step.refusals is Refusals.RESET:
                    self._refusals = 0
                self._record(row, answer, kind, heard.verdict, step.outcome, final=step.final)
        except asyncio.CancelledError:
            outcome = Outcome.UNKNOWN if handed else state.unsettled
            self.journal.settle(trade_no, outcome, "interrupted before an answer came")
            raise

    def _record(
        self, row: JournalRow, answer: Answer, kind: Request, verdict: Verdict,
        outcome: Outcome, *, final: bool,
    ) -> None:  # fmt: skip
        assert row.trade_no is not None
        if log.isEnabledFor(logging.INFO):  # the masking is not free: only when logging
            event = {
                "batch": row.batch_id, "tradeNo": row.trade_no,
                "account": mask_account(row.fields.get("accountNo", "")), "request": kind.value,
                "http": answer.http_status, "code": answer.code or answer.error or "-",
                "verdict": verdict.value, "outcome": outcome.value, "final": final,
            }  # fmt: skip
            log.info(
                "batch=%s tradeNo=%s account=%s %s http=%s code=%s verdict=%s outcome=%s%s",
                *(event[k] for k in ("batch", "tradeNo", "account", "request", "http",
                                     "code", "verdict", "outcome")),
                "" if final else " (continuing)", extra={"event": event},
            )  # fmt: skip
        self.journal.record(
            Update(
                trade_no=row.trade_no, outcome=outcome, kind=Kind(kind.value),
                verdict=verdict.value,
                http_status=answer.http_status, code=answer.code,
                msg=answer.msg or answer.error, status=answer.status, message=answer.message,
                platform_trade_no=answer.platform_trade_no, pay_amount=answer.pay_amount,
                detail=answer.error or answer.note,
                counts_as_attempt=kind is Request.PAY, settled=final,
            )
        )  # fmt: skip
