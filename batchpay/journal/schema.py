"""The journal's tables, and the migrations that take a journal of any earlier release to this
one. Rows are keyed by batch and position; tradeNo is unique across the whole journal, so no two
rows of any batches can ever share one.

``PRAGMA user_version`` says which migrations a journal has had: a new file gets them all in
order, so a fresh journal and a migrated one are built by the same statements. Release 0.1.0
made version 1 (``tests/fixtures/journals/journal-0.1.0.sqlite3`` is one of its journals);
the release at 3d50392 made version 4 (``journal-3d50392.sqlite3``).
"""

import json
import re
import sqlite3
from collections.abc import Callable

from .rows import key_digest

# Version 1, as release 0.1.0 made it (it stamped every journal 1 while adding columns).
RELEASE_0_1 = """
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

# Version 2: a batch belongs to a gateway account (merchant@scheme://host:port); NULL for the
# batches of version 1, which a person confirms once (``run --confirm-account``). The same
# content may now be planned again as a new batch (``--pay-again``), so content_hash is no
# longer unique: SQLite cannot drop a UNIQUE constraint, so the table is rebuilt.
ACCOUNTS = """
CREATE TABLE batches_v2 (
    batch_id     TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    source       TEXT NOT NULL,
    row_count    INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    headers      TEXT NOT NULL DEFAULT '[]',
    account      TEXT,
    pay_again_of TEXT
);
INSERT INTO batches_v2 (batch_id, content_hash, source, row_count, created_at, headers)
    SELECT batch_id, content_hash, source, row_count, created_at, headers FROM batches;
DROP TABLE batches;
ALTER TABLE batches_v2 RENAME TO batches;
CREATE INDEX batches_content ON batches(content_hash, account);
CREATE TABLE account_changes (
    id          INTEGER PRIMARY KEY,
    changed_at  TEXT NOT NULL,
    from_account TEXT,
    to_account  TEXT NOT NULL,
    batches     INTEGER NOT NULL,
    reason      TEXT NOT NULL
);
"""

# Version 3 (issue 13): a callbacks record keeps the callback's fields without `sign`;
# journals written before kept it. Done in Python, not with SQLite's json_remove, so that it
# needs no JSON1 and also clears records that older versions cut at 4,000 characters (no
# longer valid JSON).
_SIGN_MEMBER = re.compile(r'"sign"\s*:\s*"[^"]*"\s*,?\s*')


def scrub_callback_signs(db: sqlite3.Connection) -> int:
    """Remove ``sign`` from every callbacks record's fields (inside the caller's transaction);
    returns how many changed."""
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
    db.executemany("UPDATE callbacks SET fields = ? WHERE id = ?", changed)
    return len(changed)


# MIGRATIONS[n] takes a journal from version n to n + 1: SQL statements, or a function of the
# connection, run inside one transaction with the new version stamped.
Migration = str | Callable[[sqlite3.Connection], object]
# Version 4: the gateway accounts whose answers said they are a sandbox (`batchpay sandbox`):
# a later run of theirs that sends nothing still marks its result as practice.
SANDBOX_ACCOUNTS = """
CREATE TABLE IF NOT EXISTS sandbox_accounts (
    account  TEXT PRIMARY KEY,
    seen_at  TEXT NOT NULL
);
"""


# Version 5 (issue 12): a row's fixed content and its state in two tables. Sending rewrites
# only the narrow state record (outcome, attempts, in flight, codes, last answer), never the
# row's fields and cells; the content keeps a digest of the row's key, not the key itself.
# `rows` stays, as a view of both, for every reader (status, an auditor's SELECT).
SPLIT_ROWS = """
CREATE TABLE row_content (
    batch_id     TEXT NOT NULL REFERENCES batches(batch_id),
    position     INTEGER NOT NULL,
    key_digest   TEXT NOT NULL,
    sheet_row    INTEGER NOT NULL,
    trade_no     TEXT UNIQUE,
    assigned     INTEGER NOT NULL,
    amount       INTEGER NOT NULL,
    fields       TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    cells        TEXT NOT NULL DEFAULT '[]',
    errors       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (batch_id, position)
);
CREATE TABLE row_state (
    batch_id          TEXT NOT NULL,
    position          INTEGER NOT NULL,
    trade_no          TEXT UNIQUE,
    outcome           TEXT NOT NULL,
    code              TEXT NOT NULL DEFAULT '',
    msg               TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL DEFAULT '',
    message           TEXT NOT NULL DEFAULT '',
    platform_trade_no TEXT NOT NULL DEFAULT '',
    attempts          INTEGER NOT NULL DEFAULT 0,
    in_flight         INTEGER NOT NULL DEFAULT 0,
    first_sent_at     TEXT,
    flag              TEXT NOT NULL DEFAULT '',
    updated_at        TEXT NOT NULL,
    PRIMARY KEY (batch_id, position),
    FOREIGN KEY (batch_id, position) REFERENCES row_content(batch_id, position)
) WITHOUT ROWID;
INSERT INTO row_content (batch_id, position, key_digest, sheet_row, trade_no, assigned, amount,
                         fields, fingerprint, cells, errors)
    SELECT batch_id, position, key_digest(row_key), sheet_row, trade_no, assigned, amount,
           fields, fingerprint, cells, errors FROM rows ORDER BY batch_id, position;
