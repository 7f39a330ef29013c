"""The reference for `batchpay run FILE.csv --dry-run -o OUT.xlsx`: its essential work in plain
library calls.

1. Read the CSV as text and apply the rules of schemas/sheet.json vectorized (the same code
   as reference_validate.py, imported from beside this file).
2. A tradeNo per row that has none, in batchpay's form: yyyyMMddHHmmss + 10 random digits,
   unique.
3. Sign every row's payout fields as a send would (MD5 of the sorted key=value pairs and the
   secret, gateway-contract.md section 4), as batchpay's dry run does.
4. Commit every row to an SQLite file (WAL, as batchpay's journal): one table, one
   executemany, one transaction.
5. Write the result workbook with xlsxwriter's public API in constant_memory mode: the input
   columns, then tradeNo, outcome ... reason as text and amountValue as a number, each row
   in the pending rows' fill, header frozen with a filter, and a small Summary sheet.

It imports nothing from batchpay. Settings come from the environment as batchpay's do
(BATCHPAY_SECRET, BATCHPAY_NOTIFY_URL).

    python benchmarks/reference_dryrun.py FILE.csv OUT.xlsx JOURNAL.sqlite3
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
import xlsxwriter
from reference_validate import invalid, read, repeated_payouts, rules

FIELDS = ["amount", "accountNo", "mobile", "email", "firstname", "lastname", "tradeNo",
          "notifyUrl", "remark"]  # fmt: skip
TRADE_NO = FIELDS.index("tradeNo")
RESULT = ["outcome", "code", "msg", "status", "message", "platFormTradeNo", "attempts",
          "errors", "reason"]  # fmt: skip
PENDING = ["pending", "", "", "", "", "", "0", "", "not sent yet: run again"]


def trade_nos(count: int) -> list[str]:
    rng = np.random.default_rng()
    numbers = np.unique(rng.integers(0, 10**10, count * 2, dtype=np.int64))[:count]
    rng.shuffle(numbers)
    stamp = time.strftime("%Y%m%d%H%M%S")
    return [f"{stamp}{n:010d}" for n in numbers.tolist()]


def sign(keys: list[str], values: tuple[str, ...], secret: str) -> str:
    """``keys`` sorted; the empty values left out, as batchpay's default does."""
    text = "".join(f"{k}={v}" for k, v in zip(keys, values, strict=True) if v != "")
    return hashlib.md5((text + secret).encode(), usedforsecurity=False).hexdigest()


def main() -> None:
    source, output, journal = (Path(a) for a in sys.argv[1:4])
    secret, notify = os.environ.get("BATCHPAY_SECRET"), os.environ.get("BATCHPAY_NOTIFY_URL")
    if not secret or not notify:
        raise SystemExit("reference_dryrun.py: set BATCHPAY_SECRET and BATCHPAY_NOTIFY_URL")
    schema = rules()
    frame, headers = read(source, schema)
    cells = frame.iloc[:, : len(headers)].to_numpy().tolist()  # the input columns, in order
    bad = invalid(frame, schema)
    if bad.any():
        raise SystemExit(f"{source}: {int(bad.sum()):,} invalid rows; nothing planned")
    repeated_payouts(frame)  # batchpay warns about these before planning
    added = "tradeNo" not in frame
    for name in FIELDS:
        if name not in frame:
            frame[name] = ""
    empty = frame["tradeNo"].eq("")
    frame.loc[empty, "tradeNo"] = trade_nos(int(empty.sum()))
    frame.loc[frame["notifyUrl"].eq(""), "notifyUrl"] = notify
    keys = sorted(FIELDS)  # the names are ASCII: sorted is byte order
    for values in zip(*(frame[k].tolist() for k in keys), strict=True):
        sign(keys, values, secret)
    payouts = list(zip(*(frame[n].tolist() for n in FIELDS), strict=True))
    amounts = frame["amount"].str.replace(",", "").astype(float).astype(int).tolist()

    db = sqlite3.connect(journal)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    columns = ["position", "sheet_row", "trade_no", "whole_amount", "outcome", *FIELDS]
    db.execute(
        f"CREATE TABLE rows (position INTEGER PRIMARY KEY, sheet_row INTEGER NOT NULL, "
        f"trade_no TEXT UNIQUE, whole_amount INTEGER NOT NULL, outcome TEXT NOT NULL, "
        f"{', '.join(f'{n} TEXT NOT NULL' for n in FIELDS)})"
    )
    with db:
        db.executemany(
            f"INSERT INTO rows ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            (
                (i, i + 2, p[TRADE_NO], amount, "pending", *p)
                for i, (p, amount) in enumerate(zip(payouts, amounts, strict=True))
            ),
        )
    db.close()

    workbook = xlsxwriter.Workbook(
        str(output),
        {"constant_memory": True, "strings_to_formulas": False, "strings_to_numbers": False,
         "strings_to_urls": False},
    )  # fmt: skip
    bold = workbook.add_format({"bold": True, "num_format": "@", "bottom": 1})
    pending = workbook.add_format({"num_format": "@", "bg_color": "#FFF2CC"})
    number = workbook.add_format({"num_format": "#,##0", "bg_color": "#FFF2CC"})
    sheet = workbook.add_worksheet("Results")
    header = [*headers, *(["tradeNo"] if added else []), *RESULT, "amountValue"]
    for col, name in enumerate(header):
        sheet.write_string(0, col, name, bold)
    write, last = sheet.write_string, len(header) - 1
    for r, (row, payout, amount) in enumerate(zip(cells, payouts, amounts, strict=True), 1):
        for col, value in enumerate([*row, *([payout[TRADE_NO]] if added else []), *PENDING]):
            write(r, col, value, pending)
        sheet.write_number(r, last, amount, number)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, len(cells), last)
    summary = workbook.add_worksheet("Summary")
    for r, (item, value) in enumerate(
        [("item", "value"), ("source file", str(source)), ("journal", str(journal)),
         ("pending rows", f"{len(cells)}"), ("pending amount", f"{sum(amounts)}")]
    ):  # fmt: skip
        summary.write_string(r, 0, item)
        summary.write_string(r, 1, value)
    workbook.close()
    print(f"dry run: {len(cells):,} rows pending, total {sum(amounts):,}; result file: {output}")


if __name__ == "__main__":
    main()
