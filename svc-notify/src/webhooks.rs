//! The webhook channel: a delivery is a JSON POST to its endpoint, signed as the Standard
//! Webhooks specification says (`platform::webhooks`), through the platform's SSRF guard
//! (`platform::outbound`). Endpoints' secrets are sealed at rest under NOTIFY_ENCRYPTION_KEYS
//! and opened only to sign.
//!
//! Where a request may go: the URL's host must resolve only to public addresses or to
//! addresses of NOTIFY_WEBHOOK_ALLOWED_NETWORKS — checked when the URL is saved and again at
//! every attempt (and, by the guarded client, on the addresses it connects to); plain `http`
//! is accepted only when every address is on an allowed network (a deployment's own receiver),
//! everything else must be `https`. Redirects are not followed.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ipnet::IpNet;
use platform::context::TenantId;
use platform::crypto::Sealer;
use platform::outbound::{self, NetworkPolicy, Refused};
use url::{Host, Url};

use crate::domain::endpoint::{self, WebhookEndpoint};
use crate::domain::{DeliveryId, Notification, WebhookEndpointId};
use crate::mailer::SendFailure;
use crate::store::SealedSecrets;

/// How long resolving an endpoint's host may take when its URL is checked.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most characters of an endpoint's answer kept in a failed attempt's error.
const EXCERPT_CHARS: usize = 500;

/// Signs and posts webhook deliveries; seals and opens endpoints' secrets.
#[derive(Debug, Clone)]
pub struct Webhooks {
    policy: Arc<NetworkPolicy>,
    client: reqwest::Client,
    sealer: Arc<Sealer>,
    timeout: Duration,
}

impl Webhooks {
    /// The channel: secrets sealed by `sealer`, requests reaching public addresses and
    /// `allowed_networks`, each attempt failing after `timeout`.
    pub fn new(
        sealer: Arc<Sealer>,
        allowed_networks: Vec<IpNet>,
        timeout: Duration,
    ) -> anyhow::Result<Webhooks> {
        let policy = Arc::new(NetworkPolicy::new(allowed_networks));
        let agent = concat!("FormFlow-Notify/", env!("CARGO_PKG_VERSION"));
        Ok(Webhooks {
            client: outbound::client(policy.clone(), false, agent)?,
            policy,
            sealer,
            timeout,
        })
    }

    /// Seals the secret of the endpoint `id` of `tenant`: it opens for that endpoint only.
    pub fn seal(
        &self,
        tenant: TenantId,
        id: WebhookEndpointId,
        secret: &str,
    ) -> anyhow::Result<Vec<u8>> {
        self.sealer
            .seal(&seal_context(tenant, id), secret.as_bytes())
    }

    /// The key bytes of a sealed secret of the endpoint `id` of `tenant`.
    fn open(
        &self,
        tenant: TenantId,
        id: WebhookEndpointId,
        sealed: &[u8],
    ) -> anyhow::Result<Vec<u8>> {
        let opened = self.sealer.open(&seal_context(tenant, id), sealed)?;
        let text = std::str::from_utf8(&opened)
            .map_err(|_| anyhow::anyhow!("a sealed webhook secret is not text"))?;
        platform::webhooks::secret_bytes(text)
            .ok_or_else(|| anyhow::anyhow!("a sealed webhook secret is malformed"))
    }

