"""The reference for sending: a bare aiohttp loop posting the payroll's rows, signed, once each.

Reads the CSV with the csv module, builds each row's payout fields as batchpay sends them
(amount, accountNo, mobile, email, firstname, lastname, tradeNo, notifyUrl, remark), and posts
them from CONCURRENCY workers over one session: a fresh millisecond timestamp and the MD5
signature of gateway-contract.md section 4 per request, header merchantNo, the JSON answer read
and its outer code counted. No journal, no retries, no result file. With --no-send it does all
of that but the posting (a baseline, as batchpay's dry run is for `batchpay run`). Prints one
JSON line: rows, accepted, seconds (of the sending loop). Imports nothing from batchpay.
Settings from the environment: BATCHPAY_URL, BATCHPAY_MERCHANT_NO, BATCHPAY_SECRET,
BATCHPAY_NOTIFY_URL.

    python benchmarks/bare_send.py FILE.csv --concurrency 64 --tag T1 [--no-send]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import json
import os
import re
import time
from pathlib import Path

import aiohttp

FIELDS = ["amount", "accountNo", "mobile", "email", "firstname", "lastname", "tradeNo",
          "notifyUrl", "remark"]  # fmt: skip


def sign(fields: dict[str, str], secret: str) -> str:
    text = "".join(f"{k}={fields[k]}" for k in sorted(fields) if fields[k] != "")
    return hashlib.md5((text + secret).encode(), usedforsecurity=False).hexdigest()


def payouts(path: Path, tag: str, notify: str) -> list[dict[str, str]]:
    canonical = {f.lower(): f for f in FIELDS}
    with path.open(newline="", encoding="utf-8-sig") as stream:
        reader = csv.reader(stream, strict=True)
        names = [canonical.get(re.sub(r"[\s_-]", "", h).lower()) for h in next(reader)]
        rows = []
        for i, line in enumerate(reader):
            fields = dict.fromkeys(FIELDS, "")
            fields.update((n, v.strip()) for n, v in zip(names, line, strict=True) if n)
            fields["tradeNo"] = fields["tradeNo"] or f"{tag}{i:09d}"
            fields["notifyUrl"] = fields["notifyUrl"] or notify
            rows.append(fields)
    return rows


async def post_all(rows: list[dict[str, str]], concurrency: int, send: bool) -> int:
    url, secret = os.environ["BATCHPAY_URL"], os.environ["BATCHPAY_SECRET"]
    headers = {"merchantNo": os.environ["BATCHPAY_MERCHANT_NO"]}
    queue = iter(rows)
    accepted = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal accepted
        for fields in queue:
            body = dict(fields)
            body["timestamp"] = str(time.time_ns() // 1_000_000)
            body["sign"] = sign(body, secret)
            if not send:
                continue
            async with session.post(url, json=body, headers=headers) as response:
                answer = json.loads(await response.read())
            accepted += answer.get("code") == "0000"

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--tag", default="BARE", help="tradeNo prefix for rows without one")
    parser.add_argument("--no-send", action="store_true", help="everything but the posting")
    args = parser.parse_args()
    rows = payouts(args.file, args.tag, os.environ["BATCHPAY_NOTIFY_URL"])
    started = time.perf_counter()
    accepted = asyncio.run(post_all(rows, args.concurrency, not args.no_send))
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": len(rows), "accepted": accepted, "seconds": seconds}))


if __name__ == "__main__":
    main()
