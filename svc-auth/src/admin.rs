//! Platform administrators: created by the setup script or this CLI, never by sign-up.

use platform::audit::{AuditEntry, AuditLog};
use platform::context::UserId;
use platform::db::Db;
use secrecy::SecretString;

use crate::app::SCHEMA;
use crate::crypto::Passwords;
use crate::domain::{Email, PersonName};
use crate::store;

/// Creates a platform administrator with `password`, or makes the existing account with
/// `email` one (its password unchanged). Answers the user and whether the account is new.
pub async fn ensure_platform_admin(
    db: &Db,
    passwords: &Passwords,
    email: &Email,
    display_name: &PersonName,
    password: &SecretString,
) -> anyhow::Result<(UserId, bool)> {
    let mut transaction = db.platform_tx().await?;
    let (user_id, created) = match store::find_user_by_email(&mut transaction, email).await? {
        Some(user) => {
            store::make_platform_admin(&mut transaction, user.id).await?;
            (user.id, false)
        }
        None => {
            let hash = passwords.hash(password).await?;
            let user_id = UserId::generate();
            store::insert_user(&mut transaction, user_id, email, display_name, &hash, true).await?;
            (user_id, true)
        }
    };
    // No call is behind this: the setup script or the CLI acts.
    let entry = AuditEntry {
        tenant_id: None,
        actor: "setup".to_owned(),
        action: "user.platform_admin",
        target: platform::wire::resource_name("users", user_id),
        details: serde_json::json!({"new_user": created}),
        request_id: String::new(),
    };
    AuditLog::new(SCHEMA.name)
        .record(&mut transaction, entry)
        .await?;
    transaction.commit().await?;
    Ok((user_id, created))
}
