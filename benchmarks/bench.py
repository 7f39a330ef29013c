"""Measure batchpay's heavy steps against plain references, in the same run, on the same data.

Each step times a reference (what the libraries batchpay builds on can do at best) and the
batchpay call doing the same job, and prints both, their ratio and whether it meets the target:

1. read a 100k-row .xlsx as text      fastexcel / python-calamine  vs  sheet.read_sheet
2. read a 1M-row .csv as text         pandas.read_csv(pyarrow)     vs  sheet.read_sheet
3. validate 1M rows                   vectorized pandas rules      vs  validate.validate
4. send, 0 ms gateway, concurrency 64 bare aiohttp loop            vs  payrun.run_batch
5. send, 50 ms gateway, concurrency 32  Little's law (32 / 0.05)   vs  payrun.run_batch
6. write a 100k-row result .xlsx      xlsxwriter write_string      vs  results.write_results
7. peak memory                        limits (1 GiB, 2 GiB)        vs  batchpay run / validate

The data is made here, deterministically (seeded). The gateway is the sandbox
(``python -m batchpay sandbox``) in a process of its own, so that it does not compete with the
client for the GIL. Not part of the test suite. Run:

    python benchmarks/bench.py            # full sizes (a few minutes)
    python benchmarks/bench.py --quick    # ~10x smaller sizes (well under a minute)
    python benchmarks/bench.py --only 2 --only 3   # some steps only
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pandas as pd

from batchpay.config import GatewayConfig, Protocol, SendOptions
from batchpay.journal.rows import JournalRow
from batchpay.outcomes import Outcome
from batchpay.payrun import RunRequest, run_batch
from batchpay.results import ResultRow, write_results
from batchpay.sheets.read import Sheet, read_sheet
from batchpay.sheets.validate import validate
from batchpay.signing import sign
from batchpay.summary import Summary

SEED = 20240531
SECRET = "bench-secret-0123456789abcdef"
MERCHANT = "BENCH-MERCHANT"
NOTIFY_URL = "http://127.0.0.1:9/notify"
REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "schemas" / "sheet.json"
MIB = 1024 * 1024

XLSX_HEADER = ["Employee", "First Name", "Last Name", "Account No", "Mobile", "Email", "Amount",
               "Remark"]  # fmt: skip
CSV_HEADER = [*XLSX_HEADER, "Trade No"]
# The reference's column names: the file's headers as batchpay's canonical names.
CANONICAL = {"First Name": "firstname", "Last Name": "lastname", "Account No": "accountNo",
             "Mobile": "mobile", "Email": "email", "Amount": "amount", "Remark": "remark",
             "Trade No": "tradeNo"}  # fmt: skip
RESULT_COLUMNS = ["tradeNo", "outcome", "code", "msg", "status", "message", "platFormTradeNo",
                  "attempts", "errors"]  # fmt: skip

FIRST = ["Maria", "José", "Ana", "Juan", "Mark", "Grace", "Paolo", "Liza", "Ramon", "Cristina",
         "Miguel", "Angelica", "Noël", "Rosario", "Carlo", "Jasmine", "Antonio", "Bea", "Luis",
         "Patricia"]  # fmt: skip
LAST = ["Santos", "Reyes", "Cruz", "Bautista", "Peña", "García", "Mendoza", "Torres", "Flores",
        "Villanueva", "Ramos", "Aquino", "Castillo", "Rivera", "Domingo", "Fernández", "Navarro",
        "De la Cruz", "Lim", "Tan"]  # fmt: skip


@dataclass(frozen=True)
class Sizes:
    xlsx_rows: int
    csv_rows: int
    send_fast: int
    send_slow: int
    result_rows: int


FULL = Sizes(xlsx_rows=100_000, csv_rows=1_000_000, send_fast=20_000, send_slow=6_400,
             result_rows=100_000)  # fmt: skip
QUICK = Sizes(xlsx_rows=10_000, csv_rows=100_000, send_fast=2_000, send_slow=1_280,
              result_rows=10_000)  # fmt: skip


@dataclass(frozen=True)
class Target:
    """``ratio <op> limit``, e.g. ratio <= 1.3."""

    op: str  # "<=", ">=" or "<"
    limit: float

    def met(self, ratio: float) -> bool:
        if self.op == "<=":
            return ratio <= self.limit
        if self.op == ">=":
            return ratio >= self.limit
        return ratio < self.limit

    def __str__(self) -> str:
        return f"{self.op} {self.limit:g}"

    def show(self, ratio: float) -> str:
        """The ratio with two decimals, or three when two would round it onto the limit."""
        if ratio != ratio:  # NaN: the step failed
            return "-"
        return f"{ratio:.3f}" if round(ratio, 2) == self.limit else f"{ratio:.2f}"


@dataclass(frozen=True)
class Result:
    """One line of the final table."""

    step: str
    unit: str  # of reference and batchpay: "s", "req/s" or "MiB"
    reference: float
    batchpay: float
    ratio: float  # as the target reads it
    target: Target
    note: str = ""
    error: bool = False  # the step failed; note says why

    @property
    def verdict(self) -> str:
        if self.error:
            return "ERROR"
        return "PASS" if self.target.met(self.ratio) else "MISS"

    @property
    def judged(self) -> str:
        return f"ratio {self.target.show(self.ratio)}, target {self.target} {self.verdict}"


# -- helpers ---------------------------------------------------------------------------------


def say(line: str = "") -> None:
    print(line, flush=True)


def secs(value: float) -> str:
    return f"{value:.3f} s" if value < 10 else f"{value:.2f} s"


SLOW = 5.0  # seconds: a call this slow is timed once


def best_of(
    runs: int, *calls: Callable[[], Any], before: Sequence[Callable[[], None] | None] = ()
) -> list[float]:
    """The shortest of ``runs`` timed calls of each of ``calls``, taken in turn (the first,
    the second, ..., then again), so that a change in the machine's load hits all of them
    alike; a call that took over SLOW seconds is not repeated. ``before[i]`` runs untimed
    ahead of each call of ``calls[i]``."""
    best = [float("inf")] * len(calls)
    for _ in range(runs):
        for i, call in enumerate(calls):
            if best[i] > SLOW and best[i] != float("inf"):
                continue
            prepare = before[i] if i < len(before) else None
            if prepare is not None:
                prepare()
            started = time.perf_counter()
            call()
            best[i] = min(best[i], time.perf_counter() - started)
    return best


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> None:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    say(f"machine: nproc {cpus}, {platform.machine()}, {platform.platform()}")
    say(f"python {platform.python_version()} ({sys.executable})")
    packages = ("pandas", "pyarrow", "fastexcel", "python-calamine", "xlsxwriter", "aiohttp",
                "pandera", "numpy")  # fmt: skip
    say("versions: " + ", ".join(f"{p} {version(p)}" for p in packages))
    say(f"batchpay {version('batchpay')} at {REPO} (git {commit})")
    say(f"load average {load()} (other work on the machine makes the figures noisier)")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- data ------------------------------------------------------------------------------------


def _ascii(name: str) -> str:
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().replace(" ", "")


def people(count: int, seed: int = SEED) -> list[list[str]]:
    """``count`` valid beneficiary rows (the XLSX_HEADER columns), the same for the same seed."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, len(FIRST), count)
    last = rng.integers(0, len(LAST), count)
    account_len = rng.integers(12, 17, count)  # "00" + 12..16 digits: 14..18 characters
    account = rng.integers(0, 10**16, count, dtype=np.int64)
    mobile = rng.integers(0, 10**8, count)
    amount = rng.integers(2, 2000, count) * 50  # 100 .. 99,950
    month = rng.integers(1, 13, count)
    emails_first = [_ascii(n).lower() for n in FIRST]
    emails_last = [_ascii(n).lower() for n in LAST]
    rows = []
    for i in range(count):
        f, la = int(first[i]), int(last[i])
        rows.append([
            f"E{i + 1:07d}",
            FIRST[f],
            LAST[la],
            f"00{int(account[i]):016d}"[: 2 + int(account_len[i])],
            f"09{int(mobile[i]):08d}",
            f"{emails_first[f]}.{emails_last[la]}{i}@example.com",
            str(int(amount[i])),
            f"salary 2024-{int(month[i]):02d}",
        ])  # fmt: skip
    return rows


