//! Credentials: secrets that nodes use, typed by the shape of their value. A value is checked
//! here and sealed by the operations; reasons never quote it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use platform::context::TenantId;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::CredentialId;
use super::node_types::CredentialUse;

/// Largest credential value, as JSON.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;

/// Kind of a credential, and the shape of its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialType {
    /// `{"token"}`, sent as `Authorization: Bearer`.
    BearerToken,
    /// `{"username", "password"}`, sent as HTTP Basic authentication.
    BasicAuth,
    /// `{"header", "value"}`, sent as that header.
    Header,
    /// `{"secret"}`, a Standard Webhooks secret.
    WebhookSecret,
    /// Any object of strings.
    Generic,
}

impl CredentialType {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialType::BearerToken => "bearer_token",
            CredentialType::BasicAuth => "basic_auth",
            CredentialType::Header => "header",
            CredentialType::WebhookSecret => "webhook_secret",
            CredentialType::Generic => "generic",
        }
    }

    /// The type stored as `text`.
    pub fn parse(text: &str) -> Option<CredentialType> {
        [
            CredentialType::BearerToken,
            CredentialType::BasicAuth,
            CredentialType::Header,
            CredentialType::WebhookSecret,
            CredentialType::Generic,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }

    /// The name on the wire, for messages.
    pub fn wire_name(self) -> &'static str {
        match self {
            CredentialType::BearerToken => "BEARER_TOKEN",
            CredentialType::BasicAuth => "BASIC_AUTH",
            CredentialType::Header => "HEADER",
            CredentialType::WebhookSecret => "WEBHOOK_SECRET",
            CredentialType::Generic => "GENERIC",
        }
    }

    /// Whether a node may use a credential of this type for `usage`.
    pub fn serves(self, usage: CredentialUse) -> bool {
        match usage {
            CredentialUse::WebhookSecret => self == CredentialType::WebhookSecret,
            CredentialUse::HttpAuthentication => matches!(
                self,
                CredentialType::BearerToken | CredentialType::BasicAuth | CredentialType::Header
            ),
        }
    }

    /// The keys a value of this type has; `None` for any keys.
    fn keys(self) -> Option<&'static [&'static str]> {
        match self {
            CredentialType::BearerToken => Some(&["token"]),
            CredentialType::BasicAuth => Some(&["username", "password"]),
            CredentialType::Header => Some(&["header", "value"]),
            CredentialType::WebhookSecret => Some(&["secret"]),
            CredentialType::Generic => None,
        }
    }
}

/// A credential's value: named secret strings. Its `Debug` shows the keys only.
#[derive(Clone)]
pub struct CredentialValue(BTreeMap<String, SecretString>);

impl std::fmt::Debug for CredentialValue {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_set().entries(self.0.keys()).finish()
    }
}

impl CredentialValue {
    /// `value` as a value of `kind`, or every problem as (key, reason); the key is empty for
    /// problems of the whole value.
    pub fn parse(
        kind: CredentialType,
        value: Map<String, Value>,
    ) -> Result<Self, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let size = serde_json::to_vec(&value).map_or(usize::MAX, |json| json.len());
        if size > MAX_VALUE_BYTES {
            problems.push((String::new(), "must be at most 16 KiB of JSON".to_owned()));
            return Err(problems);
        }
        let mut secrets = BTreeMap::new();
        for (key, member) in value {
            if let Some(keys) = kind.keys()
                && !keys.contains(&key.as_str())
            {
                problems.push((
                    key,
                    format!(
                        "is not a key of a {} credential (it has {})",
                        kind.wire_name(),
                        keys.join(", ")
                    ),
                ));
                continue;
            }
            if key.is_empty() || key.chars().count() > 100 {
                problems.push((key, "keys are 1 to 100 characters".to_owned()));
                continue;
            }
            match member {
                Value::String(text) if !text.is_empty() => {
                    secrets.insert(key, SecretString::from(text));
                }
                _ => problems.push((key, "must be a string, not empty".to_owned())),
            }
        }
        if let Some(keys) = kind.keys() {
            for key in keys {
                if !secrets.contains_key(*key) && !problems.iter().any(|(bad, _)| bad == key) {
                    problems.push(((*key).to_owned(), "is required".to_owned()));
                }
            }
        } else if secrets.is_empty() && problems.is_empty() {
            problems.push((String::new(), "must have at least one key".to_owned()));
        }
        let credential = CredentialValue(secrets);
        match kind {
            CredentialType::Header => {
                if let Some(header) = credential.get("header")
                    && http::HeaderName::from_bytes(header.as_bytes()).is_err()
                {
                    problems.push(("header".to_owned(), "is not an HTTP header name".to_owned()));
                }
                if let Some(value) = credential.get("value")
                    && http::HeaderValue::from_str(value).is_err()
                {
                    problems.push((
                        "value".to_owned(),
                        "is not a valid HTTP header value".to_owned(),
                    ));
                }
            }
            CredentialType::BasicAuth => {
                if credential
                    .get("username")
                    .is_some_and(|name| name.contains(':'))
                {
                    problems.push(("username".to_owned(), "cannot contain `:`".to_owned()));
                }
            }
            CredentialType::WebhookSecret => {
                if let Some(secret) = credential.get("secret")
                    && platform::webhooks::secret_bytes(secret).is_none()
                {
                    problems.push((
                        "secret".to_owned(),
                        "must be `whsec_` and the base64 of 24 to 64 random bytes".to_owned(),
                    ));
                }
            }
            CredentialType::BearerToken | CredentialType::Generic => {}
        }
        if problems.is_empty() {
            Ok(credential)
        } else {
            Err(problems)
        }
    }

    /// The secret named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(ExposeSecret::expose_secret)
    }

    /// The value as JSON, to seal.
    pub fn to_json(&self) -> Vec<u8> {
        let exposed: BTreeMap<&str, &str> = self
            .0
            .iter()
            .map(|(key, secret)| (key.as_str(), secret.expose_secret()))
            .collect();
        serde_json::to_vec(&exposed).expect("maps of strings serialise")
    }
}

