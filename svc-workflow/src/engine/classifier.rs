//! `action.ai_classify`'s way to svc-ai: Classify against one of the tenant's label sets, with
//! svc-workflow's service token for the execution's tenant and the node attempt's idempotency
//! key, so that a retried attempt is classified, stored and announced once.

use std::sync::Arc;

use platform::auth::ServiceTokens;
use platform::config::ServiceCredentialsConfig;
use platform::context::TenantId;
use proto::formflow::ai::v1 as ai;
use proto::formflow::ai::v1::ai_service_client::AiServiceClient;
use tonic::transport::Channel;

/// svc-ai, reached with service tokens from svc-auth.
#[derive(Debug, Clone)]
pub struct Classifier {
    tokens: Arc<ServiceTokens>,
    client: AiServiceClient<Channel>,
}

/// Why a classification was not made.
#[derive(Debug)]
pub enum ClassifyError {
    /// No service token could be had from svc-auth.
    Token(anyhow::Error),
    /// svc-ai refused or failed the call.
    Status(tonic::Status),
}

impl Classifier {
    /// svc-ai at `ai_url`, called with tokens svc-auth at `auth_url` issues to `credentials`.
    pub fn new(
        ai_url: &str,
        auth_url: &str,
        credentials: &ServiceCredentialsConfig,
    ) -> anyhow::Result<Self> {
        Ok(Classifier {
            tokens: Arc::new(ServiceTokens::new(auth_url, credentials)?),
            client: AiServiceClient::new(platform::client::channel(ai_url, "WORKFLOW_AI_URL")?),
        })
    }

    /// Classifies `text` from `source` against `label_set` for `tenant`, under `key`.
    pub async fn classify(
        &self,
        tenant: TenantId,
        text: String,
        label_set: String,
        source: String,
        key: &str,
    ) -> Result<ai::Classification, ClassifyError> {
        let mut request = self
            .tokens
            .authorize(
                ai::ClassifyRequest {
                    texts: vec![text],
                    label_set,
                    source,
                    ..ai::ClassifyRequest::default()
                },
                Some(tenant),
                None,
            )
            .await
            .map_err(ClassifyError::Token)?;
        let key = key.parse().map_err(|_| {
            ClassifyError::Token(anyhow::anyhow!("the idempotency key is not ASCII"))
        })?;
        request.metadata_mut().insert("idempotency-key", key);
        let mut answer = self
            .client
            .clone()
            .classify(request)
            .await
            .map_err(ClassifyError::Status)?
            .into_inner();
        answer.classifications.pop().ok_or_else(|| {
            ClassifyError::Status(tonic::Status::internal("svc-ai answered no classification"))
        })
    }
}
