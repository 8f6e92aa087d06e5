//! Local token verification against the keys svc-auth publishes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::client::Balanced;
use anyhow::Context;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use proto::formflow::auth::v1::GetJwksRequest;
use proto::formflow::auth::v1::auth_service_client::AuthServiceClient;
use tokio::time::Instant;

use super::{AuthError, Claims};
use crate::config::AuthConfig;
use crate::redis::Redis;

/// Seconds of clock skew tolerated on `exp`, `nbf` and `iat`, the one leeway of every check of
/// a token's validity window.
const LEEWAY_SECONDS: u64 = 30;
/// Shortest time between two fetches of svc-auth's key set caused by unknown key ids: tokens
/// with made-up key ids cost svc-auth at most four fetches a second per replica, and a key it
/// just started signing with is trusted within a quarter of a second.
const MIN_REFETCH_INTERVAL: Duration = Duration::from_millis(250);
/// How often the key set is fetched anyway, to drop keys svc-auth no longer publishes.
const PERIODIC_REFETCH: Duration = Duration::from_secs(300);
/// How often the key set is fetched while no fetch has succeeded since start (svc-auth was
/// unreachable then).
const RETRY_UNTIL_FETCHED: Duration = Duration::from_secs(2);
/// Redis key (under the deployment's prefix) of the last key set fetched.
const CACHE_KEY: &str = "auth:jwks";
/// How long the cached key set is kept: svc-auth's keys sign for hours, so a week-old set is
/// of no use.
const CACHE_SECONDS: u64 = 7 * 24 * 3600;
/// How many verified tokens are remembered, and for how long at most: a signature check costs
/// ~50 µs of CPU, a hit well under one. A remembered token is trusted exactly as long as a
/// fresh check would trust it: until it expires, or until a key is dropped from the key set.
const VERIFIED_TOKENS: u64 = 20_000;
const VERIFIED_TOKEN_TTL: Duration = Duration::from_secs(300);

/// Verifies tokens locally. Keys come from svc-auth's `GetJwks` (fetched at start, again when a
/// token names a key not seen yet, and every few minutes) and/or from a JWKS file pinned at
/// start. Each key set fetched is cached in Redis, so that a replica starting while svc-auth is
/// unreachable verifies tokens with the cached keys; with neither, it starts without keys
/// ([`JwtVerifier::keys_loaded`] waits for them) and fetches every few seconds. Cheap to clone.
#[derive(Clone)]
pub struct JwtVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    validation: Validation,
    /// Keys from the JWKS file; they never change.
    pinned: HashMap<String, DecodingKey>,
    /// Keys from svc-auth, replaced on every fetch.
    fetched: RwLock<HashMap<String, DecodingKey>>,
    remote: Option<Remote>,
    /// Tokens verified lately, with their claims and the key generation they were verified
    /// in: a caller sends the same token for minutes (the gateway its service token beside
    /// every call).
    verified: moka::sync::Cache<String, (Arc<Claims>, u64)>,
    /// Counts the key sets that dropped a key: a token verified in an earlier generation is
    /// checked again, as it may be signed with a key no longer trusted.
    generation: AtomicU64,
    /// Whether any key is known, pinned or fetched.
    loaded: tokio::sync::watch::Sender<bool>,
}

struct Remote {
    client: AuthServiceClient<Balanced>,
    /// When the key set was last fetched; the lock also makes concurrent refetches wait for the
    /// one in flight instead of starting their own.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    /// Where the last key set fetched is kept for replicas that start during an outage.
    cache: Option<Redis>,
    /// Whether a fetch succeeded since start (cached keys are only a stand-in).
    fetched_once: AtomicBool,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fetched: Vec<String> = self
            .inner
            .fetched
            .read()
            .map(|keys| keys.keys().cloned().collect())
            .unwrap_or_default();
        formatter
            .debug_struct("JwtVerifier")
            .field("pinned", &self.inner.pinned.keys().collect::<Vec<_>>())
            .field("fetched", &fetched)
            .field("remote", &self.inner.remote.is_some())
            .finish()
    }
}

