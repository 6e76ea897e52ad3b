-- The audit log (DESIGN.md "Exports, balance types, audit"): every admin change, appended in
-- the same transaction as the change, and every all-customer read and export.
--
-- `seq` counts 1, 2, 3, … with no gaps; `hash` is the SHA-256 of the entry's fields and of
-- `prev_hash`, the previous entry's hash (see crates/store/src/audit.rs), so `coffer audit
-- verify` finds the first entry edited, removed or inserted behind Coffer's back.
CREATE TABLE audit_log (
    seq         BIGINT PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL,
    key_id      TEXT NOT NULL,
    request_id  TEXT,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    before      TEXT,
    after       TEXT,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_target ON audit_log (target, seq);

-- The chain's head, one row: appending updates it first, so concurrent appends (any replica)
-- queue on its row lock and each follows the one before.
CREATE TABLE audit_head (
    id    SMALLINT PRIMARY KEY CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Keys may expire; their last use is kept (to the key cache's 30 s).
ALTER TABLE api_keys ADD COLUMN expires_at TIMESTAMPTZ;
ALTER TABLE api_keys ADD COLUMN last_used_at TIMESTAMPTZ;
