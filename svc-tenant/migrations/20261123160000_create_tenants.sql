-- Tenants, their custom domains, the audit trail of changes, and the event outbox.
-- Row-level security is the second wall behind the service's own checks: queries run as a
-- role that owns nothing, and see a tenant's rows only inside a transaction that set
-- app.tenant_id to that tenant (or app.platform for authorised cross-tenant operations).

CREATE SCHEMA IF NOT EXISTS tenant;

CREATE TABLE tenant.tenants (
    id                  uuid PRIMARY KEY,
    slug                text NOT NULL UNIQUE,
    display_name        text NOT NULL,
    status              text NOT NULL CHECK (status IN ('active', 'suspended', 'deleted')),
    plan                text NOT NULL CHECK (plan IN ('free', 'team', 'enterprise')),
    settings            jsonb NOT NULL DEFAULT '{}'::jsonb,
    requests_per_minute integer NOT NULL DEFAULT 0 CHECK (requests_per_minute >= 0),
    burst               integer NOT NULL DEFAULT 0 CHECK (burst >= 0),
    suspension_reason   text,
    version             bigint NOT NULL DEFAULT 1,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- A custom domain belongs to one tenant at most, across the platform.
CREATE TABLE tenant.tenant_domains (
    domain     text PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenant.tenants (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_domains_by_tenant ON tenant.tenant_domains (tenant_id, domain);

CREATE TABLE tenant.audit_log (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenant.tenants (id),
    actor      text NOT NULL,
    action     text NOT NULL,
    changes    jsonb NOT NULL,
    request_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_by_tenant ON tenant.audit_log (tenant_id, created_at);

CREATE TABLE tenant.outbox (
    id           uuid PRIMARY KEY,
    tenant_id    uuid,
    event_type   text NOT NULL,
    routing_key  text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_pending ON tenant.outbox (id) WHERE published_at IS NULL;

ALTER TABLE tenant.tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant.tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant.tenants
    USING (id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)
           OR (SELECT current_setting('app.platform', true)) = 'on');

ALTER TABLE tenant.tenant_domains ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant.tenant_domains FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant.tenant_domains
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)
           OR (SELECT current_setting('app.platform', true)) = 'on');

ALTER TABLE tenant.audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant.audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant.audit_log
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)
           OR (SELECT current_setting('app.platform', true)) = 'on');
