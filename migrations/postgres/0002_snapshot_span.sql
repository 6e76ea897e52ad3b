-- The totals' coverage (how many customers, oldest and newest as_of) without scanning every
-- snapshot: a count of customers with at least one snapshot, maintained inside snapshot writes
-- and customer deletes (sharded to spread writers; only the sum means anything), and an index
-- for the per-provider oldest/newest.
CREATE TABLE snapshot_customers (
    shard      SMALLINT PRIMARY KEY,
    customers  BIGINT NOT NULL
);
INSERT INTO snapshot_customers (shard, customers)
SELECT 0, count(DISTINCT customer_id) FROM snapshots;

CREATE INDEX snapshots_provider_fetched_at ON snapshots (provider_id, fetched_at);
