//! Who may call what, including every cross-tenant attempt.

use platform::auth::Claims;
use platform::context::{Role, TenantId};
use proto::formflow::tenant::v1::resolve_tenant_request::Key;
use proto::formflow::tenant::v1::{
    CreateTenantRequest, DeleteTenantRequest, GetTenantRequest, ListTenantsRequest, Plan,
    ReactivateTenantRequest, ResolveTenantRequest, SuspendTenantRequest, Tenant,
    UpdateTenantRequest,
};
use tonic::Code;

use crate::helpers::{Client, TestApp, id_of};

fn rename(tenant: &Tenant, display_name: &str) -> UpdateTenantRequest {
    UpdateTenantRequest {
        tenant: Some(Tenant {
            name: tenant.name.clone(),
            display_name: display_name.into(),
            ..Tenant::default()
        }),
        update_mask: Some(pbjson_types::FieldMask {
            paths: vec!["display_name".into()],
        }),
    }
}

/// Calls every RPC against `target` and returns the codes, in RPC order.
async fn codes_of_every_rpc(client: &Client, target: &Tenant) -> Vec<(&'static str, Code)> {
    let code = |result: Result<tonic::Response<_>, tonic::Status>| match result {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    };
    let mut codes = vec![
        (
            "create",
            code(
                client
                    .clone()
                    .create_tenant(CreateTenantRequest {
                        tenant: Some(Tenant {
                            slug: format!(
                                "new-{}",
                                &uuid::Uuid::new_v4().simple().to_string()[..8]
                            ),
                            display_name: "New".into(),
                            ..Tenant::default()
                        }),
                    })
                    .await
                    .map(|_| tonic::Response::new(())),
            ),
        ),
        (
            "get",
            code(
                client
                    .clone()
                    .get_tenant(GetTenantRequest {
                        name: target.name.clone(),
                    })
                    .await
                    .map(|_| tonic::Response::new(())),
            ),
        ),
        (
            "list",
            code(
                client
                    .clone()
                    .list_tenants(ListTenantsRequest::default())
                    .await
                    .map(|_| tonic::Response::new(())),
            ),
        ),
        (
            "update",
            code(
                client
                    .clone()
                    .update_tenant(rename(target, "Renamed"))
                    .await
                    .map(|_| tonic::Response::new(())),
            ),
        ),
        (
            "resolve",
            code(
                client
                    .clone()
                    .resolve_tenant(ResolveTenantRequest {
                        key: Some(Key::Slug(target.slug.clone())),
                    })
                    .await
                    .map(|_| tonic::Response::new(())),
            ),
        ),
    ];
    codes.push((
        "suspend",
        code(
            client
                .clone()
                .suspend_tenant(SuspendTenantRequest {
                    name: target.name.clone(),
                    reason: "test".into(),
                })
                .await
                .map(|_| tonic::Response::new(())),
        ),
    ));
    codes.push((
        "reactivate",
        code(
            client
                .clone()
                .reactivate_tenant(ReactivateTenantRequest {
                    name: target.name.clone(),
                })
                .await
                .map(|_| tonic::Response::new(())),
        ),
    ));
    codes.push((
        "delete",
        code(
            client
                .clone()
                .delete_tenant(DeleteTenantRequest {
                    name: target.name.clone(),
                })
                .await
                .map(|_| tonic::Response::new(())),
        ),
    ));
    codes
}

#[tokio::test]
async fn anonymous_callers_are_refused_everywhere() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    for (rpc, code) in codes_of_every_rpc(&app.anonymous(), &tenant).await {
        assert_eq!(code, Code::Unauthenticated, "{rpc}");
    }
}

#[tokio::test]
async fn bad_tokens_are_refused_everywhere() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let foreign_key = platform::testing::TestKeys::new();
    let mut expired: Claims = app
        .keys
        .claims(&platform::context::UserId::generate().to_string());
    expired.prole = Some("admin".into());
    expired.iat -= 3600;
    expired.exp -= 3600;
    for token in [
        foreign_key.platform_admin_token(),
        app.keys.sign(&expired),
        "not-a-jwt".to_owned(),
    ] {
        for (rpc, code) in codes_of_every_rpc(&app.with_token(token.clone()), &tenant).await {
            assert_eq!(code, Code::Unauthenticated, "{rpc}");
        }
    }
}

