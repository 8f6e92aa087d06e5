-- Forms (their editable draft and live settings), their published versions, and the
-- submissions to those versions. Drafts and versions keep their fields as the service's JSON
-- (svc-forms' domain types); every table is tenant-owned and row-level secured.

CREATE TABLE forms.forms (
    id                   uuid PRIMARY KEY,
    tenant_id            uuid NOT NULL,
    slug                 text NOT NULL,
    title                text NOT NULL,
    description          text NOT NULL,
    fields               jsonb NOT NULL,
    settings             jsonb NOT NULL,
    state                text NOT NULL CHECK (state IN ('draft', 'published', 'archived')),
    state_before_archive text CHECK (state_before_archive IN ('draft', 'published')),
    published_version    integer NOT NULL DEFAULT 0,
    draft_changed        boolean NOT NULL DEFAULT true,
    creator              text NOT NULL,
    version              bigint NOT NULL DEFAULT 1,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    published_at         timestamptz,
    archived_at          timestamptz,
    UNIQUE (tenant_id, slug)
);
CREATE INDEX forms_by_update ON forms.forms (tenant_id, updated_at DESC, id DESC);

CREATE TABLE forms.form_versions (
    tenant_id   uuid NOT NULL,
    form_id     uuid NOT NULL REFERENCES forms.forms (id),
    version     integer NOT NULL,
    title       text NOT NULL,
    description text NOT NULL,
    fields      jsonb NOT NULL,
    publisher   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, form_id, version)
);

CREATE TABLE forms.submissions (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    form_id      uuid NOT NULL,
    form_version integer NOT NULL,
    data         jsonb NOT NULL,
    submitter    text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, form_id, form_version)
        REFERENCES forms.form_versions (tenant_id, form_id, version)
);
CREATE INDEX submissions_by_form ON forms.submissions (tenant_id, form_id, created_at DESC, id DESC);

SELECT forms.enable_tenant_isolation('forms.forms');
SELECT forms.enable_tenant_isolation('forms.form_versions');
SELECT forms.enable_tenant_isolation('forms.submissions');
