//! Who may use the models: members and above of their own tenant; nobody anonymous, and no
//! token for one tenant on a call routed to another.

use platform::auth::Claims;
use platform::context::{Role, TenantId};
use proto::formflow::ai::v1::{EmbedRequest, ListModelsRequest};
use tonic::Code;

use crate::helpers::{TestApp, embed, expect_code};

#[tokio::test]
async fn anonymous_callers_and_forged_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let mut anonymous = app.client(None, None);
    expect_code(
        embed(&mut anonymous, &["hello"]).await,
        Code::Unauthenticated,
    );
    expect_code(
        anonymous.list_models(ListModelsRequest::default()).await,
        Code::Unauthenticated,
    );
    // A token signed by another key.
    let stranger = platform::testing::TestKeys::new();
    let forged = stranger.user_token(TenantId::generate(), Role::Owner);
    let mut forger = app.client(Some(&forged), None);
    expect_code(embed(&mut forger, &["hello"]).await, Code::Unauthenticated);
    app.stop().await;
}

#[tokio::test]
async fn viewers_list_models_but_only_members_and_above_run_them() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut viewer = app.user(tenant, Role::Viewer);
    viewer
        .list_models(ListModelsRequest::default())
        .await
        .expect("viewers list models");
    let status = expect_code(embed(&mut viewer, &["hello"]).await, Code::PermissionDenied);
    assert!(status.message().contains("ai:use"), "{status:?}");
    for role in [Role::Member, Role::Admin, Role::Owner] {
        embed(&mut app.user(tenant, role), &["hello"])
            .await
            .unwrap_or_else(|status| panic!("{role:?}: {status:?}"));
    }
    app.stop().await;
}

#[tokio::test]
async fn api_keys_need_the_ai_use_scope_when_they_are_scoped() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let key_token = |scope: Option<&str>| {
        let mut claims: Claims = app.keys.claims(&uuid::Uuid::new_v4().to_string());
        claims.typ = Some("api_key".to_owned());
        claims.tid = Some(tenant.to_string());
        claims.role = Some("admin".to_owned());
        claims.sid = None;
        claims.scope = scope.map(str::to_owned);
        app.keys.sign(&claims)
    };
    let mut forms_only = app.client(Some(&key_token(Some("forms:read"))), None);
    expect_code(
        embed(&mut forms_only, &["hello"]).await,
        Code::PermissionDenied,
    );
    let mut ai = app.client(Some(&key_token(Some("forms:read ai:use"))), None);
    embed(&mut ai, &["hello"]).await.expect("ai:use is enough");
    let mut unscoped = app.client(Some(&key_token(None)), None);
    embed(&mut unscoped, &["hello"])
        .await
        .expect("an unscoped key has its role's rights");
    app.stop().await;
}

#[tokio::test]
async fn a_token_for_one_tenant_is_refused_on_a_call_routed_to_another() {
    let app = TestApp::spawn().await;
    let (mine, theirs) = (TenantId::generate(), TenantId::generate());
    let token = app.keys.user_token(mine, Role::Owner);
    let mut crossing = app.client(Some(&token), Some(theirs));
    let status = expect_code(
        embed(&mut crossing, &["hello"]).await,
        Code::PermissionDenied,
    );
    assert!(!status.message().contains(&mine.to_string()));
    expect_code(
        crossing.list_models(ListModelsRequest::default()).await,
        Code::PermissionDenied,
    );
    // A service token bound to one tenant cannot act for another either.
    let service = app.keys.service_token("svc-workflow", Some(mine));
    let mut service = app.client(Some(&service), Some(theirs));
    expect_code(
        embed(&mut service, &["hello"]).await,
        Code::PermissionDenied,
    );
    // The same token routed to its own tenant works.
    let mut own = app.client(Some(&token), Some(mine));
    embed(&mut own, &["hello"]).await.expect("own tenant");
    app.stop().await;
}

#[tokio::test]
async fn platform_callers_must_name_the_tenant_they_act_for() {
    let app = TestApp::spawn().await;
    let admin = app.keys.platform_admin_token();
    let status = expect_code(
        app.client(Some(&admin), None)
            .embed(EmbedRequest {
                model: String::new(),
                texts: vec!["hello".to_owned()],
            })
            .await,
        Code::FailedPrecondition,
    );
    assert!(status.message().contains("x-tenant-id"), "{status:?}");
    let mut routed = app.client(Some(&admin), Some(TenantId::generate()));
    embed(&mut routed, &["hello"])
        .await
        .expect("routed to a tenant");
    let worker = app.keys.service_token("svc-workflow", None);
    let mut worker = app.client(Some(&worker), Some(TenantId::generate()));
    embed(&mut worker, &["hello"])
        .await
        .expect("a platform service routed to a tenant");
    app.stop().await;
}
