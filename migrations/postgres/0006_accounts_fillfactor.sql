-- Room on every accounts page for the next version of its rows, so a sync that rewrites an
-- account whose indexed columns did not change (its balance, status, currency… are what the
-- indexes hold; fetched_at, the rate and the wallets are not) is a HOT update: the new version
-- stays on the same page and no index gains an entry. At the default fillfactor (100) every
-- such rewrite moved the row to another page and added an entry to each of the three indexes.
-- Applies to pages written from now on; existing ones gain room as vacuum frees it. Takes a
-- SHARE UPDATE EXCLUSIVE lock only: reads and writes go on while it runs.
ALTER TABLE accounts SET (fillfactor = 50);
