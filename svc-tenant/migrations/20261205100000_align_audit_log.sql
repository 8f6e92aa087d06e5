-- The audit trail takes the shape every service shares (platform/migrations): what changed
-- is named by `target`, and `changes` becomes `details`.
ALTER TABLE tenant.audit_log RENAME COLUMN changes TO details;
ALTER TABLE tenant.audit_log ADD COLUMN target text;
UPDATE tenant.audit_log SET target = 'tenants/' || tenant_id;
ALTER TABLE tenant.audit_log ALTER COLUMN target SET NOT NULL;
