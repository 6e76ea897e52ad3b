-- All-customer totals at a past instant (`at=` and series points) without reading every
-- account's version: checkpoints of the totals as held at fixed instants (every hour, on the
-- hour), per the rollup's dimensions, plus the versions written since the checkpoint.
--
-- A checkpoint is derived data: it is built only for settled instants (more than
-- history.settle ago), dropped from the first instant a late write touches (so it can never
-- disagree with the versions it summarises), dropped before the retention horizon and when a
-- customer is deleted, and rebuilt forward from the previous one.
CREATE TABLE totals_checkpoint_marks (
    at  TIMESTAMPTZ PRIMARY KEY
);

CREATE TABLE totals_checkpoints (
    at           TIMESTAMPTZ NOT NULL,
    currency     TEXT NOT NULL,
    is_crypto    BOOLEAN NOT NULL,
    provider_id  TEXT NOT NULL,
    status       TEXT NOT NULL,
    active       BOOLEAN NOT NULL,
    balance      NUMERIC NOT NULL CHECK (coffer_exact_decimal(balance)),
    accounts     BIGINT NOT NULL,
    PRIMARY KEY (at, currency, is_crypto, provider_id, status, active)
);

-- The versions written in (checkpoint, T]: the delta a past total adds to its checkpoint.
CREATE INDEX account_versions_valid_from ON account_versions (valid_from);
