-- Balance types in the all-customer totals (issue 17): every total says how many accounts of
-- each balance type it adds, and `search.balance_type` filters them, so the totals rollup and
-- the checkpoints of the totals get the account's `balance_type` as one more dimension.

-- The rollup, rebuilt from the accounts inside this migration's transaction (the share lock
-- keeps snapshot writes out until the commit, so no write is counted twice or lost). Rows
-- written before 0015 say `unspecified` until their next fetch, in the accounts as here.
LOCK TABLE accounts IN SHARE MODE;
ALTER TABLE totals_rollup DROP CONSTRAINT totals_rollup_pkey;
DELETE FROM totals_rollup;
ALTER TABLE totals_rollup ADD COLUMN balance_type TEXT NOT NULL
    CHECK (balance_type IN ('available', 'unspecified'));
INSERT INTO totals_rollup
    (shard, currency, is_crypto, provider_id, status, active, balance_type, balance, accounts)
SELECT rollup_shard, currency, is_crypto, provider_id, status, active, balance_type,
       sum(balance), count(*)
FROM accounts WHERE NOT closed
GROUP BY rollup_shard, currency, is_crypto, provider_id, status, active, balance_type;
ALTER TABLE totals_rollup
    ADD PRIMARY KEY (shard, currency, is_crypto, provider_id, status, active, balance_type);

-- Checkpoints are derived data without the new dimension: dropped, and rebuilt forward by the
-- checkpoint task (until then an answer at an instant sums the versions, as before any
-- checkpoint existed: the same numbers, more slowly).
DELETE FROM totals_checkpoint_marks;
DELETE FROM totals_checkpoints;
ALTER TABLE totals_checkpoints DROP CONSTRAINT totals_checkpoints_pkey;
ALTER TABLE totals_checkpoints ADD COLUMN balance_type TEXT NOT NULL
    CHECK (balance_type IN ('available', 'unspecified'));
ALTER TABLE totals_checkpoints
    ADD PRIMARY KEY (at, currency, is_crypto, provider_id, status, active, balance_type);

-- Totals over a balance range sum the matching open accounts from this index alone
-- (index-only): it now also carries the balance type they are counted by.
CREATE INDEX accounts_open_balance_typed ON accounts (balance)
    INCLUDE (currency, is_crypto, status, active, provider_id, balance_type) WHERE NOT closed;
DROP INDEX accounts_open_balance;
