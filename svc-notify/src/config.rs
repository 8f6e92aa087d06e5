//! Configuration of svc-notify: flags and environment variables (`svc-notify --help`).

use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use platform::config::{ServiceClientConfig, ServiceConfig, parse_duration, resolve_secret};
use platform::suite::Notify;
use secrecy::SecretString;
use url::Url;

/// svc-notify's configuration: the kit's blocks and its own options.
pub type Config = ServiceConfig<Notify, NotifyOptions>;

/// What svc-notify needs besides the kit's blocks.
#[derive(Debug, Clone, clap::Args)]
pub struct NotifyOptions {
    /// The mail server emails go through: `smtp://host:port` (plain, for a local relay),
    /// `smtp://host:587?tls=required` (STARTTLS) or `smtps://host:465` (TLS), with
    /// `user:password@` before the host when it needs a login. Unset, the email channel is off:
    /// sends that need it are refused.
    #[arg(long, env = "NOTIFY_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<SecretString>,
    /// File holding NOTIFY_SMTP_URL.
    #[arg(long, env = "NOTIFY_SMTP_URL_FILE")]
    pub smtp_url_file: Option<PathBuf>,
    /// Sender of emails, `Name <address>` or an address.
    #[arg(
        long,
        env = "NOTIFY_EMAIL_FROM",
        default_value = "FormFlow <no-reply@formflow.localhost>"
    )]
    pub email_from: String,
    /// How long one SMTP exchange may take before the attempt fails.
    #[arg(long, env = "NOTIFY_SEND_TIMEOUT", default_value = "30s", value_parser = positive_duration)]
    pub send_timeout: Duration,
    /// Deliveries each replica sends at once (also the prefetch of its work queue); 0 sends
    /// none: a replica that only serves the API.
    #[arg(long, env = "NOTIFY_WORKER_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub worker_concurrency: u16,
    /// Attempts of a delivery before it fails (and waits for RetryDelivery).
    #[arg(long, env = "NOTIFY_MAX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=20))]
    pub max_attempts: i32,
    /// Wait before the second attempt; each later wait doubles, with up to 20 % jitter.
    #[arg(long, env = "NOTIFY_RETRY_BASE", default_value = "10s", value_parser = parse_duration)]
    pub retry_base: Duration,
    /// Longest wait between two attempts.
    #[arg(long, env = "NOTIFY_RETRY_MAX", default_value = "1h", value_parser = parse_duration)]
    pub retry_max: Duration,
    /// How long a worker holds a delivery it sends; a delivery whose worker died is sent
    /// again once this passes (emails may then arrive twice: their Message-ID is the same).
    #[arg(long, env = "NOTIFY_LEASE", default_value = "60s", value_parser = positive_duration)]
    pub lease: Duration,
    /// How long a delivery may stay due with no worker on it before its job is sent again (a
    /// job lost between a commit and its publish).
    #[arg(long, env = "NOTIFY_OVERDUE_AFTER", default_value = "60s", value_parser = positive_duration)]
    pub overdue_after: Duration,
    /// Keys sealing webhook endpoints' signing secrets at rest (AES-256-GCM): comma-separated
    /// `id:base64` pairs of 32-byte keys, the first one sealing new secrets. Keep retired keys
    /// in the list until every endpoint's secret was rotated under the new one. Unset, the
    /// webhook channel is off: creating endpoints, rotating their secrets and sends to them
    /// are refused.
    #[arg(long, env = "NOTIFY_ENCRYPTION_KEYS", hide_env_values = true)]
    pub encryption_keys: Option<SecretString>,
    /// File holding NOTIFY_ENCRYPTION_KEYS.
    #[arg(long, env = "NOTIFY_ENCRYPTION_KEYS_FILE")]
    pub encryption_keys_file: Option<PathBuf>,
    /// Internal networks (comma-separated CIDRs, e.g. `10.20.0.0/16`) that webhook endpoints
    /// may reach, over https or plain http; loopback, private, link-local and metadata
    /// addresses are refused otherwise, and other endpoints must be https.
    #[arg(long, env = "NOTIFY_WEBHOOK_ALLOWED_NETWORKS", value_delimiter = ',')]
    pub webhook_allowed_networks: Vec<IpNet>,
    /// Days a notification is kept, with its deliveries, their attempts and its inbox messages
    /// (a `transaction_id` sends once within them); one with a delivery still to be sent is
    /// kept until it is sent.
    #[arg(long, env = "NOTIFY_RETENTION_DAYS", default_value_t = 90, value_parser = clap::value_parser!(i32).range(1..=3650))]
    pub retention_days: i32,
    /// How often notifications past their retention are deleted.
    #[arg(long, env = "NOTIFY_RETENTION_INTERVAL", default_value = "1h", value_parser = positive_duration)]
    pub retention_interval: Duration,
    /// svc-notify's client at svc-auth: with it, it reads users' email addresses when an
    /// email goes to `users/{id}`. Unset, users receive in-app messages only: emails to them
    /// are refused.
    #[command(flatten)]
    pub service_client: ServiceClientConfig,
    /// Base URL of the web app that emails link to (`https://app.example.com`): an invitation
    /// links to `{url}/invitations/accept?tenant={slug}&token={token}`, a password reset to
    /// `{url}/password-reset?tenant={slug}&token={token}`. Unset, svc-notify sends no
    /// invitation or password reset emails (it dead-letters those events, with a warning).
    #[arg(long, env = "NOTIFY_APP_URL", value_parser = app_url)]
    pub app_url: Option<Url>,
    /// How long a webhook endpoint has to answer a delivery before the attempt fails (and is
    /// retried).
    #[arg(long, env = "NOTIFY_WEBHOOK_TIMEOUT", default_value = "15s", value_parser = positive_duration)]
    pub webhook_timeout: Duration,
}

