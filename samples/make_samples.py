"""Regenerate the sample beneficiary sheets in this folder.

    python samples/make_samples.py

Writes, next to this script:

* payroll.csv / payroll.xlsx   - the same 30 valid rows (every xlsx cell is a text cell)
* payroll-with-errors.csv      - one validation problem per row, for `batchpay validate`

The output is deterministic: a fixed random seed, a fixed workbook creation date and
no network access, so re-running the script leaves `git diff` empty.  After writing,
the script reads the files back and checks them (it exits non-zero if a check fails).
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import re
import unicodedata
from pathlib import Path

import xlsxwriter

HERE = Path(__file__).resolve().parent
SEED = 20261126
REMARK = "Payroll Nov 2026"

HEADERS = [
    "Employee ID",
    "First Name",
    "Last Name",
    "Account No",
    "Mobile",
    "Email",
    "Amount",
    "Remark",
]
ERROR_HEADERS = [*HEADERS, "Notify URL", "Trade No"]
TEXT_COLUMNS = {"Account No", "Mobile", "Amount"}

# (first name, last name, country) - "ID" Indonesia, "PH" Philippines.
PEOPLE = [
    ("Rizky", "Pratama", "ID"),
    ("Maria", "Santos", "PH"),
    ("Siti", "Rahayu", "ID"),
    ("Jose", "Dela Cruz", "PH"),
    ("Dewi", "Lestari", "ID"),
    ("Juan", "Reyes", "PH"),
    ("Budi", "Santoso", "ID"),
    ("Ana", "Peña", "PH"),
    ("Agus", "Setiawan", "ID"),
    ("Mark Anthony", "Garcia", "PH"),
    ("Putri", "Wulandari", "ID"),
    ("Kristine", "Bautista", "PH"),
    ("Andi", "Saputra", "ID"),
    ("Carlo", "De Leon", "PH"),
    ("Nur", "Hidayah", "ID"),
    ("Angelica", "Mendoza", "PH"),
    ("Fajar", "Nugroho", "ID"),
    ("Ramon", "Nuñez", "PH"),
    ("Indah", "Permatasari", "ID"),
    ("Patricia", "Villanueva", "PH"),
    ("Wahyu", "Hidayat", "ID"),
    ("Jerome", "Aquino", "PH"),
    ("Ayu", "Kusuma", "ID"),
    ("Rachelle", "Castillo", "PH"),
    ("Eko", "Prasetyo", "ID"),
    ("Paolo", "Ramos", "PH"),
    ("Sri", "Wahyuni", "ID"),
    ("Joy", "Fernandez", "PH"),
    ("Dimas", "Kurniawan", "ID"),
    ("Liza", "Soriano", "PH"),
]

MOBILE_PREFIXES = {
    "ID": ["0812", "0813", "0821", "0857", "0878"],
    "PH": ["0917", "0918", "0927", "0939", "0998"],
}
EMAIL_DOMAINS = {"ID": ["example.co.id", "example.com"], "PH": ["example.ph", "example.com"]}

# Row indexes (0-based) in payroll.csv/.xlsx that get special values.
LEADING_ZERO_ACCOUNTS = {1: "000123456789", 6: "0045120098771", 17: "0700042315"}
LONG_ACCOUNTS = {4: "880123456789012345", 12: "880998877665544332", 25: "100200300400500600"}
THOUSANDS_AMOUNTS = {3: 12500, 20: 18750}  # written as "12,500", "18,750"
DECIMAL_AMOUNTS = {8: 4200, 27: 7350}  # written as "4200.00", "7350.00"


def ascii_slug(text: str) -> str:
    """'Dela Cruz' -> 'delacruz', 'Peña' -> 'pena', 'Mark Anthony' -> 'markanthony'."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]", "", plain.lower())


def make_rows(
    rng: random.Random,
    people: list[tuple[str, str, str]],
    first_id: int,
    used_accounts: set[str],
    used_mobiles: set[str],
) -> list[dict[str, str]]:
    rows = []
    for i, (first, last, country) in enumerate(people):
        while True:
            length = rng.randint(10, 16)
            account = str(rng.randint(1, 9)) + "".join(rng.choices("0123456789", k=length - 1))
            if account not in used_accounts:
                break
        used_accounts.add(account)
        while True:
            mobile = rng.choice(MOBILE_PREFIXES[country]) + "".join(rng.choices("0123456789", k=6))
            if mobile not in used_mobiles:
                break
        used_mobiles.add(mobile)
        amount = rng.randrange(1500, 25001, 50)
        domain = rng.choice(EMAIL_DOMAINS[country])
        rows.append(
            {
                "Employee ID": f"E{first_id + i}",
                "First Name": first,
                "Last Name": last,
                "Account No": account,
                "Mobile": mobile,
                "Email": f"{ascii_slug(first)}.{ascii_slug(last)}@{domain}",
                "Amount": str(amount),
                "Remark": REMARK,
            }
        )
    return rows


