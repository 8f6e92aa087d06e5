//! The email channel: messages over SMTP with lettre.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use crate::domain::{DeliveryId, Rendered};

/// Sends emails through one SMTP server, from one sender.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Mailer")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// Why an attempt did not deliver (an email here; a webhook in `crate::webhooks`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailure {
    /// What happened (never the server's credentials).
    pub error: String,
    /// The SMTP reply code or HTTP status, 0 when the server gave none.
    pub code: i32,
    /// Whether trying again cannot help (an SMTP 5xx reply: no such mailbox, refused sender;
    /// an HTTP 4xx other than 408 and 429).
    pub permanent: bool,
}

impl Mailer {
    /// A mailer for the server at `url` (NOTIFY_SMTP_URL) sending as `from` (NOTIFY_EMAIL_FROM),
    /// failing an exchange after `timeout`.
    pub fn new(url: &SecretString, from: &str, timeout: Duration) -> anyhow::Result<Mailer> {
        // The URL may hold a password: its parse error must not quote it.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map_err(|_| anyhow::anyhow!("NOTIFY_SMTP_URL is not an smtp:// or smtps:// URL"))?
            .timeout(Some(timeout))
            .build();
        let from = from
            .parse()
            .map_err(|error| anyhow::anyhow!("NOTIFY_EMAIL_FROM: {error}"))?;
        Ok(Mailer { transport, from })
    }

    /// Sends `content` to `address` as the delivery `id` (its Message-ID, the same on every
    /// attempt, lets a mailbox drop a repeat); answers the server's reply code.
    pub async fn send(
        &self,
        id: DeliveryId,
        address: &str,
        content: &Rendered,
    ) -> Result<i32, SendFailure> {
        let to: Mailbox = address.parse().map_err(|error| SendFailure {
            error: format!("the address {address} is not valid: {error}"),
            code: 0,
            permanent: true,
        })?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(content.email_subject.clone())
            .message_id(Some(format!("<{id}@formflow>")));
        let message = if content.email_html.is_empty() {
            builder.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(content.email_text.clone()),
            )
        } else {
            builder.multipart(MultiPart::alternative_plain_html(
                content.email_text.clone(),
                content.email_html.clone(),
            ))
        }
        .map_err(|error| SendFailure {
            error: format!("the message could not be built: {error}"),
            code: 0,
            permanent: true,
        })?;
        match self.transport.send(message).await {
            Ok(response) => Ok(reply_code(response.code())),
            Err(error) => Err(SendFailure {
                code: error.status().map_or(0, reply_code),
                permanent: error.is_permanent(),
                // The error and its causes on one line.
                error: format!("{:#}", anyhow::Error::new(error)),
            }),
        }
    }
}

fn reply_code(code: lettre::transport::smtp::response::Code) -> i32 {
    code.to_string().parse().unwrap_or(0)
}