/// An `http` or `https` base URL.
fn app_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|error| error.to_string())?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err("must be an http(s) URL".to_owned());
    }
    Ok(url)
}

/// A duration of at least a second, as `30s` or `5m`.
fn positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration < Duration::from_secs(1) {
        return Err("must be at least 1s".to_owned());
    }
    Ok(duration)
}

impl NotifyOptions {
    /// Refuses a lease no longer than a send may take: a send does not renew its lease, so a
    /// lease that lapses while a send is still running lets another worker send again.
    pub fn check_lease(&self) -> anyhow::Result<()> {
        let longest_send = self.send_timeout.max(self.webhook_timeout);
        anyhow::ensure!(
            self.lease > longest_send,
            "NOTIFY_LEASE ({:?}) must be longer than NOTIFY_SEND_TIMEOUT and \
             NOTIFY_WEBHOOK_TIMEOUT ({:?}): a send outliving its lease is made again by another \
             worker",
            self.lease,
            longest_send
        );
        Ok(())
    }

    /// NOTIFY_SMTP_URL from the variable or its file; `None` when neither is set.
    pub fn smtp_url(&self) -> anyhow::Result<Option<SecretString>> {
        if self.smtp_url.is_none() && self.smtp_url_file.is_none() {
            return Ok(None);
        }
        resolve_secret(
            self.smtp_url.as_ref(),
            self.smtp_url_file.as_ref(),
            "NOTIFY_SMTP_URL",
            None,
        )
        .map(Some)
    }

    /// NOTIFY_ENCRYPTION_KEYS from the variable or its file; `None` when neither is set.
    pub fn encryption_keys(&self) -> anyhow::Result<Option<SecretString>> {
        if self.encryption_keys.is_none() && self.encryption_keys_file.is_none() {
            return Ok(None);
        }
        resolve_secret(
            self.encryption_keys.as_ref(),
            self.encryption_keys_file.as_ref(),
            "NOTIFY_ENCRYPTION_KEYS",
            None,
        )
        .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Config::command().debug_assert();
    }

    #[test]
    fn a_lease_must_outlast_the_longest_send() {
        let config = |lease: &str, send: &str, webhook: &str| {
            Config::try_parse_from([
                "svc-notify",
                "--lease",
                lease,
                "--send-timeout",
                send,
                "--webhook-timeout",
                webhook,
            ])
            .unwrap()
            .options
        };
        assert!(
            Config::try_parse_from(["svc-notify"])
                .unwrap()
                .options
                .check_lease()
                .is_ok()
        );
        assert!(config("31s", "30s", "15s").check_lease().is_ok());
        let refused = config("30s", "30s", "15s").check_lease().unwrap_err();
        assert!(refused.to_string().contains("NOTIFY_LEASE"), "{refused}");
        assert!(config("20s", "10s", "20s").check_lease().is_err());
    }
}
