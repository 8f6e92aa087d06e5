//! Notification preferences: a user's own (read and changed by that user only) and the
//! tenant's defaults (read by viewers, changed by admins).

use platform::context::{Permission, RequestContext, TenantId};
use serde_json::json;

use super::Notify;
use crate::domain::preferences::Preferences;
use crate::error::Error;
use crate::store::{self, Owner, StoredPreferences};

/// Changes to preferences: each `Some` field replaces the stored one.
#[derive(Debug, Clone, Default)]
pub struct PreferenceChanges {
    /// The fields to set (`Some`), each replacing what was set.
    pub preferences: Preferences,
    /// The version the caller read (from its etag).
    pub expected_version: Option<i64>,
}

impl Notify {
    /// The caller's preferences over the tenant's defaults, with the version of the caller's
    /// own (0 when never saved).
    pub async fn get_preferences(
        &self,
        context: &RequestContext,
    ) -> Result<(Owner, StoredPreferences), Error> {
        let (user, tenant, _) = context.user()?;
        let owner = Owner::User(user);
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let own = store::get_preferences(&mut transaction, tenant, owner).await?;
        let defaults = store::get_preferences(&mut transaction, tenant, Owner::Tenant).await?;
        transaction.commit().await?;
        Ok((
            owner,
            StoredPreferences {
                preferences: own.preferences.over(&defaults.preferences),
                ..own
            },
        ))
    }

    /// Changes the caller's preferences and answers them over the tenant's defaults.
    pub async fn update_preferences(
        &self,
        context: &RequestContext,
        changes: PreferenceChanges,
    ) -> Result<(Owner, StoredPreferences), Error> {
        let (user, tenant, _) = context.user()?;
        let saved = self
            .save(context, tenant, Owner::User(user), changes)
            .await?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let defaults = store::get_preferences(&mut transaction, tenant, Owner::Tenant).await?;
        transaction.commit().await?;
        Ok((
            Owner::User(user),
            StoredPreferences {
                preferences: saved.preferences.over(&defaults.preferences),
                ..saved
            },
        ))
    }

    /// The tenant's default preferences.
    pub async fn get_tenant_preferences(
        &self,
        context: &RequestContext,
    ) -> Result<StoredPreferences, Error> {
        let tenant = context.authorize(Permission::NotificationsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let defaults = store::get_preferences(&mut transaction, tenant, Owner::Tenant).await?;
        transaction.commit().await?;
        Ok(defaults)
    }

    /// Changes the tenant's default preferences.
    pub async fn update_tenant_preferences(
        &self,
        context: &RequestContext,
        changes: PreferenceChanges,
    ) -> Result<StoredPreferences, Error> {
        let tenant = context.authorize(Permission::NotificationsManage)?;
        self.save(context, tenant, Owner::Tenant, changes).await
    }

    async fn save(
        &self,
        context: &RequestContext,
        tenant: TenantId,
        owner: Owner,
        changes: PreferenceChanges,
    ) -> Result<StoredPreferences, Error> {
        changes.preferences.check("preferences").into_result()?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let stored = store::get_preferences(&mut transaction, tenant, owner).await?;
        if changes
            .expected_version
            .is_some_and(|expected| expected != stored.version)
        {
            return Err(
                platform::error::CommonError::EtagMismatch("notification preferences").into(),
            );
        }
        let mut preferences = stored.preferences;
        let mut fields = Vec::new();
        if let Some(disabled) = changes.preferences.disabled_channels {
            preferences.disabled_channels = Some(disabled);
            fields.push("disabled_channels");
        }
        if let Some(topics) = changes.preferences.topics {
            preferences.topics = Some(topics);
            fields.push("topics");
        }
        if let Some(quiet_hours) = changes.preferences.quiet_hours {
            preferences.quiet_hours = Some(quiet_hours);
            fields.push("quiet_hours");
        }
        let (version, updated_at) =
            store::save_preferences(&mut transaction, tenant, owner, &preferences).await?;
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "preferences.update",
                owner.resource_name(),
                json!({"fields": fields}),
            )
            .await?;
        transaction.commit().await?;
        Ok(StoredPreferences {
            preferences,
            version,
            updated_at: Some(updated_at),
        })
    }
}
