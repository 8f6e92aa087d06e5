//! The demo: a platform administrator and a demo tenant with its owner, created through the
//! real APIs (svc-auth's sign-up) on first start and found again on the next ones.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use platform::context::TenantId;
use proto::formflow::auth::v1 as auth_wire;
use proto::formflow::auth::v1::auth_service_client::AuthServiceClient;
use proto::formflow::tenant::v1::ResolveTenantRequest;
use proto::formflow::tenant::v1::resolve_tenant_request::Key;
use proto::formflow::tenant::v1::tenant_service_client::TenantServiceClient;
use secrecy::SecretString;
use tonic::Request;

use crate::dev_keys::{random_password, state_secret};

const DEMO_SLUG: &str = "demo";
/// Login of the demo tenant's owner.
pub const OWNER_EMAIL: &str = "owner@demo.formflow.test";
/// Login of the platform administrator.
pub const ADMIN_EMAIL: &str = "admin@formflow.test";

/// What the banner tells about the demo.
#[derive(Debug)]
pub struct Demo {
    /// Tenant id.
    pub tenant_id: TenantId,
    /// Tenant slug.
    pub slug: String,
    /// Tenant name.
    pub display_name: String,
    /// The owner's password (also in the state directory).
    pub owner_password: String,
    /// The platform administrator's password (also in the state directory).
    pub admin_password: String,
}

fn with_metadata<T>(message: T, pairs: &[(&'static str, String)]) -> anyhow::Result<Request<T>> {
    let mut request = Request::new(message);
    for (key, value) in pairs {
        request.metadata_mut().insert(*key, value.parse()?);
    }
    Ok(request)
}

/// Makes sure the platform administrator and the demo tenant exist.
pub async fn ensure_demo(
    auth_config: &svc_auth::Config,
    auth_addr: SocketAddr,
    tenant_addr: SocketAddr,
    state_dir: &Path,
) -> anyhow::Result<Demo> {
    let admin_password = state_secret(state_dir, "admin-password", random_password)?;
    let owner_password = state_secret(state_dir, "demo-owner-password", random_password)?;
    svc_auth::app::create_platform_admin(
        auth_config,
        ADMIN_EMAIL,
        "Platform administrator",
        &SecretString::from(admin_password.clone()),
    )
    .await
    .context("creating the platform administrator")?;

    let mut auth = AuthServiceClient::connect(format!("http://{auth_addr}")).await?;
    let admin_login = auth
        .login(auth_wire::LoginRequest {
            email: ADMIN_EMAIL.to_owned(),
            password: admin_password.clone(),
        })
        .await
        .context("logging in as the platform administrator")?
        .into_inner();
    let admin_token = admin_login
        .tokens
        .context("the administrator has no second factor")?
        .access_token;

    let mut tenants = TenantServiceClient::connect(format!("http://{tenant_addr}")).await?;
    let existing = tenants
        .resolve_tenant(with_metadata(
            ResolveTenantRequest {
                key: Some(Key::Slug(DEMO_SLUG.to_owned())),
            },
            &[("authorization", format!("Bearer {admin_token}"))],
        )?)
        .await;
    let (id, slug, display_name) = match existing {
        Ok(resolved) => {
            let resolved = resolved.into_inner();
            (resolved.id, resolved.slug, resolved.display_name)
        }
        Err(status) if status.code() == tonic::Code::NotFound => {
            let signed_up = auth
                .sign_up(auth_wire::SignUpRequest {
                    tenant_slug: DEMO_SLUG.to_owned(),
                    tenant_display_name: "Demo Company".to_owned(),
                    email: OWNER_EMAIL.to_owned(),
                    password: owner_password.clone(),
                    display_name: "Demo Owner".to_owned(),
                })
                .await
                .context("signing up the demo tenant")?
                .into_inner();
            let tenant = signed_up.tenant.context("sign-up answered no tenant")?;
            (tenant.id, tenant.slug, tenant.display_name)
        }
        Err(status) => return Err(status).context("looking up the demo tenant"),
    };
    Ok(Demo {
        tenant_id: TenantId::parse(&id)?,
        slug,
        display_name,
        owner_password,
        admin_password,
    })
}
