"""The console's routes (team-controls.md's route contract). Each page signs the user in from
the session, each POST checks the session's CSRF token, each action checks the role here (403,
audited) and leaves every other rule to the library, whose refusal is shown on the page."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import BodyPartReader, web

from ..errors import AccessError, BatchpayError, SignInError
from ..journal.store import Journal
from ..reporting import write_report
from ..sheets.template import write_template
from ..team.auth import authenticate
from ..team.life import approve, cancel, hold, journal_content, reject, release, submit
from ..team.policy import effective_policy
from ..team.sending import may_send
from ..team.submitting import Submission
from ..team.users import User, refuse
from .app import (
    SESSION,
    Console,
    check_csrf,
    client_address,
    console_of,
    form_of,
    session_of,
    set_session_cookie,
    signed_in,
)
from .sessions import COOKIE, Session
from .uploads import (
    BAD_EXTENSION,
    MAX_UPLOAD,
    NO_FILE,
    TOO_BIG,
    extension_of,
    read_again,
    read_and_plan,
    saved_path,
    shown_name,
)
from .views import (
    ACTIONS,
    ROLES,
    UPLOADERS,
    BatchView,
    actions_for,
    allowed,
    audit_trail,
    batch_views,
)
from .views import NAME_SUFFIX as LABEL

TOO_MANY_FAILURES = "too many failed sign-ins from this address: wait a few minutes"
NO_SUCH_BATCH = "no batch {batch} in the journal"
NO_SOURCE = "batch {batch}'s file {source} is gone: upload the file again to send it"
WRONG_ROLE = "{name} is a {role}; {action} needs a {needed}"
CHUNK = 256 * 1024


def page(request: web.Request, template: str, context: dict[str, Any],
         status: int = 200) -> web.Response:  # fmt: skip
    session = session_of(request)
    said = session.take_messages() if session is not None else []
    context = {"csrf": session.csrf if session else "", "user": None, **context,
               "messages": said}  # fmt: skip
    return aiohttp_jinja2.render_template(template, request, context, status=status)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def login_page(request: web.Request) -> web.Response:
    console, session = console_of(request), session_of(request)
    if session is None:  # the login form's own pre-session, for its CSRF token
        session = console.sessions.new()
        request[SESSION] = session
    response = page(request, "login.html", {"error": ""})
    set_session_cookie(response, console, session)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    console, session = console_of(request), session_of(request)
    if session is None:
        raise web.HTTPForbidden(text="no sign-in form was opened: reload /login")
    form = await form_of(request, session)
    address = client_address(request)
    if console.throttle.blocked(address):
        return page(request, "login.html", {"error": TOO_MANY_FAILURES}, status=429)
    name, password = form.get("username", "").strip(), form.get("password", "")
    code = form.get("otp", "").strip() or None
    try:
        user = await console.call(
            lambda journal: authenticate(journal, name, password, code, origin=f"web {address}")
        )
    except SignInError as exc:
        console.throttle.failed(address)
        return page(request, "login.html", {"error": str(exc), "username": name}, status=200)
    console.sessions.end(session.id)  # a new id once signed in: a planted id is worth nothing
    fresh = console.sessions.new(user.name)
    response = web.HTTPSeeOther("/")
    set_session_cookie(response, console, fresh)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    session = session_of(request)
    if session is None:
        raise web.HTTPSeeOther("/login")
    await form_of(request, session)
    console_of(request).sessions.end(session.id)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    raise response


async def batches_page(request: web.Request) -> web.Response:
    console = console_of(request)
    _, user = await signed_in(request)
    views = await console.call(lambda journal: batch_views(journal, console.env))
    return page(request, "batches.html", {"user": user, "batches": views,
                                          "may_upload": user.role in UPLOADERS})  # fmt: skip


async def upload(request: web.Request) -> web.StreamResponse:
    """A file streamed to the private folder under a random name, bounded as it arrives; the
    CSRF token (the form's first field) and the role are checked before a byte is stored."""
    console = console_of(request)
    session, user = await signed_in(request)
    if not request.content_type.startswith("multipart/"):
        check_csrf(session, None)
    saved, name, problem = await receive_file(request, console, session, user)
    if problem:
        if saved is not None:
            saved.unlink(missing_ok=True)
        session.say(problem)
        raise web.HTTPSeeOther("/")
    assert saved is not None
    saved.with_name(saved.name + LABEL).write_text(name, encoding="utf-8")
    record = console.uploads.new(name, user.name)
    gateway = console.gateway
    what = Submission(saved, gateway.account, gateway.notify_url,
                      mobile_pattern=console.mobile_pattern)  # fmt: skip
    await asyncio.to_thread(read_and_plan, console.journal, record, saved, what)
    if record.batch is None:
        raise web.HTTPSeeOther(f"/batches/{record.id}")
    console.uploads.planned(record)
    raise web.HTTPSeeOther(f"/batches/{record.batch}")


async def receive_file(
    request: web.Request, console: Console, session: Session, user: User
) -> tuple[Path | None, str, str]:
    """The saved file, the client's name for display, and a problem ('' when none)."""
    reader = await request.multipart()
    token: str | None = None
    saved: Path | None = None
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "csrf_token":
                token = (await part.read(decode=True)).decode("utf-8", "replace")[:200]
                continue
            if part.name != "file":
                continue
            check_csrf(session, token)
            if not allowed_upload(user):
                await refused(console, user, "upload", None)
            name = shown_name(part.filename)
            if not part.filename:
                return None, name, NO_FILE
            extension = extension_of(name)
            if extension is None:
                return None, name, BAD_EXTENSION.format(name=name)
            saved = saved_path(console.folder, extension)
            size = 0
            with saved.open("xb") as stream:
                while chunk := await part.read_chunk(CHUNK):
                    size += len(chunk)
                    if size > MAX_UPLOAD:
                        return saved, name, TOO_BIG
                    stream.write(chunk)
            return saved, name, ""
    except BaseException:
        if saved is not None:  # a dropped connection leaves nothing half-written behind
            saved.unlink(missing_ok=True)
        raise
    check_csrf(session, token)
    if not allowed_upload(user):
        await refused(console, user, "upload", None)
    return None, "", NO_FILE


def allowed_upload(user: User) -> bool:
    return user.role in UPLOADERS


async def refused(console: Console, user: User, action: str, batch: str | None) -> None:
    """403: the user's role may not ``action``; the refusal is on the audit trail."""
    needed = " or ".join(r.value for r in (UPLOADERS if action == "upload" else ROLES[action]))
    reason = WRONG_ROLE.format(name=user.name, role=user.role.value, action=action, needed=needed)

    def record(journal: Journal) -> None:
        with contextlib.suppress(AccessError):  # refuse records the refusal, then raises
            refuse(journal, user.actor, action, reason, batch=batch)

    await console.call(record)
    raise web.HTTPForbidden(text=reason)


def one_view(console: Console, journal: Journal, batch: str) -> BatchView | None:
    found = batch_views(journal, console.env, batch) if batch in journal.batch_ids(batch) else []
    return found[0] if found else None


async def batch_page(request: web.Request) -> web.Response:
    console = console_of(request)
    _, user = await signed_in(request)
    batch = request.match_info["batch"]
    if batch.startswith("u-"):
        record = console.uploads.get(batch)
        if record is None:
            raise web.HTTPNotFound(text="no such upload (uploads are kept until a restart)")
        return page(request, "upload.html", {"user": user, "upload": record})

    def read(journal: Journal) -> tuple[BatchView | None, list[Any]]:
        view = one_view(console, journal, batch)
        return view, audit_trail(journal, batch) if view else []

    view, trail = await console.call(read)
    if view is None:
        raise web.HTTPNotFound(text=NO_SUCH_BATCH.format(batch=batch))
    job = console.senders.job(batch)
    running = job is not None and job.running
    record = console.uploads.of_batch(batch)
    if record is None:  # a restart forgot it: the saved file says it again
        record = await asyncio.to_thread(read_again, console.folder, batch, view.path,
                                         view.source, console.mobile_pattern)  # fmt: skip
        if record is not None:
            console.uploads.planned(record)
    context = {"user": user, "view": view, "trail": trail, "job": job,
               "actions": actions_for(user, view, running), "upload": record}  # fmt: skip
    return page(request, "batch.html", context)


async def action(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    session, user = await signed_in(request)
    form = await form_of(request, session)
    batch, what = request.match_info["batch"], request.match_info["action"]
    if what not in ACTIONS:
        raise web.HTTPNotFound()
    exists = await console.call(lambda journal: batch in journal.batch_ids(batch))
    if not exists:
        raise web.HTTPNotFound(text=NO_SUCH_BATCH.format(batch=batch))
    if not allowed(user, what):
        await refused(console, user, what, batch)
    back = web.HTTPSeeOther(f"/batches/{batch}")
    try:
        if what == "send":
            await start_send(console, session, user, batch)
        else:
            reason = form.get("reason", "")
            await console.call(lambda journal: decide(console, journal, user, batch, what,
                                                      reason))  # fmt: skip
            session.say(f"{what}: done")
    except BatchpayError as exc:
        session.say(str(exc))
    raise back


def decide(console: Console, journal: Journal, user: User, batch: str, what: str,
           reason: str) -> None:  # fmt: skip
    content = journal_content(journal, batch)
    if what == "submit":
        submit(journal, user, content, effective_policy(journal, console.env))
    elif what == "approve":
        approve(journal, user, content, effective_policy(journal, console.env))
    elif what == "reject":
        reject(journal, user, batch, reason)
    elif what == "hold":
        hold(journal, user, content, reason)
    elif what == "release":
        release(journal, user, batch)
    elif what == "cancel":
        cancel(journal, user, content, reason)


async def start_send(console: Console, session: Session, user: User, batch: str) -> None:
    def check(journal: Journal) -> str:
        content = journal_content(journal, batch)
        may_send(journal, user.actor, content, effective_policy(journal, console.env))
        return journal.report_source(batch).source

    source = Path(await console.call(check))
    if not source.is_file():
        session.say(NO_SOURCE.format(batch=batch, source=source.name))
        return
    output = console.folder / f"{batch}.result.xlsx"
    refusal = console.senders.start(batch, source, output, user.actor)
    session.say(refusal or f"sending batch {batch}: the page shows its progress")


async def result(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    await signed_in(request)
    batch, kind = request.match_info["batch"], request.match_info["kind"]

    def write(journal: Journal) -> bytes:
        if batch not in journal.batch_ids(batch):
            raise web.HTTPNotFound(text=NO_SUCH_BATCH.format(batch=batch))
        with tempfile.TemporaryDirectory(dir=console.folder) as folder:
            path = Path(folder) / f"result.{kind}"
            write_report(journal, batch, path)
            return path.read_bytes()

    body = await console.call(write)
    return download(body, f"batch-{batch[:12]}-result.{kind}")


def download(body: bytes, name: str) -> web.Response:
    types = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
             "csv": "text/csv; charset=utf-8"}  # fmt: skip
    return web.Response(body=body, headers={
        "Content-Type": types[name.rsplit(".", 1)[1]],
        "Content-Disposition": f'attachment; filename="{name}"',
    })  # fmt: skip


async def template(request: web.Request) -> web.StreamResponse:
    await signed_in(request)
    with tempfile.TemporaryDirectory(dir=console_of(request).folder) as folder:
        path = Path(folder) / "template.xlsx"
        write_template(path)
        return download(path.read_bytes(), "batchpay-template.xlsx")


async def api_batches(request: web.Request) -> web.Response:
    console = console_of(request)
    await signed_in(request)
    views = await console.call(lambda journal: batch_views(journal, console.env))
    return web.json_response({"batches": [v.as_json() for v in views]})


async def api_batch(request: web.Request) -> web.Response:
    console = console_of(request)
    await signed_in(request)
    batch = request.match_info["batch"]
    view = await console.call(lambda journal: one_view(console, journal, batch))
    if view is None:
        return web.json_response({"error": NO_SUCH_BATCH.format(batch=batch)}, status=404)
    job = console.senders.job(batch)
    return web.json_response({**view.as_json(), "progress": job.as_json() if job else None})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/", batches_page)
    app.router.add_post("/batches", upload)
    app.router.add_get("/batches/{batch}", batch_page)
    app.router.add_post("/batches/{batch}/{action}", action)
    app.router.add_get(r"/batches/{batch}/result.{kind:xlsx|csv}", result)
    app.router.add_get("/template.xlsx", template)
    app.router.add_get("/api/batches", api_batches)
    app.router.add_get("/api/batches/{batch}", api_batch)
