//! TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, one step of clock skew either way)
//! and one-time recovery codes.

use platform::context::UserId;
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// Codes accepted from one step before to one step after the current one.
const SKEW_STEPS: u16 = 1;
/// How many recovery codes a user gets.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Issuer shown in authenticator apps.
const ISSUER: &str = "FormFlow";

/// A new random secret (160 bits, as RFC 4226 recommends).
pub fn new_secret() -> Vec<u8> {
    let bytes: [u8; 20] = rand::random();
    bytes.to_vec()
}

fn totp(secret: &[u8], account: Option<&str>) -> anyhow::Result<Totp> {
    let mut builder = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_skew(SKEW_STEPS)
        .with_secret(Secret::from(secret.to_vec()));
    if let Some(account) = account {
        builder = builder.with_account_name(account).with_issuer(Some(ISSUER));
    }
    builder
        .build()
        .map_err(|error| anyhow::anyhow!("building a TOTP: {error}"))
}

/// The base32 secret and `otpauth://` URI an authenticator app imports.
pub fn provisioning(secret: &[u8], account: &str) -> anyhow::Result<(String, String)> {
    let totp = totp(secret, Some(account))?;
    let uri = totp
        .to_url()
        .map_err(|error| anyhow::anyhow!("building the otpauth URI: {error}"))?;
    Ok((totp.secret().to_base32(), uri))
}

/// The time step `code` is valid for at `unix_time`, if it is valid (within the skew). The
/// caller accepts each step once.
pub fn matching_step(secret: &[u8], code: &str, unix_time: u64) -> Option<u64> {
    if code.len() != 6 || !code.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    totp(secret, None).ok()?.check(code, unix_time)
}

/// Whether `code` looks like a TOTP code (6 digits) rather than a recovery code.
pub fn is_totp_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|byte| byte.is_ascii_digit())
}

/// Ten new recovery codes (`xxxx-xxxx-xxxx-xxxx`, 80 random bits each) to show the user.
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODE_COUNT)
        .map(|_| {
            let bytes: [u8; 10] = rand::random();
            let encoded = base32_lower(&bytes);
            encoded
                .as_bytes()
                .chunks(4)
                .map(|chunk| std::str::from_utf8(chunk).expect("ASCII"))
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// The digest a recovery code is stored by; the user's id is mixed in, so equal codes of two
/// users differ in the table. Case and dashes are ignored, as users type them loosely.
pub fn recovery_code_digest(user_id: UserId, code: &str) -> Vec<u8> {
    let normalised: String = code
        .chars()
        .filter(|character| *character != '-' && !character.is_whitespace())
        .map(|character| character.to_ascii_lowercase())
        .collect();
    let mut input = user_id.as_uuid().as_bytes().to_vec();
    input.extend_from_slice(normalised.as_bytes());
    ring::digest::digest(&ring::digest::SHA256, &input)
        .as_ref()
        .to_vec()
}

fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut output = String::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            output.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        output.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, Appendix B: the SHA-1 seed and the 8-digit codes at each test time. A 6-digit
    /// code is the same value modulo 10^6, so its last six digits.
    const RFC_SEED: &[u8] = b"12345678901234567890";
    const RFC_VECTORS: [(u64, &str); 6] = [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];

    #[test]
    fn rfc_6238_vectors_are_accepted_in_their_step() {
        for (time, eight_digits) in RFC_VECTORS {
            let code = &eight_digits[2..];
            assert_eq!(
                matching_step(RFC_SEED, code, time),
                Some(time / 30),
                "t={time}"
            );
        }
    }

    #[test]
    fn codes_are_accepted_one_step_early_or_late_and_not_beyond() {
        let (time, eight_digits) = RFC_VECTORS[3];
        let code = &eight_digits[2..];
        assert_eq!(matching_step(RFC_SEED, code, time + 30), Some(time / 30));
        assert_eq!(matching_step(RFC_SEED, code, time - 30), Some(time / 30));
        assert_eq!(matching_step(RFC_SEED, code, time + 90), None);
        assert_eq!(matching_step(RFC_SEED, "000000", time), None);
        assert_eq!(matching_step(RFC_SEED, "12345", time), None);
        assert_eq!(matching_step(RFC_SEED, "12345a", time), None);
    }

    #[test]
    fn provisioning_uris_name_the_account_and_issuer() {
        let secret = new_secret();
        let (base32, uri) = provisioning(&secret, "ada@example.com").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/FormFlow:ada%40example.com?"),
            "{uri}"
        );
        assert!(uri.contains(&format!("secret={base32}")), "{uri}");
        assert!(uri.contains("issuer=FormFlow"), "{uri}");
        assert_eq!(base32.len(), 32);
    }

    #[test]
    fn recovery_codes_are_unique_and_loosely_matched() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODE_COUNT);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODE_COUNT);
        assert!(
            codes
                .iter()
                .all(|code| code.len() == 19 && code.matches('-').count() == 3)
        );
        let user = UserId::generate();
        let code = &codes[0];
        assert_eq!(
            recovery_code_digest(user, code),
            recovery_code_digest(user, &code.to_uppercase().replace('-', " "))
        );
        assert_ne!(
            recovery_code_digest(user, code),
            recovery_code_digest(UserId::generate(), code)
        );
        assert!(!is_totp_code(code));
        assert!(is_totp_code("123456"));
    }
}
