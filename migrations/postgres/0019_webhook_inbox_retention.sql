-- Retention of the webhook inbox (`webhooks.retention`): finished deliveries (`processed`,
-- `ignored`) are deleted once processed before the horizon; `pending` and `failed` ones are kept.
-- The prune reads this index instead of the whole inbox. `finish_webhook` writes one entry per
-- delivery; a replay takes it out again (state back to `pending`).
CREATE INDEX webhook_inbox_finished ON webhook_inbox (processed_at)
    WHERE state IN ('processed', 'ignored');
