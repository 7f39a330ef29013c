"""The reference for `batchpay validate FILE.csv`: the same checks in plain pandas.

Reads the CSV as text (pandas with pyarrow), matches the headers as batchpay does (ignoring
case, spaces, underscores and hyphens), trims surrounding spaces, and applies every rule of
schemas/sheet.json vectorized: required columns present, full-match patterns (the mobile
pattern from BATCHPAY_MOBILE_PATTERN when set), maximum lengths, the amount's minimum, unique
tradeNos; and counts the same account number and amount twice (batchpay's warning). Prints one
line and exits 1 when a row is invalid, as `batchpay validate` does. What it leaves out is the
messages: one count per rule, no row-by-row problem text. Imports nothing from batchpay.

    python benchmarks/reference_validate.py FILE.csv
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "sheet.json"


def rules() -> dict[str, dict[str, Any]]:
    columns: dict[str, dict[str, Any]] = json.loads(SCHEMA.read_text("utf-8"))["columns"]
    mobile = os.environ.get("BATCHPAY_MOBILE_PATTERN")
    if mobile:
        columns["mobile"] = {**columns["mobile"], "pattern": mobile}
    return columns


def key(header: str) -> str:
    return re.sub(r"[\s_-]", "", header).lower()


def read(path: Path, schema: dict[str, dict[str, Any]]) -> tuple[pd.DataFrame, list[str]]:
    """Every cell as text, trimmed, the schema's columns under their canonical names; and the
    headers as the file has them."""
    frame = pd.read_csv(path, engine="pyarrow", dtype=str, keep_default_na=False)
    headers = [str(h) for h in frame.columns]
    canonical = {key(name): name for name in schema}
    frame = frame.rename(columns={h: canonical.get(key(h), h) for h in frame.columns})
    missing = [n for n, rule in schema.items() if rule["required"] and n not in frame]
    if missing:
        raise SystemExit(f"{path}: missing required columns {', '.join(missing)}")
    for name in schema:
        if name in frame:
            frame[name] = frame[name].fillna("").str.strip()
    return frame, headers


def invalid(frame: pd.DataFrame, schema: dict[str, dict[str, Any]]) -> np.ndarray:
    """True where a row breaks a rule."""
    bad = np.zeros(len(frame), dtype=bool)
    for name, rule in schema.items():
        if name not in frame:
            continue
        column = frame[name]
        ok = column.str.fullmatch(rule["pattern"]).fillna(False).astype(bool)
        if "maxLength" in rule:
            ok &= column.str.len() <= rule["maxLength"]
        if not rule["required"]:
            ok |= column.eq("")
        bad |= ~ok.to_numpy()
    amount = pd.to_numeric(frame["amount"].str.replace(",", ""), errors="coerce")
    bad |= ~(amount >= schema["amount"]["minimum"]).to_numpy()
    if "tradeNo" in frame:
        trade = frame["tradeNo"]
        bad |= (trade.ne("") & trade.duplicated(keep=False)).to_numpy()
    return bad


def repeated_payouts(frame: pd.DataFrame) -> int:
    """Rows whose account number and amount another row has too (a warning, not an error)."""
    return int(frame.duplicated(["accountNo", "amount"], keep=False).sum())


def main() -> None:
    path = Path(sys.argv[1])
    schema = rules()
    frame, _ = read(path, schema)
    bad = int(invalid(frame, schema).sum())
    print(f"{path}: {len(frame):,} rows, {bad:,} invalid, {repeated_payouts(frame):,} repeated")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
