use platform::context::TenantId;
use sqlx::PgConnection;
use uuid::Uuid;

/// An entry of the audit trail of security-relevant changes.
#[derive(Debug)]
pub struct AuditEntry<'a> {
    /// Tenant concerned; `None` for platform-wide changes (signing keys).
    pub tenant_id: Option<TenantId>,
    /// Who did it (`user:…`, `platform-admin:…`, `service:…`, `anonymous`).
    pub actor: String,
    /// What: `user.sign_up`, `session.revoke`, `member.update`, …
    pub action: &'static str,
    /// What it was done to: a resource name.
    pub target: String,
    /// Details, never secrets.
    pub details: serde_json::Value,
    /// Request id, to find the call in the logs.
    pub request_id: &'a str,
}

/// Appends to the audit trail.
pub async fn insert_audit(
    connection: &mut PgConnection,
    entry: AuditEntry<'_>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO auth.audit_log (id, tenant_id, actor, action, target, details, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        Uuid::now_v7(),
        entry.tenant_id.map(|tenant| tenant.as_uuid()),
        entry.actor,
        entry.action,
        entry.target,
        entry.details,
        entry.request_id,
    )
    .execute(connection)
    .await?;
    Ok(())
}
