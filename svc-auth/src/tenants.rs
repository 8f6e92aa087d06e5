//! svc-auth's calls to svc-tenant, made as the service `svc-auth` with tokens it signs itself.

use std::sync::Arc;

use platform::client::Balanced;
use platform::context::TenantId;
use proto::formflow::tenant::v1 as wire;
use proto::formflow::tenant::v1::resolve_tenant_request::Key;
use proto::formflow::tenant::v1::tenant_service_client::TenantServiceClient;

use crate::error::Error;

/// Signs the service tokens of svc-auth's own calls.
pub type TokenMinter = Arc<dyn Fn() -> anyhow::Result<String> + Send + Sync>;

/// A client of svc-tenant.
#[derive(Clone)]
pub struct TenantClient {
    client: TenantServiceClient<Balanced>,
    mint: TokenMinter,
}

impl std::fmt::Debug for TenantClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TenantClient")
            .finish_non_exhaustive()
    }
}

impl TenantClient {
    /// A client of svc-tenant at `url` (connected lazily).
    pub fn new(url: &str, mint: TokenMinter) -> anyhow::Result<Self> {
        Ok(Self {
            client: TenantServiceClient::new(platform::client::channel(url, "AUTH_TENANT_URL")?),
            mint,
        })
    }

    fn request<T>(&self, message: T, request_id: &str) -> Result<tonic::Request<T>, Error> {
        let token = (self.mint)()?;
        Ok(platform::client::authorized(
            message,
            &token,
            Some(request_id),
        )?)
    }

    /// Creates a tenant. Its errors (slug taken, invalid fields) reach the caller as they are,
    /// with field names prefixed by `tenant_` as in SignUp.
    pub async fn create(
        &self,
        slug: &str,
        display_name: &str,
        request_id: &str,
    ) -> Result<wire::Tenant, Error> {
        let request = self.request(
            wire::CreateTenantRequest {
                tenant: Some(wire::Tenant {
                    slug: slug.to_owned(),
                    display_name: display_name.to_owned(),
                    ..wire::Tenant::default()
                }),
            },
            request_id,
        )?;
        self.client
            .clone()
            .create_tenant(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(upstream)
    }

    /// Deletes a tenant (undoing a sign-up that failed half-way).
    pub async fn delete(&self, id: TenantId, request_id: &str) -> Result<(), Error> {
        let request = self.request(
            wire::DeleteTenantRequest {
                name: platform::wire::resource_name("tenants", id),
            },
            request_id,
        )?;
        self.client
            .clone()
            .delete_tenant(request)
            .await
            .map_err(upstream)?;
        Ok(())
    }

    /// The tenant with `id`, as ResolveTenant sees it (not deleted).
    pub async fn resolve(
        &self,
        id: TenantId,
        request_id: &str,
    ) -> Result<wire::ResolvedTenant, Error> {
        let request = self.request(
            wire::ResolveTenantRequest {
                key: Some(Key::Id(id.to_string())),
            },
            request_id,
        )?;
        self.client
            .clone()
            .resolve_tenant(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(upstream)
    }
}

/// Errors svc-tenant answers about the request pass through; its outages and bugs do not.
fn upstream(status: tonic::Status) -> Error {
    use tonic::Code;
    match status.code() {
        Code::InvalidArgument | Code::AlreadyExists | Code::NotFound | Code::FailedPrecondition => {
            Error::TenantRefused(status)
        }
        _ => anyhow::anyhow!("svc-tenant failed: {status:?}").into(),
    }
}
