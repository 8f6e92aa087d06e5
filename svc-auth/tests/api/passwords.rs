//! Password change and reset.

use std::time::Duration;

use platform::amqp::{Consumer, Outcome};
use platform::testing::EventObserver;
use proto::formflow::auth::v1 as wire;
use sqlx::Connection;
use tonic::Code;

use crate::helpers::{PASSWORD, TestApp, tenant_of, violated_fields};

const NEW_PASSWORD: &str = "marble-Otter-violin-42-dusk";

#[tokio::test]
async fn changing_the_password_checks_the_old_one_and_ends_other_sessions() {
    let app = TestApp::spawn().await;
    let signed_up = app.sign_up("acme", "ada@example.com").await;
    let tenant = tenant_of(&signed_up);
    let other = app
        .login(tenant, "ada@example.com", PASSWORD)
        .await
        .unwrap()
        .tokens
        .unwrap();
    let current = app.auth_with(&signed_up.tokens.unwrap().access_token);

    let change = |current_password: &str, new_password: &str| wire::ChangePasswordRequest {
        current_password: current_password.into(),
        new_password: new_password.into(),
    };
    assert_eq!(
        violated_fields(
            &current
                .clone()
                .change_password(change("wrong-one-xyz", NEW_PASSWORD))
                .await
                .unwrap_err()
        ),
        ["current_password"]
    );
    assert_eq!(
        violated_fields(
            &current
                .clone()
                .change_password(change(PASSWORD, "password12345"))
                .await
                .unwrap_err()
        ),
        ["new_password"]
    );
    assert_eq!(
        violated_fields(
            &current
                .clone()
                .change_password(change(PASSWORD, PASSWORD))
                .await
                .unwrap_err()
        ),
        ["new_password"]
    );
    let changed = current
        .clone()
        .change_password(change(PASSWORD, NEW_PASSWORD))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changed.revoked_sessions, 1);

    current.clone().get_me(wire::GetMeRequest {}).await.unwrap();
    assert_eq!(
        app.auth_with(&other.access_token)
            .get_me(wire::GetMeRequest {})
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    assert_eq!(
        app.login(tenant, "ada@example.com", PASSWORD)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    app.login(tenant, "ada@example.com", NEW_PASSWORD)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_reset_token_sets_a_new_password_once_and_unlocks_the_account() {
    let app = TestApp::spawn().await;
    let mut events = Consumer::start(
        &app.infra.amqp,
        "test",
        "test.resets",
        &["auth.password_reset.requested.#"],
        10,
    )
    .await
    .unwrap();
    let signed_up = app.sign_up("acme", "ada@example.com").await;
    let tenant = tenant_of(&signed_up);
    let old_session = signed_up.tokens.unwrap();

    // Lock the account (threshold 3 in tests).
    for _ in 0..3 {
        let _ = app
            .login(tenant, "ada@example.com", "wrong-password-xyz")
            .await;
    }
    assert_eq!(
        app.login(tenant, "ada@example.com", PASSWORD)
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );

    let public = app.auth_public(Some(tenant));
    for email in ["nobody@example.com", "ada@example.com"] {
        public
            .clone()
            .request_password_reset(wire::RequestPasswordResetRequest {
                email: email.into(),
            })
            .await
            .unwrap();
    }
    let mut token = String::new();
    tokio::time::timeout(
        Duration::from_secs(20),
        events.process_next(|delivery| {
            let body: serde_json::Value = serde_json::from_slice(&delivery.data).unwrap();
            assert_eq!(
                body["data"]["email"], "ada@example.com",
                "only the known email gets a reset"
            );
            token = body["data"]["token"].as_str().unwrap().to_owned();
            async { Outcome::Done }
        }),
    )
    .await
    .expect("a reset event")
    .unwrap();

    let reset = |token: &str, password: &str| wire::ResetPasswordRequest {
        token: token.into(),
        new_password: password.into(),
    };
    assert_eq!(
        violated_fields(
            &public
                .clone()
                .reset_password(reset(&token, "password12345"))
                .await
                .unwrap_err()
        ),
        ["new_password"]
    );
    public
        .clone()
        .reset_password(reset(&token, NEW_PASSWORD))
        .await
        .unwrap();
    assert_eq!(
        public
            .clone()
            .reset_password(reset(&token, NEW_PASSWORD))
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );

    app.login(tenant, "ada@example.com", NEW_PASSWORD)
        .await
        .unwrap();
    assert_eq!(
        app.auth_with(&old_session.access_token)
            .get_me(wire::GetMeRequest {})
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn a_reset_request_is_answered_before_any_of_its_work_is_done() {
    // Arrange: a transaction holds every table the reset works on, so a request that waits
    // for that work cannot be answered until it ends.
    let app = TestApp::spawn().await;
    let tenant = tenant_of(&app.sign_up("acme", "ada@example.com").await);
    let mut events =
        EventObserver::start(&app.infra.amqp, &["auth.password_reset.requested.#"]).await;
    let mut blocker = app.infra.admin_connection().await;
    let mut held = blocker.begin().await.unwrap();
    sqlx::query(
        "LOCK TABLE auth.users, auth.memberships, auth.password_resets IN ACCESS EXCLUSIVE MODE",
    )
    .execute(&mut *held)
    .await
    .unwrap();

    // Act and assert: an unknown email and a member's are both answered meanwhile.
    let public = app.auth_public(Some(tenant));
    for email in ["nobody@example.com", "ada@example.com"] {
        let request = wire::RequestPasswordResetRequest {
            email: email.into(),
        };
        tokio::time::timeout(
            Duration::from_secs(5),
            public.clone().request_password_reset(request),
        )
        .await
        .unwrap_or_else(|_| panic!("the reset request for {email} waited for the reset work"))
        .unwrap();
    }

    // Once the tables are free, the member's reset is sent, and only hers.
    held.rollback().await.unwrap();
    let sent = events.receive(1, Duration::from_secs(20)).await;
    assert_eq!(sent[0].body["data"]["email"], "ada@example.com");
    let token = sent[0].body["data"]["token"].as_str().unwrap();
    assert!(token.starts_with("ffp_"), "{token}");
}
