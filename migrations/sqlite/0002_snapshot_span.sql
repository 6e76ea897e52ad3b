-- The totals' coverage (oldest and newest as_of per provider) by index. SQLite counts the
-- customers directly; PostgreSQL's 0002 also adds a maintained count.
CREATE INDEX snapshots_provider_fetched_at ON snapshots (provider_id, fetched_at);
