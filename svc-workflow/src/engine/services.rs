//! The suite services action nodes call: svc-ai (`action.ai_classify`) and svc-notify
//! (`action.notify`, `action.email`), with svc-workflow's service token for the execution's
//! tenant and the node attempt's idempotency key, so that a retried attempt acts once.

use std::sync::Arc;

use platform::auth::ServiceTokens;
use platform::client::Balanced;
use platform::config::ServiceCredentialsConfig;
use platform::context::TenantId;
use proto::formflow::ai::v1 as ai;
use proto::formflow::ai::v1::ai_service_client::AiServiceClient;
use proto::formflow::notify::v1 as notify;
use proto::formflow::notify::v1::notify_service_client::NotifyServiceClient;

/// Where the suite services are, and the tokens to call them with.
#[derive(Debug, Clone)]
pub struct SuiteServices {
    tokens: Arc<ServiceTokens>,
    ai: Option<AiServiceClient<Balanced>>,
    notify: Option<NotifyServiceClient<Balanced>>,
}

/// Why a call was not made or failed.
#[derive(Debug)]
pub enum CallError {
    /// The deployment does not reach the service.
    NotConfigured,
    /// No service token could be had from svc-auth.
    Token(anyhow::Error),
    /// The service refused or failed the call.
    Status(tonic::Status),
}

impl SuiteServices {
    /// svc-ai at `ai_url` and svc-notify at `notify_url` (either may be absent), called with
    /// tokens svc-auth at `auth_url` issues to `credentials`.
    pub fn new(
        ai_url: Option<&str>,
        notify_url: Option<&str>,
        auth_url: &str,
        credentials: &ServiceCredentialsConfig,
    ) -> anyhow::Result<Self> {
        Ok(SuiteServices {
            tokens: Arc::new(ServiceTokens::new(auth_url, credentials)?),
            ai: ai_url
                .map(|url| platform::client::channel(url, "WORKFLOW_AI_URL"))
                .transpose()?
                .map(AiServiceClient::new),
            notify: notify_url
                .map(|url| platform::client::channel(url, "WORKFLOW_NOTIFY_URL"))
                .transpose()?
                .map(NotifyServiceClient::new),
        })
    }

    /// `message` with a service token for `tenant` and idempotency key `key`.
    async fn request<T>(
        &self,
        message: T,
        tenant: TenantId,
        key: &str,
    ) -> Result<tonic::Request<T>, CallError> {
        let mut request = self
            .tokens
            .authorize(message, Some(tenant), None)
            .await
            .map_err(CallError::Token)?;
        let key = key.parse().map_err(|_| {
            CallError::Token(anyhow::anyhow!("the idempotency key is not a header value"))
        })?;
        request.metadata_mut().insert("idempotency-key", key);
        Ok(request)
    }

    /// Classifies `text` from `source` against `label_set` for `tenant`, under `key`.
    pub async fn classify(
        &self,
        tenant: TenantId,
        text: String,
        label_set: String,
        source: String,
        key: &str,
    ) -> Result<ai::Classification, CallError> {
        let mut client = self.ai.clone().ok_or(CallError::NotConfigured)?;
        let request = ai::ClassifyRequest {
            texts: vec![text],
            label_set,
            source,
            ..ai::ClassifyRequest::default()
        };
        let mut answer = client
            .classify(self.request(request, tenant, key).await?)
            .await
            .map_err(CallError::Status)?
            .into_inner();
        answer.classifications.pop().ok_or_else(|| {
            CallError::Status(tonic::Status::internal("svc-ai answered no classification"))
        })
    }

    /// Sends `notification` for `tenant`, once under `key` (also its transaction id).
    pub async fn send(
        &self,
        tenant: TenantId,
        mut notification: notify::SendNotificationRequest,
        key: &str,
    ) -> Result<notify::SendNotificationResponse, CallError> {
        let mut client = self.notify.clone().ok_or(CallError::NotConfigured)?;
        notification.transaction_id = key.to_owned();
        Ok(client
            .send_notification(self.request(notification, tenant, key).await?)
            .await
            .map_err(CallError::Status)?
            .into_inner())
    }
}