INSERT INTO row_state (batch_id, position, trade_no, outcome, code, msg, status, message,
                       platform_trade_no, attempts, in_flight, first_sent_at, flag, updated_at)
    SELECT batch_id, position, trade_no, outcome, code, msg, status, message,
           platform_trade_no, attempts, in_flight, first_sent_at, flag, updated_at FROM rows;
DROP TABLE rows;
CREATE INDEX row_content_fingerprint ON row_content(fingerprint);
CREATE VIEW rows AS
    SELECT c.batch_id, c.position, c.key_digest, c.sheet_row, c.trade_no, c.assigned, c.amount,
           c.fields, s.outcome, s.code, s.msg, s.status, s.message, s.platform_trade_no,
           s.attempts, s.in_flight, s.first_sent_at, c.fingerprint, c.cells, c.errors, s.flag,
           s.updated_at
    FROM row_content c JOIN row_state s USING (batch_id, position);
"""


# Version 6 (issue 15): what the gateway said was paid (data.payAmount, or a callback's), kept
# for a partly paid row's result; the `rows` view made again to show it.
PAY_AMOUNT = """
ALTER TABLE row_state ADD COLUMN pay_amount TEXT NOT NULL DEFAULT '';
DROP VIEW IF EXISTS rows;
CREATE VIEW rows AS
    SELECT c.batch_id, c.position, c.key_digest, c.sheet_row, c.trade_no, c.assigned, c.amount,
           c.fields, s.outcome, s.code, s.msg, s.status, s.message, s.platform_trade_no,
           s.attempts, s.in_flight, s.first_sent_at, c.fingerprint, c.cells, c.errors, s.flag,
           s.updated_at, s.pay_amount
    FROM row_content c JOIN row_state s USING (batch_id, position);
"""


def add_pay_amount(db: sqlite3.Connection) -> None:
    """Version 6 (``PAY_AMOUNT``); like ``split_rows``, nothing when it meets its own work."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(row_state)")}
    if "pay_amount" in columns:
        return
    for statement in statements(PAY_AMOUNT):
        db.execute(statement)


def split_rows(db: sqlite3.Connection) -> None:
    """Version 5 (``SPLIT_ROWS``), with the key digest computed as this release does. Like the
    other migrations it may meet its own work (a version stamped lower by hand): then the
    rows are split already, and nothing is done."""
    found = db.execute("SELECT type FROM sqlite_master WHERE name = 'rows'").fetchone()
    if found is not None and found[0] == "view":
        return
    db.create_function("key_digest", 1, key_digest, deterministic=True)
    for statement in statements(SPLIT_ROWS):
        db.execute(statement)


def statements(script: str) -> list[str]:
    """The statements of an SQL script, one by one (each runs inside the caller's
    transaction, which ``executescript`` would commit)."""
    found, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            found.append(current.strip())
            current = ""
    return found


# Version 7 (issue 16): team controls. Users (an Argon2id hash, never a password; the TOTP
# secret, which cannot be hashed, so the journal is made owner-only when users exist), the
# policy an admin sets, and the audit trail: append-only, each row's hash over the previous
# row's hash and its own content. The triggers guard against accidents (an UPDATE or DELETE
# raises); the hash chain, checked by `batchpay audit --verify`, against intent. Nothing here
# is read while sending: without users and policy a journal works as before.
TEAM = """
CREATE TABLE IF NOT EXISTS users (
    name            TEXT PRIMARY KEY,
    role            TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    totp_secret     TEXT,
    totp_last_step  INTEGER,
    disabled        INTEGER NOT NULL DEFAULT 0,
    failed_sign_ins INTEGER NOT NULL DEFAULT 0,
    locked_until    TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS policy (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL,
    set_at  TEXT NOT NULL,
    set_by  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id         INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    action     TEXT NOT NULL,
    batch      TEXT,
    details    TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS audit_batch ON audit(batch);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only: its rows are never changed');
END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only: its rows are never deleted');
END;
"""


# Version 8 (issue 16): the batch's life. A batch with no batch_life row is a draft (planned
# by a run or a dry run, never submitted). Approvals belong to a round (the submission's
# time): a batch submitted again after a rejection needs its approvals again. Each approval
# keeps the content it approved (hash, rows, total), which a send compares with the batch's.
LIFE = """
CREATE TABLE IF NOT EXISTS batch_life (
    batch_id     TEXT PRIMARY KEY REFERENCES batches(batch_id),
    state        TEXT NOT NULL,
    submitter    TEXT,
    submitted_at TEXT,
    content_hash TEXT NOT NULL,
    row_count    INTEGER NOT NULL,
    total        INTEGER NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    held_from    TEXT,
    sender       TEXT,
    sender_kind  TEXT,
    sent_at      TEXT,
    updated_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS approvals (
    id           INTEGER PRIMARY KEY,
    batch_id     TEXT NOT NULL REFERENCES batches(batch_id),
    round        TEXT NOT NULL,
    approver     TEXT NOT NULL,
    approved_at  TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    row_count    INTEGER NOT NULL,
    total        INTEGER NOT NULL,
    UNIQUE (batch_id, round, approver)
);
"""


MIGRATIONS: tuple[Migration, ...] = (
    RELEASE_0_1,
    ACCOUNTS,
    scrub_callback_signs,
    SANDBOX_ACCOUNTS,
    split_rows,
    add_pay_amount,
    TEAM,
    LIFE,
)
VERSION = len(MIGRATIONS)