def build_valid_rows(
    rng: random.Random, used_accounts: set[str], used_mobiles: set[str]
) -> list[dict[str, str]]:
    rows = make_rows(rng, PEOPLE, 1001, used_accounts, used_mobiles)
    for i, acc in {**LEADING_ZERO_ACCOUNTS, **LONG_ACCOUNTS}.items():
        rows[i]["Account No"] = acc
    for i, amount in THOUSANDS_AMOUNTS.items():
        rows[i]["Amount"] = f"{amount:,}"
    for i, amount in DECIMAL_AMOUNTS.items():
        rows[i]["Amount"] = f"{amount}.00"
    return rows


def build_error_rows(
    rng: random.Random, used_accounts: set[str], used_mobiles: set[str]
) -> list[dict[str, str]]:
    people = [
        ("Angelica", "Mendoza", "PH"),  # amount with a fraction
        ("Rizky", "Pratama", "ID"),  # amount below the minimum
        ("Juan", "Reyes", "PH"),  # amount not a number
        ("Kristine", "Bautista", "PH"),  # mobile with country code
        ("Jose", "Dela Cruz", "PH"),  # mobile with 9 digits
        ("Dewi", "Lestari", "ID"),  # account number with dashes
        ("Siti", "Rahayu", "ID"),  # account number empty
        ("Maria", "Santos", "PH"),  # e-mail invalid
        ("", "Garcia", "PH"),  # first name empty
        ("Budi", "", "ID"),  # last name empty
        ("Carlo", "De Leon", "PH"),  # notify URL not http(s)
        ("Ana", "Peña", "PH"),  # trade no duplicated (1st)
        ("Agus", "Setiawan", "ID"),  # trade no duplicated (2nd)
    ]
    rows = make_rows(rng, people, 2001, used_accounts, used_mobiles)
    for row in rows:
        row["Notify URL"] = ""
        row["Trade No"] = ""
        if not row["Last Name"]:  # no "budi.@..." address
            row["Email"] = "budi@example.co.id"
    rows[0]["Amount"] = "100.5"
    rows[1]["Amount"] = "99"
    rows[2]["Amount"] = "abc"
    rows[3]["Mobile"] = "63917123456"
    rows[4]["Mobile"] = "091712345"
    rows[5]["Account No"] = "12-3456-789"
    rows[6]["Account No"] = ""
    rows[7]["Email"] = "maria.santos@"
    rows[8]["Email"] = "garcia.payroll@example.ph"  # the e-mail itself stays valid
    rows[10]["Notify URL"] = "ftp://example.com/notify"
    rows[11]["Trade No"] = "PAYNOV2026-0007"
    rows[12]["Trade No"] = "PAYNOV2026-0007"
    return rows


def write_csv(path: Path, headers: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=headers, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_xlsx(path: Path, headers: list[str], rows: list[dict[str, str]]) -> None:
    # strings_to_numbers is False by default; set it explicitly, as write_string is used anyway.
    workbook = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False})
    # A fixed creation date keeps the file byte-for-byte reproducible.
    workbook.set_properties(
        {
            "title": "batchpay sample payroll",
            "author": "batchpay",
            "created": dt.datetime(2026, 11, 1, 0, 0, 0),
        }
    )
    sheet = workbook.add_worksheet("Payroll")
    header_fmt = workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    text_fmt = workbook.add_format({"num_format": "@"})
    for col, name in enumerate(headers):
        values = [name] + [row[name] for row in rows]
        width = max(len(v) for v in values) + 2
        sheet.set_column(col, col, width, text_fmt if name in TEXT_COLUMNS else None)
        sheet.write_string(0, col, name, header_fmt)
        for r, row in enumerate(rows, start=1):
            sheet.write_string(r, col, row[name], text_fmt if name in TEXT_COLUMNS else None)
    sheet.freeze_panes(1, 0)
    workbook.close()


