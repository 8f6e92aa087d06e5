//! Standard Webhooks (<https://www.standardwebhooks.com>), both ends: svc-notify signs what it
//! sends to endpoints, svc-workflow verifies what triggers its workflows.
//!
//! A request carries `webhook-id` (the message's id, the same on every attempt),
//! `webhook-timestamp` (seconds since the epoch, when it was sent) and `webhook-signature`:
//! space-separated `v1,{base64 HMAC-SHA256}` signatures over `{id}.{timestamp}.{body}`, keyed
//! with the secret's bytes, one per secret in use (two while a rotated secret overlaps its
//! successor). A secret is written `whsec_` and the base64 of its bytes.

use base64::Engine as _;
use ring::hmac;

/// What a secret's text starts with.
pub const SECRET_PREFIX: &str = "whsec_";
/// Bytes of the secrets [`generate_secret`] makes.
pub const SECRET_BYTES: usize = 32;

/// The key bytes of a secret, `whsec_` and base64 (the prefix optional), when they are 24 to
/// 64 bytes.
pub fn secret_bytes(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    (24..=64).contains(&bytes.len()).then_some(bytes)
}

/// A new random secret: `whsec_` and the base64 of 32 random bytes.
pub fn generate_secret() -> String {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// What is signed: `{id}.{timestamp}.{body}`.
fn signed_content(id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(id.len() + timestamp.len() + body.len() + 2);
    content.extend_from_slice(id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

/// The `webhook-signature` header of the message `id` sent at `timestamp` with `body`: one
/// `v1,` signature per secret (key bytes), in the order given, space-separated.
pub fn signature_header(secrets: &[Vec<u8>], id: &str, timestamp: i64, body: &[u8]) -> String {
    debug_assert!(!secrets.is_empty(), "a message is signed with a secret");
    let content = signed_content(id, &timestamp.to_string(), body);
    secrets
        .iter()
        .map(|secret| {
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), &content);
            format!(
                "v1,{}",
                base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a webhook request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A header is missing or malformed.
    #[error("the {0} header is missing or malformed")]
    Header(&'static str),
    /// The timestamp is too far from now.
    #[error("webhook-timestamp is more than {0} seconds away from the time of receipt")]
    Timestamp(i64),
    /// No signature matches a secret.
    #[error("no signature in webhook-signature matches the webhook's secret")]
    Signature,
}

/// A request's Standard Webhooks headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<'a> {
    /// `webhook-id`.
    pub id: &'a str,
    /// `webhook-timestamp`.
    pub timestamp: &'a str,
    /// `webhook-signature`.
    pub signature: &'a str,
}

/// Checks `signed` over `body` at `now` (seconds) within `tolerance` seconds, against any of
/// `secrets` (key bytes).
pub fn verify(
    signed: &Signed<'_>,
    body: &[u8],
    secrets: &[Vec<u8>],
    now: i64,
    tolerance: i64,
) -> Result<(), Refusal> {
    if signed.id.is_empty() || signed.id.len() > 255 {
        return Err(Refusal::Header("webhook-id"));
    }
    let timestamp: i64 = signed
        .timestamp
        .parse()
        .map_err(|_| Refusal::Header("webhook-timestamp"))?;
    if (now - timestamp).abs() > tolerance {
        return Err(Refusal::Timestamp(tolerance));
    }
    let content = signed_content(signed.id, signed.timestamp, body);
    let signatures: Vec<Vec<u8>> = signed
        .signature
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, encoded)| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
        })
        .collect();
    if signatures.is_empty() {
        return Err(Refusal::Header("webhook-signature"));
    }
    let matches = secrets.iter().any(|secret| {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        signatures
            .iter()
            .any(|signature| hmac::verify(&key, &content, signature).is_ok())
    });
    if matches {
        Ok(())
    } else {
        Err(Refusal::Signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_of_any_listed_secret_within_the_tolerance_pass() {
        let (old, new) = (vec![1u8; 32], vec![2u8; 32]);
        let now = 1_800_000_000;
        let body = br#"{"a":1}"#;
        let by_old = signature_header(std::slice::from_ref(&old), "msg_1", now, body);
        let header = format!("v1a,ignored {by_old}");
        let signed = Signed {
            id: "msg_1",
            timestamp: &now.to_string(),
            signature: &header,
        };
        let both = [new, old];
        let (new, old) = (&both[..1], &both[1..]);
        assert_eq!(verify(&signed, body, &both, now, 300), Ok(()));
        assert_eq!(
            verify(&signed, body, new, now, 300),
            Err(Refusal::Signature)
        );
        assert_eq!(
            verify(&signed, b"{\"a\":2}", old, now, 300),
            Err(Refusal::Signature)
        );
        assert_eq!(
            verify(&signed, body, old, now + 301, 300),
            Err(Refusal::Timestamp(300))
        );
        let bad_time = Signed {
            timestamp: "soon",
            ..signed.clone()
        };
        assert_eq!(
            verify(&bad_time, body, old, now, 300),
            Err(Refusal::Header("webhook-timestamp"))
        );
    }

    #[test]
    fn a_header_carries_one_signature_per_secret_each_verifying_alone() {
        let secrets = [vec![3u8; 32], vec![4u8; 32]];
        let header = signature_header(&secrets, "msg_2", 1_800_000_000, b"{}");
        let entries: Vec<&str> = header.split(' ').collect();
        assert_eq!(entries.len(), 2);
        for (entry, secret) in entries.iter().zip(&secrets) {
            let signed = Signed {
                id: "msg_2",
                timestamp: "1800000000",
                signature: entry,
            };
            assert_eq!(
                verify(
                    &signed,
                    b"{}",
                    std::slice::from_ref(secret),
                    1_800_000_000,
                    0
                ),
                Ok(())
            );
        }
    }

    #[test]
    fn the_specifications_example_signs_as_published() {
        // The example of the specification's reference libraries.
        let secret = secret_bytes("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let header = signature_header(
            &[secret],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn generated_secrets_are_standard_secrets_of_32_bytes() {
        let secret = generate_secret();
        assert!(secret.starts_with("whsec_"));
        assert_eq!(secret_bytes(&secret).map(|bytes| bytes.len()), Some(32));
        assert_ne!(secret, generate_secret());
        assert_eq!(secret_bytes("whsec_short"), None);
        assert_eq!(secret_bytes("whsec_not base64!"), None);
    }
}
