use proto::formflow::tenant::v1::resolve_tenant_request::Key;
use proto::formflow::tenant::v1::{
    DeleteTenantRequest, Plan, RateLimits, ResolveTenantRequest, ResolvedTenant,
    SuspendTenantRequest, Tenant, TenantStatus,
};
use tonic::{Code, Status};

use crate::helpers::{TestApp, reason};

async fn resolve(app: &TestApp, key: Key) -> Result<ResolvedTenant, Status> {
    app.platform_service()
        .resolve_tenant(ResolveTenantRequest { key: Some(key) })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn tenants_resolve_by_id_slug_subdomain_and_custom_domain() {
    let app = TestApp::spawn().await;
    let tenant = app
        .create_tenant_with(Tenant {
            slug: "acme".into(),
            display_name: "Acme".into(),
            domains: vec!["forms.acme.com".into()],
            plan: Plan::Team as i32,
            rate_limits: Some(RateLimits {
                requests_per_minute: 100,
                burst: 0,
            }),
            ..Tenant::default()
        })
        .await;
    app.create_tenant("globex").await;

    for key in [
        Key::Id(tenant.id.clone()),
        Key::Slug("acme".into()),
        Key::Host("acme.forms.test".into()),
        Key::Host("ACME.forms.test:8443".into()),
        Key::Host("forms.acme.com".into()),
        Key::Host("Forms.Acme.Com.".into()),
    ] {
        let resolved = resolve(&app, key.clone()).await.unwrap();
        assert_eq!(resolved.id, tenant.id, "{key:?}");
        assert_eq!(resolved.slug, "acme");
        assert_eq!(resolved.status(), TenantStatus::Active);
        // The plan's burst fills in the unset one.
        assert_eq!(
            resolved.rate_limits,
            Some(RateLimits {
                requests_per_minute: 100,
                burst: 300
            })
        );
    }
}

#[tokio::test]
async fn unknown_tenants_and_hosts_are_not_found() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    for key in [
        Key::Id(uuid::Uuid::now_v7().to_string()),
        Key::Slug("nobody".into()),
        Key::Host("nobody.forms.test".into()),
        Key::Host("forms.test".into()),
        Key::Host("www.forms.test".into()),
        Key::Host("deep.acme.forms.test".into()),
        Key::Host("unknown.example.org".into()),
        Key::Host("10.1.2.3:8080".into()),
    ] {
        let status = resolve(&app, key.clone()).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{key:?}");
        assert_eq!(reason(&status), "TENANT_NOT_FOUND", "{key:?}");
    }
}

#[tokio::test]
async fn suspended_tenants_resolve_with_their_status_and_deleted_ones_do_not() {
    let app = TestApp::spawn().await;
    let suspended = app.create_tenant("sleepy").await;
    let deleted = app.create_tenant("gone").await;
    app.platform_admin()
        .suspend_tenant(SuspendTenantRequest {
            name: suspended.name.clone(),
            reason: "unpaid".into(),
        })
        .await
        .unwrap();
    app.platform_admin()
        .delete_tenant(DeleteTenantRequest {
            name: deleted.name.clone(),
        })
        .await
        .unwrap();

    let resolved = resolve(&app, Key::Slug("sleepy".into())).await.unwrap();
    assert_eq!(resolved.status(), TenantStatus::Suspended);
    for key in [Key::Slug("gone".into()), Key::Id(deleted.id.clone())] {
        assert_eq!(resolve(&app, key).await.unwrap_err().code(), Code::NotFound);
    }
}
