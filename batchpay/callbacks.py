"""The status-callback receiver (``batchpay listen``): an aiohttp.web app that verifies each
callback's signature over the fields exactly as received and records it in the journal.

Rules: a bad signature or an unknown tradeNo gets a 4xx and changes nothing; a good callback is
recorded and answered ``OK``; repeats change nothing more; a final status is never replaced by
a non-final one; a final status that contradicts the journal (paid, then failed; or a callback
for a rejected order; or another amount) is recorded and flagged, never silently applied.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from .config import Protocol
from .journal import Journal
from .journal_rows import now
from .outcomes import FINAL, Outcome, placed_outcome
from .signing import verify

log = logging.getLogger("batchpay.listen")

MAX_BODY = 64 * 1024
OK_BODY = "OK"


@dataclass(frozen=True)
class Effect:
    http_status: int
    text: str
    effect: str  # what was done: applied, repeat, ignored-not-final, conflict, ...


def _amount(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:
        return None


def apply_callback(journal: Journal, fields: dict[str, Any], protocol: Protocol) -> Effect:
    """Record one verified callback; the journal's row moves only forward."""
    trade_no = str(fields.get("tradeNo", ""))
    status = str(fields.get("status", ""))
    if not trade_no or not status:
        return Effect(400, "tradeNo and status are required", "refused")
    incoming = placed_outcome(status, protocol)
    with journal.transaction() as db:
        row = db.execute(
            "SELECT outcome, status, amount FROM rows WHERE trade_no = ?",
            (trade_no,),
        ).fetchone()
        if row is None:
            return Effect(404, "unknown tradeNo", "refused")
        current, current_status, amount = Outcome(row[0]), row[1], row[2]
        given_amount = _amount(str(fields.get("amount", "")))
        flag = ""
        if given_amount is not None and given_amount != amount:
            flag = f"callback amount {fields.get('amount')} differs from the row's {amount}"
        elif current is Outcome.REJECTED:
            flag = f"callback status {status} for an order the gateway had refused"
        elif current in FINAL and incoming in FINAL and status != current_status:
            flag = (
                f"callback status {status} contradicts the recorded final status {current_status}"
            )
        if flag:
            effect = "conflict"
            db.execute(
                "UPDATE rows SET flag = ?, updated_at = ? WHERE trade_no = ?",
                (flag, now(), trade_no),
            )
        elif current in FINAL:
            effect = "repeat" if incoming in FINAL else "ignored-not-final"
        elif (
            current is Outcome.PROCESSING
            and incoming is Outcome.PROCESSING
            and (status == current_status)
        ):
            effect = "repeat"
        else:
            effect = "applied"
            db.execute(
                "UPDATE rows SET outcome = ?, status = ?, message = ?, in_flight = 0, "
                "platform_trade_no = CASE WHEN ? = '' THEN platform_trade_no ELSE ? END, "
                "updated_at = ? WHERE trade_no = ?",
                (incoming.value, status, str(fields.get("message", ""))[:500],
                 str(fields.get("platFormTradeNo", "")), str(fields.get("platFormTradeNo", "")),
                 now(), trade_no),
            )  # fmt: skip
        db.execute(
            "INSERT INTO callbacks (trade_no, received_at, status, effect, fields) "
            "VALUES (?, ?, ?, ?, ?)",
            (trade_no, now(), status, effect, json.dumps(fields, ensure_ascii=False)[:4000]),
        )
    return Effect(200, OK_BODY, effect)


JOURNAL = web.AppKey("journal", Journal)


def callback_app(journal_path: Path, secret: str, protocol: Protocol, path: str) -> web.Application:
    """The receiver. It opens its own connection to the journal (WAL: it shares the file
    safely with a run in progress) when it starts, in the thread that serves it."""
    app = web.Application(client_max_size=MAX_BODY)

    async def open_journal(app: web.Application) -> AsyncIterator[None]:
        app[JOURNAL] = Journal(journal_path)
        yield
        app[JOURNAL].close()

    app.cleanup_ctx.append(open_journal)

    async def receive(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            # Numbers stay in their JSON text form: the signature covers them as received.
            fields = json.loads(raw, parse_int=str, parse_float=str)
        except ValueError:
            return web.Response(status=400, text="body is not JSON")
        if not isinstance(fields, dict):
            return web.Response(status=400, text="body is not a JSON object")
        if not verify(fields, secret, skip_empty=protocol.sign_skip_empty):
            log.warning("refused a callback with a bad signature from %s", request.remote)
            return web.Response(status=401, text="bad signature")
        effect = apply_callback(request.app[JOURNAL], fields, protocol)
        log.info(
            "callback tradeNo=%s status=%s effect=%s",
            fields.get("tradeNo"), fields.get("status"), effect.effect,
        )  # fmt: skip
        return web.Response(status=effect.http_status, text=effect.text)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_post(path, receive)
    app.router.add_get("/health", health)
    return app
