-- Same logical change as postgres/0019: the index the inbox's retention prunes by.
CREATE INDEX webhook_inbox_finished ON webhook_inbox (processed_at)
    WHERE state IN ('processed', 'ignored');
