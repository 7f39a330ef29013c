"""The journal's tables. Rows are keyed by batch and position; tradeNo is unique across
the whole journal, so no two rows of any batches can ever share one."""

import json
import re
import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id     TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL UNIQUE,
    source       TEXT NOT NULL,
    row_count    INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    headers      TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS rows (
    batch_id          TEXT NOT NULL REFERENCES batches(batch_id),
    position          INTEGER NOT NULL,
    row_key           TEXT NOT NULL,
    sheet_row         INTEGER NOT NULL,
    trade_no          TEXT UNIQUE,
    assigned          INTEGER NOT NULL,
    amount            INTEGER NOT NULL,
    fields            TEXT NOT NULL,
    outcome           TEXT NOT NULL,
    code              TEXT NOT NULL DEFAULT '',
    msg               TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL DEFAULT '',
    message           TEXT NOT NULL DEFAULT '',
    platform_trade_no TEXT NOT NULL DEFAULT '',
    attempts          INTEGER NOT NULL DEFAULT 0,
    in_flight         INTEGER NOT NULL DEFAULT 0,
    first_sent_at     TEXT,
    fingerprint       TEXT NOT NULL,
    cells             TEXT NOT NULL DEFAULT '[]',
    errors            TEXT NOT NULL DEFAULT '',
    flag              TEXT NOT NULL DEFAULT '',
    updated_at        TEXT NOT NULL,
    PRIMARY KEY (batch_id, position)
);
CREATE INDEX IF NOT EXISTS rows_fingerprint ON rows(fingerprint);
CREATE TABLE IF NOT EXISTS attempts (
    id          INTEGER PRIMARY KEY,
    trade_no    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    sent_at     TEXT NOT NULL,
    http_status INTEGER,
    code        TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL DEFAULT '',
    verdict     TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS attempts_trade_no ON attempts(trade_no);
CREATE TABLE IF NOT EXISTS callbacks (
    id          INTEGER PRIMARY KEY,
    trade_no    TEXT NOT NULL,
    received_at TEXT NOT NULL,
    status      TEXT NOT NULL,
    effect      TEXT NOT NULL,
    fields      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS callbacks_trade_no ON callbacks(trade_no);
"""

# Issue 13: a callbacks record keeps the callback's fields without `sign`; journals written
# before kept it. Idempotent and cheap when there is nothing to do (one scan for the text
# '"sign"'); with the user_version migrations it becomes a one-time step. Done in Python, not
# with SQLite's json_remove, so that it needs no JSON1 and also clears records that older
# versions cut at 4,000 characters (no longer valid JSON).
_SIGN_MEMBER = re.compile(r'"sign"\s*:\s*"[^"]*"\s*,?\s*')


def scrub_callback_signs(db: sqlite3.Connection) -> int:
    """Remove ``sign`` from every callbacks record's fields; returns how many changed."""
    found = db.execute(
        "SELECT id, fields FROM callbacks WHERE instr(fields, '\"sign\"') > 0"
    ).fetchall()
    changed = []
    for record_id, fields in found:
        try:
            kept = json.loads(fields)
        except ValueError:
            scrubbed = _SIGN_MEMBER.sub("", fields)
        else:
            if not isinstance(kept, dict) or "sign" not in kept:
                continue
            del kept["sign"]
            scrubbed = json.dumps(kept, ensure_ascii=False)
        if scrubbed != fields:
            changed.append((scrubbed, record_id))
    if changed:
        db.execute("BEGIN IMMEDIATE")
        db.executemany("UPDATE callbacks SET fields = ? WHERE id = ?", changed)
        db.execute("COMMIT")
    return len(changed)
