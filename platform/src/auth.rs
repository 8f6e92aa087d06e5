//! Bearer tokens: the claims FormFlow puts in its JWTs, local verification against a JSON Web
//! Key Set, and Ed25519 signing (used by svc-auth, the dev launcher and tests).
//!
//! Only `EdDSA` is accepted: the algorithm is pinned, so `none`, HMAC and RSA tokens are refused
//! whatever their header says, and a token must name (`kid`) a key of the set.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::KeyPair;
use serde::{Deserialize, Serialize};

use crate::context::{Principal, Role, TenantId, UserId};

/// Seconds of clock skew tolerated on `exp` and `iat`.
const LEEWAY_SECONDS: u64 = 30;

/// Claims of FormFlow access and service tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Subject: a user id, or the client id of a service.
    pub sub: String,
    /// Tenant the token is scoped to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    /// Role of the user in `tid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Session id (user tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Platform role of the user (`admin`); absent for ordinary users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prole: Option<String>,
    /// Kind of principal: `user` (default) or `service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// Unique token id.
    pub jti: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
}

impl Claims {
    /// The principal these claims describe, or why they describe none.
    pub fn principal(&self) -> Result<Principal, AuthError> {
        let tenant_id = self
            .tid
            .as_deref()
            .map(TenantId::parse)
            .transpose()
            .map_err(|_| AuthError::Claims("tid is not a tenant id"))?;
        if self.typ.as_deref() == Some("service") {
            return Ok(Principal::Service {
                name: self.sub.clone(),
                tenant_id,
            });
        }
        let user_id =
            UserId::parse(&self.sub).map_err(|_| AuthError::Claims("sub is not a user id"))?;
        if self.prole.as_deref() == Some("admin") {
            return Ok(Principal::PlatformAdmin { user_id });
        }
        let tenant_id = tenant_id.ok_or(AuthError::Claims("user token without tid"))?;
        let role = self
            .role
            .as_deref()
            .and_then(Role::parse)
            .ok_or(AuthError::Claims("user token without a valid role"))?;
        Ok(Principal::User {
            user_id,
            tenant_id,
            role,
        })
    }
}

/// Why a token was refused. The messages are safe to return to callers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not a JWT, bad signature, wrong algorithm, issuer or audience.
    #[error("invalid token")]
    Invalid,
    /// The token names a key the verifier does not know.
    #[error("token signed by an unknown key")]
    UnknownKey,
    /// The token has expired.
    #[error("token expired")]
    Expired,
    /// The token verifies but its claims don't describe a principal.
    #[error("invalid token claims: {0}")]
    Claims(&'static str),
}

/// Verifies tokens locally against the public keys of a JWKS. Cheap to clone; the key set can
/// be replaced while in use (key rotation).
#[derive(Clone)]
pub struct JwtVerifier {
    keys: Arc<RwLock<HashMap<String, DecodingKey>>>,
    validation: Arc<Validation>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key_ids: Vec<String> = self
            .keys
            .read()
            .map(|keys| keys.keys().cloned().collect())
            .unwrap_or_default();
        formatter
            .debug_struct("JwtVerifier")
            .field("key_ids", &key_ids)
            .finish()
    }
}

impl JwtVerifier {
    /// A verifier for tokens of `issuer` and `audience`, trusting the keys of `jwks`.
    pub fn new(jwks: &JwkSet, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.leeway = LEEWAY_SECONDS;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let verifier = Self {
            keys: Arc::default(),
            validation: Arc::new(validation),
        };
        verifier.replace_keys(jwks)?;
        Ok(verifier)
    }

    /// Loads the key set named by the config (`AUTH_JWKS_FILE`).
    pub fn from_config(config: &crate::config::AuthConfig) -> anyhow::Result<Self> {
        let path = config
            .auth_jwks_file
            .as_ref()
            .context("AUTH_JWKS_FILE must name the JWKS that tokens are verified against")?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading AUTH_JWKS_FILE ({})", path.display()))?;
        let jwks: JwkSet = serde_json::from_str(&text).context("parsing AUTH_JWKS_FILE")?;
        Self::new(&jwks, &config.auth_issuer, &config.auth_audience)
    }

    /// Replaces the trusted keys. Keys without a `kid` or of another type than Ed25519 are
    /// refused.
    pub fn replace_keys(&self, jwks: &JwkSet) -> anyhow::Result<()> {
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
        *self
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = keys;
        Ok(())
    }

    /// Verifies signature, algorithm, issuer, audience and expiry, and returns the claims.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::Invalid);
        }
        let key_id = header.kid.ok_or(AuthError::UnknownKey)?;
        let keys = self
            .keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = keys.get(&key_id).ok_or(AuthError::UnknownKey)?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })
    }
}

