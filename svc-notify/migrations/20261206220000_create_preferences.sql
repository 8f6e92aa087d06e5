-- Notification preferences: a user's own, and the tenant's defaults (the nil user id) that
-- users' override field by field. A NULL field is not set. Deferred deliveries (held by quiet
-- hours) are due like pending ones.

CREATE TABLE notify.preferences (
    tenant_id         uuid NOT NULL,
    -- the user; the nil uuid for the tenant's defaults
    user_id           uuid NOT NULL,
    disabled_channels text[],
    -- [{topic, channels}]
    topics            jsonb,
    -- [{channel, start, end, time_zone}]
    quiet_hours       jsonb,
    version           bigint NOT NULL DEFAULT 1,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);

DROP INDEX notify.deliveries_due;
CREATE INDEX deliveries_due ON notify.deliveries (next_attempt_at) WHERE state IN ('pending', 'deferred');

SELECT notify.enable_tenant_isolation('notify.preferences');
