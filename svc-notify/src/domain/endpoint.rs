//! Webhook endpoints: where webhook deliveries go. Their URL, description and topics are
//! checked here; whether the URL's destination may be reached is the webhook channel's call
//! (`crate::webhooks`), since it depends on name resolution and the deployment's networks.
//! The payload a delivery posts is built here, from the notification alone, so every attempt
//! posts the same bytes.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use platform::context::TenantId;
use platform::error::FieldViolations;
use serde_json::{Value, json};

use super::template::check_topic_like;
use super::{Notification, WebhookEndpointId};

/// Longest URL, in characters.
pub const MAX_URL_CHARS: usize = 2_048;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Most topics an endpoint filters on.
pub const MAX_TOPICS: usize = 100;
/// How long a rotated secret keeps signing when the rotation does not say.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(24 * 3600);
/// Longest grace period of a rotation.
pub const MAX_GRACE_PERIOD: Duration = Duration::from_secs(7 * 24 * 3600);
/// Characters of a secret shown to recognise it: `whsec_` and 4 more.
const SECRET_PREFIX_CHARS: usize = 10;

/// Why a delivery to an endpoint is suppressed when its notification is sent.
pub const ENDPOINT_DISABLED: &str = "ENDPOINT_DISABLED";
/// Why a delivery to an endpoint is suppressed when its notification is sent.
pub const TOPIC_FILTERED: &str = "TOPIC_FILTERED";

/// An outbound webhook endpoint, without its secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// Its id.
    pub id: WebhookEndpointId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Where deliveries are posted (checked by [`check_url`]).
    pub url: String,
    /// What it is for.
    pub description: String,
    /// Topics it receives; empty receives all.
    pub topics: Vec<String>,
    /// Whether deliveries to it are suppressed.
    pub disabled: bool,
    /// `whsec_` and the first characters of the current secret.
    pub secret_prefix: String,
    /// When the secret was last rotated.
    pub secret_rotated_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl WebhookEndpoint {
    /// Why a notification of `topic` is not sent to it, if it is not: a disabled endpoint, or
    /// one whose topics leave `topic` out.
    pub fn suppression(&self, topic: &str) -> Option<&'static str> {
        if self.disabled {
            Some(ENDPOINT_DISABLED)
        } else if !self.topics.is_empty() && !self.topics.iter().any(|wanted| wanted == topic) {
            Some(TOPIC_FILTERED)
        } else {
            None
        }
    }
}

/// The part of a secret shown to recognise it.
pub fn secret_prefix(secret: &str) -> String {
    secret.chars().take(SECRET_PREFIX_CHARS).collect()
}

/// Checks an endpoint's URL as written: absolute `http` or `https` with a host, at most 2,048
/// characters, no user info (it would be shown to every reader) and no fragment.
pub fn check_url(text: &str) -> Result<url::Url, String> {
    if text.chars().count() > MAX_URL_CHARS {
        return Err(format!("must be at most {MAX_URL_CHARS} characters"));
    }
    let url = url::Url::parse(text).map_err(|_| "must be an absolute https URL".to_owned())?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err("must be an absolute https URL".to_owned());
    }
    if url.host().is_none() {
        return Err("must name a host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not hold a user name or password".to_owned());
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment".to_owned());
    }
    Ok(url)
}

/// Adds a violation of `field` for each problem of `topics`: too many, malformed, repeated.
pub fn check_topics(violations: &mut FieldViolations, field: &str, topics: &[String]) {
    if topics.len() > MAX_TOPICS {
        violations.add(field, format!("must be at most {MAX_TOPICS}"));
    }
    let mut seen = HashSet::new();
    for (index, topic) in topics.iter().enumerate() {
        violations.check(&format!("{field}[{index}]"), check_topic_like(topic));
        if !seen.insert(topic) {
            violations.add(format!("{field}[{index}]"), "is named twice");
        }
    }
}

/// Adds a violation of `field` when `description` is too long.
pub fn check_description(violations: &mut FieldViolations, field: &str, description: &str) {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        violations.add(
            field,
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        );
    }
}

