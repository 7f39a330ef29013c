"""Measure batchpay against the budgets of issue 12, each a ratio to a plain reference timed in
the same run on the same data:

1. dry run, 100k-row .csv in, result .xlsx out   reference_dryrun.py   <= 1.3x (wall, process)
2. validate 300k rows                            reference_validate.py <= 1.5x (wall, process)
3. send, 0 ms gateway: client CPU per request    bare_send.py          <= 1.6x
   send, 50 ms gateway, concurrency 32: req/s    bare_send.py          >= 0.95x
4. peak RSS: 100k-row `run --sandbox --yes`, 1M-row `validate`        < 1 GiB, < 2 GiB

Every figure is of a whole process (`python -m batchpay ...` or a reference script), started
through a small wrapper that reads its wall time, CPU time and peak RSS (os.wait4). Reference
and batchpay run in turn, best of --runs. The bench imports nothing from batchpay, so it
survives the package's modules moving. The data is made here, seeded. The gateway for step 3
is `python -m batchpay sandbox` in its own process. Not part of the test suite. Run:

    python benchmarks/bench.py              # full sizes (about 6 minutes on 2 cores)
    python benchmarks/bench.py --quick      # ~10x smaller sizes (under a minute)
    python benchmarks/bench.py --only 3     # some steps only (repeatable)
    python benchmarks/bench.py --keep DIR   # keep the data, outputs and logs in DIR
"""

from __future__ import annotations

import argparse
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
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

SEED = 20240531
SECRET = "bench-secret-0123456789abcdef"
MERCHANT = "BENCH-MERCHANT"
NOTIFY_URL = "http://127.0.0.1:9/notify"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MIB = 1024 * 1024
BATCHPAY = [sys.executable, "-m", "batchpay"]

HEADER = ["Employee", "First Name", "Last Name", "Account No", "Mobile", "Email", "Amount",
          "Remark"]  # fmt: skip
FIRST = ["Maria", "José", "Ana", "Juan", "Mark", "Grace", "Paolo", "Liza", "Ramon", "Cristina",
         "Miguel", "Angelica", "Noël", "Rosario", "Carlo", "Jasmine", "Antonio", "Bea", "Luis",
         "Patricia"]  # fmt: skip
LAST = ["Santos", "Reyes", "Cruz", "Bautista", "Peña", "García", "Mendoza", "Torres", "Flores",
        "Villanueva", "Ramos", "Aquino", "Castillo", "Rivera", "Domingo", "Fernández", "Navarro",
        "De la Cruz", "Lim", "Tan"]  # fmt: skip


@dataclass(frozen=True)
class Sizes:
    dry_run: int
    validate: int
    send_fast: int
    send_slow: int
    memory_run: int
    memory_validate: int


FULL = Sizes(dry_run=100_000, validate=300_000, send_fast=20_000, send_slow=6_400,
             memory_run=100_000, memory_validate=1_000_000)  # fmt: skip
QUICK = Sizes(dry_run=10_000, validate=30_000, send_fast=2_000, send_slow=1_280,
              memory_run=10_000, memory_validate=100_000)  # fmt: skip


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
    unit: str  # of reference and batchpay: "s", "req/s", "µs" or "MiB"
    reference: float
    batchpay: float
    target: Target
    note: str = ""
    error: bool = False  # the step failed; note says why

    @property
    def ratio(self) -> float:
        return self.batchpay / self.reference if self.reference else float("nan")

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


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


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
    packages = ("pandas", "pyarrow", "python-calamine", "xlsxwriter", "aiohttp", "pandera",
                "numpy")  # fmt: skip
    say("versions: " + ", ".join(f"{p} {version(p)}" for p in packages))
    say(f"batchpay {version('batchpay')} at {REPO} (git {commit})")
    say(f"load average {load()} (other work on the machine makes the figures noisier)")


_counter = iter(range(10**6))


def fresh(folder: Path, stem: str, suffix: str) -> Path:
    return folder / f"{stem}-{next(_counter)}{suffix}"


