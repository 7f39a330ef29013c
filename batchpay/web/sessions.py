"""Sessions kept server-side in memory: a random id in the cookie, a CSRF token per session,
idle expiry. A restart signs everyone out, which a payroll console can afford (and which
leaves nothing to steal on disk)."""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

COOKIE = "batchpay_session"
IDLE = 30 * 60.0  # seconds without a request before a session ends
MAX_SESSIONS = 10_000  # a flood of anonymous login pages cannot grow memory without bound


@dataclass
class Session:
    id: str
    csrf: str
    user: str | None = None  # None: the login page's pre-session (its own CSRF token)
    seen: float = field(default_factory=time.monotonic)
    messages: list[str] = field(default_factory=list)  # shown once, on the next page

    def say(self, message: str) -> None:
        self.messages.append(message)

    def take_messages(self) -> list[str]:
        taken, self.messages = self.messages, []
        return taken

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(self.csrf.encode(), given.encode())


class Sessions:
    """Live sessions by id. The clock is injectable so a test can expire one."""

    def __init__(self, idle: float = IDLE, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle = idle
        self.clock = clock
        self._by_id: dict[str, Session] = {}

    def new(self, user: str | None = None) -> Session:
        self._sweep()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), user,
                          self.clock())  # fmt: skip
        self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (its idle time restarts), or None."""
        if not session_id:
            return None
        session = self._by_id.get(session_id)
        if session is None:
            return None
        now = self.clock()
        if now - session.seen > self.idle:
            del self._by_id[session_id]
            return None
        session.seen = now
        return session

    def end(self, session_id: str) -> None:
        self._by_id.pop(session_id, None)

    def end_user(self, user: str) -> None:
        """Every session of ``user`` (disabled, or gone from the journal)."""
        for found in [s.id for s in self._by_id.values() if s.user == user]:
            del self._by_id[found]

    def _sweep(self) -> None:
        now = self.clock()
        for stale in [s.id for s in self._by_id.values() if now - s.seen > self.idle]:
            del self._by_id[stale]
        while len(self._by_id) >= MAX_SESSIONS:  # the oldest anonymous one goes first
            oldest = min(self._by_id.values(), key=lambda s: (s.user is not None, s.seen))
            del self._by_id[oldest.id]


class Throttle:
    """Failed sign-ins per client address: beyond ``limit`` in ``window`` seconds, the login
    form answers 429 for a while (the journal's lockout guards each user; this guards the
    journal against one client trying many names)."""

    def __init__(self, limit: int = 20, window: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.limit = limit
        self.window = window
        self.clock = clock
        self._failures: dict[str, list[float]] = {}

    def _recent(self, address: str) -> list[float]:
        now = self.clock()
        kept = [t for t in self._failures.get(address, []) if now - t < self.window]
        if kept:
            self._failures[address] = kept
        else:
            self._failures.pop(address, None)
        return kept

    def blocked(self, address: str) -> bool:
        return len(self._recent(address)) >= self.limit

    def failed(self, address: str) -> None:
        self._failures.setdefault(address, []).append(self.clock())
