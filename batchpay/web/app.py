"""The console's application: its settings, the security headers and sessions every answer
goes through, and the helpers the pages share (the signed-in user, the CSRF check, journal work
in a worker thread)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import aiohttp_jinja2
import jinja2
from aiohttp import web

from ..config import Gateway, Protocol
from ..errors import BatchpayError
from ..gateway.callbacks import JOURNAL, MAX_BODY, receiver
from ..journal.store import Journal
from ..team.users import User, find_user
from .sends import Senders, SendSetup
from .sessions import COOKIE, IDLE, Session, Sessions, Throttle
from .uploads import UploadRecords, uploads_dir

T = TypeVar("T")
log = logging.getLogger("batchpay.web")

# Every page: no script or style but the console's own files, no framing, no form posted
# elsewhere, no referrer leaking batch ids.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass
class Console:
    """What the console's routes share."""

    journal: Path
    env: Mapping[str, str]
    gateway: Gateway
    secret: str  # verifies the gateway's callbacks on /notify; never shown
    protocol: Protocol
    mobile_pattern: str
    secure_cookie: bool = False  # the public URL is https
    idle: float = IDLE
    sessions: Sessions = field(init=False)
    throttle: Throttle = field(default_factory=Throttle)
    uploads: UploadRecords = field(default_factory=UploadRecords)
    senders: Senders = field(init=False)
    folder: Path = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = Sessions(self.idle)
        self.folder = uploads_dir(self.journal)
        self.senders = Senders(SendSetup(self.journal, self.gateway, self.env,
                                         self.mobile_pattern))  # fmt: skip

    async def call(self, work: Callable[[Journal], T]) -> T:
        """``work`` on a journal connection of its own, in a worker thread: SQLite and
        Argon2id block, and a Journal is not shared between threads."""

        def run() -> T:
            with Journal(self.journal) as journal:
                return work(journal)

        return await asyncio.to_thread(run)


CONSOLE = web.AppKey("console", Console)
SESSION: web.RequestKey[Session | None] = web.RequestKey("batchpay.session")


def console_of(request: web.Request) -> Console:
    return request.app[CONSOLE]


def session_of(request: web.Request) -> Session | None:
    return request.get(SESSION)


def client_address(request: web.Request) -> str:
    """The client's address: behind the reverse proxy on loopback, the one it forwarded
    (the last X-Forwarded-For entry, which the proxy itself appended)."""
    remote = request.remote or "unknown"
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and remote in ("127.0.0.1", "::1"):
        return forwarded.split(",")[-1].strip()[:64] or remote
    return remote


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(SECURITY_HEADERS)
        raise
    except BatchpayError as exc:  # the journal or a file failed: one line, never a traceback
        log.warning("%s %s: %s", request.method, request.path, exc)
        response = web.Response(status=500, text=f"batchpay: {exc}")
    response.headers.update(SECURITY_HEADERS)
    return response


@web.middleware
async def sessions(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    request[SESSION] = console_of(request).sessions.get(request.cookies.get(COOKIE))
    return await handler(request)


def set_session_cookie(response: web.StreamResponse, console: Console, session: Session) -> None:
    response.set_cookie(COOKIE, session.id, httponly=True, samesite="Strict",
                        secure=console.secure_cookie, path="/")  # fmt: skip


async def signed_in(request: web.Request) -> tuple[Session, User]:
    """The session and its user as the journal has them now (a user disabled meanwhile is
    signed out); without one a page answers 303 to /login and the API 401."""
    console, session = console_of(request), session_of(request)
    user = None
    if session is not None and session.user is not None:
        name = session.user
        user = await console.call(lambda journal: find_user(journal, name))
        if user is None or user.disabled:
            console.sessions.end_user(name)
            user = None
    if session is None or user is None:
        if is_api(request):
            raise web.HTTPUnauthorized(text='{"error": "sign in first"}',
                                       content_type="application/json")  # fmt: skip
        raise web.HTTPSeeOther("/login")
    return session, user


def check_csrf(session: Session, given: str | None) -> None:
    if not session.csrf_ok(given):
        raise web.HTTPForbidden(text="the form's csrf_token is missing or wrong: reload the page")


async def form_of(request: web.Request, session: Session) -> Mapping[str, str]:
    """A form posted with this session's CSRF token (403 without it)."""
    posted = await request.post()
    form = {key: value for key, value in posted.items() if isinstance(value, str)}
    check_csrf(session, form.get("csrf_token"))
    return form


def make_app(console: Console) -> web.Application:
    """The console. Form bodies are bounded like callbacks (``MAX_BODY``); an upload is
    streamed to disk with its own limit (``uploads.MAX_UPLOAD``)."""
    from . import pages

    app = web.Application(client_max_size=MAX_BODY, middlewares=[security_headers, sessions])
    app[CONSOLE] = console
    aiohttp_jinja2.setup(
        app, loader=jinja2.PackageLoader("batchpay.web", "templates"),
        autoescape=jinja2.select_autoescape(default=True), undefined=jinja2.StrictUndefined,
    )  # fmt: skip

    async def open_journal(app: web.Application) -> AsyncIterator[None]:
        app[JOURNAL] = Journal(console.journal)  # the callback receiver's own connection
        yield
        app[JOURNAL].close()

    async def stop_sends(app: web.Application) -> None:
        await asyncio.to_thread(console.senders.stop_all)

    app.cleanup_ctx.append(open_journal)
    app.on_shutdown.append(stop_sends)
    pages.add_routes(app)
    app.router.add_post("/notify", receiver(console.secret, console.protocol))
    app.router.add_static("/static", Path(__file__).parent / "static", append_version=True)
    return app
