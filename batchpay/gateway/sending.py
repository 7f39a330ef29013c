"""Sending as a whole: signals around the dispatcher (a first SIGINT or SIGTERM stops: nothing
more is sent; a second abandons what is in flight), to whichever ``Gateway`` the run names
(the in-process sandbox of ``--sandbox`` is started by the gateway value itself: this module
never imports the sandbox)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass

from ..config import Gateway, GatewayConfig, SendOptions
from ..journal.rows import JournalRow
from ..journal.store import Journal
from .dispatch import Dispatcher, Progress
from .policy import Request

__all__ = ["SendResult", "send", "send_to"]


@dataclass(frozen=True)
class StopNotice:
    """What a stop does, for the operator: told at the first signal (``abandoning`` False:
    the requests in flight get ``grace`` seconds), and when they are abandoned (a second
    signal, or the grace ran out). The library prints nothing; the CLI turns this into text."""

    payouts: int  # payout requests in flight (handed to the HTTP client, not yet answered)
    queries: int  # status queries in flight
    grace: float
    abandoning: bool = False
    grace_ran_out: bool = False


StopCallback = Callable[[StopNotice], None]


@dataclass
class SendResult:
    requests: int = 0
    stopped: bool = False
    stop_reason: str = ""
    abandoned: bool = False  # a second interrupt: requests in flight were cancelled
    # Every answer said it came from a sandbox (None: no answer said either way).
    sandbox: bool | None = None
    halted: bool = False  # a person stopped it (a hold or a cancel), not the gateway

    @property
    def systemic(self) -> bool:
        """Stopped by the gateway's refusals, not by a person: the same run would meet them
        again until the cause is fixed."""
        return self.stopped and self.stop_reason != "interrupted" and not self.halted


async def send(
    config: GatewayConfig,
    options: SendOptions,
    journal: Journal,
    rows: list[JournalRow],
    on_progress: Callable[[Progress], None] | None = None,
    on_stop: StopCallback | None = None,
    watch: Callable[[], str | None] | None = None,
) -> SendResult:
    """Send the rows. A first SIGINT or SIGTERM hands no further request to the HTTP client
    and gives the requests in flight ``options.grace`` seconds; a second one (or the grace
    running out) cancels them. ``on_stop`` is told each time."""
    dispatcher = Dispatcher(config, options, journal, on_progress=on_progress, watch=watch)
    loop = asyncio.get_running_loop()
    signals = 0
    grace_timer: asyncio.TimerHandle | None = None

    def tell(*, abandoning: bool, grace_ran_out: bool = False) -> None:
        if on_stop is not None:
            payouts, queries = (
                dispatcher.in_flight[Request.PAY],
                dispatcher.in_flight[Request.QUERY],
            )
            on_stop(StopNotice(payouts, queries, options.grace, abandoning, grace_ran_out))

    def grace_over() -> None:
        if dispatcher.in_flight.total():
            tell(abandoning=True, grace_ran_out=True)
        dispatcher.abandon()

    def interrupted() -> None:
        nonlocal signals, grace_timer
        signals += 1
        if signals == 1:
            dispatcher.request_stop("interrupted")
            tell(abandoning=False)
            grace_timer = loop.call_later(options.grace, grace_over)
        elif signals == 2:
            tell(abandoning=True)
            dispatcher.abandon()

    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, interrupted)
            installed.append(signum)
    try:
        progress = await dispatcher.send(rows)
    finally:
        if grace_timer is not None:
            grace_timer.cancel()
        for signum in installed:
            loop.remove_signal_handler(signum)
    return SendResult(
        requests=progress.requests,
        stopped=dispatcher.stop.is_set(),
        stop_reason=dispatcher.stop_reason,
        abandoned=dispatcher.abandoned and signals > 1,
        sandbox=(dispatcher.unmarked == 0) if dispatcher.marked + dispatcher.unmarked else None,
        halted=dispatcher.halted,
    )


async def send_to(
    gateway: Gateway,
    options: SendOptions,
    journal: Journal,
    rows: list[JournalRow],
    on_progress: Callable[[Progress], None] | None = None,
    on_stop: StopCallback | None = None,
    watch: Callable[[], str | None] | None = None,
) -> SendResult:
    """``send`` while the gateway can be sent to (an in-process one runs for this call)."""
    async with gateway.connect() as config:
        return await send(config, options, journal, rows, on_progress, on_stop, watch)
