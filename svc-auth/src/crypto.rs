//! Secrets at rest: argon2id password hashes (hashed off the async runtime, with a bounded
//! number at a time), random tokens stored as SHA-256 digests, and AES-256-GCM sealing of the
//! private data svc-auth must read back (signing keys, TOTP secrets, and one-time tokens while
//! their events wait in the outbox).

use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
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

/// Seals and opens data with AES-256-GCM under the configured keys. A sealed value is
/// `key id length (1 byte) | key id | nonce (12) | ciphertext and tag`, so older keys still
/// open what they sealed after a new key takes over.
pub struct Sealer {
    keys: Vec<(String, LessSafeKey)>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        formatter
            .debug_struct("Sealer")
            .field("key_ids", &ids)
            .finish()
    }
}

impl Sealer {
    /// Keys from AUTH_ENCRYPTION_KEYS (`id:base64,…`, the first seals).
    pub fn from_config(keys: &SecretString) -> anyhow::Result<Self> {
        let mut parsed = Vec::new();
        for entry in keys
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
        {
            let (id, encoded) = entry
                .split_once(':')
                .context("AUTH_ENCRYPTION_KEYS entries are `id:base64`")?;
            anyhow::ensure!(
                !id.is_empty()
                    && id.len() <= 32
                    && id
                        .bytes()
                        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'),
                "AUTH_ENCRYPTION_KEYS key ids are 1 to 32 of a-z, A-Z, 0-9, - and _"
            );
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded))
                .context("an AUTH_ENCRYPTION_KEYS key is not base64")?;
            anyhow::ensure!(bytes.len() == 32, "AUTH_ENCRYPTION_KEYS keys are 32 bytes");
            let key = UnboundKey::new(&AES_256_GCM, &bytes)
                .map_err(|_| anyhow::anyhow!("an AUTH_ENCRYPTION_KEYS key is unusable"))?;
            parsed.push((id.to_owned(), LessSafeKey::new(key)));
        }
        anyhow::ensure!(!parsed.is_empty(), "AUTH_ENCRYPTION_KEYS holds no key");
        Ok(Self { keys: parsed })
    }

    /// A new random key in AUTH_ENCRYPTION_KEYS form (`id:base64`), for setup scripts.
    pub fn generate_key_entry(id: &str) -> String {
        let bytes: [u8; 32] = rand::random();
        format!(
            "{id}:{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }

    /// Seals `plaintext`, bound to `context` (e.g. `totp:{user id}`): a sealed value copied to
    /// another context does not open.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        let (id, key) = &self.keys[0];
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut in_out = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(context.as_bytes()),
            &mut in_out,
        )
        .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        let mut sealed = Vec::with_capacity(1 + id.len() + NONCE_LEN + in_out.len());
        sealed.push(u8::try_from(id.len()).expect("key ids are at most 32 bytes"));
        sealed.extend_from_slice(id.as_bytes());
        sealed.extend_from_slice(&nonce_bytes);
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Opens what [`Sealer::seal`] sealed for `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        let (&id_length, rest) = sealed.split_first().context("sealed value is empty")?;
        let id_length = usize::from(id_length);
        anyhow::ensure!(
            rest.len() >= id_length + NONCE_LEN,
            "sealed value is truncated"
        );
        let (id, rest) = rest.split_at(id_length);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let id = std::str::from_utf8(id).context("sealed value has a malformed key id")?;
        let (_, key) = self
            .keys
            .iter()
            .find(|(key_id, _)| key_id == id)
            .with_context(|| {
                format!("sealed with key {id}, which AUTH_ENCRYPTION_KEYS no longer holds")
            })?;
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow::anyhow!("bad nonce"))?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut in_out)
            .map_err(|_| anyhow::anyhow!("sealed value does not open (wrong key or context)"))?;
        Ok(plaintext.to_vec())
    }
}

/// One-time tokens wait in the outbox sealed like the other secrets svc-auth reads back.
impl platform::outbox::EventSealer for Sealer {
    fn seal(&self, context: &str, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        Sealer::seal(self, context, plaintext)
    }

    fn open(&self, context: &str, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        Sealer::open(self, context, sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(keys: &str) -> Sealer {
        Sealer::from_config(&SecretString::from(keys.to_owned())).unwrap()
    }

    #[test]
    fn sealed_values_open_only_in_their_context() {
        let sealer = sealer(&Sealer::generate_key_entry("k1"));
        let sealed = sealer.seal("totp:alice", b"JBSWY3DPEHPK3PXP").unwrap();
        assert_eq!(
            sealer.open("totp:alice", &sealed).unwrap(),
            b"JBSWY3DPEHPK3PXP"
        );
        assert!(sealer.open("totp:bob", &sealed).is_err());
        let mut tampered = sealed;
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sealer.open("totp:alice", &tampered).is_err());
        assert!(sealer.open("totp:alice", &[]).is_err());
        assert!(sealer.open("totp:alice", &[200, 1, 2]).is_err());
    }

    #[test]
    fn older_keys_still_open_after_rotation() {
        let old = Sealer::generate_key_entry("old");
        let sealed = sealer(&old).seal("key", b"secret").unwrap();
        let rotated = sealer(&format!("{},{old}", Sealer::generate_key_entry("new")));
        assert_eq!(rotated.open("key", &sealed).unwrap(), b"secret");
        assert_eq!(&rotated.seal("key", b"x").unwrap()[1..4], b"new");
        assert!(
            sealer(&Sealer::generate_key_entry("old"))
                .open("key", &sealed)
                .is_err()
        );
    }

    #[test]
    fn malformed_key_lists_are_refused() {
        for keys in ["", "nokey", "k1:notbase64!", "k1:AAAA", "bad id:AAAA"] {
            assert!(
                Sealer::from_config(&SecretString::from(keys.to_owned())).is_err(),
                "{keys:?}"
            );
        }
    }

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
