-- Digests: a user's topic with a digest window batches its deliveries per channel. The first
-- delivery of a window opens it (`digest`), deferred until the window ends; those arriving
-- while it is open are `batched` into it (`digest_id`) and sent in its one message.

ALTER TABLE notify.deliveries DROP CONSTRAINT deliveries_state_check;
ALTER TABLE notify.deliveries ADD CONSTRAINT deliveries_state_check CHECK (state IN (
    'pending', 'deferred', 'delivered', 'failed', 'suppressed', 'cancelled', 'batched'));
ALTER TABLE notify.deliveries
    ADD COLUMN digest    boolean NOT NULL DEFAULT false,
    ADD COLUMN digest_id uuid REFERENCES notify.deliveries (id) ON DELETE SET NULL;

-- the open window of a recipient's topic on a channel
CREATE INDEX deliveries_open_digests ON notify.deliveries (tenant_id, recipient, channel, topic)
    WHERE digest AND state IN ('pending', 'deferred');
CREATE INDEX deliveries_by_digest ON notify.deliveries (tenant_id, digest_id)
    WHERE digest_id IS NOT NULL;
-- preferences.topics items may carry `digest_seconds`, the topic's digest window.
