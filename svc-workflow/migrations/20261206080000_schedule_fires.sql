-- Schedule triggers: each tick of a `trigger.schedule` node that was claimed. The primary key
-- makes a tick fire once however many replicas see it due: the one whose insert succeeds
-- queues the execution in the same transaction. `execution_id` is null for a tick skipped
-- because it was found too late (the service was down).

CREATE TABLE workflow.schedule_fires (
    tenant_id    uuid NOT NULL,
    workflow_id  uuid NOT NULL REFERENCES workflow.workflows (id) ON DELETE CASCADE,
    node_id      text NOT NULL,
    tick         timestamptz NOT NULL,
    execution_id uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, workflow_id, node_id, tick)
);
CREATE INDEX schedule_fires_by_age ON workflow.schedule_fires (created_at);

SELECT workflow.enable_tenant_isolation('workflow.schedule_fires');