def clean_env(folder: Path, **settings: str) -> dict[str, str]:
    """The environment of every process: no BATCHPAY_ settings but the bench's own, and the
    user data directory inside the bench's folder (nothing lands in the real one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHPAY_")}
    env.update(
        BATCHPAY_SECRET=SECRET, BATCHPAY_MERCHANT_NO=MERCHANT, BATCHPAY_NOTIFY_URL=NOTIFY_URL,
        BATCHPAY_URL="http://127.0.0.1:9/v1/paypro/payOut", XDG_DATA_HOME=str(folder / "xdg"),
        XDG_CONFIG_HOME=str(folder / "xdg-config"),
    )  # fmt: skip
    env.update(settings)
    return env


# -- whole processes -------------------------------------------------------------------------

# A child's ru_maxrss starts from the memory of the process that exec'd it (Linux records the
# old image's high-water mark at exec), so every command is started by a small wrapper process,
# not by this one, which holds the benchmark's data. The wrapper times the child alone.
WRAPPER = """
import os, subprocess, sys, time
started = time.perf_counter()
process = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(process.pid, 0)
wall = time.perf_counter() - started
with open(sys.argv[1], "w") as out:
    out.write(f"{wall} {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss} "
              f"{os.waitstatus_to_exitcode(status)}")
"""


@dataclass(frozen=True)
class Process:
    wall: float  # seconds
    cpu: float  # seconds, user + system, of the command and the children it waited for
    rss: int  # peak, KiB
    code: int
    output: str  # stdout and stderr


def run(command: list[str], env: dict[str, str], log: Path, *, expect: int = 0) -> Process:
    """Run ``command`` to its end; RuntimeError (with the end of its output) unless it exits
    ``expect``."""
    figures = log.with_suffix(".figures")
    with log.open("wb") as out:
        subprocess.run(
            [sys.executable, "-c", WRAPPER, str(figures), *command], env=env, stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=True,
        )  # fmt: skip
    wall, cpu, rss, code = figures.read_text().split()
    output = log.read_text("utf-8", errors="replace")
    if int(code) != expect:
        tail = " | ".join(output.strip().splitlines()[-3:])
        what = " ".join(Path(c).name for c in command[1:4] if c != "-m")
        raise RuntimeError(f"{what} exited {code}: {tail}")
    return Process(float(wall), float(cpu), int(rss), int(code), output)


def best(runs: int, *makers: Callable[[], Process]) -> list[Process]:
    """Each maker run ``runs`` times, in turn (the first, the second, ..., then again), so that
    a change in the machine's load hits all of them alike: for each, the run of least wall
    time."""
    found: list[list[Process]] = [[] for _ in makers]
    for _ in range(runs):
        for i, make in enumerate(makers):
            found[i].append(make())
    return [min(p, key=lambda p: p.wall) for p in found]


def summary_json(output: str) -> dict[str, object]:
    """The ``--json`` summary in a command's output (the one line that is a JSON object)."""
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            found: dict[str, object] = json.loads(line)
            return found
    raise RuntimeError("no JSON summary in the output")


# -- data ------------------------------------------------------------------------------------


def _ascii(name: str) -> str:
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().replace(" ", "")


def people(count: int, seed: int = SEED) -> list[list[str]]:
    """``count`` valid beneficiary rows (the HEADER columns), the same for the same seed."""
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


def write_csv(path: Path, rows: list[list[str]], *, trade_nos: bool) -> Path:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow([*HEADER, "Trade No"] if trade_nos else HEADER)
        if trade_nos:
            writer.writerows([*row, f"T{SEED}{i:09d}"] for i, row in enumerate(rows))
        else:
            writer.writerows(rows)
    return path


def write_xlsx(path: Path, rows: list[list[str]]) -> Path:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = workbook.add_worksheet("Payroll")
    for col, name in enumerate(HEADER):
        sheet.write_string(0, col, name)
    for r, row in enumerate(rows, start=1):
        for col, value in enumerate(row):
            sheet.write_string(r, col, value)
    workbook.close()
    return path


@dataclass
class Bench:
    folder: Path
    sizes: Sizes
    runs: int
    rows: list[list[str]]  # max(sizes) valid rows

    def csv(self, count: int, *, trade_nos: bool) -> Path:
        """The first ``count`` rows as a CSV (made once)."""
        path = self.folder / f"payroll-{count}{'-tradeno' if trade_nos else ''}.csv"
        if not path.exists():
            write_csv(path, self.rows[:count], trade_nos=trade_nos)
        return path

    def xlsx(self, count: int) -> Path:
        path = self.folder / f"payroll-{count}.xlsx"
        if not path.exists():
            write_xlsx(path, self.rows[:count])
        return path

    def env(self, **settings: str) -> dict[str, str]:
        return clean_env(self.folder, **settings)


def size(path: Path) -> str:
    return f"{path.name} ({path.stat().st_size / MIB:.1f} MiB)"


# -- 1. dry run ------------------------------------------------------------------------------