impl JwtVerifier {
    /// A verifier trusting exactly the keys of `jwks`.
    pub fn new(jwks: &JwkSet, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        Ok(Self::build(decoding_keys(jwks)?, None, issuer, audience))
    }

    /// A verifier as the config says: keys from svc-auth at `AUTH_URL` and/or pinned from
    /// `AUTH_JWKS_FILE`. svc-auth's keys are fetched now and cached in `cache`; when svc-auth
    /// does not answer, the verifier starts with the keys cached there, or with none (and
    /// fetches them in [`JwtVerifier::keep_fresh`]): a svc-auth incident never stops a service
    /// from starting.
    pub async fn from_config(config: &AuthConfig, cache: Option<Redis>) -> anyhow::Result<Self> {
        let pinned = match &config.auth_jwks_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading AUTH_JWKS_FILE ({})", path.display()))?;
                let jwks: JwkSet = serde_json::from_str(&text).context("parsing AUTH_JWKS_FILE")?;
                decoding_keys(&jwks)?
            }
            None => HashMap::new(),
        };
        let remote = match &config.auth_url {
            Some(url) => Some(Remote {
                client: AuthServiceClient::new(crate::client::channel(url, "AUTH_URL")?),
                last_fetch: tokio::sync::Mutex::new(None),
                cache,
                fetched_once: AtomicBool::new(false),
            }),
            None => None,
        };
        anyhow::ensure!(
            remote.is_some() || !pinned.is_empty(),
            "set AUTH_URL (svc-auth) or AUTH_JWKS_FILE: tokens need keys to be verified against"
        );
        let verifier = Self::build(pinned, remote, &config.auth_issuer, &config.auth_audience);
        if let Err(error) = verifier.fetch().await {
            let error = format!("{error:#}");
            match verifier.load_cached().await {
                Some(count) => tracing::warn!(
                    error,
                    count,
                    "svc-auth (AUTH_URL) is unreachable: verifying tokens with the keys cached in \
                     Redis until it answers"
                ),
                None => tracing::warn!(
                    error,
                    "svc-auth (AUTH_URL) is unreachable and no keys are cached: not ready until \
                     it answers"
                ),
            }
        }
        Ok(verifier)
    }

    /// Completes once the verifier knows a key (pinned, fetched or cached): what readiness
    /// waits for.
    pub async fn keys_loaded(&self) {
        let mut loaded = self.inner.loaded.subscribe();
        // The sender lives as long as `self`, so waiting cannot fail.
        let _ = loaded.wait_for(|loaded| *loaded).await;
    }

    /// Loads the key set cached in Redis; how many keys it holds, or `None` when there is none.
    async fn load_cached(&self) -> Option<usize> {
        let cache = self.inner.remote.as_ref()?.cache.as_ref()?;
        let mut connection = cache.connection();
        let cached: Option<String> = redis::cmd("GET")
            .arg(cache.key(CACHE_KEY))
            .query_async(&mut connection)
            .await
            .inspect_err(|error| tracing::warn!(%error, "cannot read the cached signing keys"))
            .ok()?;
        let jwks: JwkSet = serde_json::from_str(&cached?)
            .inspect_err(|error| tracing::warn!(%error, "the cached signing keys are malformed"))
            .ok()?;
        self.replace_keys(&jwks)
            .inspect_err(|error| {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "the cached signing keys are unusable"
                )
            })
            .ok()?;
        Some(jwks.keys.len())
    }

    fn build(
        pinned: HashMap<String, DecodingKey>,
        remote: Option<Remote>,
        issuer: &str,
        audience: &str,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let (loaded, _) = tokio::sync::watch::channel(!pinned.is_empty());
        Self {
            inner: Arc::new(Inner {
                validation,
                pinned,
                fetched: RwLock::default(),
                remote,
                verified: moka::sync::Cache::builder()
                    .max_capacity(VERIFIED_TOKENS)
                    .time_to_live(VERIFIED_TOKEN_TTL)
                    .build(),
                generation: AtomicU64::new(0),
                loaded,
            }),
        }
    }

    /// Whether `token` is a valid service token.
    pub async fn is_service_token(&self, token: &str) -> Result<bool, AuthError> {
        let claims = self.verify(token).await?;
        Ok(matches!(
            claims.principal()?,
            crate::context::Principal::Service { .. }
        ))
    }

    /// Replaces the non-pinned keys (svc-auth uses this for its own key ring). When a key is
    /// dropped, the tokens verified so far are checked again on their next use.
    pub fn replace_keys(&self, jwks: &JwkSet) -> anyhow::Result<()> {
        let keys = decoding_keys(jwks)?;
        let loaded = !keys.is_empty() || !self.inner.pinned.is_empty();
        let mut fetched = self
            .inner
            .fetched
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let dropped = fetched.keys().any(|key_id| !keys.contains_key(key_id));
        *fetched = keys;
        drop(fetched);
        if dropped {
            self.inner.generation.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.loaded.send_replace(loaded);
        Ok(())
    }

    /// Verifies signature, algorithm, issuer, audience and validity window (`exp`, and `nbf` and
    /// `iat` not in the future, give or take the leeway), and returns the claims. A
    /// token naming an unknown key makes the verifier fetch svc-auth's key set (at most four
    /// times a second, concurrent callers sharing one fetch) and try again: a key svc-auth just
    /// started signing with is trusted at once. A token verified before is answered from
    /// memory until it expires or a key is dropped.
    pub async fn verify(&self, token: &str) -> Result<Arc<Claims>, AuthError> {
        let generation = self.inner.generation.load(Ordering::SeqCst);
        if let Some((claims, verified_in)) = self.inner.verified.get(token)
            && verified_in == generation
            // Past its expiry the token is checked again, and the check decides.
            && claims.exp > chrono::Utc::now().timestamp()
        {
            return Ok(claims);
        }
        let claims = match self.verify_with_known_keys(token) {
            Err(AuthError::UnknownKey) if self.inner.remote.is_some() => {
                if let Err(error) = self.fetch_unless_recent().await {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "cannot refresh the signing keys"
                    );
                }
                self.verify_with_known_keys(token)
            }
            result => result,
        };
        let claims = Arc::new(claims?);
        self.inner
            .verified
            .insert(token.to_owned(), (Arc::clone(&claims), generation));
        Ok(claims)
    }

    /// [`JwtVerifier::verify`] without fetching keys.
    pub fn verify_with_known_keys(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::Invalid);
        }
        let key_id = header.kid.ok_or(AuthError::UnknownKey)?;
        let fetched = self
            .inner
            .fetched
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = self
            .inner
            .pinned
            .get(&key_id)
            .or_else(|| fetched.get(&key_id))
            .ok_or(AuthError::UnknownKey)?;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &self.inner.validation)
            .map(|data| data.claims)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                _ => AuthError::Invalid,
            })?;
        // jsonwebtoken checks `nbf` but not `iat`: a token issued in the future was minted by a
        // clock (or a signer) that cannot be trusted with the rest of its window either.
        let latest_issue = chrono::Utc::now().timestamp() + LEEWAY_SECONDS as i64;
        if claims.iat > latest_issue {
            return Err(AuthError::NotYetValid);
        }
        Ok(claims)
    }

    /// Fetches svc-auth's key set every few minutes until `stopped`, so keys it retired stop
    /// being trusted; every few seconds while no fetch has succeeded since start. Returns at
    /// once without `AUTH_URL`.
    pub async fn keep_fresh(self, stopped: tokio_util::sync::CancellationToken) {
        let Some(remote) = &self.inner.remote else {
            return;
        };
        loop {
            let period = if remote.fetched_once.load(Ordering::Relaxed) {
                PERIODIC_REFETCH
            } else {
                RETRY_UNTIL_FETCHED
            };
            tokio::select! {
                () = stopped.cancelled() => break,
                () = tokio::time::sleep(period) => {}
            }
            if let Err(error) = self.fetch().await {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "cannot refresh the token keys"
                );
            }
        }
    }

    async fn fetch_unless_recent(&self) -> anyhow::Result<()> {
        let Some(remote) = &self.inner.remote else {
            return Ok(());
        };
        let mut last_fetch = remote.last_fetch.lock().await;
        if last_fetch.is_some_and(|at| at.elapsed() < MIN_REFETCH_INTERVAL) {
            return Ok(());
        }
        let result = self.fetch_locked(remote).await;
        *last_fetch = Some(Instant::now());
        result
    }

    async fn fetch(&self) -> anyhow::Result<()> {
        let Some(remote) = &self.inner.remote else {
            return Ok(());
        };
        let mut last_fetch = remote.last_fetch.lock().await;
        let result = self.fetch_locked(remote).await;
        *last_fetch = Some(Instant::now());
        result
    }

    async fn fetch_locked(&self, remote: &Remote) -> anyhow::Result<()> {
        let response = remote
            .client
            .clone()
            .get_jwks(GetJwksRequest {})
            .await
            .context("calling AuthService.GetJwks")?
            .into_inner();
        // The proto's JSON form is the standard JWKS form (field names are the JWK names).
        let json = serde_json::to_value(&response)?;
        let jwks: JwkSet = serde_json::from_value(json.clone())
            .context("svc-auth answered a malformed key set")?;
        self.replace_keys(&jwks)?;
        if !remote.fetched_once.swap(true, Ordering::Relaxed) {
            tracing::info!(
                keys = jwks.keys.len(),
                "fetched the token keys from svc-auth"
            );
        }
        if let Some(cache) = &remote.cache {
            let stored: redis::RedisResult<()> = redis::cmd("SET")
                .arg(cache.key(CACHE_KEY))
                .arg(json.to_string())
                .arg("EX")
                .arg(CACHE_SECONDS)
                .query_async(&mut cache.connection())
                .await;
            if let Err(error) = stored {
                tracing::warn!(%error, "cannot cache the token keys in Redis");
            }
        }
        Ok(())
    }
}

