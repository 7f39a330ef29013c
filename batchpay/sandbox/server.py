"""The simulated gateway served: on a loopback port in the current event loop (SandboxServer),
from a thread of its own (serve_in_thread, for tests and the CLI), or inside a run's own event
loop (InProcessSandbox, ``run --sandbox``)."""

from __future__ import annotations

import asyncio
import secrets
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

from aiohttp import web

from ..config import (
    SANDBOX_MERCHANT_NO,
    SANDBOX_NOTIFY_URL,
    GatewayConfig,
    Protocol,
    in_process_account,
)
from .balance import BALANCE_PATH
from .gateway import PAYOUT_PATH, QUERY_PATH, SandboxGateway


class SandboxServer:
    """Runs a SandboxGateway on 127.0.0.1 and a free port, in the current event loop."""

    def __init__(
        self,
        gateway: SandboxGateway,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.gateway = gateway
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.gateway.app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def payout_url(self) -> str:
        return self.base_url + PAYOUT_PATH

    @property
    def query_url(self) -> str:
        return self.base_url + QUERY_PATH

    @property
    def balance_url(self) -> str:
        return self.base_url + BALANCE_PATH


@dataclass(frozen=True)
class InProcessSandbox:
    """``run --sandbox``: a simulated gateway started in the run's own event loop for its
    sending, with its own merchant and a secret made for this run only (a config.Gateway).
    Make one per run: its account is another for each, so practice runs never hold one
    another back, and no later run can mistake its orders for any gateway's."""

    protocol: Protocol = field(default_factory=Protocol)
    secret: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)
    account: str = field(default_factory=in_process_account)
    merchant_no: str = SANDBOX_MERCHANT_NO
    notify_url: str = SANDBOX_NOTIFY_URL

    @property
    def in_process(self) -> bool:
        return True

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[GatewayConfig]:
        # It plays the gateway the settings describe: the salt they sign with, the answers'
        # sign they verify.
        gateway = SandboxGateway(
            self.merchant_no, self.secret, salt=self.protocol.sign_salt,
            answer_sign=self.protocol.verify_answer_sign,
        )  # fmt: skip
        server = SandboxServer(gateway)
        await server.start()
        try:
            yield GatewayConfig(
                payout_url=server.payout_url, query_url=server.query_url,
                merchant_no=self.merchant_no, secret=self.secret, notify_url=self.notify_url,
                protocol=self.protocol,
            )  # fmt: skip
        finally:
            await server.stop()


async def _turn_then_stop(server: SandboxServer) -> None:
    # A connection the loop has just accepted becomes a transport on the loop's next turn;
    # closing the listening server before that turn leaves its socket open, unowned (Python
    # 3.11's asyncio: the new transport cannot attach to a closed server). One turn first.
    await asyncio.sleep(0)
    await server.stop()


@contextmanager
def serve_in_thread(
    gateway: SandboxGateway, ssl_context: ssl.SSLContext | None = None
) -> Iterator[SandboxServer]:
    """The sandbox on a loopback port, served from a thread of its own (for tests and CLI)."""
    server = SandboxServer(gateway, ssl_context=ssl_context)
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        started.set()
        loop.run_forever()
        # Cancel what is still open (a hanging handler) before the loop closes.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()

    thread = threading.Thread(target=run, name="batchpay-sandbox", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the sandbox gateway did not start")
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(_turn_then_stop(server), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
