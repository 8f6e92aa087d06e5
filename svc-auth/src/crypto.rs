//! Secrets at rest: argon2id password hashes (hashed off the async runtime, with a bounded
//! number at a time) and random tokens stored as SHA-256 digests. The private data svc-auth
//! must read back (signing keys, TOTP secrets, one-time tokens while their events wait in the
//! outbox) is sealed with `platform::crypto::Sealer` under AUTH_ENCRYPTION_KEYS.

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::config::SecurityConfig;

/// Hashes and verifies passwords with argon2id. Verification of an unknown user's password
/// runs against a dummy hash so that it takes as long as a known user's.
#[derive(Clone)]
pub struct Passwords {
    argon2: Arc<Argon2<'static>>,
    dummy_hash: Arc<str>,
    // Each hash holds ~19 MiB and a core for tens of milliseconds: bound how many run at once.
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Passwords").finish_non_exhaustive()
    }
}

impl Passwords {
    /// Argon2id with the configured costs.
    pub fn new(config: &SecurityConfig) -> anyhow::Result<Self> {
        let params = Params::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            None,
        )
        .map_err(|error| anyhow::anyhow!("invalid argon2 parameters: {error}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy_hash = argon2
            .hash_password(b"the dummy password nobody has")
            .map_err(|error| anyhow::anyhow!("hashing the dummy password: {error}"))?
            .to_string();
        let permits = std::thread::available_parallelism().map_or(2, |cores| cores.get() * 2);
        Ok(Self {
            argon2: Arc::new(argon2),
            dummy_hash: dummy_hash.into(),
            permits: Arc::new(Semaphore::new(permits)),
        })
    }

    /// The PHC string (`$argon2id$v=19$m=…`) of `password`.
    pub async fn hash(&self, password: &SecretString) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        let argon2 = self.argon2.clone();
        let password = password.clone();
        tokio::task::spawn_blocking(move || {
            argon2
                .hash_password(password.expose_secret().as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|error| anyhow::anyhow!("hashing a password: {error}"))
        })
        .await?
    }

    /// Whether `password` matches `hash`; with no hash (unknown user), spends the same time and
    /// answers false.
    pub async fn verify(
        &self,
        password: &SecretString,
        hash: Option<&str>,
    ) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await?;
        let argon2 = self.argon2.clone();
        let password = password.clone();
        let known = hash.is_some();
        let hash = hash.map_or_else(|| self.dummy_hash.to_string(), str::to_owned);
        tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash)
                .map_err(|error| anyhow::anyhow!("stored password hash is malformed: {error}"))?;
            let matches = argon2
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok();
            Ok(matches && known)
        })
        .await?
    }
}

/// A random token `{prefix}{43 base64url characters}` (256 bits) and the digest to store.
pub fn new_token(prefix: &str) -> (SecretString, Vec<u8>) {
    let bytes: [u8; 32] = rand::random();
    let token = format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let digest = token_digest(&token);
    (SecretString::from(token), digest)
}

/// The SHA-256 digest a token is stored and looked up by. Tokens carry 256 random bits, so a
/// fast hash is enough: there is nothing to guess.
pub fn token_digest(token: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

/// Whether two secrets are equal, in time independent of where they differ.
pub fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    let left = ring::digest::digest(&ring::digest::SHA256, left);
    let right = ring::digest::digest(&ring::digest::SHA256, right);
    // Equal-length digests: the comparison below never short-circuits on length.
    left.as_ref()
        .iter()
        .zip(right.as_ref())
        .fold(0_u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_as_digests() {
        let (first, first_digest) = new_token("ffr_");
        let (second, _) = new_token("ffr_");
        assert!(first.expose_secret().starts_with("ffr_"));
        assert_eq!(first.expose_secret().len(), 4 + 43);
        assert_ne!(first.expose_secret(), second.expose_secret());
        assert_eq!(token_digest(first.expose_secret()), first_digest);
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"different"));
    }

    #[tokio::test]
    async fn passwords_verify_and_unknown_users_never_match() {
        let config = SecurityConfig {
            argon2_memory_kib: 1024,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            password_min_length: 12,
            lockout_threshold: 5,
            lockout_base: std::time::Duration::from_secs(60),
            lockout_max: std::time::Duration::from_secs(3600),
            ip_failure_limit: 30,
            ip_failure_window: std::time::Duration::from_secs(900),
        };
        let passwords = Passwords::new(&config).unwrap();
        let password = SecretString::from("correct horse battery staple");
        let hash = passwords.hash(&password).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(passwords.verify(&password, Some(&hash)).await.unwrap());
        let wrong = SecretString::from("incorrect horse");
        assert!(!passwords.verify(&wrong, Some(&hash)).await.unwrap());
        assert!(!passwords.verify(&password, None).await.unwrap());
    }
}
