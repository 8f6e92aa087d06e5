//! `Idempotency-Key` for calls that create things (Stripe's semantics and the IETF draft's):
//! the first successful answer to a key is stored with the change it made, in the same
//! transaction, and answered again to a retry with the same key and the same request; the same
//! key with another request is refused (the gateway answers 422), and a retry that arrives
//! while the first call is still running is refused as in flight (409).
//!
//! Keys live in each schema's `idempotency_keys` table (the platform's migrations), per tenant
//! and scope (the RPC and its target), for [`RETENTION`]. A call that fails stores nothing:
//! nothing was written, so a retry runs again. The in-flight check is a transaction-scoped
//! advisory lock on the key, so a crashed call frees its key at once.
//!
//! ```ignore
//! let call = keys.call(tenant, &scope, context.idempotency_key.as_ref(), &request);
//! let mut transaction = db.tenant_tx(tenant).await?;
//! if let Some(answer) = call.replay(&mut transaction).await? {
//!     transaction.commit().await?;
//!     return Ok(answer);
//! }
//! let answer = /* the change */;
//! call.complete(&mut transaction, &answer).await?;
//! transaction.commit().await?;
//! ```

use std::sync::Arc;

use anyhow::Context;
use ring::digest;
use sqlx::PgConnection;

use crate::context::TenantId;
use crate::db::Db;

/// How long an answer is kept for retries.
pub const RETENTION: &str = "24 hours";

/// Metadata key of the idempotency key (the `Idempotency-Key` HTTP header).
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// A client's idempotency key: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Why a key was refused.
    pub const INVALID: &'static str =
        "the idempotency key must be 1 to 255 visible ASCII characters";

    /// Parses a key as a client sent it.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let valid = (1..=255).contains(&text.len())
            && text
                .bytes()
                .all(|byte| byte.is_ascii_graphic() || byte == b' ');
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(Self::INVALID)
        }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// A call with this key is running.
    #[error("a request with this idempotency key is in progress; retry once it has finished")]
    InFlight,
    /// The key answered another request.
    #[error("this idempotency key was used for a different request")]
    Reused,
    /// Postgres failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for IdempotencyError {
    fn from(error: sqlx::Error) -> Self {
        IdempotencyError::Unexpected(error.into())
    }
}

/// A service's idempotency keys, in `<schema>.idempotency_keys`.
#[derive(Debug, Clone)]
pub struct Idempotency {
    table: Arc<str>,
}

impl Idempotency {
    /// The keys in `<schema>.idempotency_keys`.
    pub fn new(schema: &str) -> Self {
        Self {
            table: format!("{schema}.idempotency_keys").into(),
        }
    }

    /// The use of `key` (none when the call has no key) by one call in `scope` (the RPC and
    /// its target, e.g. `SubmitForm forms/…`) of `tenant`, whose request's canonical bytes
    /// are `request`.
    pub fn call<'a>(
        &'a self,
        tenant: TenantId,
        scope: &'a str,
        key: Option<&'a IdempotencyKey>,
        request: &'a [u8],
    ) -> Call<'a> {
        Call {
            table: &self.table,
            tenant,
            scope,
            key,
            request,
        }
    }

    /// Deletes every tenant's keys older than [`RETENTION`], in a transaction of its own.
    pub async fn forget_expired(&self, db: &Db) -> anyhow::Result<u64> {
        let mut transaction = db.platform_tx().await?;
        let deleted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {} WHERE created_at < now() - interval '{RETENTION}'",
            self.table
        )))
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(deleted.rows_affected())
    }
}

/// One call's use of its idempotency key ([`Idempotency::call`]).
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    table: &'a str,
    tenant: TenantId,
    scope: &'a str,
    key: Option<&'a IdempotencyKey>,
    request: &'a [u8],
}

impl Call<'_> {
    /// Claims the key inside the transaction of the call's change: the answer to give again
    /// when the same request was answered under it before, `None` for a first call (or a call
    /// without a key), an error when a call with the key is running or it answered another
    /// request.
    pub async fn replay<T: prost::Message + Default>(
        &self,
        transaction: &mut PgConnection,
    ) -> Result<Option<T>, IdempotencyError> {
        let Some(key) = self.key else {
            return Ok(None);
        };
        let (locked,): (bool,) =
            sqlx::query_as("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(format!(
                    "{}\n{}\n{}\n{}",
                    self.table,
                    self.tenant,
                    self.scope,
                    key.as_str()
                ))
                .fetch_one(&mut *transaction)
                .await?;
        if !locked {
            return Err(IdempotencyError::InFlight);
        }
        let stored: Option<(Vec<u8>, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT request_digest, answer FROM {} WHERE tenant_id = $1 AND scope = $2 AND key = $3 \
             AND created_at > now() - interval '{RETENTION}'",
            self.table
        )))
        .bind(self.tenant.as_uuid())
        .bind(self.scope)
        .bind(key.as_str())
        .fetch_optional(&mut *transaction)
        .await?;
        match stored {
            None => Ok(None),
            Some((stored_digest, _)) if stored_digest != request_digest(self.request) => {
                Err(IdempotencyError::Reused)
            }
            Some((_, answer)) => Ok(Some(
                T::decode(answer.as_slice()).context("decoding a stored answer")?,
            )),
        }
    }

    /// Stores `answer` for the key in the transaction of the change it answers: the key is
    /// used once that commits.
    pub async fn complete<T: prost::Message>(
        &self,
        transaction: &mut PgConnection,
        answer: &T,
    ) -> anyhow::Result<()> {
        let Some(key) = self.key else {
            return Ok(());
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {} (tenant_id, scope, key, request_digest, answer) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, scope, key) DO UPDATE \
             SET request_digest = excluded.request_digest, answer = excluded.answer, created_at = now()",
            self.table
        )))
        .bind(self.tenant.as_uuid())
        .bind(self.scope)
        .bind(key.as_str())
        .bind(request_digest(self.request))
        .bind(answer.encode_to_vec())
        .execute(transaction)
        .await
        .context("storing the answer of an idempotency key")?;
        Ok(())
    }
}

/// The bytes a JSON request is compared by: its JSON with every object's keys sorted, so the
/// same payload sent with another key order is the same request.
pub fn canonical_json(value: &serde_json::Value) -> Vec<u8> {
    fn sorted(value: &serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(object) => {
                let mut entries: Vec<(&String, &serde_json::Value)> = object.iter().collect();
                entries.sort_by_key(|(key, _)| *key);
                serde_json::Value::Object(
                    entries
                        .into_iter()
                        .map(|(key, value)| (key.clone(), sorted(value)))
                        .collect(),
                )
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(sorted).collect())
            }
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sorted(value)).expect("JSON values serialise")
}

fn request_digest(request: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, request).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_does_not_change_a_request() {
        let one = serde_json::json!({"b": 1, "a": {"y": [1, {"d": 2, "c": 3}], "x": true}});
        let other = serde_json::json!({"a": {"x": true, "y": [1, {"c": 3, "d": 2}]}, "b": 1});
        assert_eq!(canonical_json(&one), canonical_json(&other));
        let changed = serde_json::json!({"a": {"x": true, "y": [{"c": 3, "d": 2}, 1]}, "b": 1});
        assert_ne!(canonical_json(&one), canonical_json(&changed));
    }

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(IdempotencyKey::parse("order-42 retry").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in ["", "\n", "é", &"k".repeat(256)] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }
}
