-- Same logical change as postgres/0016: checkpoints of the all-customer totals at fixed
-- instants, and the index that finds the versions written since one.
CREATE TABLE totals_checkpoint_marks (
    at  TEXT PRIMARY KEY
);

CREATE TABLE totals_checkpoints (
    at           TEXT NOT NULL,
    currency     TEXT NOT NULL,
    is_crypto    INTEGER NOT NULL,
    provider_id  TEXT NOT NULL,
    status       TEXT NOT NULL,
    active       INTEGER NOT NULL,
    balance      TEXT NOT NULL,
    accounts     INTEGER NOT NULL,
    PRIMARY KEY (at, currency, is_crypto, provider_id, status, active)
);

CREATE INDEX account_versions_valid_from ON account_versions (valid_from);
