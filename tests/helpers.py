"""Plain helpers for the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import csv
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from click.testing import CliRunner, Result

from batchpay.cli import cli
from batchpay.sandbox import Faults, SandboxGateway, SandboxServer

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
