//! A tenant's lifecycle: suspension, reactivation and deletion, by platform operators only.

use platform::context::{RequestContext, TenantId};
use serde_json::json;

use super::{Change, Tenants, load_for_change};
use crate::domain::{SuspensionReason, Tenant, TenantStatus};
use crate::error::Error;

impl Tenants {
    /// Suspends an active tenant.
    #[tracing::instrument(skip_all, fields(tenant_id = %id))]
    pub async fn suspend(
        &self,
        context: &RequestContext,
        id: TenantId,
        reason: SuspensionReason,
    ) -> Result<Tenant, Error> {
        context.require_platform_operator()?;
        let mut transaction = self.db.platform_tx().await?;
        let previous = load_for_change(&mut transaction, id).await?;
        if previous.status != TenantStatus::Active {
            return Err(Error::WrongStatus("only an active tenant can be suspended"));
        }
        let mut tenant = previous.clone();
        tenant.status = TenantStatus::Suspended;
        tenant.suspension_reason = Some(reason.as_str().to_owned());
        let change = Change {
            previous: &previous,
            tenant,
            action: "suspend",
            details: json!({"status": "suspended", "reason": reason.as_str()}),
            changed_fields: &["status"],
        };
        self.save(transaction, context, change).await
    }

    /// Reactivates a suspended tenant.
    #[tracing::instrument(skip_all, fields(tenant_id = %id))]
    pub async fn reactivate(
        &self,
        context: &RequestContext,
        id: TenantId,
    ) -> Result<Tenant, Error> {
        context.require_platform_operator()?;
        let mut transaction = self.db.platform_tx().await?;
        let previous = load_for_change(&mut transaction, id).await?;
        if previous.status != TenantStatus::Suspended {
            return Err(Error::WrongStatus(
                "only a suspended tenant can be reactivated",
            ));
        }
        let mut tenant = previous.clone();
        tenant.status = TenantStatus::Active;
        tenant.suspension_reason = None;
        let change = Change {
            previous: &previous,
            tenant,
            action: "reactivate",
            details: json!({"status": "active"}),
            changed_fields: &["status"],
        };
        self.save(transaction, context, change).await
    }

    /// Marks a tenant deleted.
    #[tracing::instrument(skip_all, fields(tenant_id = %id))]
    pub async fn delete(&self, context: &RequestContext, id: TenantId) -> Result<Tenant, Error> {
        context.require_platform_operator()?;
        let mut transaction = self.db.platform_tx().await?;
        let previous = load_for_change(&mut transaction, id).await?;
        let mut tenant = previous.clone();
        tenant.status = TenantStatus::Deleted;
        let change = Change {
            previous: &previous,
            tenant,
            action: "delete",
            details: json!({"status": "deleted"}),
            changed_fields: &["status"],
        };
        self.save(transaction, context, change).await
    }
}
