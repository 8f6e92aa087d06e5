//! The `TenantService` gRPC API: thin handlers that validate the request into domain types,
//! call [`Tenants`], and convert the result back.

pub mod convert;

use platform::context::RequestContext;
use proto::formflow::tenant::v1 as wire;
use proto::formflow::tenant::v1::tenant_service_server::TenantService;
use tonic::{Request, Response, Status};

use crate::operations::Tenants;

/// The `TenantService` implementation.
#[derive(Debug, Clone)]
pub struct TenantApi {
    tenants: Tenants,
    base_domain: Option<String>,
}

impl TenantApi {
    /// An API over `tenants`, resolving hosts against `base_domain`.
    pub fn new(tenants: Tenants, base_domain: Option<String>) -> Self {
        Self {
            tenants,
            base_domain,
        }
    }
}

#[tonic::async_trait]
impl TenantService for TenantApi {
    async fn create_tenant(
        &self,
        request: Request<wire::CreateTenantRequest>,
    ) -> Result<Response<wire::Tenant>, Status> {
        let context = RequestContext::of(&request)?;
        let new_tenant =
            convert::new_tenant(request.get_ref().clone(), self.base_domain.as_deref())?;
        let tenant = self.tenants.create(context, new_tenant).await?;
        Ok(Response::new(convert::tenant_to_proto(&tenant)))
    }

    async fn get_tenant(
        &self,
        request: Request<wire::GetTenantRequest>,
    ) -> Result<Response<wire::Tenant>, Status> {
        let context = RequestContext::of(&request)?;
        let id = convert::name_only(&request.get_ref().name)?;
        let tenant = self.tenants.get(context, id).await?;
        Ok(Response::new(convert::tenant_to_proto(&tenant)))
    }

    async fn list_tenants(
        &self,
        request: Request<wire::ListTenantsRequest>,
    ) -> Result<Response<wire::ListTenantsResponse>, Status> {
        let context = RequestContext::of(&request)?;
        let (after, status, page_size) = convert::list_request(request.get_ref())?;
        let page = self.tenants.list(context, after, status, page_size).await?;
        let next_page_token = page
            .next_after
            .map(|after| convert::next_page_token(request.get_ref().status, after))
            .unwrap_or_default();
        Ok(Response::new(wire::ListTenantsResponse {
            tenants: page.tenants.iter().map(convert::tenant_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_tenant(
        &self,
        request: Request<wire::UpdateTenantRequest>,
    ) -> Result<Response<wire::Tenant>, Status> {
        let context = RequestContext::of(&request)?;
        let (id, changes) =
            convert::tenant_changes(request.get_ref().clone(), self.base_domain.as_deref())?;
        let tenant = self.tenants.update(context, id, changes).await?;
        Ok(Response::new(convert::tenant_to_proto(&tenant)))
    }

    async fn suspend_tenant(
        &self,
        request: Request<wire::SuspendTenantRequest>,
    ) -> Result<Response<wire::Tenant>, Status> {
        let context = RequestContext::of(&request)?;
        let (id, reason) = convert::suspend_request(request.get_ref())?;
        let tenant = self.tenants.suspend(context, id, reason).await?;
        Ok(Response::new(convert::tenant_to_proto(&tenant)))
    }

    async fn reactivate_tenant(
        &self,
        request: Request<wire::ReactivateTenantRequest>,
    ) -> Result<Response<wire::Tenant>, Status> {
        let context = RequestContext::of(&request)?;
        let id = convert::name_only(&request.get_ref().name)?;
        let tenant = self.tenants.reactivate(context, id).await?;
        Ok(Response::new(convert::tenant_to_proto(&tenant)))
    }

    async fn delete_tenant(
        &self,
        request: Request<wire::DeleteTenantRequest>,
    ) -> Result<Response<wire::Tenant>, Status> {
        let context = RequestContext::of(&request)?;
        let id = convert::name_only(&request.get_ref().name)?;
        let tenant = self.tenants.delete(context, id).await?;
        Ok(Response::new(convert::tenant_to_proto(&tenant)))
    }

    async fn resolve_tenant(
        &self,
        request: Request<wire::ResolveTenantRequest>,
    ) -> Result<Response<wire::ResolvedTenant>, Status> {
        let context = RequestContext::of(&request)?;
        let key = convert::resolve_key(request.get_ref().clone(), self.base_domain.as_deref())?;
        let resolved = self.tenants.resolve(context, key).await?;
        Ok(Response::new(resolved))
    }
}
