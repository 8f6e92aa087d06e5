//! Verifying webhook requests as the Standard Webhooks specification says: the
//! `webhook-signature` header lists `v1,{base64 HMAC-SHA256}` signatures (space-separated)
//! over `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the secret's bytes; the
//! timestamp (seconds since the epoch) must be within the tolerance of the time of receipt.

use base64::Engine as _;

/// How long the previous secret of a rotated WEBHOOK_SECRET credential is still accepted.
pub const ROTATION_OVERLAP: chrono::Duration = chrono::Duration::hours(24);

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
    let mut message = Vec::with_capacity(signed.id.len() + signed.timestamp.len() + body.len() + 2);
    message.extend_from_slice(signed.id.as_bytes());
    message.push(b'.');
    message.extend_from_slice(signed.timestamp.as_bytes());
    message.push(b'.');
    message.extend_from_slice(body);
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
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        signatures
            .iter()
            .any(|signature| ring::hmac::verify(&key, &message, signature).is_ok())
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

    fn sign(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let message = [
            id.as_bytes(),
            b".",
            timestamp.to_string().as_bytes(),
            b".",
            body,
        ]
        .concat();
        let tag = ring::hmac::sign(&key, &message);
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
        )
    }

    #[test]
    fn signatures_of_any_listed_secret_within_the_tolerance_pass() {
        let (old, new) = (vec![1u8; 32], vec![2u8; 32]);
        let now = 1_800_000_000;
        let body = br#"{"a":1}"#;
        let by_old = sign(&old, "msg_1", now, body);
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
}
