-- Events that carry a usable secret (one-time tokens) wait in the outbox encrypted under the
-- service's key, never in clear: `payload` holds their redacted envelope, `sealed` the whole
-- envelope sealed, erased once published (platform::outbox::Outbox::enqueue_sealed).
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS sealed bytea;
