-- Coffer's schema, PostgreSQL. Version 0001 in migrations/sqlite is the same logical change.
--
-- Money is NUMERIC and must stay exact when read back into rust_decimal::Decimal: a 96-bit
-- unsigned mantissa (at most 79228162514264337593543950335) and a scale of at most 28. A wider
-- NUMERIC would decode silently truncated, so the columns refuse it (CHECK) and the store also
-- parses every value exactly on read.
CREATE FUNCTION coffer_exact_decimal(v numeric) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(
        v IS NULL OR (
            scale(v) <= 28
            AND abs(v) * ('1e' || scale(v))::numeric <= 79228162514264337593543950335
        ),
        false)
$$;

CREATE TABLE customers (
    id          TEXT PRIMARY KEY,
    name        TEXT,
    created_at  TIMESTAMPTZ NOT NULL
);

-- One external id per provider per customer; an external id (per provider) belongs to one customer.
CREATE TABLE customer_links (
    customer_id  TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    provider     TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    CONSTRAINT customer_links_pkey PRIMARY KEY (customer_id, provider),
    CONSTRAINT customer_links_external_key UNIQUE (provider, external_id)
);

-- The latest snapshot of every account; closed accounts are kept (closed = true).
CREATE TABLE accounts (
    id                     TEXT PRIMARY KEY,
    customer_id            TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    provider_id            TEXT NOT NULL,
    provider_account_id    TEXT NOT NULL,
    provider_customer_ref  TEXT,
    currency               TEXT NOT NULL,
    is_crypto              BOOLEAN NOT NULL,
    status                 TEXT NOT NULL CHECK (status IN ('active', 'inactive', 'suspended', 'pending')),
    active                 BOOLEAN NOT NULL,
    balance                NUMERIC NOT NULL CHECK (coffer_exact_decimal(balance)),
    -- JSON array of wallets; decimals inside are JSON strings.
    wallets                TEXT NOT NULL DEFAULT '[]',
    iban                   TEXT,
    provider_rate          NUMERIC CHECK (coffer_exact_decimal(provider_rate)),
    provider_rate_quote    TEXT,
    fetched_at             TIMESTAMPTZ NOT NULL,
    closed                 BOOLEAN NOT NULL DEFAULT false,
    closed_at              TIMESTAMPTZ,
    -- Which totals_rollup shard this account's balance is counted in.
    rollup_shard           SMALLINT NOT NULL DEFAULT 0
);
CREATE INDEX accounts_customer_provider ON accounts (customer_id, provider_id);
-- Balance-range totals and lists over open accounts (index-only scans).
CREATE INDEX accounts_open_balance ON accounts (balance)
    INCLUDE (currency, is_crypto, status, active, provider_id) WHERE NOT closed;

-- One provider's latest answer for one customer.
CREATE TABLE snapshots (
    customer_id            TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    provider_id            TEXT NOT NULL,
    provider_customer_ref  TEXT,
    fetched_at             TIMESTAMPTZ NOT NULL,
    -- JSON array of strings: balances the fetch rejected.
    rejected               TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (customer_id, provider_id)
);
CREATE INDEX snapshots_fetched_at ON snapshots (fetched_at);

-- A row only when an account opens, closes, or its balance or status changes.
CREATE TABLE balance_history (
    id           BIGSERIAL PRIMARY KEY,
    account_id   TEXT NOT NULL,
    customer_id  TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    balance      NUMERIC NOT NULL CHECK (coffer_exact_decimal(balance)),
    status       TEXT NOT NULL,
    closed       BOOLEAN NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX balance_history_account ON balance_history (account_id, recorded_at);
CREATE INDEX balance_history_customer ON balance_history (customer_id, recorded_at);

-- Rates: one unit of `currency` is worth `rate` units of `quote`. Manual rates have provider ''.
CREATE TABLE rates (
    source    TEXT NOT NULL CHECK (source IN ('manual', 'provider')),
    provider  TEXT NOT NULL DEFAULT '',
    currency  TEXT NOT NULL,
    quote     TEXT NOT NULL,
    rate      NUMERIC NOT NULL CHECK (coffer_exact_decimal(rate)),
    as_of     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, provider, currency, quote)
);

-- API keys: the SHA-256 hash only, never the key.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'reader')),
    customers   TEXT[] NOT NULL DEFAULT '{}',
    created_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);

-- Background sync per linked (customer, provider) pair; removed with the link.
CREATE TABLE sync_state (
    customer_id      TEXT NOT NULL,
    provider_id      TEXT NOT NULL,
    last_success     TIMESTAMPTZ,
    last_error       TEXT,
    last_error_kind  TEXT,
    last_error_at    TIMESTAMPTZ,
    failures         INTEGER NOT NULL DEFAULT 0,
    next_due         TIMESTAMPTZ NOT NULL,
    lease_owner      TEXT,
    lease_expires    TIMESTAMPTZ,
    PRIMARY KEY (customer_id, provider_id),
    FOREIGN KEY (customer_id, provider_id)
        REFERENCES customer_links (customer_id, provider) ON DELETE CASCADE
);
CREATE INDEX sync_state_next_due ON sync_state (next_due);

-- Per-currency sums of the open accounts, maintained inside every snapshot write, so that the
-- all-customer totals read a few hundred rows instead of every account. Sharded by customer so
-- concurrent writers rarely wait on the same row. Rebuildable from `accounts`.
CREATE TABLE totals_rollup (
    shard        SMALLINT NOT NULL,
    currency     TEXT NOT NULL,
    is_crypto    BOOLEAN NOT NULL,
    provider_id  TEXT NOT NULL,
    status       TEXT NOT NULL,
    active       BOOLEAN NOT NULL,
    balance      NUMERIC NOT NULL,
    accounts     BIGINT NOT NULL,
    PRIMARY KEY (shard, currency, is_crypto, provider_id, status, active)
);
