-- Executions of workflow versions, the record of every node run, and the dead letters of
-- svc-workflow's queues. The executions table is also the engine's ledger: an execution that
-- is not ended has `wake_at`, the time it next needs a worker, and a worker runs it only under
-- a lease (`lease_token` fences a worker whose lease was taken over). Every table is
-- tenant-owned and row-level secured.

CREATE TABLE workflow.executions (
    id                    uuid PRIMARY KEY,
    tenant_id             uuid NOT NULL,
    workflow_id           uuid NOT NULL,
    workflow_version      integer NOT NULL,
    -- the workflow as its events describe it, as it was when the execution was queued
    workflow_display_name text NOT NULL,
    workflow_owner        text NOT NULL,
    state                 text NOT NULL
        CHECK (state IN ('queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled')),
    trigger_kind          text NOT NULL
        CHECK (trigger_kind IN ('manual', 'form', 'webhook', 'schedule', 'retry', 'replay')),
    trigger_node          text NOT NULL,
    trigger_ref           text NOT NULL,
    triggered_by          text NOT NULL,
    input                 jsonb NOT NULL,
    output                jsonb,
    error                 jsonb,
    retry_of              uuid,
    -- the evaluated lock key: one execution of a workflow runs at a time per key
    lock_key              text,
    lease_token           bigint NOT NULL DEFAULT 0,
    lease_until           timestamptz,
    wake_at               timestamptz,
    -- the token of the latest job message sent for it: older messages are stale
    wake_token            bigint NOT NULL DEFAULT 0,
    deadline              timestamptz NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    started_at            timestamptz,
    ended_at              timestamptz,
    FOREIGN KEY (tenant_id, workflow_id, workflow_version)
        REFERENCES workflow.workflow_versions (tenant_id, workflow_id, version) ON DELETE CASCADE,
    CHECK ((state IN ('succeeded', 'failed', 'cancelled')) = (ended_at IS NOT NULL)),
    CHECK (ended_at IS NULL OR wake_at IS NULL)
);
CREATE INDEX executions_by_time ON workflow.executions (tenant_id, created_at DESC, id DESC);
CREATE INDEX executions_by_workflow
    ON workflow.executions (tenant_id, workflow_id, created_at DESC, id DESC);
CREATE INDEX executions_due ON workflow.executions (wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX executions_by_lock ON workflow.executions (tenant_id, workflow_id, lock_key, id)
    WHERE lock_key IS NOT NULL AND ended_at IS NULL;

CREATE TABLE workflow.node_executions (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    execution_id  uuid NOT NULL REFERENCES workflow.executions (id) ON DELETE CASCADE,
    node_id       text NOT NULL,
    node_type     text NOT NULL,
    iteration     integer NOT NULL,
    attempt       integer NOT NULL,
    -- attempts of one group share the idempotency key their side effects carry; a replay
    -- starts a new group
    attempt_group integer NOT NULL,
    state         text NOT NULL
        CHECK (state IN ('running', 'waiting', 'succeeded', 'failed', 'skipped', 'cancelled')),
    input         jsonb,
    output        jsonb,
    output_port   text NOT NULL DEFAULT '',
    error         jsonb,
    -- while waiting: when the timer ends (a delay) or the next attempt is due
    wake_at       timestamptz,
    started_at    timestamptz NOT NULL DEFAULT now(),
    ended_at      timestamptz,
    UNIQUE (execution_id, node_id, iteration, attempt)
);
CREATE INDEX node_executions_by_execution ON workflow.node_executions (tenant_id, execution_id, id);

CREATE TABLE workflow.dead_letters (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL,
    queue            text NOT NULL,
    job_type         text NOT NULL,
    workflow_id      uuid,
    execution_id     uuid REFERENCES workflow.executions (id) ON DELETE CASCADE,
    node_id          text NOT NULL DEFAULT '',
    payload          jsonb NOT NULL,
    last_error       jsonb NOT NULL,
    attempts         integer NOT NULL,
    state            text NOT NULL CHECK (state IN ('pending', 'replayed')),
    first_failure_at timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    replayed_at      timestamptz
);
CREATE INDEX dead_letters_by_time ON workflow.dead_letters (tenant_id, state, created_at DESC, id DESC);

SELECT workflow.enable_tenant_isolation('workflow.executions');
SELECT workflow.enable_tenant_isolation('workflow.node_executions');
SELECT workflow.enable_tenant_isolation('workflow.dead_letters');