/// The JSON body a webhook delivery of `notification` posts (Standard Webhooks' `type`,
/// `timestamp`, `data`): the same bytes on every attempt.
pub fn payload(notification: &Notification) -> Vec<u8> {
    let content = &notification.content;
    let body = json!({
        "type": notification.topic,
        "timestamp": notification.created_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        "data": {
            "notification": platform::wire::resource_name("notifications", notification.id),
            "topic": notification.topic,
            "priority": notification.priority.as_str(),
            "subject": content.email_subject,
            "text": content.email_text,
            "link": content.in_app_link,
            "data": Value::Object(notification.data.clone()),
        },
    });
    serde_json::to_vec(&body).expect("JSON values serialise")
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;
    use crate::domain::{NotificationId, Priority, Rendered, Source};

    fn endpoint(topics: &[&str], disabled: bool) -> WebhookEndpoint {
        let now = Utc::now();
        WebhookEndpoint {
            id: WebhookEndpointId::generate(),
            tenant_id: TenantId::generate(),
            url: "https://hooks.example.com/in".to_owned(),
            description: String::new(),
            topics: topics.iter().map(|topic| (*topic).to_owned()).collect(),
            disabled,
            secret_prefix: "whsec_abcd".to_owned(),
            secret_rotated_at: None,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn disabled_endpoints_and_unwanted_topics_suppress() {
        assert_eq!(endpoint(&[], false).suppression("ticket.assigned"), None);
        assert_eq!(
            endpoint(&["ticket.assigned"], false).suppression("ticket.assigned"),
            None
        );
        assert_eq!(
            endpoint(&["ticket.closed"], false).suppression("ticket.assigned"),
            Some(TOPIC_FILTERED)
        );
        assert_eq!(
            endpoint(&[], true).suppression("ticket.assigned"),
            Some(ENDPOINT_DISABLED)
        );
    }

    #[test]
    fn urls_are_absolute_web_urls_without_credentials() {
        assert!(check_url("https://hooks.example.com/in?x=1").is_ok());
        assert!(
            check_url("http://10.0.0.5:8080/in").is_ok(),
            "decided later"
        );
        for bad in [
            "",
            "/relative",
            "hooks.example.com/in",
            "ftp://hooks.example.com/in",
            "https://user:pass@hooks.example.com/in",
            "https://hooks.example.com/in#part",
            "mailto:ada@example.com",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert!(check_url(&long).is_err());
    }

    #[test]
    fn topics_are_checked_each() {
        let mut violations = FieldViolations::new();
        check_topics(
            &mut violations,
            "topics",
            &["a.b".to_owned(), "Bad".to_owned(), "a.b".to_owned()],
        );
        assert_eq!(violations.fields(), ["topics[1]", "topics[2]"]);
    }

    #[test]
    fn the_payload_names_the_notification_and_carries_its_data() {
        let mut data = Map::new();
        data.insert("ticket".to_owned(), json!({"id": 7}));
        let notification = Notification {
            id: NotificationId::generate(),
            tenant_id: TenantId::generate(),
            topic: "ticket.assigned".to_owned(),
            priority: Priority::High,
            template_id: None,
            source: Source::default(),
            transaction_id: None,
            dedup_key: None,
            content: Rendered {
                email_subject: "Assigned".to_owned(),
                email_text: "Ticket 7 is yours".to_owned(),
                in_app_link: "/tickets/7".to_owned(),
                ..Rendered::default()
            },
            sealing: Default::default(),
            data,
            created_at: "2026-12-06T21:00:00.5Z".parse().unwrap(),
        };
        let body: Value = serde_json::from_slice(&payload(&notification)).unwrap();
        assert_eq!(
            body,
            json!({
                "type": "ticket.assigned",
                "timestamp": "2026-12-06T21:00:00.500Z",
                "data": {
                    "notification": format!("notifications/{}", notification.id),
                    "topic": "ticket.assigned",
                    "priority": "high",
                    "subject": "Assigned",
                    "text": "Ticket 7 is yours",
                    "link": "/tickets/7",
                    "data": {"ticket": {"id": 7}},
                },
            })
        );
        assert_eq!(payload(&notification), payload(&notification));
    }
}
