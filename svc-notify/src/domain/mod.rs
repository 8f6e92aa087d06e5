//! svc-notify's domain: what notifications are, independent of the wire and the database.
//!
//! - [`template`]: templates, their variables, checking and rendering them.
//! - [`digest`]: what a digest of batched notifications says.
//! - [`endpoint`]: webhook endpoints and the payload their deliveries post.
//! - [`preferences`]: users' and tenants' preferences and what they decide for a delivery.
//! - this module: notifications, their deliveries and attempts, inbox messages.

pub mod digest;
pub mod endpoint;
pub mod preferences;
pub mod template;

use chrono::{DateTime, Utc};
use platform::context::{TenantId, UserId};
use serde_json::{Map, Value};

pub use endpoint::WebhookEndpoint;
pub use template::{Content, Rendered, TemplateKey, Variable};

platform::id!(
    /// Identifies a template.
    TemplateId,
    "template id"
);
platform::id!(
    /// Identifies a notification.
    NotificationId,
    "notification id"
);
platform::id!(
    /// Identifies a delivery.
    DeliveryId,
    "delivery id"
);
platform::id!(
    /// Identifies an in-app message.
    InboxMessageId,
    "inbox message id"
);
platform::id!(
    /// Identifies a webhook endpoint.
    WebhookEndpointId,
    "webhook endpoint id"
);

platform::stored_enum! {
    /// A channel a notification is delivered on.
    Channel {
        /// Email over SMTP.
        Email => "email",
        /// The recipient's in-app inbox.
        InApp => "in_app",
        /// An outbound webhook endpoint.
        Webhook => "webhook",
    }
}

platform::stored_enum! {
    /// Urgency of a notification.
    Priority {
        /// After normal ones.
        Low => "low",
        /// The default.
        Normal => "normal",
        /// Before normal ones.
        High => "high",
        /// Before others; bypasses preferences, quiet hours and digests.
        Urgent => "urgent",
    }
}

platform::stored_enum! {
    /// Lifecycle state of a delivery.
    DeliveryState {
        /// Waiting for its first or next attempt.
        Pending => "pending",
        /// Held until the recipient's quiet hours or its digest window end.
        Deferred => "deferred",
        /// Sent.
        Delivered => "delivered",
        /// Failed every attempt (or for good).
        Failed => "failed",
        /// Not sent, for its suppression reason.
        Suppressed => "suppressed",
        /// Not sent: its webhook endpoint was deleted.
        Cancelled => "cancelled",
        /// Waiting in another delivery's digest; delivered with it.
        Batched => "batched",
    }
}

/// Who receives a notification.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipient {
    /// A member of the tenant.
    User(UserId),
    /// An email address (already checked).
    Email(String),
    /// A webhook endpoint of the tenant.
    WebhookEndpoint(WebhookEndpointId),
}

impl Recipient {
    /// The kind stored in Postgres.
    pub fn kind(&self) -> &'static str {
        match self {
            Recipient::User(_) => "user",
            Recipient::Email(_) => "email",
            Recipient::WebhookEndpoint(_) => "webhook_endpoint",
        }
    }

    /// The value stored beside the kind.
    pub fn value(&self) -> String {
        match self {
            Recipient::User(user) => user.to_string(),
            Recipient::Email(address) => address.clone(),
            Recipient::WebhookEndpoint(endpoint) => endpoint.to_string(),
        }
    }

    /// Reads a stored kind and value.
    pub fn from_stored(kind: &str, value: &str) -> Option<Recipient> {
        match kind {
            "user" => UserId::parse(value).ok().map(Recipient::User),
            "email" => Some(Recipient::Email(value.to_owned())),
            "webhook_endpoint" => WebhookEndpointId::parse(value)
                .ok()
                .map(Recipient::WebhookEndpoint),
            _ => None,
        }
    }

    /// The channels it receives on when the sender names none: a user in-app, and by email
    /// when `users_get_email` (the deployment reads their addresses and sends email).
    pub fn default_channels(&self, users_get_email: bool) -> &'static [Channel] {
        match self {
            Recipient::User(_) if users_get_email => &[Channel::InApp, Channel::Email],
            Recipient::User(_) => &[Channel::InApp],
            Recipient::Email(_) => &[Channel::Email],
            Recipient::WebhookEndpoint(_) => &[Channel::Webhook],
        }
    }

    /// Whether it can receive on `channel`.
    pub fn takes(&self, channel: Channel) -> bool {
        matches!(
            (self, channel),
            (Recipient::User(_), Channel::InApp | Channel::Email)
                | (Recipient::Email(_), Channel::Email)
                | (Recipient::WebhookEndpoint(_), Channel::Webhook)
        )
    }
}

/// A saved template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Its id.
    pub id: TemplateId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The key senders use.
    pub key: TemplateKey,
    /// Human-readable name.
    pub display_name: String,
    /// Declared variables.
    pub variables: Vec<Variable>,
    /// Its parts.
    pub content: Content,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// Who or what sent a notification.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Source {
    /// The caller: `users/{id}`, `apiKeys/{id}`, `services/{name}`.
    pub principal: String,
    /// The event reacted to, `{type}/{id}`; empty for a call.
    pub event: String,
}

