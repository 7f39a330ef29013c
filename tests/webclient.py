"""A console on a loopback port for the web tests, and a small HTTP client over urllib that
keeps its own cookie, never follows redirects (a test sees the 303 itself) and posts forms and
multipart uploads."""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

from aiohttp import web
from helpers import MERCHANT, SECRET, serve_app

from batchpay.config import DEFAULT_MOBILE_PATTERN, gateway_from_env, protocol_from_env
from batchpay.gateway.callbacks import server_options
from batchpay.journal.store import Journal
from batchpay.team.policy import set_policy
from batchpay.team.users import Role, add_user, find_user
from batchpay.web.app import Console, make_app

PASSWORDS = {
    "alice": "orange-Kettle-river-1",  # admin
    "bob": "purple-Lantern-hill-22",  # preparer
    "carol": "silver-Teapot-field-3",  # approver
    "vera": "amber-Pillow-meadow-55",  # viewer
    "tina": "copper-Ladder-stream-6",  # preparer with a one-time code
}
ROLES = {"alice": Role.ADMIN, "bob": Role.PREPARER, "carol": Role.APPROVER, "vera": Role.VIEWER,
         "tina": Role.PREPARER}  # fmt: skip
BY_ROLE = {"admin": "alice", "preparer": "bob", "approver": "carol", "viewer": "vera"}


def make_team(path: Path) -> str:
    """A journal holding the team and the policy approvals=1; the TOTP user's otpauth URI."""
    uri = ""
    with Journal(path) as journal:
        admin = add_user(journal, "alice", Role.ADMIN, PASSWORDS["alice"], by=None).user
        for name in ("bob", "carol", "vera", "tina"):
            made = add_user(journal, name, ROLES[name], PASSWORDS[name], by=admin,
                            totp=name == "tina")  # fmt: skip
            uri = made.otpauth_uri or uri
        set_policy(journal, {"approvals": 1}, by=admin)
        assert find_user(journal, "tina") is not None
    return uri


def copy_team(template: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "journal.sqlite3"
    shutil.copy(template, path)
    return path


def gateway_settings(payout_url: str, query_url: str,
                     notify_url: str = "https://merchant.example.com/vexora/notify"
                     ) -> dict[str, str]:  # fmt: skip
    return {
        "BATCHPAY_URL": payout_url, "BATCHPAY_QUERY_URL": query_url,
        "BATCHPAY_MERCHANT_NO": MERCHANT, "BATCHPAY_SECRET": SECRET,
        "BATCHPAY_NOTIFY_URL": notify_url,
    }  # fmt: skip


def console_for(journal: Path, env: dict[str, str], *, secure: bool = False) -> Console:
    gateway, protocol = gateway_from_env(env), protocol_from_env(env)
    return Console(journal, env, gateway, env["BATCHPAY_SECRET"], protocol,
                   DEFAULT_MOBILE_PATTERN, secure_cookie=secure)  # fmt: skip


@contextmanager
def serving(console: Console) -> Iterator[str]:
    with serve_app(make_app(console), **server_options()) as base:
        try:
            yield base
        finally:
            console.senders.wait()


def free_port() -> int:
    """A loopback port free now (for a console whose own address is its notify URL)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving_on(console: Console, port: int) -> Iterator[str]:
    """The console on this port, from a thread of its own."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(make_app(console), **server_options())
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        console.senders.wait()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@dataclass
class Answer:
    status: int
    headers: Message
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass
class Client:
    base: str
    cookie: str = ""
    csrf: str = ""
    opener: urllib.request.OpenerDirector = field(
        default_factory=lambda: urllib.request.build_opener(_NoRedirect)
    )

    def request(self, method: str, path: str, body: bytes | None = None,
                content_type: str = "", more: dict[str, str] | None = None) -> Answer:  # fmt: skip
        headers = {"Cookie": self.cookie} if self.cookie else {}
        headers.update(more or {})
        if content_type:
            headers["Content-Type"] = content_type
        sent = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)
        try:
            with self.opener.open(sent, timeout=60) as response:
                answer = Answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            answer = Answer(error.code, error.headers, error.read())
        for value in answer.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            if name == "batchpay_session":
                self.cookie = f"batchpay_session={rest.split(';')[0]}"
        token = re.search(rb'name="csrf_token" value="([^"]+)"', answer.body)
        if token:
            self.csrf = token[1].decode()
        return answer

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def post(self, path: str, fields: dict[str, str] | None = None, *, token: bool = True,
             headers: dict[str, str] | None = None) -> Answer:  # fmt: skip
        form = dict(fields or {})
        if token and self.csrf:
            form["csrf_token"] = self.csrf
        body = urllib.parse.urlencode(form).encode()
        return self.request("POST", path, body, "application/x-www-form-urlencoded", headers)

    def upload(self, path: str, name: str, content: bytes, *, token: bool = True) -> Answer:
        boundary = "----batchpay" + secrets.token_hex(8)
        parts = []
        if token and self.csrf:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"'
                         f"\r\n\r\n{self.csrf}\r\n".encode())  # fmt: skip
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                     f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                     .encode() + content + b"\r\n")  # fmt: skip
        parts.append(f"--{boundary}--\r\n".encode())
        return self.request(
            "POST", path, b"".join(parts), f"multipart/form-data; boundary={boundary}"
        )

    def sign_in(self, name: str, password: str | None = None, otp: str = "") -> Answer:
        self.get("/login")
        answer = self.post("/login", {"username": name, "password": password or PASSWORDS[name],
                                      "otp": otp})  # fmt: skip
        assert answer.status == 303, answer.text
        self.get("/")  # the signed-in session's own CSRF token
        return answer
