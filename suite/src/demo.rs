//! The demo tenant: created through svc-tenant's real API, as a platform administrator.

use std::net::SocketAddr;

use anyhow::Context;
use platform::context::{TenantId, UserId};
use proto::formflow::tenant::v1::resolve_tenant_request::Key;
use proto::formflow::tenant::v1::tenant_service_client::TenantServiceClient;
use proto::formflow::tenant::v1::{CreateTenantRequest, Plan, ResolveTenantRequest, Tenant};
use tonic::Request;

use crate::TokenArgs;
use crate::dev_keys::DevKeys;

const DEMO_SLUG: &str = "demo";

/// The demo tenant and user.
#[derive(Debug)]
pub struct Demo {
    /// Tenant id.
    pub tenant_id: TenantId,
    /// Tenant slug.
    pub slug: String,
    /// Tenant name.
    pub display_name: String,
    /// The demo user (owner).
    pub user_id: UserId,
}

/// Finds the demo tenant, creating it on first start.
pub async fn ensure_demo_tenant(tenant_addr: SocketAddr, keys: &DevKeys) -> anyhow::Result<Demo> {
    let token = keys.token(&TokenArgs {
        state_dir: Default::default(),
        platform_admin: true,
        tenant: None,
        role: None,
        user: None,
        service: None,
        ttl: std::time::Duration::from_secs(60),
    })?;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{tenant_addr}"))?
        .connect()
        .await?;
    let authorization: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse()?;
    let mut client =
        TenantServiceClient::with_interceptor(channel, move |mut request: Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
            Ok(request)
        });
    let existing = client
        .resolve_tenant(ResolveTenantRequest {
            key: Some(Key::Slug(DEMO_SLUG.to_owned())),
        })
        .await;
    let (id, slug, display_name) = match existing {
        Ok(resolved) => {
            let resolved = resolved.into_inner();
            (resolved.id, resolved.slug, resolved.display_name)
        }
        Err(status) if status.code() == tonic::Code::NotFound => {
            let created = client
                .create_tenant(CreateTenantRequest {
                    tenant: Some(Tenant {
                        slug: DEMO_SLUG.to_owned(),
                        display_name: "Demo Company".to_owned(),
                        plan: Plan::Team as i32,
                        ..Tenant::default()
                    }),
                })
                .await?
                .into_inner();
            (created.id, created.slug, created.display_name)
        }
        Err(status) => return Err(status).context("looking up the demo tenant"),
    };
    Ok(Demo {
        tenant_id: TenantId::parse(&id)?,
        slug,
        display_name,
        user_id: keys.demo_user()?,
    })
}