def check(valid_rows: list[dict[str, str]], error_rows: list[dict[str, str]]) -> None:
    import openpyxl
    import pandas as pd

    csv_df = pd.read_csv(HERE / "payroll.csv", dtype=str, keep_default_na=False)
    assert list(csv_df.columns) == HEADERS, csv_df.columns
    assert csv_df.to_dict("records") == valid_rows

    raw = (HERE / "payroll.csv").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf"), "csv must not start with a BOM"
    raw.decode("utf-8")

    wb = openpyxl.load_workbook(HERE / "payroll.xlsx")
    assert wb.sheetnames == ["Payroll"]
    ws = wb["Payroll"]
    assert ws.freeze_panes == "A2"
    cells = [list(r) for r in ws.iter_rows()]
    for r in cells:
        for c in r:
            assert c.data_type == "s", (c.coordinate, c.data_type, c.value)
            if c.row > 1 and HEADERS[c.column - 1] in TEXT_COLUMNS:
                assert c.number_format == "@", (c.coordinate, c.number_format)
    xlsx_values = [[c.value for c in r] for r in cells]
    assert xlsx_values[0] == HEADERS
    assert xlsx_values[1:] == csv_df.values.tolist(), "xlsx and csv differ"

    accounts = csv_df["Account No"].tolist()
    assert sum(a.startswith("0") for a in accounts) >= 3
    assert sum(len(a) == 18 for a in accounts) >= 2
    assert all(re.fullmatch(r"[0-9]{10,18}", a) for a in accounts)
    assert len(set(accounts)) == len(accounts)
    assert all(re.fullmatch(r"0[0-9]{9}", m) for m in csv_df["Mobile"])
    assert all(
        re.fullmatch(r"[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+\.00", a) for a in csv_df["Amount"]
    )
    assert sum("," in a for a in csv_df["Amount"]) == 2
    assert sum(a.endswith(".00") for a in csv_df["Amount"]) == 2
    for a in csv_df["Amount"]:
        assert 1500 <= float(a.replace(",", "")) <= 25000
    assert all(e.isascii() and e == e.lower() for e in csv_df["Email"])
    assert len(csv_df) == 30
    assert '"12,500"' in raw.decode("utf-8")

    err_df = pd.read_csv(HERE / "payroll-with-errors.csv", dtype=str, keep_default_na=False)
    assert list(err_df.columns) == ERROR_HEADERS
    assert err_df.to_dict("records") == error_rows
    check_against_schema(csv_df.to_dict("records"), err_df.to_dict("records"))


SCHEMA_KEYS = {
    "First Name": "firstname",
    "Last Name": "lastname",
    "Account No": "accountNo",
    "Mobile": "mobile",
    "Email": "email",
    "Amount": "amount",
    "Remark": "remark",
    "Notify URL": "notifyUrl",
    "Trade No": "tradeNo",
}


def row_problems(row: dict[str, str], rules: dict[str, dict[str, object]]) -> list[str]:
    problems = []
    for header, key in SCHEMA_KEYS.items():
        if header not in row:
            continue
        rule, value = rules[key], row[header]
        if value == "":
            if rule.get("required"):
                problems.append(key)
            continue
        bad = not re.fullmatch(str(rule["pattern"]), value)
        if not bad and key == "amount":
            bad = float(value.replace(",", "")) < float(str(rule["minimum"]))
        if bad:
            problems.append(key)
    return problems


def check_against_schema(valid: list[dict[str, str]], errors: list[dict[str, str]]) -> None:
    """Cross-check with ../schemas/sheet.json (read only), when it is there."""
    import json

    schema_path = HERE.parent / "schemas" / "sheet.json"
    if not schema_path.exists():
        return
    rules = json.loads(schema_path.read_text(encoding="utf-8"))["columns"]
    for row in valid:
        assert row_problems(row, rules) == [], row
    expected = [
        "amount",
        "amount",
        "amount",
        "mobile",
        "mobile",
        "accountNo",
        "accountNo",
        "email",
        "firstname",
        "lastname",
        "notifyUrl",
        None,
        None,
    ]
    for row, want in zip(errors, expected, strict=True):
        assert row_problems(row, rules) == ([want] if want else []), (row, want)
    trade_nos = [r["Trade No"] for r in errors if r["Trade No"]]
    assert trade_nos == ["PAYNOV2026-0007", "PAYNOV2026-0007"]


def main() -> None:
    rng = random.Random(SEED)
    used_accounts = set(LEADING_ZERO_ACCOUNTS.values()) | set(LONG_ACCOUNTS.values())
    used_mobiles: set[str] = set()
    valid_rows = build_valid_rows(rng, used_accounts, used_mobiles)
    error_rows = build_error_rows(rng, used_accounts, used_mobiles)

    write_csv(HERE / "payroll.csv", HEADERS, valid_rows)
    write_xlsx(HERE / "payroll.xlsx", HEADERS, valid_rows)
    write_csv(HERE / "payroll-with-errors.csv", ERROR_HEADERS, error_rows)
    check(valid_rows, error_rows)
    print(f"wrote {len(valid_rows)} valid rows and {len(error_rows)} error rows to {HERE}")


if __name__ == "__main__":
    main()