/// A notification as accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Its id.
    pub id: NotificationId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its topic.
    pub topic: String,
    /// Its urgency.
    pub priority: Priority,
    /// The template it was rendered from.
    pub template_id: Option<TemplateId>,
    /// Who sent it.
    pub source: Source,
    /// The sender's transaction id.
    pub transaction_id: Option<String>,
    /// The deduplication key.
    pub dedup_key: Option<String>,
    /// The rendered content; empty when sealed.
    pub content: Rendered,
    /// Whether the content is sealed at rest.
    pub sealing: Sealing,
    /// The data it was rendered with (the payload of webhook deliveries).
    pub data: Map<String, Value>,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
}

/// Whether a notification's content is kept sealed at rest, because it holds a secret (an
/// invitation or a password reset link).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Sealing {
    /// Stored in the clear.
    #[default]
    Clear,
    /// Sealed: the content, as JSON, under the deployment's key.
    Sealed(Vec<u8>),
    /// It was sealed, and erased once every delivery of it was done.
    Erased,
}

/// One recipient on one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Its id.
    pub id: DeliveryId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its notification.
    pub notification_id: NotificationId,
    /// Its order among the notification's deliveries.
    pub position: i32,
    /// Its channel.
    pub channel: Channel,
    /// Its recipient.
    pub recipient: Recipient,
    /// Where an email goes.
    pub address: String,
    /// Its state.
    pub state: DeliveryState,
    /// Why it was suppressed.
    pub suppression_reason: String,
    /// The notification's topic.
    pub topic: String,
    /// The notification's urgency.
    pub priority: Priority,
    /// Attempts since it was queued or retried by hand.
    pub attempt_count: i32,
    /// Error of the last failed attempt.
    pub last_error: String,
    /// SMTP reply code or HTTP status of the last attempt.
    pub last_response_code: i32,
    /// When the next attempt is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Whether it opened a digest window, whose message carries the deliveries batched into it.
    pub digest: bool,
    /// The delivery whose digest carries it, when batched.
    pub digest_id: Option<DeliveryId>,
}

/// One attempt to send a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first attempt (restarts after a retry by hand).
    pub number: i32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Whether it delivered.
    pub delivered: bool,
    /// Why it failed.
    pub error: String,
    /// SMTP reply code or HTTP status.
    pub response_code: i32,
}

/// A message in a user's inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxMessage {
    /// Its id.
    pub id: InboxMessageId,
    /// Its notification.
    pub notification_id: NotificationId,
    /// The notification's topic.
    pub topic: String,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Link.
    pub link: String,
    /// The notification's urgency.
    pub priority: Priority,
    /// When it was read.
    pub read_at: Option<DateTime<Utc>>,
    /// When it was archived.
    pub archived_at: Option<DateTime<Utc>>,
    /// When it arrived.
    pub created_at: DateTime<Utc>,
}

/// Checks an email address: at most 254 characters, one `@` with a non-empty local part and a
/// dotted domain, no spaces or control characters. Deliberately loose: the mail server is the
/// judge; this refuses what cannot be an address.
pub fn check_email(address: &str) -> Result<(), &'static str> {
    if address.len() > 254 {
        return Err("must be at most 254 characters");
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err("must be an email address");
    };
    let bad = |part: &str| {
        part.is_empty()
            || part
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
    };
    if bad(local) || bad(domain) || !domain.contains('.') || domain.contains('@') {
        return Err("must be an email address");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_are_checked_loosely() {
        for good in ["ada@example.com", "a.b+c@mail.example.org", "x@y.co"] {
            assert_eq!(check_email(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@localhost",
            "ada lovelace@example.com",
            "ada@exa mple.com",
            "<ada@example.com>",
            "ada@example.com\r\nBcc: eve@example.com",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(check_email(&long), Err("must be at most 254 characters"));
    }

    #[test]
    fn recipients_take_their_own_channels() {
        let user = Recipient::User(UserId::generate());
        let email = Recipient::Email("ada@example.com".to_owned());
        assert!(user.takes(Channel::InApp) && user.takes(Channel::Email));
        assert!(email.takes(Channel::Email) && !email.takes(Channel::InApp));
        assert!(!user.takes(Channel::Webhook));
        assert_eq!(user.default_channels(false), [Channel::InApp]);
        assert_eq!(
            user.default_channels(true),
            [Channel::InApp, Channel::Email]
        );
        assert_eq!(
            Recipient::from_stored(user.kind(), &user.value()),
            Some(user)
        );
        let endpoint = Recipient::WebhookEndpoint(WebhookEndpointId::generate());
        assert!(endpoint.takes(Channel::Webhook) && !endpoint.takes(Channel::Email));
        assert!(!email.takes(Channel::Webhook));
        assert_eq!(endpoint.default_channels(true), [Channel::Webhook]);
        assert_eq!(
            Recipient::from_stored(endpoint.kind(), &endpoint.value()),
            Some(endpoint)
        );
        assert_eq!(Channel::parse("in_app"), Some(Channel::InApp));
        assert_eq!(DeliveryState::parse("nope"), None);
    }
}
