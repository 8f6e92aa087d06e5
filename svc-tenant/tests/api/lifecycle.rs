use platform::context::Role;
use proto::formflow::tenant::v1::{
    CreateTenantRequest, DeleteTenantRequest, GetTenantRequest, Plan, RateLimits,
    ReactivateTenantRequest, SuspendTenantRequest, Tenant, TenantStatus, UpdateTenantRequest,
};
use sqlx::Row;
use tonic::Code;

use crate::helpers::{TestApp, id_of, reason};

fn mask(paths: &[&str]) -> Option<pbjson_types::FieldMask> {
    Some(pbjson_types::FieldMask {
        paths: paths.iter().map(|path| (*path).to_owned()).collect(),
    })
}

#[tokio::test]
async fn a_created_tenant_can_be_read_back() {
    let app = TestApp::spawn().await;
    let settings: pbjson_types::Struct =
        serde_json::from_value(serde_json::json!({"theme": "dark", "locale": "fr"})).unwrap();
    let created = app
        .create_tenant_with(Tenant {
            slug: "acme".into(),
            display_name: "  Acme Corp  ".into(),
            domains: vec!["Forms.Acme.com".into()],
            plan: Plan::Team as i32,
            settings: Some(settings.clone()),
            rate_limits: Some(RateLimits {
                requests_per_minute: 1200,
                burst: 0,
            }),
            // Output-only fields are ignored.
            status: TenantStatus::Suspended as i32,
            id: "chosen-by-client".into(),
            ..Tenant::default()
        })
        .await;

    assert_eq!(created.name, format!("tenants/{}", created.id));
    assert!(uuid::Uuid::parse_str(&created.id).is_ok());
    assert_eq!(created.slug, "acme");
    assert_eq!(created.display_name, "Acme Corp");
    assert_eq!(created.domains, ["forms.acme.com"]);
    assert_eq!(created.status(), TenantStatus::Active);
    assert_eq!(created.plan(), Plan::Team);
    assert_eq!(created.settings, Some(settings));
    assert_eq!(created.etag, "1");

    let read = app
        .user(id_of(&created), Role::Viewer)
        .get_tenant(GetTenantRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, created);
}

