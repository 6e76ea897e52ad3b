-- Same logical change as postgres/0008: observations and account versions. Instants are
-- fixed-width UTC text and decimals exact text, as everywhere in this schema.
--
-- Balances at any instant (`at=` on the account endpoints).
--
-- Every saved snapshot of a (customer, provider) pair is an observation at its `fetched_at`:
-- one small row per sync, so "the pair's last observation at or before T" is one backward
-- probe of the primary key. `rejected` keeps what that fetch could not read, so an answer at
-- T warns as the present one did.
CREATE TABLE observations (
    customer_id  TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    provider_id  TEXT NOT NULL,
    fetched_at   TEXT NOT NULL,
    rejected     TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (customer_id, provider_id, fetched_at)
);

-- An account's full state (every field the API shows) from `valid_from` on, under the pair
-- that observed it: a row only when the account opens, closes (`closed`) or anything but
-- `fetched_at` changes, so an unchanged account costs nothing per sync. The state at T is the
-- newest row at or before the pair's last observation at or before T. Copied from `accounts`
-- by the same statements that write it (see docs/store.md).
CREATE TABLE account_versions (
    customer_id            TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    provider_id            TEXT NOT NULL,
    account_id             TEXT NOT NULL,
    valid_from             TEXT NOT NULL,
    closed                 INTEGER NOT NULL,
    provider_account_id    TEXT NOT NULL,
    provider_customer_ref  TEXT,
    currency               TEXT NOT NULL,
    is_crypto              INTEGER NOT NULL,
    status                 TEXT NOT NULL,
    active                 INTEGER NOT NULL,
    balance                TEXT NOT NULL,
    wallets                TEXT NOT NULL,
    iban                   TEXT,
    provider_rate          TEXT,
    provider_rate_quote    TEXT,
    PRIMARY KEY (customer_id, provider_id, account_id, valid_from)
);
CREATE INDEX account_versions_account ON account_versions (account_id, valid_from);

-- What is stored now is where history starts: each pair's snapshot is its first observation,
-- with the open accounts it holds.
INSERT INTO observations (customer_id, provider_id, fetched_at, rejected)
SELECT customer_id, provider_id, fetched_at, rejected FROM snapshots;
INSERT INTO account_versions (customer_id, provider_id, account_id, valid_from, closed,
    provider_account_id, provider_customer_ref, currency, is_crypto, status, active, balance,
    wallets, iban, provider_rate, provider_rate_quote)
SELECT a.customer_id, a.provider_id, a.id, s.fetched_at, 0, a.provider_account_id,
    a.provider_customer_ref, a.currency, a.is_crypto, a.status, a.active, a.balance, a.wallets,
    a.iban, a.provider_rate, a.provider_rate_quote
FROM accounts a
JOIN snapshots s ON s.customer_id = a.customer_id AND s.provider_id = a.provider_id
WHERE a.closed = 0;
