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
    -- Customers with an observation at or before `at` (from customer_first_seen).
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

-- Per mark and provider, as arrays (one row each, a few thousand pairs): `o` its oldest pairs
-- by last observation (at least a thousand, every pair up to `listed_to`, which is at least two
-- steps after the oldest: pairs observed on a cycle are observed again oldest first, and a
-- step's worth must remain listed through the step), `r` its pairs whose last observation
-- rejected balances, `u` its linked pairs not observed by then (no instants).
CREATE TABLE observation_mark_lists (
    at          TIMESTAMPTZ NOT NULL REFERENCES observation_marks (at) ON DELETE CASCADE,
    kind        CHAR(1) NOT NULL CHECK (kind IN ('o', 'r', 'u')),
    provider_id TEXT NOT NULL,
    customers   TEXT[] NOT NULL,
    observed_at TIMESTAMPTZ[] NOT NULL,
    rejected    TEXT[] NOT NULL,
    PRIMARY KEY (at, kind, provider_id)
);

-- Per customer, its first observation: the customers an answer at T covers are those first
-- observed by T. Kept by a statement trigger on every insert of observations (also the
-- benchmark's bulk ones); a deletion of the customer removes its row.
CREATE TABLE customer_first_seen (
    customer_id TEXT PRIMARY KEY,
    first_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX customer_first_seen_first_at ON customer_first_seen (first_at);
INSERT INTO customer_first_seen
    SELECT customer_id, min(fetched_at) FROM observations GROUP BY customer_id;

CREATE FUNCTION coffer_first_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- New customers, then earlier ones (a late write); a customer already seen earlier costs
    -- one probe and no write.
    INSERT INTO customer_first_seen (customer_id, first_at)
        SELECT n.customer_id, min(n.fetched_at) FROM new_rows n
        WHERE NOT EXISTS (SELECT 1 FROM customer_first_seen f WHERE f.customer_id = n.customer_id)
        GROUP BY n.customer_id
        ON CONFLICT (customer_id) DO NOTHING;
    UPDATE customer_first_seen f SET first_at = n.first_at
        FROM (SELECT customer_id, min(fetched_at) AS first_at FROM new_rows GROUP BY customer_id) n
        WHERE f.customer_id = n.customer_id AND n.first_at < f.first_at;
    RETURN NULL;
END $$;

CREATE TRIGGER observations_first_seen AFTER INSERT ON observations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION coffer_first_seen();

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
