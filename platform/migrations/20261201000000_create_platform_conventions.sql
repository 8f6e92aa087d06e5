-- What every service's schema holds besides its own tables, created in the schema being
-- migrated (the migrating connection's search_path is that schema, so names are unqualified):
--
-- - outbox: events written in the transaction of the change they announce, published by the
--   relay (platform::outbox);
-- - audit_log: who changed what, in one shape for every service (platform::audit);
-- - processed_events: the events each consumer has handled, so a redelivered event is
--   handled once (platform::consumer);
-- - enable_tenant_isolation(table): row-level security on a tenant-owned table, the second
--   wall behind each query's own tenant filter.
--
-- Services migrated before this existed created outbox and audit_log themselves: the tables
-- that exist already are kept as they are.

CREATE TABLE IF NOT EXISTS outbox (
    id           uuid PRIMARY KEY,
    tenant_id    uuid,
    event_type   text NOT NULL,
    routing_key  text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE IF NOT EXISTS audit_log (
    id          uuid PRIMARY KEY,
    tenant_id   uuid,
    actor       text NOT NULL,
    action      text NOT NULL,
    target      text NOT NULL,
    details     jsonb NOT NULL,
    request_id  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS audit_log_by_tenant ON audit_log (tenant_id, created_at);

CREATE TABLE IF NOT EXISTS processed_events (
    consumer     text NOT NULL,
    event_id     uuid NOT NULL,
    tenant_id    uuid,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX IF NOT EXISTS processed_events_by_age ON processed_events (processed_at);

-- Row-level security on `target`, a table with a `tenant_id` column: rows are visible only
-- inside a transaction that set app.tenant_id to their tenant (Db::tenant_tx), or app.platform
-- for operations authorised as cross-tenant (Db::platform_tx). FORCE makes it hold for the
-- table's owner too. Calling it again on the same table changes nothing.
CREATE OR REPLACE FUNCTION enable_tenant_isolation(target regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM pg_policy WHERE polrelid = target AND polname = 'tenant_isolation') THEN
        RETURN;
    END IF;
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', target);
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %s USING ('
        'tenant_id = (SELECT nullif(current_setting(''app.tenant_id'', true), '''')::uuid) '
        'OR (SELECT current_setting(''app.platform'', true)) = ''on'')',
        target);
END
$$;

SELECT enable_tenant_isolation('audit_log');
SELECT enable_tenant_isolation('processed_events');
