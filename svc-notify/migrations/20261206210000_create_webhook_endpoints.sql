-- Outbound webhook endpoints: where webhook deliveries go, and the secrets that sign them.
-- Secrets are sealed with NOTIFY_ENCRYPTION_KEYS (AES-256-GCM, bound to the endpoint), never
-- stored in the clear; a rotated secret keeps signing beside its successor until
-- `previous_secret_expires_at`.

CREATE TABLE notify.webhook_endpoints (
    id                         uuid PRIMARY KEY,
    tenant_id                  uuid NOT NULL,
    url                        text NOT NULL,
    description                text NOT NULL DEFAULT '',
    -- topics received; empty receives every topic
    topics                     text[] NOT NULL DEFAULT '{}',
    disabled                   boolean NOT NULL DEFAULT false,
    secret                     bytea NOT NULL,
    -- `whsec_` and the first 4 characters after it, to recognise the secret
    secret_prefix              text NOT NULL,
    secret_rotated_at          timestamptz,
    previous_secret            bytea,
    previous_secret_expires_at timestamptz,
    version                    bigint NOT NULL DEFAULT 1,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    CHECK ((previous_secret IS NULL) = (previous_secret_expires_at IS NULL))
);
-- listings, oldest first (ids are UUIDv7)
CREATE INDEX webhook_endpoints_by_tenant ON notify.webhook_endpoints (tenant_id, id);

-- what deleting an endpoint cancels
CREATE INDEX deliveries_waiting_by_endpoint ON notify.deliveries (tenant_id, recipient)
    WHERE recipient_kind = 'webhook_endpoint' AND state IN ('pending', 'deferred');

SELECT notify.enable_tenant_isolation('notify.webhook_endpoints');