def step_dry_run(bench: Bench) -> list[Result]:
    count = bench.sizes.dry_run
    source = bench.csv(count, trade_nos=False)
    folder, env = bench.folder, bench.env()

    def reference() -> Process:
        command = [sys.executable, str(HERE / "reference_dryrun.py"), str(source),
                   str(fresh(folder, "ref-dry", ".result.xlsx")),
                   str(fresh(folder, "ref-journal", ".sqlite3"))]  # fmt: skip
        return run(command, env, fresh(folder, "ref-dry", ".log"))

    def ours() -> Process:
        command = [*BATCHPAY, "run", str(source), "--dry-run", "--json",
                   "-o", str(fresh(folder, "dry", ".result.xlsx")),
                   "--journal", str(fresh(folder, "journal", ".sqlite3"))]  # fmt: skip
        done = run(command, env, fresh(folder, "dry", ".log"))
        counts = summary_json(done.output).get("counts")
        if counts != {"pending": count}:
            raise RuntimeError(f"dry run: outcomes {counts}, expected {count} pending")
        return done

    ref, our = best(bench.runs, reference, ours)
    result = Result(
        f"1 dry run {count:,} .csv -> .xlsx", "s", ref.wall, our.wall, Target("<=", 1.3),
        f"CPU: reference {secs(ref.cpu)}, batchpay {secs(our.cpu)}",
    )  # fmt: skip
    say(
        f"1 dry run, {size(source)} in, result .xlsx out, whole processes: reference_dryrun.py "
        f"{secs(ref.wall)} (CPU {secs(ref.cpu)}, {ref.rss / 1024:,.0f} MiB) | batchpay run "
        f"--dry-run {secs(our.wall)} (CPU {secs(our.cpu)}, {our.rss / 1024:,.0f} MiB) | "
        f"{result.judged} (best of {bench.runs})"
    )
    return [result]


# -- 2. validate -----------------------------------------------------------------------------


def step_validate(bench: Bench) -> list[Result]:
    count = bench.sizes.validate
    source = bench.csv(count, trade_nos=True)
    folder, env = bench.folder, bench.env()
    outputs: dict[str, str] = {}

    def reference() -> Process:
        command = [sys.executable, str(HERE / "reference_validate.py"), str(source)]
        done = run(command, env, fresh(folder, "ref-validate", ".log"))
        outputs["reference"] = done.output.strip().splitlines()[-1]
        return done

    def ours() -> Process:
        done = run([*BATCHPAY, "validate", str(source)], env, fresh(folder, "validate", ".log"))
        outputs["batchpay"] = done.output.strip().splitlines()[-1]
        return done

    ref, our = best(bench.runs, reference, ours)
    result = Result(
        f"2 validate {count:,} rows", "s", ref.wall, our.wall, Target("<=", 1.5),
        f"CPU: reference {secs(ref.cpu)}, batchpay {secs(our.cpu)}",
    )  # fmt: skip
    say(
        f"2 validate {size(source)}, whole processes: reference_validate.py {secs(ref.wall)} "
        f"(CPU {secs(ref.cpu)}) | batchpay validate {secs(our.wall)} (CPU {secs(our.cpu)}) | "
        f"{result.judged} (best of {bench.runs})"
    )
    say(f"  reference said: {outputs['reference']}")
    say(f"  batchpay said:  {outputs['batchpay']}")
    return [result]


