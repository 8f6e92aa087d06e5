-- Label sets with their examples, and stored classifications. Every table is tenant-owned and
-- row-level secured.

CREATE TABLE ai.label_sets (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    display_name text NOT NULL,
    description  text NOT NULL DEFAULT '',
    -- [{value, description}]
    labels       jsonb NOT NULL,
    -- grows with every change of the label set or its examples: the etag, and the version
    -- results and cache keys name
    version      bigint NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, display_name)
);

CREATE TABLE ai.label_examples (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL,
    label_set_id      uuid NOT NULL REFERENCES ai.label_sets (id) ON DELETE CASCADE,
    label             text NOT NULL,
    text              text NOT NULL,
    -- the classification it corrects; one correction per classification
    classification_id uuid,
    -- the text's embedding, and the model (`{id}@{version}`) that computed it
    embedding_model   text NOT NULL,
    embedding         real[] NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, classification_id)
);
-- a label set's examples, oldest first (ids are UUIDv7)
CREATE INDEX label_examples_by_label_set ON ai.label_examples (tenant_id, label_set_id, id);

CREATE TABLE ai.classifications (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL,
    model              text NOT NULL,
    model_version      text NOT NULL,
    source             text NOT NULL DEFAULT '',
    content_hash       text NOT NULL,
    cached             boolean NOT NULL,
    inference_micros   bigint NOT NULL,
    text               text NOT NULL,
    truncated          boolean NOT NULL,
    -- null for inline labels
    label_set_id       uuid,
    label_set_version  bigint,
    method             text NOT NULL CHECK (method IN ('prototype')),
    -- [{label, score}], highest first
    scores             jsonb NOT NULL,
    corrected_label    text,
    created_at         timestamptz NOT NULL DEFAULT now()
);
-- listings, newest first
CREATE INDEX classifications_by_time ON ai.classifications (tenant_id, created_at DESC, id DESC);
CREATE INDEX classifications_by_label_set
    ON ai.classifications (tenant_id, label_set_id, created_at DESC, id DESC);

SELECT ai.enable_tenant_isolation('ai.label_sets');
SELECT ai.enable_tenant_isolation('ai.label_examples');
SELECT ai.enable_tenant_isolation('ai.classifications');