/// A credential, without its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    /// Its id.
    pub id: CredentialId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Human-readable name, unique in the tenant.
    pub display_name: String,
    /// Its type.
    pub kind: CredentialType,
    /// Row version, the etag.
    pub version: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it or its value last changed.
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use serde_json::json;

    use super::*;

    fn parse(kind: CredentialType, value: Value) -> Result<CredentialValue, Vec<(String, String)>> {
        let Value::Object(value) = value else {
            panic!("values are objects")
        };
        CredentialValue::parse(kind, value)
    }

    fn keys(result: Result<CredentialValue, Vec<(String, String)>>) -> Vec<String> {
        result
            .expect_err("refused")
            .into_iter()
            .map(|(key, _)| key)
            .collect()
    }

    #[test]
    fn each_type_takes_its_keys() {
        let bearer = parse(CredentialType::BearerToken, json!({"token": "s3cr3t"})).unwrap();
        assert_eq!(bearer.get("token"), Some("s3cr3t"));
        assert_eq!(format!("{bearer:?}"), r#"{"token"}"#);
        assert_eq!(
            keys(parse(CredentialType::BearerToken, json!({}))),
            ["token"]
        );
        assert_eq!(
            keys(parse(
                CredentialType::BearerToken,
                json!({"token": "", "extra": "x"})
            )),
            ["extra", "token"]
        );
        assert_eq!(
            keys(parse(
                CredentialType::BasicAuth,
                json!({"username": "a:b", "password": 1})
            )),
            ["password", "username"]
        );
        assert_eq!(
            keys(parse(
                CredentialType::Header,
                json!({"header": "Bad Header", "value": "v\n"})
            )),
            ["header", "value"]
        );
        assert!(
            parse(
                CredentialType::Header,
                json!({"header": "X-Api-Key", "value": "k"})
            )
            .is_ok()
        );
        assert_eq!(keys(parse(CredentialType::Generic, json!({}))), [""]);
        assert!(parse(CredentialType::Generic, json!({"anything": "goes"})).is_ok());
    }

    #[test]
    fn webhook_secrets_are_standard_webhooks_secrets() {
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode([7_u8; 32])
        );
        assert!(parse(CredentialType::WebhookSecret, json!({"secret": secret})).is_ok());
        assert_eq!(platform::webhooks::secret_bytes(&secret), Some(vec![7; 32]));
        assert_eq!(
            keys(parse(
                CredentialType::WebhookSecret,
                json!({"secret": "whsec_short"})
            )),
            ["secret"]
        );
    }

    #[test]
    fn refusals_never_quote_the_value() {
        let problems = parse(
            CredentialType::Header,
            json!({"header": "Bad Header", "value": "hunter2\n"}),
        )
        .unwrap_err();
        assert!(
            problems
                .iter()
                .all(|(_, reason)| !reason.contains("hunter2") && !reason.contains("Bad Header"))
        );
    }
}