/// What a caller bound to one tenant gets from `rpc` on another tenant.
fn code_on_another_tenant(rpc: &str) -> Code {
    match rpc {
        "get" | "update" => Code::NotFound,
        _ => Code::PermissionDenied,
    }
}

#[tokio::test]
async fn a_tenant_admin_cannot_touch_another_tenant() {
    let app = TestApp::spawn().await;
    let own = app.create_tenant("acme").await;
    let other = app.create_tenant("globex").await;
    let admin = app.user(id_of(&own), Role::Owner);
    // Another tenant is not found, as one that does not exist; what only platform operators
    // may do is refused.
    let phantom = Tenant {
        name: format!("tenants/{}", TenantId::generate()),
        slug: "phantom".into(),
        ..Tenant::default()
    };
    for target in [&other, &phantom] {
        for (rpc, code) in codes_of_every_rpc(&admin, target).await {
            assert_eq!(code, code_on_another_tenant(rpc), "{rpc}");
        }
    }
    let untouched = app
        .platform_admin()
        .get_tenant(GetTenantRequest {
            name: other.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(untouched, other);
}

#[tokio::test]
async fn tenant_roles_decide_what_members_may_do_on_their_own_tenant() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let id = id_of(&tenant);

    for role in [Role::Viewer, Role::Member] {
        let client = app.user(id, role);
        client
            .clone()
            .get_tenant(GetTenantRequest {
                name: tenant.name.clone(),
            })
            .await
            .unwrap();
        let refused = client
            .clone()
            .update_tenant(rename(&tenant, "Nope"))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{role:?}");
    }
    for role in [Role::Admin, Role::Owner] {
        app.user(id, role)
            .update_tenant(rename(&tenant, &format!("By {role:?}")))
            .await
            .unwrap();
    }

    // Plan and limits are the platform's to change, not the tenant owner's.
    let plan_change = app
        .user(id, Role::Owner)
        .update_tenant(UpdateTenantRequest {
            tenant: Some(Tenant {
                name: tenant.name.clone(),
                plan: Plan::Enterprise as i32,
                ..Tenant::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["plan".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(plan_change.code(), Code::PermissionDenied);
    // Nor are the platform's operations.
    for (rpc, code) in codes_of_every_rpc(&app.user(id, Role::Owner), &tenant).await {
        let expected = match rpc {
            "get" | "update" => Code::Ok,
            _ => Code::PermissionDenied,
        };
        assert_eq!(code, expected, "{rpc}");
    }
}

#[tokio::test]
async fn a_service_bound_to_one_tenant_cannot_reach_another() {
    let app = TestApp::spawn().await;
    let own = app.create_tenant("acme").await;
    let other = app.create_tenant("globex").await;
    let service = app.with_token(app.keys.service_token("svc-workflow", Some(id_of(&own))));
    service
        .clone()
        .get_tenant(GetTenantRequest {
            name: own.name.clone(),
        })
        .await
        .unwrap();
    for (rpc, code) in codes_of_every_rpc(&service, &other).await {
        assert_eq!(code, code_on_another_tenant(rpc), "{rpc}");
    }
}

#[tokio::test]
async fn a_token_for_one_tenant_is_refused_on_a_request_routed_to_another() {
    let app = TestApp::spawn().await;
    let own = app.create_tenant("acme").await;
    let other = app.create_tenant("globex").await;
    let refused = app
        .user_routed_to(id_of(&own), Role::Owner, id_of(&other))
        .get_tenant(GetTenantRequest {
            name: own.name.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    app.user_routed_to(id_of(&own), Role::Owner, id_of(&own))
        .get_tenant(GetTenantRequest {
            name: own.name.clone(),
        })
        .await
        .unwrap();
}
