"""Callbacks forged without the secret (moved field boundaries), hostile bodies and slow clients
(issue 13): each is refused with a 4xx, changes no row, and a signed one is kept quarantined."""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import SECRET, Sandbox, invoke, payroll_rows, post, serve_app, write_csv
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from batchpay.config import Protocol
from batchpay.gateway.callbacks import callback_app, server_options, shape_problem
from batchpay.journal.schema import MIGRATIONS, scrub_callback_signs
from batchpay.journal.store import Journal
from batchpay.sandbox.gateway import FAILED, OK
from batchpay.signing import sign


def now_ms() -> int:
    return int(time.time() * 1000)


def signed_body(fields: dict[str, Any], secret: str = SECRET) -> tuple[bytes, str]:
    """The JSON body and its sign, computed over the values' JSON text as received."""
    signature = sign({k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()},
                     secret)  # fmt: skip
    return json.dumps({**fields, "sign": signature}).encode(), signature


def with_literal(fields: dict[str, Any], name: str, literal: str) -> tuple[bytes, str]:
    """A body whose field ``name`` is the bare JSON text ``literal`` (1e999, NaN), signed over
    that text as received."""
    texts = {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}
    signature = sign({**texts, name: literal}, SECRET)
    rest = json.dumps({k: v for k, v in fields.items() if k != name})[:-1]
    return f'{rest}, "{name}": {literal}, "sign": "{signature}"}}'.encode(), signature


