//! API keys: created once-visible, verified by the gateway into a token services accept,
//! limited by role and scopes, revoked, and tied to their tenant.

use proto::formflow::auth::v1 as wire;
use proto::formflow::tenant::v1 as tenant_wire;
use tonic::Code;

use crate::helpers::{GATEWAY_CLIENT, TestApp, tenant_of, violated_fields};

fn key_request(name: &str, role: wire::Role, scopes: &[&str]) -> wire::CreateApiKeyRequest {
    wire::CreateApiKeyRequest {
        api_key: Some(wire::ApiKey {
            display_name: name.into(),
            role: role as i32,
            scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
            ..Default::default()
        }),
    }
}

async fn gateway_token(app: &TestApp) -> String {
    app.auth_public(None)
        .issue_service_token(wire::IssueServiceTokenRequest {
            client_id: GATEWAY_CLIENT.0.into(),
            client_secret: GATEWAY_CLIENT.1.into(),
            tenant_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .access_token
}

#[tokio::test]
async fn a_key_is_shown_once_verified_by_the_gateway_and_revoked() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("acme", "ada@example.com").await;
    let tenant = tenant_of(&owner);
    let admin = app.auth_with(&owner.tokens.as_ref().unwrap().access_token);

    let created = admin
        .clone()
        .create_api_key(key_request("CI", wire::Role::Viewer, &[]))
        .await
        .unwrap()
        .into_inner();
    assert!(created.secret.starts_with("ffk_"));
    let key = created.api_key.unwrap();
    assert_eq!(key.secret_prefix, &created.secret[..12]);
    let listed = admin
        .clone()
        .list_api_keys(wire::ListApiKeysRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.api_keys, std::slice::from_ref(&key));
    let fetched = admin
        .clone()
        .get_api_key(wire::GetApiKeyRequest {
            name: key.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched.state(), wire::ApiKeyState::Active);

    let gateway = app.auth_with(&gateway_token(&app).await);
    let verified = gateway
        .clone()
        .verify_api_key(wire::VerifyApiKeyRequest {
            secret: created.secret.clone(),
            tenant_id: tenant.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(verified.tenant_id, tenant.to_string());
    assert!(verified.permissions.contains(&"tenant:read".to_owned()));
    // Services accept the key's token as they accept any token.
    app.tenants_with(&verified.access_token)
        .get_tenant(tenant_wire::GetTenantRequest {
            name: format!("tenants/{tenant}"),
        })
        .await
        .unwrap();
    let read_only = app
        .tenants_with(&verified.access_token)
        .update_tenant(tenant_wire::UpdateTenantRequest {
            tenant: Some(tenant_wire::Tenant {
                name: format!("tenants/{tenant}"),
                display_name: "By key".into(),
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(
        read_only.code(),
        Code::PermissionDenied,
        "a viewer key cannot manage the tenant"
    );

    // A key of this tenant is refused for another; users cannot verify keys.
    let other = tenant_of(&app.sign_up("globex", "grace@example.com").await);
    let elsewhere = gateway
        .clone()
        .verify_api_key(wire::VerifyApiKeyRequest {
            secret: created.secret.clone(),
            tenant_id: other.to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), Code::Unauthenticated);
    let by_user = admin
        .clone()
        .verify_api_key(wire::VerifyApiKeyRequest {
            secret: created.secret.clone(),
            tenant_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(by_user.code(), Code::PermissionDenied);

    let revoked = admin
        .clone()
        .revoke_api_key(wire::RevokeApiKeyRequest {
            name: key.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.state(), wire::ApiKeyState::Revoked);
    let after = gateway
        .clone()
        .verify_api_key(wire::VerifyApiKeyRequest {
            secret: created.secret,
            tenant_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(after.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn scopes_narrow_a_key_and_roles_are_capped() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("acme", "ada@example.com").await;
    let tenant = tenant_of(&owner);
    let admin = app.auth_with(&owner.tokens.as_ref().unwrap().access_token);

    let owner_key = admin
        .clone()
        .create_api_key(key_request("root", wire::Role::Owner, &[]))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&owner_key), ["api_key.role"]);
    let beyond = admin
        .clone()
        .create_api_key(key_request("x", wire::Role::Viewer, &["forms:write"]))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&beyond), ["api_key.scopes"]);
    let unknown = admin
        .clone()
        .create_api_key(key_request(
            "x",
            wire::Role::Member,
            &["forms:read", "rocket:launch", "forms:read"],
        ))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&unknown),
        ["api_key.scopes[1]", "api_key.scopes[2]"]
    );

    let scoped = admin
        .clone()
        .create_api_key(key_request(
            "forms only",
            wire::Role::Admin,
            &["forms:read"],
        ))
        .await
        .unwrap()
        .into_inner();
    let verified = app
        .auth_with(&gateway_token(&app).await)
        .verify_api_key(wire::VerifyApiKeyRequest {
            secret: scoped.secret,
            tenant_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(verified.permissions, ["forms:read"]);
    let refused = app
        .tenants_with(&verified.access_token)
        .get_tenant(tenant_wire::GetTenantRequest {
            name: format!("tenants/{tenant}"),
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::PermissionDenied,
        "tenant:read is outside the key's scopes"
    );
}

#[tokio::test]
async fn members_cannot_manage_keys_and_keys_of_another_tenant_are_invisible() {
    let app = TestApp::spawn().await;
    let acme = app.sign_up("acme", "ada@example.com").await;
    let globex = app.sign_up("globex", "grace@example.com").await;
    let acme_admin = app.auth_with(&acme.tokens.as_ref().unwrap().access_token);
    let globex_admin = app.auth_with(&globex.tokens.as_ref().unwrap().access_token);
    let key = globex_admin
        .clone()
        .create_api_key(key_request("theirs", wire::Role::Member, &[]))
        .await
        .unwrap()
        .into_inner()
        .api_key
        .unwrap();

    let read = acme_admin
        .clone()
        .get_api_key(wire::GetApiKeyRequest {
            name: key.name.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(read.code(), Code::NotFound);
    let revoke = acme_admin
        .clone()
        .revoke_api_key(wire::RevokeApiKeyRequest {
            name: key.name.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(revoke.code(), Code::NotFound);
    assert!(
        acme_admin
            .clone()
            .list_api_keys(wire::ListApiKeysRequest::default())
            .await
            .unwrap()
            .into_inner()
            .api_keys
            .is_empty()
    );

    let viewer_token = app
        .keys
        .user_token(tenant_of(&acme), platform::context::Role::Member);
    let member = app.auth_with(&viewer_token);
    let create = member
        .clone()
        .create_api_key(key_request("mine", wire::Role::Viewer, &[]))
        .await
        .unwrap_err();
    assert_eq!(create.code(), Code::PermissionDenied);
}
