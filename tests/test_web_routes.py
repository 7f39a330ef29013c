"""The web console's routes over real HTTP (the app on a loopback port, a real journal, the
in-process sandbox gateway): every route x every role x with and without the CSRF token gets
the status the route contract says (team-controls.md); cookies, headers, uploads and sign-in
as its security requirements say; and no password, hash or secret in any page."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from helpers import SECRET, payroll_rows, write_csv
from webclient import (
    BY_ROLE,
    PASSWORDS,
    Client,
    console_for,
    copy_team,
    gateway_settings,
    make_team,
    serving,
)

from batchpay.journal.store import Journal
from batchpay.sandbox.gateway import SandboxGateway
from batchpay.sandbox.server import serve_in_thread
from batchpay.web.app import Console
from batchpay.web.sessions import Sessions

FIXTURES = Path(__file__).parent / "fixtures"
CSP = "default-src 'self'"
ROLES_ = ("preparer", "approver", "admin", "viewer", "none")
SIGNED_IN = {"preparer", "approver", "admin", "viewer"}
ANYONE = {*SIGNED_IN, "none"}

# (method, route, who may). A page without a session answers 303 to /login, the API 401; a
# POST without the session's token 403; a POST by a role that may not, 403.
TABLE: list[tuple[str, str, set[str]]] = [
    ("GET", "/healthz", ANYONE),
    ("GET", "/login", ANYONE),
    ("POST", "/login", SIGNED_IN),  # needs the form's (pre-)session; wrong name: 200 again
    ("POST", "/logout", SIGNED_IN),
    ("GET", "/", SIGNED_IN),
    ("POST", "/batches", {"preparer", "admin"}),
    ("GET", "/batches/{life}", SIGNED_IN),
    ("POST", "/batches/{life}/submit", {"preparer", "admin"}),
    ("POST", "/batches/{life}/approve", {"approver", "admin"}),
    ("POST", "/batches/{life}/reject", {"approver", "admin"}),
    ("POST", "/batches/{life}/hold", {"admin"}),
    ("POST", "/batches/{life}/release", {"admin"}),
    ("POST", "/batches/{life}/cancel", {"admin"}),
    ("POST", "/batches/{draft}/send", {"preparer", "approver", "admin"}),
    ("GET", "/batches/{life}/result.xlsx", SIGNED_IN),
    ("GET", "/batches/{life}/result.csv", SIGNED_IN),
    ("GET", "/template.xlsx", SIGNED_IN),
    ("GET", "/api/batches", SIGNED_IN),
    ("GET", "/api/batches/{life}", SIGNED_IN),
    ("POST", "/notify", ANYONE),  # the gateway's: no session, no token; a bad body is 400
]


def expected(method: str, route: str, role: str, token: bool, may: set[str]) -> int:
    if route == "/notify":
        return 400
    if route in ("/healthz", "/login") and method == "GET":
        return 200
    if method == "GET":
        if role == "none":
            return 401 if route.startswith("/api/") else 303
        return 200
    if route == "/login":
        return 200 if role != "none" and token else 403
    if role == "none":
        return 303  # to /login: there is no session whose token it could carry
    if not token:
        return 403
    return 303 if role in may else 403


@pytest.fixture(scope="session")
def team_journal(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("webteam") / "journal.sqlite3"
    return path, make_team(path)


@pytest.fixture(scope="module")
def site(
    team_journal: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Console, str, dict[str, str]]]:
    gateway = SandboxGateway("M-TEST-001", SECRET)
    folder = tmp_path_factory.mktemp("websitejournal")
    with serve_in_thread(gateway) as server:
        env = gateway_settings(server.payout_url, server.query_url)
        console = console_for(copy_team(team_journal[0], folder), env)
        with serving(console) as base:
            bob = Client(base)
            bob.sign_in("bob")
            batches = {}
            for key, start in (("life", 0), ("draft", 100)):
                csv = write_csv(folder / f"{key}.csv", payroll_rows(3, start=start))
                answer = bob.upload("/batches", "payroll.csv", csv.read_bytes())
                assert answer.status == 303, answer.text
                batches[key] = answer.location.rsplit("/", 1)[1]
            yield console, base, batches


@pytest.fixture(scope="module")
def clients(site: tuple[Console, str, dict[str, str]]) -> dict[str, Client]:
    return {}


def client_for(role: str, base: str, clients: dict[str, Client]) -> Client:
    """A signed-in client of the role (signed in again after a logout), or one with no
    session at all."""
    if role == "none":
        return Client(base)
    client = clients.get(role)
    if client is None or client.get("/").status != 200:
        client = Client(base)
        client.sign_in(BY_ROLE[role])
        clients[role] = client
    return client


CASES = [
    pytest.param(method, route, role, token, may, id=f"{method} {route} {role} "
                 f"{'token' if token else 'no-token'}")
    for method, route, may in TABLE
    for role in ROLES_
    for token in (True, False)
]  # fmt: skip


@pytest.mark.parametrize(("method", "route", "role", "token", "may"), CASES)
def test_every_route_answers_each_role_with_and_without_token(
    site: tuple[Console, str, dict[str, str]], clients: dict[str, Client],
    method: str, route: str, role: str, token: bool, may: set[str],
) -> None:  # fmt: skip
    _, base, batches = site
    client = client_for(role, base, clients)
    path = route.format(**batches)
    if method == "GET":
        answer = client.get(path)
    elif route == "/batches":
        answer = client.upload(path, "payroll.csv", b"Employee,Amount\nE1,\n", token=token)
    elif route == "/login":
        answer = client.post(path, {"username": "nobody", "password": "x" * 12}, token=token)
    elif route == "/notify":
        answer = client.request("POST", path, b"not json", "application/json")
    else:
        answer = client.post(path, {"reason": "table test"}, token=token)
    want = expected(method, route, role, token, may)
    assert answer.status == want, answer.text[:300]
    if want == 303 and role == "none":
        assert answer.location == "/login"
    if method == "POST" and route.startswith("/batches/") and want == 303 and role != "none":
        assert answer.location == "/batches/" + path.split("/")[2]
    assert answer.headers.get("Content-Security-Policy", "").startswith(CSP)


def test_a_role_refused_is_on_the_audit_trail(site: tuple[Console, str, dict[str, str]]) -> None:
    console, base, batches = site
    vera = Client(base)
    vera.sign_in("vera")
    assert vera.post(f"/batches/{batches['draft']}/approve").status == 403
    with Journal(console.journal) as journal:
        last = list(journal.audit_rows(batches["draft"]))[-1]
    assert (last.actor, last.action) == ("vera", "refused")
    assert "approve" in last.details


def test_session_cookie_is_httponly_strict_and_secure_behind_https(
    team_journal: tuple[Path, str], tmp_path: Path
) -> None:
    env = gateway_settings("http://127.0.0.1:9/payout", "http://127.0.0.1:9/query")
    for secure in (False, True):
        console = console_for(copy_team(team_journal[0], tmp_path / str(secure)), env,
                              secure=secure)  # fmt: skip
        with serving(console) as base:
            client = Client(base)
            cookies = client.get("/login").headers.get_all("Set-Cookie") or []
            client.post("/login", {"username": "bob", "password": PASSWORDS["bob"]})
            signed = Client(base)
            signed.get("/login")
            answer = signed.post("/login", {"username": "bob", "password": PASSWORDS["bob"]})
            assert answer.status == 303 and answer.location == "/"
            cookies += answer.headers.get_all("Set-Cookie") or []
        assert len(cookies) == 2
        for cookie in cookies:
            flags = [f.strip().lower() for f in cookie.split(";")]
            assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
            assert ("secure" in flags) is secure
        # Signing in gives a new session id: one planted before sign-in is worth nothing.
        assert cookies[0].split(";")[0] != cookies[1].split(";")[0]


def test_an_idle_session_expires(team_journal: tuple[Path, str], tmp_path: Path) -> None:
    env = gateway_settings("http://127.0.0.1:9/payout", "http://127.0.0.1:9/query")
    console = console_for(copy_team(team_journal[0], tmp_path), env)
    now = [1000.0]
    console.sessions = Sessions(console.idle, clock=lambda: now[0])
    with serving(console) as base:
        client = Client(base)
        client.sign_in("vera")
        now[0] += console.idle - 1
        assert client.get("/").status == 200  # a request restarts the idle time
        now[0] += console.idle - 1
        assert client.get("/api/batches").status == 200
        now[0] += console.idle + 1
        assert client.get("/").status == 303
        assert client.get("/api/batches").status == 401


def test_sign_in_with_a_one_time_code_and_failures_shown_and_audited(
    team_journal: tuple[Path, str], tmp_path: Path
) -> None:
    path, uri = team_journal
    env = gateway_settings("http://127.0.0.1:9/payout", "http://127.0.0.1:9/query")
    console = console_for(copy_team(path, tmp_path), env)
    with serving(console) as base:
        client = Client(base)
        client.get("/login")
        wrong = client.post("/login", {"username": "bob", "password": "not-his-password"})
        assert wrong.status == 200 and "wrong name or password" in wrong.text
        without = client.post("/login", {"username": "tina", "password": PASSWORDS["tina"]})
        assert without.status == 200 and "one-time code" in without.text
        code = pyotp.parse_uri(uri).now()
        good = client.post("/login", {"username": "tina", "password": PASSWORDS["tina"],
                                      "otp": code})  # fmt: skip
        assert good.status == 303 and good.location == "/"
    with Journal(console.journal) as journal:
        failures = [r for r in journal.audit_rows() if r.action == "sign_in_failed"]
    assert [r.actor for r in failures] == ["bob", "tina"]
    assert all("web 127.0.0.1" in r.details for r in failures)


def test_uploads_are_checked_and_the_name_is_never_a_path(
    site: tuple[Console, str, dict[str, str]], tmp_path: Path
) -> None:
    console, base, _ = site
    bob = Client(base)
    bob.sign_in("bob")
    before = set(console.folder.iterdir())
    wrong = bob.upload("/batches", "payroll.exe", b"MZ")
    assert wrong.status == 303 and wrong.location == "/"
    assert "not a spreadsheet batchpay reads" in bob.get("/").text
    big = bob.upload("/batches", "big.csv", b"x" * (20 * 1024 * 1024 + 1))
    assert big.status == 303 and "larger than 20 MB" in bob.get("/").text
    assert set(console.folder.iterdir()) == before  # nothing of either kept
    hostile = "../../<img src=x onerror=alert(1)>.xlsx"
    damaged = (FIXTURES / "damaged-accounts.libreoffice.xlsx").read_bytes()
    answer = bob.upload("/batches", hostile, damaged)
    assert answer.status == 303 and re.fullmatch(r"/batches/u-[0-9a-f]{16}", answer.location)
    page = bob.get(answer.location).text
    # Only the name's last part, and only as text.
    assert "&lt;img src=x onerror=alert(1)&gt;.xlsx" in page and "<img" not in page
    assert not (console.folder.parent.parent / "<img src=x onerror=alert(1)>.xlsx").exists()
    saved = set(console.folder.iterdir()) - before
    assert saved and all(re.fullmatch(r"[0-9a-f]{32}\.xlsx(\.name)?", p.name) for p in saved)


def test_a_file_with_invalid_rows_shows_every_problem_and_cannot_be_submitted(
    site: tuple[Console, str, dict[str, str]],
) -> None:
    _, base, _ = site
    bob = Client(base)
    bob.sign_in("bob")
    damaged = (FIXTURES / "damaged-accounts.libreoffice.xlsx").read_bytes()
    page = bob.get(bob.upload("/batches", "March.xlsx", damaged).location).text
    assert "4 rows: 0 valid, 4 invalid, 4 warning(s)" in page
    # As `batchpay validate` words them: every account stored as a number, every mobile
    # that lost its zero, each row named.
    for row in (2, 3, 4, 5):
        assert f"row {row}, column &#39;Account No&#39;" in page
    assert page.count('class="invalid"') == 4 and page.count('<td class="error"') == 4
    assert "cannot be submitted" in page and "action-submit" not in page
    listed = json.loads(bob.get("/api/batches").text)["batches"]
    assert all(b["source"] != "March.xlsx" for b in listed)  # not planned


def test_no_password_hash_or_secret_in_any_page(
    site: tuple[Console, str, dict[str, str]], team_journal: tuple[Path, str]
) -> None:
    _, base, batches = site
    totp_secret = pyotp.parse_uri(team_journal[1]).secret
    forbidden = [*PASSWORDS.values(), "$argon2", totp_secret, SECRET]
    for role, name in BY_ROLE.items():
        client = Client(base)
        client.sign_in(name)
        pages = ["/", "/api/batches", "/template.xlsx", "/login"]
        for batch in batches.values():
            pages += [f"/batches/{batch}", f"/api/batches/{batch}",
                      f"/batches/{batch}/result.csv", f"/batches/{batch}/result.xlsx"]  # fmt: skip
        for path in pages:
            answer = client.get(path)
            assert answer.status == 200, (role, path)
            for text in forbidden:
                assert text.encode() not in answer.body, (role, path)
            if answer.headers.get_content_type() == "text/html":
                assert CSP in answer.headers["Content-Security-Policy"]
                scripts = re.findall(rb"<script[^>]*>", answer.body)
                assert all(b"src=" in s for s in scripts)  # no inline script


def test_the_api_follows_the_contract(site: tuple[Console, str, dict[str, str]]) -> None:
    _, base, batches = site
    vera = Client(base)
    vera.sign_in("vera")
    one = json.loads(vera.get(f"/api/batches/{batches['draft']}").text)
    assert {"batch", "state", "rows", "total", "outcomes", "prepared_by", "approved_by",
            "sent_by"} <= set(one)  # fmt: skip
    assert (one["batch"], one["rows"], one["total"]) == (batches["draft"], 3, 3303)
    assert one["outcomes"] == {"pending": 3} and one["approved_by"] == []
    assert json.loads(vera.get("/healthz").text) == {"status": "ok"}
    assert vera.get("/api/batches/nope").status == 404


def test_failed_sign_ins_from_one_address_are_throttled(
    team_journal: tuple[Path, str], tmp_path: Path
) -> None:
    env = gateway_settings("http://127.0.0.1:9/payout", "http://127.0.0.1:9/query")
    console = console_for(copy_team(team_journal[0], tmp_path), env)
    with serving(console) as base:
        client = Client(base)
        client.get("/login")

        def attempt(address: str, name: str = "nobody", password: str = "x" * 12) -> int:
            # Behind the reverse proxy on loopback: the address it appended is the client's.
            forwarded = {"X-Forwarded-For": f"198.51.100.1, {address}"}
            fields = {"username": name, "password": password}
            return client.post("/login", fields, headers=forwarded).status

        assert [attempt("203.0.113.9") for _ in range(20)] == [200] * 20
        assert attempt("203.0.113.9") == 429
        assert attempt("203.0.113.9", "bob", PASSWORDS["bob"]) == 429  # even the right one
        assert attempt("203.0.113.10", "bob", PASSWORDS["bob"]) == 303  # another client
    with Journal(console.journal) as journal:
        origins = {r.details for r in journal.audit_rows() if r.action == "sign_in_failed"}
    assert all("web 203.0.113.9" in d for d in origins)


def buttons(page: str) -> list[str]:
    return re.findall(r'id="action-(\w+)"', page)


def test_each_page_shows_only_the_actions_its_user_may_take_and_the_library_decides(
    site: tuple[Console, str, dict[str, str]], tmp_path: Path
) -> None:
    _, base, _ = site
    alice, carol, bob, vera = Client(base), Client(base), Client(base), Client(base)
    for client, name in ((alice, "alice"), (carol, "carol"), (bob, "bob"), (vera, "vera")):
        client.sign_in(name)
    csv = write_csv(tmp_path / "april.csv", payroll_rows(2, start=300))
    batch = alice.upload("/batches", "april.csv", csv.read_bytes()).location
    assert buttons(alice.get(batch).text) == ["submit", "hold", "cancel"]
    assert buttons(bob.get(batch).text) == ["submit"]
    assert buttons(carol.get(batch).text) == [] and buttons(vera.get(batch).text) == []
    alice.post(batch + "/submit")
    assert buttons(alice.get(batch).text) == ["reject", "hold", "cancel"]  # not her own
    # Asked for anyway, the library refuses it: nobody approves their own batch.
    assert alice.post(batch + "/approve").status == 303
    page = alice.get(batch).text
    assert "someone else must approve it" in page and 'id="state">submitted<' in page
    assert buttons(carol.get(batch).text) == ["approve", "reject"]
    assert carol.post(batch + "/reject", {"reason": "row 2 is <last> month"}).status == 303
    page = bob.get(batch).text
    assert 'id="state">rejected<' in page and "row 2 is &lt;last&gt; month" in page
    assert buttons(page) == ["submit"]  # fixed, it is submitted again
    bob.post(batch + "/submit")
    carol.post(batch + "/approve")
    assert buttons(carol.get(batch).text) == ["reject", "send"]
    alice.post(batch + "/hold", {"reason": "bank holiday"})
    assert buttons(alice.get(batch).text) == ["release", "cancel"]
    assert buttons(carol.get(batch).text) == []
    # A send asked for anyway is the library's refusal, shown; nothing sent.
    assert carol.post(batch + "/send").status == 303
    assert "is held" in carol.get(batch).text
    alice.post(batch + "/release")
    alice.post(batch + "/cancel")
    page = alice.get(batch).text
    assert 'id="state">cancelled<' in page and buttons(page) == []
    assert "cancelled" in json.loads(alice.get("/api" + batch).text)["outcomes"]
