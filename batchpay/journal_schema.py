"""The journal's tables. Rows are keyed by batch and position; tradeNo is unique across
the whole journal, so no two rows of any batches can ever share one."""

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

# Issue 13: a callbacks record keeps the callback's fields without `sign` (journals written
# before kept it). Idempotent; with the user_version migrations it becomes a one-time step.
# Records whose fields were cut at 4,000 characters by older versions are not valid JSON and
# are left as they are.
SCRUB_CALLBACK_SIGNS = """
UPDATE callbacks SET fields = json_remove(fields, '$.sign')
WHERE instr(fields, '"sign"') > 0 AND json_valid(fields) AND json_type(fields, '$.sign') IS NOT NULL
"""
