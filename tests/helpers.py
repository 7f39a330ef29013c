"""Plain helpers for the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import csv
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from click.testing import CliRunner, Result

from batchpay.cli.main import cli
from batchpay.sandbox.gateway import Faults, SandboxGateway
from batchpay.sandbox.server import SandboxServer

MERCHANT = "M-TEST-001"
SECRET = "test-secret-Zq8w"
HEADER = [
    "Employee",
    "First Name",
    "Last Name",
    "Account No",
    "Mobile",
    "Email",
    "Amount",
    "Remark",
]


def payroll_rows(count: int, *, start: int = 0) -> list[list[str]]:
    rows = []
    for i in range(start, start + count):
        rows.append(
            [
                f"E{i:05d}", f"Siti{i}", "Rahayu", f"00{880123456789000 + i}", f"09{i % 10**8:08d}",
                f"siti{i}@example.co.id", str(1000 + i), f"Payroll {i}",
            ]
        )  # fmt: skip
    return rows


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


@dataclass
class Sandbox:
    gateway: SandboxGateway
    server: SandboxServer

    @property
    def faults(self) -> Faults:
        return self.gateway.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self.gateway.faults = value


def read_result(path: Path) -> list[dict[str, str]]:
    """A result file's rows as dicts of text (.xlsx or .csv)."""
    if path.suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as stream:
            return list(csv.DictReader(stream))
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True)
    rows = list(workbook.active.iter_rows(values_only=True))
    workbook.close()
    header = [str(h) for h in rows[0]]
    return [
        dict(zip(header, ["" if v is None else str(v) for v in row], strict=True))
        for row in rows[1:]
    ]


@contextmanager
def serve_app(app: web.Application, **runner_options: Any) -> Iterator[str]:
    """Any aiohttp app on a loopback port, from a thread of its own; yields its base URL.
    ``runner_options`` go to ``web.AppRunner`` (and from there to each connection's handler)."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, **{"access_log": None, **runner_options})
    ready = threading.Event()
    port: list[int] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port.append(runner.addresses[0][1])
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield f"http://127.0.0.1:{port[0]}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@contextmanager
def sandbox_process(
    env: dict[str, str], cwd: Path, *options: str
) -> Iterator[tuple[dict[str, str], subprocess.Popen[str]]]:
    """``batchpay sandbox`` in a process of its own; yields the settings it prints (its
    ``export`` lines) and the process. Stopped with Ctrl-C (SIGINT) at the end."""
    server = subprocess.Popen(
        [sys.executable, "-m", "batchpay", "sandbox", *options], env=env, cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        exports: dict[str, str] = {}
        assert server.stdout is not None
        while "BATCHPAY_JOURNAL" not in exports:  # the last line it prints
            line = server.stdout.readline()
            assert line, server.stderr.read() if server.stderr else "sandbox ended"
            match = re.match(r"\s+export (BATCHPAY_\w+)=(\S+)", line)
            if match:
                exports[match[1]] = match[2]
        yield exports, server
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=10)


def new_user_env(home: Path) -> dict[str, str]:
    """The environment of a new user: no BATCHPAY_* settings, a home (and so a user data
    directory) of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHPAY_")}
    env["HOME"] = str(home)
    env.pop("XDG_DATA_HOME", None)
    env.pop("XDG_CONFIG_HOME", None)
    return env


def batchpay(
    env: dict[str, str], cwd: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The installed program in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "batchpay", *args], env=env, cwd=cwd, capture_output=True,
        text=True, timeout=timeout,
    )  # fmt: skip


def post(url: str, body: bytes) -> tuple[int, str]:
    """POST a JSON body over real HTTP; the status and the text of the answer (4xx too)."""
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
