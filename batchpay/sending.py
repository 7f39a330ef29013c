"""Sending as a whole: signals (a first SIGINT or SIGTERM stops, a second leaves at once)
around the dispatcher, and the in-process sandbox for ``--sandbox``."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from .config import SANDBOX_MERCHANT_NO, GatewayConfig, Protocol, SendOptions
from .dispatch import Dispatcher, Progress
from .journal import Journal
from .journal_rows import JournalRow
from .sandbox import SandboxGateway, SandboxServer

SANDBOX_NOTIFY_URL = "http://127.0.0.1:9/notify"
# The in-process sandbox listens on a new port each run; its result files name it by this.
SANDBOX_ACCOUNT = f"{SANDBOX_MERCHANT_NO}@in-process-sandbox"


@contextlib.asynccontextmanager
async def sandbox_gateway(
    protocol: Protocol,
) -> AsyncIterator[tuple[GatewayConfig, SandboxGateway]]:
    """An in-process sandbox with its own merchant and a secret made for this run only."""
    secret = secrets.token_hex(16)
    gateway = SandboxGateway(SANDBOX_MERCHANT_NO, secret)
    server = SandboxServer(gateway)
    await server.start()
    try:
        yield (
            GatewayConfig(
                payout_url=server.payout_url,
                query_url=server.query_url,
                merchant_no=SANDBOX_MERCHANT_NO,
                secret=secret,
                notify_url=SANDBOX_NOTIFY_URL,
                protocol=protocol,
            ),
            gateway,
        )
    finally:
        await server.stop()


@dataclass
class SendResult:
    requests: int = 0
    stopped: bool = False
    stop_reason: str = ""
    abandoned: bool = False  # a second interrupt: requests in flight were cancelled


async def send(
    config: GatewayConfig,
    options: SendOptions,
    journal: Journal,
    rows: list[JournalRow],
    on_progress: Callable[[Progress], None] | None = None,
) -> SendResult:
    """Send the rows. A first SIGINT or SIGTERM starts nothing new and gives the requests in
    flight ``options.grace`` seconds; a second one (or the grace running out) cancels them."""
    dispatcher = Dispatcher(config, options, journal, on_progress=on_progress)
    loop = asyncio.get_running_loop()
    signals = 0

    def interrupted() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            dispatcher.request_stop("interrupted")
            loop.call_later(options.grace, dispatcher.abandon)
        else:
            dispatcher.abandon()

    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, interrupted)
            installed.append(signum)
    try:
        progress = await dispatcher.send(rows)
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
    return SendResult(
        requests=progress.requests,
        stopped=dispatcher.stop.is_set(),
        stop_reason=dispatcher.stop_reason,
        abandoned=dispatcher.abandoned and signals > 1,
    )


async def send_to(
    config: GatewayConfig | None,
    protocol: Protocol,
    options: SendOptions,
    journal: Journal,
    rows: list[JournalRow],
    on_progress: Callable[[Progress], None] | None = None,
) -> SendResult:
    if config is None:
        async with sandbox_gateway(protocol) as (sandbox_config, _):
            return await send(sandbox_config, options, journal, rows, on_progress)
    return await send(config, options, journal, rows, on_progress)
