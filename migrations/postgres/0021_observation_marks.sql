-- All-customer answers at a past instant (`at=` and series points) say, per provider, how old
-- the data served is, which pairs warn (`gap`, `rejected_balance`, `no_data`) and how many
-- customers are covered: from every pair's last observation at the instant. Reading that for
-- 200,000 pairs costs seconds; these marks summarise it at fixed instants (the checkpoints'
-- steps) so an answer reads one mark and the observations since.
--
-- Like the totals checkpoints, a mark is derived data: built only for settled instants, from
-- the one before it (in one transaction, under CHECKPOINT_LOCK_KEY exclusive), dropped from
-- the first instant a late observation touches, before the retention horizon and when a
-- customer is deleted.
CREATE TABLE observation_marks (
    at         TIMESTAMPTZ PRIMARY KEY,
    -- Customers with an observation at or before `at`.
    customers  BIGINT NOT NULL,
    -- The newest observation at or before `at`.
    newest     TIMESTAMPTZ,
    -- The link generation the mark's no-data pairs were read at (links added later are
    -- checked when the mark is read).
    links_gen  BIGINT NOT NULL,
    -- Whether the `r` pairs below are all the pairs whose last observation rejected balances.
    rejected_complete BOOLEAN NOT NULL
);

CREATE TABLE observation_mark_providers (
    at          TIMESTAMPTZ NOT NULL REFERENCES observation_marks (at) ON DELETE CASCADE,
    provider_id TEXT NOT NULL,
    -- Pairs of this provider observed at or before `at`.
    pairs       BIGINT NOT NULL,
    -- Every pair whose last observation is at or before this is listed (kind `o`).
    listed_to   TIMESTAMPTZ,
    PRIMARY KEY (at, provider_id)
);

-- Per mark: `o` the oldest pairs of each provider by their last observation (at least a
-- thousand, every pair up to `listed_to`), `r` the pairs whose last observation rejected
-- balances, `u` the linked pairs not observed by then.
CREATE TABLE observation_mark_pairs (
    at          TIMESTAMPTZ NOT NULL REFERENCES observation_marks (at) ON DELETE CASCADE,
    kind        CHAR(1) NOT NULL CHECK (kind IN ('o', 'r', 'u')),
    customer_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    observed_at TIMESTAMPTZ,
    rejected    TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (at, kind, customer_id, provider_id)
);

-- The observations of a time range (a mark's delta) in order.
CREATE INDEX observations_fetched_at ON observations (fetched_at);

-- Links in the order they were committed: every write of links bumps the one row (so such
-- writes serialise, and a generation is committed after every smaller one) and stamps its
-- links with the new generation.
CREATE TABLE link_generation (
    one  BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    gen  BIGINT NOT NULL
);
INSERT INTO link_generation VALUES (true, 0);
ALTER TABLE customer_links ADD COLUMN gen BIGINT NOT NULL DEFAULT 0;
CREATE INDEX customer_links_gen ON customer_links (gen);