/// Signs tokens with an Ed25519 key.
pub struct JwtSigner {
    key_id: String,
    encoding_key: EncodingKey,
    public_key: Vec<u8>,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for JwtSigner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("JwtSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl JwtSigner {
    /// A signer with a freshly generated key.
    pub fn generate() -> anyhow::Result<Self> {
        let random = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&random)
            .map_err(|_| anyhow::anyhow!("generating an Ed25519 key failed"))?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    /// A signer for a PKCS#8 (DER) Ed25519 private key. Its key id is derived from the public
    /// key, so the same key always has the same `kid`.
    pub fn from_pkcs8(pkcs8: &[u8]) -> anyhow::Result<Self> {
        let key_pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|_| anyhow::anyhow!("not a PKCS#8 Ed25519 private key"))?;
        let public_key = key_pair.public_key().as_ref().to_vec();
        let fingerprint = ring::digest::digest(&ring::digest::SHA256, &public_key);
        let key_id =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&fingerprint.as_ref()[..12]);
        Ok(Self {
            key_id,
            encoding_key: EncodingKey::from_ed_der(pkcs8),
            public_key,
            pkcs8: pkcs8.to_vec(),
        })
    }

    /// The key id (`kid`) put in token headers.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The private key as PKCS#8 DER, to store it (encrypted, or in a secret).
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Jwk {
        let jwk = serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "use": "sig",
            "alg": "EdDSA",
            "kid": self.key_id,
            "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.public_key),
        });
        serde_json::from_value(jwk).expect("a well-formed OKP JWK")
    }

    /// A key set holding this signer's public key.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.jwk()],
        }
    }

    /// Signs `claims`.
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding_key).context("signing a token")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let verified = verifier.verify(&token).unwrap();
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
        assert_eq!(verifier.verify(&token), Err(AuthError::UnknownKey));
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
        assert_eq!(verifier.verify(&forged), Err(AuthError::Invalid));
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
        assert_eq!(verifier.verify(&none), Err(AuthError::Invalid));

        let mut header = Header::new(Algorithm::HS256);
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
        assert_eq!(verifier.verify(&hmac), Err(AuthError::Invalid));
    }

    #[test]
    fn expired_tokens_are_refused_after_the_leeway() {
        let signer = JwtSigner::generate().unwrap();
        let verifier = JwtVerifier::new(&signer.jwks(), ISSUER, AUDIENCE).unwrap();
        let within_leeway = claims_for(&UserId::generate().to_string(), -5);
        assert!(
            verifier
                .verify(&signer.sign(&within_leeway).unwrap())
                .is_ok()
        );
        let expired = claims_for(&UserId::generate().to_string(), -120);
        assert_eq!(
            verifier.verify(&signer.sign(&expired).unwrap()),
            Err(AuthError::Expired)
        );
    }

    #[test]
    fn wrong_issuer_or_audience_is_refused() {
        let signer = JwtSigner::generate().unwrap();
        let verifier = JwtVerifier::new(&signer.jwks(), ISSUER, AUDIENCE).unwrap();
        let mut other_issuer = user_claims();
        other_issuer.iss = "someone-else".into();
        assert_eq!(
            verifier.verify(&signer.sign(&other_issuer).unwrap()),
            Err(AuthError::Invalid)
        );
        let mut other_audience = user_claims();
        other_audience.aud = "another-app".into();
        assert_eq!(
            verifier.verify(&signer.sign(&other_audience).unwrap()),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let signer = JwtSigner::generate().unwrap();
        let verifier = JwtVerifier::new(&signer.jwks(), ISSUER, AUDIENCE).unwrap();
        for garbage in ["", ".", "..", "a.b.c", "eyJhbGciOiJFZERTQSJ9..", "🦀.🦀.🦀"] {
            assert!(verifier.verify(garbage).is_err(), "{garbage:?}");
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
                .verify(&reloaded.sign(&user_claims()).unwrap())
                .is_ok()
        );
    }

    #[test]
    fn claims_describe_services_and_platform_admins() {
        let mut service = claims_for("svc-auth", 60);
        service.typ = Some("service".into());
        service.tid = None;
        assert_eq!(
            service.principal().unwrap(),
            Principal::Service {
                name: "svc-auth".into(),
                tenant_id: None
            }
        );
        let mut admin = user_claims();
        admin.prole = Some("admin".into());
        admin.tid = None;
        assert!(admin.principal().unwrap().is_platform_operator());
        let mut no_role = user_claims();
        no_role.role = None;
        assert!(no_role.principal().is_err());
    }
}
