//! Local token verification against the keys svc-auth publishes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use proto::formflow::auth::v1::GetJwksRequest;
use proto::formflow::auth::v1::auth_service_client::AuthServiceClient;
use tokio::time::Instant;
use tonic::transport::Channel;

use super::{AuthError, Claims};
use crate::config::AuthConfig;

/// Seconds of clock skew tolerated on `exp`, `nbf` and `iat`, the one leeway of every check of
/// a token's validity window.
const LEEWAY_SECONDS: u64 = 30;
/// Shortest time between two fetches of svc-auth's key set caused by unknown key ids: tokens
/// with made-up key ids cost svc-auth at most four fetches a second per replica, and a key it
/// just started signing with is trusted within a quarter of a second.
const MIN_REFETCH_INTERVAL: Duration = Duration::from_millis(250);
/// How often the key set is fetched anyway, to drop keys svc-auth no longer publishes.
const PERIODIC_REFETCH: Duration = Duration::from_secs(300);

/// Verifies tokens locally. Keys come from svc-auth's `GetJwks` (fetched at start, again when a
/// token names a key not seen yet, and every few minutes) and/or from a JWKS file pinned at
/// start. Cheap to clone.
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
    /// The last service token [`JwtVerifier::is_service_token`] believed, with its `exp`: the
    /// gateway sends the same one beside every call for minutes.
    last_service_token: RwLock<Option<(String, i64)>>,
}

struct Remote {
    client: AuthServiceClient<Channel>,
    /// When the key set was last fetched; the lock also makes concurrent refetches wait for the
    /// one in flight instead of starting their own.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
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

    /// A verifier as the config says: keys from svc-auth at `AUTH_URL` (fetched now; fails if
    /// svc-auth does not answer) and/or pinned from `AUTH_JWKS_FILE`.
    pub async fn from_config(config: &AuthConfig) -> anyhow::Result<Self> {
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
            }),
            None => None,
        };
        anyhow::ensure!(
            remote.is_some() || !pinned.is_empty(),
            "set AUTH_URL (svc-auth) or AUTH_JWKS_FILE: tokens need keys to be verified against"
        );
        let verifier = Self::build(pinned, remote, &config.auth_issuer, &config.auth_audience);
        if verifier.inner.remote.is_some() {
            verifier
                .fetch()
                .await
                .context("fetching the signing keys from svc-auth (AUTH_URL)")?;
        }
        Ok(verifier)
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
        Self {
            inner: Arc::new(Inner {
                validation,
                pinned,
                fetched: RwLock::default(),
                remote,
                last_service_token: RwLock::default(),
            }),
        }
    }

    /// Whether `token` is a valid service token. The last one believed is remembered until it
    /// expires, so a token sent beside every call is verified once.
    pub async fn is_service_token(&self, token: &str) -> Result<bool, AuthError> {
        let now = chrono::Utc::now().timestamp();
        if let Some((last, exp)) = &*self
            .inner
            .last_service_token
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            && last == token
            && now < *exp
        {
            return Ok(true);
        }
        let claims = self.verify(token).await?;
        let exp = claims.exp;
        if !matches!(
            claims.principal()?,
            crate::context::Principal::Service { .. }
        ) {
            return Ok(false);
        }
        *self
            .inner
            .last_service_token
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((token.to_owned(), exp));
        Ok(true)
    }

    /// Replaces the non-pinned keys (svc-auth uses this for its own key ring).
    pub fn replace_keys(&self, jwks: &JwkSet) -> anyhow::Result<()> {
        let keys = decoding_keys(jwks)?;
        *self
            .inner
            .fetched
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = keys;
        Ok(())
    }

    /// Verifies signature, algorithm, issuer, audience and validity window (`exp`, and `nbf` and
    /// `iat` not in the future, give or take the leeway), and returns the claims. A
    /// token naming an unknown key makes the verifier fetch svc-auth's key set (at most four
    /// times a second, concurrent callers sharing one fetch) and try again: a key svc-auth just
    /// started signing with is trusted at once.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        match self.verify_with_known_keys(token) {
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
        }
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
    /// being trusted. Returns at once without `AUTH_URL`.
    pub async fn keep_fresh(self, stopped: tokio_util::sync::CancellationToken) {
        if self.inner.remote.is_none() {
            return;
        }
        crate::runtime::repeat(
            "refreshing the token keys",
            PERIODIC_REFETCH,
            || self.fetch(),
            stopped,
        )
        .await;
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
        let jwks: JwkSet = serde_json::from_value(serde_json::to_value(&response)?)
            .context("svc-auth answered a malformed key set")?;
        self.replace_keys(&jwks)
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
