//! The published keys, their rotation, and service tokens: what every other service relies on.

use proto::formflow::auth::v1 as wire;
use proto::formflow::tenant::v1 as tenant_wire;
use tonic::Code;

use crate::helpers::{GATEWAY_CLIENT, PASSWORD, TestApp, access_token, tenant_of};

async fn issue(
    app: &TestApp,
    client_id: &str,
    secret: &str,
    tenant: &str,
) -> Result<wire::IssueServiceTokenResponse, tonic::Status> {
    app.auth_public(None)
        .issue_service_token(wire::IssueServiceTokenRequest {
            client_id: client_id.into(),
            client_secret: secret.into(),
            tenant_id: tenant.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn the_jwks_holds_the_ed25519_key_that_signs_tokens() {
    let app = TestApp::spawn().await;
    let jwks = app
        .auth_public(None)
        .get_jwks(wire::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(jwks.keys.len(), 1);
    let key = &jwks.keys[0];
    assert_eq!(
        (
            key.kty.as_str(),
            key.crv.as_str(),
            key.alg.as_str(),
            key.r#use.as_str()
        ),
        ("OKP", "Ed25519", "EdDSA", "sig")
    );
    assert!(!key.kid.is_empty());
    // Its JSON form is a standard JWKS.
    let json = serde_json::to_value(&jwks).unwrap();
    assert!(json["keys"][0]["x"].is_string());
    assert!(json["keys"][0].get("y").is_none());

    let signed_up = app.sign_up("acme", "ada@example.com").await;
    let token = &signed_up.tokens.as_ref().unwrap().access_token;
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(key.kid.as_str()));
}

#[tokio::test]
async fn service_tokens_go_to_configured_clients_only() {
    let app = TestApp::spawn().await;
    let signed_up = app.sign_up("acme", "ada@example.com").await;
    let tenant = tenant_of(&signed_up);

    let issued = issue(&app, GATEWAY_CLIENT.0, GATEWAY_CLIENT.1, "")
        .await
        .unwrap();
    assert_eq!(issued.token_type, "Bearer");
    // svc-tenant verifies it against svc-auth's keys: the gateway may resolve tenants.
    let resolved = app
        .tenants_with(&issued.access_token)
        .resolve_tenant(tenant_wire::ResolveTenantRequest {
            key: Some(tenant_wire::resolve_tenant_request::Key::Slug(
                "acme".into(),
            )),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.id, tenant.to_string());

    for (client, secret) in [
        (GATEWAY_CLIENT.0, "wrong-secret-0123456789"),
        ("intruder", GATEWAY_CLIENT.1),
    ] {
        let refused = issue(&app, client, secret, "").await.unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated, "{client}");
    }

    // A token bound to one tenant reaches that tenant only: another is not found.
    let bound = issue(
        &app,
        GATEWAY_CLIENT.0,
        GATEWAY_CLIENT.1,
        &tenant.to_string(),
    )
    .await
    .unwrap();
    let other = app.sign_up("globex", "grace@example.com").await;
    let refused = app
        .tenants_with(&bound.access_token)
        .get_tenant(tenant_wire::GetTenantRequest {
            name: other.tenant.unwrap().name,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
}

#[tokio::test]
async fn rotation_keeps_old_tokens_valid_and_new_ones_trusted_at_once() {
    let app = TestApp::spawn().await;
    let signed_up = app.sign_up("acme", "ada@example.com").await;
    let tenant = tenant_of(&signed_up);
    let before = signed_up.tokens.unwrap().access_token;

    let refused = app
        .auth_with(&before)
        .rotate_signing_key(wire::RotateSigningKeyRequest {})
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::PermissionDenied,
        "a tenant owner does not rotate keys"
    );

    let rotated = app
        .auth_with(&app.keys.platform_admin_token())
        .rotate_signing_key(wire::RotateSigningKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rotated.state(), wire::SigningKeyState::Active);
    let jwks = app
        .auth_public(None)
        .get_jwks(wire::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner();
    let kids: Vec<&str> = jwks.keys.iter().map(|key| key.kid.as_str()).collect();
    assert_eq!(kids.len(), 2, "the retired key stays published");
    assert!(kids.contains(&rotated.kid.as_str()));

    let after = access_token(
        &app.login(tenant, "ada@example.com", PASSWORD)
            .await
            .unwrap(),
    );
    assert_eq!(
        jsonwebtoken::decode_header(&after).unwrap().kid.as_deref(),
        Some(rotated.kid.as_str())
    );
    // svc-tenant has never seen the new key: it fetches it on the first token that names it.
    for token in [&before, &after] {
        app.tenants_with(token)
            .get_tenant(tenant_wire::GetTenantRequest {
                name: format!("tenants/{tenant}"),
            })
            .await
            .unwrap();
    }
}
