-- Templates, notifications as accepted (content rendered once), their deliveries with every
-- attempt, and users' in-app inboxes. Deliveries are their own outbox: a PENDING row due now
-- is a job to send, whatever happened to its message. Every table is tenant-owned and
-- row-level secured.

CREATE TABLE notify.templates (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    key           text NOT NULL,
    display_name  text NOT NULL,
    -- [{name, description, required}]
    variables     jsonb NOT NULL,
    email_subject text NOT NULL,
    email_text    text NOT NULL,
    email_html    text NOT NULL,
    in_app_title  text NOT NULL,
    in_app_body   text NOT NULL,
    in_app_link   text NOT NULL,
    version       bigint NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, key)
);

CREATE TABLE notify.notifications (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL,
    topic            text NOT NULL,
    priority         text NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    template_id      uuid,
    -- who called SendNotification (`users/{id}`, …) and the event reacted to, if any
    source_principal text NOT NULL,
    source_event     text NOT NULL DEFAULT '',
    transaction_id   text,
    dedup_key        text,
    -- the content as rendered when the notification was accepted
    email_subject    text NOT NULL,
    email_text       text NOT NULL,
    email_html       text NOT NULL,
    in_app_title     text NOT NULL,
    in_app_body      text NOT NULL,
    in_app_link      text NOT NULL,
    -- the payload of webhook deliveries
    data             jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, transaction_id)
);
CREATE INDEX notifications_by_time ON notify.notifications (tenant_id, created_at DESC, id DESC);

CREATE TABLE notify.deliveries (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL,
    notification_id    uuid NOT NULL REFERENCES notify.notifications (id) ON DELETE CASCADE,
    -- order among the notification's deliveries
    position           integer NOT NULL,
    channel            text NOT NULL CHECK (channel IN ('email', 'in_app', 'webhook')),
    recipient_kind     text NOT NULL CHECK (recipient_kind IN ('user', 'email', 'webhook_endpoint')),
    -- the user's id, the email address or the endpoint's id
    recipient          text NOT NULL,
    -- where an email goes (for a user, their address when the notification was accepted)
    address            text NOT NULL DEFAULT '',
    state              text NOT NULL
        CHECK (state IN ('pending', 'deferred', 'delivered', 'failed', 'suppressed', 'cancelled')),
    suppression_reason text NOT NULL DEFAULT '',
    topic              text NOT NULL,
    priority           text NOT NULL,
    dedup_key          text,
    attempt_count      integer NOT NULL DEFAULT 0,
    last_error         text NOT NULL DEFAULT '',
    last_response_code integer NOT NULL DEFAULT 0,
    -- when the next attempt is due (pending and deferred deliveries)
    next_attempt_at    timestamptz,
    -- a job message carries the wake token it was sent under; older ones are stale
    wake_token         bigint NOT NULL DEFAULT 1,
    -- a worker sending it holds it until then; fences writes of a worker that lost it
    lease_until        timestamptz,
    lease_token        bigint NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    delivered_at       timestamptz
);
CREATE INDEX deliveries_by_notification ON notify.deliveries (tenant_id, notification_id, position);
CREATE INDEX deliveries_by_time ON notify.deliveries (tenant_id, created_at DESC, id DESC);
CREATE INDEX deliveries_by_dedup_key ON notify.deliveries (tenant_id, dedup_key, recipient, channel, created_at)
    WHERE dedup_key IS NOT NULL;
-- what the sweeper scans, across tenants
CREATE INDEX deliveries_due ON notify.deliveries (next_attempt_at) WHERE state = 'pending';

CREATE TABLE notify.delivery_attempts (
    tenant_id     uuid NOT NULL,
    delivery_id   uuid NOT NULL REFERENCES notify.deliveries (id) ON DELETE CASCADE,
    -- counts all attempts of the delivery, across RetryDelivery
    seq           integer NOT NULL,
    -- the attempt number shown (restarts after RetryDelivery)
    number        integer NOT NULL,
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    delivered     boolean NOT NULL DEFAULT false,
    error         text NOT NULL DEFAULT '',
    response_code integer NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, delivery_id, seq)
);

CREATE TABLE notify.inbox_messages (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    user_id         uuid NOT NULL,
    notification_id uuid NOT NULL REFERENCES notify.notifications (id) ON DELETE CASCADE,
    -- one message per delivery, however often it is attempted
    delivery_id     uuid NOT NULL UNIQUE REFERENCES notify.deliveries (id) ON DELETE CASCADE,
    topic           text NOT NULL,
    title           text NOT NULL,
    body            text NOT NULL,
    link            text NOT NULL,
    priority        text NOT NULL,
    read_at         timestamptz,
    archived_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbox_messages_by_user ON notify.inbox_messages (tenant_id, user_id, created_at DESC, id DESC);
CREATE INDEX inbox_messages_unread ON notify.inbox_messages (tenant_id, user_id)
    WHERE read_at IS NULL AND archived_at IS NULL;

SELECT notify.enable_tenant_isolation('notify.templates');
SELECT notify.enable_tenant_isolation('notify.notifications');
SELECT notify.enable_tenant_isolation('notify.deliveries');
SELECT notify.enable_tenant_isolation('notify.delivery_attempts');
SELECT notify.enable_tenant_isolation('notify.inbox_messages');
