-- Analyses of form submissions: the classification of a submission's text answers and their
-- embedding, which similar-submission search compares. One per submission and tenant;
-- analyzing again replaces it.

CREATE TABLE ai.submission_analyses (
    -- the submission's id; the analysis is `submissionAnalyses/{id}`
    id                uuid NOT NULL,
    tenant_id         uuid NOT NULL,
    -- `forms/{form}/submissions/{id}`, the source of its classifications
    submission        text NOT NULL,
    -- `forms/{form}`
    form              text NOT NULL,
    -- checked at commit: the analysis is saved first, its classification only when it was
    classification_id uuid NOT NULL REFERENCES ai.classifications (id) DEFERRABLE INITIALLY DEFERRED,
    -- the model (`{id}@{version}`) that computed the embedding: only embeddings of one model
    -- compare
    embedding_model   text NOT NULL,
    -- unit-length f32 values, little-endian: half the bytes of real[] on the wire, and read
    -- by the exact scan without parsing
    embedding         bytea NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
-- the exact scan reads a tenant's newest embeddings of one model, of every form or of one
CREATE INDEX submission_analyses_by_time
    ON ai.submission_analyses (tenant_id, embedding_model, updated_at DESC);
CREATE INDEX submission_analyses_by_form
    ON ai.submission_analyses (tenant_id, embedding_model, form, updated_at DESC);

SELECT ai.enable_tenant_isolation('ai.submission_analyses');