def rows_state(journal_path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(journal_path) as db:
        return db.execute(
            "SELECT trade_no, outcome, status, message, platform_trade_no, flag, updated_at "
            "FROM rows ORDER BY trade_no"
        ).fetchall()


def callback_records(journal_path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(journal_path) as db:
        return db.execute("SELECT trade_no, effect, fields FROM callbacks ORDER BY id").fetchall()


@pytest.fixture
def placed(sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
           ) -> dict[str, tuple[str, int]]:  # fmt: skip
    """Three rows placed at the sandbox and still processing: tradeNo -> (platFormTradeNo,
    amount)."""
    run = invoke("run", str(write_csv(tmp_path / "p.csv", payroll_rows(3))), "--yes", "--json")
    assert run.exit_code == 0, run.output
    return {t: (o.platform_trade_no, int(o.amount)) for t, o in sandbox.gateway.orders.items()}


@pytest.fixture
def notify_url(journal_path: Path, placed: dict[str, tuple[str, int]]) -> Iterator[str]:
    app = callback_app(journal_path, SECRET, Protocol(), "/notify")
    with serve_app(app, **server_options()) as base:
        yield base + "/notify"


def genuine(placed: dict[str, tuple[str, int]], index: int = 0, status: str = OK) -> dict[str, Any]:
    """The gateway's callback for the ``index``-th tradeNo, as the sandbox sends it: amount and
    timestamp as JSON numbers."""
    trade_no = sorted(placed)[index]
    platform_trade_no, amount = placed[trade_no]
    return {"status": status, "message": "Success" if status == OK else "Failed",
            "platFormTradeNo": platform_trade_no, "tradeNo": trade_no, "amount": amount,
            "successTime": "2026-12-01 20:00:00" if status == OK else "",
            "timestamp": now_ms()}  # fmt: skip


def outcome_of(journal_path: Path, trade_no: str) -> str:
    return {row[0]: row[1] for row in rows_state(journal_path)}[trade_no]


def test_the_issues_boundary_shift_is_quarantined_and_the_genuine_paid_callback_still_applies(
    placed: dict[str, tuple[str, int]], notify_url: str, journal_path: Path
) -> None:
    processing = genuine(placed, status="0015")
    processing["message"] = "Processing"
    processing["successTime"] = ""
    body, signature = signed_body(processing)
    # The attack: timestamp's text moved into status, the timestamp field removed, same sign.
    forged = {k: v for k, v in processing.items() if k != "timestamp"}
    forged["status"] = f"0015timestamp={processing['timestamp']}"
    forged_body = json.dumps({**forged, "sign": signature}).encode()
    before = rows_state(journal_path)
    answer = post(notify_url, forged_body)
    assert answer[0] == 400 and "moved field boundary" in answer[1]
    # And text moved between amount and message.
    swallowed = {k: v for k, v in processing.items() if k != "message"}
    swallowed["amount"] = f"{processing['amount']}message=Processing"
    assert post(notify_url, json.dumps({**swallowed, "sign": signature}).encode())[0] == 400
    assert rows_state(journal_path) == before

    status = json.loads(invoke("status", "--json").stdout)
    assert status["quarantined"]["count"] == 2
    reasons = [r["reason"] for r in status["quarantined"]["latest"]]
    assert any("'timestamp='" in r for r in reasons) and any("'message='" in r for r in reasons)
    assert status["batches"][0]["counts"] == {"processing": 3}
    text = invoke("status").stdout
    assert "2 quarantined callback(s)" in text and processing["tradeNo"] in text

    trade_no = processing["tradeNo"]
    assert post(notify_url, body) == (200, "OK")  # the genuine processing callback: a repeat
    assert post(notify_url, signed_body(genuine(placed))[0]) == (200, "OK")
    assert outcome_of(journal_path, trade_no) == "paid"
    assert {row[0]: row[5] for row in rows_state(journal_path)}[trade_no] == ""  # not flagged
    # Every record keeps the fields without the sign; the journal file holds no sign at all.
    records = callback_records(journal_path)
    assert len(records) == 4
    assert all("sign" not in json.loads(fields) for _, _, fields in records)
    assert [effect.split(":")[0] for _, effect, _ in records] == [
        "quarantined", "quarantined", "repeat", "applied"
    ]  # fmt: skip


# Each case: a change to a genuine paid callback, signed correctly, that must be quarantined.
# Times are functions, read when the case is sent: a module imported minutes before its test
# runs (a loaded machine, many workers) must not have its "10 minutes ahead" come due.
MISSHAPEN: dict[str, Any] = {
    "status with letters": {"status": "00O0"},
    "status with a space": {"status": "0000 "},
    "tradeNo with a space": {"tradeNo": "T 1"},
    "amount with cents": {"amount": "1000.50"},
    "amount with one decimal": {"amount": "1000.0"},
    "amount of 1e999": {},
    "amount with a sign": {"amount": "-1000"},
    "amount with leading zero": {"amount": "01000"},
    "timestamp in seconds": {"timestamp": lambda: str(int(time.time()))},
    "timestamp 26 hours old": {"timestamp": lambda: str(now_ms() - 26 * 3600 * 1000)},
    "timestamp 10 minutes ahead": {"timestamp": lambda: str(now_ms() + 10 * 60 * 1000)},
    "platFormTradeNo with a slash": {"platFormTradeNo": "sbx/1"},
    "platFormTradeNo missing": {"platFormTradeNo": None},
    "timestamp missing": {"timestamp": None},
    "message holding a field": {"message": "Success tradeNo=X"},
    "a field name with '='": {"x=y": "1"},
    "status as a boolean": {"status": True},
}


def test_each_misshapen_signed_callback_gets_a_4xx_changes_nothing_and_is_quarantined(
    placed: dict[str, tuple[str, int]], notify_url: str, journal_path: Path
) -> None:
    before = rows_state(journal_path)
    for name, change in MISSHAPEN.items():
        change = {k: v() if callable(v) else v for k, v in change.items()}
        fields = {**genuine(placed), **change}
        fields = {k: v for k, v in fields.items() if v is not None}
        if name == "amount of 1e999":
            body, _ = with_literal(fields, "amount", "1e999")  # a JSON number, not text
        else:
            body, _ = signed_body(fields)
        code, text = post(notify_url, body)
        assert 400 <= code < 500, (name, code, text)
        assert rows_state(journal_path) == before, name
    quarantined = json.loads(invoke("status", "--json").stdout)["quarantined"]
    assert quarantined["count"] == len(MISSHAPEN)
    # Well-shaped variants the gateway may send are applied: amount as "1000.00" text.
    accepted = genuine(placed, 1)
    accepted["amount"] = f"{accepted['amount']}.00"
    assert post(notify_url, signed_body(accepted)[0]) == (200, "OK")
    assert outcome_of(journal_path, accepted["tradeNo"]) == "paid"


def test_a_signed_callback_for_an_unknown_tradeno_is_404_and_quarantined(
    placed: dict[str, tuple[str, int]], notify_url: str, journal_path: Path
) -> None:
    fields = {**genuine(placed), "tradeNo": "NOT-OURS-1"}
    body, _ = signed_body(fields)
    assert post(notify_url, body)[0] == 404
    assert post(notify_url, body)[0] == 404  # the gateway's retry is not kept twice
    quarantined = json.loads(invoke("status", "--json").stdout)["quarantined"]
    assert quarantined["count"] == 1
    assert quarantined["latest"][0]["tradeNo"] == "NOT-OURS-1"
    assert quarantined["latest"][0]["reason"] == "unknown tradeNo"
    assert "sign" not in quarantined["latest"][0]["fields"]


def test_a_signed_callback_with_another_platform_number_is_flagged_not_applied(
    placed: dict[str, tuple[str, int]], notify_url: str, journal_path: Path
) -> None:
    fields = {**genuine(placed), "platFormTradeNo": "sbxsomeoneelse"}
    assert post(notify_url, signed_body(fields)[0]) == (200, "OK")
    trade_no = fields["tradeNo"]
    row = {r[0]: r for r in rows_state(journal_path)}[trade_no]
    assert row[1] == "processing" and "platFormTradeNo sbxsomeoneelse differs" in row[5]


def test_hostile_bodies_get_400_with_no_traceback_and_no_secret_in_the_log(
    placed: dict[str, tuple[str, int]], notify_url: str, journal_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="batchpay")
    fields = genuine(placed)
    trade_no = fields["tradeNo"]
    nan_body, nan_sign = with_literal(fields, "amount", "NaN")
    inf_body, _ = with_literal(fields, "amount", "Infinity")
    plain = json.dumps(fields)[:-1]
    bodies = {
        "30,000 nested brackets": b"[" * 30_000 + b"]" * 30_000,
        "nested inside an object": b'{"a": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
        "nine levels, few brackets": b'{"a": ' + b"[" * 8 + b"]" * 8 + b', "b": "[[[["}',
        "NaN amount, signed": nan_body,
        "Infinity amount, signed": inf_body,
        "-Infinity": b'{"amount": -Infinity}',
        "duplicate field": f'{plain}, "status": "0005", "sign": "x"}}'.encode(),
        "lone surrogate": b'{"message": "\\ud800", "sign": "x"}',
        "not UTF-8": b'{"message": "\xff\xfe"}',
        "a list": b"[1, 2]",
        "empty": b"",
    }
    before = rows_state(journal_path)
    for name, body in bodies.items():
        code, _ = post(notify_url, body)
        assert code == 400, (name, code)
    assert rows_state(journal_path) == before
    assert callback_records(journal_path) == []  # nothing proves the gateway sent any of them
    good_body, good_sign = signed_body(fields)
    assert post(notify_url, good_body) == (200, "OK")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text
    assert SECRET not in logged and good_sign not in logged and nan_sign not in logged
    assert f"tradeNo={trade_no}" in logged  # the log does say what was applied


def test_journals_written_before_keep_no_sign_once_opened(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    Journal(path).close()
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO callbacks (trade_no, received_at, status, effect, fields) "
            "VALUES ('T1', 'now', '0000', 'applied', ?)",
            (json.dumps({"tradeNo": "T1", "status": "0000", "sign": "abc123"}),),
        )
        # Older versions cut a record at 4,000 characters: no longer JSON, the sign still in.
        cut = json.dumps({"tradeNo": "T2", "sign": "def456", "message": "x" * 5000})[:4000]
        db.execute(
            "INSERT INTO callbacks (trade_no, received_at, status, effect, fields) "
            "VALUES ('T2', 'now', '0000', 'applied', ?)",
            (cut,),
        )
        # As a journal of the versions before the scrub (journal.schema.MIGRATIONS) was.
        db.execute(f"PRAGMA user_version = {MIGRATIONS.index(scrub_callback_signs)}")
    Journal(path).close()
    with sqlite3.connect(path) as db:
        [first], [second] = db.execute("SELECT fields FROM callbacks ORDER BY id").fetchall()
    assert json.loads(first) == {"tradeNo": "T1", "status": "0000"}
    assert "def456" not in second and second.startswith('{"tradeNo": "T2", "message": "xxx')


def test_connections_that_send_half_their_headers_are_closed(
    journal_path: Path, placed: dict[str, tuple[str, int]]
) -> None:
    app = callback_app(journal_path, SECRET, Protocol(), "/notify", body_timeout=0.5)
    with serve_app(app, **server_options(header_timeout=0.5)) as base:
        port = int(base.rsplit(":", 1)[1])
        slow = []
        for _ in range(50):
            connection = socket.create_connection(("127.0.0.1", port), timeout=30)
            connection.sendall(b"POST /notify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
            slow.append(connection)
        # A body that stops half-way gets 408 and the connection closes.
        stalled = socket.create_connection(("127.0.0.1", port), timeout=30)
        stalled.sendall(
            b"POST /notify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"a"'
        )
        for connection in slow:
            assert connection.recv(1024) == b""  # closed by the listener, not by the timeout
            connection.close()
        answer = b""
        while chunk := stalled.recv(4096):
            answer += chunk
        stalled.close()
        assert answer.startswith(b"HTTP/1.1 408")
        with urllib.request.urlopen(base + "/health", timeout=10) as health:
            assert json.loads(health.read()) == {"status": "ok"}


# -- property: random field-boundary shifts of genuine signed callbacks --------------------------


def _segments(fields: dict[str, Any]) -> list[tuple[str, str]]:
    texts = {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}
    return [(k, texts[k]) for k in sorted(texts, key=str.encode) if texts[k] != ""]


def _split(string: str, cuts: list[int]) -> list[tuple[str, str]] | None:
    """The fields whose signing string is ``string`` cut at ``cuts``, or None when a piece is
    not ``key=value`` with keys in byte order, distinct, and values not empty."""
    bounds = [0, *sorted(set(cuts)), len(string)]
    pieces = [string[a:b] for a, b in itertools.pairwise(bounds)]
    fields = []
    for piece in pieces:
        key, equals, value = piece.partition("=")
        if not equals or not key or not value or key == "sign":
            return None
        fields.append((key, value))
    keys = [k.encode() for k, _ in fields]
    return fields if keys == sorted(set(keys)) else None


@st.composite
def boundary_shifts(draw: st.DrawFn, original: list[tuple[str, str]]) -> dict[str, Any]:
    string = "".join(f"{k}={v}" for k, v in original)
    starts, position = [], 0
    for key, value in original:
        starts.append(position)
        position += len(key) + 1 + len(value)
    cuts = starts[1:]
    for index in range(len(cuts)):
        move = draw(st.sampled_from(["keep", "keep", "merge", "merge", "shift"]))
        if move == "keep":
            continue
        trial = list(cuts)
        if move == "merge":
            trial[index] = 0  # dropped below: 0 is no cut
        else:
            trial[index] = min(max(cuts[index] + draw(st.integers(-8, 8)), 1), len(string) - 1)
        if _split(string, [c for c in trial if c]) is not None:
            cuts = trial
    forged = _split(string, [c for c in cuts if c])
    assert forged is not None
    assume(forged != original)
    body: dict[str, Any] = {}
    for key, value in forged:
        # Digits may travel as a JSON number: the signature covers the same text.
        as_number = re.fullmatch(r"0|[1-9][0-9]{0,15}", value) and draw(st.booleans())
        body[key] = int(value) if as_number else value
    # Empty fields sign to nothing: a forger may add them, e.g. to put a swallowed name back.
    for name in draw(st.lists(st.sampled_from(["message", "successTime", "timestamp",
                                               "platFormTradeNo", "zz"]), max_size=2)):  # fmt: skip
        body.setdefault(name, "")
    return body


@pytest.fixture
def property_listener(journal_path: Path, placed: dict[str, tuple[str, int]]) -> Iterator[str]:
    app = callback_app(journal_path, SECRET, Protocol(), "/notify")
    with serve_app(app, **server_options()) as base:
        yield base + "/notify"


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.data(), status=st.sampled_from([OK, FAILED]), index=st.integers(0, 2))
def test_no_field_boundary_shift_of_a_genuine_signed_callback_changes_a_row(
    data: st.DataObject, status: str, index: int, placed: dict[str, tuple[str, int]],
    property_listener: str, journal_path: Path,
) -> None:  # fmt: skip
    original = genuine(placed, index, status)
    _, signature = signed_body(original)
    forged = data.draw(boundary_shifts(_segments(original)))
    # The forgery signs to the same string: the signature alone would accept it.
    assert sign({k: v if isinstance(v, str) else json.dumps(v) for k, v in forged.items()},
                SECRET) == signature  # fmt: skip
    before = rows_state(journal_path)
    code, text = post(property_listener, json.dumps({**forged, "sign": signature}).encode())
    assert 400 <= code < 500, (forged, code, text)
    assert rows_state(journal_path) == before


def test_the_property_tests_genuine_callbacks_are_applied(
    placed: dict[str, tuple[str, int]], property_listener: str, journal_path: Path
) -> None:
    # Proves the harness above could see a change: the unshifted originals do change rows.
    for index, status in [(0, OK), (1, FAILED)]:
        assert post(property_listener, signed_body(genuine(placed, index, status))[0])[0] == 200
    outcomes = {r[0]: r[1] for r in rows_state(journal_path)}
    assert [outcomes[t] for t in sorted(placed)][:2] == ["paid", "failed"]


def test_shape_problem_accepts_the_sandboxes_callbacks_and_names_each_refusal() -> None:
    fields = {"status": "0000", "message": "Success", "platFormTradeNo": "sbx0123abcd",
              "tradeNo": "20261201203000123456789", "amount": "1000",
              "successTime": "2026-12-01 20:30:00", "timestamp": "1764621000000",
              "sign": "0" * 32}  # fmt: skip
    at = 1764621000000
    assert shape_problem(fields, at) is None
    assert shape_problem({**fields, "amount": "1000.00"}, at) is None
    assert shape_problem({**fields, "successTime": ""}, at) is None
    assert shape_problem({**fields, "status": "0015timestamp=1"}, at) == (
        "status holds 'timestamp=' (a moved field boundary): '0015timestamp=1'"
    )
    assert shape_problem({**fields, "amount": "NaN"}, at) == (
        "amount 'NaN' is not a whole amount (100 or 100.00)"
    )
    assert shape_problem({**fields, "tradeNo": ""}, at) == "missing field: tradeNo"
    assert shape_problem({**fields, "extra": {"a": "b"}}, at) == "extra is not a single value"
    assert "25 hours old" in str(shape_problem(fields, at + 25 * 3600 * 1000 + 1))
    assert "5 minutes ahead" in str(shape_problem(fields, at - 5 * 60 * 1000 - 1))


def test_the_listen_command_never_prints_the_secret_or_a_sign(
    placed: dict[str, tuple[str, int]], gateway_env: dict[str, str], tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, **gateway_env}
    listener = subprocess.Popen(
        [sys.executable, "-m", "batchpay", "-vv", "listen", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/notify"
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and listener.poll() is None, "no listener"
                time.sleep(0.1)
        good, good_sign = signed_body(genuine(placed))
        forged_fields = genuine(placed, 1)
        _, forged_sign = signed_body(forged_fields)
        forged_fields["status"] = f"0000successTime={forged_fields.pop('successTime')}"
        bad, bad_sign = signed_body(genuine(placed, 2), secret="not-the-secret")
        assert post(url, good)[0] == 200
        assert post(url, json.dumps({**forged_fields, "sign": forged_sign}).encode())[0] == 400
        assert post(url, bad)[0] == 401
        assert post(url, b"[" * 30_000)[0] == 400
    finally:
        listener.terminate()
        stdout, stderr = listener.communicate(timeout=20)
    output = stdout + stderr
    assert "listening on" in stdout
    # The log does speak: what was applied and what was refused, with the reasons.
    assert "effect=applied" in stderr and "moved field boundary" in stderr
    assert "bad signature" in stderr and "more than 64 brackets" in stderr
    for secret_text in (SECRET, good_sign, forged_sign, bad_sign):
        assert secret_text not in output
    assert "Traceback" not in output
    # One line per callback on stdout (issue 14): tradeNo, status, what was done.
    lines = [line for line in stdout.splitlines() if line.startswith("callback ")]
    assert len(lines) == 4, stdout
    good_fields = json.loads(good)
    assert lines[0] == (
        f"callback tradeNo={good_fields['tradeNo']} status={good_fields['status']} HTTP 200: "
        "applied"
    )
    assert "HTTP 400: quarantined: " in lines[1] and "status='0000successTime=" in lines[1]
    assert lines[2].endswith("HTTP 401: refused: bad signature")
