-- Same logical change as postgres/0017 (SQLite has no rollup: its totals sum the accounts):
-- the checkpoints of the totals get the balance type as a dimension. They are derived data,
-- so they are dropped and rebuilt forward by the checkpoint task.
DROP TABLE totals_checkpoints;
DELETE FROM totals_checkpoint_marks;

CREATE TABLE totals_checkpoints (
    at            TEXT NOT NULL,
    currency      TEXT NOT NULL,
    is_crypto     INTEGER NOT NULL,
    provider_id   TEXT NOT NULL,
    status        TEXT NOT NULL,
    active        INTEGER NOT NULL,
    balance_type  TEXT NOT NULL CHECK (balance_type IN ('available', 'unspecified')),
    balance       TEXT NOT NULL,
    accounts      INTEGER NOT NULL,
    PRIMARY KEY (at, currency, is_crypto, provider_id, status, active, balance_type)
);