def write_xlsx(path: Path, rows: list[list[str]]) -> None:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = workbook.add_worksheet("Payroll")
    for col, name in enumerate(XLSX_HEADER):
        sheet.write_string(0, col, name)
    for r, row in enumerate(rows, start=1):
        for col, value in enumerate(row):
            sheet.write_string(r, col, value)
    workbook.close()


def write_csv(path: Path, rows: list[list[str]], *, trade_nos: bool) -> None:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(CSV_HEADER if trade_nos else XLSX_HEADER)
        if trade_nos:
            writer.writerows([*row, f"T{SEED}{i:09d}"] for i, row in enumerate(rows))
        else:
            writer.writerows(rows)


@dataclass
class Data:
    folder: Path
    xlsx: Path  # sizes.xlsx_rows rows, XLSX_HEADER
    csv: Path  # sizes.csv_rows rows, CSV_HEADER (with a unique Trade No)
    people: list[list[str]]  # the first max(send sizes, result rows, xlsx rows) rows


def make_data(folder: Path, sizes: Sizes) -> Data:
    started = time.perf_counter()
    rows = people(sizes.csv_rows)
    xlsx = folder / f"payroll-{sizes.xlsx_rows}.xlsx"
    write_xlsx(xlsx, rows[: sizes.xlsx_rows])
    csv_path = folder / f"payroll-{sizes.csv_rows}.csv"
    write_csv(csv_path, rows, trade_nos=True)
    keep = max(sizes.xlsx_rows, sizes.send_fast, sizes.send_slow, sizes.result_rows)
    say(
        f"data: {xlsx.name} ({xlsx.stat().st_size / MIB:.1f} MiB), {csv_path.name} "
        f"({csv_path.stat().st_size / MIB:.1f} MiB), seed {SEED}, made in "
        f"{secs(time.perf_counter() - started)}"
    )
    return Data(folder, xlsx, csv_path, rows[:keep])


