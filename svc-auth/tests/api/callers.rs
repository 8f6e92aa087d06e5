//! What svc-auth believes of its callers: a token only within its validity window, and a
//! client address only from the gateway.

use platform::testing::CallMetadata;
use proto::formflow::auth::v1 as wire;
use serde_json::{Value, json};
use sqlx::Row;
use tonic::Code;

use crate::helpers::{GATEWAY_CLIENT, PASSWORD, TestApp, tenant_of};

#[tokio::test]
async fn tokens_not_valid_yet_or_issued_in_the_future_are_refused() {
    let app = TestApp::spawn().await;
    let signed_up = app.sign_up("acme", "ada@example.com").await;
    let access_token = &signed_up.tokens.as_ref().unwrap().access_token;
    // The owner's real claims, signed again (by a key svc-auth trusts) with one member moved.
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(access_token)
        .unwrap()
        .claims;
    let now = chrono::Utc::now().timestamp();
    let with = |member: &str, at: i64| {
        let mut claims = claims.clone();
        claims[member] = json!(at);
        app.keys.sign(&claims)
    };
    let app = &app;
    let me = |token: String| async move {
        app.auth_with(&token)
            .get_me(wire::GetMeRequest {})
            .await
            .map(|_| ())
    };

    for member in ["nbf", "iat"] {
        let refused = me(with(member, now + 3600)).await.unwrap_err();
        assert_eq!(
            refused.code(),
            Code::Unauthenticated,
            "{member}: {refused:?}"
        );
        assert_eq!(refused.message(), "token not valid yet");
        // A few seconds of clock skew are tolerated.
        me(with(member, now + 10))
            .await
            .unwrap_or_else(|status| panic!("{member} within the leeway: {status:?}"));
    }
}

#[tokio::test]
async fn the_client_address_is_taken_from_the_gateway_only() {
    let app = TestApp::spawn().await;
    let tenant = tenant_of(&app.sign_up("acme", "ada@example.com").await);
    let wrong_password = || wire::LoginRequest {
        email: "ada@example.com".into(),
        password: "wrong-password-xyz".into(),
    };
    let spoofed = || CallMetadata::new(None, Some(tenant)).from_client_ip("198.51.100.66");

    // Straight at svc-auth's port, with no gateway token or with one that is not a service's.
    app.auth_direct(spoofed())
        .login(wrong_password())
        .await
        .unwrap_err();
    let user_token = app.keys.user_token(tenant, platform::context::Role::Owner);
    app.auth_direct(spoofed().via_gateway(&user_token))
        .login(wrong_password())
        .await
        .unwrap_err();
    // Through the gateway (a failure more would lock the account in the tests).
    let gateway_token = app.keys.service_token(GATEWAY_CLIENT.0, None);
    app.auth_direct(spoofed().via_gateway(&gateway_token))
        .login(wire::LoginRequest {
            email: "ada@example.com".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap();

    let mut connection = app.infra.admin_connection().await;
    let addresses: Vec<String> =
        sqlx::query("SELECT ip_address FROM auth.login_attempts ORDER BY id")
            .fetch_all(&mut connection)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get("ip_address"))
            .collect();
    assert_eq!(addresses, ["127.0.0.1", "127.0.0.1", "198.51.100.66"]);
}