#[tokio::test]
async fn slugs_and_domains_are_unique_across_tenants() {
    let app = TestApp::spawn().await;
    app.create_tenant_with(Tenant {
        slug: "acme".into(),
        display_name: "Acme".into(),
        domains: vec!["forms.acme.com".into()],
        ..Tenant::default()
    })
    .await;

    let same_slug = app
        .platform_admin()
        .create_tenant(CreateTenantRequest {
            tenant: Some(Tenant {
                slug: "acme".into(),
                display_name: "Other".into(),
                ..Tenant::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(same_slug.code(), Code::AlreadyExists);
    assert_eq!(reason(&same_slug), "SLUG_TAKEN");

    let same_domain = app
        .platform_admin()
        .create_tenant(CreateTenantRequest {
            tenant: Some(Tenant {
                slug: "globex".into(),
                display_name: "Globex".into(),
                domains: vec!["FORMS.ACME.COM".into()],
                ..Tenant::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(same_domain.code(), Code::AlreadyExists);
    assert_eq!(reason(&same_domain), "DOMAIN_TAKEN");

    // Nothing of the refused tenant was kept: its slug is still free.
    app.create_tenant("globex").await;
}

#[tokio::test]
async fn admins_update_their_tenant_with_optimistic_concurrency() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let admin = app.user(id_of(&tenant), Role::Admin);

    let updated = admin
        .clone()
        .update_tenant(UpdateTenantRequest {
            tenant: Some(Tenant {
                name: tenant.name.clone(),
                display_name: "Acme Renamed".into(),
                domains: vec!["b.acme.com".into(), "a.acme.com".into()],
                etag: tenant.etag.clone(),
                ..Tenant::default()
            }),
            update_mask: mask(&["display_name", "domains"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.display_name, "Acme Renamed");
    assert_eq!(updated.domains, ["a.acme.com", "b.acme.com"]);
    assert_eq!(updated.etag, "2");
    let seconds_and_nanos = |time: &Option<pbjson_types::Timestamp>| {
        let time = time.unwrap();
        (time.seconds, time.nanos)
    };
    assert!(seconds_and_nanos(&updated.update_time) > seconds_and_nanos(&tenant.update_time));

    // The etag read before the first update is stale now.
    let stale = admin
        .clone()
        .update_tenant(UpdateTenantRequest {
            tenant: Some(Tenant {
                name: tenant.name.clone(),
                display_name: "Lost update".into(),
                etag: tenant.etag.clone(),
                ..Tenant::default()
            }),
            update_mask: mask(&["display_name"]),
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    // Fields outside the mask are left alone; a domain can be given up.
    let narrowed = admin
        .clone()
        .update_tenant(UpdateTenantRequest {
            tenant: Some(Tenant {
                name: tenant.name.clone(),
                display_name: "Ignored".into(),
                domains: vec!["a.acme.com".into()],
                ..Tenant::default()
            }),
            update_mask: mask(&["domains"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(narrowed.display_name, "Acme Renamed");
    assert_eq!(narrowed.domains, ["a.acme.com"]);

    // b.acme.com is free again for another tenant.
    app.create_tenant_with(Tenant {
        slug: "globex".into(),
        display_name: "Globex".into(),
        domains: vec!["b.acme.com".into()],
        ..Tenant::default()
    })
    .await;
}

#[tokio::test]
async fn suspension_reactivation_and_deletion_follow_the_lifecycle() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let admin = app.platform_admin();

    let suspended = admin
        .clone()
        .suspend_tenant(SuspendTenantRequest {
            name: tenant.name.clone(),
            reason: "unpaid invoices".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(suspended.status(), TenantStatus::Suspended);
    assert_eq!(suspended.suspension_reason, "unpaid invoices");

    let twice = admin
        .clone()
        .suspend_tenant(SuspendTenantRequest {
            name: tenant.name.clone(),
            reason: "again".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);

    // A suspended tenant's own admins can no longer change it.
    let frozen = app
        .user(id_of(&tenant), Role::Owner)
        .update_tenant(UpdateTenantRequest {
            tenant: Some(Tenant {
                name: tenant.name.clone(),
                display_name: "Sneaky".into(),
                ..Tenant::default()
            }),
            update_mask: mask(&["display_name"]),
        })
        .await
        .unwrap_err();
    assert_eq!(frozen.code(), Code::FailedPrecondition);

    let reactivated = admin
        .clone()
        .reactivate_tenant(ReactivateTenantRequest {
            name: tenant.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reactivated.status(), TenantStatus::Active);
    assert_eq!(reactivated.suspension_reason, "");
    let not_suspended = admin
        .clone()
        .reactivate_tenant(ReactivateTenantRequest {
            name: tenant.name.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(not_suspended.code(), Code::FailedPrecondition);

    let deleted = admin
        .clone()
        .delete_tenant(DeleteTenantRequest {
            name: tenant.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.status(), TenantStatus::Deleted);

    // Members no longer find it; platform administrators still do; it cannot change again.
    let gone = app
        .user(id_of(&tenant), Role::Owner)
        .get_tenant(GetTenantRequest {
            name: tenant.name.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    assert_eq!(reason(&gone), "TENANT_NOT_FOUND");
    let archived = admin
        .clone()
        .get_tenant(GetTenantRequest {
            name: tenant.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(archived.status(), TenantStatus::Deleted);
    let undead = admin
        .clone()
        .reactivate_tenant(ReactivateTenantRequest {
            name: tenant.name.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(undead.code(), Code::NotFound);
    // Its slug stays taken.
    let reuse = admin
        .clone()
        .create_tenant(CreateTenantRequest {
            tenant: Some(Tenant {
                slug: "acme".into(),
                display_name: "New Acme".into(),
                ..Tenant::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(reuse.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn every_change_leaves_an_audit_row() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let admin = app.platform_admin();
    admin
        .clone()
        .update_tenant(UpdateTenantRequest {
            tenant: Some(Tenant {
                name: tenant.name.clone(),
                plan: Plan::Enterprise as i32,
                ..Tenant::default()
            }),
            update_mask: mask(&["plan"]),
        })
        .await
        .unwrap();
    admin
        .clone()
        .suspend_tenant(SuspendTenantRequest {
            name: tenant.name.clone(),
            reason: "abuse".into(),
        })
        .await
        .unwrap();
    admin
        .clone()
        .reactivate_tenant(ReactivateTenantRequest {
            name: tenant.name.clone(),
        })
        .await
        .unwrap();
    admin
        .clone()
        .delete_tenant(DeleteTenantRequest {
            name: tenant.name.clone(),
        })
        .await
        .unwrap();

    let mut connection = app.infra.admin_connection().await;
    let rows = sqlx::query(
        "SELECT action, actor, details, request_id FROM tenant.audit_log WHERE tenant_id = $1 ORDER BY id",
    )
    .bind(id_of(&tenant).as_uuid())
    .fetch_all(&mut connection)
    .await
    .unwrap();
    let actions: Vec<String> = rows.iter().map(|row| row.get("action")).collect();
    assert_eq!(
        actions,
        ["create", "update", "suspend", "reactivate", "delete"]
    );
    for row in &rows {
        assert!(row.get::<String, _>("actor").starts_with("platform-admin:"));
        assert!(!row.get::<String, _>("request_id").is_empty());
    }
    let plan_change: serde_json::Value = rows[1].get("details");
    assert_eq!(plan_change, serde_json::json!({"plan": "enterprise"}));
}