@dataclass
class Bench:
    """What the steps share: the data, the sizes, and sheets already read (untimed reuse)."""

    data: Data
    sizes: Sizes
    sheets: dict[Path, Sheet] = field(default_factory=dict)
    frames: dict[Path, pd.DataFrame] = field(default_factory=dict)

    def sheet(self, path: Path) -> Sheet:
        if path not in self.sheets:
            self.sheets[path] = read_sheet(path)
        return self.sheets[path]

    def frame(self, path: Path) -> pd.DataFrame:
        if path not in self.frames:
            self.frames[path] = pd.read_csv(path, engine="pyarrow", dtype=str)
        return self.frames[path]


# -- 1. read .xlsx ---------------------------------------------------------------------------


def step_read_xlsx(bench: Bench) -> list[Result]:
    import fastexcel
    from python_calamine import CalamineWorkbook

    path, rows = bench.data.xlsx, bench.sizes.xlsx_rows

    def fast() -> None:
        fastexcel.read_excel(str(path)).load_sheet(0, dtypes="string").to_arrow()

    def calamine() -> None:
        CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()

    def ours() -> None:
        bench.sheets[path] = read_sheet(Path(path))

    t_fast, t_calamine, t_ours = best_of(3, fast, calamine, ours)
    assert len(bench.sheets[path]) == rows, len(bench.sheets[path])
    reference = min(t_fast, t_calamine)
    which = "fastexcel" if t_fast <= t_calamine else "calamine to_python"
    result = Result(
        f"1 read {rows:,}-row .xlsx", "s", reference, t_ours, t_ours / reference,
        Target("<=", 1.3), f"reference = {which}",
    )  # fmt: skip
    say(
        f"1 read {rows:,}-row .xlsx as text: fastexcel {secs(t_fast)} | calamine to_python "
        f"{secs(t_calamine)} (info) | batchpay read_sheet {secs(t_ours)} | {result.judged} "
        f"(vs the fastest, {which})"
    )
    return [result]


# -- 2. read .csv ----------------------------------------------------------------------------


