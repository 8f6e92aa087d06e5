//! Ed25519 signing keys for tokens.

use anyhow::Context;
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::KeyPair;

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

    /// Signs `claims`: FormFlow's [`Claims`](super::Claims), or any other claims (tests add `nbf`).
    pub fn sign(&self, claims: &impl serde::Serialize) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding_key).context("signing a token")
    }
}
