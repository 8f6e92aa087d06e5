-- Ticket triage: a tenant's label set can stand in for a shipped default of ClassifyTicket
-- (one per field), and a classification can hold a ticket's priority and sentiment beside its
-- category (in `scores`).

ALTER TABLE ai.label_sets
    ADD COLUMN ticket_field text CHECK (ticket_field IN ('category', 'priority', 'sentiment'));
CREATE UNIQUE INDEX label_sets_ticket_field ON ai.label_sets (tenant_id, ticket_field)
    WHERE ticket_field IS NOT NULL;

-- {priority: [{label, score}], sentiment: [...], urgency_cues: [...], priority_label_set,
--  sentiment_label_set}; null for a classification against labels
ALTER TABLE ai.classifications ADD COLUMN ticket jsonb;

-- a label set's linear head beside its prototypes, once its examples are enough
ALTER TABLE ai.classifications DROP CONSTRAINT classifications_method_check;
ALTER TABLE ai.classifications
    ADD CONSTRAINT classifications_method_check CHECK (method IN ('prototype', 'prototype_and_head'));
