"""Measure `batchpay listen`: signed status callbacks per second into a real journal.

Plans a batch with a dry run (against a sandbox config, nothing is sent), starts the real
`batchpay listen` in a subprocess on loopback, posts one signed callback per row at a fixed
concurrency, and prints callbacks/s. Run: python benchmarks/callbacks.py [--rows N]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from batchpay.signing import sign

SECRET = "bench-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_batch(folder: Path, rows: int, env: dict[str, str]) -> list[str]:
    path = folder / "p.csv"
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["First Name", "Last Name", "Account No", "Mobile", "Email", "Amount"])
        for i in range(rows):
            writer.writerow(
                [f"A{i}", "B", f"00{i:012d}", f"09{i % 10**8:08d}", f"a{i}@e.com", "1000"]
            )
    done = subprocess.run(
        [sys.executable, "-m", "batchpay", "run", str(path), "--dry-run", "--json"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    summary = json.loads(done.stdout)
    with open(summary["result_file"], newline="", encoding="utf-8-sig") as stream:
        return [row["tradeNo"] for row in csv.DictReader(stream)]


async def fire(url: str, trade_nos: list[str], concurrency: int) -> float:
    queue = iter(trade_nos)

    async def worker(session: aiohttp.ClientSession) -> None:
        for trade_no in queue:
            fields = {"status": "0000", "message": "Success", "tradeNo": trade_no,
                      "platFormTradeNo": "p" + trade_no, "amount": "1000",
                      "timestamp": str(int(time.time() * 1000))}  # fmt: skip
            fields["sign"] = sign(fields, SECRET)
            async with session.post(url, json=fields) as response:
                assert response.status == 200, await response.text()

    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        port = free_port()
        env = {**os.environ, "BATCHPAY_URL": "http://127.0.0.1:9/pay", "BATCHPAY_MERCHANT_NO": "M",
               "BATCHPAY_SECRET": SECRET, "BATCHPAY_NOTIFY_URL": "http://127.0.0.1:9/n",
               "BATCHPAY_JOURNAL": str(work / "j.sqlite3")}  # fmt: skip
        trade_nos = make_batch(work, args.rows, env)
        listener = subprocess.Popen(
            [sys.executable, "-m", "batchpay", "listen", "--port", str(port)], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "listener did not start"
                    time.sleep(0.1)
            seconds = asyncio.run(fire(f"http://127.0.0.1:{port}/notify", trade_nos,
                                       args.concurrency))  # fmt: skip
        finally:
            listener.terminate()
            listener.wait(10)
        print(
            f"listener: {len(trade_nos)} callbacks in {seconds:.2f} s = "
            f"{len(trade_nos) / seconds:,.0f} callbacks/s (concurrency {args.concurrency})"
        )


if __name__ == "__main__":
    main()