# -- 3. send ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Sandbox:
    """``python -m batchpay sandbox`` in its own process; stopped with SIGINT."""

    def __init__(self, env: dict[str, str], latency: float = 0.0) -> None:
        self.env = env
        self.latency = latency
        self.process: subprocess.Popen[str] | None = None
        self.settings: dict[str, str] = {}

    def __enter__(self) -> Sandbox:
        command = [*BATCHPAY, "sandbox", "--port", str(free_port())]
        if self.latency:
            command += ["--latency", f"{self.latency:g}"]
        self.process = subprocess.Popen(
            command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        for line in self.process.stdout:
            found = re.match(r"\s*export (BATCHPAY_\w+)=(\S+)", line)
            if found:
                self.settings[found[1]] = found[2]
            if "BATCHPAY_JOURNAL" in self.settings:
                break
        # The journal is the bench's own (--journal); the other settings point at the sandbox.
        self.settings.pop("BATCHPAY_JOURNAL", None)
        if "BATCHPAY_URL" not in self.settings:
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


@dataclass(frozen=True)
class Send:
    """Best of each of the four processes: the bare loop with and without the posting, and
    batchpay's run and dry run of the same file."""

    count: int
    bare: Process
    bare_idle: Process
    full: Process
    dry: Process

    @property
    def bare_cpu(self) -> float:
        """Client CPU per request in µs: of the posting alone (the same process minus its
        twin that builds and signs every request but posts none)."""
        return (self.bare.cpu - self.bare_idle.cpu) / self.count * 1e6

    @property
    def cpu(self) -> float:
        """batchpay's: the run minus the dry run of the same file (which reads, validates,
        plans in the journal, signs every row and writes the result file)."""
        return (self.full.cpu - self.dry.cpu) / self.count * 1e6

    @property
    def bare_rps(self) -> float:
        return self.count / (self.bare.wall - self.bare_idle.wall)

    @property
    def rps(self) -> float:
        return self.count / (self.full.wall - self.dry.wall)

    def describe(self) -> str:
        return (
            f"bare_send.py {secs(self.bare.wall)} - without posting {secs(self.bare_idle.wall)} "
            f"= {self.bare_rps:,.0f} req/s, CPU {secs(self.bare.cpu)} - "
            f"{secs(self.bare_idle.cpu)} = {self.bare_cpu:,.0f} µs/request | batchpay run "
            f"{secs(self.full.wall)} - dry run {secs(self.dry.wall)} = {self.rps:,.0f} req/s, "
            f"CPU {secs(self.full.cpu)} - {secs(self.dry.cpu)} = {self.cpu:,.0f} µs/request"
        )


def measure_send(bench: Bench, count: int, concurrency: int, latency: float) -> Send:
    """Rounds of the four processes against one sandbox process, interleaved so that a drift
    (the sandbox's growing order book, the machine's load) hits all four alike."""
    folder = bench.folder
    source = bench.csv(count, trade_nos=False)
    with Sandbox(bench.env(), latency) as sandbox:
        env = bench.env(**sandbox.settings)
        tags = (f"B{n:04d}x" for n in range(10_000))

        def bare(*extra: str, rows: int = count) -> Callable[[], Process]:
            def make() -> Process:
                path = bench.csv(rows, trade_nos=False)
                command = [sys.executable, str(HERE / "bare_send.py"), str(path), "--tag",
                           next(tags), "--concurrency", str(concurrency), *extra]  # fmt: skip
                done = run(command, env, fresh(folder, "bare", ".log"))
                answer = json.loads(done.output.strip().splitlines()[-1])
                if answer["rows"] != rows or answer["accepted"] != (0 if extra else rows):
                    raise RuntimeError(f"bare loop: {answer}")
                return done

            return make

        def ours(*extra: str) -> Callable[[], Process]:
            def make() -> Process:
                output = fresh(folder, "sent", ".result.csv")
                journal = fresh(folder, "journal", ".sqlite3")
                command = [*BATCHPAY, "run", str(source), "--yes", "--json", "--concurrency",
                           str(concurrency), "-o", str(output), "--journal", str(journal),
                           *extra]  # fmt: skip
                done = run(command, env, fresh(folder, "run", ".log"))
                summary = summary_json(done.output)
                want = ({"pending": count}, 0) if extra else ({"processing": count}, count)
                if (summary.get("counts"), summary.get("requests")) != want:
                    raise RuntimeError(
                        f"run: {summary.get('requests')} requests, outcomes "
                        f"{summary.get('counts')} (stopped: {summary.get('stop_reason') or 'no'})"
                    )
                return done

            return make

        # Warm up the sandbox, untimed: its first thousands of requests run slower.
        bare(rows=min(count, 2000 if latency else 5000))()
        found = best(bench.runs, bare(), bare("--no-send"), ours(), ours("--dry-run"))
    return Send(count, *found)


def step_send_fast(bench: Bench) -> list[Result]:
    count, concurrency = bench.sizes.send_fast, 64
    s = measure_send(bench, count, concurrency, latency=0.0)
    result = Result(
        f"3 send {count:,}, 0 ms, c={concurrency}: CPU/request", "µs", s.bare_cpu, s.cpu,
        Target("<=", 1.6), f"req/s: bare {s.bare_rps:,.0f}, batchpay {s.rps:,.0f}",
    )  # fmt: skip
    say(
        f"3 send {count:,} rows, 0 ms gateway, concurrency {concurrency}: {s.describe()} | "
        f"CPU per request {result.judged} (best of {bench.runs})"
    )
    return [result]


def step_send_slow(bench: Bench) -> list[Result]:
    count, concurrency, latency = bench.sizes.send_slow, 32, 0.05
    s = measure_send(bench, count, concurrency, latency)
    bound = concurrency / latency
    result = Result(
        f"3 send {count:,}, 50 ms, c={concurrency}: req/s", "req/s", s.bare_rps, s.rps,
        Target(">=", 0.95),
        f"Little's bound {bound:,.0f} req/s; bare reaches {s.bare_rps / bound:.2f} of it",
    )  # fmt: skip
    say(
        f"3 send {count:,} rows, 50 ms gateway, concurrency {concurrency}: {s.describe()} | "
        f"req/s {result.judged} (best of {bench.runs}; Little's bound {bound:,.0f} req/s)"
    )
    return [result]


# -- 4. memory -------------------------------------------------------------------------------


def step_memory_run(bench: Bench) -> list[Result]:
    count = bench.sizes.memory_run
    source = bench.xlsx(count)
    folder = bench.folder
    command = [*BATCHPAY, "run", str(source), "--sandbox", "--yes", "--json",
               "--journal", str(fresh(folder, "journal", ".sqlite3")),
               "-o", str(fresh(folder, "memory", ".result.xlsx"))]  # fmt: skip
    done = run(command, bench.env(), folder / "memory-run.log")
    counts = summary_json(done.output).get("counts")
    mib = done.rss / 1024
    result = Result(
        f"4 peak RSS run {count:,} .xlsx --sandbox", "MiB", 1024.0, mib, Target("<", 1.0),
        f"limit 1 GiB; took {secs(done.wall)}, outcomes {counts}",
    )  # fmt: skip
    say(
        f"4 peak RSS of `batchpay run {size(source)} --sandbox --yes` (in-process gateway, "
        f"concurrency 8): {mib:,.0f} MiB of 1,024 MiB, took {secs(done.wall)}, outcomes "
        f"{counts} | {result.judged}"
    )
    return [result]


def step_memory_validate(bench: Bench) -> list[Result]:
    count = bench.sizes.memory_validate
    source = bench.csv(count, trade_nos=True)
    done = run([*BATCHPAY, "validate", str(source)], bench.env(), bench.folder / "mem-val.log")
    mib = done.rss / 1024
    result = Result(
        f"4 peak RSS validate {count:,} .csv", "MiB", 2048.0, mib, Target("<", 1.0),
        f"limit 2 GiB; took {secs(done.wall)}",
    )  # fmt: skip
    say(
        f"4 peak RSS of `batchpay validate {size(source)}`: {mib:,.0f} MiB of 2,048 MiB, "
        f"took {secs(done.wall)} | {result.judged}"
    )
    return [result]


# -- main ------------------------------------------------------------------------------------

STEPS: list[tuple[str, Callable[[Bench], list[Result]]]] = [
    ("1 dry run", step_dry_run),
    ("2 validate", step_validate),
    ("3 send, 0 ms", step_send_fast),
    ("3 send, 50 ms", step_send_slow),
    ("4 memory, run", step_memory_run),
    ("4 memory, validate", step_memory_validate),
]


def figure(value: float, unit: str) -> str:
    if value != value:  # NaN: the step failed
        return "-"
    if unit == "s":
        return secs(value)
    if unit == "req/s":
        return f"{value:,.0f} req/s"
    if unit == "µs":
        return f"{value:,.0f} µs"
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
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            say(f"{name}: ERROR {reason}")
            nan = float("nan")
            results.append(Result(name, "s", nan, nan, Target("<=", 0), reason, error=True))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="~10x smaller sizes")
    parser.add_argument("--only", action="append", metavar="N", choices=list("1234"),
                        help="run only step N (repeatable)")  # fmt: skip
    parser.add_argument("--runs", type=int, default=3, help="best of N (default 3)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="write the data, outputs and logs to DIR and keep them")  # fmt: skip
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    say(f"batchpay benchmark, {'quick' if args.quick else 'full'} sizes, {time.strftime('%F %T')}")
    machine()
    with tempfile.TemporaryDirectory(prefix="batchpay-bench-") as temp:
        folder = args.keep or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        made = time.perf_counter()
        rows = people(max(sizes.__dict__.values()))
        say(f"data: {len(rows):,} rows, seed {SEED}, made in {secs(time.perf_counter() - made)}")
        results = run_steps(Bench(folder, sizes, args.runs, rows), args.only)
    say()
    table(results)
    verdicts = [r.verdict for r in results]
    counts = ", ".join(f"{verdicts.count(v)} {v}" for v in ("PASS", "MISS", "ERROR"))
    say(f"\n{counts}; total {secs(time.perf_counter() - started)}; load average {load()}")


if __name__ == "__main__":
    main()
