"""The status-callback receiver (``batchpay listen``): an aiohttp.web app that verifies each
callback's signature over the fields exactly as received, holds every field to its shape, and
records it in the journal.

Why the shape matters as much as the signature: the signing string joins ``key=value`` pairs
with no separator, so whoever captured one genuine callback can move a field boundary and keep
the signature valid (``status`` = ``"0015timestamp=1764..."`` with ``timestamp`` removed). So
(gateway contract, section 6) the expected fields must be present, ``status`` digits only,
``tradeNo``, ``amount``, ``timestamp`` and ``platFormTradeNo`` in their own formats, no value
may hold another expected field's name followed by ``=``, and the timestamp must be fresh.

Rules:
- a body that is not a flat JSON object (too deep, ``NaN``, ``Infinity``, duplicate names,
  invalid text) gets 400 and is not kept: nothing proves the gateway sent it;
- a bad signature gets 401 and is not kept (anyone can send one; keeping them would let anyone
  fill the journal);
- a correctly signed callback that fails a shape rule, or names a tradeNo the journal does not
  know, gets a 4xx, changes no row, and is kept as a *quarantined* record (effect
  ``quarantined: <reason>``) that ``batchpay status`` counts and shows, so a person can look;
- a good callback is recorded and answered ``OK``; repeats change nothing more; a final status
  is never replaced by a non-final one; a final status that contradicts the journal (paid then
  failed, a callback for a rejected order, another amount or platform number) is recorded and
  flagged, never applied, and answered 200 (a 4xx would only make the gateway retry it).

Every record keeps the callback's fields without ``sign``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from ..config import Protocol
from ..journal.rows import CallbackChange, CallbackTarget
from ..journal.store import Journal
from ..outcomes import FINAL, Outcome, amount_or_empty, placed_outcome
from ..signing import SIGN_FIELD, verify
from .shapes import CODE, CODE_RULE, FIELD_NAME, TOKEN, TOKEN_RULE, moved_boundary, shown

log = logging.getLogger("batchpay.listen")

MAX_BODY = 64 * 1024
OK_BODY = "OK"

# A callback is one flat object; a little room for a gateway that nests something later.
MAX_DEPTH = 8
MAX_BRACKETS = 64
# Slow clients: a connection that has not sent a whole request within HEADER_TIMEOUT seconds is
# closed (aiohttp's keepalive_timeout also runs from the moment a connection opens), and a body
# must arrive within BODY_TIMEOUT seconds of its headers.
HEADER_TIMEOUT = 15.0
BODY_TIMEOUT = 15.0

# The family retries a callback 8 times over about 10 hours, each retry with the first
# timestamp; 25 hours leaves room. A clock a little ahead of ours is tolerated.
MAX_AGE_MS = 25 * 3600 * 1000
MAX_AHEAD_MS = 5 * 60 * 1000

EXPECTED_FIELDS = (
    "amount", "message", "payAmount", "platFormTradeNo", "sign", "status", "successTime",
    "timestamp", "tradeNo",
)  # fmt: skip
# A partly paid order's callback may say how much was paid; a value that is not an amount is
# not shown (the row is still partly paid: the reason then says to ask the gateway).
PAY_AMOUNT_FIELD = "payAmount"
PAY_AMOUNT_IGNORED = "applied; payAmount {value} is not an amount: ignored"
REQUIRED_FIELDS = ("amount", "platFormTradeNo", "sign", "status", "timestamp", "tradeNo")
SHAPES = {
    "status": (CODE, CODE_RULE),
    "tradeNo": (TOKEN, TOKEN_RULE),
    "amount": (re.compile(r"(?:0|[1-9][0-9]{0,14})(?:\.00)?"), "a whole amount (100 or 100.00)"),
    "timestamp": (re.compile(r"[0-9]{13}"), "milliseconds since 1970 (13 digits)"),
    "platFormTradeNo": (TOKEN, TOKEN_RULE),
}
MAX_TEXT = 1024  # message, successTime and any field the gateway adds later
# Distinct quarantined records kept per tradeNo: a captured callback can be mangled in many
# ways, and each would otherwise be one more record.
QUARANTINE_PER_TRADE_NO = 20

NOT_JSON = "body is not JSON"
NOT_OBJECT = "body is not a JSON object"
TOO_DEEP = f"body nests deeper than {MAX_DEPTH} levels"
TOO_MANY_BRACKETS = f"body has more than {MAX_BRACKETS} brackets: a callback is one flat object"
NOT_A_NUMBER = "body holds {constant}, which is not a JSON number"
DUPLICATE_NAME = "body names the field {name!r} twice"
NOT_TEXT = "body holds text that is not valid Unicode"
BODY_TOO_SLOW = f"the body did not arrive within {BODY_TIMEOUT:g} s"
QUARANTINED = "quarantined: "
UNKNOWN_TRADE_NO = QUARANTINED + "unknown tradeNo"


@dataclass(frozen=True)
class Effect:
    http_status: int
    text: str
    effect: str  # what was done: applied, repeat, ignored-not-final, conflict, quarantined: ...
    trade_no: str = ""
    status: str = ""  # the callback's status field, as received

    def line(self) -> str:
        """One line for a person watching `listen`: tradeNo, status, what was done. No
        personal data, and a hostile value is shown cut and quoted, never as it came."""

        def safe(value: str) -> str:
            return value if _SAFE.fullmatch(value) else repr(value[:32]) if value else "-"

        return (
            f"callback tradeNo={safe(self.trade_no)} status={safe(self.status)} "
            f"HTTP {self.http_status}: {self.effect}"
        )


_SAFE = re.compile(r"[A-Za-z0-9_-]{1,64}")


class BodyError(ValueError):
    """The body is not one flat JSON object of text, numbers, booleans and nulls."""


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _too_deep(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """True when brackets outside strings nest deeper than ``limit``. json.loads has no depth
    limit and recurses, so 30,000 brackets end in a RecursionError: measure first, cheaply. A
    genuine callback has one pair of braces and returns at once; otherwise strings and all but
    the brackets go (in C), and the walk over what is left stops at the first level too deep."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for byte in _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        if byte in b"[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _refuse_constant(constant: str) -> Any:
    raise BodyError(NOT_A_NUMBER.format(constant=constant))


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two fields of one name: the signature and the journal could each see another value.
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name in fields:
            raise BodyError(DUPLICATE_NAME.format(name=name[:40]))
        fields[name] = value
    return fields


def parse_body(raw: bytes) -> dict[str, Any]:
    """The callback's fields, numbers kept in their JSON text form (the signature covers them
    as received). Raises BodyError for anything else; never RecursionError or OverflowError."""
    # Counted in C before anything walks the body: 64 KiB of brackets would otherwise cost
    # json.loads tens of milliseconds per request, unauthenticated.
    if raw.count(b"[") + raw.count(b"{") > MAX_BRACKETS:
        raise BodyError(TOO_MANY_BRACKETS)
    if _too_deep(raw):
        raise BodyError(TOO_DEEP)
    try:
        fields = json.loads(
            raw, parse_int=str, parse_float=str, parse_constant=_refuse_constant,
            object_pairs_hook=_unique_object,
        )  # fmt: skip
    except BodyError:
        raise
    except (ValueError, RecursionError):
        raise BodyError(NOT_JSON) from None
    if not isinstance(fields, dict):
        raise BodyError(NOT_OBJECT)
    try:
        # A lone surrogate (\ud800) parses, then cannot be encoded to sign or store.
        json.dumps(fields, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BodyError(NOT_TEXT) from None
    return fields


def shape_problem(fields: Mapping[str, Any], now_ms: int) -> str | None:
    """Why a correctly signed callback cannot be trusted as it stands, or None. Pure."""
    for name in fields:
        if not FIELD_NAME.fullmatch(name):
            return f"field name {shown(name)} is not a plain name"
    for name, value in fields.items():
        if name == SIGN_FIELD:
            continue  # verified already: 32 hex digits
        if isinstance(value, dict | list):
            return f"{name} is not a single value"
        if name in EXPECTED_FIELDS and value is not None and not isinstance(value, str):
            return f"{name} is not text or a number"
        text = "" if value is None else str(value)
        if len(text) > MAX_TEXT:
            return f"{name} is longer than {MAX_TEXT} characters"
        moved = moved_boundary(name, text, EXPECTED_FIELDS)
        if moved:
            return moved
    missing = [n for n in REQUIRED_FIELDS if fields.get(n) in (None, "")]
    if missing:
        return f"missing field{'s' if len(missing) > 1 else ''}: {', '.join(missing)}"
    for name, (pattern, rule) in SHAPES.items():
        if not pattern.fullmatch(fields[name]):
            return f"{name} {shown(fields[name])} is not {rule}"
    timestamp = int(fields["timestamp"])
    if timestamp < now_ms - MAX_AGE_MS:
        return f"timestamp {timestamp} is more than {MAX_AGE_MS // 3_600_000} hours old"
    if timestamp > now_ms + MAX_AHEAD_MS:
        return f"timestamp {timestamp} is more than {MAX_AHEAD_MS // 60_000} minutes ahead"
    return None


def _kept(fields: Mapping[str, Any]) -> str:
    """What the journal keeps of a callback: every field as received but ``sign``."""
    return json.dumps({k: v for k, v in fields.items() if k != SIGN_FIELD}, ensure_ascii=False)


def _field_text(fields: Mapping[str, Any], name: str, limit: int = 64) -> str:
    value = fields.get(name)
    return value[:limit] if isinstance(value, str) else ""


def quarantine(journal: Journal, fields: Mapping[str, Any], reason: str) -> Effect:
    """Keep a signed callback that cannot be applied, for a person to look at; no row moves."""
    effect = QUARANTINED + reason
    trade_no, status = _field_text(fields, "tradeNo"), _field_text(fields, "status")
    journal.quarantine_callback(
        trade_no, status, effect, _kept(fields), per_trade_no=QUARANTINE_PER_TRADE_NO
    )
    return Effect(400, "callback refused: " + reason, effect, trade_no, status)


def _amount(text: str) -> int:
    return int(text.split(".")[0])  # shape-checked: digits, optionally ".00"


def callback_change(
    row: CallbackTarget | None, fields: Mapping[str, Any], protocol: Protocol
) -> CallbackChange:
    """What a verified, shape-checked callback does to the row it names (None: no such row).
    Pure: the row moves only forward, and a contradiction is flagged, never applied."""
    if row is None:
        # Signed by the gateway, yet not ours: perhaps `listen` uses another journal than
        # the run did. Kept so a person notices.
        return CallbackChange(UNKNOWN_TRADE_NO)
    status = str(fields["status"])
    platform_trade_no = str(fields["platFormTradeNo"])
    incoming = placed_outcome(status, protocol)
    flag = ""
    if _amount(str(fields["amount"])) != row.amount:
        flag = f"callback amount {fields.get('amount')} differs from the row's {row.amount}"
    elif row.platform_trade_no and platform_trade_no != row.platform_trade_no:
        flag = (
            f"callback platFormTradeNo {platform_trade_no} differs from the row's "
            f"{row.platform_trade_no}"
        )
    elif row.outcome is Outcome.REJECTED:
        flag = f"callback status {status} for an order the gateway had refused"
    elif row.outcome in FINAL and incoming in FINAL and status != row.status:
        flag = f"callback status {status} contradicts the recorded final status {row.status}"
    if flag:
        return CallbackChange("conflict", flag=flag)
    if row.outcome in FINAL:
        return CallbackChange("repeat" if incoming in FINAL else "ignored-not-final")
    if (
        row.outcome is Outcome.PROCESSING
        and incoming is Outcome.PROCESSING
        and (status == row.status)
    ):
        return CallbackChange("repeat")
    effect, paid = "applied", ""
    said = fields.get(PAY_AMOUNT_FIELD)
    if incoming is Outcome.PARTIAL and said not in (None, ""):
        paid = amount_or_empty(str(said)) if isinstance(said, str | int) else ""
        if not paid:
            effect = PAY_AMOUNT_IGNORED.format(value=shown(said))
    return CallbackChange(
        effect, outcome=incoming, message=str(fields.get("message") or ""),
        platform_trade_no=platform_trade_no, pay_amount=paid,
    )  # fmt: skip


def apply_callback(journal: Journal, fields: dict[str, Any], protocol: Protocol) -> Effect:
    """Record one verified, shape-checked callback; the journal's row moves only forward."""
    trade_no = str(fields["tradeNo"])
    status = str(fields["status"])
    change = journal.apply_callback(
        trade_no, status, _kept(fields), lambda row: callback_change(row, fields, protocol)
    )
    if change.effect == UNKNOWN_TRADE_NO:
        return Effect(404, "unknown tradeNo", change.effect, trade_no, status)
    return Effect(200, OK_BODY, change.effect, trade_no, status)


def receive_callback(
    journal: Journal, raw: bytes, secret: str, protocol: Protocol, *, now_ms: int | None = None
) -> Effect:
    """One callback body, start to finish: parse, verify, hold to shape, apply or quarantine."""
    try:
        fields = parse_body(raw)
    except BodyError as exc:
        return Effect(400, str(exc), "refused: " + str(exc))
    if not verify(fields, secret, skip_empty=protocol.sign_skip_empty, salt=protocol.sign_salt):
        return Effect(401, "bad signature", "refused: bad signature")
    problem = shape_problem(fields, int(time.time() * 1000) if now_ms is None else now_ms)
    if problem:
        return quarantine(journal, fields, problem)
    return apply_callback(journal, fields, protocol)


def server_options(header_timeout: float = HEADER_TIMEOUT) -> dict[str, Any]:
    """Keyword arguments for ``web.run_app`` / ``web.AppRunner`` that bound slow and oversized
    requests: aiohttp closes a connection that has not finished a request within
    ``keepalive_timeout`` of opening (or of its last answer); header lines and counts are
    capped well above what a gateway sends."""
    return {
        "keepalive_timeout": header_timeout,
        "max_line_size": 4096,
        "max_field_size": 4096,
        "max_headers": 32,
        "access_log": None,
    }


JOURNAL = web.AppKey("journal", Journal)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def receiver(
    secret: str, protocol: Protocol, *, body_timeout: float = BODY_TIMEOUT,
    on_effect: Callable[[Effect], None] | None = None,
) -> Handler:  # fmt: skip
    """The callback route's handler, for ``callback_app`` and any server that mounts the
    receiver (the web console's ``/notify``): the app holds the journal under ``JOURNAL``
    and bounds bodies to ``MAX_BODY`` (its ``client_max_size``)."""

    async def receive(request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(body_timeout):
                raw = await request.read()
        except TimeoutError:
            log.warning("refused a callback from %s: %s", request.remote, BODY_TOO_SLOW)
            return web.Response(status=408, text=BODY_TOO_SLOW, headers={"Connection": "close"})
        effect = receive_callback(request.app[JOURNAL], raw, secret, protocol)
        if on_effect is not None:
            on_effect(effect)
        # Logged: tradeNo, status and what was done; never the sign, the secret or the body.
        if effect.http_status == 200:
            log.info("callback tradeNo=%s effect=%s", effect.trade_no, effect.effect)
        else:
            log.warning(
                "refused a callback from %s (HTTP %d): %s",
                request.remote, effect.http_status, effect.effect,
            )  # fmt: skip
        return web.Response(status=effect.http_status, text=effect.text)

    return receive


def callback_app(
    journal_path: Path, secret: str, protocol: Protocol, path: str,
    *, body_timeout: float = BODY_TIMEOUT, on_effect: Callable[[Effect], None] | None = None,
) -> web.Application:  # fmt: skip
    """The receiver. It opens its own connection to the journal (WAL: it shares the file
    safely with a run in progress) when it starts, in the thread that serves it. Serve it with
    ``server_options()``."""
    app = web.Application(client_max_size=MAX_BODY)

    async def open_journal(app: web.Application) -> AsyncIterator[None]:
        app[JOURNAL] = Journal(journal_path)
        yield
        app[JOURNAL].close()

    app.cleanup_ctx.append(open_journal)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_post(
        path, receiver(secret, protocol, body_timeout=body_timeout, on_effect=on_effect)
    )
    app.router.add_get("/health", health)
    return app
