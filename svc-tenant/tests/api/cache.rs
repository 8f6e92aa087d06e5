//! Resolution goes through Redis, and every change invalidates what it cached.

use proto::formflow::tenant::v1::resolve_tenant_request::Key;
use proto::formflow::tenant::v1::{
    ResolveTenantRequest, ResolvedTenant, SuspendTenantRequest, Tenant, TenantStatus,
    UpdateTenantRequest,
};
use redis::AsyncCommands;
use tonic::{Code, Status};

use crate::helpers::{TestApp, id_of};

async fn resolve(app: &TestApp, key: Key) -> Result<ResolvedTenant, Status> {
    app.platform_service()
        .resolve_tenant(ResolveTenantRequest { key: Some(key) })
        .await
        .map(tonic::Response::into_inner)
}

async fn update(app: &TestApp, tenant: &Tenant, changes: Tenant, paths: &[&str]) {
    app.platform_admin()
        .update_tenant(UpdateTenantRequest {
            tenant: Some(Tenant {
                name: tenant.name.clone(),
                ..changes
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: paths.iter().map(|path| (*path).to_owned()).collect(),
            }),
        })
        .await
        .unwrap();
}

async fn redis(app: &TestApp) -> redis::aio::MultiplexedConnection {
    use secrecy::ExposeSecret;
    redis::Client::open(app.infra.redis.url().unwrap().expose_secret())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn resolutions_are_served_from_redis_until_a_change_invalidates_them() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let first = resolve(&app, Key::Slug("acme".into())).await.unwrap();
    assert_eq!(first.display_name, "acme Inc.");

    let key = format!("{}tenant:v1:slug:acme", app.infra.redis.redis_key_prefix);
    let cached: Option<String> = redis(&app).await.get(&key).await.unwrap();
    assert!(cached.is_some(), "the resolution is cached under {key}");

    // A change behind the service's back is not seen: the answer comes from the cache.
    let mut connection = app.infra.admin_connection().await;
    sqlx::query("SELECT set_config('app.platform', 'on', false)")
        .execute(&mut connection)
        .await
        .unwrap();
    sqlx::query("UPDATE tenant.tenants SET display_name = 'Behind the back' WHERE id = $1")
        .bind(id_of(&tenant).as_uuid())
        .execute(&mut connection)
        .await
        .unwrap();
    assert_eq!(
        resolve(&app, Key::Slug("acme".into()))
            .await
            .unwrap()
            .display_name,
        "acme Inc."
    );

    // A change through the service invalidates at once.
    update(
        &app,
        &tenant,
        Tenant {
            display_name: "Acme Renamed".into(),
            ..Tenant::default()
        },
        &["display_name"],
    )
    .await;
    assert_eq!(
        resolve(&app, Key::Slug("acme".into()))
            .await
            .unwrap()
            .display_name,
        "Acme Renamed"
    );
    app.platform_admin()
        .suspend_tenant(SuspendTenantRequest {
            name: tenant.name.clone(),
            reason: "test".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        resolve(&app, Key::Id(tenant.id.clone()))
            .await
            .unwrap()
            .status(),
        TenantStatus::Suspended
    );
}

#[tokio::test]
async fn a_domain_given_up_stops_resolving_at_once() {
    let app = TestApp::spawn().await;
    let tenant = app
        .create_tenant_with(Tenant {
            slug: "acme".into(),
            display_name: "Acme".into(),
            domains: vec!["forms.acme.com".into()],
            ..Tenant::default()
        })
        .await;
    let by_host = resolve(&app, Key::Host("forms.acme.com".into()))
        .await
        .unwrap();
    assert_eq!(by_host.id, tenant.id);

    update(&app, &tenant, Tenant::default(), &["domains"]).await;
    let status = resolve(&app, Key::Host("forms.acme.com".into()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // Another tenant takes the domain over and resolves by it.
    let globex = app
        .create_tenant_with(Tenant {
            slug: "globex".into(),
            display_name: "Globex".into(),
            domains: vec!["forms.acme.com".into()],
            ..Tenant::default()
        })
        .await;
    let by_host = resolve(&app, Key::Host("forms.acme.com".into()))
        .await
        .unwrap();
    assert_eq!(by_host.id, globex.id);
}

#[tokio::test]
async fn resolution_keeps_working_while_redis_is_unreachable() {
    let infra = platform::testing::TestInfra::new().await;
    let app = TestApp::spawn_with(infra, |config| {
        config.infra.redis =
            platform::config::RedisConfig::for_url("redis://127.0.0.1:1", "unused:");
    })
    .await;
    let tenant = app.create_tenant("acme").await;
    let resolved = resolve(&app, Key::Slug("acme".into())).await.unwrap();
    assert_eq!(resolved.id, tenant.id);
}
