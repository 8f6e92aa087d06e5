//! The audit trail: who changed what, when and in which request, in each service's
//! `<schema>.audit_log` (one shape for every service, created by the platform's migrations).
//! Entries are written in the transaction of the change they record, so neither exists
//! without the other.

use std::sync::Arc;

use anyhow::Context;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::context::{RequestContext, TenantId};

/// One entry of the trail.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Tenant concerned; `None` for platform-wide changes (signing keys).
    pub tenant_id: Option<TenantId>,
    /// Who did it: `user:…`, `platform-admin:…`, `api-key:…`, `service:…` or `anonymous`.
    pub actor: String,
    /// What was done, `resource.verb` or a verb: `member.update`, `suspend`.
    pub action: &'static str,
    /// What it was done to: a resource name (`tenants/…`, `members/…`).
    pub target: String,
    /// The change, never secrets.
    pub details: serde_json::Value,
    /// Request id, to find the call in the logs.
    pub request_id: String,
}

impl AuditEntry {
    /// An entry for what the caller of `context` did to `target` in `tenant`.
    pub fn by(
        context: &RequestContext,
        tenant_id: Option<TenantId>,
        action: &'static str,
        target: impl Into<String>,
        details: serde_json::Value,
    ) -> Self {
        Self {
            tenant_id,
            actor: context.actor(),
            action,
            target: target.into(),
            details,
            request_id: context.request_id.clone(),
        }
    }
}

/// A service's audit trail, in `<schema>.audit_log`.
#[derive(Debug, Clone)]
pub struct AuditLog {
    table: Arc<str>,
}

impl AuditLog {
    /// The trail in `<schema>.audit_log`.
    pub fn new(schema: &str) -> Self {
        Self {
            table: format!("{schema}.audit_log").into(),
        }
    }

    /// Appends `entry` inside the caller's transaction.
    pub async fn record(
        &self,
        transaction: &mut PgConnection,
        entry: AuditEntry,
    ) -> anyhow::Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {} (id, tenant_id, actor, action, target, details, request_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            self.table
        )))
        .bind(Uuid::now_v7())
        .bind(entry.tenant_id.map(|tenant| tenant.as_uuid()))
        .bind(entry.actor)
        .bind(entry.action)
        .bind(entry.target)
        .bind(entry.details)
        .bind(entry.request_id)
        .execute(transaction)
        .await
        .context("writing to the audit log")?;
        Ok(())
    }

    /// Appends what the caller of `context` did to `target` in `tenant` ([`AuditEntry::by`])
    /// inside the caller's transaction.
    pub async fn record_by(
        &self,
        transaction: &mut PgConnection,
        context: &RequestContext,
        tenant: TenantId,
        action: &'static str,
        target: String,
        details: serde_json::Value,
    ) -> anyhow::Result<()> {
        let entry = AuditEntry::by(context, Some(tenant), action, target, details);
        self.record(transaction, entry).await
    }
}