/// Decoding keys by key id. Keys without a `kid` or of another type than Ed25519 are refused.
fn decoding_keys(jwks: &JwkSet) -> anyhow::Result<HashMap<String, DecodingKey>> {
    let mut keys = HashMap::new();
    for jwk in &jwks.keys {
        let key_id = jwk.common.key_id.clone().context("a JWKS key has no kid")?;
        let is_ed25519 = matches!(
            &jwk.algorithm,
            jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(parameters)
                if parameters.curve == jsonwebtoken::jwk::EllipticCurve::Ed25519
        );
        anyhow::ensure!(is_ed25519, "JWKS key {key_id} is not an Ed25519 key");
        let decoding_key = DecodingKey::from_jwk(jwk)
            .with_context(|| format!("JWKS key {key_id} is malformed"))?;
        keys.insert(key_id, decoding_key);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use jsonwebtoken::EncodingKey;

    use futures_util::FutureExt;

    use super::*;
    use crate::auth::{AuthError, Claims, JwtSigner};
    use crate::context::{Principal, Role, TenantId, UserId};

    const ISSUER: &str = "formflow";
    const AUDIENCE: &str = "formflow";

    fn claims_for(subject: &str, lifetime_seconds: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: subject.into(),
            tid: Some(TenantId::generate().to_string()),
            role: Some("admin".into()),
            sid: None,
            prole: None,
            typ: None,
            scope: None,
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now,
            exp: now + lifetime_seconds,
        }
    }

    fn user_claims() -> Claims {
        claims_for(&UserId::generate().to_string(), 900)
    }

    fn encode_unsigned(header: serde_json::Value, claims: &Claims) -> String {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            engine.encode(header.to_string()),
            engine.encode(serde_json::to_string(claims).unwrap())
        )
    }

    #[test]
    fn signed_tokens_verify_and_name_their_principal() {
        let signer = JwtSigner::generate().unwrap();
        let verifier = JwtVerifier::new(&signer.jwks(), ISSUER, AUDIENCE).unwrap();
        let claims = user_claims();
        let token = signer.sign(&claims).unwrap();
        let verified = verifier.verify_with_known_keys(&token).unwrap();
        assert_eq!(verified, claims);
        assert!(matches!(
            verified.principal().unwrap(),
            Principal::User {
                role: Role::Admin,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn a_verifier_starts_without_svc_auth_and_is_loaded_once_keys_arrive() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let config = AuthConfig {
            auth_url: Some(format!("http://{closed}")),
            auth_jwks_file: None,
            auth_issuer: ISSUER.into(),
            auth_audience: AUDIENCE.into(),
        };
        let verifier = JwtVerifier::from_config(&config, None).await.unwrap();
        assert!(verifier.keys_loaded().now_or_never().is_none());
        let signer = JwtSigner::generate().unwrap();
        let token = signer.sign(&user_claims()).unwrap();
        assert_eq!(verifier.verify(&token).await, Err(AuthError::UnknownKey));
        verifier.replace_keys(&signer.jwks()).unwrap();
        assert!(verifier.keys_loaded().now_or_never().is_some());
        assert!(verifier.verify(&token).await.is_ok());
    }

    #[tokio::test]
    async fn a_remembered_token_is_checked_again_once_its_key_is_dropped() {
        let (old, new) = (
            JwtSigner::generate().unwrap(),
            JwtSigner::generate().unwrap(),
        );
        let both = JwkSet {
            keys: [old.jwks().keys, new.jwks().keys].concat(),
        };
        let verifier = JwtVerifier::new(&JwkSet { keys: vec![] }, ISSUER, AUDIENCE).unwrap();
        verifier.replace_keys(&both).unwrap();
        let (by_old, by_new) = (
            old.sign(&user_claims()).unwrap(),
            new.sign(&user_claims()).unwrap(),
        );
        assert!(verifier.verify(&by_old).await.is_ok());
        assert!(verifier.verify(&by_new).await.is_ok());

        // A key added changes nothing for the tokens verified; a key dropped stops its own at
        // once, though they were verified before.
        let third = JwtSigner::generate().unwrap();
        verifier
            .replace_keys(&JwkSet {
                keys: [both.keys.clone(), third.jwks().keys].concat(),
            })
            .unwrap();
        assert!(verifier.verify(&by_old).await.is_ok());
        verifier.replace_keys(&new.jwks()).unwrap();
        assert_eq!(verifier.verify(&by_old).await, Err(AuthError::UnknownKey));
        assert!(verifier.verify(&by_new).await.is_ok());
    }

    #[test]
    fn tokens_of_another_key_are_refused() {
        let signer = JwtSigner::generate().unwrap();
        let stranger = JwtSigner::generate().unwrap();
        let verifier = JwtVerifier::new(&signer.jwks(), ISSUER, AUDIENCE).unwrap();
        let token = stranger.sign(&user_claims()).unwrap();
        assert_eq!(
            verifier.verify_with_known_keys(&token),
            Err(AuthError::UnknownKey)
        );
    }

    #[test]
    fn a_forged_kid_does_not_help_a_foreign_signature() {
        let signer = JwtSigner::generate().unwrap();
        let verifier = JwtVerifier::new(&signer.jwks(), ISSUER, AUDIENCE).unwrap();
        let stranger_token = JwtSigner::generate().unwrap().sign(&user_claims()).unwrap();
        let (_, rest) = stranger_token.split_once('.').unwrap();
        let forged_header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": signer.key_id()}).to_string(),
        );
        let forged = format!("{forged_header}.{rest}");
        assert_eq!(
            verifier.verify_with_known_keys(&forged),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn alg_none_and_hmac_tokens_are_refused() {
        let signer = JwtSigner::generate().unwrap();
        let verifier = JwtVerifier::new(&signer.jwks(), ISSUER, AUDIENCE).unwrap();
        let claims = user_claims();
        let none = encode_unsigned(
            serde_json::json!({"alg": "none", "kid": signer.key_id()}),
            &claims,
        );
        assert_eq!(
            verifier.verify_with_known_keys(&none),
            Err(AuthError::Invalid)
        );

        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(signer.key_id().to_owned());
        // The HMAC secret an attacker would try: the public key itself.
        let public_key = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(match &signer.jwk().algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(okp) => okp.x.clone(),
                _ => unreachable!(),
            })
            .unwrap();
        let hmac =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&public_key)).unwrap();
        assert_eq!(
            verifier.verify_with_known_keys(&hmac),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn expired_tokens_are_refused_after_the_leeway() {
        let signer = JwtSigner::generate().unwrap();
        let verifier = JwtVerifier::new(&signer.jwks(), ISSUER, AUDIENCE).unwrap();
        let within_leeway = claims_for(&UserId::generate().to_string(), -5);
        assert!(
            verifier
                .verify_with_known_keys(&signer.sign(&within_leeway).unwrap())
                .is_ok()
        );
        let expired = claims_for(&UserId::generate().to_string(), -120);
        assert_eq!(
            verifier.verify_with_known_keys(&signer.sign(&expired).unwrap()),
            Err(AuthError::Expired)
        );
    }

    #[test]
    fn tokens_not_valid_yet_are_refused_after_the_leeway() {
        let signer = JwtSigner::generate().unwrap();
        let verifier = JwtVerifier::new(&signer.jwks(), ISSUER, AUDIENCE).unwrap();
        let now = chrono::Utc::now().timestamp();
        let with = |member: &str, at: i64| {
            let mut claims = serde_json::to_value(user_claims()).unwrap();
            claims[member] = serde_json::json!(at);
            signer.sign(&claims).unwrap()
        };
        for member in ["nbf", "iat"] {
            assert_eq!(
                verifier.verify_with_known_keys(&with(member, now + 3600)),
                Err(AuthError::NotYetValid),
                "{member} an hour ahead"
            );
            assert!(
                verifier
                    .verify_with_known_keys(&with(member, now + 10))
                    .is_ok(),
                "{member} within the leeway"
            );
        }
        assert!(
            verifier
                .verify_with_known_keys(&with("nbf", now - 60))
                .is_ok()
        );
    }

    #[test]
    fn wrong_issuer_or_audience_is_refused() {
        let signer = JwtSigner::generate().unwrap();
        let verifier = JwtVerifier::new(&signer.jwks(), ISSUER, AUDIENCE).unwrap();
        let mut other_issuer = user_claims();
        other_issuer.iss = "someone-else".into();
        assert_eq!(
            verifier.verify_with_known_keys(&signer.sign(&other_issuer).unwrap()),
            Err(AuthError::Invalid)
        );
        let mut other_audience = user_claims();
        other_audience.aud = "another-app".into();
        assert_eq!(
            verifier.verify_with_known_keys(&signer.sign(&other_audience).unwrap()),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let signer = JwtSigner::generate().unwrap();
        let verifier = JwtVerifier::new(&signer.jwks(), ISSUER, AUDIENCE).unwrap();
        for garbage in ["", ".", "..", "a.b.c", "eyJhbGciOiJFZERTQSJ9..", "🦀.🦀.🦀"] {
            assert!(
                verifier.verify_with_known_keys(garbage).is_err(),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn keys_are_stable_across_reloads() {
        let signer = JwtSigner::generate().unwrap();
        let reloaded = JwtSigner::from_pkcs8(signer.pkcs8()).unwrap();
        assert_eq!(signer.key_id(), reloaded.key_id());
        let verifier = JwtVerifier::new(&signer.jwks(), ISSUER, AUDIENCE).unwrap();
        assert!(
            verifier
                .verify_with_known_keys(&reloaded.sign(&user_claims()).unwrap())
                .is_ok()
        );
    }
}