def step_read_csv(bench: Bench) -> list[Result]:
    path, rows = bench.data.csv, bench.sizes.csv_rows

    def reference() -> None:
        bench.frames[path] = pd.read_csv(path, engine="pyarrow", dtype=str)

    def ours() -> None:
        bench.sheets[path] = read_sheet(Path(path))

    t_ref, t_ours = best_of(3, reference, ours)
    assert len(bench.sheets[path]) == rows, len(bench.sheets[path])
    result = Result(
        f"2 read {rows:,}-row .csv", "s", t_ref, t_ours, t_ours / t_ref, Target("<=", 1.3)
    )
    say(
        f"2 read {rows:,}-row .csv as text: pandas read_csv(pyarrow, dtype=str) {secs(t_ref)} | "
        f"batchpay read_sheet {secs(t_ours)} | {result.judged}"
    )
    return [result]


# -- 3. validate -----------------------------------------------------------------------------


def reference_invalid(frame: pd.DataFrame, rules: dict[str, Any], mobile: str) -> np.ndarray:
    """The sheet rules as plain vectorized pandas: True where a row breaks one."""
    bad = np.zeros(len(frame), dtype=bool)
    for name in ("amount", "accountNo", "mobile", "email", "firstname", "lastname"):
        pattern = mobile if name == "mobile" else rules[name]["pattern"]
        ok = frame[name].str.fullmatch(pattern).fillna(False).astype(bool)
        bad |= ~ok.to_numpy()
    amount = pd.to_numeric(frame["amount"].str.replace(",", ""), errors="coerce")
    bad |= ~(amount >= rules["amount"]["minimum"]).to_numpy()
    trade = frame["tradeNo"]
    bad |= (trade.ne("") & trade.duplicated(keep=False)).to_numpy()
    return bad


def step_validate(bench: Bench) -> list[Result]:
    path, rows = bench.data.csv, bench.sizes.csv_rows
    rules = json.loads(SCHEMA.read_text("utf-8"))["columns"]
    mobile = "0[0-9]{9}"
    # Read beforehand, untimed (reused from step 2 when it ran).
    sheet = bench.sheet(path)
    named = bench.frame(path).rename(columns=CANONICAL)[list(CANONICAL.values())]
    box: dict[str, Any] = {}

    def reference() -> None:
        box["reference"] = reference_invalid(named, rules, mobile)

    def ours() -> None:
        box["ours"] = validate(sheet)

    t_ref, t_ours = best_of(3, reference, ours)
    # Free the 1M-row sheet and frame before the next steps.
    bench.sheets.pop(path, None)
    bench.frames.pop(path, None)
    ref_invalid = int(box["reference"].sum())
    our_invalid = int(box["ours"].invalid.sum())
    check = "same" if ref_invalid == our_invalid else "DIFFERENT"
    result = Result(
        f"3 validate {rows:,} rows", "s", t_ref, t_ours, t_ours / t_ref, Target("<=", 1.2),
        f"invalid rows: reference {ref_invalid}, batchpay {our_invalid}",
    )  # fmt: skip
    say(
        f"3 validate {rows:,} rows: pandas rules {secs(t_ref)} | batchpay validate "
        f"{secs(t_ours)} | {result.judged} (invalid rows: reference {ref_invalid}, batchpay "
        f"{our_invalid}: {check})"
    )
    return [result]


# -- 4, 5. send ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHPAY_")}
    env.update(BATCHPAY_SECRET=SECRET, BATCHPAY_MERCHANT_NO=MERCHANT)
    return env