    /// Refuses `url` (checked by [`endpoint::check_url`]) unless every address its host
    /// resolves to may be reached, and it is https or every address is on an allowed network.
    /// A name that does not resolve now is let through: each attempt resolves it again, and
    /// the client refuses what it may not reach.
    pub async fn check_destination(&self, url: &Url) -> Result<(), String> {
        self.policy
            .check_url(url)
            .map_err(|refused| refused.to_string())?;
        let addresses: Vec<IpAddr> = match url.host() {
            Some(Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
            Some(Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
            Some(Host::Domain(name)) => {
                let port = url.port_or_known_default().unwrap_or(443);
                match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port)))
                    .await
                {
                    Ok(Ok(resolved)) => resolved.map(|address| address.ip()).collect(),
                    Ok(Err(_)) | Err(_) => Vec::new(),
                }
            }
            None => return Err(Refused::NoHost.to_string()),
        };
        if let Some(ip) = addresses.iter().find(|ip| !self.policy.permits(**ip)) {
            let refused = match url.host() {
                Some(Host::Domain(name)) => Refused::InternalName(name.to_owned()),
                _ => Refused::Internal(*ip),
            };
            return Err(refused.to_string());
        }
        let on_allowed_networks = !addresses.is_empty()
            && addresses
                .iter()
                .all(|ip| self.policy.in_allowed_network(*ip));
        if url.scheme() == "http" && !on_allowed_networks {
            return Err(
                "must be https (plain http only reaches the networks NOTIFY_WEBHOOK_ALLOWED_NETWORKS allows)"
                    .to_owned(),
            );
        }
        Ok(())
    }

    /// Posts the delivery `id` of `notification` to `endpoint`, signed with each of its
    /// secrets in use; answers the HTTP status of a 2xx answer.
    pub async fn send(
        &self,
        id: DeliveryId,
        notification: &Notification,
        endpoint: &WebhookEndpoint,
        secrets: &SealedSecrets,
    ) -> Result<i32, SendFailure> {
        if endpoint.disabled {
            return Err(permanent(
                "the webhook endpoint is disabled (RetryDelivery sends this once it is enabled)",
            ));
        }
        let url = endpoint::check_url(&endpoint.url)
            .map_err(|reason| permanent(format!("the endpoint's URL {reason}")))?;
        self.check_destination(&url)
            .await
            .map_err(|reason| permanent(format!("the endpoint's URL was refused: {reason}")))?;
        let keys = self.keys(endpoint, secrets)?;
        let body = endpoint::payload(notification);
        let webhook_id = id.to_string();
        let timestamp = Utc::now().timestamp();
        let signature = platform::webhooks::signature_header(&keys, &webhook_id, timestamp, &body);
        let response = self
            .client
            .post(url)
            .timeout(self.timeout)
            .header("content-type", "application/json")
            .header("webhook-id", webhook_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|error| self.request_failure(error))?;
        let status = response.status();
        let code = i32::from(status.as_u16());
        if status.is_success() {
            return Ok(code);
        }
        let retried = status.is_server_error() || matches!(status.as_u16(), 408 | 429);
        let mut error = format!("the endpoint answered {status}");
        if status.is_redirection() {
            error.push_str(" (redirects are not followed: save the URL it points to)");
        }
        let excerpt = excerpt(response).await;
        if !excerpt.is_empty() {
            error.push_str(": ");
            error.push_str(&excerpt);
        }
        Err(SendFailure {
            error,
            code,
            permanent: !retried,
        })
    }

    /// The key bytes that sign now: the current secret, and the previous one during its
    /// grace period.
    fn keys(
        &self,
        endpoint: &WebhookEndpoint,
        secrets: &SealedSecrets,
    ) -> Result<Vec<Vec<u8>>, SendFailure> {
        let tenant = endpoint.tenant_id;
        let current = self
            .open(tenant, endpoint.id, &secrets.current)
            .map_err(|error| {
                tracing::error!(endpoint = %endpoint.id, error = format!("{error:#}"), "opening a webhook secret failed");
                permanent("the endpoint's secret does not open with this deployment's NOTIFY_ENCRYPTION_KEYS")
            })?;
        let mut keys = vec![current];
        if let Some((sealed, until)) = &secrets.previous
            && *until > Utc::now()
        {
            match self.open(tenant, endpoint.id, sealed) {
                Ok(previous) => keys.push(previous),
                Err(error) => {
                    tracing::warn!(endpoint = %endpoint.id, error = format!("{error:#}"), "opening a rotated webhook secret failed; signing with the current one only");
                }
            }
        }
        Ok(keys)
    }

    /// Why a request got no answer; never its URL (its query may hold a token).
    fn request_failure(&self, error: reqwest::Error) -> SendFailure {
        if let Some(refused) = outbound::refusal(&error) {
            return permanent(format!("the endpoint's address was refused: {refused}"));
        }
        let retried = |error: String| SendFailure {
            error,
            code: 0,
            permanent: false,
        };
        if error.is_timeout() {
            return retried(format!(
                "the endpoint did not answer within {}s",
                self.timeout.as_secs()
            ));
        }
        let host = error
            .url()
            .and_then(|url| url.host_str())
            .unwrap_or("the endpoint")
            .to_owned();
        if error.is_connect() {
            return retried(format!("{host} could not be reached"));
        }
        retried(format!(
            "the request to {host} failed: {:#}",
            anyhow::Error::new(error.without_url())
        ))
    }
}

/// What a sealed secret is bound to: its endpoint.
fn seal_context(tenant: TenantId, id: WebhookEndpointId) -> String {
    format!("webhook-endpoint:{tenant}:{id}")
}

fn permanent(error: impl Into<String>) -> SendFailure {
    SendFailure {
        error: error.into(),
        code: 0,
        permanent: true,
    }
}

/// The start of an answer's body, on one line: never more is kept.
async fn excerpt(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < EXCERPT_CHARS * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&body)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(EXCERPT_CHARS)
        .collect()
}
