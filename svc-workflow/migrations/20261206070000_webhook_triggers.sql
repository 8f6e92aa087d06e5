-- Webhook triggers: the `webhook-id`s each webhook accepted (a repeated one answers the
-- first execution and starts no other), and the previous value of a rotated WEBHOOK_SECRET
-- credential, still accepted until `previous_valid_until` (the rotation overlap).

ALTER TABLE workflow.credentials
    ADD COLUMN previous_sealed_value bytea,
    ADD COLUMN previous_valid_until timestamptz;

CREATE TABLE workflow.webhook_deliveries (
    tenant_id    uuid NOT NULL,
    workflow_id  uuid NOT NULL REFERENCES workflow.workflows (id) ON DELETE CASCADE,
    node_id      text NOT NULL,
    webhook_id   text NOT NULL,
    execution_id uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, workflow_id, node_id, webhook_id)
);
CREATE INDEX webhook_deliveries_by_age ON workflow.webhook_deliveries (created_at);

SELECT workflow.enable_tenant_isolation('workflow.webhook_deliveries');
