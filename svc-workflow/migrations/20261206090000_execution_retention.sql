-- How long each tenant keeps its ended executions (their node runs and dead letters go with
-- them), from the `workflow_execution_retention_days` setting its tenant events carry; tenants
-- without a row keep them WORKFLOW_EXECUTION_RETENTION_DAYS. `updated_at` is the tenant's
-- update time, so an older event arriving late changes nothing.

CREATE TABLE workflow.tenant_settings (
    tenant_id                uuid PRIMARY KEY,
    execution_retention_days integer CHECK (execution_retention_days > 0),
    updated_at               timestamptz NOT NULL
);

CREATE INDEX executions_by_end ON workflow.executions (ended_at) WHERE ended_at IS NOT NULL;

SELECT workflow.enable_tenant_isolation('workflow.tenant_settings');
