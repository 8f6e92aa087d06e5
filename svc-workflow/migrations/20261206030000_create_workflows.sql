-- Workflows, their immutable versions, and the credentials their nodes use. Definitions are
-- svc-workflow's JSON (its domain types); credential values are sealed (AES-256-GCM under
-- WORKFLOW_ENCRYPTION_KEYS, bound to the row) and never stored in clear. Every table is
-- tenant-owned and row-level secured.

CREATE TABLE workflow.workflows (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL,
    display_name   text NOT NULL,
    description    text NOT NULL,
    latest_version integer NOT NULL,
    state          text NOT NULL CHECK (state IN ('inactive', 'active')),
    active_version integer NOT NULL DEFAULT 0,
    creator        text NOT NULL,
    version        bigint NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'active') = (active_version > 0))
);
CREATE INDEX workflows_by_update ON workflow.workflows (tenant_id, updated_at DESC, id DESC);

CREATE TABLE workflow.workflow_versions (
    tenant_id   uuid NOT NULL,
    workflow_id uuid NOT NULL REFERENCES workflow.workflows (id) ON DELETE CASCADE,
    version     integer NOT NULL,
    definition  jsonb NOT NULL,
    -- what ListWorkflows filters on, and what DeleteCredential checks
    node_types  text[] NOT NULL,
    credentials uuid[] NOT NULL,
    creator     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, workflow_id, version)
);
CREATE INDEX workflow_versions_by_credential ON workflow.workflow_versions USING gin (credentials);

CREATE TABLE workflow.credentials (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    display_name text NOT NULL,
    type         text NOT NULL
        CHECK (type IN ('bearer_token', 'basic_auth', 'header', 'webhook_secret', 'generic')),
    sealed_value bytea NOT NULL,
    version      bigint NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, display_name)
);

SELECT workflow.enable_tenant_isolation('workflow.workflows');
SELECT workflow.enable_tenant_isolation('workflow.workflow_versions');
SELECT workflow.enable_tenant_isolation('workflow.credentials');
