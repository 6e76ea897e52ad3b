-- Leasing a batch scans due pairs in order. With the index on next_due alone, every lease call
-- walked over the pairs leased right now (still due, their lease not expired: up to
-- sync.concurrency plus the batches being written) and fetched each from the heap to reject it;
-- at 1024 pairs in flight that was tens of milliseconds a call. A pair can be leased from
-- GREATEST(next_due, lease_expires) on (GREATEST skips NULL: an unleased pair from next_due), so
-- indexing that moves a leased pair out of the scanned range until its lease expires. Same
-- pairs, same rule; the order is now "leasable longest", which for unleased pairs is next_due.
DROP INDEX sync_state_next_due;
CREATE INDEX sync_state_leasable ON sync_state (GREATEST(next_due, lease_expires));
