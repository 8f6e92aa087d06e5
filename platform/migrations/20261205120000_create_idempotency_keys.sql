-- The answers of calls made with an `Idempotency-Key` (platform::idempotency), kept a day,
-- written in the transaction of the change they answer.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    tenant_id      uuid NOT NULL,
    scope          text NOT NULL,
    key            text NOT NULL,
    request_digest bytea NOT NULL,
    answer         bytea NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, scope, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys (created_at);

SELECT enable_tenant_isolation('idempotency_keys');
