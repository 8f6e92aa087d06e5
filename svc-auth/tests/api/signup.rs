use platform::context::TenantId;
use proto::formflow::auth::v1 as wire;
use proto::formflow::tenant::v1 as tenant_wire;
use tonic::Code;

use crate::helpers::{PASSWORD, TestApp, violated_fields};

fn sign_up_request(slug: &str, email: &str, password: &str) -> wire::SignUpRequest {
    wire::SignUpRequest {
        tenant_slug: slug.into(),
        tenant_display_name: "Acme Inc.".into(),
        email: email.into(),
        password: password.into(),
        display_name: "Ada Lovelace".into(),
    }
}

#[tokio::test]
async fn sign_up_creates_the_tenant_and_its_owner_and_logs_them_in() {
    let app = TestApp::spawn().await;
    let signed_up = app.sign_up("acme", "  Ada@Example.com ").await;
    let tenant = signed_up.tenant.clone().unwrap();
    let user = signed_up.user.clone().unwrap();
    let member = signed_up.member.clone().unwrap();
    assert_eq!(tenant.slug, "acme");
    assert_eq!(user.email, "ada@example.com");
    assert!(!user.platform_admin);
    assert_eq!(member.role(), wire::Role::Owner);
    assert_eq!(member.name, format!("members/{}", user.id));

    let tokens = signed_up.tokens.unwrap();
    let me = app
        .auth_with(&tokens.access_token)
        .get_me(wire::GetMeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.user.unwrap().id, user.id);
    assert_eq!(me.tenant_id, tenant.id);
    assert_eq!(me.session_id, tokens.session_id);
    assert!(me.permissions.contains(&"owners:manage".to_owned()));

    // The owner's token works at svc-tenant: they may rename their tenant.
    app.tenants_with(&tokens.access_token)
        .update_tenant(tenant_wire::UpdateTenantRequest {
            tenant: Some(tenant_wire::Tenant {
                name: tenant.name.clone(),
                display_name: "Acme Renamed".into(),
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_taken_slug_leaves_nothing_behind() {
    let app = TestApp::spawn().await;
    app.sign_up("acme", "ada@example.com").await;
    let refused = app
        .auth_public(None)
        .sign_up(sign_up_request("acme", "grace@example.com", PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists);
    // grace has no account: she can sign up again with another slug.
    let again = app.sign_up("grace-co", "grace@example.com").await;
    assert!(again.user.is_some());
}

#[tokio::test]
async fn an_existing_account_joins_a_new_tenant_only_with_its_password() {
    let app = TestApp::spawn().await;
    let first = app.sign_up("acme", "ada@example.com").await;
    let refused = app
        .auth_public(None)
        .sign_up(sign_up_request(
            "globex",
            "ada@example.com",
            "another-Strong-pass-77",
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists);

    let second = app
        .auth_public(None)
        .sign_up(sign_up_request("globex", "ada@example.com", PASSWORD))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        second.user.unwrap().id,
        first.user.unwrap().id,
        "one account, two tenants"
    );
    assert_ne!(second.tenant.unwrap().id, first.tenant.unwrap().id);
}

#[tokio::test]
async fn sign_up_names_every_bad_field() {
    let app = TestApp::spawn().await;
    let client = app.auth_public(None);
    let all_bad = wire::SignUpRequest {
        tenant_slug: String::new(),
        tenant_display_name: " ".into(),
        email: "not-an-email".into(),
        password: String::new(),
        display_name: String::new(),
    };
    let status = client.clone().sign_up(all_bad).await.unwrap_err();
    assert_eq!(
        violated_fields(&status),
        [
            "email",
            "display_name",
            "password",
            "tenant_slug",
            "tenant_display_name"
        ]
    );
    let weak = client
        .clone()
        .sign_up(sign_up_request("acme", "ada@example.com", "password123456"))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&weak), ["password"]);
    let bad_slug = client
        .clone()
        .sign_up(sign_up_request("Not A Slug", "ada@example.com", PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad_slug), ["tenant_slug"]);
    // Refused sign-ups created no tenant: the slug is still free.
    let created = app.sign_up("acme", "ada@example.com").await;
    assert!(TenantId::parse(&created.tenant.unwrap().id).is_ok());
}
