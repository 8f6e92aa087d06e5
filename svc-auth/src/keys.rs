//! The keys that sign tokens. One key signs at a time; after a rotation the previous key stays
//! in the published key set until every token it signed has expired. Private keys are stored
//! sealed; every replica reloads the ring every few seconds, so a rotation made by one replica
//! reaches the others quickly (and their tokens keep verifying meanwhile, since the key they
//! still sign with stays published).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use platform::auth::{Claims, JwtSigner, JwtVerifier};
use sqlx::PgPool;

use platform::crypto::Sealer;

/// Algorithm of every key.
pub const ALGORITHM: &str = "EdDSA";

/// A signing key as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyInfo {
    /// Key id.
    pub kid: String,
    /// Whether it signs new tokens.
    pub active: bool,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Retired at, when retired.
    pub retired_at: Option<DateTime<Utc>>,
}

struct Loaded {
    signer: JwtSigner,
    active: SigningKeyInfo,
    jwks: JwkSet,
}

/// The signing keys, loaded from the database.
pub struct KeyRing {
    pool: PgPool,
    sealer: Arc<Sealer>,
    /// Retired keys stay published this long: the longest token lifetime, plus leeway.
    retention: Duration,
    loaded: RwLock<Arc<Loaded>>,
    verifier: JwtVerifier,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("KeyRing")
            .field("active", &self.active().kid)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// How often each replica reloads the ring, to pick up a rotation another replica made.
    pub const RELOAD_PERIOD: Duration = Duration::from_secs(10);

    /// Loads the ring, creating the first key on a fresh database. `verifier` (which may pin
    /// extra keys) is kept trusting exactly the ring's published keys besides those.
    pub async fn load(
        pool: PgPool,
        sealer: Arc<Sealer>,
        verifier: JwtVerifier,
        retention: Duration,
    ) -> anyhow::Result<Arc<KeyRing>> {
        if !has_active_key(&pool).await? {
            // Replicas starting together race here; the unique index keeps one active key.
            insert_active_key(&pool, &sealer, false).await?;
        }
        let loaded = load(&pool, &sealer, retention).await?;
        verifier.replace_keys(&loaded.jwks)?;
        Ok(Arc::new(KeyRing {
            pool,
            sealer,
            retention,
            loaded: RwLock::new(Arc::new(loaded)),
            verifier,
        }))
    }

    fn current(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Reloads from the database.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let loaded = load(&self.pool, &self.sealer, self.retention).await?;
        self.verifier.replace_keys(&loaded.jwks)?;
        *self
            .loaded
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(loaded);
        Ok(())
    }

    /// Signs `claims` with the active key.
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        self.current().signer.sign(claims)
    }

    /// The published key set: the active key and the retired keys still within retention.
    pub fn jwks(&self) -> JwkSet {
        self.current().jwks.clone()
    }

    /// The active key.
    pub fn active(&self) -> SigningKeyInfo {
        self.current().active.clone()
    }

    /// A verifier trusting exactly the published keys (svc-auth's own).
    pub fn verifier(&self) -> JwtVerifier {
        self.verifier.clone()
    }

    /// Retires the active key and makes a new one active; returns the new key.
    pub async fn rotate(&self) -> anyhow::Result<SigningKeyInfo> {
        insert_active_key(&self.pool, &self.sealer, true).await?;
        self.reload().await?;
        Ok(self.active())
    }
}

async fn has_active_key(pool: &PgPool) -> anyhow::Result<bool> {
    let active = sqlx::query_scalar!("SELECT kid FROM auth.signing_keys WHERE state = 'active'")
        .fetch_optional(pool)
        .await?;
    Ok(active.is_some())
}

/// Inserts a new active key, retiring the current one first when `retire_current`. Without it,
/// an active key inserted concurrently wins and this one is dropped.
async fn insert_active_key(
    pool: &PgPool,
    sealer: &Sealer,
    retire_current: bool,
) -> anyhow::Result<()> {
    let signer = JwtSigner::generate()?;
    let sealed = sealer.seal(&seal_context(signer.key_id()), signer.pkcs8())?;
    let public_jwk = serde_json::to_value(signer.jwk())?;
    let mut transaction = pool.begin().await?;
    if retire_current {
        sqlx::query!(
            "UPDATE auth.signing_keys SET state = 'retired', retired_at = now() WHERE state = 'active'"
        )
        .execute(&mut *transaction)
        .await?;
    }
    sqlx::query!(
        "INSERT INTO auth.signing_keys (kid, algorithm, private_key, public_jwk, state) \
         VALUES ($1, $2, $3, $4, 'active') \
         ON CONFLICT (state) WHERE state = 'active' DO NOTHING",
        signer.key_id(),
        ALGORITHM,
        sealed,
        public_jwk,
    )
    .execute(&mut *transaction)
    .await
    .context("storing a signing key")?;
    transaction.commit().await?;
    Ok(())
}

async fn load(pool: &PgPool, sealer: &Sealer, retention: Duration) -> anyhow::Result<Loaded> {
    let retention_seconds = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
    let rows = sqlx::query!(
        "SELECT kid, private_key, public_jwk, state, created_at, retired_at FROM auth.signing_keys \
         WHERE state = 'active' OR retired_at > now() - make_interval(secs => $1) \
         ORDER BY created_at DESC",
        retention_seconds as f64,
    )
    .fetch_all(pool)
    .await?;
    let mut signer = None;
    let mut active = None;
    let mut keys = Vec::new();
    for row in rows {
        keys.push(serde_json::from_value(row.public_jwk).context("stored JWK")?);
        if row.state == "active" {
            let pkcs8 = sealer
                .open(&seal_context(&row.kid), &row.private_key)
                .with_context(|| format!("opening signing key {}", row.kid))?;
            signer = Some(JwtSigner::from_pkcs8(&pkcs8)?);
            active = Some(SigningKeyInfo {
                kid: row.kid,
                active: true,
                created_at: row.created_at,
                retired_at: None,
            });
        }
    }
    Ok(Loaded {
        signer: signer.context("no active signing key")?,
        active: active.context("no active signing key")?,
        jwks: JwkSet { keys },
    })
}

fn seal_context(kid: &str) -> String {
    format!("signing-key:{kid}")
}
