//! Login, refresh with rotation and reuse detection, logout, logout everywhere.

use proto::formflow::auth::v1 as wire;
use tonic::Code;

use crate::helpers::{PASSWORD, TestApp, access_token, tenant_of};

async fn refresh(
    app: &TestApp,
    tenant: Option<platform::context::TenantId>,
    token: &str,
) -> Result<wire::AuthTokens, tonic::Status> {
    app.auth_public(tenant)
        .refresh(wire::RefreshRequest {
            refresh_token: token.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn login_refresh_reuse_and_logout() {
    let app = TestApp::spawn().await;
    let tenant = tenant_of(&app.sign_up("acme", "ada@example.com").await);

    let login = app
        .login(tenant, "ada@example.com", PASSWORD)
        .await
        .unwrap();
    assert!(!login.requires_two_factor);
    let first = login.tokens.unwrap();
    assert!(first.refresh_token.starts_with("ffr_"));
    let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(&first.access_token)
        .unwrap()
        .claims;
    assert_eq!(claims["tid"], tenant.to_string());
    assert_eq!(claims["role"], "owner");
    assert_eq!(claims["sid"], first.session_id);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );

    // Rotation: each refresh answers a new refresh token in the same session.
    let second = refresh(&app, Some(tenant), &first.refresh_token)
        .await
        .unwrap();
    assert_eq!(second.session_id, first.session_id);
    assert_ne!(second.refresh_token, first.refresh_token);
    let third = refresh(&app, Some(tenant), &second.refresh_token)
        .await
        .unwrap();

    // Reuse: the first token again revokes the whole family.
    let reused = refresh(&app, Some(tenant), &first.refresh_token)
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::Unauthenticated);
    assert!(reused.message().contains("reuse"), "{}", reused.message());
    let after_reuse = refresh(&app, Some(tenant), &third.refresh_token)
        .await
        .unwrap_err();
    assert_eq!(
        after_reuse.code(),
        Code::Unauthenticated,
        "the live token of the family died too"
    );
    let me = app
        .auth_with(&third.access_token)
        .get_me(wire::GetMeRequest {})
        .await
        .unwrap_err();
    assert_eq!(me.code(), Code::Unauthenticated, "and so did the session");

    // Logout ends a fresh session.
    let fresh = app
        .login(tenant, "ada@example.com", PASSWORD)
        .await
        .unwrap()
        .tokens
        .unwrap();
    app.auth_with(&fresh.access_token)
        .logout(wire::LogoutRequest {})
        .await
        .unwrap();
    assert_eq!(
        refresh(&app, Some(tenant), &fresh.refresh_token)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    assert_eq!(
        app.auth_with(&fresh.access_token)
            .get_me(wire::GetMeRequest {})
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );

    // The gateway's revocation list in Redis has the sessions.
    let mut redis = redis::Client::open(
        app.infra
            .redis
            .url()
            .map(|url| secrecy::ExposeSecret::expose_secret(&url).to_owned())
            .unwrap(),
    )
    .unwrap()
    .get_multiplexed_async_connection()
    .await
    .unwrap();
    for session in [&first.session_id, &fresh.session_id] {
        let key = format!(
            "{}auth:revoked-session:{session}",
            app.infra.redis.redis_key_prefix
        );
        let listed: bool = redis::AsyncCommands::exists(&mut redis, &key)
            .await
            .unwrap();
        assert!(listed, "{key}");
    }
}

#[tokio::test]
async fn logout_everywhere_ends_every_session_of_the_user_in_every_tenant() {
    let app = TestApp::spawn().await;
    let acme = tenant_of(&app.sign_up("acme", "ada@example.com").await);
    let globex = tenant_of(
        &app.auth_public(None)
            .sign_up(wire::SignUpRequest {
                tenant_slug: "globex".into(),
                tenant_display_name: "Globex".into(),
                email: "ada@example.com".into(),
                password: PASSWORD.into(),
                display_name: "Ada".into(),
            })
            .await
            .unwrap()
            .into_inner(),
    );
    let in_acme = app
        .login(acme, "ada@example.com", PASSWORD)
        .await
        .unwrap()
        .tokens
        .unwrap();
    let in_globex = app
        .login(globex, "ada@example.com", PASSWORD)
        .await
        .unwrap()
        .tokens
        .unwrap();
    let other_user = tenant_of(&app.sign_up("initech", "grace@example.com").await);
    let grace = app
        .login(other_user, "grace@example.com", PASSWORD)
        .await
        .unwrap()
        .tokens
        .unwrap();

    let revoked = app
        .auth_with(&in_acme.access_token)
        .logout_all(wire::LogoutAllRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        revoked.revoked_sessions, 4,
        "two sign-up sessions and two logins"
    );
    for tokens in [&in_acme, &in_globex] {
        assert_eq!(
            app.auth_with(&tokens.access_token)
                .get_me(wire::GetMeRequest {})
                .await
                .unwrap_err()
                .code(),
            Code::Unauthenticated
        );
    }
    app.auth_with(&grace.access_token)
        .get_me(wire::GetMeRequest {})
        .await
        .unwrap();
}

#[tokio::test]
async fn credentials_of_one_tenant_do_not_open_another() {
    let app = TestApp::spawn().await;
    let acme = tenant_of(&app.sign_up("acme", "ada@example.com").await);
    let globex = tenant_of(&app.sign_up("globex", "grace@example.com").await);

    let not_member = app
        .login(globex, "ada@example.com", PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(not_member.code(), Code::Unauthenticated);
    assert_eq!(not_member.message(), "invalid email or password");

    let tokens = app
        .login(acme, "ada@example.com", PASSWORD)
        .await
        .unwrap()
        .tokens
        .unwrap();
    let elsewhere = refresh(&app, Some(globex), &tokens.refresh_token)
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), Code::Unauthenticated);
    // The token was not consumed by the refused attempt.
    refresh(&app, Some(acme), &tokens.refresh_token)
        .await
        .unwrap();
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let tenant = tenant_of(&app.sign_up("acme", "ada@example.com").await);
    let unknown = app
        .login(tenant, "nobody@example.com", PASSWORD)
        .await
        .unwrap_err();
    let wrong = app
        .login(tenant, "ada@example.com", "not-the-password-at-all")
        .await
        .unwrap_err();
    assert_eq!(
        (unknown.code(), unknown.message()),
        (wrong.code(), wrong.message())
    );
    let logged_in = app
        .login(tenant, "ada@example.com", PASSWORD)
        .await
        .unwrap();
    assert!(!access_token(&logged_in).is_empty());
}
