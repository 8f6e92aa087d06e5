-- Views of published forms: one row per GetPublishedForm, whose id is the start token the
-- submitter sends back. A view is started when its token comes back with a submission
-- attempt, and submitted when that submission is accepted (once).

CREATE TABLE forms.form_views (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    form_id      uuid NOT NULL REFERENCES forms.forms (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    submitted_at timestamptz
);
CREATE INDEX form_views_by_form ON forms.form_views (tenant_id, form_id, created_at);

SELECT forms.enable_tenant_isolation('forms.form_views');
