-- Unchanged accounts cost no row (issue 14): a sync of a (customer, provider) pair whose
-- accounts did not change writes the pair's observation (its `snapshots` and `observations`
-- rows), not a row per account. An open account was last seen at its pair's snapshot
-- (`snapshots.fetched_at`, which reads now take instead of `accounts.fetched_at`).
--
-- `accounts_digest`: a digest of the accounts the pair's last saved snapshot reported
-- (everything but `fetched_at`; `plan::digest`), NULL when not known (rows written before this
-- migration, or a pair an account moved away from since). `accounts_unchanged`: whether the
-- last write found the digest it stored equal to the one before, i.e. the stored accounts
-- already were what it reported, so it did not read or write them. Both are set by the
-- snapshot upsert itself, under the pair's row lock.
ALTER TABLE snapshots ADD COLUMN accounts_digest BYTEA;
ALTER TABLE snapshots ADD COLUMN accounts_unchanged BOOLEAN NOT NULL DEFAULT false;
