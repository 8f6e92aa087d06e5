//! Credentials: created, renamed and rotated by admins, read without their values by those who
//! edit workflows, deleted when no active workflow uses them. Values are sealed with the
//! service's keys, bound to their credential, and never leave the service but to the nodes
//! that use them.

use chrono::{SubsecRound, Utc};
use platform::context::{Permission, RequestContext, TenantId};
use platform::error::{CommonError, FieldViolations};
use platform::paging::{fetch_limit, split_page};
use serde_json::{Map, Value, json};
use sqlx::PgConnection;

use super::{Workflows, credential_name};
use crate::domain::{Credential, CredentialId, CredentialType, CredentialValue};
use crate::error::Error;
use crate::store::{self, CredentialPosition};

/// A validated create request.
#[derive(Debug, Clone)]
pub struct NewCredential {
    /// Human-readable name, unique in the tenant.
    pub display_name: String,
    /// Its type.
    pub kind: CredentialType,
    /// Its value, of the type's shape.
    pub value: CredentialValue,
}

/// A validated update: the parts its mask names.
#[derive(Debug, Clone, Default)]
pub struct CredentialChanges {
    /// New display name.
    pub display_name: Option<String>,
    /// New value, checked against the credential's type here.
    pub value: Option<Map<String, Value>>,
    /// The row version the client read, if it sent an etag.
    pub expected_version: Option<i64>,
}

/// A page of credentials and where the next starts.
#[derive(Debug)]
pub struct CredentialPage {
    /// The credentials.
    pub credentials: Vec<Credential>,
    /// Where the next page starts, when there is one.
    pub next: Option<CredentialPosition>,
}

/// What a sealed value is bound to: its tenant and credential.
pub fn seal_context(tenant: TenantId, id: CredentialId) -> String {
    format!("workflow-credential:{tenant}:{id}")
}

impl Workflows {
    /// Creates a credential with its value sealed.
    #[tracing::instrument(skip_all)]
    pub async fn create_credential(
        &self,
        context: &RequestContext,
        new: NewCredential,
    ) -> Result<Credential, Error> {
        let tenant = context.authorize(Permission::CredentialsManage)?;
        let now = Utc::now().trunc_subsecs(6);
        let credential = Credential {
            id: CredentialId::generate(),
            tenant_id: tenant,
            display_name: new.display_name,
            kind: new.kind,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let sealed = self
            .sealer
            .seal(&seal_context(tenant, credential.id), &new.value.to_json())?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        if !store::insert_credential(&mut transaction, &credential, &sealed).await? {
            return Err(Error::CredentialNameTaken(credential.display_name));
        }
        let details =
            json!({"display_name": credential.display_name, "type": credential.kind.as_str()});
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "credential.create",
                credential_name(credential.id),
                details,
            )
            .await?;
        transaction.commit().await?;
        tracing::info!(credential_id = %credential.id, "credential created");
        Ok(credential)
    }

    /// Reads a credential without its value.
    #[tracing::instrument(skip_all)]
    pub async fn get_credential(
        &self,
        context: &RequestContext,
        id: CredentialId,
    ) -> Result<Credential, Error> {
        let tenant = context.authorize(Permission::WorkflowsWrite)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let credential = load(&mut transaction, tenant, id, false).await?;
        transaction.commit().await?;
        Ok(credential)
    }

    /// One page of credentials by display name, without values.
    #[tracing::instrument(skip_all)]
    pub async fn list_credentials(
        &self,
        context: &RequestContext,
        after: Option<CredentialPosition>,
        kind: Option<CredentialType>,
        page_size: usize,
    ) -> Result<CredentialPage, Error> {
        let tenant = context.authorize(Permission::WorkflowsWrite)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let limit = fetch_limit(page_size);
        let credentials =
            store::list_credentials(&mut transaction, tenant, after, kind, limit).await?;
        transaction.commit().await?;
        let (credentials, next) = split_page(credentials, page_size, |credential| {
            (credential.display_name.clone(), credential.id)
        });
        Ok(CredentialPage { credentials, next })
    }

    /// Renames a credential or replaces its value (every workflow using it uses the new one).
    #[tracing::instrument(skip_all)]
    pub async fn update_credential(
        &self,
        context: &RequestContext,
        id: CredentialId,
        changes: CredentialChanges,
    ) -> Result<Credential, Error> {
        let tenant = context.authorize(Permission::CredentialsManage)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let mut credential = load(&mut transaction, tenant, id, true).await?;
        if changes
            .expected_version
            .is_some_and(|expected| expected != credential.version)
        {
            return Err(CommonError::EtagMismatch("credential").into());
        }
        let mut changed = Vec::new();
        if let Some(display_name) = changes
            .display_name
            .filter(|display_name| *display_name != credential.display_name)
        {
            credential.display_name = display_name;
            changed.push("display_name");
        }
        let sealed = match changes.value {
            Some(value) => {
                let value = CredentialValue::parse(credential.kind, value).map_err(|problems| {
                    let mut violations = FieldViolations::new();
                    for (key, reason) in problems {
                        violations.add(value_path(&key), reason);
                    }
                    violations
                })?;
                changed.push("value");
                Some(
                    self.sealer
                        .seal(&seal_context(tenant, id), &value.to_json())?,
                )
            }
            None => None,
        };
        if changed.is_empty() {
            transaction.commit().await?;
            return Ok(credential);
        }
        (credential.version, credential.updated_at) =
            store::update_credential(&mut transaction, &credential, sealed.as_deref())
                .await?
                .ok_or_else(|| Error::CredentialNameTaken(credential.display_name.clone()))?;
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "credential.update",
                credential_name(id),
                json!({"changed": changed}),
            )
            .await?;
        transaction.commit().await?;
        Ok(credential)
    }

    /// Deletes a credential that no active workflow version uses.
    #[tracing::instrument(skip_all)]
    pub async fn delete_credential(
        &self,
        context: &RequestContext,
        id: CredentialId,
    ) -> Result<(), Error> {
        let tenant = context.authorize(Permission::CredentialsManage)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let credential = load(&mut transaction, tenant, id, true).await?;
        let users = store::workflows_using(&mut transaction, tenant, id).await?;
        if !users.is_empty() {
            const NAMED: usize = 5;
            let mut named: Vec<String> = users
                .iter()
                .take(NAMED)
                .map(|(workflow, display_name)| format!("{display_name} (workflows/{workflow})"))
                .collect();
            if users.len() > NAMED {
                named.push(format!("{} more", users.len() - NAMED));
            }
            return Err(Error::CredentialInUse(named.join(", ")));
        }
        store::delete_credential(&mut transaction, tenant, id).await?;
        let details = json!({"display_name": credential.display_name});
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "credential.delete",
                credential_name(id),
                details,
            )
            .await?;
        transaction.commit().await?;
        Ok(())
    }
}

/// The request path of a value's key (`credential.value.token`), or of the whole value.
pub fn value_path(key: &str) -> String {
    if key.is_empty() {
        "credential.value".to_owned()
    } else {
        format!("credential.value.{key}")
    }
}

/// The credential `id` of `tenant`, or CREDENTIAL_NOT_FOUND.
async fn load(
    transaction: &mut PgConnection,
    tenant: TenantId,
    id: CredentialId,
    for_update: bool,
) -> Result<Credential, Error> {
    store::get_credential(transaction, tenant, id, for_update)
        .await?
        .ok_or_else(|| Error::CredentialNotFound(credential_name(id)))
}
