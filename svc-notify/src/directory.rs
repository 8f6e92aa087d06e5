//! Users' email addresses, read from svc-auth when an email to `users/{id}` is sent: GetMember
//! with svc-notify's service token for the tenant (AUTH_CLIENT_ID), so the address is the
//! member's current one and a user who left the tenant gets nothing.

use std::sync::Arc;

use platform::auth::ServiceTokens;
use platform::client::Balanced;
use platform::config::ServiceCredentialsConfig;
use platform::context::{TenantId, UserId};
use proto::formflow::auth::v1 as auth;
use proto::formflow::auth::v1::auth_service_client::AuthServiceClient;
use tonic::Code;

use crate::mailer::SendFailure;

/// Where users' email addresses come from.
#[derive(Debug, Clone)]
pub struct Directory {
    tokens: Arc<ServiceTokens>,
    client: AuthServiceClient<Balanced>,
}

impl Directory {
    /// The directory at svc-auth on `auth_url`, asked with `credentials`.
    pub fn new(auth_url: &str, credentials: &ServiceCredentialsConfig) -> anyhow::Result<Self> {
        Ok(Directory {
            tokens: Arc::new(ServiceTokens::new(auth_url, credentials)?),
            client: AuthServiceClient::new(platform::client::channel(auth_url, "AUTH_URL")?),
        })
    }

    /// The email address of `user` in `tenant`. A user who is not a member fails for good;
    /// svc-auth not answering fails the attempt, which is retried.
    pub async fn email_of(&self, tenant: TenantId, user: UserId) -> Result<String, SendFailure> {
        let unavailable = |error: String| SendFailure {
            error: format!("reading the user's email address from svc-auth failed: {error}"),
            code: 0,
            permanent: false,
        };
        let request = self
            .tokens
            .authorize(
                auth::GetMemberRequest {
                    name: format!("members/{user}"),
                },
                Some(tenant),
                None,
            )
            .await
            .map_err(|error| unavailable(format!("{error:#}")))?;
        match self.client.clone().get_member(request).await {
            Ok(member) => Ok(member.into_inner().email),
            Err(status) if status.code() == Code::NotFound => Err(SendFailure {
                error: format!("users/{user} is not a member of the tenant"),
                code: 0,
                permanent: true,
            }),
            Err(status) => Err(unavailable(format!(
                "{:?}: {}",
                status.code(),
                status.message()
            ))),
        }
    }
}
