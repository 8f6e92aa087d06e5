//! Secrets at rest: AES-256-GCM under keys from the environment, each sealed value naming
//! the key that sealed it, so keys rotate without re-sealing (svc-auth's signing keys and
//! TOTP secrets, svc-workflow's credentials).

use anyhow::Context;
use base64::Engine;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use secrecy::{ExposeSecret, SecretString};

/// Seals and opens data with AES-256-GCM under the configured keys. A sealed value is
/// `key id length (1 byte) | key id | nonce (12) | ciphertext and tag`, so older keys still
/// open what they sealed after a new key takes over.
pub struct Sealer {
    variable: &'static str,
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
    /// Keys from `variable` (e.g. AUTH_ENCRYPTION_KEYS) holding `id:base64,…`, the first
    /// one sealing; errors name `variable`, never a key.
    pub fn from_config(variable: &'static str, keys: &SecretString) -> anyhow::Result<Self> {
        let mut parsed = Vec::new();
        for entry in keys
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
        {
            let (id, encoded) = entry
                .split_once(':')
                .with_context(|| format!("{variable} entries are `id:base64`"))?;
            anyhow::ensure!(
                !id.is_empty()
                    && id.len() <= 32
                    && id
                        .bytes()
                        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'),
                "{variable} key ids are 1 to 32 of a-z, A-Z, 0-9, - and _"
            );
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded))
                .with_context(|| format!("a {variable} key is not base64"))?;
            anyhow::ensure!(bytes.len() == 32, "{variable} keys are 32 bytes");
            let key = UnboundKey::new(&AES_256_GCM, &bytes)
                .map_err(|_| anyhow::anyhow!("a {variable} key is unusable"))?;
            parsed.push((id.to_owned(), LessSafeKey::new(key)));
        }
        anyhow::ensure!(!parsed.is_empty(), "{variable} holds no key");
        Ok(Self {
            variable,
            keys: parsed,
        })
    }

    /// A new random key in the `id:base64` form, for setup scripts and tests.
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
                format!(
                    "sealed with key {id}, which {} no longer holds",
                    self.variable
                )
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

/// Events holding secrets wait in the outbox sealed like the service's other secrets.
impl crate::outbox::EventSealer for Sealer {
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
        Sealer::from_config("TEST_KEYS", &SecretString::from(keys.to_owned())).unwrap()
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
                Sealer::from_config("TEST_KEYS", &SecretString::from(keys.to_owned())).is_err(),
                "{keys:?}"
            );
        }
    }
}
