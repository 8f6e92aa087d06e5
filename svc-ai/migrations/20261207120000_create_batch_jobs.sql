-- Batch jobs and their items. A job row is its own outbox: a QUEUED or RUNNING job whose lease
-- has lapsed is work to do, whatever happened to its message on `jobs.ai`. Items keep their
-- result once processed, so a job taken over after a crash resumes where it was.

CREATE TABLE ai.batch_jobs (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL,
    task             text NOT NULL CHECK (task IN ('embed', 'classify', 'classify_ticket')),
    model            text NOT NULL,
    label_set_id     uuid,
    webhook_endpoint text NOT NULL DEFAULT '',
    state            text NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    total_count      integer NOT NULL,
    processed_count  integer NOT NULL DEFAULT 0,
    failed_count     integer NOT NULL DEFAULT 0,
    error            text NOT NULL DEFAULT '',
    -- who works on it and until when; a lapsed lease may be taken over
    lease_token      uuid,
    lease_until      timestamptz,
    -- takes of the job; past the limit it fails instead of being taken again
    attempts         integer NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL,
    started_at       timestamptz,
    ended_at         timestamptz,
    expire_at        timestamptz
);
-- listings, newest first
CREATE INDEX batch_jobs_by_time ON ai.batch_jobs (tenant_id, created_at DESC, id DESC);
-- the sweeper's scan of unfinished jobs
CREATE INDEX batch_jobs_unfinished ON ai.batch_jobs (lease_until) WHERE state IN ('queued', 'running');

CREATE TABLE ai.batch_items (
    tenant_id uuid NOT NULL,
    job_id    uuid NOT NULL REFERENCES ai.batch_jobs (id) ON DELETE CASCADE,
    position  integer NOT NULL,
    item_id   text NOT NULL,
    text      text NOT NULL,
    subject   text NOT NULL DEFAULT '',
    source    text NOT NULL DEFAULT '',
    -- the item's BatchResult (proto3 JSON) once processed
    result    jsonb,
    PRIMARY KEY (job_id, position)
);

SELECT ai.enable_tenant_isolation('ai.batch_jobs');
SELECT ai.enable_tenant_isolation('ai.batch_items');
