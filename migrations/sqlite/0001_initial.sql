-- Coffer's schema, SQLite. Version 0001 in migrations/postgres is the same logical change.
--
-- SQLite has no exact decimal type: money is TEXT holding the exact decimal (scale kept), parsed
-- exactly on read. Timestamps are TEXT in one fixed-width UTC format
-- (YYYY-MM-DDTHH:MM:SS.ffffffZ), so text comparison is time comparison.
-- There is no totals rollup here: the embedded store sums in Rust.

CREATE TABLE customers (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT,
    created_at  TEXT NOT NULL
);

CREATE TABLE customer_links (
    customer_id  TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    provider     TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    PRIMARY KEY (customer_id, provider),
    UNIQUE (provider, external_id)
);

CREATE TABLE accounts (
    id                     TEXT PRIMARY KEY NOT NULL,
    customer_id            TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    provider_id            TEXT NOT NULL,
    provider_account_id    TEXT NOT NULL,
    provider_customer_ref  TEXT,
    currency               TEXT NOT NULL,
    is_crypto              INTEGER NOT NULL,
    status                 TEXT NOT NULL CHECK (status IN ('active', 'inactive', 'suspended', 'pending')),
    active                 INTEGER NOT NULL,
    balance                TEXT NOT NULL,
    wallets                TEXT NOT NULL DEFAULT '[]',
    iban                   TEXT,
    provider_rate          TEXT,
    provider_rate_quote    TEXT,
    fetched_at             TEXT NOT NULL,
    closed                 INTEGER NOT NULL DEFAULT 0,
    closed_at              TEXT
);
CREATE INDEX accounts_customer_provider ON accounts (customer_id, provider_id);
CREATE INDEX accounts_open_currency ON accounts (currency) WHERE closed = 0;

CREATE TABLE snapshots (
    customer_id            TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    provider_id            TEXT NOT NULL,
    provider_customer_ref  TEXT,
    fetched_at             TEXT NOT NULL,
    rejected               TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (customer_id, provider_id)
);
CREATE INDEX snapshots_fetched_at ON snapshots (fetched_at);

CREATE TABLE balance_history (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   TEXT NOT NULL,
    customer_id  TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    balance      TEXT NOT NULL,
    status       TEXT NOT NULL,
    closed       INTEGER NOT NULL,
    recorded_at  TEXT NOT NULL
);
CREATE INDEX balance_history_account ON balance_history (account_id, recorded_at);
CREATE INDEX balance_history_customer ON balance_history (customer_id, recorded_at);

CREATE TABLE rates (
    source    TEXT NOT NULL CHECK (source IN ('manual', 'provider')),
    provider  TEXT NOT NULL DEFAULT '',
    currency  TEXT NOT NULL,
    quote     TEXT NOT NULL,
    rate      TEXT NOT NULL,
    as_of     TEXT NOT NULL,
    PRIMARY KEY (source, provider, currency, quote)
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'reader')),
    -- JSON array of customer ids.
    customers   TEXT NOT NULL DEFAULT '[]',
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

CREATE TABLE sync_state (
    customer_id      TEXT NOT NULL,
    provider_id      TEXT NOT NULL,
    last_success     TEXT,
    last_error       TEXT,
    last_error_kind  TEXT,
    last_error_at    TEXT,
    failures         INTEGER NOT NULL DEFAULT 0,
    next_due         TEXT NOT NULL,
    lease_owner      TEXT,
    lease_expires    TEXT,
    PRIMARY KEY (customer_id, provider_id),
    FOREIGN KEY (customer_id, provider_id)
        REFERENCES customer_links (customer_id, provider) ON DELETE CASCADE
);
CREATE INDEX sync_state_next_due ON sync_state (next_due);