class Sandbox:
    """``python -m batchpay sandbox`` in its own process; stopped with SIGINT."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.process: subprocess.Popen[str] | None = None
        self.urls: dict[str, str] = {}

    def __enter__(self) -> Sandbox:
        command = [sys.executable, "-m", "batchpay", "sandbox", "--port", str(free_port())]
        if self.latency:
            command += ["--latency", f"{self.latency:g}"]
        self.process = subprocess.Popen(
            command, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        for line in self.process.stdout:
            found = re.match(r"\s*export (BATCHPAY_\w+)=(\S+)", line)
            if found:
                self.urls[found[1]] = found[2]
            if "BATCHPAY_NOTIFY_URL" in self.urls:
                break
        if "BATCHPAY_URL" not in self.urls:
            self.__exit__()
            raise RuntimeError("the sandbox gateway did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    @property
    def config(self) -> GatewayConfig:
        return GatewayConfig(
            payout_url=self.urls["BATCHPAY_URL"], query_url=self.urls.get("BATCHPAY_QUERY_URL"),
            merchant_no=MERCHANT, secret=SECRET, notify_url=NOTIFY_URL, protocol=Protocol(),
        )  # fmt: skip


def payout_fields(rows: list[list[str]], tag: str) -> list[dict[str, str]]:
    """The payout request fields batchpay sends for these rows, with distinct tradeNos."""
    fields = []
    for i, row in enumerate(rows):
        _, first, last, account, mobile, email, amount, remark = row
        fields.append({
            "amount": amount, "accountNo": account, "mobile": mobile, "email": email,
            "firstname": first, "lastname": last, "tradeNo": f"{tag}{i:09d}",
            "notifyUrl": NOTIFY_URL, "remark": remark,
        })  # fmt: skip
    return fields


async def bare_loop(url: str, rows: list[dict[str, str]], concurrency: int) -> tuple[float, int]:
    """Post every row once, signed, ``concurrency`` at a time: (seconds, accepted count)."""
    queue = iter(rows)
    headers = {"merchantNo": MERCHANT}
    accepted = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal accepted
        for fields in queue:
            body = dict(fields)
            body["timestamp"] = str(time.time_ns() // 1_000_000)
            body["sign"] = sign(body, SECRET)
            async with session.post(url, json=body, headers=headers) as response:
                answer = json.loads(await response.read())
            accepted += answer.get("code") == "0000"

    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return time.perf_counter() - started, accepted


_counter = iter(range(10**6))


def fresh(folder: Path, stem: str, suffix: str) -> Path:
    return folder / f"{stem}-{next(_counter)}{suffix}"


def timed_run(request: RunRequest) -> tuple[float, Summary]:
    started = time.perf_counter()
    summary = run_batch(request, confirm=lambda confirmation: None, say=lambda line: None)
    return time.perf_counter() - started, summary


@dataclass(frozen=True)
class SendFigures:
    bare_rps: float
    bare_seconds: float
    full_seconds: float
    dry_seconds: float
    requests: int
    sign_seconds: float

    @property
    def send_seconds(self) -> float:
        return self.full_seconds - self.dry_seconds

    @property
    def rps(self) -> float:
        return self.requests / self.send_seconds


def measure_send(
    data: Data, count: int, concurrency: int, latency: float, runs: int
) -> SendFigures:
    """Rounds of: the bare loop, a dry run, a real run, against one sandbox process; the best
    of each. Interleaved, so that a drift (the sandbox's growing order book) hits all three."""
    rows = data.people[:count]
    source = fresh(data.folder, f"send-{count}", ".csv")
    write_csv(source, rows, trade_nos=False)
    bare_best = full_best = dry_best = float("inf")
    requests = 0
    with Sandbox(latency) as sandbox:
        config = sandbox.config
        base = RunRequest(
            file=source, output=source, journal=source,
            options=SendOptions(concurrency=concurrency), protocol=Protocol(), config=config,
        )  # fmt: skip
        # Warm up both processes, untimed: the first thousands of requests run slower.
        # About a second's worth, at most 5,000.
        size = min(len(data.people), 5000, int(concurrency / latency) if latency else 5000)
        warm = payout_fields(data.people[:size], f"warm{latency:g}n")
        asyncio.run(bare_loop(config.payout_url, warm, concurrency))
        for run in range(runs):
            fields = payout_fields(rows, f"bare{latency:g}r{run}n")
            seconds, accepted = asyncio.run(bare_loop(config.payout_url, fields, concurrency))
            if accepted != count:
                raise RuntimeError(f"bare loop: {accepted} of {count} accepted")
            bare_best = min(bare_best, seconds)

            dry = replace(base, dry_run=True, journal=fresh(data.folder, "journal", ".sqlite3"),
                          output=fresh(data.folder, "dry", ".result.csv"))  # fmt: skip
            seconds, summary = timed_run(dry)
            if summary.counts != {"pending": count}:
                raise RuntimeError(f"dry run: unexpected outcomes {summary.counts}")
            dry_best = min(dry_best, seconds)

            full = replace(base, journal=fresh(data.folder, "journal", ".sqlite3"),
                           output=fresh(data.folder, "sent", ".result.csv"))  # fmt: skip
            seconds, summary = timed_run(full)
            if summary.counts != {"processing": count} or summary.requests != count:
                raise RuntimeError(
                    f"run: {summary.requests} requests, outcomes {summary.counts} "
                    f"(stopped: {summary.stop_reason or 'no'})"
                )
            full_best = min(full_best, seconds)
            requests = summary.requests
    # The dry run signs every row, so subtracting it also removes one signing pass.
    sample = payout_fields(rows, "s")
    started = time.perf_counter()
    for fields in sample:
        sign(fields, SECRET)
    sign_seconds = time.perf_counter() - started
    return SendFigures(count / bare_best, bare_best, full_best, dry_best, requests, sign_seconds)


def describe_send(figures: SendFigures, runs: int) -> str:
    return (
        f"batchpay run_batch {secs(figures.full_seconds)} - dry run "
        f"{secs(figures.dry_seconds)} = send {secs(figures.send_seconds)} for "
        f"{figures.requests:,} requests = {figures.rps:,.0f} req/s (best of {runs}; the dry run "
        f"signs every row, which alone takes {secs(figures.sign_seconds)})"
    )


def step_send_fast(bench: Bench) -> list[Result]:
    runs, count = 3, bench.sizes.send_fast
    f = measure_send(bench.data, count, concurrency=64, latency=0.0, runs=runs)
    result = Result(
        f"4 send {count:,}, 0 ms, c=64", "req/s", f.bare_rps, f.rps, f.rps / f.bare_rps,
        Target(">=", 0.85),
    )  # fmt: skip
    say(
        f"4 send {count:,} rows, 0 ms gateway, concurrency 64: bare aiohttp "
        f"{secs(f.bare_seconds)} = {f.bare_rps:,.0f} req/s (best of {runs}) | "
        f"{describe_send(f, runs)} | {result.judged}"
    )
    return [result]


def step_send_slow(bench: Bench) -> list[Result]:
    runs, count = 1, bench.sizes.send_slow
    concurrency, latency = 32, 0.05
    bound = concurrency / latency
    f = measure_send(bench.data, count, concurrency=concurrency, latency=latency, runs=runs)
    result = Result(
        f"5 send {count:,}, 50 ms, c=32", "req/s", bound, f.rps, f.rps / bound,
        Target(">=", 0.9),
        f"reference = Little's law; bare aiohttp {f.bare_rps:,.0f} req/s = "
        f"{f.bare_rps / bound:.2f} of it, batchpay = {f.rps / f.bare_rps:.2f} of bare",
    )  # fmt: skip
    say(
        f"5 send {count:,} rows, 50 ms gateway, concurrency 32: Little's law "
        f"{concurrency}/{latency:g} = {bound:,.0f} req/s | bare aiohttp (info) "
        f"{secs(f.bare_seconds)} = {f.bare_rps:,.0f} req/s ({f.bare_rps / bound:.2f} of the "
        f"bound) | {describe_send(f, runs)} | {result.judged}"
    )
    return [result]


# -- 6. write results ------------------------------------------------------------------------


def journal_rows(sheet: Sheet) -> list[ResultRow]:
    rng = np.random.default_rng(SEED + 6)
    platform_numbers = rng.integers(0, 2**62, len(sheet), dtype=np.int64)
    amount = sheet.columns["amount"]
    values = sheet.frame[amount].to_numpy()
    results = []
    for i in range(len(sheet)):
        row = JournalRow(
            batch_id="bench", position=i, sheet_row=int(sheet.row_numbers[i]),
            trade_no=f"20240531120000{i:010d}", assigned=True, amount=int(values[i]), fields={},
            outcome=Outcome.PROCESSING, code="0000", msg="success", status="0015",
            message="Processing", platform_trade_no=f"sbx{int(platform_numbers[i]):016x}",
            attempts=1,
        )  # fmt: skip
        results.append(ResultRow(row, ""))
    return results


def reference_cells(sheet: Sheet, results: list[ResultRow]) -> Iterator[list[str]]:
    """The same 17 text cells per row that the result file holds."""
    values = sheet.frame.astype(str).to_numpy().tolist()
    for cells, result in zip(values, results, strict=True):
        j = result.journal
        assert j is not None
        yield [*cells, j.trade_no or "", j.outcome.value, j.code, j.msg, j.status, j.message,
               j.platform_trade_no, str(j.attempts), result.errors]  # fmt: skip


def reference_write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = workbook.add_worksheet("Results")
    write = sheet.write_string
    for col, name in enumerate(header):
        write(0, col, name)
    for r, row in enumerate(rows, start=1):
        for col, value in enumerate(row):
            write(r, col, value)
    workbook.close()


def step_write_results(bench: Bench) -> list[Result]:
    rows = bench.sizes.result_rows
    sheet = bench.sheet(bench.data.xlsx)  # step 1's sheet, or read now, untimed
    assert len(sheet) == rows, (len(sheet), rows)
    results = journal_rows(sheet)
    header = [*sheet.headers, *RESULT_COLUMNS]
    cells = list(reference_cells(sheet, results))
    assert len(header) == len(cells[0]) == 17, (len(header), len(cells[0]))
    ref_path = bench.data.folder / "reference.result.xlsx"
    our_path = bench.data.folder / "batchpay.result.xlsx"
    t_ref, t_ours = best_of(
        3,
        lambda: reference_write(ref_path, header, cells),
        lambda: write_results(our_path, sheet, results),
        before=[lambda: ref_path.unlink(missing_ok=True), lambda: our_path.unlink(missing_ok=True)],
    )
    result = Result(
        f"6 write {rows:,}-row result .xlsx", "s", t_ref, t_ours, t_ours / t_ref,
        Target("<=", 1.2),
    )  # fmt: skip
    say(
        f"6 write {rows:,}-row x {len(header)} result .xlsx: xlsxwriter write_string "
        f"{secs(t_ref)} ({ref_path.stat().st_size / MIB:.1f} MiB) | batchpay write_results "
        f"{secs(t_ours)} ({our_path.stat().st_size / MIB:.1f} MiB) | {result.judged}"
    )
    return [result]


# -- 7. memory -------------------------------------------------------------------------------


# A child's ru_maxrss starts from the memory of the process that exec'd it (Linux records the
# old image's high-water mark at exec), so the command is started by a small wrapper process,
# not by this one, which holds the benchmark's data.
WRAPPER = """
import os, subprocess, sys
process = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(process.pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def peak_rss(command: list[str], log: Path) -> tuple[int, float, int]:
    """Run ``command``: (peak RSS in KiB of it and what it waited for, seconds, exit code)."""
    figures = log.with_suffix(".rss")
    with log.open("wb") as out:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", WRAPPER, str(figures), *command], env=clean_env(), stdout=out,
            stderr=subprocess.STDOUT, check=True,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    kib, code = figures.read_text().split()
    return int(kib), seconds, int(code)


def step_memory_run(bench: Bench) -> list[Result]:
    data, rows = bench.data, bench.sizes.xlsx_rows
    journal = fresh(data.folder, "journal", ".sqlite3")
    output = fresh(data.folder, "memory", ".result.xlsx")
    command = [sys.executable, "-m", "batchpay", "run", str(data.xlsx), "--sandbox", "--yes",
               "--journal", str(journal), "-o", str(output)]  # fmt: skip
    log = data.folder / "run.log"
    kib, seconds, code = peak_rss(command, log)
    if code != 0:
        say(f"7 `batchpay run` exited {code}:\n{log.read_text(errors='replace')[-2000:]}")
    mib, limit = kib / 1024, 1024.0
    result = Result(
        f"7 peak RSS run {rows:,} .xlsx", "MiB", limit, mib, mib / limit, Target("<", 1.0),
        f"reference = limit 1 GiB; exit {code}, took {secs(seconds)}", error=code != 0,
    )  # fmt: skip
    say(
        f"7 peak RSS of `batchpay run` on the {rows:,}-row .xlsx (--sandbox: in-process gateway, "
        f"concurrency 8): {mib:,.0f} MiB of 1,024 MiB, took {secs(seconds)}, exit {code} | "
        f"{result.judged}"
    )
    return [result]


def step_memory_validate(bench: Bench) -> list[Result]:
    data, rows = bench.data, bench.sizes.csv_rows
    command = [sys.executable, "-m", "batchpay", "validate", str(data.csv)]
    kib, seconds, code = peak_rss(command, data.folder / "validate.log")
    mib, limit = kib / 1024, 2048.0
    result = Result(
        f"7 peak RSS validate {rows:,} .csv", "MiB", limit, mib, mib / limit, Target("<", 1.0),
        f"reference = limit 2 GiB; exit {code}, took {secs(seconds)}", error=code != 0,
    )  # fmt: skip
    say(
        f"7 peak RSS of `batchpay validate` on the {rows:,}-row .csv: {mib:,.0f} MiB of "
        f"2,048 MiB, took {secs(seconds)}, exit {code} | {result.judged}"
    )
    say(
        f"  (no `batchpay run` of the {rows:,}-row .csv: sending {rows:,} requests through the "
        "sandbox would take too long, so the run's memory is measured on the .xlsx above)"
    )
    return [result]


# -- main ------------------------------------------------------------------------------------

STEPS: list[tuple[str, Callable[[Bench], list[Result]]]] = [
    ("1 read .xlsx", step_read_xlsx),
    ("2 read .csv", step_read_csv),
    ("3 validate", step_validate),
    ("4 send, 0 ms", step_send_fast),
    ("5 send, 50 ms", step_send_slow),
    ("6 write results", step_write_results),
    ("7 memory, run", step_memory_run),
    ("7 memory, validate", step_memory_validate),
]


def figure(value: float, unit: str) -> str:
    if value != value:  # NaN: the step failed
        return "-"
    if unit == "s":
        return secs(value)
    if unit == "req/s":
        return f"{value:,.0f} req/s"
    return f"{value:,.0f} MiB"


def table(results: list[Result]) -> None:
    rows = [("step", "reference", "batchpay", "ratio", "target", "", "note")]
    rows += [
        (r.step, figure(r.reference, r.unit), figure(r.batchpay, r.unit),
         r.target.show(r.ratio), str(r.target), r.verdict, r.note)
        for r in results
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        cells = [c.ljust(w) if i in (0, 5, 6) else c.rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]  # fmt: skip
        say("  ".join(cells).rstrip())
        if n == 0:
            say("  ".join("-" * w for w in widths))


def run_steps(bench: Bench, only: list[str] | None = None) -> list[Result]:
    """Every step (or those whose number is in ``only``), each on its own: one that fails is
    reported and the others still run."""
    results: list[Result] = []
    for name, step in STEPS:
        if only and name.split()[0] not in only:
            continue
        try:
            results.extend(step(bench))
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:150]
            say(f"{name}: ERROR {reason}")
            nan = float("nan")
            results.append(Result(name, "s", nan, nan, nan, Target("<=", 0), reason, error=True))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="~10x smaller sizes")
    parser.add_argument(
        "--only",
        action="append",
        metavar="N",
        choices=list("1234567"),
        help="run only step N (repeatable); the data is made all the same",
    )
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="write the data and outputs to DIR and keep them")  # fmt: skip
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    say(f"batchpay benchmark, {'quick' if args.quick else 'full'} sizes, {time.strftime('%F %T')}")
    machine()
    with tempfile.TemporaryDirectory(prefix="batchpay-bench-") as temp:
        folder = args.keep or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        results = run_steps(Bench(make_data(folder, sizes), sizes), args.only)
    say()
    table(results)
    verdicts = [r.verdict for r in results]
    counts = ", ".join(f"{verdicts.count(v)} {v}" for v in ("PASS", "MISS", "ERROR"))
    say(f"\n{counts}; total {secs(time.perf_counter() - started)}; load average {load()}")


if __name__ == "__main__":
    main()
